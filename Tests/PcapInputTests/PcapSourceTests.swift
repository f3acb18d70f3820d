import Foundation
import Testing
import TrafficImport

@testable import PcapInput

/// libpcap's side of `siotap import`: frames out of a classic pcap file written here byte by byte,
/// BPF filters, and the failures a stranger's file can bring (truncated, not a capture).
@Suite("pcap files through libpcap")
struct PcapSourceTests {
    /// An Ethernet + IPv4 + TCP frame from 127.0.0.1:`source` to 127.0.0.1:`destination`.
    static func frame(source: UInt16, destination: UInt16, sequence: UInt32, payload: String) -> [UInt8] {
        let body = Array(payload.utf8)
        var bytes: [UInt8] = Array(repeating: 0, count: 12) + [0x08, 0x00]
        let total = UInt16(20 + 20 + body.count)
        bytes += [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 0, 0x40, 0, 64, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]
        bytes += [UInt8(source >> 8), UInt8(source & 0xFF), UInt8(destination >> 8), UInt8(destination & 0xFF)]
        bytes += withUnsafeBytes(of: sequence.bigEndian, Array.init) + [0, 0, 0, 0]
        bytes += [0x50, 0x18, 0xFF, 0xFF, 0, 0, 0, 0]
        return bytes + body
    }

    /// A little-endian classic pcap (Ethernet) of `frames`, each at `seconds` + its index, 250 µs.
    static func pcap(_ frames: [[UInt8]], seconds: UInt32 = 1_800_000_000) -> [UInt8] {
        func le32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
        var bytes = le32(0xA1B2_C3D4) + [2, 0, 4, 0] + le32(0) + le32(0) + le32(65_535) + le32(1)
        for (index, frame) in frames.enumerated() {
            bytes += le32(seconds + UInt32(index)) + le32(250) + le32(UInt32(frame.count)) + le32(UInt32(frame.count))
            bytes += frame
        }
        return bytes
    }

    static func file(_ bytes: [UInt8]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("siotap-pcap-\(UUID().uuidString).pcap").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func segments(_ source: PcapSource) throws -> [TCPSegment] {
        var found: [TCPSegment] = []
        let link = source.linkType
        while let segment = try source.next({ bytes, time in PacketDecoding.tcpSegment(bytes, linkType: link, time: time) }) {
            if let segment { found.append(segment) }
        }
        return found
    }

    let frames = [
        frame(source: 50_000, destination: 8080, sequence: 1, payload: "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n\r\n"),
        frame(source: 50_001, destination: 9090, sequence: 7, payload: "elsewhere"),
    ]

    @Test("Frames come out with their bytes and their times, to the microsecond")
    func framesComeOut() throws {
        let path = try Self.file(Self.pcap(frames))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let source = try PcapSource.open(file: path)
        #expect(source.linkType == .ethernet)
        let segments = try Self.segments(source)
        #expect(segments.map(\.destination.port) == [8080, 9090])
        #expect(segments.first.map { String(decoding: $0.payload, as: UTF8.self).hasPrefix("GET /socket.io/") } == true)
        #expect(segments.map(\.time) == [1_800_000_000.000250, 1_800_000_001.000250])
        #expect(source.finished)
    }

    @Test("A BPF filter keeps what it names")
    func filter() throws {
        let path = try Self.file(Self.pcap(frames))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try Self.segments(PcapSource.open(file: path, filter: "tcp port 9090")).map(\.destination.port) == [9090])
        #expect(throws: PcapSource.Failure.self) { try PcapSource.open(file: path, filter: "tcp port banana") }
        do { _ = try PcapSource.open(file: path, filter: "tcp port banana") } catch { #expect(error.code == .badFilter) }
    }

    @Test("A file cut inside a frame gives the frames before it, then says so")
    func truncated() throws {
        let whole = Self.pcap(frames)
        let path = try Self.file(Array(whole.dropLast(5)))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let source = try PcapSource.open(file: path)
        let link = source.linkType
        let first = try source.next { bytes, time in PacketDecoding.tcpSegment(bytes, linkType: link, time: time) }
        #expect(first??.destination.port == 8080)
        do {
            _ = try source.next { _, _ in () }
            Issue.record("the cut frame was read")
        } catch {
            #expect(error.code == .truncated)
        }
    }

    @Test("What is not a capture, or not there, is refused with its code")
    func notACapture() throws {
        let path = try Self.file(Array("{\"log\": {\"entries\": []}}".utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        do { _ = try PcapSource.open(file: path); Issue.record("a JSON file opened as a capture") } catch { #expect(error.code == .notACapture) }
        do { _ = try PcapSource.open(file: path + ".missing"); Issue.record("a missing file opened") } catch {
            #expect([.cannotOpen, .notACapture].contains(error.code))
        }
    }
}

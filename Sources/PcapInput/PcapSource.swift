import CPcap
#if canImport(Glibc)
import Glibc
#endif
public import TrafficImport

/// Frames from a pcap or pcapng file, or a live interface, through libpcap, with an optional BPF
/// filter. Times are in microseconds whatever the file's precision.
public final class PcapSource {
    public struct Failure: Error, CustomStringConvertible {
        public enum Code: String, Sendable {
            /// Not a capture file, or not one libpcap reads.
            case notACapture = "pcap.not_a_capture"
            case badFilter = "pcap.bad_filter"
            case unsupportedLink = "pcap.unsupported_link"
            /// Live capture needs root or CAP_NET_RAW.
            case permission = "pcap.permission"
            case cannotOpen = "pcap.cannot_open"
            /// The file ends inside a frame.
            case truncated = "pcap.truncated"
        }

        public var code: Code
        public var message: String
        public var description: String { message }
    }

    private let handle: OpaquePointer
    public let linkType: LinkType
    private let file: UnsafeMutablePointer<FILE>?

    private init(handle: OpaquePointer, linkType: LinkType) {
        self.handle = handle
        self.linkType = linkType
        file = pcap_file(handle)
    }

    /// Checks the link type and sets the filter; closes the handle if either fails.
    private static func prepare(_ handle: OpaquePointer, filter: String?) throws(Failure) -> PcapSource {
        let link = pcap_datalink(handle)
        guard let linkType = LinkType(pcap: link) else {
            let name = pcap_datalink_val_to_name(link).map { String(cString: $0) } ?? "\(link)"
            pcap_close(handle)
            throw Failure(code: .unsupportedLink, message: "link type \(name) is not read (Ethernet, Linux cooked, loopback and raw IP are)")
        }
        if let filter {
            var program = bpf_program()
            guard pcap_compile(handle, &program, filter, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
                let reason = String(cString: pcap_geterr(handle))
                pcap_close(handle)
                throw Failure(code: .badFilter, message: "the filter '\(filter)': \(reason)")
            }
            defer { pcap_freecode(&program) }
            guard pcap_setfilter(handle, &program) == 0 else {
                let reason = String(cString: pcap_geterr(handle))
                pcap_close(handle)
                throw Failure(code: .badFilter, message: "the filter '\(filter)': \(reason)")
            }
        }
        return PcapSource(handle: handle, linkType: linkType)
    }

    deinit {
        pcap_close(handle)
    }

    /// libpcap's error buffer as text.
    private static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A pcap or pcapng file.
    public static func open(file path: String, filter: String? = nil) throws(Failure) -> PcapSource {
        var error = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let handle = pcap_open_offline_with_tstamp_precision(path, UInt32(PCAP_TSTAMP_PRECISION_MICRO), &error) else {
            let reason = Self.text(error)
            let code: Failure.Code = reason.contains("No such file") || reason.contains("ermission denied") ? .cannotOpen : .notACapture
            throw Failure(code: code, message: "\(path): \(reason)")
        }
        return try prepare(handle, filter: filter)
    }

    /// A live interface (`lo`, `eth0`, `any`); frames come as they are seen.
    public static func open(interface: String, filter: String? = nil, snapshotLength: Int32 = 262_144) throws(Failure) -> PcapSource {
        var error = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let handle = pcap_create(interface, &error) else {
            throw Failure(code: .cannotOpen, message: "\(interface): \(Self.text(error))")
        }
        pcap_set_snaplen(handle, snapshotLength)
        pcap_set_timeout(handle, 100)
        pcap_set_immediate_mode(handle, 1)
        // The kernel's default 2 MB fills while a burst is decoded, and what overflows is lost.
        pcap_set_buffer_size(handle, 64 << 20)
        let status = pcap_activate(handle)
        if status < 0 {
            let reason = String(cString: pcap_geterr(handle))
            pcap_close(handle)
            if status == PCAP_ERROR_PERM_DENIED {
                throw Failure(code: .permission, message: "\(interface): \(reason) (capturing needs root or CAP_NET_RAW)")
            }
            throw Failure(code: .cannotOpen, message: "\(interface): \(reason)")
        }
        // Non-blocking: next() answers at once, so a caller can stop between frames.
        _ = pcap_setnonblock(handle, 1, &error)
        return try prepare(handle, filter: filter)
    }

    /// The next frame, handed to `read` as libpcap holds it (valid only during the call: copying
    /// every frame out showed in profiles) with its time in seconds since 1970; `nil` at the end
    /// of a file (``finished``) or, live, when nothing is waiting (it does not block).
    public func next<Result>(_ read: (UnsafeRawBufferPointer, _ time: Double) -> Result) throws(Failure) -> Result? {
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        switch pcap_next_ex(handle, &header, &data) {
        case 1:
            guard let header, let data else { return nil }
            let length = Int(header.pointee.caplen)
            let time = Double(header.pointee.ts.tv_sec) + Double(header.pointee.ts.tv_usec) / 1_000_000
            return read(UnsafeRawBufferPointer(start: data, count: length), time)
        case 0:
            return nil
        case -2:
            finished = true
            return nil
        default:
            finished = true
            let reason = String(cString: pcap_geterr(handle))
            throw Failure(code: reason.contains("truncated") ? .truncated : .notACapture, message: reason)
        }
    }

    /// The file has ended.
    public private(set) var finished = false

    /// Bytes of the file read so far, for progress.
    public var position: Int {
        guard let file else { return 0 }
        return ftell(file)
    }

    /// Frames a live capture lost because its buffer was full (libpcap's count), if it says.
    public var dropped: Int? {
        var stats = pcap_stat()
        guard pcap_stats(handle, &stats) == 0 else { return nil }
        return Int(stats.ps_drop)
    }
}

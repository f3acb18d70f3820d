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
            /// libpcap is not installed (it is loaded when first needed, not linked).
            case libraryMissing = "pcap.library_missing"
        }

        public var code: Code
        public var message: String
        public var description: String { message }
    }

    private let pcap: Library
    private let handle: OpaquePointer
    public let linkType: LinkType
    private let file: UnsafeMutablePointer<FILE>?

    private init(_ pcap: Library, handle: OpaquePointer, linkType: LinkType) {
        self.pcap = pcap
        self.handle = handle
        self.linkType = linkType
        file = pcap.file(handle)
    }

    /// libpcap's functions, loaded once: from `SIOTAP_LIBPCAP` when set (a library in a place of
    /// its own), else by the names distributions install it under.
    typealias Library = siotap_pcap_api

    static func library() throws(Failure) -> Library {
        var error = [CChar](repeating: 0, count: 512)
        let path = getenv("SIOTAP_LIBPCAP").map { String(cString: $0) }
        guard let api = siotap_pcap_load(path, &error, error.count) else {
            throw Failure(
                code: .libraryMissing,
                message: "libpcap is needed to read capture files and interfaces, and it cannot be loaded (\(text(error))): "
                    + "install it (Debian, Ubuntu: sudo apt install libpcap0.8; Fedora: sudo dnf install libpcap; Alpine: apk add libpcap)"
                    + (path == nil ? "" : ", or set SIOTAP_LIBPCAP to where it is")
            )
        }
        return api.pointee
    }

    /// Checks the link type and sets the filter; closes the handle if either fails.
    private static func prepare(_ pcap: Library, _ handle: OpaquePointer, filter: String?) throws(Failure) -> PcapSource {
        let link = pcap.datalink(handle)
        guard let linkType = LinkType(pcap: link) else {
            let name = pcap.datalink_val_to_name(link).map { String(cString: $0) } ?? "\(link)"
            pcap.close(handle)
            throw Failure(code: .unsupportedLink, message: "link type \(name) is not read (Ethernet, Linux cooked, loopback and raw IP are)")
        }
        if let filter {
            var program = bpf_program()
            guard pcap.compile(handle, &program, filter, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
                let reason = Self.lastError(pcap, handle)
                pcap.close(handle)
                throw Failure(code: .badFilter, message: "the filter '\(filter)': \(reason)")
            }
            defer { pcap.freecode(&program) }
            guard pcap.setfilter(handle, &program) == 0 else {
                let reason = Self.lastError(pcap, handle)
                pcap.close(handle)
                throw Failure(code: .badFilter, message: "the filter '\(filter)': \(reason)")
            }
        }
        return PcapSource(pcap, handle: handle, linkType: linkType)
    }

    deinit {
        pcap.close(handle)
    }

    /// What libpcap last said of `handle`.
    private static func lastError(_ pcap: Library, _ handle: OpaquePointer) -> String {
        pcap.geterr(handle).map { String(cString: $0) } ?? "libpcap gave no reason"
    }

    /// libpcap's error buffer as text.
    private static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A pcap or pcapng file.
    public static func open(file path: String, filter: String? = nil) throws(Failure) -> PcapSource {
        let pcap = try library()
        var error = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let handle = pcap.open_offline_with_tstamp_precision(path, UInt32(PCAP_TSTAMP_PRECISION_MICRO), &error) else {
            let reason = Self.text(error)
            let code: Failure.Code = reason.contains("No such file") || reason.contains("ermission denied") ? .cannotOpen : .notACapture
            // libpcap says "unknown file format": say what siotap reads instead.
            throw Failure(code: code, message: code == .notACapture ? "\(path): not a pcap, pcapng or HAR file (libpcap: \(reason))" : "\(path): \(reason)")
        }
        return try prepare(pcap, handle, filter: filter)
    }

    /// A live interface (`lo`, `eth0`, `any`); frames come as they are seen.
    public static func open(interface: String, filter: String? = nil, snapshotLength: Int32 = 262_144) throws(Failure) -> PcapSource {
        let pcap = try library()
        var error = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let handle = pcap.create(interface, &error) else {
            throw Failure(code: .cannotOpen, message: "\(interface): \(Self.text(error))")
        }
        _ = pcap.set_snaplen(handle, snapshotLength)
        _ = pcap.set_timeout(handle, 100)
        _ = pcap.set_immediate_mode(handle, 1)
        // The kernel's default 2 MB fills while a burst is decoded, and what overflows is lost.
        _ = pcap.set_buffer_size(handle, 64 << 20)
        let status = pcap.activate(handle)
        if status < 0 {
            let reason = Self.lastError(pcap, handle)
            pcap.close(handle)
            if status == PCAP_ERROR_PERM_DENIED {
                throw Failure(code: .permission, message: "\(interface): \(reason) (capturing needs root or CAP_NET_RAW)")
            }
            throw Failure(code: .cannotOpen, message: "\(interface): \(reason)")
        }
        // Non-blocking: next() answers at once, so a caller can stop between frames.
        _ = pcap.setnonblock(handle, 1, &error)
        return try prepare(pcap, handle, filter: filter)
    }

    /// The next frame, handed to `read` as libpcap holds it (valid only during the call: copying
    /// every frame out showed in profiles) with its time in seconds since 1970; `nil` at the end
    /// of a file (``finished``) or, live, when nothing is waiting (it does not block).
    public func next<Result>(_ read: (UnsafeRawBufferPointer, _ time: Double) -> Result) throws(Failure) -> Result? {
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        switch pcap.next_ex(handle, &header, &data) {
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
            let reason = Self.lastError(pcap, handle)
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
        guard pcap.stats(handle, &stats) == 0 else { return nil }
        return Int(stats.ps_drop)
    }
}

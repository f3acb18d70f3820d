#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix

/// What a client on another machine may reach through forward mode (`--allow-remote`): not this
/// machine's loopback or link-local addresses (the services that trust "only this machine can
/// connect", the inspector among them), nor siotap's own ports on any of its addresses, unless
/// `--allow-hosts` names the host. A host name is resolved here, every address it has checked,
/// and the connection made to the address checked (pinned), so a DNS answer that changes
/// between the check and the connect (rebinding) cannot slip through. Clients on this machine
/// reach what they like, as before.
struct ForwardAccess: Sendable {
    enum Verdict: Sendable, Equatable {
        /// Go on, to `pin` (an IP address to dial instead of the name) when one was checked.
        case allowed(pin: String?)
        case refused(String)
    }

    /// siotap's own listening ports.
    var ownPorts: Set<Int>
    /// This machine's addresses, its loopback ones aside.
    var localAddresses: Set<String>
    /// Whether `--allow-hosts` names this host explicitly.
    var explicitlyAllowed: @Sendable (_ host: String, _ port: Int) -> Bool

    /// Whether the client is on this machine.
    static func isLocal(_ client: SocketAddress?) -> Bool {
        guard let ip = client?.ipAddress else { return false }
        return kind(of: ip) == "loopback"
    }

    /// The verdict for a remote client's request to `host:port`, whose addresses are `resolved`.
    func verdict(host: String, port: Int, resolved: [String]) -> Verdict {
        if explicitlyAllowed(host, port) { return .allowed(pin: nil) }
        guard !resolved.isEmpty else { return .refused("\(host) has no address") }
        for address in resolved {
            if let kind = Self.kind(of: address) {
                return .refused("\(host) is a \(kind) address of this machine (\(address)); clients on other machines cannot reach it unless --allow-hosts names it")
            }
            if ownPorts.contains(port), localAddresses.contains(address) {
                return .refused("\(host):\(port) is siotap itself; clients on other machines cannot reach it unless --allow-hosts names it")
            }
        }
        return .allowed(pin: resolved[0])
    }

    /// "loopback", "link-local" or "unspecified" for such an address (IPv4, IPv6, or IPv4 written
    /// as IPv6); nil for any other.
    static func kind(of ip: String) -> String? {
        let lower = ip.lowercased()
        let v4: String? = lower.hasPrefix("::ffff:") && lower.contains(".") ? String(lower.dropFirst(7)) : (lower.contains(":") ? nil : lower)
        if let v4 {
            let octets = v4.split(separator: ".").compactMap { UInt8($0) }
            guard octets.count == 4 else { return nil }
            if octets[0] == 127 { return "loopback" }
            if octets[0] == 0 { return "unspecified" }
            if octets[0] == 169 && octets[1] == 254 { return "link-local" }
            return nil
        }
        var bytes = in6_addr()
        guard inet_pton(AF_INET6, lower, &bytes) == 1 else { return nil }
        let octets = withUnsafeBytes(of: bytes) { Array($0) }
        if octets[0..<15].allSatisfy({ $0 == 0 }) { return octets[15] == 1 ? "loopback" : octets[15] == 0 ? "unspecified" : nil }
        if octets[0] == 0xFE && octets[1] & 0xC0 == 0x80 { return "link-local" }
        return nil
    }

    /// The addresses `host` resolves to (itself when it is one), as IP text; looked up on NIO's
    /// thread pool, off the event loops.
    static func resolve(_ host: String, port: Int) async -> [String] {
        if (try? SocketAddress(ipAddress: host, port: port)) != nil { return [host] }
        let found = try? await NIOThreadPool.singleton.runIfActive { () -> [String] in
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var list: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return [] }
            defer { freeaddrinfo(first) }
            var addresses: [String] = []
            var cursor: UnsafeMutablePointer<addrinfo>? = first
            while let entry = cursor {
                var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
                if getnameinfo(entry.pointee.ai_addr, entry.pointee.ai_addrlen, &text, socklen_t(text.count), nil, 0, NI_NUMERICHOST) == 0 {
                    let address = text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
                    if !addresses.contains(address) { addresses.append(address) }
                }
                cursor = entry.pointee.ai_next
            }
            return addresses
        }
        return found ?? []
    }

    /// This machine's own addresses, from its interfaces.
    static func machineAddresses() -> Set<String> {
        Set(((try? System.enumerateDevices()) ?? []).compactMap { $0.address?.ipAddress })
    }
}

import NIOCore
import Testing

@testable import SocketIOProxy

/// What forward mode's clients on other machines may reach.
@Suite("Forward mode's access for remote clients")
struct ForwardAccessTests {
    @Test("Loopback, link-local and unspecified addresses are told apart from others, in IPv4, IPv6 and IPv4 written as IPv6")
    func kinds() {
        for ip in ["127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1", "0:0:0:0:0:0:0:1"] { #expect(ForwardAccess.kind(of: ip) == "loopback", "\(ip)") }
        for ip in ["169.254.169.254", "fe80::1", "FE80::abcd", "febf::1", "::ffff:169.254.1.1"] { #expect(ForwardAccess.kind(of: ip) == "link-local", "\(ip)") }
        for ip in ["0.0.0.0", "::", "0.1.2.3"] { #expect(ForwardAccess.kind(of: ip) == "unspecified", "\(ip)") }
        for ip in ["93.184.216.34", "10.0.0.1", "2001:db8::1", "fec0::1", "::2", "128.0.0.1", "not an address"] { #expect(ForwardAccess.kind(of: ip) == nil, "\(ip)") }
        #expect(ForwardAccess.isLocal(try? .init(ipAddress: "127.0.0.1", port: 1)))
        #expect(!ForwardAccess.isLocal(try? .init(ipAddress: "10.0.0.7", port: 1)))
        #expect(!ForwardAccess.isLocal(nil))
    }

    @Test("A remote client's request: refused to this machine's loopback, link-local and siotap's own ports; pinned to the address checked; --allow-hosts lets a host through")
    func verdicts() {
        let access = ForwardAccess(ownPorts: [8080, 8081], localAddresses: ["192.0.2.10"]) { host, _ in host == "dev.local" }
        #expect(access.verdict(host: "example.com", port: 443, resolved: ["93.184.216.34", "2606:2800::1"]) == .allowed(pin: "93.184.216.34"))
        // A name that resolves to loopback, among others (a rebinding answer): refused whatever comes first.
        guard case .refused(let reason) = access.verdict(host: "evil.example", port: 80, resolved: ["93.184.216.34", "127.0.0.1"]) else {
            Issue.record("loopback reached")
            return
        }
        #expect(reason.contains("loopback") && reason.contains("--allow-hosts"))
        #expect(access.verdict(host: "localhost", port: 3000, resolved: ["::1"]) != .allowed(pin: "::1"))
        #expect(access.verdict(host: "metadata", port: 80, resolved: ["169.254.169.254"]) != .allowed(pin: "169.254.169.254"))
        #expect(access.verdict(host: "0.0.0.0", port: 3000, resolved: ["0.0.0.0"]) != .allowed(pin: "0.0.0.0"))
        // siotap itself on one of the machine's addresses; the same port elsewhere is fine.
        #expect(access.verdict(host: "192.0.2.10", port: 8081, resolved: ["192.0.2.10"]) != .allowed(pin: "192.0.2.10"))
        #expect(access.verdict(host: "192.0.2.10", port: 3000, resolved: ["192.0.2.10"]) == .allowed(pin: "192.0.2.10"))
        #expect(access.verdict(host: "other.example", port: 8081, resolved: ["198.51.100.1"]) == .allowed(pin: "198.51.100.1"))
        #expect(access.verdict(host: "nowhere.invalid", port: 80, resolved: []) != .allowed(pin: nil))
        // Named by --allow-hosts: allowed, and dialled by name as a local client's would be.
        #expect(access.verdict(host: "dev.local", port: 3000, resolved: ["127.0.0.1"]) == .allowed(pin: nil))
    }

    @Test("Names are resolved off the loop to every address they have; an address is itself")
    func resolution() async {
        #expect(await ForwardAccess.resolve("127.0.0.1", port: 80) == ["127.0.0.1"])
        #expect(await ForwardAccess.resolve("::1", port: 80) == ["::1"])
        let localhost = await ForwardAccess.resolve("localhost", port: 80)
        #expect(!localhost.isEmpty && localhost.allSatisfy { ForwardAccess.kind(of: $0) == "loopback" }, "\(localhost)")
        #expect(await ForwardAccess.resolve("no-such-host.invalid", port: 80).isEmpty)
    }
}

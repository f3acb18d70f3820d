import NIOCore
import SocketIOClient
import SocketIOProtocol
import TransportTLS

/// A virtual user whose conn was recorded on polling, then the upgrade: siotap's client carries
/// its packets (two HTTP connections, the probe, then a WebSocket), with a task for the session's
/// length, and its packets reach the user's ``UserSession`` on the event loop the session lives on.
final class UpgradingUser: UserTransport, Sendable {
    private let client: SocketIOClient

    init(client: SocketIOClient) {
        self.client = client
    }

    func send(_ packet: SocketPacket) { client.send(packet) }
    func close() { client.close() }

    /// Opens the session, then plays it until it ends; false when no session came of it.
    static func play(client: SocketIOClient, plan: SocketIOClient.TransportPlan, loop: any EventLoop, makeSession: @escaping @Sendable () -> UserSession) async -> Bool {
        do {
            try await client.open(transport: plan)
        } catch {
            client.close()
            return false
        }
        let user = UpgradingUser(client: client)
        let session = try? await loop.submit {
            let session = makeSession()
            session.transport = user
            session.open()
            return NIOLoopBound(session, eventLoop: loop)
        }.get()
        guard let session else { return false }
        for await packet in client.packets {
            loop.execute { session.value.receive(packet) }
        }
        loop.execute { session.value.transportEnded() }
        // The session holds its transport weakly: the user lives until the client's packets end.
        withExtendedLifetime(user) {}
        return true
    }
}

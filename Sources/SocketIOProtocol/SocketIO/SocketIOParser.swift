/// How a session's Socket.IO packets are written: the default JSON text (socket.io-parser), or
/// one msgpack map per packet (socket.io-msgpack-parser, python-socketio's `serializer="msgpack"`).
public enum SocketIOParser: String, Sendable, Hashable, Codable, CaseIterable {
    case json, msgpack
}

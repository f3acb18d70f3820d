public import NIOCore
public import NIOHTTP1
import SocketIOProtocol
import TransportCore
import TransportTLS
import WebSocketTransport
import HTTPClientTransport

/// What a policy keeps of one relayed request between its calls: its own class, handed back to
/// it as it was (the policy casts it back). A class, not an associated type: the relay front is
/// then one concrete type, compiled once for every policy, where a front generic over its policy
/// ran unspecialised in the policy's module (the proxy's), copying its exchanges through value
/// witnesses and looking up generic metadata on every request (`perf`: about 6 % of a polling
/// round trip's CPU).
public typealias HTTPRelayExchange = AnyObject

/// What an ``HTTPServer`` relaying requests as bytes (``HTTPRelayFront``) asks of the
/// application: which requests to relay and where, and what to observe of them. Called on the
/// client connection's event loop, in order; observing comes after the bytes went on.
public protocol HTTPRelayPolicy: Sendable {
    /// Asked before each request is relayed: `false` (the capture is behind) holds the requests
    /// that ``waitsForCapture(_:)`` until `resume` is called; the others go on.
    var admission: ReadGate? { get }
    /// Whether this request waits while ``admission`` says to (it will be recorded).
    func waitsForCapture(_ request: RelayedRequest) -> Bool
    /// Whether this request is relayed as bytes, and where, or gathered whole and answered by the
    /// policy; `nil` hands the connection, from this request on, to the HTTP codec and
    /// ``HTTPServerDelegate/handle(_:)``.
    func route(_ request: RelayedRequest) -> HTTPRelayDecision?
    /// The whole request went upstream; `body` is its body when the route observes bodies.
    func requestForwarded(_ exchange: HTTPRelayExchange, body: ByteBuffer)
    /// The whole answer went to the client; `body` (dechunked) when the route observes bodies,
    /// `truncated` when it was longer than the limit and only its start is here.
    func responseForwarded(_ exchange: HTTPRelayExchange, status: HTTPResponseStatus, headers: [(name: String, value: String)], body: ByteBuffer, truncated: Bool)
    /// No whole answer came from upstream: the answer for the client, when it has had nothing yet
    /// (the connection is closed after it either way).
    func upstreamFailed(_ exchange: HTTPRelayExchange, _ error: HTTPClientError, on loop: any EventLoop) -> EventLoopFuture<HTTPResponse>
    /// The client went away before its answer; the upstream connection was closed with it.
    func clientWentAway(_ exchange: HTTPRelayExchange)
    /// The upstream answered before the request's body had all gone (a server refusing a body
    /// over its limit): `relayed` of the `announced` bytes went. Called before the answer's
    /// ``responseForwarded(_:status:body:truncated:)``.
    func requestCut(_ exchange: HTTPRelayExchange, relayed: Int, announced: Int)
}

extension HTTPRelayPolicy {
    public func requestCut(_ exchange: HTTPRelayExchange, relayed: Int, announced: Int) {}
}

/// What becomes of a request.
public enum HTTPRelayDecision {
    /// Relayed as bytes, as they come.
    case relay(HTTPRelayRoute)
    /// Gathered whole (up to the body limit) and answered by the policy, on the loop: for requests
    /// it decides on before anything goes on (fault injection). `clientClosed` succeeds if the
    /// client goes away before the answer.
    case answer(@Sendable (_ request: HTTPRequest, _ clientClosed: EventLoopFuture<Void>) -> EventLoopFuture<HTTPResponse>)
}

/// Where a relayed request goes.
public struct HTTPRelayRoute {
    public var upstream: ByteRelayPool
    public var exchange: HTTPRelayExchange
    /// Request fields dropped on the way, besides the hop-by-hop ones (names in lower case).
    public var dropping: [String]
    /// Whether bodies are gathered for ``HTTPRelayPolicy/requestForwarded(_:body:)`` and
    /// ``HTTPRelayPolicy/responseForwarded(_:status:body:truncated:)``.
    public var observesBodies: Bool
    /// Whether the answer's header fields are handed to ``HTTPRelayPolicy/responseForwarded(_:status:headers:body:truncated:)``
    /// (a handshake's, a preflight's); the others get none, so a poll's answer costs no strings.
    public var observesAnswerHeaders: Bool
    /// The request target sent upstream instead of the client's (a forward proxy's absolute URI
    /// in origin form); `nil`: as it came.
    public var target: String?

    public init(
        upstream: ByteRelayPool, exchange: HTTPRelayExchange, dropping: [String] = [], observesBodies: Bool, observesAnswerHeaders: Bool = false, target: String? = nil
    ) {
        self.observesAnswerHeaders = observesAnswerHeaders
        self.upstream = upstream
        self.exchange = exchange
        self.dropping = dropping
        self.observesBodies = observesBodies
        self.target = target
    }
}

/// A request's head as the relay read it.
public struct RelayedRequest {
    public let method: HTTPMethod
    /// As the client sent it, or as ``retargeted(_:)`` made it.
    public private(set) var uri: String
    public let remoteAddress: SocketAddress?
    let bytes: [UInt8]
    let head: HTTPFraming.Head

    /// `host:port` of the client (made on demand).
    public var remote: String {
        remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
    }

    /// The same request with another target (an absolute URI in origin form), for a policy that
    /// routes it on to another (a forward proxy's ``HTTPRelayRoute/target``).
    public func retargeted(_ uri: String) -> RelayedRequest {
        var copy = self
        copy.uri = uri
        return copy
    }

    /// The whole head as NIO's type (made on demand: most requests need only the method and URI).
    public var fullHead: HTTPRequestHead {
        var headers = HTTPHeaders()
        bytes.withUnsafeBytes { raw in
            for field in head.fields {
                headers.add(
                    name: String(decoding: UnsafeRawBufferPointer(rebasing: raw[field.name]), as: UTF8.self),
                    value: String(decoding: UnsafeRawBufferPointer(rebasing: raw[field.value]), as: UTF8.self)
                )
            }
        }
        return HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)
    }
}

extension HTTPServerDelegate {
    public var httpRelay: (any HTTPRelayPolicy)? { nil }
}

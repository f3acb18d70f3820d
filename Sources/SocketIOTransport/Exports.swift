// One import for siotap's transport: the server here, and the parts it is made of.
@_exported import HTTPClientTransport
@_exported import TransportCore
@_exported import TransportTLS
@_exported import WebSocketTransport

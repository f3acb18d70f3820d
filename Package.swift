// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "siotap",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "siotap", targets: ["siotap"]),
        .library(name: "SocketIOProtocol", targets: ["SocketIOProtocol"]),
        .library(name: "JWTInspection", targets: ["JWTInspection"]),
        .library(name: "TrafficCapture", targets: ["TrafficCapture"]),
        .library(name: "SocketIOServer", targets: ["SocketIOServer"]),
        .library(name: "SiotapTesting", targets: ["SiotapTesting"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // zlib (the system's), for gzip bodies and permessage-deflate in imported captures.
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
        // siotap load's latencies: HdrHistogram, as the load tools people compare with keep them.
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // Pure codecs: bytes in, values out. No NIO, no I/O.
        .target(name: "SocketIOProtocol"),
        // The only module that imports jwt-kit and swift-crypto.
        .target(
            name: "JWTInspection",
            dependencies: [
                "SocketIOProtocol", "TrafficCapture",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                // RSA signing for minted tokens; jwt-kit builds it anyway.
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]
        ),
        // Records and their file; no crypto: a token's place is found by its text (JWTText).
        .target(name: "TrafficCapture", dependencies: ["SocketIOProtocol"]),
        // From traffic to records, one way for every recorder (the proxy, import, sniff): frames
        // decoded per conn, held, linked across conns and ended alike (ConnectionRecorder).
        .target(name: "TrafficObservation", dependencies: ["SocketIOProtocol", "TrafficCapture"]),
        // X.509: the local CA, the certificates the proxy mints, what upstream certificates say.
        .target(
            name: "TLSCertificates",
            dependencies: [.product(name: "X509", package: "swift-certificates"), .product(name: "Crypto", package: "swift-crypto")]
        ),
        // NIO glue, by role. What every part shares: HTTP messages, framing, socket error text.
        .target(
            name: "TransportCore",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // TLS, served and dialled, and CONNECT tunnels relayed as bytes.
        .target(
            name: "TransportTLS",
            dependencies: [
                "TransportCore", "SocketIOProtocol",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ]
        ),
        // WebSocket: whole messages for a server, the proxy's byte relay, the opening handshake.
        .target(
            name: "WebSocketTransport",
            dependencies: [
                "TransportCore", "SocketIOProtocol",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                // SHA-1 for Sec-WebSocket-Accept: the server reads WebSocket handshakes itself.
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // HTTP clients: requests, WebSocket dials, the kept-alive pool.
        .target(
            name: "HTTPClientTransport",
            dependencies: [
                "TransportCore", "TransportTLS", "WebSocketTransport", "SocketIOProtocol",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // The HTTP/1.1 server (any request may upgrade), HTTP relayed as bytes, tunnels intercepted;
        // and the one import for the parts above.
        .target(
            name: "SocketIOTransport",
            dependencies: [
                "TransportCore", "TransportTLS", "WebSocketTransport", "HTTPClientTransport", "SocketIOProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ]
        ),
        .target(
            name: "SocketIOServer",
            dependencies: [
                "SocketIOProtocol", "SocketIOTransport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The built-in server's apps (docs/demo-apps.md): the seed's chat, with its JWT middleware, and
        // the compliance suites' conformance app. Apart from the server, which needs no JWT library.
        .target(name: "DemoApps", dependencies: ["SocketIOServer", "SocketIOProtocol", "JWTInspection"]),
        .target(
            name: "SocketIOClient",
            dependencies: ["SocketIOProtocol", "SocketIOTransport", .product(name: "NIOHTTP1", package: "swift-nio")]
        ),
        // `--fault`'s rules and what they decide for each packet: pure, shared by the proxy and replay.
        .target(name: "FaultInjection", dependencies: ["SocketIOProtocol", "TrafficCapture"]),
        .target(
            name: "SocketIOProxy",
            dependencies: ["SocketIOProtocol", "SocketIOTransport", "TrafficCapture", "TrafficObservation", "JWTInspection", "TLSCertificates", "FaultInjection",
                           "LiveIntervention",
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                           .product(name: "NIOHTTP1", package: "swift-nio")]
        ),
        .target(name: "TrafficReplay", dependencies: ["TrafficCapture", "TrafficObservation", "SocketIOClient", "JWTInspection", "SocketIOServer", "TransportTLS"]),
        // Captures people already have: TCP reassembly, HTTP and WebSocket streams (zlib through
        // compress-nio for what was compressed), sessions. No I/O.
        .target(
            name: "TrafficImport",
            dependencies: ["SocketIOProtocol", "TrafficCapture", "TrafficObservation", "JWTInspection", .product(name: "CompressNIO", package: "compress-nio"), .product(name: "NIOCore", package: "swift-nio")]
        ),
        // libpcap: pcap and pcapng files, live interfaces, BPF filters. Its header is needed to
        // build (Debian libpcap-dev); the library itself is loaded at run time, by `import` and
        // `sniff` only, so that siotap runs where libpcap is not installed.
        // Diagnoses from records: what went wrong and how to fix it (no I/O).
        .target(name: "TrafficDiagnosis", dependencies: ["TrafficCapture"]),
        .target(name: "LiveIntervention", dependencies: ["SocketIOProtocol", "TrafficCapture"]),
        .target(
            name: "LoadGeneration",
            dependencies: [
                "TrafficReplay", "TrafficCapture", "SocketIOClient", "TransportTLS", "HTTPClientTransport",
                .product(name: "Histogram", package: "hdrhistogram-swift"), .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOWebSocket", package: "swift-nio"),
            ]
        ),
        .target(name: "CPcap", linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]),
        .target(name: "PcapInput", dependencies: ["CPcap", "TrafficImport"]),
        // The web inspector: its page (plain HTML, CSS and JavaScript) and what serves it. The page
        // is compiled into the binary, so that siotap is one file wherever it is copied.
        .target(
            name: "SiotapInspector",
            dependencies: [
                "SocketIOProtocol", "SocketIOTransport", "TrafficCapture", "LiveIntervention",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            resources: [.embedInCode("Assets/index.html"), .embedInCode("Assets/inspector.js"), .embedInCode("Assets/inspector.css")]
        ),
        // For users' tests: replay a fixture against the built-in server in a few lines.
        .target(name: "SiotapTesting", dependencies: ["TrafficReplay", "TrafficCapture", "SocketIOServer", "DemoApps"]),
        .target(
            name: "SiotapCommands",
            dependencies: [
                "SocketIOProtocol", "JWTInspection", "TrafficCapture", "TrafficObservation", "SocketIOTransport", "SocketIOServer", "DemoApps", "SocketIOProxy", "SocketIOClient",
                "TrafficReplay", "TLSCertificates", "TrafficImport", "PcapInput", "SiotapInspector", "FaultInjection", "TrafficDiagnosis", "LiveIntervention", "LoadGeneration",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Benchmarks/codec.sh builds this in release mode; never run by the tests.
        .executableTarget(name: "CodecBenchmark", dependencies: ["SocketIOProtocol", "TrafficCapture", "TrafficObservation"], path: "Benchmarks/CodecBenchmark"),
        .executableTarget(
            name: "siotap",
            dependencies: ["SiotapCommands", "SocketIOTransport", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(name: "SocketIOProtocolTests", dependencies: ["SocketIOProtocol", "PeerSupport"]),
        .testTarget(
            name: "JWTInspectionTests",
            dependencies: [
                "JWTInspection", "PeerSupport",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Helpers the test targets share: where the peers live and how to run them.
        .target(name: "PeerSupport", path: "Tests/PeerSupport"),
        .testTarget(name: "TrafficCaptureTests", dependencies: ["TrafficCapture", "TrafficObservation", "JWTInspection", "PeerSupport"]),
        .testTarget(name: "SocketIOServerTests", dependencies: ["SocketIOServer", "PeerSupport"]),
        .testTarget(
            name: "SocketIOTransportTests",
            dependencies: [
                "SocketIOTransport", "TransportCore", "TransportTLS", "WebSocketTransport", "HTTPClientTransport", "SocketIOProtocol", "TLSCertificates",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"), .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .testTarget(
            name: "SocketIOProxyTests",
            dependencies: ["SocketIOProxy", "SocketIOProtocol", "SocketIOTransport", "TrafficCapture", "TrafficObservation", "FaultInjection",
                           "SocketIOServer", "DemoApps", "SocketIOClient", "LiveIntervention",
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio")]
        ),
        .testTarget(
            name: "SocketIOClientTests",
            dependencies: ["SocketIOClient", "SocketIOServer", "DemoApps", "SocketIOTransport", "SocketIOProtocol", .product(name: "NIOHTTP1", package: "swift-nio")]
        ),
        .testTarget(name: "FaultInjectionTests", dependencies: ["FaultInjection", "TrafficCapture", "SocketIOProtocol"]),
        .testTarget(name: "TrafficObservationTests", dependencies: ["TrafficObservation", "TrafficCapture", "SocketIOProtocol"]),
        .testTarget(name: "TrafficReplayTests", dependencies: ["TrafficReplay", "TrafficCapture", "SocketIOProtocol"]),
        .testTarget(
            name: "SiotapInspectorTests",
            dependencies: ["SiotapInspector", "TrafficCapture", "SocketIOProtocol", "SocketIOTransport",
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio")]
        ),
        .testTarget(name: "PcapInputTests", dependencies: ["PcapInput", "TrafficImport", "TrafficCapture"]),
        .testTarget(name: "TLSCertificatesTests", dependencies: ["TLSCertificates", .product(name: "X509", package: "swift-certificates")]),
        .testTarget(name: "TrafficImportTests", dependencies: ["TrafficImport", "TrafficCapture", "SocketIOProtocol", "JWTInspection", "PeerSupport"]),
        .testTarget(name: "TrafficDiagnosisTests", dependencies: ["TrafficDiagnosis", "TrafficCapture"]),
        .testTarget(name: "LiveInterventionTests", dependencies: ["LiveIntervention", "TrafficCapture", "SocketIOProtocol"]),
        .testTarget(
            name: "LoadGenerationTests",
            dependencies: ["LoadGeneration", "TrafficCapture", "TrafficReplay", "SocketIOProtocol", .product(name: "Histogram", package: "hdrhistogram-swift")]
        ),
        .testTarget(name: "SiotapTestingTests", dependencies: ["SiotapTesting", "SocketIOClient", "TrafficCapture", "PeerSupport"]),
        .testTarget(
            name: "SiotapCommandsTests",
            dependencies: ["SiotapCommands", "TrafficCapture", "TrafficReplay", "JWTInspection", "TLSCertificates", .product(name: "Crypto", package: "swift-crypto")]
        ),
    ]
)

for target in package.targets where target.type != .system {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    target.swiftSettings = settings
}

// scripts/fuzz.sh sets SIOTAP_FUZZ=1 and builds this with -sanitize=fuzzer; libFuzzer supplies main.
if Context.environment["SIOTAP_FUZZ"] == "1" {
    package.targets.append(
        .executableTarget(
            name: "siotap-fuzz",
            dependencies: [
                "SocketIOProtocol", "JWTInspection", "TrafficCapture", "TrafficObservation", "TrafficImport", "TrafficDiagnosis", "LiveIntervention",
                "LoadGeneration",
            ],
            path: "Tests/Fuzz",
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        )
    )
}

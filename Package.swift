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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
    ],
    targets: [
        // Pure codecs: bytes in, values out. No NIO, no I/O.
        .target(name: "SocketIOProtocol"),
        // The only module that imports jwt-kit and swift-crypto.
        .target(
            name: "JWTInspection",
            dependencies: [
                "SocketIOProtocol",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(name: "TrafficCapture", dependencies: ["SocketIOProtocol", "JWTInspection"]),
        .target(
            name: "SiotapCommands",
            dependencies: [
                "SocketIOProtocol", "JWTInspection", "TrafficCapture",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "siotap",
            dependencies: ["SiotapCommands", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(name: "SocketIOProtocolTests", dependencies: ["SocketIOProtocol"]),
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
        .testTarget(name: "TrafficCaptureTests", dependencies: ["TrafficCapture", "PeerSupport"]),
        .testTarget(
            name: "SiotapCommandsTests",
            dependencies: ["SiotapCommands", "TrafficCapture", .product(name: "Crypto", package: "swift-crypto")]
        ),
    ]
)

for target in package.targets {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    target.swiftSettings = settings
}

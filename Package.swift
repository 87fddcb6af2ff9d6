// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "order-search",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "order-write-api", targets: ["order-write-api"]),
        .executable(name: "order-indexer", targets: ["order-indexer"]),
        .executable(name: "order-search-api", targets: ["order-search-api"]),
        .executable(name: "order-admin", targets: ["order-admin"]),
        .executable(name: "order-bench", targets: ["order-bench"]),
        .executable(name: "fault-proxy", targets: ["fault-proxy"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        // C libraries: libpq and libcurl as system libraries, plus typed wrappers
        // for curl's variadic calls (Swift cannot call C variadics).
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .target(name: "CCurlShim", dependencies: ["CCurl"]),
        // glibc allocator tuning (<malloc.h> is not in Swift's Glibc module).
        .target(name: "CAllocator"),

        // Pure domain: no I/O.
        .target(name: "OrderDomain", dependencies: ["JSONSupport"], swiftSettings: swiftSettings),

        // Infrastructure adapters.
        .target(
            name: "LibPQClient",
            dependencies: [
                "CLibPQ", "RetryPolicy",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ElasticsearchClient",
            dependencies: [
                "CCurl", "CCurlShim", "JSONSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(name: "JSONSupport", swiftSettings: swiftSettings),
        // The order index's field paths: one definition for writer, queries, hits, verify and mapping tests.
        .target(name: "IndexSchema", dependencies: ["JSONSupport"], swiftSettings: swiftSettings),
        // The one retry policy (exponential backoff with jitter), for every retry loop.
        .target(name: "RetryPolicy", swiftSettings: swiftSettings),
        // The HMAC-signed tokens both APIs hand out (consistency tokens, cursors) and SHA-256 fingerprints.
        .target(
            name: "TokenSigning",
            dependencies: ["JSONSupport", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // Bearer-token verification (jwt-kit) and the role table.
        .target(
            name: "Security",
            dependencies: [
                "TokenSigning",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // Untrusted input, parsed and validated with bounded work: command bodies and
        // search parameters. Pure (no I/O), so libFuzzer can drive it (order-fuzz).
        .target(name: "RequestParsing", dependencies: ["JSONSupport", "OrderDomain", "TokenSigning", "IndexSchema"], swiftSettings: swiftSettings),

        // Application layer shared by the processes.
        .target(
            name: "OrderStore",
            dependencies: [
                "OrderDomain", "LibPQClient", "JSONSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Migrations")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ServiceSupport",
            dependencies: [
                "Security", "CAllocator",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "OrderWriteAPI",
            dependencies: ["OrderDomain", "OrderStore", "LibPQClient", "ServiceSupport", "JSONSupport", "Security", "RequestParsing",
                           .product(name: "HTTPTypes", package: "swift-http-types"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            resources: [.copy("openapi.json")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ReadModel",
            dependencies: ["OrderDomain", "OrderStore", "LibPQClient", "ElasticsearchClient", "JSONSupport", "RetryPolicy", "IndexSchema",
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "Metrics", package: "swift-metrics")],
            resources: [.copy("mappings")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "OrderIndexer",
            dependencies: ["ReadModel", "OrderDomain", "OrderStore", "LibPQClient", "ElasticsearchClient", "ServiceSupport", "RetryPolicy",
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "OrderSearchAPI",
            dependencies: ["ElasticsearchClient", "ServiceSupport", "JSONSupport", "Security", "RequestParsing", "IndexSchema",
                           .product(name: "HTTPTypes", package: "swift-http-types")],
            resources: [.copy("openapi.json"), .copy("StaffPage")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "OrderAdmin",
            dependencies: ["IndexSchema", "ReadModel", "OrderStore", "LibPQClient", "ElasticsearchClient", "JSONSupport", "RetryPolicy"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "FaultProxy",
            dependencies: [
                "ElasticsearchClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // Thin executables: configuration and wiring only.
        .executableTarget(name: "order-write-api", dependencies: ["OrderWriteAPI", "ServiceSupport"], swiftSettings: swiftSettings),
        .executableTarget(name: "order-indexer", dependencies: ["OrderIndexer", "ServiceSupport"], swiftSettings: swiftSettings),
        .executableTarget(name: "order-search-api", dependencies: ["OrderSearchAPI", "ServiceSupport"], swiftSettings: swiftSettings),
        .executableTarget(
            name: "order-admin",
            dependencies: ["OrderAdmin", "ServiceSupport", "Security", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "OrderBench",
            dependencies: ["ReadModel", "OrderStore", "OrderSearchAPI", "LibPQClient", "ElasticsearchClient", "JSONSupport", "Security",
                           "ServiceSupport", "ServiceTesting", "OrderAdmin", "FaultProxy", .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "Histogram", package: "hdrhistogram-swift")],
            swiftSettings: swiftSettings
        ),
        // Helpers for tests and benchmarks that start servers of their own; no service links it.
        .target(name: "ServiceTesting", swiftSettings: swiftSettings),
        .executableTarget(
            name: "order-bench",
            dependencies: ["OrderBench", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        // libFuzzer entry points (scripts/fuzz builds it with -sanitize=fuzzer,address); without
        // the fuzzer it replays the files it is given.
        .executableTarget(name: "order-fuzz", dependencies: ["RequestParsing", "JSONSupport", "TokenSigning", "OrderDomain"],
                          swiftSettings: swiftSettings),
        .executableTarget(
            name: "fault-proxy",
            dependencies: ["FaultProxy", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),

        // Tests mirror targets; integration tests need the servers started by scripts/test.
        .testTarget(name: "OrderDomainTests", dependencies: ["OrderDomain"], swiftSettings: swiftSettings),
        .testTarget(name: "JSONSupportTests", dependencies: ["JSONSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "ServiceSupportTests",
                    dependencies: ["ServiceSupport", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                                   .product(name: "Logging", package: "swift-log")],
                    swiftSettings: swiftSettings),
        .testTarget(name: "ReadModelTests", dependencies: ["ReadModel", "IndexSchema", "JSONSupport", "OrderDomain"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "ElasticsearchClientTests", dependencies: ["ElasticsearchClient", "JSONSupport", "ServiceTesting",
                                                                     .product(name: "Hummingbird", package: "hummingbird")],
                    swiftSettings: swiftSettings),
        .testTarget(name: "RetryPolicyTests", dependencies: ["RetryPolicy"], swiftSettings: swiftSettings),
        .testTarget(name: "OrderIndexerTests", dependencies: ["OrderIndexer", "ReadModel", "OrderDomain", "JSONSupport", "ElasticsearchClient", "LibPQClient"], swiftSettings: swiftSettings),
        .testTarget(name: "OrderWriteAPITests", dependencies: ["OrderWriteAPI", "OrderStore", "LibPQClient", "RequestParsing", "Security",
                                                               "TokenSigning", "JSONSupport", "ServiceSupport", "ElasticsearchClient"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "OrderSearchAPITests", dependencies: ["OrderSearchAPI", "ElasticsearchClient", "RequestParsing", "TokenSigning",
                                                                "JSONSupport", "Security", "ServiceSupport", "OrderDomain"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "RequestParsingTests", dependencies: ["RequestParsing", "TokenSigning", "JSONSupport"],
                    resources: [.copy("Corpus")], swiftSettings: swiftSettings),
        .testTarget(
            name: "SecurityTests",
            dependencies: ["Security", "TokenSigning", .product(name: "JWTKit", package: "jwt-kit"), .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "CryptoExtras", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["OrderWriteAPI", "OrderIndexer", "OrderSearchAPI", "OrderAdmin", "FaultProxy",
                           "LibPQClient", "ElasticsearchClient", "ServiceSupport", "ServiceTesting", "OrderStore", "ReadModel", "Security",
                           .product(name: "JWTKit", package: "jwt-kit"), .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
    ]
)

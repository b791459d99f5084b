// swift-tools-version:6.0
// The Swift binding of libreactor (Twisted's reactor in Rust, through its C ABI).
// The library is found with pkg-config (`reactor.pc`); see README.md for how to build against a
// private install (SwiftPM drops the .pc file's rpath: pass `-Xlinker -rpath -Xlinker PREFIX/lib`).
import PackageDescription

let package = Package(
    name: "Reactor",
    products: [
        .library(name: "Reactor", targets: ["Reactor"]),
        .executable(name: "demo", targets: ["demo"]),
        .executable(name: "bench", targets: ["bench"]),
    ],
    targets: [
        .systemLibrary(
            name: "CReactor",
            path: "Sources/CReactor",
            pkgConfig: "reactor",
            providers: []
        ),
        .target(
            name: "Reactor",
            dependencies: ["CReactor"],
            path: "Sources/Reactor"
        ),
        .target(
            name: "CReactorBench",
            path: "Sources/CReactorBench"
        ),
        .executableTarget(
            name: "bench",
            dependencies: ["Reactor", "CReactor", "CReactorBench"],
            path: "Examples/bench"
        ),
        .executableTarget(
            name: "demo",
            dependencies: ["Reactor"],
            path: "Examples/demo"
        ),
        .testTarget(
            name: "ReactorTests",
            dependencies: ["Reactor"],
            path: "Tests/ReactorTests"
        ),
    ],
    swiftLanguageModes: [.v6]
)

// swift-tools-version:5.10
// The layout follows docs/ARCHITECTURE.md: the PAM module and the protocol target import
// nothing that can touch a secret; only the helper and the CLI reach the store.
import PackageDescription

let package = Package(
    name: "twostep",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "twostep-helper", targets: ["twostep-helper"]),
        .executable(name: "twostep", targets: ["twostep"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // System libraries from Debian's -dev packages.
        .systemLibrary(name: "CPAM", path: "Sources/CPAM"),
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL"),

        // C: pam_sm_* entry points and wrappers for PAM's variadic calls and posix_spawn.
        .target(name: "PAMShim", dependencies: ["CPAM"],
                linkerSettings: [.linkedLibrary("pam")]),
        // C: libqrencode for the matrix, libpng for the PNG image.
        .target(name: "CQRCode",
                linkerSettings: [.linkedLibrary("qrencode"), .linkedLibrary("png")]),

        // Swift, stdlib only: frames, message types, limits. Shared by module and helper.
        .target(name: "TwoStepProtocol"),
        // The module: a relay, no Foundation, no crypto, no secrets. pam_twostep.so itself is
        // built by the Makefile as Embedded Swift from these same sources (no Swift runtime);
        // SwiftPM builds the target for the unit tests.
        .target(name: "TwoStepPAM", dependencies: ["PAMShim", "TwoStepProtocol"]),

        // OpenSSL, wrapped once.
        .target(name: "TwoStepCrypto", dependencies: ["COpenSSL"]),
        // OTP, Base32, otpauth URIs, backup codes: pure, clock injected.
        .target(name: "TwoStepCore", dependencies: ["TwoStepCrypto"]),
        // Sealed records, keys, locks, atomic writes, config, audit log.
        .target(name: "TwoStepStore", dependencies: ["TwoStepCore", "TwoStepCrypto"]),
        // The helper's decisions and dialogue, as a library so tests can inject a clock.
        .target(name: "CHelperSys"),
        .target(name: "TwoStepHelperKit",
                dependencies: ["TwoStepProtocol", "TwoStepCore", "TwoStepStore", "CQRCode", "CHelperSys", "CPAM"]),
        .executableTarget(name: "twostep-helper", dependencies: ["TwoStepHelperKit"],
                          linkerSettings: [.unsafeFlags(["-static-stdlib"])]),
        .executableTarget(
            name: "twostep",
            dependencies: [
                "TwoStepProtocol", "TwoStepCore", "TwoStepStore", "TwoStepHelperKit", "CQRCode", "CPAM",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        .testTarget(name: "TwoStepCoreTests", dependencies: ["TwoStepCore", "TwoStepCrypto", "TwoStepProtocol"]),
        .testTarget(name: "TwoStepStoreTests", dependencies: ["TwoStepStore", "TwoStepCore", "TwoStepCrypto"]),
        .testTarget(name: "TwoStepHelperTests",
                    dependencies: ["TwoStepHelperKit", "TwoStepStore", "TwoStepCore", "TwoStepProtocol"]),
    ]
)

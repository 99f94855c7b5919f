// swift-tools-version:5.10
// SPDX-License-Identifier: Apache-2.0
// The layout follows docs/ARCHITECTURE.md: the PAM module and the protocol target import
// nothing that can touch a secret; only the helper and the CLI reach the store.
import PackageDescription

let package = Package(
    name: "twostep",
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
        // libpq (libpq-dev): only TwoStepPostgres imports it, never the module.
        .systemLibrary(name: "CLibPQ", path: "Sources/CLibPQ"),
        // zlib (zlib1g-dev): reading the audit log's gzip-compressed rotations.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),

        // C: pam_sm_* entry points and wrappers for PAM's variadic calls and posix_spawn.
        .target(name: "PAMShim", dependencies: ["CPAM"],
                linkerSettings: [.linkedLibrary("pam")]),
        // C: process and socket calls the Glibc overlay lacks (SO_PEERCRED, prctl); no secrets.
        .target(name: "CTwoStepSys"),
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
        // OTP, Base32, otpauth URIs, backup codes, OTPPolicy: pure, clock injected, no I/O.
        .target(name: "TwoStepCore", dependencies: ["TwoStepCrypto"]),
        // The one syscall seam for helper, store and CLI: EINTR retried in one place, process
        // hygiene, frames over a descriptor (the pure codec is TwoStepProtocol's).
        .target(name: "TwoStepSystem", dependencies: ["CTwoStepSys", "TwoStepProtocol"]),
        // Sealed records, keys, locks, atomic writes, config, audit log.
        .target(name: "TwoStepStore", dependencies: ["TwoStepCore", "TwoStepCrypto", "TwoStepSystem", "CZlib"]),
        // store = postgresql: libpq wrapped once, the shared UserStore, its schema, and the
        // factory that reads `store =` for every program.
        .target(name: "TwoStepPostgres", dependencies: ["CLibPQ", "TwoStepStore", "TwoStepCrypto", "TwoStepSystem"]),

        // ---- privilege boundary: everything below reads secrets through a UserStore ----

        // Decisions over a UserStore, linked by the CLI (root's own terminal) and the helper:
        // Verifier and its RateLimiter, the enrolment wizard, self-service commands, the
        // Conversation they speak through (and its one pam_conv bridge).
        .target(name: "TwoStepService",
                dependencies: ["TwoStepProtocol", "TwoStepCore", "TwoStepCrypto", "TwoStepStore",
                               "TwoStepSystem", "CQRCode", "CPAM"]),
        // What only root's twostep-helper runs: the socket server and its workers, the login
        // session, the password check through PAM, the helper's dialogue table.
        .target(name: "TwoStepServer",
                dependencies: ["TwoStepService", "TwoStepProtocol", "TwoStepCore", "TwoStepCrypto", "TwoStepStore",
                               "TwoStepPostgres", "TwoStepSystem", "CTwoStepSys", "CPAM"]),
        .executableTarget(name: "twostep-helper",
                          dependencies: ["TwoStepServer", "TwoStepStore", "TwoStepSystem"],
                          linkerSettings: [.unsafeFlags(["-static-stdlib"])]),
        .executableTarget(
            name: "twostep",
            dependencies: [
                "TwoStepProtocol", "TwoStepCore", "TwoStepCrypto", "TwoStepStore", "TwoStepPostgres",
                "TwoStepService", "TwoStepSystem", "CTwoStepSys", "CPAM",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        .testTarget(name: "TwoStepCoreTests", dependencies: ["TwoStepCore", "TwoStepCrypto", "TwoStepProtocol"]),
        .testTarget(name: "TwoStepStoreTests", dependencies: ["TwoStepStore", "TwoStepCore", "TwoStepCrypto"]),
        .testTarget(name: "TwoStepServiceTests",
                    dependencies: ["TwoStepService", "TwoStepStore", "TwoStepCore", "TwoStepCrypto", "TwoStepProtocol"]),
        .testTarget(name: "TwoStepProtocolTests", dependencies: ["TwoStepProtocol"]),
        .testTarget(name: "TwoStepPAMTests", dependencies: ["TwoStepPAM", "TwoStepProtocol", "PAMShim"]),
    ]
)

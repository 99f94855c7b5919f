// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Glibc
import TwoStepCrypto
import TwoStepService
import TwoStepStore
import TwoStepSystem

/// A passphrase typed on the terminal without echo (read from standard input when it is
/// not a terminal, for scripts and tests); never from argv.
func readPassphrase(_ prompt: String) throws -> [UInt8] {
    guard let answer = readAnswer(prompt: prompt, echo: false), answer.count > 0 else {
        throw CLIError("no passphrase given")
    }
    return answer.withBytes { $0 }
}

extension Admin {
    struct ExportKey: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export-key",
            abstract: "Seal every master key under a passphrase, for another host of the fleet.",
            discussion: """
            Asks for a passphrase twice (on the terminal, without echo; or two lines on standard \
            input when it is not a terminal) and writes the bundle to --output (0600) or standard \
            output. Carry it to the new host and run `twostep admin import-key FILE` there.
            """)
        @Option(help: "Write the bundle to this file (created 0600) instead of standard output.") var output: String?
        @OptionGroup var options: ConfigOptions

        func run() throws {
            let config = try options.load()
            guard geteuid() == 0 else { throw CLIError("admin export-key needs root") }
            guard KeyRing.environmentValue() == nil else {
                throw CLIError("\(KeyRing.environmentVariable) is set: that key is managed where it is set; export-key reads key_dir")
            }
            var first = try readPassphrase("New passphrase for the key bundle: ")
            defer { Crypto.wipe(&first) }
            var second = try readPassphrase("The same passphrase again: ")
            defer { Crypto.wipe(&second) }
            guard Crypto.constantTimeEqual(first, second) else { throw CLIError("the passphrases differ; nothing exported") }
            let ring = try withCLIErrors { try KeyRing(keyDir: config.keyDir, environment: nil) }
            let bundle = try withCLIErrors { try KeyBundle.export(ring, passphrase: first) }
            if let output {
                let fd = open(output, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
                guard fd >= 0 else { throw CLIError("\(output): \(String(cString: strerror(errno)))") }
                defer { close(fd) }
                let bytes = Array(bundle.utf8)
                guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
                    throw CLIError("\(output): write failed")
                }
                writeStderr("twostep: key bundle written to \(output)\n")
            } else {
                writeStdout(bundle)
            }
            AuditLog(path: config.auditLog).record(AuditEvent(event: "admin_export_key", user: "-", service: "twostep",
                                                              result: "success", detail: "by \(actingAdmin())"))
        }
    }

    struct ImportKey: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import-key",
            abstract: "Install the master keys from a bundle made by `twostep admin export-key`.",
            discussion: """
            Asks for the bundle's passphrase (on the terminal, or one line on standard input). \
            Keys this host lacks are written to key_dir (0400); the bundle's active key becomes \
            active here, so this host seals records as the rest of the fleet does.
            """)
        @Argument(help: "The bundle file.") var bundle: String
        @OptionGroup var options: ConfigOptions

        func run() throws {
            let config = try options.load()
            guard geteuid() == 0 else { throw CLIError("admin import-key needs root") }
            let fd = open(bundle, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw CLIError("\(bundle): \(String(cString: strerror(errno)))") }
            let text = try withCLIErrors { () throws -> String in
                defer { close(fd) }
                return String(decoding: try Files.readAll(fd: fd, path: bundle, limit: 64 * 1024), as: UTF8.self)
            }
            var passphrase = try readPassphrase("Passphrase of the key bundle: ")
            defer { Crypto.wipe(&passphrase) }
            let keys = try withCLIErrors { try KeyBundle.open(text, passphrase: passphrase) }
            let ring = try withCLIErrors { try KeyRing(keyDir: config.keyDir, environment: nil) }
            let added = try withCLIErrors { try ring.install(keys) }
            print("twostep: \(keys.keys.count) key(s) in the bundle, \(added.count) new here; active key \(keys.active)")
            AuditLog(path: config.auditLog).record(AuditEvent(event: "admin_import_key", user: "-", service: "twostep",
                                                              result: "success", detail: "active \(keys.active) by \(actingAdmin())"))
        }
    }
}

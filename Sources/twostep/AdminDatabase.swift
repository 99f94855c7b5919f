// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Glibc
import TwoStepService
import TwoStepPostgres
import TwoStepStore
import TwoStepSystem

/// The database to act on: the config's `database` and `database_password_file`, unless
/// given here (to set up or fill a database before the config names it).
struct DatabaseOptions: ParsableArguments {
    @Option(name: .customLong("database"), help: "libpq URI or connection string (default: `database` from the config); never a password.")
    var uri: String?
    @Option(name: .customLong("database-password-file"), help: "Root-only file holding the password alone on one line (default: `database_password_file`).")
    var passwordFile: String?

    func database(_ config: Config) throws -> PostgresDatabase {
        guard let conninfo = uri ?? config.database else {
            throw CLIError("no database: give --database URI or set `database` in \(config.path)")
        }
        guard !Config.connectionStringHasPassword(conninfo) else {
            throw CLIError("--database must not hold a password: use --database-password-file")
        }
        return PostgresDatabase(conninfo: conninfo, passwordFile: passwordFile ?? config.databasePasswordFile)
    }
}

extension Admin {
    struct DB: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "db",
            abstract: "Set up and check the PostgreSQL database behind `store = postgresql`.",
            subcommands: [DBMigrate.self, DBStatus.self])
    }

    struct DBMigrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "migrate",
            abstract: "Create twostep's tables, or apply the migrations this twostep needs (also `db init`).",
            discussion: "Versioned (table twostep_schema), one transaction, an advisory lock against two hosts at once; running it again changes nothing.",
            aliases: ["init"])
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var options: ConfigOptions

        func run() throws {
            let config = try options.load()
            guard geteuid() == 0 else { throw CLIError("admin db migrate needs root") }
            let db = try database.database(config)
            let (from, to) = try withCLIErrors { try PostgresSchema.migrate(db) }
            if from == to {
                print("twostep: database schema already at version \(to); nothing to do")
            } else {
                print("twostep: database schema at version \(to) (was \(from == 0 ? "empty" : "version \(from)"))")
            }
        }
    }

    struct DBStatus: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "Check the database: reachable, schema version, TLS in use, clock difference with this host.")
        @OptionGroup var database: DatabaseOptions
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var options: ConfigOptions

        func run() throws {
            let config = try options.load()
            guard geteuid() == 0 else { throw CLIError("admin db status needs root") }
            let db = try database.database(config)
            let c = try withCLIErrors { try db.connected(checkSchema: false) }
            let version = try withCLIErrors { try PostgresSchema.currentVersion(c) }
            let serverTime = try withCLIErrors {
                try c.exec("SELECT extract(epoch FROM clock_timestamp())::bigint").int(0, 0) ?? 0
            }
            let skew = serverTime - Int64(time(nil))
            let users = version > 0 ? (try? db.run { try $0.exec("SELECT count(*) FROM twostep_users WHERE record IS NOT NULL").int(0, 0) }) ?? nil : nil
            // TLS that does not check the server's certificate and name (sslmode other than
            // verify-full) lets anyone on the path read and answer the store's queries.
            let verified = c.usesTLS && c.sslMode == "verify-full"
            let ok = version == Int64(PostgresSchema.version) && verified && abs(skew) < 5
            let info: [String: Any] = ["reachable": true, "schema_version": Int(version),
                                       "schema_expected": PostgresSchema.version, "tls": c.usesTLS,
                                       "sslmode": c.sslMode, "tls_verified": verified,
                                       "clock_difference_seconds": Int(skew), "enrolled_users": Int(users ?? 0), "ok": ok]
            if json {
                try printJSON(info)
            } else {
                print("database: reachable")
                print("schema: version \(version) (this twostep needs \(PostgresSchema.version))")
                print("tls: " + (verified ? "in use, server certificate and name verified (sslmode=verify-full)"
                                 : c.usesTLS ? "in use but the server is NOT verified (sslmode=\(c.sslMode)): use sslmode=verify-full"
                                 : "NOT in use: add sslmode=verify-full to the URI"))
                print("clock difference with this host: \(skew) s\(abs(skew) >= 5 ? " (too large: codes depend on time)" : "")")
                if let users { print("enrolled users: \(users)") }
            }
            if !ok { throw ExitCode(1) }
        }
    }

    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy every record and state from this config's store to the other kind of store.",
            discussion: """
            The config's `store =` names the source. With --to postgresql the destination is \
            --database URI (default: the config's `database`), whose schema must exist (`twostep \
            admin db init --database URI`); with --to files it is --state-dir DIR (default: the \
            config's `state_dir`). Sealed records are copied byte for byte and opened with this \
            host's keys before they count; a user already identical in the destination is left \
            alone, so running it twice changes nothing. A user the destination holds with other \
            contents, or removed there after the copy was made (`admin reset` leaves a tombstone), \
            is left as it is unless --overwrite: give it only while no host uses the \
            destination yet (a copy made again after hosts use it would put back spent backup \
            codes, used codes and lockouts); a user it overwrites whose record there was of a later \
            generation is named in a warning (exit status 1). Users enrolled only in the destination are named; \
            they keep their enrolment there. For --to files, use a new --state-dir. Afterwards, \
            change `store =` on every host. On a terminal it shows progress; Ctrl-C stops \
            between users (exit status 130): each user is copied whole or not at all, and \
            running the same command again copies the rest.
            """)
        @Option(help: "postgresql or files: the kind of store to copy into.") var to: String
        @OptionGroup var database: DatabaseOptions
        @Option(name: .customLong("state-dir"), help: "Destination directory for --to files (default: `state_dir`).")
        var stateDir: String?
        @Flag(help: "Replace users the destination holds with other contents (only before any host uses it).")
        var overwrite = false
        @Flag(help: "Print a JSON report.") var json = false
        @OptionGroup var options: ConfigOptions

        func validate() throws {
            guard Config.StoreKind(rawValue: to) != nil else { throw ValidationError("--to must be postgresql or files") }
            if let d = stateDir, !d.hasPrefix("/") { throw ValidationError("--state-dir must be an absolute path") }
        }

        func run() throws {
            let ctx = try LocalStore(options)
            try ctx.requireRoot("admin migrate")
            let kind = Config.StoreKind(rawValue: to)!
            guard kind != ctx.config.store else {
                throw CLIError("\(ctx.config.path) already says store = \(to); --to names the other kind of store")
            }
            let keys = try withCLIErrors { try KeyRing(keyDir: ctx.config.keyDir) }
            let destination: UserStore & SealedRecordAccess
            let where_: String
            switch kind {
            case .postgresql:
                let db = try database.database(ctx.config)
                _ = try withCLIErrors { try db.connected() }
                destination = PostgresUserStore(database: db, keys: keys)
                where_ = db.conninfo
            case .files:
                let dir = stateDir ?? ctx.config.stateDir
                try withCLIErrors { try Files.makeDirectory(dir, mode: 0o700) }
                destination = FileUserStore(directory: dir, keys: keys)
                where_ = dir
            }
            // Progress on a terminal; Ctrl-C (or SIGTERM) ends the run between users: each is
            // copied whole or not at all, and running the command again finishes the job.
            var bar: Progress?
            Interrupt.catchSignals()
            let report = try withCLIErrors {
                try StoreCopy.copy(from: ctx.store, to: destination, keys: keys, overwrite: overwrite,
                                   begin: { if !json { bar = Progress(total: $0, verb: "checked", noun: "user(s)") } },
                                   stop: { Interrupt.requested != nil }) { user, outcome in
                    if case .failed(let reason) = outcome {
                        let line = "twostep: \(displaySafe(user)): failed: \(reason)\n"
                        if let bar { bar.interrupt(line) } else if !json { writeStderr(line) }
                    }
                    if case .failed = outcome { bar?.step(failed: true) } else { bar?.step() }
                }
            }
            bar?.finish()
            let complete = report.failed.isEmpty && report.differing.isEmpty && report.onlyInDestination.isEmpty
                && report.notReached == 0 && report.lowered.isEmpty && report.unnamed.isEmpty
            let summary = "\(report.copied.count) copied, \(report.unchanged.count) unchanged, " +
                "\(report.differing.count) different in the destination and left as they are, " +
                "\(report.onlyInDestination.count) only in the destination, \(report.failed.count) failed" +
                (report.unnamed.isEmpty ? "" : ", \(report.unnamed.count) record(s) with no user name not copied") +
                (report.notReached > 0 ? ", \(report.notReached) not reached (interrupted)" : "")
            ctx.audit.record(AuditEvent(event: "admin_migrate", user: "-", service: "twostep",
                                        result: complete ? "success" : "failure",
                                        detail: "\(ctx.config.store.rawValue) -> \(to): \(summary), by \(actingAdmin())"))
            if json {
                try printJSON(["to": to, "destination": where_, "copied": report.copied.count,
                               "unchanged": report.unchanged.count, "differing": report.differing,
                               "only_in_destination": report.onlyInDestination,
                               "failed": report.failed.map { ["user": $0.user, "error": $0.reason] },
                               "overwritten_newer": report.lowered.map { ["user": $0.user, "destination_generation": Int($0.from),
                                                                           "copied_generation": Int($0.to)] },
                               "not_reached": report.notReached, "unnamed_records": report.unnamed])
            } else {
                print("twostep: \(ctx.config.store.rawValue) -> \(to) (\(where_)): \(summary); every copy opened and verified")
                if !report.differing.isEmpty {
                    print("twostep: not overwritten (the destination's copy may be newer, or the user was removed " +
                          "there since): " + report.differing.map(displaySafe).joined(separator: ", ") +
                          ". If no host uses the destination yet, run again with --overwrite (it also brings back " +
                          "an enrolment removed there).")
                }
                if !report.lowered.isEmpty {
                    print("twostep: warning: overwritten although the destination's record (or its removal) was newer: " +
                          report.lowered.map { "\(displaySafe($0.user)) (generation \($0.from) there, \($0.to) copied)" }
                              .joined(separator: ", ") +
                          ". Right if those users were reset and enrolled again in the source; otherwise the " +
                          "destination's newer record is gone and codes spent there may pass again: give them new " +
                          "backup codes (`twostep admin backup-codes USER`) and check their authenticators.")
                }
                if !report.unnamed.isEmpty {
                    print("twostep: not copied: record(s) no user name leads to (a hashed file name whose .name file " +
                          "is missing): " + report.unnamed.map(displaySafe).joined(separator: ", ") +
                          ". `twostep admin rotate-key --status` lists them by key; enrol those users again in the destination.")
                }
                if !report.onlyInDestination.isEmpty {
                    print("twostep: enrolled only in the destination (removed from the source since?), left there: " +
                          report.onlyInDestination.map(displaySafe).joined(separator: ", ") +
                          ". They keep that enrolment once the destination is in use; `twostep admin reset USER` there removes one.")
                }
            }
            if report.notReached > 0 {
                if !json {
                    print("twostep: interrupted: \(report.notReached) user(s) not reached; every user copied so far is whole. " +
                          "Run the same command again to finish (users already copied are left as they are).")
                }
                throw ExitCode(Interrupt.exitStatus(Interrupt.requested ?? SIGINT))
            }
            if !complete { throw ExitCode(1) }
        }
    }
}

// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Glibc
import TwoStepCore
import TwoStepPostgres
import TwoStepProtocol
import TwoStepService
import TwoStepStore
import TwoStepSystem

/// `twostep doctor`: checks an installation and explains each finding in a line.
struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check this host's twostep installation (root): clock, config, keys, store, enrolments without an account, helpers, login socket, PAM, sshd.",
        discussion: """
        Each line is `ok`, `warn` or `fail` with an explanation. The exit status is 1 when \
        any line is `fail`. The clock is read from the kernel (adjtimex): unsynchronised is a \
        warning, an estimated error beyond 30 s a failure (codes would not match).
        """)
    @Flag(help: "Print the findings as JSON.") var json = false
    @Option(help: "The helper the PAM module spawns when no running helper answers (its helper=); twostep-helper beside it is checked too.")
    var helper = "/usr/libexec/twostep/twostep-verify"
    @Option(help: "The running helper's socket the PAM module asks first (its socket=).")
    var loginSocket = "/run/twostep/verify.sock"
    @Option(help: "The PAM configuration directory to scan.") var pamDir = "/etc/pam.d"
    @Option(help: "sshd's configuration file.") var sshdConfig = "/etc/ssh/sshd_config"
    @OptionGroup var options: ConfigOptions

    func run() throws {
        guard geteuid() == 0 else { throw CLIError("doctor needs root (it reads the key and state directories)") }
        var report = DoctorReport()
        report.clock()
        let config = report.config(path: options.config)
        report.requiredGroups(config)
        report.directories(config)
        report.auditLog(config)
        report.database(config)
        report.masterKey(config)
        report.keyFiles(config)
        report.enrolmentsWithoutAccounts(config)
        report.helper(path: helper)
        // twostep-verify hands what it does not do itself (enrolment at first login, a
        // database store) to twostep-helper beside it, which also serves the sockets.
        let dir = helper.lastIndex(of: "/").map { String(helper[..<$0]) } ?? "."
        if dir + "/twostep-helper" != helper { report.helper(path: dir + "/twostep-helper") }
        report.loginSocket(path: loginSocket, spawned: helper)
        report.pamStacks(dir: pamDir, passwordService: config?.passwordService ?? "twostep")
        report.sshd(path: sshdConfig)
        if json {
            try printJSON(["ok": !report.failed, "checks": report.lines.map {
                ["check": $0.check, "result": $0.level.rawValue, "detail": $0.detail] as [String: Any]
            }])
        } else {
            for l in report.lines { print("\(l.level.rawValue.padding(4)) \(l.check): \(l.detail)") }
        }
        if report.failed { throw ExitCode(1) }
    }
}

struct DoctorLine {
    enum Level: String { case ok, warn, fail }
    let check: String
    let level: Level
    let detail: String
}

struct DoctorReport {
    var lines: [DoctorLine] = []
    var failed: Bool { lines.contains { $0.level == .fail } }

    mutating func add(_ check: String, _ level: DoctorLine.Level, _ detail: String) {
        lines.append(DoctorLine(check: check, level: level, detail: detail))
    }

    /// adjtimex through ClockHealth (the decision, tested with injected values), then the
    /// time service that keeps it.
    mutating func clock() {
        if let status = Sys.clockStatus() {
            let seconds = Double(status.maxErrorMicroseconds) / 1_000_000
            switch ClockHealth.assess(unsynchronised: status.unsynchronised, maxErrorMicroseconds: status.maxErrorMicroseconds) {
            case .synchronised:
                add("clock", .ok, "synchronised (estimated error at most \(rounded(seconds)) s)")
            case .unsynchronised:
                add("clock", .warn, "not synchronised by a time service: codes work only while the clock stays " +
                    "right (within 30 s of the phones'); enable systemd-timesyncd or chrony")
            case .tooFarOff(let s):
                add("clock", .fail, "estimated error \(s) s exceeds 30 s: codes from phones will not match")
            }
        } else {
            add("clock", .warn, "adjtimex failed: \(Sys.describe(errno))")
        }
        let services = runningTimeServices()
        if services.isEmpty {
            add("time service", .warn, "none running (looked for systemd-timesyncd, chronyd, ntpd, ntpd-rs, openntpd)")
        } else {
            add("time service", .ok, services.joined(separator: ", ") + " running")
        }
    }

    /// Time daemons by their process name (/proc/PID/comm, at most 15 bytes).
    func runningTimeServices() -> [String] {
        let known = ["systemd-timesyn": "systemd-timesyncd", "chronyd": "chronyd", "ntpd": "ntpd",
                     "ntp-daemon": "ntpd-rs", "openntpd": "openntpd"]
        var found = Set<String>()
        guard let dir = opendir("/proc") else { return [] }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.allSatisfy(\.isNumber), let comm = readSmallFile("/proc/\(name)/comm") else { continue }
            if let service = known[comm.trimmingCharacters()] { found.insert(service) }
        }
        return found.sorted()
    }

    mutating func config(path: String) -> Config? {
        do {
            let c = try Config.load(path: path)
            add("config", .ok, "\(path) parses")
            if c.lockoutMaxRaised {
                add("config", .warn, "lockout (\(c.lockout) s) is longer than lockout_max (the default 1d when it is " +
                    "not set), so lockouts last \(c.lockout) s and do not grow; set lockout_max at least as long")
            }
            return c
        } catch {
            add("config", .fail, "\(error)")
            return nil
        }
    }

    /// `require = GROUPS`: a group no source knows (a misspelling) makes every user who is
    /// not enrolled log in without a code, since nobody is in it.
    mutating func requiredGroups(_ config: Config?) {
        if let config, config.enroll == .prompt, config.require == nil {
            add("enrolment", .warn, "`enroll = prompt` without `require`: nobody is required to enrol, so no login " +
                "runs the wizard (set `require = all` or `require = GROUPS`)")
        }
        guard let config, case .groups(let groups) = config.require else { return }
        let missing = groups.filter { getgrnam($0) == nil }
        if missing.isEmpty {
            add("required groups", .ok, groups.joined(separator: ", ") + " exist")
        } else {
            add("required groups", .fail, "`require` names group(s) that do not exist: \(missing.joined(separator: ", ")); " +
                "users in no listed group who are not enrolled log in without a code")
        }
    }

    /// `audit_log`: what `admin audit` would warn about (not a regular file, writable by
    /// others, missing).
    mutating func auditLog(_ config: Config?) {
        guard let config, let path = config.auditLog else { return }
        let problems = AuditReader.warnings(for: path)
        if problems.isEmpty {
            add("audit log", .ok, "\(path) is a regular file only root can write")
        } else {
            for p in problems { add("audit log", .warn, p) }
        }
    }

    mutating func directories(_ config: Config?) {
        guard let config else {
            add("directories", .fail, "not checked: the config does not parse")
            return
        }
        var dirs = [("key directory", config.keyDir)]
        if config.store == .files { dirs.append(("state directory", config.stateDir)) }
        for (what, path) in dirs {
            do {
                let fd = try Files.openPrivateDirectory(path)
                close(fd)
                add(what, .ok, "\(path) exists, owned by root, mode 0700 or stricter")
            } catch {
                var st = stat()
                let missing = stat(path, &st) != 0 && errno == ENOENT
                add(what, .fail, "\(error)" + (!missing ? "" : what == "key directory"
                    ? " (lost keys: restore \(path) from a backup or `twostep admin import-key BUNDLE`; " +
                      "`twostep admin init` makes a new key only for a store with no records)"
                    : " (a new host: `twostep admin init`; otherwise restore it from a backup)"))
            }
        }
    }

    /// `store = postgresql`: whether the connection's TLS checks the server. Whoever can
    /// answer in the database's place can write every enrolment (switch users to "not
    /// enrolled", put spent codes back), so over a network only `sslmode=verify-full` is
    /// safe; a login itself does not warn.
    mutating func database(_ config: Config?) {
        guard let config, config.store == .postgresql else { return }
        do {
            let c = try PostgresDatabase.shared(for: config).connected(checkSchema: false)
            if c.viaUnixSocket {
                add("database", .ok, "reached over a local Unix socket")
            } else if c.usesTLS && c.sslMode == "verify-full" {
                add("database", .ok, "TLS, server certificate and name verified (sslmode=verify-full)")
            } else {
                add("database", .warn, (c.usesTLS ? "TLS without checking the server (sslmode=\(c.sslMode))" : "no TLS") +
                    ": anyone on the network path can read and change enrolments; add sslmode=verify-full " +
                    "(and sslrootcert) to `database`")
            }
        } catch {
            add("database", .fail, "\(error)")
        }
    }

    /// Opens records with the keys present, trying a few users: one record that cannot be
    /// opened (damaged, another key) is that user's problem, not the master key's.
    mutating func masterKey(_ config: Config?) {
        guard let config else { return }
        do {
            let ring = try KeyRing(keyDir: config.keyDir)
            let active = try ring.activeKey()
            let store = try UserStores.open(config)
            var problems: [String] = []
            for user in try store.enrolledUsers().prefix(Self.recordsTried) {
                do {
                    guard let sealed = try store.sealedRecord(user) else { throw StoreError.notEnrolled(user) }
                    let id = try SealedRecord.keyID(of: sealed, path: user)
                    _ = try store.loadRecord(user)
                    if id == active.id {
                        add("master key", .ok, "active key \(active.id) opens \(user)'s record")
                    } else {
                        add("master key", .warn, "\(user)'s record opens but is sealed with key \(id), not the active " +
                            "\(active.id): finish `twostep admin rotate-key`")
                    }
                    if !problems.isEmpty {
                        add("records", .warn, "cannot be opened: \(problems.joined(separator: "; ")) (`twostep admin show USER`)")
                    }
                    return
                } catch {
                    problems.append("\(user): \(error)")
                }
            }
            if problems.isEmpty {
                add("master key", .ok, "active key \(active.id) present; no record to open yet")
            } else {
                add("master key", .fail, "none of \(problems.count) record(s) tried opens: \(problems.joined(separator: "; "))")
            }
        } catch StoreError.badKey(let why) {
            add("master key", .fail, why)   // the check's name already says "master key"
        } catch {
            add("master key", .fail, "\(error)")
        }
    }

    /// Every `<id>.key` in key_dir, not only the active one (`KeyRing.damagedKeyFiles`).
    mutating func keyFiles(_ config: Config?) {
        guard let config, let ring = try? KeyRing(keyDir: config.keyDir, environment: nil) else { return }
        let ids: [String]
        do { ids = try ring.keyIDs() } catch {
            add("key files", .fail, "not checked: \(error)")
            return
        }
        let bad = ring.damagedKeyFiles(ids).sorted(by: { $0.key < $1.key }).map { "\($0.key): \($0.value)" }
        if bad.isEmpty {
            add("key files", .ok, "\(ids.count) key file(s) in \(config.keyDir) each match their id")
        } else {
            add("key files", .fail, "cannot be used: \(bad.joined(separator: "; ")); records sealed with such a key " +
                "cannot be opened (restore the file from a backup or `twostep admin import-key BUNDLE`)")
        }
    }

    /// Enrolments whose user no account has. A record belongs to a name, not a uid: once
    /// the account is deleted, whoever is later given the name meets its enrolment (asked
    /// for the old owner's codes; the old owner's phone and backup codes a second factor
    /// for them). Names compared as bytes, as NSS compares them (AccountIndex).
    mutating func enrolmentsWithoutAccounts(_ config: Config?) {
        guard let config else { return }
        let users: [String]
        do { users = try UserStores.open(config).enrolledUsers() } catch {
            add("enrolments", .warn, "not checked: \(error)")
            return
        }
        let accounts = AccountIndex()
        // Each name the index does not list is looked up (once), to tell "no such account"
        // from a user database that did not answer (a directory down: no advice to reset).
        var orphans: [String] = [], unanswered: [String] = []
        for user in users where accounts.lists(user) != true || !isValidUserName(user) {
            switch lookUpAccount(user) {
            case .found: break
            case .unknown: orphans.append(user)
            case .failed: unanswered.append(user)
            }
        }
        orphans.sort()
        if !unanswered.isEmpty {
            add("enrolments", .warn, "\(unanswered.count) enrolled user(s) could not be looked up (the user database " +
                "did not answer), e.g. \(jsonString(unanswered.min()!)); run doctor again when it does")
        }
        guard !orphans.isEmpty else {
            if unanswered.isEmpty { add("enrolments", .ok, "each of \(users.count) enrolled user(s) has an account") }
            return
        }
        let shown = orphans.prefix(Self.namesShown).map { jsonString($0) }.joined(separator: ", ")
        let more = orphans.count > Self.namesShown ? " and \(orphans.count - Self.namesShown) more" : ""
        add("enrolments", .warn, "\(orphans.count) of \(users.count) enrolled user(s) have no account on this host: " +
            "\(shown)\(more). An enrolment outlives its account and goes with the name: if the account is gone " +
            "for good, `twostep admin reset USER` before the name is given to someone else")
    }

    /// Names `enrolmentsWithoutAccounts` lists before it counts the rest.
    static let namesShown = 5

    /// Records `masterKey` tries before it calls the key unusable.
    static let recordsTried = 5

    mutating func helper(path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else {
            add("helper", .fail, "\(path): \(Sys.describe(errno)) (pam_twostep.so cannot start it)")
            return
        }
        if st.st_mode & S_IFMT != S_IFREG {
            add("helper", .fail, "\(path) is not a regular file")
        } else if st.st_mode & 0o111 == 0 {
            add("helper", .fail, "\(path) is not executable")
        } else if st.st_uid != 0 || st.st_mode & 0o022 != 0 {
            add("helper", .fail, "\(path) may be changed by others (owner uid \(st.st_uid), mode " +
                String(st.st_mode & 0o7777, radix: 8) + "): it runs as root at every login")
        } else {
            add("helper", .ok, "\(path) installed, executable, writable only by root")
        }
    }

    /// The module's first choice: a root-owned socket whose listener is root's. Checked as
    /// the module checks it: a connection to the path as this host sees it, and the
    /// listener's uid from SO_PEERCRED (a worker of the helper is woken and goes back to
    /// waiting). A socket-activated unit answers for its service here even before the
    /// service has started; the module then waits at most 2 s for it before spawning.
    mutating func loginSocket(path: String, spawned: String) {
        let fallback = "every login spawns \(spawned), several times slower than asking a running helper"
        var st = stat()
        guard lstat(path, &st) == 0 else {
            add("login socket", .warn, "nothing at \(path): \(fallback); start it with " +
                "`systemctl enable --now twostep-helperd.socket` (or `twostep-helper serve --socket \(path)`)")
            return
        }
        guard st.st_mode & S_IFMT == S_IFSOCK else {
            add("login socket", .warn, "\(path) is not a socket: the module does not use it; \(fallback)")
            return
        }
        guard st.st_uid == 0 else {
            add("login socket", .warn, "\(path) belongs to uid \(st.st_uid), not root: the module does not trust it; \(fallback)")
            return
        }
        switch connectUnixSocket(path) {
        case .failure(let e):
            add("login socket", .warn, "\(path) exists but nothing listens on it (\(Sys.describe(e.code))): \(fallback)")
        case .success(let fd):
            let uid = peerUID(fd)
            close(fd)
            if uid == 0 {
                add("login socket", .ok, "\(path): root's, listening: logins ask the running helper")
            } else {
                add("login socket", .warn, "\(path) is answered by " + (uid.map { "uid \($0)" } ?? "an unknown process") +
                    ", not root: the module does not trust it; \(fallback)")
            }
        }
    }

    /// Where libpam looks for a module named without a path (Debian's multiarch directory
    /// first).
    static let moduleDirectories: [String] = {
        // The multiarch triplet is not always machine-linux-gnu (armhf: arm-linux-gnueabihf):
        // every /lib/*-linux-*/security and /usr/lib/*-linux-*/security there is.
        var dirs: [String] = []
        for top in ["/lib", "/usr/lib"] {
            guard let d = opendir(top) else { continue }
            while let entry = readdir(d) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard name.contains("-linux-") else { continue }
                var st = stat()
                let dir = top + "/" + name + "/security"
                if stat(dir, &st) == 0, st.st_mode & S_IFMT == S_IFDIR { dirs.append(dir) }
            }
            closedir(d)
        }
        return dirs.sorted() + ["/lib/security", "/usr/lib/security"]
    }()

    /// A pam.d line without its comment: libpam ends a line at `#`.
    static func withoutComment(_ line: String) -> Substring {
        line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
    }

    /// Why a stack line naming pam_twostep.so refuses every login, or nil: the module file
    /// libpam would load is not there, an argument the module's own parser refuses (the
    /// module then answers PAM_SERVICE_ERR), or a helper= (or the default helper) that
    /// cannot be run.
    static func moduleLineProblem(_ line: String) -> String? {
        let words = withoutComment(line).split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let i = words.firstIndex(where: { $0 == "pam_twostep.so" || $0.hasSuffix("/pam_twostep.so") }) else { return nil }
        let module = words[i]
        let found = module.hasPrefix("/") ? (access(module, R_OK) == 0) :
            moduleDirectories.contains { access($0 + "/" + module, R_OK) == 0 }
        // `-auth ...`: libpam skips a module it cannot find on such a line, quietly.
        let optional = words.first?.hasPrefix("-") ?? false
        guard found || optional else {
            return module.hasPrefix("/") ? "\(module) does not exist: libpam refuses this stack"
                : "no \(module) in \(moduleDirectories.joined(separator: ", ")): libpam refuses this stack"
        }
        if !found { return nil }
        switch parseModuleOptions(Array(words[(i + 1)...])) {
        case .failure(let error):
            return "\(error.message): the module refuses every login through this stack (PAM_SERVICE_ERR)"
        case .success(let options):
            if access(options.helper, X_OK) != 0 {
                return "its helper \(options.helper) cannot be run" +
                    (options.socket == nil ? "" : " (logins fail whenever \(options.socket!) does not answer)")
            }
            if access(options.config, R_OK) != 0 { return "its config \(options.config) cannot be read" }
            return nil
        }
    }

    /// `passwordService`: the config's `password_service`, the stack that confirms passwords
    /// for self-service.
    mutating func pamStacks(dir: String, passwordService: String) {
        guard let d = opendir(dir) else {
            add("pam", .warn, "\(dir): \(Sys.describe(errno))")
            return
        }
        var names: [String] = []
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if !name.hasPrefix(".") { names.append(name) }
        }
        closedir(d)
        var using: [String] = []
        for name in names.sorted() {
            guard let text = readSmallFile(dir + "/" + name, limit: 1 << 20) else { continue }
            for line in text.split(separator: "\n") {
                let l = line.trimmingCharacters()
                guard Self.withoutComment(l).contains("pam_twostep.so") else { continue }
                using.append(name)
                if let problem = Self.moduleLineProblem(l) {
                    add("pam", .fail, "\(dir)/\(name): \(l): \(problem)")
                } else {
                    add("pam", .ok, "\(dir)/\(name): \(l)")
                }
            }
        }
        if using.isEmpty { add("pam", .warn, "no stack in \(dir) uses pam_twostep.so: no login asks for a code") }
        if !names.contains(passwordService) {
            add("pam", .warn, "\(dir)/\(passwordService) (password_service) is missing: self-service commands cannot confirm passwords")
        }
    }

    /// The lines README's SSH section asks for (when sshd is installed at all).
    mutating func sshd(path: String) {
        guard let text = readSmallFile(path, limit: 1 << 20) else {
            add("sshd", .ok, "\(path) not present: no SSH server to check")
            return
        }
        var settings: [String: String] = [:]
        // sshd uses the first value it reads for a keyword, reading an `Include`d file (a
        // glob; a relative one is in /etc/ssh, as sshd takes it; Debian's sshd_config
        // includes sshd_config.d/*.conf at its top) where it stands. A Match block ends the global
        // settings of the file it is in.
        func read(_ text: String, depth: Int) {
            for line in text.split(separator: "\n") {
                let words = line.trimmingCharacters().split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard words.count >= 2, !words[0].hasPrefix("#") else { continue }
                let key = words[0].lowercased()
                if key == "match" { return }
                if key == "include" {
                    guard depth < 16 else { continue }   // sshd's own limit
                    for pattern in words[1...] {
                        let full = pattern.hasPrefix("/") ? String(pattern) : "/etc/ssh/" + pattern
                        for file in globbed(full) {
                            if let included = readSmallFile(file, limit: 1 << 20) { read(included, depth: depth + 1) }
                        }
                    }
                    continue
                }
                if settings[key] == nil { settings[key] = words[1...].joined(separator: " ") }
            }
        }
        read(text, depth: 0)
        func check(_ key: String, _ want: String, _ why: String, default value: String) {
            let have = settings[key.lowercased()] ?? value
            if have.lowercased() == want.lowercased() {
                add("sshd", .ok, "\(key) \(have)")
            } else {
                add("sshd", .warn, "\(key) is \(have), README asks for \(want): \(why)")
            }
        }
        check("UsePAM", "yes", "without it sshd never runs the PAM stack", default: "no")
        check("KbdInteractiveAuthentication", "yes", "the code is asked through keyboard-interactive", default: "yes")
        check("AuthenticationMethods", "publickey,keyboard-interactive",
              "a key alone (or a password alone) would let users in without the code", default: "any")
    }
}

private func rounded(_ x: Double) -> String {
    let tenths = Int((x * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
}

/// The paths a glob pattern names, in glob's (sorted) order; none when nothing matches.
private func globbed(_ pattern: String) -> [String] {
    var g = glob_t()
    defer { globfree(&g) }
    guard glob(pattern, 0, nil, &g) == 0 else { return [] }
    return (0..<Int(g.gl_pathc)).compactMap { g.gl_pathv[$0].map { String(cString: $0) } }
}

/// A small text file (procfs, pam.d, sshd_config), or nil.
private func readSmallFile(_ path: String, limit: Int = 4096) -> String? {
    // O_NONBLOCK and regular files only (procfs counts as one): a FIFO must not hang doctor.
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return nil }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while out.count < limit {
        let n = buf.withUnsafeMutableBytes { Sys.read(fd, into: $0) }
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return String(decoding: out, as: UTF8.self)
}

private extension StringProtocol {
    func trimmingCharacters() -> String {
        String(drop { $0 == " " || $0 == "\t" || $0 == "\n" }.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }.reversed())
    }
    func padding(_ n: Int) -> String { String(self) + String(repeating: " ", count: Swift.max(0, n - count)) }
}

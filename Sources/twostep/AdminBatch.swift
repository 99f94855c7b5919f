// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Glibc
import TwoStepCore
import TwoStepCrypto
import TwoStepStore
import TwoStepSystem

/// `twostep admin import --batch FILE`: one JSON object per line,
/// `{"user": …, "secret": …, "algorithm": …, "digits": …, "period": …, "name": …, "type": …,
/// "counter": …}` (the options of `admin import USER`). Each line is imported
/// whole or not at all; a bad line is reported with its number and skipped. New users go
/// to the file store a batch at a time (one flush per batch: thousands a second); a user
/// already enrolled (with --replace) or a PostgreSQL store takes the one-by-one path.
/// Secrets stay in bytes (never a String, argv or a message) and are wiped after use.
struct BatchImport {
    let ctx: LocalStore
    let source: String
    let replace: Bool
    let accounts = AccountIndex()
    let invoker = invokingUser()
    static let batchSize = 256
    static let lineLimit = 16 * 1024
    static let fields: Set<String> = ["user", "secret", "algorithm", "digits", "period", "type", "name", "counter"]

    struct Line {
        let number: Int
        let user: String
        let authenticator: Authenticator
        let counter: UInt64?
        /// NSS knows the name (else it is enrolled as given, with a warning at the end).
        var known = true
        /// A first enrolment that needs no state: the batch path may take it.
        var plain: Bool { counter ?? 0 == 0 }
    }

    /// What the run did so far, and where it tells about a bad line.
    final class Tally {
        var imported = 0
        var failed: [Int] = []
        /// Names no account has, as `admin import USER` warns of each.
        var unknown: [String] = []
        let progress: Progress

        init(progress: Progress) { self.progress = progress }

        func lineFailed(_ number: Int, _ why: String) {
            failed.append(number)
            progress.interrupt("twostep: line \(number): \(why); skipped\n")
        }
    }

    func run() throws {
        try ctx.requireRoot("admin import")
        let fd = source == "-" ? 0 : Sys.retry { open(source, O_RDONLY | O_CLOEXEC | O_NOCTTY) }
        guard fd >= 0 else { throw CLIError("\(source): \(Sys.describe(errno))") }
        defer { if fd != 0 { close(fd) } }
        Interrupt.catchSignals()
        let progress = Progress(total: countLines(fd), verb: "read", noun: "line(s)")
        let tally = Tally(progress: progress)
        var batch: [Line] = []
        var stoppedAfter: Int? = nil
        var lastLine = 0
        let whole = try LineReader(fd: fd, limit: Self.lineLimit).forEach { number, line in
            defer { progress.step() }
            lastLine = number
            if let bytes = line {
                if !bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) {  // a blank line is no user
                    do {
                        let line = try parse(bytes, number: number)
                        if !line.known { tally.unknown.append(line.user) }
                        if batch.contains(where: { $0.user == line.user }) { flush(&batch, tally) }
                        batch.append(line)
                    } catch {
                        tally.lineFailed(number, "\(error)")
                    }
                    if batch.count >= Self.batchSize { flush(&batch, tally) }
                }
            } else {
                tally.lineFailed(number, "longer than \(Self.lineLimit) bytes")
            }
            // Ctrl-C: what was read is written (or reported) before we stop.
            if Interrupt.requested != nil { stoppedAfter = number; return false }
            return true
        }
        // Stopped while it waited for more input (a stalled pipe): the same as between lines.
        if !whole && stoppedAfter == nil { stoppedAfter = lastLine }
        flush(&batch, tally)
        progress.finish()
        let failed = tally.failed.count
        let detail = "\(tally.imported) imported, \(failed) failed, from \(source == "-" ? "standard input" : source)" +
            (stoppedAfter.map { ", interrupted after line \($0)" } ?? "") + ", by \(invoker)"
        ctx.audit.record(AuditEvent(event: "admin_import_batch", user: "-", service: "twostep",
                                    result: failed == 0 && stoppedAfter == nil ? "success" : "failure", detail: detail))
        if !tally.unknown.isEmpty {
            // A typo (\"alcie\") enrols a name nobody has; whoever is given it later meets it.
            writeStderr("twostep: warning: \(tally.unknown.count) name(s) no account has on this host, enrolled all the same: " +
                        listed(tally.unknown.map(displaySafe)) + "\n")
        }
        print("twostep: import --batch: \(tally.imported) user(s) imported, \(failed) line(s) failed" +
              (failed > 0 ? " (line\(failed == 1 ? "" : "s") \(listed(tally.failed.map(String.init))))" : ""))
        if let n = stoppedAfter {
            print("twostep: interrupted after line \(n): lines after it were not read; every user up to it is imported or reported")
            throw ExitCode(Interrupt.exitStatus(Interrupt.requested ?? SIGINT))
        }
        if failed > 0 { throw ExitCode.failure }
    }

    /// One line's user and authenticator; throws a message that never holds the secret.
    func parse(_ bytes: ArraySlice<UInt8>, number: Int) throws -> Line {
        let obj: FlatJSON
        do { obj = try FlatJSON(parsing: bytes) } catch { throw CLIError("not a JSON object: \(error)") }
        if let unknown = obj.keys.first(where: { !Self.fields.contains($0) }) {
            throw CLIError("unknown field \(jsonString(unknown)) (known: \(Self.fields.sorted().joined(separator: ", ")))")
        }
        guard let given = obj.text("user"), isValidUserName(given) else {
            throw CLIError("\"user\" must be a valid user name (UTF-8, 1 to 256 bytes, no control characters)")
        }
        let canonical = accounts.canonical(given)
        let user = canonical ?? given
        let name = obj["name"] == nil ? Authenticator.defaultName : obj.text("name") ?? ""
        guard Authenticator.isValidName(name) else { throw CLIError("\"name\": \(Authenticator.nameRule)") }
        let kind: AuthenticatorKind
        if obj["type"] == nil { kind = .totp } else {
            guard let k = obj.text("type").flatMap({ AuthenticatorKind(rawValue: $0.lowercased()) }) else {
                throw CLIError("\"type\" must be \"totp\" or \"hotp\"")
            }
            kind = k
        }
        var counter: UInt64? = nil
        if let value = obj["counter"] {
            guard kind == .hotp else { throw CLIError("\"counter\" goes with \"type\": \"hotp\" only") }
            guard case .number(let n) = value, let c = UInt64(n) else { throw CLIError("\"counter\" must be a whole number") }
            counter = c
        }
        let algorithm: HashAlgorithm
        if obj["algorithm"] == nil { algorithm = .sha1 } else {
            guard let a = obj.text("algorithm").flatMap({ HashAlgorithm(name: $0) }) else {
                throw CLIError("\"algorithm\" must be one of \(HashAlgorithm.allValueStrings.joined(separator: ", "))")
            }
            algorithm = a
        }
        let digits = try integer(obj, "digits", default: 6)
        guard OTPPolicy.digits.contains(digits) else { throw CLIError("\"digits\" must be \(OTPPolicy.digitsText)") }
        let period = try integer(obj, "period", default: 30)
        guard OTPPolicy.periods.contains(period) else { throw CLIError("\"period\" must be \(OTPPolicy.periodsText)") }
        guard case .string(let text)? = obj["secret"] else { throw CLIError("\"secret\" (a Base32 string) is missing") }
        var secret = try text.withBytes { try importedSecret($0, quiet: true) }
        defer { Crypto.wipe(&secret) }
        let authenticator = Authenticator(name: name, kind: kind, secret: secret,
                                          parameters: OTPParameters(algorithm: algorithm, digits: digits, period: period),
                                          added: ctx.now())
        return Line(number: number, user: user, authenticator: authenticator, counter: counter, known: canonical != nil)
    }

    func integer(_ obj: FlatJSON, _ key: String, default value: Int) throws -> Int {
        switch obj[key] {
        case nil: return value
        case .number(let n)?: if let v = Int(n) { return v }
        default: break
        }
        throw CLIError("\"\(key)\" must be a whole number")
    }

    /// Writes a batch: new users at once (file store), the rest one by one; audits each
    /// imported user in the audit log file.
    func flush(_ batch: inout [Line], _ tally: Tally) {
        guard !batch.isEmpty else { return }
        defer { batch.removeAll() }
        // First enrolments (no record, no state, no HOTP counter to keep) a batch at a time;
        // the rest (.exists) one by one, as `admin import USER` does.
        var outcomes = [BatchOutcome](repeating: .exists, count: batch.count)
        let fresh = batch.indices.filter { batch[$0].plain }
        if let files = ctx.store as? FileUserStore, !fresh.isEmpty {
            do {
                let records = try fresh.map { i in
                    (user: batch[i].user, record: UserRecord(authenticators: [batch[i].authenticator], created: ctx.now(),
                                                             backupKey: try Crypto.randomBytes(32), backupHashes: []))
                }
                for (i, outcome) in zip(fresh, try files.enrolNew(records)) { outcomes[i] = outcome }
            } catch {
                for i in fresh { outcomes[i] = .failed(error) }
            }
        }
        var events: [AuditEvent] = []
        for (line, outcome) in zip(batch, outcomes) {
            var result = outcome
            if case .exists = outcome {
                do {
                    _ = try ctx.store.withLock(line.user) {
                        try storeImported(ctx, user: line.user, authenticator: line.authenticator, counter: line.counter, replace: replace)
                    }
                    result = .written
                } catch {
                    result = .failed(error)
                }
            }
            switch result {
            case .failed(let error): tally.lineFailed(line.number, "\(line.user): \(error)")
            default:
                tally.imported += 1
                events.append(AuditEvent(event: "admin_import", user: line.user, service: "twostep", result: "success",
                                         detail: "\(line.authenticator.label), import --batch line \(line.number) by \(invoker)"))
            }
        }
        ctx.audit.recordInFileOnly(events)
    }

    /// The number of lines of a regular file (for the progress's total); nil for a pipe.
    func countLines(_ fd: Int32) -> Int? {
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG, lseek(fd, 0, SEEK_CUR) == 0 else { return nil }
        var count = 0, last: UInt8 = 10
        _ = try? LineReader.chunks(fd: fd) { (chunk: ArraySlice<UInt8>) -> Bool in
            count += chunk.reduce(0) { $0 + ($1 == 10 ? 1 : 0) }
            last = chunk.last ?? last
            return true
        }
        guard lseek(fd, 0, SEEK_SET) == 0 else { return nil }
        return count + (last == 10 ? 0 : 1)
    }
}

/// The Base32 secret of an import, decoded from bytes; at least 80 bits. With `quiet`
/// (a batch, whose messages may end up in a log) the error names no character of it.
func importedSecret(_ text: [UInt8], quiet: Bool) throws -> [UInt8] {
    var bytes: [UInt8]
    do { bytes = try Base32.decode(bytes: text) } catch Base32Error.invalidCharacter(_, let position) where quiet {
        throw CLIError("secret: not Base32 (character \(position))")
    } catch {
        throw CLIError("secret: \(error)")
    }
    guard bytes.count >= 10 else {
        Crypto.wipe(&bytes)
        throw CLIError("secret: at least 80 bits (16 Base32 characters) are needed")
    }
    return bytes
}

/// Writes an imported authenticator: a first enrolment (no backup codes yet), or one more
/// (or, with `replace`, a new one of that name) beside the user's others, and the state
/// that starts it (HOTP: its next counter). The caller holds USER's lock. True when the
/// user now has more than one authenticator.
func storeImported(_ ctx: LocalStore, user: String, authenticator: Authenticator, counter: UInt64?, replace: Bool) throws -> Bool {
    let name = authenticator.name
    let existing = try ctx.store.loadRecord(user)
    // A secret another authenticator of the user has would give every code twice (each
    // authenticator keeps its own replay mark): refused.
    if let twin = existing?.authenticators.first(where: { $0.name != name && $0.hasSameSecret(as: authenticator) }) {
        throw CLIError("\(user)'s authenticator \(twin.name) already has that secret (each of its codes would pass twice)")
    }
    // The same secret imported again (a re-run, a --replace to change nothing else) keeps
    // what it spent: a reviewer's used TOTP code passed again after `import --replace` of
    // the same secret, and an HOTP token would go back to counter 0. A new secret starts
    // afresh: no code of the old one is a code of it.
    let kept: AuthenticatorState? = try existing?.authenticator(named: name).flatMap { old in
        old.givesSameCodes(as: authenticator) ? try ctx.store.loadState(user).device(name) : nil
    }
    let record: UserRecord
    if let existing {
        if existing.authenticator(named: name) != nil && !replace {
            throw CLIError(name == Authenticator.defaultName
                ? "\(user) is already enrolled; give --replace to overwrite, or --name NAME to add another authenticator"
                : "\(user) already has an authenticator named \(name); give --replace to overwrite it")
        }
        do { try existing.add(authenticator, replace: true) } catch { throw CLIError("\(error)") }
        // A replaced secret (a lost phone, a new token) ends every SSH key's trust too.
        if replace { existing.forget(nil) }
        record = existing
    } else {
        record = UserRecord(authenticators: [authenticator], created: ctx.now(),
                            backupKey: try Crypto.randomBytes(32), backupHashes: [])
    }
    let fresh = AuthenticatorState(counter: counter ?? 0)
    if existing == nil {
        // A new user's state first (a removed user's generation kept): killed before the
        // record, the user is simply not enrolled and a rerun imports them whole; the other
        // order left a record whose HOTP counter started again at 0.
        var first = UserState(recordGeneration: try ctx.store.loadState(user).recordGeneration)
        first.devices[name] = fresh
        try ctx.store.saveState(first, for: user)
    }
    try ctx.store.saveRecord(record, for: user)
    // Read after saveRecord, which moved the record generation on.
    var state = try ctx.store.loadState(user)
    if existing == nil { state = UserState(recordGeneration: state.recordGeneration) }
    state.devices[name] = kept.map { fresh.carrying($0) } ?? fresh
    try ctx.store.saveState(state, for: user)
    return record.authenticators.count > 1
}

/// Lines of a file descriptor, read in chunks into buffers that are wiped after use (a
/// line may hold a secret). A line longer than `limit` comes as nil and is skipped.
struct LineReader {
    let fd: Int32
    let limit: Int

    /// Calls `body` with each line's number (from 1) and bytes (without the newline) until
    /// it returns false or the input ends. Returns false when SIGINT or SIGTERM (caught with
    /// `Interrupt`) stopped it while it waited for input (a line begun is not passed on).
    @discardableResult
    func forEach(_ body: (Int, ArraySlice<UInt8>?) throws -> Bool) throws -> Bool {
        var line: [UInt8] = []
        line.reserveCapacity(limit + 1)   // never regrown: no unwiped copy left behind
        defer { Crypto.wipe(&line) }
        var number = 0
        var tooLong = false
        var stop = false
        let whole = try LineReader.chunks(fd: fd) { chunk in
            var start = chunk.startIndex
            while !stop, let nl = chunk[start...].firstIndex(of: 10) {
                if !tooLong && line.count + (nl - start) <= limit { line.append(contentsOf: chunk[start..<nl]) } else { tooLong = true }
                number += 1
                if line.last == 13 { line.removeLast() }
                stop = try !body(number, tooLong ? nil : line[...])
                Crypto.wipe(&line)
                line.removeAll(keepingCapacity: true)
                tooLong = false
                start = nl + 1
            }
            if stop { return false }
            if !tooLong && line.count + (chunk.endIndex - start) <= limit { line.append(contentsOf: chunk[start...]) } else { tooLong = true }
            return true
        }
        if !whole && !stop { return false }
        if !stop && (!line.isEmpty || tooLong) {
            number += 1
            _ = try body(number, tooLong ? nil : line[...])
        }
        return true
    }

    /// Reads `fd` to its end (or until `body` returns false, or SIGINT or SIGTERM is caught:
    /// then false) in 64 KiB chunks. It waits in poll, not in read: the signal handlers
    /// restart a read (SA_RESTART), so Ctrl-C while a pipe's writer stalls would wait for it.
    @discardableResult
    static func chunks(fd: Int32, _ body: (ArraySlice<UInt8>) throws -> Bool) throws -> Bool {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        defer { Crypto.wipe(&buffer) }
        while true {
            var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let polled = poll(&ready, 1, 200)
            if Interrupt.requested != nil { return false }
            if polled < 0 && errno != EINTR && errno != EAGAIN { throw CLIError("poll: \(Sys.describe(errno))") }
            if polled <= 0 { continue }
            let n = buffer.withUnsafeMutableBytes { Sys.read(fd, into: $0) }
            if n < 0 { throw CLIError("read: \(Sys.describe(errno))") }
            if n == 0 { return true }
            if try !body(buffer[0..<n]) { return false }
        }
    }
}

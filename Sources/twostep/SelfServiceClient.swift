// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Glibc
import TwoStepCrypto
import TwoStepProtocol
import TwoStepService
import TwoStepStore
import TwoStepSystem

/// Options shared by the self-service commands.
struct SelfServiceOptions: ParsableArguments {
    @Option(help: "Act on this user (root only; default: you).") var user: String?
    @Flag(help: "Print the answer as JSON.") var json = false
    @Option(help: "The helper's socket (default: `socket` from the config).") var socket: String?
    @OptionGroup var config: ConfigOptions
}

/// The user at this terminal, for the shared dialogue code. With `--json` standard output
/// holds the JSON answer alone: what the dialogue says goes to standard error.
final class TerminalConversation: Conversation {
    let json: Bool
    init(json: Bool = false) { self.json = json }
    func ask(_ prompt: String, echo: Bool) -> SecretBytes? { readAnswer(prompt: prompt, echo: echo) }
    func info(_ text: String) { json ? writeStderr(text + "\n") : say(text) }
    func error(_ text: String) { writeStderr(text + "\n") }
}

/// Runs a self-service command: in this process for root (who can open the store), else
/// through the helper's socket, where the helper learns who we are from SO_PEERCRED.
/// Returns the structured answer (for --json and status).
func runSelfService(_ command: SelfServiceCommand, _ options: SelfServiceOptions,
                    replace: Bool = false, name: String = "", fingerprint: String = "",
                    address: String = "", confirm: Bool = false) throws -> ServiceData {
    var request = SelfServiceRequest(command: command, user: options.user ?? "", json: options.json, replace: replace,
                                     name: name, address: address, confirm: confirm)
    request.fingerprint = fingerprint
    var data = ServiceData()
    let verdict: Verdict
    if geteuid() == 0 && options.socket == nil {
        let local = try namespaceHint { try LocalStore(options.config) }
        if command == .enroll, let user = options.user, canonicalUserName(user) == nil { warnUnknownAccount(user) }
        let service = SelfService(config: local.config, store: local.store, audit: local.audit, now: { local.now() })
        verdict = service.handle(request, callerUID: 0, conversation: TerminalConversation(json: options.json)) { data.merge($0) }
    } else {
        let path = try options.socket ?? namespaceHint { try options.config.load().socket }
        verdict = try askHelper(socketPath: path, request: request, json: options.json) { data.merge($0) }
    }
    guard verdict == .success else {
        throw CLIError(refusal(verdict, command))
    }
    return data
}

/// `body`, with a hint added to its error inside a user namespace (`unshare -U -r`, a
/// rootless container): there the owners the store's files show are not the host's (the
/// caller's own files look root's, root's the overflow uid's), so their checks fail, and
/// the helper's socket (which knows the caller's real uid) is the way.
func namespaceHint<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch {
        guard inUserNamespace() else { throw error }
        throw CLIError("\(error)\n(this runs in a user namespace, whose file owners are not the host's: run twostep " +
                       "outside it, or name the helper's socket with --socket PATH)")
    }
}

/// Whether this process runs in a user namespace other than the host's (its uid_map is not
/// the identity map "0 0 4294967295"). False when /proc cannot say.
func inUserNamespace() -> Bool {
    let fd = open("/proc/self/uid_map", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 256)
    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard n > 0 else { return false }
    let fields = String(decoding: buffer[..<n], as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
    return fields != ["0", "0", "4294967295"]
}

/// Root enrols or imports a name NSS does not know: kept (an account may come later, or
/// from a source not answering now), but a typo would otherwise go unnoticed until that
/// user's first login.
func warnUnknownAccount(_ given: String) {
    writeStderr("twostep: warning: no account named \(displaySafe(given)) is known on this host (NSS); " +
                "enrolling that name as given\n")
}

func refusal(_ v: Verdict, _ command: SelfServiceCommand) -> String {
    switch v {
    case .failure: return "\(command.rawValue): not done (a password or code was not accepted); nothing was changed"
    case .lockedOut: return "\(command.rawValue): locked out; nothing was changed"
    case .notEnrolled: return "\(command.rawValue): not enrolled"
    // The helper said why (another user's enrolment, too many open requests, busy).
    case .denied: return "\(command.rawValue): refused; nothing was changed"
    // A code accepted before the cancel stays spent; a backup code that confirmed
    // `enroll --replace` is given back (the helper says so: "Your backup code was not used up").
    case .conversationError: return "\(command.rawValue): cancelled; the change was not made"
    default: return "\(command.rawValue): the helper reported an error; see the system log"
    }
}

/// Speaks the frame protocol with the helper over its socket: prompts to the terminal,
/// answers back, data frames to `data`. Returns the helper's verdict.
func askHelper(socketPath: String, request: SelfServiceRequest, json: Bool = false,
               data: (ServiceData) -> Void) throws -> Verdict {
    let fd: Int32
    switch connectUnixSocket(socketPath) {
    case .success(let connected): fd = connected
    case .failure(let e):
        throw CLIError("cannot reach the twostep helper at \(socketPath): \(Sys.describe(e.code)). " +
                       "Is twostep-helper.socket running (systemctl status twostep-helper.socket)?")
    }
    defer { close(fd) }
    let stream = FrameStream(readFD: fd, writeFD: fd)
    do {
        // A helper that turns the connection away (too many open requests for this user)
        // answers and closes at once, maybe before the request is sent: then the send fails
        // (EPIPE) while its answer waits to be read. Read it before reporting the send.
        var sendFailure: Error? = nil
        do { try stream.send(Frame(.request, request.encoded())) } catch { sendFailure = error }
        while true {
            let frame: Frame
            do { frame = try stream.receive() } catch { throw sendFailure ?? error }
            switch frame.type {
            case .promptEchoOff, .promptEchoOn:
                guard let answer = readAnswer(prompt: frame.text, echo: frame.type == .promptEchoOn) else {
                    try stream.send(Frame(.conversationFailed))
                    return .conversationError
                }
                var reply = Frame(.answer, answer.withBytes { Array($0.prefix(ProtocolLimits.maxAnswer)) })
                defer { Crypto.wipe(&reply.payload) }
                try stream.send(reply)
            case .info: json ? writeStderr(frame.text + "\n") : say(frame.text)
            case .error: writeStderr(frame.text + "\n")
            case .data:
                do { data(try ServiceData.decode(frame.payload)) } catch {
                    throw CLIError("the helper sent malformed data (\(error.message))")
                }
            case .result: return Verdict(rawValue: frame.payload.first ?? 255) ?? .systemError
            default: throw CLIError("the helper sent an unexpected message")
            }
        }
    } catch let e as CLIError {
        throw e
    } catch {
        throw CLIError("the connection to the helper failed (\(error))")
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show your two-step login: enrolled or not, since when, backup codes left, lockout.")
    @OptionGroup var options: SelfServiceOptions

    func run() throws {
        let data = try runSelfService(.status, options)
        if options.json { try printJSON(jsonObject(data)); return }
        let user = data[.user] ?? "?"
        guard data[.enrolled] == "true" else {
            say("\(user): not enrolled. Run `twostep enroll` to set up an authenticator app.")
            return
        }
        say("\(user): enrolled since \(data[.enrolledAt] ?? "?")")
        say("codes: \(data[.algorithm] ?? "?"), \(data[.digits] ?? "?") digits, " +
            (data[.period].map { "every \($0) s" } ?? "counter based (HOTP token)"))
        say("backup codes left: \(data[.backupCodesLeft] ?? "?")")
        if data[.locked] == "true" {
            say("LOCKED OUT until \(data[.lockedUntil] ?? "?") after too many wrong codes")
        } else {
            say("not locked out")
        }
        printTrustedKeys(data)
        say("email: " + (data[.email] ?? "none (run `twostep email ADDRESS`)") +
            (data[.emailPending].map { "; \($0) waits for its confirmation code" } ?? ""))
        if let until = data[.bypassUntil] { say("codes are not asked (administrator's bypass) until \(until)") }
        if let until = data[.invitationPendingUntil] {
            say("a mailed invitation waits for its first code until \(until) (`twostep enroll --confirm`)")
        }
    }
}

struct NewBackupCodes: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup-codes",
        abstract: "Issue a fresh set of backup codes (password and a current code); the old set stops working.")
    @OptionGroup var options: SelfServiceOptions

    func run() throws {
        let data = try runSelfService(.backupCodes, options)
        if options.json { try printJSON(jsonObject(data)) }
    }
}

struct QR: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qr",
        abstract: "Show your QR code again (password and a code from your authenticator app; not a backup code), e.g. for a new phone that replaces the old one (a second phone: `enroll --add`).")
    @OptionGroup var options: SelfServiceOptions

    func run() throws {
        let data = try runSelfService(.qr, options)
        if options.json { try printJSON(jsonObject(data)) }
    }
}

struct Disable: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn your two-step login off (password and a current code); the record is deleted.")
    @OptionGroup var options: SelfServiceOptions

    func run() throws {
        _ = try runSelfService(.disable, options)
        if options.json { try printJSON(["user": options.user ?? invokingUser(), "enrolled": false]) }
    }
}

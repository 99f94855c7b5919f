import ArgumentParser
import Glibc
import TwoStepHelperKit
import TwoStepProtocol
import TwoStepStore

/// Options shared by the self-service commands.
struct SelfServiceOptions: ParsableArguments {
    @Option(help: "Act on this user (root only; default: you).") var user: String?
    @Flag(help: "Print the answer as JSON.") var json = false
    @Option(help: "The helper's socket (default: `socket` from the config).") var socket: String?
    @OptionGroup var config: ConfigOptions
}

/// The user at this terminal, for the shared dialogue code.
final class TerminalConversation: Conversation {
    func ask(_ prompt: String, echo: Bool) -> String? { readAnswer(prompt: prompt, echo: echo) }
    func info(_ text: String) { say(text) }
    func error(_ text: String) { writeStderr(text + "\n") }
}

/// Runs a self-service command: in this process for root (who can open the store), else
/// through the helper's socket, where the helper learns who we are from SO_PEERCRED.
/// Returns the structured answer (for --json and status).
func runSelfService(_ command: SelfService.Command, _ options: SelfServiceOptions,
                    extra: [(String, String)] = []) throws -> [String: String] {
    var fields: [(String, String)] = [("version", "1"), ("mode", "self"), ("command", command.rawValue),
                                      ("json", options.json ? "1" : "0")]
    if let u = options.user { fields.append(("user", u)) }
    fields += extra
    var data: [String: String] = [:]
    let verdict: Verdict
    if geteuid() == 0 && options.socket == nil {
        let ctx = try Context(options.config)
        let service = SelfService(config: ctx.config, store: ctx.store, audit: ctx.audit, now: { ctx.now() })
        verdict = service.handle(Dictionary(fields, uniquingKeysWith: { a, _ in a }), callerUID: 0,
                                 conversation: TerminalConversation()) { for (k, v) in $0 { data[k] = v } }
    } else {
        let path = try options.socket ?? options.config.load().socket
        verdict = try relay(socketPath: path, request: fields) { for (k, v) in $0 { data[k] = v } }
    }
    guard verdict == .success else {
        throw CLIError(refusal(verdict, command))
    }
    return data
}

func refusal(_ v: Verdict, _ command: SelfService.Command) -> String {
    switch v {
    case .failure: return "\(command.rawValue): refused (wrong password or code); nothing was changed"
    case .lockedOut: return "\(command.rawValue): locked out; nothing was changed"
    case .notEnrolled: return "\(command.rawValue): not enrolled"
    case .denied: return "\(command.rawValue): not allowed; nothing was changed"
    case .conversationError: return "\(command.rawValue): cancelled; nothing was changed"
    default: return "\(command.rawValue): the helper reported an error; see the system log"
    }
}

/// Speaks the frame protocol with the helper: prompts to the terminal, answers back.
func relay(socketPath: String, request: [(String, String)], data: ([(String, String)]) -> Void) throws -> Verdict {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw CLIError("socket: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    guard var addr = SelfServiceServer.unixSocketAddress(socketPath) else { throw CLIError("socket path too long") }
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard rc == 0 else {
        throw CLIError("cannot reach the twostep helper at \(socketPath): \(String(cString: strerror(errno))). " +
                       "Is twostep-helper.socket running (systemctl status twostep-helper.socket)?")
    }
    let channel = FrameChannel(readFD: fd, writeFD: fd)
    do {
        try channel.send(Frame(.request, encodeFields(request)))
        while true {
            let frame = try channel.receive()
            switch frame.type {
            case .promptEchoOff, .promptEchoOn:
                guard let answer = readAnswer(prompt: frame.text, echo: frame.type == .promptEchoOn) else {
                    try channel.send(Frame(.conversationFailed))
                    return .conversationError
                }
                var bytes = Array(answer.utf8.prefix(ProtocolLimits.maxAnswer))
                defer { for i in bytes.indices { bytes[i] = 0 } }
                try channel.send(Frame(.answer, bytes))
            case .info: say(frame.text)
            case .error: writeStderr(frame.text + "\n")
            case .data: data(Array(try decodeFields(frame.payload)))
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

/// Turns the helper's string fields into JSON values.
func jsonObject(_ data: [String: String]) -> [String: Any] {
    var out: [String: Any] = [:]
    for (k, v) in data {
        switch k {
        case "backup_codes": out[k] = v.split(separator: ",").map(String.init)
        case "enrolled", "locked": out[k] = (v == "true")
        case "digits", "period", "backup_codes_left", "recent_failures": out[k] = Int(v) ?? v
        default: out[k] = v
        }
    }
    return out
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show your two-step login: enrolled or not, since when, backup codes left, lockout.")
    @OptionGroup var options: SelfServiceOptions

    func run() throws {
        let data = try runSelfService(.status, options)
        if options.json { try printJSON(jsonObject(data)); return }
        let user = data["user"] ?? "?"
        guard data["enrolled"] == "true" else {
            say("\(user): not enrolled. Run `twostep enroll` to set up an authenticator app.")
            return
        }
        say("\(user): enrolled since \(data["enrolled_at"] ?? "?")")
        say("codes: \(data["algorithm"] ?? "?"), \(data["digits"] ?? "?") digits, every \(data["period"] ?? "?") s")
        say("backup codes left: \(data["backup_codes_left"] ?? "?")")
        if data["locked"] == "true" {
            say("LOCKED OUT until \(data["locked_until"] ?? "?") after too many wrong codes")
        } else {
            say("not locked out")
        }
    }
}

struct BackupCodesCommand: ParsableCommand {
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
        abstract: "Show your QR code again (password and a code from your authenticator app; not a backup code), e.g. to add a second phone.")
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

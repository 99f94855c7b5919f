import ArgumentParser
import Foundation
import TwoStepCore
import TwoStepCrypto
import TwoStepHelperKit
import TwoStepStore

struct Enroll: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Set up an authenticator app: QR code, a code to confirm, then backup codes.",
        discussion: """
        The wizard creates a new secret, draws the QR code in the terminal, prints the \
        otpauth URI and the secret for manual entry, and asks for one code from the app \
        before anything is saved; then it shows the backup codes once.
        With --json nothing is asked: the enrolment is saved at once and the answer is \
        {"otpauth_uri", "qr_png_data_uri", "backup_codes"} (for provisioning scripts).
        """)

    @Option(help: "The user to enrol (root only; default: you).") var user: String?
    @Flag(help: "Print otpauth_uri, qr_png_data_uri and backup_codes as JSON; enrol without asking.") var json = false
    @Flag(help: "Replace an existing enrolment.") var replace = false
    @OptionGroup var options: ConfigOptions

    func run() throws {
        let ctx = try Context(options)
        let name = user ?? invokingUser()
        guard isValidUserName(name) else { throw CLIError("invalid user name \"\(name)\"") }
        try ctx.requireRoot("enroll (self-service enrolment through the helper socket is not available yet)")
        if try storeCall({ try ctx.store.loadRecord(name) }) != nil && !replace {
            throw CLIError("\(name) is already enrolled; `twostep admin reset \(name)` first, or give --replace")
        }
        var secret = try SecretGenerator.newSecret()
        defer { Crypto.wipe(&secret) }
        let params = OTPParameters(algorithm: ctx.config.algorithm, digits: ctx.config.digits, period: ctx.config.period)
        let uri = OTPAuthURI(issuer: ctx.config.issuer, account: name, secret: secret, parameters: params).uriString

        if json {
            let png = try QRCode.png(uri)
            let (_, codes) = try save(ctx, name, secret, params, lastStep: -1)
            try printJSON(["user": name, "otpauth_uri": uri,
                           "qr_png_data_uri": "data:image/png;base64," + Base64.encode(png),
                           "backup_codes": codes])
            return
        }

        say("Two-step login for \(name) on \(ctx.config.issuer)\n")
        say("Step 1 of 3: scan this QR code with your authenticator app")
        say("(Google Authenticator, Aegis, FreeOTP, 1Password, ...):\n")
        say(try QRCode.terminal(uri))
        say("Can't scan? Add an account by hand with this key (time based, \(params.algorithm.rawValue), \(params.digits) digits, \(params.period) s):")
        say("    " + grouped(Base32.encode(secret)) + "\n")
        say("or open this URI on the device:\n    \(uri)\n")
        say("Step 2 of 3: confirm that the app works.")
        var step: Int64?
        for attempt in 1...3 {
            guard let answer = readAnswer(prompt: "Enter the \(params.digits)-digit code the app shows now: ", echo: true) else {
                throw CLIError("no code entered; nothing was saved")
            }
            let code = answer.filter { !$0.isWhitespace }
            step = try OTP.matchTOTP(code: code, secret: secret, at: ctx.now(), parameters: params, window: ctx.config.window)
            if step != nil { break }
            say(attempt < 3 ? "That code does not match; check the app's clock and try again." : "")
        }
        guard let step else {
            ctx.audit.record(AuditEvent(event: "enroll", user: name, service: "twostep", result: "failure", detail: "confirmation code did not match"))
            throw CLIError("three codes did not match; nothing was saved. Run `twostep enroll` again.")
        }
        let (_, codes) = try save(ctx, name, secret, params, lastStep: step)
        say("\nStep 3 of 3: your backup codes. Each works once, in place of a code, if you lose")
        say("your phone. Store them somewhere safe: they are shown only now.\n")
        for pair in stride(from: 0, to: codes.count, by: 2) {
            say("    " + codes[pair] + (pair + 1 < codes.count ? "    " + codes[pair + 1] : ""))
        }
        say("\nDone: \(name) is enrolled. The next login will ask for a verification code.")
    }

    /// Saves the record (and the confirmed step, so the confirming code cannot be replayed).
    func save(_ ctx: Context, _ name: String, _ secret: [UInt8], _ params: OTPParameters, lastStep: Int64) throws -> (UserRecord, [String]) {
        let result: (UserRecord, [String]) = try storeCall {
            try ctx.store.withLock(name) {
                if try ctx.store.loadRecord(name) != nil && !replace {
                    throw CLIError("\(name) was enrolled meanwhile; nothing was saved")
                }
                let record = UserRecord(secret: secret, parameters: params, created: ctx.now(),
                                        backupKey: [], backupHashes: [])
                let codes = try record.issueBackupCodes()
                try ctx.store.saveRecord(record, for: name)
                try ctx.store.saveState(UserState(lastStep: lastStep), for: name)
                return (record, codes)
            }
        }
        ctx.audit.record(AuditEvent(event: "enroll", user: name, service: "twostep", result: "success",
                                    detail: "by \(invokingUser())"))
        return result
    }
}

/// "ABCD EFGH IJKL …": easier to copy by hand.
func grouped(_ s: String) -> String {
    var out = ""
    for (i, c) in s.enumerated() {
        if i > 0 && i % 4 == 0 { out += " " }
        out.append(c)
    }
    return out
}

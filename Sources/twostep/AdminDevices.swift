// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import TwoStepCore
import TwoStepCrypto
import TwoStepService
import TwoStepStore
import TwoStepSystem

/// `AuthenticatorKind` as `--type totp|hotp`.
extension AuthenticatorKind: ExpressibleByArgument {}

extension Admin {
    struct Resync: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find USER's authenticator again from two consecutive codes (a token or a phone clock that ran away).",
            discussion: """
            HOTP: looks up to \(Verifier.hotpResyncRange) counters ahead for CODE1 followed by CODE2 and moves the \
            counter past CODE2 (the next code passes; CODE2 never again); a counter lost with a damaged state \
            (admin unlock says so) is searched for among the first \(Verifier.hotpLostResyncRange). TOTP: looks within ±max_drift of now and \
            stores the authenticator's clock offset; later logins are checked around now + offset. \
            Without CODE1 and CODE2 (or with - for both) the two codes are asked for on the terminal, or \
            read from standard input one a line; that keeps them out of the process list, where other \
            users can read a command line while it runs (the codes are spent once the resync is done). \
            Audited (admin_resync).
            """)
        @Argument(help: "The user.") var user: String
        @Argument(help: "A code the authenticator shows, or - (default: asked for).") var code1: String?
        @Argument(help: "The code it shows next, or -.") var code2: String?
        @Option(help: "Which authenticator (needed when the user has several).") var name: String?
        @OptionGroup var options: ConfigOptions

        func validate() throws {
            if let name, !Authenticator.isValidName(name) { throw ValidationError("--name: \(Authenticator.nameRule)") }
            guard (code1 ?? "-" == "-") == (code2 ?? "-" == "-") else { throw ValidationError("give both codes, or neither") }
        }

        func run() throws {
            let ctx = try LocalStore(options)
            try ctx.requireRoot("admin resync")
            let user = canonicalUserName(self.user) ?? self.user
            var first: [UInt8], second: [UInt8]
            if let code1, let code2, code1 != "-" {
                writeStderr("twostep: warning: codes on the command line are visible to other users in the process list; leave them out to be asked\n")
                first = Array(code1.utf8)
                second = Array(code2.utf8)
            } else {
                first = readAnswer(prompt: "First code: ", echo: true)?.bytes ?? []
                second = readAnswer(prompt: "The code after it: ", echo: true)?.bytes ?? []
            }
            defer { Crypto.wipe(&first); Crypto.wipe(&second) }
            first = OTP.strippingWhitespace(first)
            second = OTP.strippingWhitespace(second)
            let verifier = Verifier(config: ctx.config, store: ctx.store, audit: ctx.audit, now: { ctx.now() })
            let (authenticator, outcome): (Authenticator, ResyncOutcome)
            do {
                (authenticator, outcome) = try verifier.resync(user: user, name: name, first: first, second: second)
            } catch {
                ctx.audit.record(AuditEvent(event: "admin_resync", user: user, service: "twostep", result: "failure",
                                            detail: "\(name.map { "\($0): " } ?? "")\(error), by \(invokingUser())"))
                throw CLIError("\(user): \(error)")
            }
            let what: String
            switch outcome {
            case .counter(let c): what = "next counter \(c)"
            case .drift(let steps, let period): what = "clock offset \(steps) steps (\(steps * Int64(period)) s)"
            }
            ctx.audit.record(AuditEvent(event: "admin_resync", user: user, service: "twostep", result: "success",
                                        detail: "\(authenticator.label): \(what), by \(invokingUser())"))
            print("twostep: \(user): \(authenticator.label) resynchronised: \(what)")
        }
    }
}

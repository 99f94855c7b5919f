// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Glibc
import TwoStepCore
import TwoStepCrypto
import TwoStepProtocol
import TwoStepService
import TwoStepStore
import TwoStepSystem

// Recovery and support (issue 9): mail addresses, mailed invitations, the administrator's
// bypass and one-time recovery codes, a new secret for a user.

struct Email: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Set the address that login codes can be mailed to (it must be confirmed).",
        discussion: """
        `twostep email ADDRESS` asks for your password and a current code, mails a \
        confirmation code to ADDRESS and asks for it at once (`Code from the email:`). Until \
        it is typed back the address is not used. `twostep email --confirm` finishes a \
        confirmation later: it asks for the code (never give it on the command line, where \
        other users can read it).
        """)
    @Argument(help: "The new address (user@domain).")
    var address: String?
    @Flag(help: "Finish a pending confirmation with the mailed code.") var confirm = false
    @OptionGroup var options: SelfServiceOptions

    func validate() throws {
        if !confirm && address == nil { throw ValidationError("give ADDRESS, or --confirm") }
        if confirm && address != nil {
            throw ValidationError("--confirm asks for the code from the mail; do not give it on the command line, " +
                                  "where other users can read it (run `twostep email --confirm` alone)")
        }
        if !confirm, let address, !isSendableMailAddress(address) { throw ValidationError("not a plain mail address (user@domain): \(address)") }
    }

    func run() throws {
        _ = try runSelfService(.email, options, address: confirm ? "" : address ?? "", confirm: confirm)
    }
}

/// Who is acting, for the audit log: the administrator's own login name, not root's. First
/// the kernel's audit login uid (/proc/self/loginuid: set by pam_loginuid when the session
/// began, kept across sudo and su, and not something a process's environment can claim),
/// then `SUDO_USER` (where no login uid is set: a service, a container, a session without
/// pam_loginuid), then the session's login name.
func actingAdmin() -> String {
    if let uid = auditLoginUID(), let name = userName(uid: uid) { return name }
    if let s = getenv("SUDO_USER").map({ String(cString: $0) }), !s.isEmpty, isValidUserName(s) { return s }
    if let l = getlogin().map({ String(cString: $0) }), !l.isEmpty { return l }
    return invokingUser()
}

/// This process's audit login uid; nil when none is set ((uid_t)-1) or it cannot be read.
func auditLoginUID() -> uid_t? {
    let fd = open("/proc/self/loginuid", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buf = [UInt8](repeating: 0, count: 16)
    let n = read(fd, &buf, buf.count)
    guard n > 0, n < buf.count, let uid = UInt32(String(decoding: buf[..<n], as: UTF8.self)), uid != UInt32.max else {
        return nil
    }
    return uid
}

/// `--reason`: required, one line, for the audit log.
func checkReason(_ reason: String) throws {
    guard !reason.trimmingCharacters(in: " \t").isEmpty else { throw ValidationError("--reason must say why") }
    guard reason.utf8.count <= 500, !reason.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
        throw ValidationError("--reason: one line of at most 500 bytes")
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        String(self.drop(while: { set.contains($0) }).reversed().drop(while: { set.contains($0) }).reversed())
    }
}

/// A user's record changed by an administrator under the user's lock, audited with the
/// acting administrator and reason.
func changeRecord(_ ctx: LocalStore, event: String, user: String, detail: String,
                  _ body: (UserRecord) throws -> Void) throws {
    try ctx.requireRoot(String(event.map { $0 == "_" ? " " : $0 }))
    try withCLIErrors {
        try ctx.store.withLock(user) {
            guard let record = try ctx.store.loadRecord(user) else { throw CLIError("\(user) is not enrolled") }
            try body(record)
            try ctx.store.saveRecord(record, for: user)
        }
    }
    ctx.audit.record(AuditEvent(event: event, user: user, service: "twostep", result: "success",
                                detail: "by \(actingAdmin())" + (detail.isEmpty ? "" : ": \(detail)")))
}

func durationArgument(_ text: String, max: Int, name: String) throws -> Int {
    guard let s = Config.parseDuration(text) else { throw ValidationError("\(name): expected a duration such as 90m, 8h or 3d") }
    guard s <= max else { throw ValidationError("\(name): at most \(describe(seconds: Int64(max)))") }
    return s
}

extension Admin {
    struct SetEmail: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "email",
            abstract: "Set USER's mail address, confirmed at once (no mail is sent).")
        @Argument(help: "The user.") var user: String
        @Argument(help: "The address (user@domain).") var address: String
        @OptionGroup var options: ConfigOptions

        func validate() throws {
            guard isSendableMailAddress(address) else { throw ValidationError("not a plain mail address (user@domain): \(address)") }
        }

        func run() throws {
            let ctx = try LocalStore(options)
            let user = canonicalUserName(self.user) ?? self.user
            try changeRecord(ctx, event: "admin_email", user: user, detail: address) { record in
                record.recovery.email = address
                record.recovery.emailPending = nil
                record.recovery.emailPendingCode = nil
            }
            print("twostep: \(user)'s address is \(address)")
        }
    }

    struct Bypass: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Let USER log in without a code for a while (PAM_SUCCESS after the first factor), or --cancel that.",
            discussion: "Each login it lets through is audited as `verify` success with detail `admin bypass`. At most 7d.")
        @Argument(help: "The user.") var user: String
        @Option(name: .customLong("for"), help: "How long: 30m, 8h, 3d (at most 7d).") var duration: String?
        @Option(help: "Why (required; written to the audit log).") var reason: String?
        @Flag(help: "End a bypass now.") var cancel = false
        @OptionGroup var options: ConfigOptions

        func validate() throws {
            if cancel {
                guard duration == nil else { throw ValidationError("--cancel takes no --for") }
            } else {
                guard let duration else { throw ValidationError("give --for DURATION (or --cancel)") }
                _ = try durationArgument(duration, max: 7 * 86400, name: "--for")
                guard reason != nil else { throw ValidationError("--reason is required") }
            }
            if let reason { try checkReason(reason) }
        }

        func run() throws {
            let ctx = try LocalStore(options)
            let user = canonicalUserName(self.user) ?? self.user
            if cancel {
                try changeRecord(ctx, event: "admin_bypass", user: user, detail: "cancelled" + (reason.map { ": \($0)" } ?? "")) { record in
                    guard record.recovery.bypassUntil > 0 else { throw CLIError("\(user) has no bypass") }
                    record.recovery.bypassUntil = 0
                    record.recovery.bypassNote = nil
                }
                print("twostep: bypass for \(user) cancelled; codes are asked again")
                return
            }
            let seconds = try durationArgument(duration!, max: 7 * 86400, name: "--for")
            let until = ctx.now() + Int64(seconds)
            let note = "by \(actingAdmin()): \(reason!)"
            try changeRecord(ctx, event: "admin_bypass", user: user,
                             detail: "until \(AuditLog.isoTime(until)): \(reason!)") { record in
                record.recovery.bypassUntil = until
                record.recovery.bypassNote = note
            }
            print("twostep: \(user) logs in without a code until \(AuditLog.isoTime(until))")
        }
    }

    struct RecoveryCode: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "recovery-code",
            abstract: "Print one one-time code for USER, to read out over the phone; it works once at the normal prompt.",
            discussion: "Issuing a new one revokes the previous one. Only its keyed hash is stored.")
        @Argument(help: "The user.") var user: String
        @Option(help: "Why (required; written to the audit log).") var reason: String
        @Option(help: "How long it works (at most 7d).") var valid: String = "1h"
        @OptionGroup var options: ConfigOptions

        func validate() throws {
            try checkReason(reason)
            _ = try durationArgument(valid, max: 7 * 86400, name: "--valid")
        }

        func run() throws {
            let ctx = try LocalStore(options)
            let user = canonicalUserName(self.user) ?? self.user
            let until = ctx.now() + Int64(try durationArgument(valid, max: 7 * 86400, name: "--valid"))
            var code = ""
            try changeRecord(ctx, event: "admin_recovery_code", user: user,
                             detail: "valid until \(AuditLog.isoTime(until)): \(reason)") { record in
                let (c, hashed) = try record.recovery.newCode(.recovery, expires: until)
                record.recovery.recoveryCode = hashed
                code = c
            }
            print("Recovery code for \(user) (works once, until \(AuditLog.isoTime(until))): \(code)")
        }
    }

    struct Invite: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mail USER an invitation: a new secret as otpauth URI, key and QR code (PNG).",
            discussion: """
            The enrolment stays pending until the user's first correct code: at login (unless \
            `enroll = off` and a user without an enrolment would pass: nullok, or outside `require`), \
            or with `twostep enroll --confirm`. It expires after `invite_ttl`. \
            Backup codes are never mailed: they are shown at confirmation. The address is \
            --email, else the user's address (`twostep email`, `twostep admin email`).
            """)
        @Argument(help: "The user.") var user: String
        @Option(help: "Mail it here (and keep this as the user's address).") var email: String?
        @OptionGroup var options: ConfigOptions

        func validate() throws {
            if let email, !isSendableMailAddress(email) { throw ValidationError("--email: not a plain mail address (user@domain)") }
        }

        func run() throws {
            let ctx = try LocalStore(options)
            try ctx.requireRoot("admin invite")
            let user = canonicalUserName(self.user) ?? self.user
            guard isValidUserName(user) else { throw CLIError("invalid user name") }
            var secret = try withCLIErrors { try SecretGenerator.newSecret() }
            defer { Crypto.wipe(&secret) }
            let until = ctx.now() + Int64(ctx.config.inviteTTL)
            let to: String = try withCLIErrors {
                try ctx.store.withLock(user) {
                    let old = try ctx.store.loadRecord(user)
                    if let old, !(old.recovery.hasInvitation && old.recovery.invitedSecret == nil) {
                        throw CLIError("\(user) is already enrolled; `twostep admin rotate-secret \(user)` mails a new secret")
                    }
                    guard let to = email ?? old?.recovery.email else {
                        throw CLIError("\(user) has no address: give --email ADDRESS")
                    }
                    let record = UserRecord(secret: secret, parameters: ctx.config.otpParameters, created: ctx.now(),
                                            backupKey: try Crypto.randomBytes(32), backupHashes: [])
                    if let old { record.recovery = old.recovery }
                    record.recovery.email = to
                    record.recovery.invitationUntil = until
                    record.recovery.invitedSecret = nil
                    try ctx.store.saveRecord(record, for: user)
                    if old == nil { try ctx.store.saveState(UserState(), for: user) }
                    return to
                }
            }
            ctx.audit.record(AuditEvent(event: "admin_invite", user: user, service: "twostep", result: "success",
                                        detail: "by \(actingAdmin()): to \(to), until \(AuditLog.isoTime(until))"))
            try mailInvitation(ctx, user: user, to: to, secret: secret, until: until, rotation: false)
        }
    }

    struct RotateSecret: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-secret",
            abstract: "Mail USER an invitation for a new secret; the old one keeps working until the new one is confirmed.",
            discussion: "For a secret that may have leaked: the primary authenticator's (`default`, else the first added). The user adds the new account to their app and types one of its codes (at login, or `twostep enroll --confirm`); from then on the new secret replaces the old one. Other authenticators are left alone.")
        @Argument(help: "The user.") var user: String
        @Option(help: "Why (written to the audit log).") var reason: String?
        @OptionGroup var options: ConfigOptions

        func validate() throws { if let reason { try checkReason(reason) } }

        func run() throws {
            let ctx = try LocalStore(options)
            let user = canonicalUserName(self.user) ?? self.user
            var secret = try withCLIErrors { try SecretGenerator.newSecret() }
            defer { Crypto.wipe(&secret) }
            let until = ctx.now() + Int64(ctx.config.inviteTTL)
            var to = ""
            try changeRecord(ctx, event: "admin_rotate_secret", user: user,
                             detail: "until \(AuditLog.isoTime(until))" + (reason.map { ": \($0)" } ?? "")) { record in
                guard !(record.recovery.hasInvitation && record.recovery.invitedSecret == nil) else {
                    throw CLIError("\(user) has not confirmed an invitation yet; `twostep admin invite \(user)` sends a new one")
                }
                guard let address = record.recovery.email else {
                    throw CLIError("\(user) has no confirmed address: `twostep admin email \(user) ADDRESS` first")
                }
                to = address
                record.recovery.invitedSecret = SecretBytes(secret)
                record.recovery.invitationUntil = until
            }
            try mailInvitation(ctx, user: user, to: to, secret: secret, until: until, rotation: true)
        }
    }
}

/// The invitation mail: text with the otpauth URI and the key, the QR code as a PNG
/// attachment (the same PNG as `enroll --json`). Never backup codes.
func mailInvitation(_ ctx: LocalStore, user: String, to: String, secret: [UInt8], until: Int64, rotation: Bool) throws {
    let params = ctx.config.otpParameters
    let uri = OTPAuthURI(issuer: ctx.config.issuer, account: user, secret: secret, parameters: params).uriString
    let png = try withCLIErrors { try QRCode.png(uri) }
    var text = rotation
        ? "An administrator of \(ctx.config.issuer) issued a new two-step login secret for \(user).\n" +
          "Your current authenticator keeps working until you confirm the new one.\n\n"
        : "You are invited to set up two-step login for \(user) on \(ctx.config.issuer).\n\n"
    text += "1. Scan the attached QR code (qr.png) with your authenticator app, or add an account by hand\n" +
            "   with this key (time based, \(params.algorithm.rawValue), \(params.digits) digits, \(params.period) s):\n\n" +
            "       \(grouped(Base32.encode(secret)))\n\n" +
            "   or open this URI on the device:\n\n       \(uri)\n\n" +
            "2. Confirm it with one code from the app: at your next login that asks for a code, or with `twostep enroll --confirm`.\n" +
            "   Your backup codes are shown then (they are never mailed).\n\n" +
            "This invitation expires at \(AuditLog.isoTime(until)).\n"
    let sent = RecoveryMail.send(config: ctx.config, audit: ctx.audit, user: user, service: "twostep", to: to,
                                 subject: rotation ? "Your new \(ctx.config.issuer) two-step login secret"
                                                   : "Set up two-step login on \(ctx.config.issuer)",
                                 text: text, attachments: [.init(fileName: "qr.png", contentType: "image/png", bytes: png)],
                                 purpose: rotation ? "new secret" : "invitation", now: ctx.now())
    guard sent else { throw CLIError("the invitation for \(user) could not be mailed to \(to) (see `twostep admin audit --event mail_failed`); it stays pending: run the command again") }
    print("twostep: invitation mailed to \(to); pending until \(AuditLog.isoTime(until))")
}

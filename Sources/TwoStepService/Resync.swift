// SPDX-License-Identifier: Apache-2.0
import TwoStepCore
import TwoStepCrypto
import TwoStepStore

/// `twostep admin resync`: an authenticator that ran far from the server (a token pressed
/// many times, a phone whose clock drifted) is found again from two codes it showed one
/// after the other (RFC 4226 §7.4; RFC 6238 §6).
public enum ResyncOutcome: Equatable {
    /// HOTP: the counter now expected (past the second code).
    case counter(UInt64)
    /// TOTP: the offset in steps now stored.
    case drift(steps: Int64, period: Int)
}

public enum ResyncError: Error, Equatable, CustomStringConvertible {
    case notEnrolled
    case noAuthenticator(String)
    case ambiguous([String])
    case notFound(String)
    case driftOff

    public var description: String {
        switch self {
        case .notEnrolled: return "not enrolled"
        case .noAuthenticator(let n): return "no authenticator named \(n)"
        case .ambiguous(let names): return "several authenticators (\(names.joined(separator: ", "))): give --name"
        case .notFound(let what): return "the two codes are not consecutive codes of this authenticator \(what); nothing was changed"
        case .driftOff: return "max_drift is 0: TOTP resync is off"
        }
    }
}

extension Verifier {
    /// How far ahead of the expected counter an HOTP resync looks.
    public static let hotpResyncRange: UInt64 = 1000
    /// Counters an HOTP resync searches from 0 when the counter was lost (a damaged state).
    public static let hotpLostResyncRange: UInt64 = 100_000

    /// Finds `first` and `second` as consecutive codes of the named authenticator (the only
    /// one if `name` is nil) and moves it there: HOTP within `hotpResyncRange` counters
    /// ahead of the expected one, the counter then past `second`; TOTP within ±`max_drift`
    /// of now, the offset then where `second` was found and its step spent. Under the
    /// user's lock. Returns the authenticator and what changed.
    public func resync(user: String, name: String?, first: [UInt8], second: [UInt8]) throws -> (Authenticator, ResyncOutcome) {
        try store.withLock(user) {
            guard let record = try store.loadRecord(user) else { throw ResyncError.notEnrolled }
            let a: Authenticator
            if let name {
                guard let found = record.authenticator(named: name) else { throw ResyncError.noAuthenticator(name) }
                a = found
            } else {
                guard record.authenticators.count == 1 else { throw ResyncError.ambiguous(record.authenticators.map(\.name)) }
                a = record.authenticators[0]
            }
            var state = try store.loadState(user)
            var device = state.device(a.name)
            let p = a.parameters
            let outcome: ResyncOutcome
            switch a.kind {
            case .hotp:
                // A lost counter (a damaged state) is searched for from 0; otherwise ahead of
                // the expected counter only, so no spent code is taken again.
                let lost = device.counter == AuthenticatorState.lostCounter
                let (last, overflow) = device.counter.addingReportingOverflow(Self.hotpResyncRange)
                let range = lost ? 0...(Self.hotpLostResyncRange - 1) : device.counter...(overflow ? UInt64.max - 1 : last)
                guard let c = try a.secret.withBytes({
                    try OTP.findConsecutive(first, second, secret: $0, counters: range, digits: p.digits, algorithm: p.algorithm)
                }) else {
                    throw ResyncError.notFound(lost ? "within its first \(Self.hotpLostResyncRange) counters"
                                                    : "within \(Self.hotpResyncRange) counters ahead")
                }
                device.counter = c + 2
                outcome = .counter(device.counter)
            case .totp:
                let limit = maxDriftSteps(a)
                guard limit > 0 else { throw ResyncError.driftOff }
                let nowStep = p.step(at: now())
                let low = max(0, nowStep - limit)
                let high = nowStep + limit
                guard high >= low, let s = try a.secret.withBytes({
                    try OTP.findConsecutive(first, second, secret: $0, counters: UInt64(low)...UInt64(high),
                                            digits: p.digits, algorithm: p.algorithm)
                }) else { throw ResyncError.notFound("within ±max_drift of now") }
                let secondStep = Int64(s) + 1
                device.drift = min(secondStep - nowStep, limit)
                device.lastStep = max(device.lastStep, secondStep)
                outcome = .drift(steps: device.drift, period: p.period)
            }
            state.devices[a.name] = device
            try store.saveState(state, for: user)
            return (a, outcome)
        }
    }
}

// SPDX-License-Identifier: Apache-2.0
import TwoStepCrypto

/// The public keys an SSH login already proved, read from the `SSH_AUTH_INFO_0` text sshd
/// puts into the PAM environment (OpenSSH >= 7.6; one method a line, e.g.
/// `publickey ssh-ed25519 AAAAC3...`). Only `publickey` lines count; nothing here is secret.
public enum SSHAuthInfo {
    /// At most this many keys are read from one login's text (sshd's own limit is far lower).
    static let maxKeys = 8

    /// The SHA256 fingerprints of the `publickey` lines, as `ssh-keygen -lf` prints them
    /// (`SHA256:` + Base64 of SHA-256 over the key blob, without padding), in order, once each.
    /// A line whose blob is not Base64 is skipped: it proves nothing.
    public static func publicKeyFingerprints(_ authInfo: String) -> [String] {
        var out: [String] = []
        for line in authInfo.split(separator: "\n") where out.count < maxKeys {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            guard words.count >= 3, words[0] == "publickey",
                  let blob = try? Base64.decode(String(words[2])), !blob.isEmpty,
                  let fingerprint = try? fingerprint(blob: blob) else { continue }
            if !out.contains(fingerprint) { out.append(fingerprint) }
        }
        return out
    }

    /// `SHA256:` + unpadded Base64 of SHA-256(blob): OpenSSH's default fingerprint.
    public static func fingerprint(blob: [UInt8]) throws -> String {
        var text = Base64.encode(try Crypto.sha256(blob))
        while text.hasSuffix("=") { text.removeLast() }
        return "SHA256:" + text
    }

    /// Whether `text` has the shape of such a fingerprint (what users may type to forget one).
    public static func isFingerprint(_ text: String) -> Bool {
        guard text.hasPrefix("SHA256:") else { return false }
        let body = text.utf8.dropFirst(7)
        return body.count == 43 && body.allSatisfy { Base64.alphabet.contains($0) }
    }
}

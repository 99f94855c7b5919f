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
                  let key = publicKey(of: blob),
                  let fingerprint = try? fingerprint(blob: key) else { continue }
            if !out.contains(fingerprint) { out.append(fingerprint) }
        }
        return out
    }

    /// The blob a key is fingerprinted by: the key's own, or for an OpenSSH certificate
    /// (`*-cert-v01@openssh.com`, PROTOCOL.certkeys) the plain public key inside it, rebuilt
    /// as `string type, key fields`: what `ssh-keygen -lf` prints for the key and for its
    /// certificate alike, so that the fingerprint users see and forget is the one trusted.
    /// nil for a certificate this cannot take apart (it proves nothing here).
    static func publicKey(of blob: [UInt8]) -> [UInt8]? {
        var reader = WireReader(blob)
        let suffix = "-cert-v01@openssh.com"
        guard let type = reader.string(), let name = String(validating: type, as: UTF8.self),
              name.hasSuffix(suffix) else { return blob }
        let plain = String(name.dropLast(suffix.count))
        // The key's fields after the nonce, each an SSH string or mpint (length-prefixed).
        let fields: Int
        switch plain {
        case "ssh-ed25519": fields = 1
        case "ssh-rsa", "sk-ssh-ed25519@openssh.com": fields = 2
        case "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521": fields = 2
        case "sk-ecdsa-sha2-nistp256@openssh.com": fields = 3
        case "ssh-dss": fields = 4
        default: return nil
        }
        guard reader.string() != nil else { return nil }   // the nonce
        let start = reader.offset
        for _ in 0..<fields where reader.string() == nil { return nil }
        let plainBytes = Array(plain.utf8)
        var key = WireReader.lengthPrefix(plainBytes.count) + plainBytes
        key += blob[start..<reader.offset]
        return key
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

/// Length-prefixed fields of the SSH wire format (RFC 4251 `string`/`mpint`), read in order.
struct WireReader {
    let bytes: [UInt8]
    var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The next field's contents, or nil when the length runs past the end.
    mutating func string() -> ArraySlice<UInt8>? {
        guard bytes.count - offset >= 4 else { return nil }
        let n = bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
        guard n <= bytes.count - offset - 4 else { return nil }
        defer { offset += 4 + n }
        return bytes[offset + 4..<offset + 4 + n]
    }

    static func lengthPrefix(_ n: Int) -> [UInt8] {
        [UInt8(truncatingIfNeeded: n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)]
    }
}

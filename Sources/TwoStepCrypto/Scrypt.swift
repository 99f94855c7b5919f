// SPDX-License-Identifier: Apache-2.0
import COpenSSL

extension Crypto {
    /// scrypt (RFC 7914) through OpenSSL's EVP_PBE_scrypt: turns a passphrase into a key
    /// (`twostep admin export-key`). Memory is 128·r·N bytes; OpenSSL's default cap is
    /// raised just enough for the parameters asked.
    public static func scrypt(passphrase: [UInt8], salt: [UInt8], n: UInt64, r: UInt64, p: UInt64,
                              count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let maxmem = 128 * r * n * (p + 1) + (1 << 20)
        let ok = withNonNullPointer(passphrase) { pass, passLen in
            withNonNullPointer(salt) { s, sLen in
                pass.withMemoryRebound(to: CChar.self, capacity: max(passLen, 1)) { cpass in
                    EVP_PBE_scrypt(cpass, passLen, s, sLen, n, r, p, maxmem, &out, count)
                }
            }
        }
        guard ok == 1 else {
            wipe(&out)
            throw CryptoError.fromQueue("EVP_PBE_scrypt")
        }
        return out
    }
}

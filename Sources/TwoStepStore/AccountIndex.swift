// SPDX-License-Identifier: Apache-2.0
import Glibc

/// Canonical user names for many names at once (`admin import --batch`). A lookup of a
/// name NSS does not know walks every source (nss-systemd alone tries a dozen paths): a
/// quarter of a millisecond each, on a busy host more. When every `passwd` source in
/// nsswitch.conf can be listed whole and matches names exactly (`files`, `systemd`), one
/// pass of getpwent answers every name the same way `canonicalUserName` would; with any
/// other source (sss, ldap, winbind, compat: maybe case-insensitive or not listable), each
/// name is looked up as before.
public final class AccountIndex {
    private let names: Set<String>?

    public init(nsswitch: String = "/etc/nsswitch.conf") {
        guard let sources = AccountIndex.passwdSources(nsswitch),
              !sources.isEmpty, sources.allSatisfy({ $0 == "files" || $0 == "systemd" }) else {
            names = nil
            return
        }
        var all = Set<String>()
        setpwent()
        while let p = getpwent() { all.insert(String(cString: p.pointee.pw_name)) }
        endpwent()
        names = all
    }

    /// What `canonicalUserName(name)` answers.
    public func canonical(_ name: String) -> String? {
        guard let names else { return canonicalUserName(name) }
        return names.contains(name) && isValidUserName(name) ? name : nil
    }

    /// The service names on the `passwd:` line ("[...]" actions dropped); nil when the
    /// file cannot be read or has no such line.
    static func passwdSources(_ path: String) -> [String]? {
        guard let f = fopen(path, "re") else { return nil }
        defer { fclose(f) }
        var line: UnsafeMutablePointer<CChar>? = nil
        var cap = 0
        defer { free(line) }
        while getline(&line, &cap, f) > 0, let l = line {
            var text = String(cString: l)
            if let hash = text.firstIndex(of: "#") { text = String(text[..<hash]) }
            guard text.hasPrefix("passwd:") else { continue }
            var sources: [String] = []
            var inAction = false
            for word in text.dropFirst("passwd:".count).split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }) {
                if word.hasPrefix("[") { inAction = true }
                if !inAction { sources.append(String(word)) }
                if word.hasSuffix("]") { inAction = false }
            }
            return sources
        }
        return nil
    }
}

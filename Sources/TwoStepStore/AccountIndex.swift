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
        guard let words = passwdLine(path) else { return nil }
        var sources: [String] = []
        var inAction = false
        for word in words {
            if word.hasPrefix("[") { inAction = true }
            if !inAction { sources.append(word) }
            if word.hasSuffix("]") { inAction = false }
        }
        return sources
    }

    /// The words after `passwd:` in nsswitch.conf, actions included; nil when the file
    /// cannot be read, or has no such line or more than one (however the name is written).
    static func passwdLine(_ path: String) -> [String]? {
        guard let f = fopen(path, "re") else { return nil }
        defer { fclose(f) }
        var line: UnsafeMutablePointer<CChar>? = nil
        var cap = 0
        defer { free(line) }
        var found: [String]?
        var lines = 0
        while getline(&line, &cap, f) > 0, let l = line {
            var text = String(cString: l)
            if let hash = text.firstIndex(of: "#") { text = String(text[..<hash]) }
            let trimmed = text.drop { $0 == " " || $0 == "\t" }
            guard let colon = trimmed.firstIndex(of: ":"),
                  trimmed[..<colon].filter({ $0 != " " && $0 != "\t" }).lowercased() == "passwd" else { continue }
            lines += 1
            found = trimmed[trimmed.index(after: colon)...]
                .split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).map(String.init)
        }
        return lines == 1 ? found : nil
    }
}

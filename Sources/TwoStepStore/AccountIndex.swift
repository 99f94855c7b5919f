// SPDX-License-Identifier: Apache-2.0
import Glibc

/// Canonical user names for many names at once (`admin import --batch`). A lookup of a
/// name NSS does not know walks every source (nss-systemd alone tries a dozen paths): a
/// quarter of a millisecond each, on a busy host more. When every `passwd` source in
/// nsswitch.conf can be listed whole and matches names exactly (`files`, `systemd`), one
/// pass of getpwent answers every name the same way `canonicalUserName` would; with any
/// other source (sss, ldap, winbind, compat: maybe case-insensitive or not listable), each
/// name is looked up as before. Not in twostep-verify, which calls no NSS.
#if !TWOSTEP_LEAN
public final class AccountIndex {
    /// Names as bytes: NSS compares them with strcmp, and Swift's String equality would
    /// take `é` and `e` + U+0301 for one name.
    private let names: Set<[UInt8]>?

    public init(nsswitch: String = "/etc/nsswitch.conf") {
        guard let sources = NSSwitch.passwd(nsswitch),
              !sources.isEmpty, sources.allSatisfy({ $0.name == "files" || $0.name == "systemd" }) else {
            names = nil
            return
        }
        var all = Set<[UInt8]>()
        setpwent()
        while let p = getpwent() {
            all.insert(Array(UnsafeRawBufferPointer(start: p.pointee.pw_name, count: strlen(p.pointee.pw_name))))
        }
        endpwent()
        names = all
    }

    /// Whether the one getpwent pass listed `name` (as bytes); nil when there is no such
    /// pass (another passwd source), and each name is to be looked up on its own.
    public func lists(_ name: String) -> Bool? {
        names.map { $0.contains(Array(name.utf8)) }
    }

    /// What `canonicalUserName(name)` answers.
    public func canonical(_ name: String) -> String? {
        guard let names else { return canonicalUserName(name) }
        return names.contains(Array(name.utf8)) && isValidUserName(name) ? name : nil
    }
}
#endif

/// nsswitch.conf read as glibc 2.36 reads it (nss/nss_database.c, nss/nss_action_parse.c):
/// per line, leading white space skipped, the database name up to white space or `:`, any
/// run of white space and colons after it; the last line of a database wins; no comment
/// syntax (a `#` is part of a word); a last line without a newline is ignored. A source name ends at white space or `[`, and a
/// bracketed action list that does not parse makes glibc's whole reload fail.
enum NSSwitch {
    struct Source: Equatable {
        let name: String
        /// A `[STATUS=ACTION ...]` list follows the name.
        let hasActions: Bool
    }

    /// The `passwd` sources; nil when the file cannot be read, holds a NUL byte, has no
    /// `passwd` line, or has a line whose action lists would not parse (glibc's lookups then
    /// fail, whatever the passwd line says).
    static func passwd(_ path: String) -> [Source]? {
        guard let f = fopen(path, "re") else { return nil }
        defer { fclose(f) }
        var line: UnsafeMutablePointer<CChar>? = nil
        var cap = 0
        defer { free(line) }
        var found: [Source]?
        while true {
            let n = getline(&line, &cap, f)
            guard n > 0, let l = line else { break }
            let bytes = UnsafeRawBufferPointer(start: l, count: n).bindMemory(to: UInt8.self)
            guard !bytes.contains(0) else { return nil }
            // glibc's reader stops at end of file before processing the line it read: a
            // last line without a newline is never used.
            guard bytes.last == 0x0a else { break }
            guard let (database, sources) = parse(Array(bytes)) else { return nil }
            if database == "passwd" { found = sources }
        }
        return ferror(f) == 0 ? found : nil
    }

    /// The `passwd` sources when the first is `files` with no action after it (an entry
    /// `files` finds is then glibc's answer); nil otherwise, as when `passwd` is nil.
    static func filesFirst(_ path: String) -> [Source]? {
        guard let sources = passwd(path), let first = sources.first, first.name == "files", !first.hasActions else {
            return nil
        }
        return sources
    }

    static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || (b >= 0x09 && b <= 0x0d) }

    /// One line: the database name and its sources; ("", []) for a line glibc skips; nil
    /// when a source's action list would not parse.
    static func parse(_ line: [UInt8]) -> (String, [Source])? {
        var i = 0
        while i < line.count && isSpace(line[i]) { i += 1 }
        let nameStart = i
        while i < line.count && !isSpace(line[i]) && line[i] != UInt8(ascii: ":") { i += 1 }
        guard i < line.count, i > nameStart else { return ("", []) }
        let database = String(decoding: line[nameStart..<i], as: UTF8.self)
        while i < line.count && (isSpace(line[i]) || line[i] == UInt8(ascii: ":")) { i += 1 }
        var sources: [Source] = []
        while true {
            while i < line.count && isSpace(line[i]) { i += 1 }
            guard i < line.count else { return (database, sources) }
            let start = i
            while i < line.count && !isSpace(line[i]) && line[i] != UInt8(ascii: "[") { i += 1 }
            guard i > start else { return (database, sources) }  // glibc stops at a stray `[`
            let name = String(decoding: line[start..<i], as: UTF8.self)
            while i < line.count && isSpace(line[i]) { i += 1 }
            var actions = false
            if i < line.count && line[i] == UInt8(ascii: "[") {
                actions = true
                guard let end = parseActions(line, from: i + 1) else { return nil }
                i = end
            }
            sources.append(Source(name: name, hasActions: actions))
        }
    }

    /// `( "!"? STATUS "=" ACTION )+ "]"` from `i`; the index after `]`, or nil.
    static func parseActions(_ line: [UInt8], from start: Int) -> Int? {
        var i = start
        func skip() { while i < line.count && isSpace(line[i]) { i += 1 } }
        func word() -> String {
            let s = i
            while i < line.count && !isSpace(line[i]) && line[i] != UInt8(ascii: "=") && line[i] != UInt8(ascii: "]") { i += 1 }
            // ASCII case folding only, as glibc's strncasecmp in the C locale.
            return String(decoding: line[s..<i].map { $0 >= 0x61 && $0 <= 0x7a ? $0 - 0x20 : $0 }, as: UTF8.self)
        }
        skip()
        repeat {
            if i < line.count && line[i] == UInt8(ascii: "!") { i += 1 }
            guard ["SUCCESS", "UNAVAIL", "NOTFOUND", "TRYAGAIN"].contains(word()) else { return nil }
            skip()
            guard i < line.count && line[i] == UInt8(ascii: "=") else { return nil }
            i += 1
            skip()
            guard ["RETURN", "CONTINUE", "MERGE"].contains(word()) else { return nil }
            skip()
        } while i < line.count && line[i] != UInt8(ascii: "]")
        return i < line.count ? i + 1 : nil
    }
}

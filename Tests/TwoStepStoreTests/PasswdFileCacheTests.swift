// SPDX-License-Identifier: Apache-2.0
import Foundation
@testable import TwoStepStore
import XCTest

/// The running helper's /etc/passwd index answers only as glibc's `files` source would, and
/// leaves every doubtful name to NSS. (test_socket_mode.py drives the real helper.)
final class PasswdFileCacheTests: XCTestCase {
    private var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "twostep-pwcache-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// A clock `settleSeconds` + 1 s ahead: files written by the test count as settled.
    private static func later() -> timespec {
        var t = PasswdFileCache.realTime()
        t.tv_sec += PasswdFileCache.settleSeconds + 1
        return t
    }

    /// A cache of the two files, refreshed once (as a worker does before it accepts).
    private func cache(_ passwd: String, _ nsswitch: String) -> PasswdFileCache {
        let c = PasswdFileCache(passwd: passwd, nsswitch: nsswitch, now: PasswdFileCacheTests.later)
        c.refresh()
        return c
    }

    private func write(_ name: String, _ text: String) throws -> String {
        let path = dir + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testIndexKeepsTheFirstLineOfEachNameAndLeavesDoubtfulNamesOut() {
        let text = """
            root:x:0:0:root:/root:/bin/bash
            # alice:x:1:1::/:/bin/sh
              bob:x:1001:1002:Bob:/home/bob:/bin/sh
            \u{0B}carol:x:1003:1004::/home/carol:/bin/sh:with:colons

            bob:x:1001:9999:second line:/:/bin/sh
            dave:x:1005:100
            erin:x::100::/:/bin/sh
            erin:x:1006:100::/:/bin/sh
            frank:x:1007:+100::/:/bin/sh
            gina:x:1008:4294967296::/:/bin/sh
            +nis:x:1:1::/:/bin/sh
            -gone:x:1:1::/:/bin/sh
            hal:x:4294967295:7::/:
            """
        let entries = PasswdFileCache.index(Array(text.utf8))
        func gid(_ name: String) -> gid_t? {
            entries[PasswdFileCache.NameKey(Array(name.utf8))].flatMap { $0 == PasswdFileCache.doubtful ? nil : gid_t($0) }
        }
        XCTAssertEqual(gid("root"), 0)
        XCTAssertEqual(gid("bob"), 1002, "the first line of a name is the one glibc returns")
        XCTAssertEqual(gid("carol"), 1004, "leading white space is skipped; the shell keeps its colons")
        XCTAssertEqual(gid("hal"), 7)
        for name in ["alice", "# alice", "dave", "erin", "frank", "gina", "+nis", "-gone", ""] {
            XCTAssertNil(gid(name), "\(name) must be left to NSS")
        }
        XCTAssertEqual(entries.values.filter { $0 != PasswdFileCache.doubtful }.count, 4)
        XCTAssertTrue(PasswdFileCache.index(Array("a:x:1:1::/:/bin/sh\nb:x:2:2::/:\0\n".utf8)).isEmpty,
                      "a NUL byte anywhere: nothing is indexed")
        let long = "a:x:1:1::/:/bin/sh\nb:x:2:2:" + String(repeating: "g", count: PasswdFileCache.maximumLine) + ":/:\n"
        XCTAssertTrue(PasswdFileCache.index(Array(long.utf8)).isEmpty,
                      "a line longer than the helper's NSS buffer allows: nothing is indexed")
    }

    /// twostep-verify's one-name read of the file follows the index's rules, stops at the
    /// name's first line, and answers nothing where NSS would have to be asked.
    func testLookUpOnceAnswersAsTheIndexWouldAndOnlyFromFilesFirst() throws {
        let passwd = try write("passwd", """
            root:x:0:0:root:/root:/bin/bash
            bob:x:1001:1002:Bob:/home/bob:/bin/sh
            bob:x:1001:9999:second line:/:/bin/sh
            dave:x:1005:100
            dave:x:1005:100::/:/bin/sh
            +nis:x:1:1::/:/bin/sh
            jos\u{E9}:x:1010:1010::/:/bin/sh
            after:x:1020:1020::/:/bin/sh
            z:x:1:1::/:\0

            """)
        let files = try write("nsswitch.conf", "passwd: files systemd\n")
        func once(_ name: String, _ nsswitch: String) -> AccountLookup? {
            PasswdFileCache.lookUpOnce(name, passwd: passwd, nsswitch: nsswitch)
        }
        XCTAssertEqual(once("root", files), .found(name: "root", gid: 0))
        XCTAssertEqual(once("bob", files), .found(name: "bob", gid: 1002), "the first line of a name is the one glibc returns")
        XCTAssertEqual(once("after", files), .found(name: "after", gid: 1020), "a NUL byte after the name's line is never read")
        XCTAssertEqual(once("jos\u{E9}", files), .found(name: "jos\u{E9}", gid: 1010))
        for name in ["dave", "+nis", "-nis", "nobody-here", "jose\u{301}", "z"] {
            XCTAssertNil(once(name, files), "\(name) must be left to NSS")
        }
        for conf in ["passwd: systemd files\n", "passwd: files [NOTFOUND=return] systemd\n", "group: files\n",
                     "passwd: files\npasswd: sss files\n"] {
            XCTAssertNil(once("root", try write("ns-other", conf)), "\(conf) does not ask files first and alone")
        }
        XCTAssertEqual(once("root", try write("ns-last", "passwd: sss\npasswd: files sss\n")), .found(name: "root", gid: 0),
                       "the last passwd line is the one glibc uses")
        // `files` alone: a name with no line at all is no user (glibc asks nobody else); a
        // doubtful line, or a NUL byte before the end, still leaves it to NSS.
        let alone = try write("ns-alone", "passwd:   files\n")
        XCTAssertEqual(once("bob", alone), .found(name: "bob", gid: 1002))
        for name in ["dave", "+nis", "nobody-here"] {
            XCTAssertNil(once(name, alone), "\(name): a doubtful line, or the NUL byte at the file's end")
        }
        let clean = try write("passwd-clean", "root:x:0:0::/:\njos\u{E9}:x:1010:1010::/:/bin/sh\n")
        for name in ["nobody-here", "jose\u{301}"] {
            XCTAssertEqual(PasswdFileCache.lookUpOnce(name, passwd: clean, nsswitch: alone), .unknown, name)
            XCTAssertNil(PasswdFileCache.lookUpOnce(name, passwd: clean, nsswitch: files), "\(name): systemd is asked next")
        }
        XCTAssertNil(PasswdFileCache.lookUpOnce("nobody-here", passwd: clean, nsswitch: dir + "/no-nsswitch"))
        let long = try write("passwd-long", "b:x:2:2:" + String(repeating: "g", count: PasswdFileCache.maximumLine) + ":/:\nroot:x:0:0::/:\n")
        XCTAssertNil(PasswdFileCache.lookUpOnce("root", passwd: long, nsswitch: files),
                     "a line longer than the helper's NSS buffer allows before the name: nothing")
        XCTAssertNil(PasswdFileCache.lookUpOnce("root", passwd: dir + "/missing", nsswitch: files))
        // Lines of other names are not split into fields, but still judged whole.
        let nul = try write("passwd-nul", "a:x:1:1::/:\0\nroot:x:0:0::/:\n")
        XCTAssertNil(PasswdFileCache.lookUpOnce("root", passwd: nul, nsswitch: files), "a NUL byte in another name's line before")
        let prefixes = try write("passwd-prefixes", "roo:x:1:1::/:\nrooter:x:2:2::/:\nroot\nroot:x:0:7::/:\n")
        XCTAssertNil(PasswdFileCache.lookUpOnce("root", passwd: prefixes, nsswitch: files),
                     "the name's first line (no colon at all) is doubtful, whatever follows")
        let later = try write("passwd-later", "roo:x:1:1::/:\nrooter:x:2:2::/:\nroot:x:0:7::/:\n")
        XCTAssertEqual(PasswdFileCache.lookUpOnce("root", passwd: later, nsswitch: files), .found(name: "root", gid: 7),
                       "names that share a prefix with it are other names")
    }

    /// lookUpOnce reads in 64 KiB chunks and stops at the name's line: a line across a
    /// chunk boundary is read whole, and what follows the name's line is never judged.
    func testLookUpOnceReadsInChunksAndStopsAtTheName() throws {
        // 24-byte lines: line 2730 (from 0) starts at byte 65,520 and crosses 65,536.
        var text = ""
        for i in 0..<4000 {
            text += String(format: "u%05d:x:1:%d::/:/bin/sh\n", i, i % 10)
        }
        XCTAssertEqual(text.utf8.count, 4000 * 24)
        let passwd = try write("passwd-long-file", text + "late:x:9:4242::/:/bin/sh\n" + "after:x:1:1::/:\0\n")
        let alone = try write("ns-alone", "passwd: files\n")
        func once(_ name: String) -> AccountLookup? { PasswdFileCache.lookUpOnce(name, passwd: passwd, nsswitch: alone) }
        XCTAssertEqual(once("u02730"), .found(name: "u02730", gid: 0), "the line across the first chunk's end")
        XCTAssertEqual(once("u02729"), .found(name: "u02729", gid: 9))
        XCTAssertEqual(once("u03999"), .found(name: "u03999", gid: 9))
        XCTAssertEqual(once("late"), .found(name: "late", gid: 4242), "a NUL byte after the name's line is never read")
        XCTAssertNil(once("nobody-here"), "the NUL byte before the end: the file cannot say no")
    }

    func testNamesAreComparedAsBytesNotAsEquivalentUnicode() throws {
        // "josé" precomposed (U+00E9) and decomposed (e + U+0301): one String to Swift's ==,
        // two names to glibc's strcmp.
        let composed = "jos\u{E9}", decomposed = "jose\u{301}"
        XCTAssertEqual(composed, decomposed)
        let passwd = try write("passwd", "\(composed):x:1000:1000::/:/bin/sh\n\(decomposed):x:1001:2000::/:/bin/sh\n")
        let nsswitch = try write("nsswitch.conf", "passwd: files\n")
        let c = cache(passwd, nsswitch)
        XCTAssertEqual(c.lookUp(composed), .found(name: composed, gid: 1000))
        XCTAssertEqual(c.lookUp(decomposed), .found(name: decomposed, gid: 2000))
        let only = try write("passwd2", "\(composed):x:1000:1000::/:/bin/sh\n")
        XCTAssertNil(cache(only, nsswitch).lookUp(decomposed), "a spelling the file lacks is NSS's to answer")
    }

    func testLookUpAnswersOnlyWhenFilesComesFirst() throws {
        let passwd = try write("passwd", "alice:x:1000:1000::/home/alice:/bin/sh\n")
        for (text, answers) in [("passwd: files systemd", true), ("passwd:\tfiles", true),
                                ("  passwd files sss", true), ("\u{0C}passwd:: files # comment", true),
                                ("passwd: files [SUCCESS=continue] ldap", false), ("passwd: files[NOTFOUND=return]", false),
                                ("passwd: sss files", false), ("passwd: compat", false), ("PASSWD: files", false),
                                ("passwd: files#x sss", false), ("group: files", false),
                                ("passwd: files\npasswd: sss files", false), ("passwd: sss\npasswd: files", true),
                                ("passwd: files\nhosts: files [NOTFOUND=retrun] dns", false),
                                ("passwd: files\nhosts: files mdns4_minimal [notfound=RETURN] dns", true),
                                // glibc folds ASCII case only: `ſ` (U+017F) is no `s`.
                                ("passwd: files\nhosts: files [\u{17F}uccess=return] dns", false)] {
            let nsswitch = try write("nsswitch-\(UUID().uuidString)", text + "\n")
            let c = cache(passwd, nsswitch)
            XCTAssertEqual(c.lookUp("alice") != nil, answers, text)
            XCTAssertNil(c.lookUp("bob"), "a name the file lacks is NSS's to answer (\(text))")
        }
        XCTAssertNil(cache(passwd, dir + "/missing").lookUp("alice"), "no nsswitch.conf: NSS decides")
        // glibc never processes a last line without a newline: here `sss files` stands.
        let unterminated = try write("nsswitch-unterminated", "passwd: sss files\npasswd: files")
        XCTAssertNil(cache(passwd, unterminated).lookUp("alice"))
        let terminated = try write("nsswitch-terminated", "passwd: sss files\npasswd: files\n")
        XCTAssertNotNil(cache(passwd, terminated).lookUp("alice"))
    }

    func testAFileChangedAMomentAgoIsLeftToNSS() throws {
        let passwd = try write("passwd", "alice:x:1000:1000::/:/bin/sh\n")
        let nsswitch = try write("nsswitch.conf", "passwd: files\n")
        var clock = PasswdFileCache.realTime()
        let c = PasswdFileCache(passwd: passwd, nsswitch: nsswitch, now: { clock })
        c.refresh()
        XCTAssertNil(c.lookUp("alice"), "written just now: not indexed yet")
        clock.tv_sec += PasswdFileCache.settleSeconds + 1
        XCTAssertNil(c.lookUp("alice"), "a look-up never builds the index")
        c.refresh()
        XCTAssertEqual(c.lookUp("alice"), .found(name: "alice", gid: 1000))
    }

    func testAChangeDropsTheIndexAtOnceAndRefreshBringsItBack() throws {
        let nsswitch = try write("nsswitch.conf", "passwd: files systemd\n")
        let passwd = dir + "/passwd"
        try "alice:x:1000:1000::/:/bin/sh\n".write(toFile: passwd, atomically: true, encoding: .utf8)
        let cache = self.cache(passwd, nsswitch)
        XCTAssertEqual(cache.lookUp("alice"), .found(name: "alice", gid: 1000))

        // Replaced (a new inode, as vipw and useradd do): the primary group changed. Until
        // the next refresh NSS answers (never the old gid), then the new index does.
        try "alice:x:1000:2000::/:/bin/sh\n".write(toFile: passwd, atomically: true, encoding: .utf8)
        XCTAssertNil(cache.lookUp("alice"))
        cache.refresh()
        XCTAssertEqual(cache.lookUp("alice"), .found(name: "alice", gid: 2000))

        // Rewritten in place with the same size (same inode): the timestamps tell.
        let fd = open(passwd, O_WRONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        let same = Array("alicf:x:1000:2000::/:/bin/sh\n".utf8)
        XCTAssertEqual(same.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }, same.count)
        close(fd)
        var times = [timespec(tv_sec: 1_700_000_000, tv_nsec: 0), timespec(tv_sec: 1_700_000_000, tv_nsec: 0)]
        XCTAssertEqual(utimensat(AT_FDCWD, passwd, &times, 0), 0)
        XCTAssertNil(cache.lookUp("alice"), "a renamed account is no longer answered from the old index")
        cache.refresh()
        XCTAssertNil(cache.lookUp("alice"))
        XCTAssertEqual(cache.lookUp("alicf"), .found(name: "alicf", gid: 2000))

        // nsswitch.conf changed to ask another source first: the index stops answering.
        try "passwd: sss files\n".write(toFile: nsswitch, atomically: true, encoding: .utf8)
        cache.refresh()
        XCTAssertNil(cache.lookUp("alicf"))

        // A FIFO in place of the file: nothing is indexed, and nothing hangs.
        try "passwd: files\n".write(toFile: nsswitch, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: passwd)
        XCTAssertEqual(mkfifo(passwd, 0o600), 0)
        cache.refresh()
        XCTAssertNil(cache.lookUp("alicf"))
        XCTAssertEqual(cache.count, 0)
    }
}

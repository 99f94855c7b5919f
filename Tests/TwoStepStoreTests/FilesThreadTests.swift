// SPDX-License-Identifier: Apache-2.0
import Foundation
import TwoStepStore
import XCTest

/// `admin list` and `admin report` read records on two threads, each with its own store;
/// what the store keeps process-wide must bear that. An unguarded dictionary of checked
/// directories crashed `admin list` (SIGSEGV) on a loaded machine.
final class FilesThreadTests: XCTestCase {
    func testCheckingDirectoriesFromTwoThreadsAtOnce() throws {
        let root = NSTemporaryDirectory() + "twostep-threads-\(UUID().uuidString)"
        try Files.makeDirectory(root, mode: 0o700)
        defer { try? FileManager.default.removeItem(atPath: root) }
        // Many directories never checked before, so that both threads insert at once (each
        // insertion may grow the dictionary under the other thread's feet).
        let dirs = (0..<3000).map { "\(root)/d\($0)" }
        for d in dirs { try Files.makeDirectory(d, mode: 0o700) }
        let failures = NSLock()
        var failed: [String] = []
        DispatchQueue.concurrentPerform(iterations: 4) { lane in
            let order = lane % 2 == 0 ? dirs : dirs.reversed()
            for d in order {
                do {
                    let fd = try Files.openPrivateDirectory(d)
                    close(fd)
                } catch {
                    failures.lock(); failed.append("\(d): \(error)"); failures.unlock()
                }
            }
        }
        XCTAssertEqual(failed, [])
    }
}

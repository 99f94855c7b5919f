// SPDX-License-Identifier: Apache-2.0
import Foundation
import TwoStepStore
import XCTest

/// The state file written in place: two slots, the newest valid one wins.
final class StateFileTests: XCTestCase {
    func statePath(_ s: Scratch) -> String { s.config.stateDir + "/alice.state" }

    func bytes(_ s: Scratch) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: statePath(s))))
    }

    func write(_ s: Scratch, _ b: [UInt8]) throws {
        try Data(b).write(to: URL(fileURLWithPath: statePath(s)))
        chmod(statePath(s), 0o600)
    }

    func testWritesAlternateSlotsOfAFixedSizeFile() throws {
        let s = try Scratch()
        for step in Int64(1)...5 {
            try s.store.saveState(UserState(lastStep: step), for: "alice")
            XCTAssertEqual(try bytes(s).count, StateFile.fileSize)
            XCTAssertEqual(try s.store.loadState("alice").lastStep, step)
        }
        // No temporary file is left beside it.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: s.config.stateDir).sorted(), ["alice.state"])
    }

    func testATornSlotLeavesTheOtherOne() throws {
        let s = try Scratch()
        try s.store.saveState(UserState(lastStep: 10), for: "alice")
        try s.store.saveState(UserState(lastStep: 11), for: "alice")
        let good = try bytes(s)
        // Tear each slot in turn, at its header and in its payload: the other slot is read.
        for (offset, expected) in [(0, Int64(11)), (30, Int64(11)), (StateFile.slotSize + 4, Int64(10)),
                                   (StateFile.slotSize + 25, Int64(10))] {
            var torn = good
            torn[offset] ^= 0xFF
            try write(s, torn)
            let fresh = FileUserStore(directory: s.config.stateDir, keys: s.keys)
            XCTAssertEqual(try fresh.loadState("alice").lastStep, expected, "torn byte at \(offset)")
        }
        // Both slots torn: damaged, never a fresh state (that would forget the replay mark).
        var both = good
        both[0] ^= 0xFF
        both[StateFile.slotSize] ^= 0xFF
        try write(s, both)
        XCTAssertThrowsError(try FileUserStore(directory: s.config.stateDir, keys: s.keys).loadState("alice"))
    }

    func testTheOlderTextFileLoadsAndIsUpgradedByTheNextWrite() throws {
        let s = try Scratch()
        try write(s, Array("v=1\nlast_step=42\nlocked_until=0\nfailures=7,8\n".utf8))
        var state = try s.store.loadState("alice")
        XCTAssertEqual(state.lastStep, 42)
        XCTAssertEqual(state.failures, [7, 8])
        state.lastStep = 43
        try s.store.saveState(state, for: "alice")
        XCTAssertEqual(try bytes(s).count, StateFile.fileSize)
        XCTAssertEqual(Array(try bytes(s).prefix(4)), Array("TSS2".utf8))
        XCTAssertEqual(try FileUserStore(directory: s.config.stateDir, keys: s.keys).loadState("alice").lastStep, 43)
    }

    func testAStateThatOutgrowsItsSlotsGetsLargerOnes() throws {
        let s = try Scratch()
        try s.store.saveState(UserState(lastStep: 5), for: "alice")
        // 900 recent failures (rate_limit up to 1000): about 10 KiB, more than a 4 KiB slot.
        let big = UserState(lastStep: 6, failures: Array(repeating: 1_700_000_000, count: 900))
        try s.store.saveState(big, for: "alice")
        XCTAssertEqual(try bytes(s).count, 2 * 16384)
        XCTAssertEqual(try FileUserStore(directory: s.config.stateDir, keys: s.keys).loadState("alice"), big)
        // In place again at that size, and back to normal states in the same file.
        try s.store.saveState(UserState(lastStep: 7), for: "alice")
        XCTAssertEqual(try bytes(s).count, 2 * 16384)
        XCTAssertEqual(try FileUserStore(directory: s.config.stateDir, keys: s.keys).loadState("alice").lastStep, 7)
    }

    func testAnOversizedStateIsRefusedAndTheOldOneKept() throws {
        let s = try Scratch()
        try s.store.saveState(UserState(lastStep: 5), for: "alice")
        let huge = UserState(lastStep: 6, failures: Array(repeating: 1_700_000_000, count: 3000))
        XCTAssertThrowsError(try s.store.saveState(huge, for: "alice")) { error in
            XCTAssertTrue("\(error)".contains("exceeds the largest slot"), "\(error)")
        }
        XCTAssertEqual(try s.store.loadState("alice").lastStep, 5)
    }
}

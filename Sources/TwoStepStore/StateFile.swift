// SPDX-License-Identifier: Apache-2.0
import CZlib
import Glibc
import TwoStepSystem

/// A user's mutable state on disk, written in place: a fixed-size file of two slots, each
/// a sequence number, a length, a CRC-32 and the state's bytes. A write goes to the slot
/// that does not hold the newest state, with one pwrite and one fdatasync: no temporary
/// file, no rename, no directory fsync on the login path. A write torn by a crash leaves
/// its slot's checksum wrong, so the other slot (the state before it) is read.
///
/// Slot layout (little-endian): "TSS2" | sequence u64 | length u32 | crc32 u32 | bytes,
/// the CRC over everything before it and the bytes. Files written before this format
/// (`key=value` text, replaced by rename) still load; the next write upgrades them.
public enum StateFile {
    public static let slotSize = 4096
    public static let fileSize = 2 * slotSize
    static let magic: [UInt8] = Array("TSS2".utf8)
    static let headerSize = 20
    /// The largest serialized state a slot holds.
    public static let maxPayload = slotSize - headerSize

    /// One valid slot: its index, sequence number and bytes.
    struct Slot {
        let index: Int
        let sequence: UInt64
        let payload: [UInt8]
    }

    /// The bytes of one slot holding `payload` with `sequence`.
    static func encodeSlot(_ payload: [UInt8], sequence: UInt64) -> [UInt8] {
        var out = magic
        out.reserveCapacity(slotSize)
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: sequence >> (8 * UInt64(i)))) }
        let n = UInt32(payload.count)
        for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: n >> (8 * UInt32(i)))) }
        let crc = checksum(out, payload)
        for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i)))) }
        out += payload
        out += [UInt8](repeating: 0, count: slotSize - out.count)
        return out
    }

    static func checksum(_ header: [UInt8], _ payload: some Collection<UInt8>) -> UInt32 {
        var crc = crc32(0, nil, 0)
        header.withUnsafeBufferPointer { crc = crc32(crc, $0.baseAddress, uInt($0.count)) }
        Array(payload).withUnsafeBufferPointer { crc = crc32(crc, $0.baseAddress, uInt($0.count)) }
        return UInt32(truncatingIfNeeded: crc)
    }

    /// The slot starting at `offset` in `file`, or nil when it is empty or torn.
    static func decodeSlot(_ file: [UInt8], index: Int) -> Slot? {
        let base = index * slotSize
        guard file.count >= base + slotSize, Array(file[base..<base + 4]) == magic else { return nil }
        func le(_ at: Int, _ width: Int) -> UInt64 {
            var v: UInt64 = 0
            for i in 0..<width { v |= UInt64(file[base + at + i]) << (8 * UInt64(i)) }
            return v
        }
        let sequence = le(4, 8)
        let length = Int(le(12, 4))
        let stored = UInt32(le(16, 4))
        guard length <= maxPayload else { return nil }
        let payload = Array(file[base + headerSize..<base + headerSize + length])
        guard checksum(Array(file[base..<base + 16]), payload) == stored else { return nil }
        return Slot(index: index, sequence: sequence, payload: payload)
    }

    /// The newest valid slot of a file in this format; nil when the bytes are not one.
    static func newest(_ file: [UInt8]) -> Slot? {
        guard file.count == fileSize else { return nil }
        let slots = [decodeSlot(file, index: 0), decodeSlot(file, index: 1)].compactMap { $0 }
        return slots.max { $0.sequence < $1.sequence }
    }

    /// The state's bytes from a state file's contents: the newest valid slot, or the whole
    /// file when it is the older `key=value` text. nil when neither (damaged).
    public static func payload(of file: [UInt8]) -> [UInt8]? {
        if let slot = newest(file) { return slot.payload }
        if file.starts(with: Array("v=".utf8)) { return file }
        return nil
    }

    /// Writes `payload` as the newest state of `name` in `dirfd`. In place when the file is
    /// already in this format; otherwise (missing, or the older text format) it is created
    /// whole by `Files.writeAtomically`, once per user.
    public static func write(dirfd: Int32, dirPath: String, name: String, payload: [UInt8]) throws {
        let path = dirPath + "/" + name
        guard payload.count <= maxPayload else {
            throw StoreError.damaged(path: path, reason: "state of \(payload.count) bytes exceeds its slot " +
                                     "(\(maxPayload) bytes): not written")
        }
        let fd = Sys.retry { openat(dirfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK) }
        if fd < 0 {
            guard errno == ENOENT else {
                if errno == ELOOP { throw StoreError.unsafe(path: path, reason: "is a symbolic link") }
                throw StoreError.io(path: path, operation: "open", errno: errno)
            }
            return try create(dirfd: dirfd, dirPath: dirPath, name: name, payload: payload)
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw StoreError.io(path: path, operation: "stat", errno: errno) }
        guard st.st_mode & S_IFMT == S_IFREG else { throw StoreError.unsafe(path: path, reason: "not a regular file") }
        if let problem = Files.ownershipProblem(st, allowGroupOtherRead: false) {
            throw StoreError.unsafe(path: path, reason: problem)
        }
        guard Int(st.st_size) == fileSize else {
            // The older text format (or a damaged file the caller chose to replace).
            return try create(dirfd: dirfd, dirPath: dirPath, name: name, payload: payload)
        }
        var file = [UInt8](repeating: 0, count: fileSize)
        let n = file.withUnsafeMutableBytes { p in Sys.retry { pread(fd, p.baseAddress, fileSize, 0) } }
        guard n == fileSize else { throw StoreError.io(path: path, operation: "read", errno: n < 0 ? errno : EIO) }
        // The slot that does not hold the newest state; with neither valid, slot 0.
        let current = newest(file)
        let target = current.map { 1 - $0.index } ?? 0
        let slot = encodeSlot(payload, sequence: (current?.sequence ?? 0) &+ 1)
        let written = slot.withUnsafeBytes { p in
            Sys.retry { pwrite(fd, p.baseAddress, slotSize, off_t(target * slotSize)) }
        }
        guard written == slotSize else {
            throw StoreError.io(path: path, operation: "write", errno: written < 0 ? errno : EIO)
        }
        guard Sys.retry({ fdatasync(fd) }) == 0 else {
            throw StoreError.io(path: path, operation: "fdatasync", errno: errno)
        }
    }

    /// A new file in this format, slot 0 holding `payload`, slot 1 empty.
    static func create(dirfd: Int32, dirPath: String, name: String, payload: [UInt8]) throws {
        let file = encodeSlot(payload, sequence: 1) + [UInt8](repeating: 0, count: slotSize)
        try Files.writeAtomically(dirfd: dirfd, dirPath: dirPath, name: name, bytes: file)
    }
}

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
///
/// A slot is 4 KiB, which holds a state with every authenticator and the failures of the
/// default `rate_limit` many times over. A state that outgrows its slots (a long list of
/// recent failures under a large `rate_limit`) gets a new file with slots twice as large,
/// written whole by `Files.writeAtomically`, up to 32 KiB a slot (UserState's worst case
/// is under 24 KiB); the slot size is the file's size over two.
public enum StateFile {
    public static let slotSize = 4096
    public static let maxSlotSize = 32768
    public static let fileSize = 2 * slotSize
    static let magic: [UInt8] = Array("TSS2".utf8)
    static let headerSize = 20
    /// The largest serialized state the largest slot holds.
    public static let maxPayload = maxSlotSize - headerSize

    /// The slot size of a file of `size` bytes in this format, or nil.
    static func slotSize(ofFile size: Int) -> Int? {
        var slot = slotSize
        while slot <= maxSlotSize {
            if size == 2 * slot { return slot }
            slot *= 2
        }
        return nil
    }

    /// The smallest slot size that holds `payloadCount` bytes.
    static func slotSize(for payloadCount: Int) -> Int {
        var slot = slotSize
        while slot - headerSize < payloadCount { slot *= 2 }
        return slot
    }

    /// One valid slot: its index, sequence number and bytes.
    struct Slot {
        let index: Int
        let sequence: UInt64
        let payload: [UInt8]
    }

    /// The bytes of one slot of `size` bytes holding `payload` with `sequence`.
    static func encodeSlot(_ payload: [UInt8], sequence: UInt64, size: Int) -> [UInt8] {
        var out = magic
        out.reserveCapacity(size)
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: sequence >> (8 * UInt64(i)))) }
        let n = UInt32(payload.count)
        for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: n >> (8 * UInt32(i)))) }
        let crc = checksum(out[...], payload[...])
        for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i)))) }
        out += payload
        out += [UInt8](repeating: 0, count: size - out.count)
        return out
    }

    static func checksum(_ header: ArraySlice<UInt8>, _ payload: ArraySlice<UInt8>) -> UInt32 {
        var crc = crc32(0, nil, 0)
        header.withUnsafeBufferPointer { crc = crc32(crc, $0.baseAddress, uInt($0.count)) }
        payload.withUnsafeBufferPointer { crc = crc32(crc, $0.baseAddress, uInt($0.count)) }
        return UInt32(truncatingIfNeeded: crc)
    }

    /// Slot `index` (of `size` bytes) in `file`, or nil when it is empty or torn.
    static func decodeSlot(_ file: [UInt8], index: Int, size: Int) -> Slot? {
        let base = index * size
        guard file.count >= base + size, file[base..<base + 4].elementsEqual(magic) else { return nil }
        func le(_ at: Int, _ width: Int) -> UInt64 {
            var v: UInt64 = 0
            for i in 0..<width { v |= UInt64(file[base + at + i]) << (8 * UInt64(i)) }
            return v
        }
        let sequence = le(4, 8)
        let length = Int(le(12, 4))
        let stored = UInt32(le(16, 4))
        guard length <= size - headerSize else { return nil }
        let payload = file[base + headerSize..<base + headerSize + length]
        guard checksum(file[base..<base + 16], payload) == stored else { return nil }
        return Slot(index: index, sequence: sequence, payload: Array(payload))
    }

    /// The newest valid slot of a file in this format; nil when the bytes are not one.
    static func newest(_ file: [UInt8]) -> Slot? {
        guard let size = slotSize(ofFile: file.count) else { return nil }
        let slots = [decodeSlot(file, index: 0, size: size), decodeSlot(file, index: 1, size: size)].compactMap { $0 }
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
    public static func write(dirfd: Int32, dirPath: String, name: String, payload: [UInt8],
                             temporary: String? = nil) throws {
        let path = dirPath + "/" + name
        guard payload.count <= maxPayload else {
            throw StoreError.damaged(path: path, reason: "state of \(payload.count) bytes exceeds the largest slot " +
                                     "(\(maxPayload) bytes): not written")
        }
        let fd = Sys.retry { openat(dirfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK) }
        if fd < 0 {
            guard errno == ENOENT else {
                if errno == ELOOP { throw StoreError.unsafe(path: path, reason: "is a symbolic link") }
                throw StoreError.io(path: path, operation: "open", errno: errno)
            }
            return try create(dirfd: dirfd, dirPath: dirPath, name: name, payload: payload, temporary: temporary)
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw StoreError.io(path: path, operation: "stat", errno: errno) }
        guard st.st_mode & S_IFMT == S_IFREG else { throw StoreError.unsafe(path: path, reason: "not a regular file") }
        if let problem = Files.ownershipProblem(st, allowGroupOtherRead: false) {
            throw StoreError.unsafe(path: path, reason: problem)
        }
        guard let size = slotSize(ofFile: Int(st.st_size)), payload.count <= size - headerSize else {
            // The older text format, a state that outgrew its slots (or a damaged file the
            // caller chose to replace): a new file, whole.
            return try create(dirfd: dirfd, dirPath: dirPath, name: name, payload: payload, temporary: temporary)
        }
        var file = [UInt8](repeating: 0, count: 2 * size)
        let n = file.withUnsafeMutableBytes { p in Sys.retry { pread(fd, p.baseAddress, p.count, 0) } }
        guard n == 2 * size else { throw StoreError.io(path: path, operation: "read", errno: n < 0 ? errno : EIO) }
        // The slot that does not hold the newest state; with neither valid, slot 0.
        let current = newest(file)
        let target = current.map { 1 - $0.index } ?? 0
        let slot = encodeSlot(payload, sequence: (current?.sequence ?? 0) &+ 1, size: size)
        let written = slot.withUnsafeBytes { p in
            Sys.retry { pwrite(fd, p.baseAddress, size, off_t(target * size)) }
        }
        guard written == size else {
            throw StoreError.io(path: path, operation: "write", errno: written < 0 ? errno : EIO)
        }
        guard Sys.retry({ fdatasync(fd) }) == 0 else {
            throw StoreError.io(path: path, operation: "fdatasync", errno: errno)
        }
    }

    /// A new file in this format with the smallest slots that hold `payload`, slot 0
    /// holding it, slot 1 empty.
    static func create(dirfd: Int32, dirPath: String, name: String, payload: [UInt8],
                       temporary: String? = nil) throws {
        let size = slotSize(for: payload.count)
        let file = encodeSlot(payload, sequence: 1, size: size) + [UInt8](repeating: 0, count: size)
        try Files.writeAtomically(dirfd: dirfd, dirPath: dirPath, name: name, bytes: file, temporary: temporary)
    }
}

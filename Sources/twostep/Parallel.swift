// SPDX-License-Identifier: Apache-2.0
import Glibc
import TwoStepStore

// Listings of every user (`admin list`, `admin report`) on two threads: at 100,000 users
// a listing is CPU work (open, decrypt, format), and the hosts this runs on have two
// cores or more. Output stays streamed and in the names' order.

/// Runs `body` for every name, chunk by chunk: one chunk on a second thread while the next
/// runs on this one, then `emit` gets both chunks' results in order. Each thread has its
/// own store handle (a FileUserStore is not shared between threads); any other backend
/// runs on this thread alone.
func forEachUser<T>(_ names: [String], _ ctx: LocalStore, chunk: Int = 512,
                    _ body: (LocalStore, String) -> T, emit: (String, T) -> Void) throws {
    guard ctx.store is FileUserStore, names.count > chunk else {
        for n in names { emit(n, body(ctx, n)) }
        return
    }
    let other = try ctx.reopened()
    other.cacheKeys()
    var start = 0
    while start < names.count {
        let first = start..<min(start + chunk, names.count)
        let second = first.upperBound..<min(first.upperBound + chunk, names.count)
        var a: [T] = [], b: [T] = []
        inParallel({ a = first.map { body(other, names[$0]) } }, { b = second.map { body(ctx, names[$0]) } })
        for (i, r) in zip(first, a) { emit(names[i], r) }
        for (i, r) in zip(second, b) { emit(names[i], r) }
        start = second.upperBound
    }
}

private final class ThreadJob {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// Runs `a` on a new thread and `b` on this one; returns when both are done (both on this
/// thread when no thread can be made).
func inParallel(_ a: () -> Void, _ b: () -> Void) {
    withoutActuallyEscaping(a) { a in
        let job = Unmanaged.passRetained(ThreadJob(a)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { p in
            Unmanaged<ThreadJob>.fromOpaque(p!).takeRetainedValue().body()
            return nil
        }, job)
        guard rc == 0 else {
            Unmanaged<ThreadJob>.fromOpaque(job).release()
            a()
            b()
            return
        }
        b()
        pthread_join(thread, nil)
    }
}

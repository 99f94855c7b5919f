// SPDX-License-Identifier: Apache-2.0
import CTwoStepSys
import Glibc

extension Sys {
    /// syncfs(2) on the file system holding `fd`: 0, or -1 with errno.
    public static func syncFileSystem(_ fd: Int32) -> Int32 {
        retry { twostep_sys_syncfs(fd) }
    }
}

extension Sys {
    /// renameat2(RENAME_EXCHANGE) of two names in `dirfd`: 0, or -1 with errno.
    public static func exchange(_ dirfd: Int32, _ a: String, _ b: String) -> Int32 {
        retry { twostep_sys_exchange(dirfd, a, b) }
    }
}

// SPDX-License-Identifier: Apache-2.0
// The module sees libc only through PAMShim's header: built as Embedded Swift it has no
// Glibc overlay, and the SwiftPM build (for the unit tests) uses the same view.
import PAMShim

/// errno of the calling thread, read right after the failing call.
var errno: Int32 { twostep_errno() }

// SPDX-License-Identifier: Apache-2.0
import Glibc
import TwoStepServer
import TwoStepStore
import TwoStepSystem

// twostep-helper: the only program that reads keys and secrets. Not setuid.
let usage = """
usage: twostep-helper pam [--request-fd N]
       twostep-helper serve [--config FILE] [--socket PATH] [--mode OCTAL]

  pam    verify one login over the frame protocol on fd 0/1; started by pam_twostep.so
         (or by twostep-verify, which hands over a login it cannot finish: the request
         it read comes on --request-fd)
  serve  answer self-service requests (twostep enroll, status, backup-codes, qr, devices, email, disable)
         and, from root only, logins relayed by pam_twostep.so socket=, on a Unix socket
         (default: `socket` from the config). Under systemd socket activation (fd 3 from
         LISTEN_FDS) it serves the socket it was given: with Accept=yes one connection
         per instance, with Accept=no pre-forked workers (max_connections).
         --mode: the permissions of a socket it creates (default 0666, which users
         need for self-service; 0600 makes a socket for root's logins only).

"""
// Before anything else: nothing a setuid caller (sudo, su) left in this process may steer
// a root helper (its real uid, resource limits, ignored signals, timers, nice value).
guard resetInheritedState() else {
    writeStderr("twostep-helper: cannot drop the caller's ids\n")
    exit(1)
}
var args = Array(CommandLine.arguments.dropFirst())
switch args.first {
case "pam":
    leaveCallerSession()
    if let limit = limitTooLow() {
        // No prompt at all: the answer could be neither counted nor checked.
        AuditLog.syslogLine(LOG_ERR, "helper: refusing a login: \(limit) set by the caller is too low and cannot be raised")
        exit(1)
    }
    var requestFD: Int32? = nil
    if args.count == 3, args[1] == "--request-fd", let n = Int32(args[2]), n > 2 {
        requestFD = n
    } else if args.count != 1 {
        writeStderr(usage)
        exit(2)
    }
    exit(LoginSession.run(requestFD: requestFD))
case "serve":
    var config = Config.defaultPath
    var socket: String?
    var mode = HelperServer.defaultSocketMode
    var i = 1
    while i < args.count {
        switch args[i] {
        case "--help", "-h":
            print(usage, terminator: "")
            exit(0)
        case "--config" where i + 1 < args.count: config = args[i + 1]; i += 2
        case "--socket" where i + 1 < args.count: socket = args[i + 1]; i += 2
        case "--mode" where i + 1 < args.count:
            guard let m = HelperServer.socketMode(args[i + 1]) else {
                writeStderr("twostep-helper: --mode takes permissions in octal, 0600 to 0666 (read and write, no execute): \(args[i + 1])\n")
                exit(2)
            }
            mode = m; i += 2
        default:
            writeStderr("twostep-helper: unknown argument \(args[i])\n" + usage)
            exit(2)
        }
    }
    exit(HelperServer.run(configPath: config, socketPath: socket, mode: mode))
case "--version":
    print("twostep-helper 0.1.0")
    exit(0)
case "--help", "-h":
    print(usage, terminator: "")
    exit(0)
default:
    writeStderr(usage)
    exit(2)
}

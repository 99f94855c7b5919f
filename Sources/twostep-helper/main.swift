import Glibc
import TwoStepHelperKit

// twostep-helper: the only program that reads keys and secrets. Not setuid.
//   twostep-helper pam      one login, framed protocol on fd 0/1 (started by pam_twostep.so)
let args = CommandLine.arguments.dropFirst()
switch args.first {
case "pam":
    exit(PAMSession.run())
case "--version":
    print("twostep-helper 0.1.0")
    exit(0)
default:
    writeStderr("""
    usage: twostep-helper pam
      pam    verify one login over the frame protocol on fd 0/1; started by pam_twostep.so

    """)
    exit(2)
}

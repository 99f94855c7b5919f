#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the seed corpora under Fuzz/corpus/<target>/ (committed; rerun after a format
change). Seeds are valid inputs, so the fuzzer starts from the accepting paths."""
import base64, hashlib, hmac, os, shutil, struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def frame(t, payload=b""):
    return bytes([t]) + struct.pack(">I", len(payload)) + payload


def fields(*pairs):
    return b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in pairs)


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())


request = frame(0x01, fields(("version", "1"), ("mode", "pam"), ("user", "alice"), ("service", "sshd"),
                            ("rhost", "192.0.2.7"), ("ruser", ""), ("tty", "ssh"),
                            ("auth_info", "publickey ssh-ed25519 AAAAC3Nza"), ("config", "/etc/twostep/twostep.conf"),
                            ("nullok", "0"), ("debug", "0")))
login = (request + frame(0x12, b"Two-step verification for alice") + frame(0x10, b"Verification code: ")
         + frame(0x02, b"123456") + frame(0x12, b"Accepted.") + frame(0x1F, b"\x00"))
selfservice = (frame(0x01, fields(("version", "1"), ("mode", "self"), ("command", "status"), ("json", "1")))
               + frame(0x1E, fields(("user", "alice"), ("enrolled", "true"), ("backup_codes_left", "10"))) + frame(0x1F, b"\x00"))
frames = {
    "request": request, "login": login, "selfservice": selfservice,
    "conversation-failed": request + frame(0x10, b"Verification code: ") + frame(0x03) + frame(0x1F, b"\x06"),
    "error-result": frame(0x13, b"Your account is locked for 4 minutes.") + frame(0x1F, b"\x04"),
    "enrol": frame(0x12, b"Scan this QR code:\n" + "\u2588\u2580\u2584 ".encode() * 200) + frame(0x11, b"Code from the app: "),
    "truncated-payload": frame(0x12, b"hello")[:-2],
    "truncated-header": frame(0x02, b"1")[:3],
    "unknown-type": b"\x7f\x00\x00\x00\x00",
    "too-large": b"\x12\x00\x00\x80\x01",
    "answer-too-large": b"\x02\x00\x00\x02\x01" + b"9" * 513,
    "result-two-bytes": b"\x1f\x00\x00\x00\x02\x00\x00",
}
write("frames", frames)

full_config = """# every key
state_dir = /var/lib/twostep
key_dir = /etc/twostep/keys/
audit_log = /var/log/twostep/audit.jsonl
window = 1
digits = 6
period = 30
algorithm = SHA1
issuer = Example Corp
rate_limit = 5/5m
lockout = 1h
socket = /run/twostep/helper.sock
enroll = prompt
require = wheel, sudo,admins
password_service = twostep
max_connections = 16
"""
configs = {
    "full": full_config,
    "minimal": "window = 2\n",
    "sha512": "digits = 8\r\nalgorithm = sha-512\nperiod=60 # comment\nrequire = all\nlockout = 2d\nrate_limit = 10/600\n",
    "bad-line": "state_dir = /var/lib/twostep\nwhat is this\n",
    "packaged": open(os.path.join(ROOT, "packaging", "twostep.conf")).read(),
}
write("config", configs)

secret = bytes(range(1, 21))
backup_key = bytes(range(32))
hashes = [hmac.new(backup_key, c.encode(), hashlib.sha256).hexdigest() for c in ("0123456789", "abcdefghjk")]
plain = ("v=1\nsecret=" + base64.b32encode(secret).decode().rstrip("=") + "\nalgorithm=SHA1\ndigits=6\nperiod=30\n"
         "created=1700000000\nbackup_key=" + backup_key.hex() + "\nbackup=" + ",".join(hashes) + "\n")
key_id = hashlib.sha256(b"k" * 32).hexdigest()[:16]
b32 = base64.b32encode(secret).decode().rstrip("=")
plain_v2 = ("v=2\ncreated=1700000000\nbackup_key=" + backup_key.hex() + "\nbackup=" + ",".join(hashes) + "\n"
            "authenticator=default totp SHA1 6 30 1700000000 " + b32 + "\n"
            "authenticator=yubikey hotp SHA256 8 - 1700000100 " + b32 + "\n"
            "trusted_key=SHA256:abc 1800000000\n")
sealed = b"TSR\x01" + bytes([len(key_id)]) + key_id.encode() + b"\x11" * 12 + b"\x22" * 16 + b"\x33" * 40
write("record", {
    "record-plaintext": plain,
    "record-sha512": plain.replace("SHA1", "SHA512").replace("digits=6", "digits=8").replace("backup=" + ",".join(hashes), "backup="),
    "state": "v=1\nlast_step=56666667\nlocked_until=0\nfailures=1700000001,1700000002\n",
    "state-empty-failures": "v=1\nlast_step=-1\nlocked_until=1700000300\nfailures=\n",
    "sealed-header": sealed,
    "record-v2": plain_v2,
    "state-v2": "v=2\nlocked_until=0\nfailures=1700000001\nrecord_generation=3\n"
                "device=default 56666667 0 -2 1700000000\ndevice=yubikey -1 512 0 1700000100\n",
})

write("core", {
    "uri": "otpauth://totp/Example%20Corp:alice@example.com?secret=JBSWY3DPEHPK3PXP&issuer=Example%20Corp&algorithm=SHA1&digits=6&period=30",
    "uri-hotp": "otpauth://hotp/bob?secret=GEZDGNBVGY3TQOJQ&counter=42&digits=8&algorithm=SHA256",
    "uri-encoded-colon": "OTPAUTH://TOTP/ACME%3A%20carol?SECRET=jbsw+y3dp&ISSUER=ACME&image=https%3A%2F%2Fx#frag",
    "base32": "JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP",
    "base32-padded": "MZXW6===",
    "base64": base64.b64encode(b"k" * 32).decode() + "\n",
    "base64-pad1": "YWI=",
    "backup-code": "a1b2c-d3e4f",
    "backup-code-confusables": "OIL0i lo1ST",
})


def hotp(key, counter, digits=6, alg=hashlib.sha1):
    mac = hmac.new(key, struct.pack(">Q", counter), alg).digest()
    o = mac[-1] & 15
    v = (struct.unpack(">I", mac[o:o + 4])[0] & 0x7FFFFFFF) % 10 ** digits
    return str(v).zfill(digits)


def totp_input(window, digits_sel, period, t, key, code):
    # Layout of Fuzz/Targets/totp.swift: window, digits, period (2), time (8), secret length, secret, code.
    return (bytes([window, digits_sel]) + struct.pack(">H", period - 1) + struct.pack(">q", t)
            + bytes([len(key)]) + key + code.encode())


now = 1_700_000_015
write("totp", {
    "current": totp_input(1, 0, 30, now, secret, hotp(secret, now // 30)),
    "previous-spaced": totp_input(1, 0, 30, now, secret, hotp(secret, now // 30 - 1)[:3] + " " + hotp(secret, now // 30 - 1)[3:]),
    "eight-digits": totp_input(3, 2, 60, now, secret, hotp(secret, now // 60, 8)),
    "wrong": totp_input(10, 0, 30, now, secret, "000000"),
    "epoch": totp_input(3, 0, 30, 5, secret, hotp(secret, 0)),
    # Regressions: the step range reached Int64.max (overflow trap with window 0; with a
    # wider window the bound wrapped and the right code was refused).
    "far-future": totp_input(2, 0, 1, 2 ** 63 - 1, secret, "123456"),
    "far-future-window0": totp_input(0, 0, 1, 2 ** 63 - 1, b"a", "123456"),
    "before-epoch": totp_input(2, 0, 30, -100, secret, "123456"),
})

write("imports", {
    # As `google-authenticator -t -d -r 3 -R 30 -w 3 -e 2` writes it, and after logins.
    "ga-totp": '7TJVQQ3DE2K3OKFLPJZDMB55HM\n" RATE_LIMIT 3 30\n" WINDOW_SIZE 3\n" DISALLOW_REUSE\n" TOTP_AUTH\n25576066\n88032361\n',
    "ga-state": 'JBSWY3DPEHPK3PXP\n" RATE_LIMIT 3 30 1764400000\n" DISALLOW_REUSE 58813333 58813334\n" TIME_SKEW -2\n'
                '" RESETTING_TIME_SKEW 58813330-2\n" STEP_SIZE 60\n" TOTP_AUTH\n',
    "ga-hotp": 'DMCB2WYL4RFL4OH4OQHREQZY2Y\n" WINDOW_SIZE 5\n" HOTP_COUNTER 1\n94995141\n',
    "oath": "# users\nHOTP alice - 3132333435363738393031323334353637383930\n"
            "HOTP/T30\talice\t-\t3132333435363738393031323334353637383931\t0\t755224\t2026-11-29T13:05:09L\n"
            "HOTP/E/8 bob + 3132333435363738393031323334353637383930 12 87654321\n"
            "HOTP/T60/7 carol pin 3132333435363738393031323334353637383930\n",
})

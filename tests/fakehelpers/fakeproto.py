# SPDX-License-Identifier: Apache-2.0
"""Frame protocol for the fake helpers (see Sources/TwoStepProtocol/Protocol.swift).

A frame is one type byte, a 4-byte big-endian payload length, then the payload. The fakes
talk over fd 0 (read) and fd 1 (write), as twostep-helper does when the module spawns it.
Tests steer a fake through the request: the directory of the `config` field is the test's
scratch directory, where a fake records what it saw (request.json) and finds its orders.
"""
import json
import os
import struct

REQUEST, ANSWER, CONVERSATION_FAILED = 0x01, 0x02, 0x03
PROMPT_ECHO_OFF, PROMPT_ECHO_ON, INFO, ERROR, DATA, RESULT = 0x10, 0x11, 0x12, 0x13, 0x1E, 0x1F

VERDICTS = {
    "success": 0, "failure": 1, "ignore": 2, "notEnrolled": 3, "lockedOut": 4,
    "systemError": 5, "conversationError": 6, "denied": 7,
}


def read_exact(n):
    buf = b""
    while len(buf) < n:
        chunk = os.read(0, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_frame():
    """Returns (type, payload), or None on EOF."""
    header = read_exact(5)
    if header is None:
        return None
    ftype, length = header[0], struct.unpack(">I", header[1:5])[0]
    payload = read_exact(length) if length else b""
    if payload is None:
        return None
    return ftype, payload


def write_raw(data):
    while data:
        n = os.write(1, data)
        data = data[n:]


def send(ftype, payload=b""):
    if isinstance(payload, str):
        payload = payload.encode()
    write_raw(bytes([ftype]) + struct.pack(">I", len(payload)) + payload)


def result(verdict):
    send(RESULT, bytes([VERDICTS[verdict] if isinstance(verdict, str) else verdict]))


def decode_fields(payload):
    parts = payload.split(b"\0")
    assert parts[-1] == b"", "fields must end with NUL"
    parts = [p.decode() for p in parts[:-1]]
    return dict(zip(parts[0::2], parts[1::2]))


def scratch_dir(fields):
    d = os.path.dirname(fields.get("config", ""))
    return d if d and os.path.isdir(d) and d.startswith("/tmp") else None


def read_request():
    """Reads the request frame, records it in the scratch dir, returns its fields."""
    frame = read_frame()
    if frame is None or frame[0] != REQUEST:
        os._exit(3)
    fields = decode_fields(frame[1])
    d = scratch_dir(fields)
    if d:
        with open(os.path.join(d, "request.json"), "w") as f:
            json.dump(fields, f)
    return fields


def record(fields, name, obj):
    d = scratch_dir(fields)
    if d:
        with open(os.path.join(d, name), "w") as f:
            json.dump(obj, f)

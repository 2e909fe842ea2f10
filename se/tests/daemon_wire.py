"""Helpers shared by the keylink-se daemon tests: frames (docs/protocol.md), a daemon
started in a temp dir on a temp socket, and a minimal client. Written independently of
the C codec on purpose, so the tests check the C side against the document."""
import os
import socket
import struct
import subprocess
import tempfile
import time

MAX_PAYLOAD = 2048


def crc16(data):
    crc = 0xFFFF
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def frame(code, payload=b"", flags=0):
    head = bytes([code, flags]) + struct.pack(">H", len(payload)) + payload
    return head + struct.pack(">H", crc16(head))


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        try:
            chunk = s.recv(n - len(buf))
        except ConnectionResetError:  # the daemon hung up with our bytes unread
            return None
        if not chunk:
            return None
        buf += chunk
    return buf


def read_frame(s):
    """One response frame as (status, payload); None if the daemon closed. Raises
    AssertionError if what arrived is not a well-formed frame."""
    head = recv_exact(s, 4)
    if head is None:
        return None
    n = struct.unpack(">H", head[2:4])[0]
    assert n <= MAX_PAYLOAD, "response length %d" % n
    assert head[1] == 0, "response flags %#x" % head[1]
    rest = recv_exact(s, n + 2)
    assert rest is not None, "response cut short"
    assert struct.unpack(">H", rest[-2:])[0] == crc16(head + rest[:-2]), "response CRC"
    return head[0], rest[:-2]


class Daemon:
    """keylink-se on a socket in a fresh temp dir (or the given state dir)."""

    def __init__(self, state=None, tmp=None, args=()):
        self.args = list(args)
        self.tmp = tmp or tempfile.mkdtemp(prefix="kl-daemon-")
        self.state = state or os.path.join(self.tmp, "state")
        self.sock = os.path.join(self.tmp, "se.sock")
        self.log = open(os.path.join(self.tmp, "se.log"), "ab")
        self.proc = None

    def start(self):
        binary = os.path.join(os.environ.get("KL_BIN_DIR", "."), "keylink-se")
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        self.proc = subprocess.Popen([binary, "--state", self.state, "--socket", self.sock] + self.args,
                                     stdout=self.log, stderr=self.log)
        for _ in range(200):
            if os.path.exists(self.sock):
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("keylink-se did not start; see " + self.log.name)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.terminate()
            self.proc.wait(timeout=10)
        return self.proc.returncode

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(self.sock)
        return s

    def cleanup(self):
        try:
            if self.alive():
                self.proc.kill()
                self.proc.wait()
        finally:
            subprocess.call(["rm", "-rf", self.tmp])


def call(s, code, payload=b""):
    s.sendall(frame(code, payload))
    r = read_frame(s)
    assert r is not None, "daemon closed on command %#x" % code
    return r


RULES_ALL = bytes([0x1F, 0x1F, 0, 0x1F, 0x1F, 0, 0x1F, 0x1F, 0])
RULES_READ_ONLY = bytes([0x1F, 0x01, 0, 0x1F, 0x01, 0, 0x1F, 0x01, 0])


def create_data(s, oid, size, rules=RULES_ALL):
    req = struct.pack(">HBBH", oid, 4, 2, size) + rules + bytes([0, 0xFF, 0, 0xFF, 0])
    return call(s, 0x10, req)[0]


def write_obj(s, oid, offset, data):
    return call(s, 0x13, struct.pack(">HH", oid, offset) + data)[0]


def read_obj(s, oid, offset, length):
    return call(s, 0x12, struct.pack(">HHH", oid, offset, length))

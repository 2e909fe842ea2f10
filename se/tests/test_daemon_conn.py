"""keylink-se connection handling: one host at a time (KL_E_BUSY for the second), a
host stuck in the middle of a frame is dropped after --read-timeout, garbage from many
short connections, clean stop on SIGTERM/SIGINT (socket removed, state kept), stale and
live sockets, command-line errors. Runs under the sanitizers too (the 100k-frame load
is test_daemon_fuzz.py)."""
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon_wire as w  # noqa: E402

BIN = os.path.join(os.environ.get("KL_BIN_DIR", "."), "keylink-se")
KL_E_BUSY, KL_E_BAD_FRAME = 0x86, 0x18


def serial_of(s):
    st, blk = w.call(s, 0xF2)
    assert st == 0 and len(blk) == 59, "GET_STATUS: %#x, %d bytes" % (st, len(blk))
    return blk[21:45]


def busy(d):
    a = d.connect()
    serial = serial_of(a)
    for _ in range(3):
        b = d.connect()
        r = w.read_frame(b)  # answered at once, before any request
        assert r == (KL_E_BUSY, b""), "second host got %r" % (r,)
        assert w.read_frame(b) is None, "second host not disconnected"
        b.close()
    assert serial_of(a) == serial, "first host disturbed"
    a.close()
    time.sleep(0.1)
    c = d.connect()  # free again once the first host left
    assert serial_of(c) == serial
    c.close()
    return serial


def half_open(d):
    s = d.connect()
    s.sendall(w.frame(0xF7, b"x" * 100)[:30])  # a frame that never completes
    t0 = time.time()
    s.settimeout(5)
    assert w.read_frame(s) is None, "daemon answered a partial frame"
    waited = time.time() - t0
    assert waited < 4, "half-open host kept the chip %.1fs" % waited
    s.close()
    s = d.connect()  # the chip is free for the next host
    assert w.call(s, 0xF7, b"ok") == (0, b"ok")
    s.close()


def bad_frames(d):
    cases = {
        "crc": bytearray(w.frame(0xF2)),
        "length": bytearray(b"\xF7\x00\x08\x01"),
        "flags": bytearray(w.frame(0xF2, flags=0x80)),
    }
    cases["crc"][-1] ^= 0xFF
    for name, data in cases.items():
        s = d.connect()
        s.sendall(bytes(data))
        r = w.read_frame(s)
        assert r == (KL_E_BAD_FRAME, b""), "%s: got %r" % (name, r)
        assert w.read_frame(s) is None, "%s: connection left open" % name
        s.close()
    s = d.connect()
    st, _ = w.call(s, 0x01)  # unknown command: an error answer, the link stays
    assert st == 0x01, "unknown command answered %#x" % st
    assert w.call(s, 0xF7, b"") == (0, b"")
    s.close()


def garbage_connections(d):
    rnd = __import__("random").Random(7)
    for i in range(200):
        s = d.connect()
        s.settimeout(0.2)
        try:
            s.sendall(rnd.randbytes(1 + i * 7 % 3000))
            s.recv(4096)
        except (socket.timeout, OSError):
            pass
        s.close()
    assert d.alive()


def stop_and_restart(d, serial, sig):
    d.proc.send_signal(sig)
    assert d.proc.wait(timeout=10) == 0, "exit status after %s" % sig
    assert not os.path.exists(d.sock), "socket not removed"
    d.start()
    s = d.connect()
    assert serial_of(s) == serial, "a different chip after restart"
    s.close()


def sockets_and_args(d):
    # a second daemon on a live socket is refused and leaves the first alone
    tmp2 = tempfile.mkdtemp(prefix="kl-daemon2-")
    r = subprocess.run([BIN, "--state", tmp2 + "/st", "--socket", d.sock], capture_output=True,
                       timeout=10)
    assert r.returncode != 0 and b"another keylink-se" in r.stderr, r.stderr
    assert d.alive() and os.path.exists(d.sock)
    # the same state dir cannot be served twice
    r = subprocess.run([BIN, "--state", d.state, "--socket", tmp2 + "/other.sock"],
                       capture_output=True, timeout=10)
    assert r.returncode != 0, "two daemons on one state dir"
    # a stale socket file (daemon killed) is replaced
    stale = os.path.join(tmp2, "stale.sock")
    ls = socket.socket(socket.AF_UNIX)
    ls.bind(stale)
    ls.close()
    p = subprocess.Popen([BIN, "--state", tmp2 + "/st", "--socket", stale],
                         stderr=subprocess.PIPE)
    for _ in range(100):
        try:
            c = socket.socket(socket.AF_UNIX)
            c.connect(stale)
            break
        except OSError:
            time.sleep(0.05)
    assert w.call(c, 0xF7, b"hi") == (0, b"hi")
    c.close()
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=10) == 0
    # a path that is not a socket is never touched
    plain = os.path.join(tmp2, "file")
    open(plain, "w").write("keep")
    r = subprocess.run([BIN, "--state", tmp2 + "/st", "--socket", plain], capture_output=True,
                       timeout=10)
    assert r.returncode != 0 and open(plain).read() == "keep"
    # command line
    r = subprocess.run([BIN, "--help"], capture_output=True, timeout=10)
    assert r.returncode == 0 and b"--state DIR" in r.stdout
    for bad in ([], ["--state", "x"], ["--socket", "y"], ["--bogus"],
                ["--state", "x", "--socket", "y", "--read-timeout", "abc"]):
        r = subprocess.run([BIN] + bad, capture_output=True, timeout=10)
        assert r.returncode == 2 and r.stderr, "args %r gave %d" % (bad, r.returncode)
    subprocess.call(["rm", "-rf", tmp2])


def watchdog_clock(d):
    """The daemon's timer drives the model's clock: with the watchdog on and nobody
    connected, the chip still resets when the period runs out."""
    s = d.connect()
    st, cfg = w.call(s, 0xF5)
    assert st == 0 and len(cfg) == 12
    _, blk = w.call(s, 0xF2)
    resets0 = struct.unpack(">I", blk[54:58])[0]
    on = bytes([cfg[0] | 0x10, cfg[1] | 0x08, cfg[2], 0]) + struct.pack(">II", 200, 200)
    assert w.call(s, 0xF4, on)[0] == 0, "SET_CONFIG watchdog on"
    s.close()
    time.sleep(1.2)  # no host, no kick
    s = d.connect()
    assert w.call(s, 0xF4, cfg)[0] == 0, "SET_CONFIG back"
    _, blk = w.call(s, 0xF2)
    s.close()
    resets = struct.unpack(">I", blk[54:58])[0]
    assert resets > resets0, "watchdog never fired without a host (%d -> %d)" % (resets0, resets)


def verbose_log(d):
    s = d.connect()
    w.call(s, 0xF7, b"secret-bytes")
    s.close()
    time.sleep(0.2)
    log = open(d.log.name, "rb").read()
    assert b"PING -> KL_OK (request 12 bytes, response 12 bytes)" in log, log[-500:]
    assert b"secret-bytes" not in log and b"7365637265" not in log, "payload in the log"


def main():
    d = w.Daemon(args=["--read-timeout", "500", "--verbose"]).start()
    try:
        serial = busy(d)
        half_open(d)
        bad_frames(d)
        garbage_connections(d)
        watchdog_clock(d)
        verbose_log(d)
        sockets_and_args(d)
        stop_and_restart(d, serial, signal.SIGTERM)
        stop_and_restart(d, serial, signal.SIGINT)
        print("daemon connection handling ok")
    finally:
        d.cleanup()


if __name__ == "__main__":
    main()

"""keylink-se under hostile input: 100,000 random and mutated frames over many
connections (reconnecting whenever the daemon hangs up). Every frame gets a well-formed
answer or the connection is closed; the daemon never dies; afterwards the objects read
back are byte-identical, and the image file is unchanged when no command that may write
was acknowledged. Takes a few seconds, also under the sanitizers (the daemon built with
ASan/UBSan is the one fuzzed there)."""
import binascii
import hashlib
import os
import random
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon_wire as w  # noqa: E402

TOTAL = int(os.environ.get("KL_FUZZ_FRAMES", "100000"))
# Commands whose OK answer may change persistent state. Valid frames never carry the
# state-wide ones (they would legitimately wipe or lock the chip); the object-level ones
# are sent with random payloads and tracked.
NEVER_VALID = {0xE8, 0xEA, 0xFB, 0xF4, 0xF3, 0x11, 0x13, 0xCA, 0xCB, 0xCF, 0x16, 0x20, 0xE9}
MAY_WRITE = {0x10, 0xC3, 0xE0, 0xE1} | NEVER_VALID
OURS = [0x4000, 0x4001, 0x4002]


def fast_frame(code, payload=b"", flags=0):
    head = bytes([code, flags]) + struct.pack(">H", len(payload)) + payload
    return head + struct.pack(">H", binascii.crc_hqx(head, 0xFFFF))


def rand_payload(rng):
    r = rng.random()
    n = rng.randint(0, 16) if r < 0.6 else rng.randint(0, 128) if r < 0.95 else rng.randint(0, 2048)
    return rng.randbytes(n)


def valid_frame(rng):
    """A well-formed frame (CRC right) with a random or structured payload."""
    while True:
        code = rng.randrange(256)
        if code not in NEVER_VALID:
            break
    kind = rng.random()
    if kind < 0.25 and True:  # structured: plausible fields for read-only commands
        oid = rng.choice(OURS + [rng.randrange(65536)])
        code, payload = rng.choice([
            (0x12, struct.pack(">HHH", oid, rng.randrange(70000) & 0xFFFF, rng.randrange(3000))),
            (0x15, struct.pack(">H", oid)),
            (0x14, struct.pack(">H", rng.randrange(65536))),
            (0xDC, struct.pack(">H", rng.randrange(2200))),
            (0xD1, bytes([rng.randrange(8)]) + rng.randbytes(rng.randrange(40))),
            (0xC8, bytes([rng.choice([1, 2, 3])]) + struct.pack(">H", oid) + rng.randbytes(rng.randrange(100))),
            (0xF7, rng.randbytes(rng.randrange(300))),
        ])
        flags = 0
    else:
        payload = rand_payload(rng)
        flags = 0
    return code, fast_frame(code, payload, flags)


def bad_frame(rng):
    """(bytes, half_close): a frame the daemon must refuse or a stream it cannot parse."""
    code = rng.randrange(256)  # includes WRITE_OBJECT/DELETE/TAMPER...: never acted on
    oid = rng.choice(OURS)
    if code in (0x13, 0x11) and rng.random() < 0.5:
        base = fast_frame(code, struct.pack(">HH", oid, 0) + rng.randbytes(8))
    else:
        base = fast_frame(code, rand_payload(rng))
    kind = rng.randrange(6)
    if kind == 5:  # ENC with a payload no channel made: a refusal, maybe a hang-up
        return fast_frame(code, rand_payload(rng), 1), True
    b = bytearray(base)
    if kind == 0:  # CRC damaged
        b[-1 - rng.randrange(2)] ^= 1 << rng.randrange(8)
        return bytes(b), False
    if kind == 1:  # one payload/header bit flipped
        i = rng.randrange(len(b) - 2)
        b[i] ^= 1 << rng.randrange(8)
        return bytes(b), True  # a flipped length may leave the daemon waiting
    if kind == 2:  # impossible length
        b[2:4] = struct.pack(">H", rng.randrange(2049, 65536))
        return bytes(b), False
    if kind == 3:  # reserved flag bits
        b[1] = rng.randrange(2, 256)
        return bytes(b), False
    cut = rng.randrange(1, len(b))  # truncated, then the host goes away
    return bytes(b[:cut]), True


def objects_digest(d):
    s = d.connect()
    h = hashlib.sha256()
    for oid in OURS:
        st, info = w.call(s, 0x15, struct.pack(">H", oid))
        assert st == 0, "object %#x gone (status %#x)" % (oid, st)
        h.update(info)
        used = struct.unpack(">H", info[20:22])[0]
        length = 64 if info[2] == 3 else used
        st, data = w.read_obj(s, oid, 0, length)
        assert st == 0 and len(data) == length
        h.update(data)
    st, listing = w.call(s, 0x14, b"\x00\x00")
    s.close()
    return h.hexdigest(), listing


def main():
    assert w.crc16(b"123456789") == 0x29B1 == binascii.crc_hqx(b"123456789", 0xFFFF)
    rng = random.Random(int(os.environ.get("KL_FUZZ_SEED", "1065")))
    d = w.Daemon().start()
    try:
        s = d.connect()
        for oid, size in zip(OURS[:2], (1500, 300)):
            assert w.create_data(s, oid, size) == 0
            assert w.write_obj(s, oid, 0, rng.randbytes(size)) == 0
        keyreq = struct.pack(">HBBH", OURS[2], 3, 2, 96) + w.RULES_ALL + bytes([4, 1, 1, 0xFF, 0])
        assert w.call(s, 0x10, keyreq)[0] == 0
        assert w.call(s, 0x20, struct.pack(">H", OURS[2]))[0] == 0
        s.close()
        img = os.path.join(d.state, "chip.img")
        img_before = hashlib.sha256(open(img, "rb").read()).hexdigest()
        digest_before, list_before = objects_digest(d)

        sent = answered = closed = 0
        maybe_written = False
        while sent < TOTAL:
            s = d.connect()
            while sent < TOTAL:
                batch = [valid_frame(rng) for _ in range(rng.randint(1, 40))]
                s.sendall(b"".join(f for _, f in batch))
                for code, _ in batch:
                    r = w.read_frame(s)
                    assert r is not None, "daemon hung up on a well-formed frame %#x" % code
                    answered += 1
                    if r[0] == 0 and code in MAY_WRITE:
                        maybe_written = True
                sent += len(batch)
                if rng.random() < 0.35:
                    if rng.random() < 0.2:  # plain garbage
                        blob, half = rng.randbytes(rng.randint(1, 3000)), True
                    else:
                        blob, half = bad_frame(rng)
                    try:
                        s.sendall(blob)
                        if half:
                            s.shutdown(socket.SHUT_WR)
                        while True:  # answers (maybe none), then the hang-up
                            r = w.read_frame(s)
                            if r is None:
                                break
                            answered += 1
                            if r[0] == 0:
                                maybe_written = True  # garbage that happened to parse
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    sent += 1
                    closed += 1
                    break
            s.close()
            assert d.alive(), "keylink-se died after %d frames" % sent

        digest_after, list_after = objects_digest(d)
        assert digest_after == digest_before, "objects changed under garbage"
        if not maybe_written:
            assert list_after == list_before, "object list changed"
            img_after = hashlib.sha256(open(img, "rb").read()).hexdigest()
            assert img_after == img_before, "image file changed without an acknowledged write"
        assert d.stop() == 0, "unclean stop"
        assert not os.path.exists(d.sock), "socket left behind"
        # the same chip comes back with the same objects
        d.start()
        assert objects_digest(d)[0] == digest_before
        print("fuzz ok: %d frames, %d answers, %d connections closed by the daemon, "
              "image %s" % (sent, answered, closed,
                            "unchanged" if not maybe_written else "not compared (a write was acknowledged)"))
    finally:
        d.cleanup()


if __name__ == "__main__":
    main()

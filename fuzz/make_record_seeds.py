#!/usr/bin/env python3
"""Writes fuzz/corpus/cloud_record/ (committed; run again only to regenerate): records a
client would send to keylinkd's record layer, sealed with AES-GCM under the fixed keys of
fuzz_cloud_record.c (client writing key 0x10.., salt a0..a3; sequence numbers from 1).
Byte 0 of each input: bit 0 AES-256, bit 1 the harness's round-trip mode, bit 2 TLS 1.3
(records sealed under the keys of the fixed traffic secrets: client 0x60.., sequence
numbers from 0, KeyUpdates followed).

    python3 fuzz/make_record_seeds.py
"""
import os
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = bytes(range(0x10, 0x30))
SALT = bytes([0xA0, 0xA1, 0xA2, 0xA3])


def record(aes256, seq, typ, pt, explicit=None, version=b"\x03\x03"):
    key = KEY if aes256 else KEY[:16]
    explicit = struct.pack(">Q", seq) if explicit is None else explicit
    aad = struct.pack(">QB", seq, typ) + version + struct.pack(">H", len(pt))
    body = explicit + AESGCM(key).encrypt(SALT + explicit, pt, aad)
    return bytes([typ]) + version + struct.pack(">H", len(body)) + body


def stream(aes256, *recs):
    return bytes([aes256]) + b"".join(recs)


def label(md, secret, lab, n):
    """HKDF-Expand-Label(secret, lab, "", n), RFC 8446 7.1."""
    full = b"tls13 " + lab
    return HKDFExpand(md, n, struct.pack(">HB", n, len(full)) + full + b"\x00").derive(secret)


class Client13:
    """The client's writing side of the fuzz harness's fixed TLS 1.3 connection."""

    def __init__(self, aes256):
        self.md = hashes.SHA384() if aes256 else hashes.SHA256()
        self.klen = 32 if aes256 else 16
        self.secret = bytes(range(0x60, 0x60 + self.md.digest_size))
        self.seq = 0

    def record(self, typ, pt, pad=0, outer=23, inner=None):
        key = label(self.md, self.secret, b"key", self.klen)
        iv = label(self.md, self.secret, b"iv", 12)
        inner = pt + bytes([typ]) + bytes(pad) if inner is None else inner
        hdr = bytes([outer, 3, 3]) + struct.pack(">H", len(inner) + 16)
        nonce = bytes(a ^ b for a, b in zip(iv, struct.pack(">Q", self.seq).rjust(12, b"\0")))
        self.seq += 1
        return hdr + AESGCM(key).encrypt(nonce, inner, hdr)

    def key_update(self, requested):
        rec = self.record(22, b"\x18\x00\x00\x01" + bytes([requested]))
        self.secret = label(self.md, self.secret, b"traffic upd", self.md.digest_size)
        self.seq = 0
        return rec


def seeds13():
    mqtt_connect = bytes.fromhex("101000044d5154540402003c000464657631")
    out = []
    c = Client13(0)  # a session: CONNECT, PINGREQ padded, empty, KeyUpdates, close_notify
    out.append(bytes([4]) + c.record(23, mqtt_connect) + c.record(23, b"\xc0\x00", pad=100) +
               c.record(23, b"") + c.key_update(0) + c.record(23, b"\xc0\x00") +
               c.key_update(1) + c.record(23, b"\xc0\x00") + c.key_update(1) +
               c.record(21, b"\x01\x00"))
    c = Client13(1)  # the largest content, then one byte over it
    out.append(bytes([5]) + c.record(23, bytes(16384)) + c.record(23, bytes(16385)))
    c = Client13(1)  # padding up to the inner plaintext bound, then one zero over it
    out.append(bytes([5]) + c.record(23, b"x", pad=16383) + c.record(23, bytes(16384), pad=1))
    c = Client13(0)  # an inner plaintext of zeros only
    out.append(bytes([4]) + c.record(23, b"a") + c.record(0, b"", inner=bytes(30)))
    c = Client13(0)  # sealed under the outer type handshake
    out.append(bytes([4]) + c.record(23, b"\xc0\x00", outer=22))
    # a plain change_cipher_spec, a sealed one, an unknown inner type
    out.append(bytes([4]) + b"\x14\x03\x03\x00\x01\x01")
    out.append(bytes([4]) + Client13(0).record(20, b"\x01"))
    out.append(bytes([4]) + Client13(0).record(24, b"\x01\x00\x10"))
    # KeyUpdates that are not one well-formed message, and other handshake messages
    for body in (b"\x18\x00\x00\x01\x02", b"\x18\x00\x00\x01\x00\x00",
                 b"\x18\x00\x00\x02\x00\x00", b"\x18\x00\x00",
                 b"\x04\x00\x00\x05" + bytes(5), b"\x01\x00\x00\x01\x00"):
        c = Client13(0)
        out.append(bytes([4]) + c.record(23, b"ok") + c.record(22, body))
    c = Client13(1)  # replayed after a KeyUpdate (the old key)
    r = c.record(23, b"once")
    out.append(bytes([5]) + r + c.key_update(0) + r)
    # ciphertext over 2^14 + 256
    out.append(bytes([4]) + Client13(0).record(23, b"x", pad=16384 + 256 - 16 - 2 + 1))
    # round trips: max_fragment_length 1024 / 2^14, items (type, length, bytes, flip); 0xff:
    # a KeyUpdate from us
    out.append(bytes([6, 1]) + b"\x02\x00\x05hello\x03" + b"\xff\x00\x00\x11" +
               b"\x00\x00\x02\x01\x00\x09" + b"\xff\x00\x00\x42" + b"\x02\x04\x01" +
               bytes(1025) + b"\x00" + b"\x01\x04\x00" + bytes(1024) + b"\x77")
    out.append(bytes([7, 4]) + b"\x02\x40\x00" + bytes(16384) + b"\x80" + b"\xff\x00\x00\x05" +
               b"\x02\x00\x03abc\x01")
    return out


def main():
    mqtt_connect = bytes.fromhex("101000044d5154540402003c000464657631")
    seeds = [
        # AES-128: a CONNECT, a PINGREQ, an empty record, a close_notify
        stream(0, record(0, 1, 23, mqtt_connect), record(0, 2, 23, b"\xc0\x00"),
               record(0, 3, 23, b""), record(0, 4, 21, b"\x01\x00")),
        # AES-256, several records with a random explicit nonce (as OpenSSL sends)
        stream(1, record(1, 1, 23, b"a" * 100, os.urandom(8)), record(1, 2, 23, b"b" * 1000),
               record(1, 3, 21, b"\x01\x00")),
        # the largest plaintext, then one byte over it (record_overflow)
        stream(0, record(0, 1, 23, bytes(16384)), record(0, 2, 23, bytes(16385))),
        # a replayed record
        stream(0, record(0, 1, 23, b"once"), record(0, 1, 23, b"once")),
        # a renegotiation attempt: a handshake record with a ClientHello start
        stream(0, record(0, 1, 22, b"\x01\x00\x00\x04\x03\x03\x00\x00")),
        # a change_cipher_spec and a heartbeat-typed record
        stream(1, record(1, 1, 20, b"\x01"), record(1, 2, 24, b"\x01\x00\x10")),
        # headers no record may have: version 3,1, then a too-long length
        stream(0, record(0, 1, 23, b"x", version=b"\x03\x01")),
        stream(0, b"\x17\x03\x03\x48\x01" + bytes(40)),
        # too short for nonce + tag, and one split at the end (the rest never came)
        stream(0, b"\x17\x03\x03\x00\x10" + bytes(16)),
        stream(0, record(0, 1, 23, b"ok"), record(0, 2, 23, b"cut")[:20]),
        # round trip: max_fragment_length 1024, items (type, length, bytes, flip)
        bytes([2, 1]) + b"\x17\x00\x05hello\x03" + b"\x15\x00\x02\x01\x00\x09" +
        b"\x17\x04\x01" + bytes(1025) + b"\x00" + b"\x17\x04\x00" + bytes(1024) + b"\x77",
        bytes([3, 4]) + b"\x16\x00\x10" + bytes(range(16)) + b"\x05" + b"\x17\x40\x00" +
        bytes(16384) + b"\x80",
    ]
    seeds += seeds13()
    d = os.path.join(HERE, "corpus", "cloud_record")
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.startswith("seed-"):
            os.unlink(os.path.join(d, f))
    for i, s in enumerate(seeds):
        with open(os.path.join(d, "seed-%02d" % i), "wb") as f:
            f.write(s)


if __name__ == "__main__":
    main()

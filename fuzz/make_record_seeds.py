#!/usr/bin/env python3
"""Writes fuzz/corpus/cloud_record/ (committed; run again only to regenerate): records a
client would send to keylinkd's record layer, sealed with AES-GCM under the fixed keys of
fuzz_cloud_record.c (client writing key 0x10.., salt a0..a3; sequence numbers from 1).
Byte 0 of each input: bit 0 AES-256, bit 1 the harness's round-trip mode.

    python3 fuzz/make_record_seeds.py
"""
import os
import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

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

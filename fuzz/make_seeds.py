#!/usr/bin/env python3
"""Writes the small seed corpora in fuzz/corpus/<harness>/ (committed; run again only to
regenerate them). Everything is built here from the protocol documents: nothing is
fetched. Certificates come from fuzz/certs/ (a P-256 root and a server certificate it
issued, made once with the openssl command line; their keys were not kept).

    python3 fuzz/make_seeds.py
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = open(os.path.join(HERE, "certs", "ca.der"), "rb").read()
SRV = open(os.path.join(HERE, "certs", "srv.der"), "rb").read()


def u16(v):
    return struct.pack(">H", v)


def u24(v):
    return struct.pack(">I", v)[1:]


def u32(v):
    return struct.pack(">I", v)


def write(name, seeds):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.startswith("seed-"):
            os.unlink(os.path.join(d, f))
    for i, s in enumerate(seeds):
        with open(os.path.join(d, "seed-%02d" % i), "wb") as f:
            f.write(s)


def crc16(b):
    crc = 0xFFFF
    for x in b:
        crc ^= x << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def frame(code, payload=b"", flags=0):
    h = bytes([code, flags]) + u16(len(payload)) + payload
    return h + u16(crc16(h))


# ---- TLS messages -------------------------------------------------------------------
def hs(t, body):
    return bytes([t]) + u24(len(body)) + body


def ext(t, body):
    return u16(t) + u16(len(body)) + body


def server_hello(suite=0xC02B, exts=None):
    if exts is None:
        exts = (ext(0xFF01, b"\x00") + ext(0x0017, b"") + ext(0x000B, b"\x01\x00") +
                ext(0x0001, b"\x02") + ext(0x0010, u16(5) + b"\x04mqtt"))
    b = u16(0x0303) + bytes(range(32)) + b"\x00" + u16(suite) + b"\x00"
    return b + (u16(len(exts)) + exts if exts is not None else b"")


def certificate(chain):
    body = b"".join(u24(len(c)) + c for c in chain)
    return u24(len(body)) + body


def _point(k):
    from cryptography.hazmat.primitives.asymmetric import ec
    n = ec.derive_private_key(k, ec.SECP256R1()).public_key().public_numbers()
    return b"\x04" + n.x.to_bytes(32, "big") + n.y.to_bytes(32, "big")


POINT = _point(0xC0FFEE)
SIG = bytes.fromhex("3044022011" + "22" * 31 + "022033" + "44" * 31)


def ske():
    return b"\x03" + u16(23) + b"\x41" + POINT + u16(0x0403) + u16(len(SIG)) + SIG


def cert_request():
    return b"\x01\x40" + u16(4) + u16(0x0403) + u16(0x0401) + u16(6) + u16(4) + b"\x30\x02\x31\x00"


def client_hello(rnd=bytes(32)):
    exts = ext(0, u16(18) + b"\x00" + u16(15) + b"iot.example.com") + ext(1, b"\x02") + \
        ext(10, u16(2) + u16(23)) + ext(11, b"\x01\x00") + ext(13, u16(2) + u16(0x0403)) + \
        ext(23, b"")
    body = u16(0x0303) + rnd + b"\x00" + u16(6) + u16(0xC02B) + u16(0xC0AC) + u16(0xFF) + \
        b"\x01\x00" + u16(len(exts)) + exts
    return hs(1, body)


def record(ct, body):
    return bytes([ct]) + u16(0x0303) + u16(len(body)) + body


# ---- chip command sequences (fuzz_chip_cmds) ------------------------------------------
def cmd(code, payload=b"", patch=None, tick=False, sign=False):
    ctl = (1 if patch else 0) | (2 if tick else 0) | (4 if sign else 0)
    r = bytes([code, ctl]) + u16(len(payload))
    if patch:
        dst, src, cnt = patch
        r += u16(dst) + bytes([src, cnt])
    return r + payload


def create(oid, typ, props, size, kt=0, u1=0xFF, a1=0, u2=0xFF, a2=0, init=None):
    rules = bytes([0x1F, 0x1F, 0] * 3)
    p = u16(oid) + bytes([typ, props]) + u16(size) + rules + bytes([kt, u1, a1, u2, a2])
    if init is not None:
        p += u32(init)
    return cmd(0x10, p)


def chip_seeds():
    s = []
    s.append(b"\x00" + cmd(0xF7, b"hello") + cmd(0xF2) + cmd(0xF5) + cmd(0x14, u16(0)) +
             cmd(0x15, u16(0x1004)) + cmd(0xE2) + cmd(0xDC, u16(32)))
    s.append(b"\x00" + create(0x4000, 4, 1, 64) + cmd(0x13, u16(0x4000) + u16(0) + b"abc") +
             cmd(0x12, u16(0x4000) + u16(0) + u16(3)) + cmd(0x11, u16(0x4000)) +
             cmd(0x16, u16(0x3001) + u32(7)) + cmd(0x16, u16(0x3002) + u32(1)) +
             cmd(0x12, u16(0x3000) + u16(0) + u16(200)) + cmd(0x12, u16(0x1004) + u16(0) + u16(64)))
    # keys: generate into a temporary key pair, import a public key, AES import
    s.append(b"\x00" + create(0x4001, 3, 1, 96, 4, 0x01, 0x01) + cmd(0x20, u16(0x4001)) +
             create(0x4002, 1, 1, 16, 1, 0x02, 0x10) +
             cmd(0xCA, u16(0x4002) + u16(16) + bytes(range(16))) +
             cmd(0x12, u16(0x1004) + u16(0) + u16(64)) +
             create(0x4003, 2, 1, 64, 4, 0x10, 0x01) +
             cmd(0xCA, u16(0x4003) + u16(64) + bytes(64), patch=(4, 0, 64)))
    # ECDSA sign/verify, hashes, MAC, ciphers, ECDH
    s.append(b"\x00" + cmd(0xC8, b"\x01" + u16(0x1000) + b"\x00\x01" + b"message") +
             cmd(0xC8, b"\x02" + u16(0x1000) + b"\x00\x01" + u16(64) + bytes(64) + b"message",
                 patch=(8, 0, 64)) +
             cmd(0xC8, b"\x01" + u16(0x1004) + b"\x01\x00" + bytes(32)) +
             cmd(0xC9, b"\x00\x01" + bytes(64) + u16(64) + bytes(64) + b"m"))
    s.append(b"\x00" + cmd(0xD0, b"\x01") + cmd(0xD1, b"\x00" + b"abc" * 100) + cmd(0xD3, b"\x00") +
             cmd(0xD2, b"\x00") + cmd(0xD4, u16(0x2002) + b"\x20") + cmd(0xD5, b"\x00hello") +
             cmd(0xD6, b"\x00") + cmd(0xD4, u16(0x2001) + b"\x15") + cmd(0xD5, b"\x00" + bytes(40)) +
             cmd(0xD6, b"\x00" + bytes(16)))
    gcm_init = u16(0x2000) + b"\x14\x01\x00" + b"\x0c" + bytes(12) + b"\x10" + u32(0) + u16(5) + b"aadaa"
    s.append(b"\x00" + cmd(0xD8, gcm_init) + cmd(0xD9, b"\x00" + bytes(100)) + cmd(0xDA, b"\x00"))
    gcm_dec = u16(0x2000) + b"\x14\x02\x00" + b"\x0c" + bytes(12) + b"\x10" + u32(0) + u16(0)
    s.append(b"\x00" + cmd(0xD8, gcm_dec) + cmd(0xD9, b"\x00" + bytes(64)) +
             cmd(0xDA, b"\x00" + bytes(16)))
    cbc = u16(0x2000) + b"\x11\x01\x01" + b"\x10" + bytes(16) + b"\x00" + u32(0) + u16(0)
    cbcd = u16(0x2000) + b"\x11\x02\x01" + b"\x10" + bytes(16) + b"\x00" + u32(0) + u16(0)
    s.append(b"\x00" + cmd(0xD8, cbc) + cmd(0xD9, b"\x00" + bytes(20)) + cmd(0xDA, b"\x00") +
             cmd(0xD8, cbcd) + cmd(0xD9, b"\x00" + bytes(32), patch=(0, 0, 1)) + cmd(0xDA, b"\x00"))
    ccm = u16(0x2001) + b"\x13\x01\x00" + b"\x0c" + bytes(12) + b"\x10" + u32(20) + u16(3) + b"aad"
    ecb = u16(0x2003) + b"\x10\x01\x00" + b"\x00" + b"\x00" + u32(0) + u16(0)
    s.append(b"\x00" + cmd(0xD8, ccm) + cmd(0xD9, b"\x00" + bytes(20)) + cmd(0xDA, b"\x00") +
             cmd(0xD8, ecb) + cmd(0xD9, b"\x00" + bytes(32), patch=(0, 0, 1)) + cmd(0xDA, b"\x00"))
    s.append(b"\x00" + cmd(0x12, u16(0x1000) + u16(0) + u16(64)) +
             cmd(0xC3, u16(0x1004) + b"\x00" + u16(64) + bytes(64) + b"\x00", patch=(5, 0, 64)) +
             cmd(0x12, u16(0x1000) + u16(0) + u16(64)) +
             cmd(0xC3, u16(0x1004) + b"\x01" + u16(65) + b"\x04" + bytes(64) + b"\x01" + u16(0x2004),
                 patch=(6, 0, 64)))
    # management with an admin session (mode bit 0), then in OPERATIONAL
    cfg = b"\x0a\x0f\x00\x00" + u32(10000) + u32(5000)
    s.append(b"\x01" + cmd(0xF4, cfg) + cmd(0xF8) + cmd(0xF9, u16(0x1001) + bytes(64)) +
             cmd(0xF3, b"\x04") + cmd(0xF3, b"\x05") + cmd(0xFA) + cmd(0xE9) + cmd(0xE8) + cmd(0xEA))
    s.append(b"\x01" + cmd(0xEB, u16(0x1001) + bytes(32) + bytes(64)) + cmd(0xFB) + cmd(0xF2))
    s.append(b"\x25" + cmd(0xE9) + cmd(0xF7, tick=True) + cmd(0xF2, tick=True) + cmd(0xF2, tick=True))
    # secure channel open with a real point (0x1004's public key)
    s.append(b"\x00" + cmd(0x12, u16(0x1004) + u16(0) + u16(64)) + cmd(0xE0, bytes(64), patch=(0, 0, 64)) +
             cmd(0xE1))
    # root certificate import in two chunks into the client cert object
    half = len(ROOT) // 2
    s.append(b"\x00" + create(0x4004, 6, 1, 1024) +
             cmd(0xCB, u16(0x4004) + u16(len(ROOT)) + u16(0) + ROOT[:half]) +
             cmd(0xCB, u16(0x4004) + u16(len(ROOT)) + u16(half) + ROOT[half:]))
    # TLS: start, ClientHello with the chip's random, ServerHello, chain, verify, SKE...
    start = u16(0x1003) + u16(0x1004) + struct.pack(">Q", 2000000000)
    ch = client_hello()
    tls = (cmd(0xB1, start) + cmd(0xB2, ch, patch=(6, 0, 32)) +
           cmd(0xB3, bytes(range(32)) + u16(0xC02B) + b"\x01") + cmd(0xB2, hs(2, server_hello())) +
           cmd(0xCF, b"\x00" + u16(len(SRV)) + u16(0) + SRV) + cmd(0xB4) +
           cmd(0xB2, hs(11, certificate([SRV]))) +
           cmd(0xB5, u16(0x0403) + bytes([69]) + b"\x03" + u16(23) + b"\x41" + POINT + SIG, sign=True) +
           cmd(0xB6) + cmd(0xB7) + cmd(0xB8) + cmd(0xB9, b"\x01") + cmd(0xC4, b"\x01\x17hello") +
           cmd(0xC4, b"\x02\x17" + bytes(40)) + cmd(0xC4, b"\x03\x17" + u16(3000) + bytes(1000)) +
           cmd(0xC4, b"\x04\x17" + bytes(1000)) + cmd(0xC4, b"\x05\x17" + u16(0) + u16(10)) +
           cmd(0xB9, b"\x02" + bytes(12)) + cmd(0xBA) + cmd(0xBB))
    s.append(b"\x10" + tls)
    s.append(b"\x00" + cmd(0xB1, start) + cmd(0xB2, ch, patch=(6, 0, 32)) +
             cmd(0xB3, bytes(range(32)) + u16(0xC0AC) + b"\x00") +
             cmd(0xCF, b"\x00" + u16(len(SRV)) + u16(0) + SRV[:300]) +
             cmd(0xCF, b"\x00" + u16(len(SRV)) + u16(300) + SRV[300:]) +
             cmd(0xCF, b"\x01" + u16(len(ROOT)) + u16(0) + ROOT) + cmd(0xB4))
    return s


def frame_seeds():
    s = []
    raw = lambda fr, fix=False: bytes([2 if fix else 0]) + u16(len(fr)) + fr
    cmd_ = lambda c, p=b"": b"\x01" + u16(1 + len(p)) + bytes([c]) + p
    s.append(b"\x00" + raw(frame(0xF7, b"\xab\xcd")) + raw(frame(0xF2)) + raw(b"\xF7\x00\x00\x00\x00\x00") +
             raw(b"\xF7\x02\x00\x00\x00\x00", True) + raw(b"\xF7\x00\x09\x00\x00\x00"))
    s.append(b"\x40" + cmd_(0xF7, b"inside") + cmd_(0x12, u16(0x3000) + u16(0) + u16(100)) +
             cmd_(0xF2) + cmd_(0xDC, u16(2048)) + cmd_(0xE1))
    s.append(b"\x40" + cmd_(0xF7) + raw(b"\x00\x01\x00\x00" + bytes(40) + b"\x00\x00", True) +
             cmd_(0xF7))
    s.append(b"\x48" + cmd_(0x12, u16(0x3000) + u16(0) + u16(10)) + raw(frame(0x12, u16(0x3000) + u16(0) + u16(10))) +
             cmd_(0xEA) + cmd_(0xF7))
    s.append(b"\xc0" + bytes(range(32)) + cmd_(0xE0, bytes(64)) + cmd_(0xF7) +
             raw(b"\x00\x01\x00\x00" + bytes(17) + b"\x00\x00", True))
    return s


def codec_seeds():
    s = [b"\x00" + server_hello(), b"\x00" + server_hello(0xC0AC, b""), b"\x80" + server_hello(0xC0AC, None),
         b"\x01" + certificate([SRV, ROOT]), b"\x02" + ske(), b"\x03" + cert_request(),
         b"\x04" + hs(14, b""), b"\x04" + hs(2, server_hello()) + hs(11, b""),
         b"\x05iot.example.com\x00mqtt", b"\x0d10.0.0.1\x00x-amzn-mqtt-ca", b"\x45a.b\x00"]
    return s


def x509_seeds():
    return [b"iot.example.com\x00" + SRV, b"*.example.com\x00" + SRV, b"10.0.0.1\x00" + SRV,
            b"fuzz root ca\x00" + ROOT]


def se_x509_seeds():
    one = lambda c: u16(len(c)) + c
    return [b"\x00" + ROOT, b"\x01" + one(ROOT) + one(SRV), b"\x02" + one(ROOT) + one(SRV) + one(ROOT),
            b"\x81" + one(ROOT) + one(SRV)]


def tls_client_seeds():
    ch = lambda kind, b: bytes([kind]) + u16(len(b)) + b
    params = b"\x03" + u16(23) + b"\x41" + POINT
    good = (ch(1, server_hello()) + ch(3, b"\x0b" + certificate([SRV])) + ch(2, params) +
            ch(3, b"\x0e"))
    s = [b"\x10" + good + ch(0, record(20, b"\x01")) + ch(0, record(22, bytes(40))),
         b"\x11" + ch(1, server_hello()) + ch(3, b"\x0b" + certificate([SRV])) + ch(2, params) +
         ch(3, b"\x0d" + cert_request()) + ch(3, b"\x0e") + ch(0, record(20, b"\x01")),
         b"\x18" + ch(1, server_hello(0xC0AC)) + ch(7, b"\x0b" + certificate([SRV, ROOT])),
         b"\x20" + ch(4, record(22, hs(2, server_hello()) + hs(11, certificate([SRV]))[:50])),
         b"\x00" + ch(0, record(21, b"\x02\x28")),
         b"\x04" + ch(1, server_hello(0xC02B, ext(0xFF01, b"\x00"))) + ch(0, record(21, b"\x01\x70")) +
         ch(3, b"\x0b" + certificate([ROOT])),
         b"\x10" + ch(1, server_hello()) + ch(3, b"\x0b" + certificate([SRV])) + ch(0, record(22, hs(12, ske())))]
    # whole handshakes: the harness seals the server Finished and records (kind 8 / 9)
    fin = ch(8, b"")
    seal = lambda ct, b: ch(9, bytes([ct]) + b)
    s.append(b"\x10" + good + fin + seal(23, b"hello device") + seal(21, b"\x01\x70") + seal(23, b"x" * 1000) +
             seal(22, hs(0, b"")) + seal(21, b"\x01\x00"))
    s.append(b"\x11" + ch(1, server_hello()) + ch(3, b"\x0b" + certificate([SRV])) + ch(2, params) +
             ch(3, b"\x0d" + cert_request()) + ch(3, b"\x0e") + fin + seal(23, b"mtls"))
    nomfl = server_hello(0xC0AC, ext(0xFF01, b"\x00") + ext(0x0017, b""))
    s.append(b"\x1a" + ch(1, nomfl) + ch(3, b"\x0b" + certificate([SRV])) + ch(2, params) + ch(3, b"\x0e") +
             fin + seal(23, bytes(range(256)) * 12) + seal(23, b"after big") + seal(20, b"\x01"))
    return s


def state_seeds():
    from cryptography.hazmat.primitives.asymmetric import ec
    k = ec.derive_private_key(0x1234567890ABCDEF, ec.SECP256R1())
    n = k.public_key().public_numbers()
    priv = (0x1234567890ABCDEF).to_bytes(32, "big")
    pub = n.x.to_bytes(32, "big") + n.y.to_bytes(32, "big")
    cfg = b"\x0a\x0f\x00\x00" + u32(10000) + u32(5000)
    head = lambda count: (b"KLST" + u16(1) + b"\x03" + cfg + u32(0) + u32(2) + bytes(range(24)) + priv + pub +
                          u16(count))
    rules = bytes([0x1F, 0x1F, 0] * 3)

    def obj(oid, typ, size, kt, u1, a1, u2, a2, has, data, writes=1):
        return (u16(oid) + bytes([typ, 2]) + u16(size) + rules + bytes([kt, u1, a1, u2, a2, has]) +
                u16(len(data)) + u32(writes) + b"\x00" + data)
    objs = (obj(0x1000, 3, 96, 4, 0x01, 0x01, 0xFF, 0, 1, priv + pub) +
            obj(0x1001, 2, 64, 4, 0x10, 0x01, 0xFF, 0, 1, pub) +
            obj(0x1003, 6, 2048, 0, 0xFF, 0, 0xFF, 0, 0, ROOT) +
            obj(0x2000, 1, 16, 1, 0x02, 0x14, 0xFF, 0, 1, bytes(range(16))) +
            obj(0x2001, 1, 32, 3, 0x01, 0x20, 0xFF, 0, 1, b"k" * 20) +
            obj(0x3000, 4, 100, 0, 0xFF, 0, 0xFF, 0, 0, b"data") +
            obj(0x3001, 5, 4, 0, 0xFF, 0, 0xFF, 0, 0, u32(9)) +
            obj(0x3002, 7, 4, 0, 0xFF, 0, 0xFF, 0, 0, u32(100)))
    return [head(0), head(8) + objs, head(1) + obj(0x0100, 1, 32, 1, 0x02, 0x14, 0xFF, 0, 0, b"")]


def pem(label, der):
    import base64
    b = base64.b64encode(der).decode()
    return ("-----BEGIN %s-----\n" % label + "\n".join(b[i:i + 64] for i in range(0, len(b), 64)) +
            "\n-----END %s-----\n" % label).encode()


def pki_seeds():
    import subprocess
    import tempfile
    key = bytes.fromhex(open(os.path.join(HERE, "certs", "srv.key.hex")).read().strip())
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    k = ec.derive_private_key(int.from_bytes(key, "big"), ec.SECP256R1())
    plain = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    with tempfile.NamedTemporaryFile() as f:
        f.write(plain)
        f.flush()
        enc = subprocess.run(["openssl", "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-iter", "1",
                              "-in", f.name, "-passout", "pass:fuzz passphrase"],
                             check=True, capture_output=True).stdout
        wrong = subprocess.run(["openssl", "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-iter", "1",
                                "-in", f.name, "-passout", "pass:another one"],
                               check=True, capture_output=True).stdout
    return [b"\x00" + pem("CERTIFICATE", SRV), b"\x00" + pem("CERTIFICATE", ROOT), b"\x01" + SRV,
            b"\x01" + ROOT, b"\x02" + enc, b"\x02" + wrong, b"\x02" + plain]


def pin_seeds():
    pub = POINT[1:]
    spki = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d03010703420004") + pub
    return [pub.hex().encode(), b"  " + POINT.hex().upper().encode() + b"\n", pem("PUBLIC KEY", spki),
            b"junk -----BEGIN PUBLIC KEY-----\n====\n-----END PUBLIC KEY-----"]


def resp_seeds():
    ok = lambda payload, st=0: b"\x01" + u16(1 + len(payload)) + bytes([st]) + payload
    s = []
    lens = [59, 12, 16, 27, 100, 50, 6 * 5, 4, 4, 64, 64, 32, 72, 64, 1, 0, 32, 32, 1, 32, 0,
            1, 64, 2000, 1999, 0, 2048]
    for start in range(9):
        s.append(bytes([start]) + b"".join(ok(bytes([0x30 + i]) * n) for i, n in enumerate(lens)))
    s.append(b"\x08" + ok(POINT[1:]) + ok(POINT[1:] + bytes(32)) + b"\x03" + u16(20) + bytes(20))
    s.append(b"\x00" + ok(b"", 0x81) + b"\x00" + u16(6) + b"\xf7\x00\x00\x05\x00\x00")
    return s


def varint(v):
    o = b""
    while True:
        d = v % 128
        v //= 128
        o += bytes([d | (0x80 if v else 0)])
        if not v:
            return o


def mq(t, flags, body):
    return bytes([(t << 4) | flags]) + varint(len(body)) + body


def mqstr(x):
    return u16(len(x)) + x


def mqtt_seeds():
    props = (b"\x11" + u32(60) + b"\x12" + mqstr(b"cid") + b"\x13" + u16(30) + b"\x21" + u16(10) +
             b"\x22" + u16(5) + b"\x24\x01" + b"\x25\x01" + b"\x26" + mqstr(b"k") + mqstr(b"v") +
             b"\x27" + u32(65536) + b"\x28\x01\x29\x01\x2a\x00" + b"\x15" + mqstr(b"m") +
             b"\x16" + mqstr(b"data") + b"\x1f" + mqstr(b"why"))
    pprops = (b"\x01\x01" + b"\x02" + u32(10) + b"\x03" + mqstr(b"text/plain") + b"\x08" + mqstr(b"r/t") +
              b"\x09" + mqstr(b"corr") + b"\x0b" + varint(7) + b"\x23" + u16(1))
    v5 = (mq(2, 0, b"\x00\x00" + varint(len(props)) + props) +
          mq(3, 2, mqstr(b"cmd/t/x") + u16(1) + varint(len(pprops)) + pprops + b"payload") +
          mq(3, 0, mqstr(b"a/b") + b"\x00" + b"qos0") + mq(4, 0, u16(1) + b"\x10\x00") + mq(5, 0, u16(2)) +
          mq(6, 2, u16(3) + b"\x00\x00") + mq(7, 0, u16(4)) + mq(9, 0, u16(5) + b"\x00\x00\x01\x80") +
          mq(11, 0, u16(6) + b"\x00\x00\x11") + mq(13, 0, b"") + mq(14, 0, b"\x8e\x00") +
          mq(15, 0, b"\x18" + varint(8) + b"\x15" + mqstr(b"m") + b"\x16" + u16(0)))
    v311 = (mq(2, 0, b"\x01\x00") + mq(3, 4, mqstr(b"dt/x") + u16(9) + b"hi") + mq(4, 0, u16(1)) +
            mq(9, 0, u16(2) + b"\x01\x80") + mq(11, 0, u16(3)) + mq(13, 0, b""))
    return [b"\x01" + v5, b"\x00" + v311, b"\x0b" + varint(len(props)) + props,
            b"\x0d" + varint(len(pprops)) + pprops, b"\x09" + varint(3) + b"\x18" + u32(5)[:2]]


def mqtt_client_seeds():
    def split(b, k=63):
        o = b""
        while b:
            o += bytes([k]) + b[:k + 1]
            b = b[k + 1:]
        return o
    props = b"\x21" + u16(10) + b"\x24\x01" + b"\x27" + u32(2000)
    v5 = (mq(2, 0, b"\x00\x00" + varint(len(props)) + props) + mq(9, 0, u16(1) + b"\x00\x01\x02") +
          mq(4, 0, u16(2)) + mq(5, 0, u16(3)) + mq(7, 0, u16(3)) +
          mq(3, 2, mqstr(b"cmd/dev-1/reboot") + u16(7) + b"\x00" + b"now") +
          mq(3, 4, mqstr(b"cmd/dev-1/x") + u16(8) + b"\x00" + b"q2") + mq(6, 2, u16(8)) +
          mq(13, 0, b"") + mq(14, 0, b"\x8e\x00"))
    v311 = (mq(2, 0, b"\x00\x00") + mq(9, 0, u16(1) + b"\x01\x02") + mq(4, 0, u16(2)) + mq(5, 0, u16(3)) +
            mq(7, 0, u16(3)) + mq(3, 0, mqstr(b"cmd/dev-1/a") + b"hello") + mq(13, 0, b""))
    auth = (mq(15, 0, b"\x18" + varint(12) + b"\x15" + mqstr(b"m") + b"\x16" + mqstr(b"nonce")) +
            mq(2, 0, b"\x00\x00\x00"))
    return [b"\x19" + split(v5), b"\x18" + split(v311), b"\x05" + split(auth, 3), b"\x1b" + split(v5, 5),
            b"\x01" + split(mq(2, 0, b"\x00\x87\x00"))]


def jwt_seeds():
    import base64
    b64u = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=")
    hdr = b'{"alg":"ES256","typ":"JWT","x5c":["' + base64.b64encode(SRV) + b'"]}'
    pay = b'{"iss":"dev","aud":"localhost","iat":1700000000,"exp":1700003600,"nonce":"abc"}'
    tok = b64u(hdr) + b"." + b64u(pay) + b"." + b64u(bytes(range(64)))
    return [b"\x00" + tok, b"\x80" + tok, b"\x00" + b64u(b'{"alg":"HS256"}') + b"." + b"." + b64u(bytes(64)),
            b"\x01" + pay, b"\x01" + b'{"alg":"ES256","alg":"x"}', b"\x01" + b'{"a":[1,{"b":"c"}],"alg":"\\u0041"}',
            b"\x02" + base64.b64encode(SRV[:50]), b"\x02" + b64u(SRV[:31]), b"\x02" + b"ab=c"]


def import_seeds():
    import json
    cert = pem("CERTIFICATE", SRV).decode()
    root = pem("CERTIFICATE", ROOT).decode()
    line = lambda **kw: json.dumps(kw).encode() + b"\n"
    return [line(thingName="dev-1", certificatePem=cert),
            b"\n  \n" + line(thingName="dev-2", certificatePem=cert, caCertificatePem=root, status="ACTIVE",
                            attributes={"model": "x", "rev": "2"}) + b"{not json}\n",
            line(thingName="dev-3", certificatePem=cert, policyName="none", certificateId="00" * 32),
            line(thingName="dev-4", certificatePem=cert, status="REVOKED", serialNumber="1", device="x") +
            line(thingName="dev-4", certificatePem=root),
            b'{"thingName":"a","thingName":"b","certificatePem":"x"}\r\n[]\n']


def broker_seeds():
    cprops = b"\x11" + u32(30) + b"\x21" + u16(10) + b"\x27" + u32(65536) + b"\x15" + mqstr(b"keylink-challenge")
    wprops = b"\x18" + u32(5) + b"\x01\x01" + b"\x03" + mqstr(b"text/plain")
    conn5 = (mqstr(b"MQTT") + b"\x05" + b"\xee" + u16(60) + varint(len(cprops)) + cprops + mqstr(b"dev-1") +
             varint(len(wprops)) + wprops + mqstr(b"will/t") + mqstr(b"bye") + mqstr(b"user") + mqstr(b"jwt"))
    conn4 = mqstr(b"MQTT") + b"\x04" + b"\x02" + u16(30) + mqstr(b"dev-2")
    pprops = b"\x02" + u32(10) + b"\x08" + mqstr(b"r/t") + b"\x09" + mqstr(b"c") + b"\x26" + mqstr(b"k") + mqstr(b"v")
    v5 = (mq(1, 0, conn5) + mq(3, 2, mqstr(b"dt/dev-1/t") + u16(1) + varint(len(pprops)) + pprops + b"22") +
          mq(4, 0, u16(1) + b"\x00\x00") + mq(6, 2, u16(2)) +
          mq(8, 2, u16(3) + b"\x00" + mqstr(b"cmd/dev-1/#") + b"\x01" + mqstr(b"$share/g/x") + b"\x2e") +
          mq(10, 2, u16(4) + b"\x00" + mqstr(b"cmd/dev-1/#")) + mq(12, 0, b"") +
          mq(15, 0, b"\x18" + varint(7) + b"\x16" + mqstr(b"sig")) + mq(14, 0, b"\x04\x00"))
    v4 = (mq(1, 0, conn4) + mq(3, 0, mqstr(b"a/b") + b"x") + mq(8, 2, u16(1) + mqstr(b"a/+") + b"\x02") +
          mq(10, 2, u16(2) + mqstr(b"a/+")) + mq(14, 0, b""))
    return [b"\x01" + v5, b"\x00" + v4]


def main():
    write("chip_cmds", chip_seeds())
    write("chip_frame", frame_seeds())
    write("host_frame", [frame(0xF7), frame(0xF7, b"\xab\xcd"), frame(0, bytes(40), 1), b"123456789"])
    write("tls_codec", codec_seeds())
    write("host_x509", x509_seeds())
    write("se_x509", se_x509_seeds())
    write("tls_client", tls_client_seeds())
    write("state_decode", state_seeds())
    if not os.path.exists(os.path.join(HERE, "corpus", "pki_parse", "seed-04")):
        write("pki_parse", pki_seeds())  # encrypted keys get a random salt: made once
    write("host_pin", pin_seeds())
    write("host_resp", resp_seeds())
    write("mqtt_codec", mqtt_seeds())
    write("jwt_parse", jwt_seeds())
    write("mqtt_client", mqtt_client_seeds())
    write("cloud_import", import_seeds())
    write("cloud_mqtt", broker_seeds())
    # self-signed certificates with odd subjectAltNames (*.com, *, a*.example.com, *.*.com,
    # example.com., *.co.uk, IP 10.0.0.1, xn--*, .example.com, *..), made once with openssl
    san = [open(os.path.join(HERE, "certs", "san", f), "rb").read()
           for f in sorted(os.listdir(os.path.join(HERE, "certs", "san")))]
    hosts = [b"a.example.com", b"a.co.uk", b"10.0.0.1", b"xn--a.example.com"]
    write("se_hostcheck", x509_seeds() + [b"a.example.com\x00" + SRV, b"IOT.EXAMPLE.COM\x00" + SRV] +
          [hosts[i % len(hosts)] + b"\x00" + c for i, c in enumerate(san)])
    fields = lambda *f: b"".join(bytes([len(x)]) + x for x in f)
    strs8 = fields(b"dev-1", b"dt/dev-1/t", b"22.5", b"user", b"pass", b"text/plain", b"r/t", b"corr")
    filt = fields(b"dev-1", b"cmd/dev-1/#", b"a/+/b", b"$share/g/x", b"u", b"p", b"k", b"v")
    write("cloud_interop", [b"\x00\x00\x31" + strs8, b"\x04\xff\x31" + strs8, b"\x05\x5f\x0d" + strs8,
                            b"\x01\x00\x00" + strs8, b"\x06\x3f\x2a" + filt, b"\x03\x00\x01" + filt,
                            b"\x07\x00\x02" + filt])
    write("chip_rules", [b"ahs=rwdgx:ah=rx:h=x", b"-:-:x=r", b"ahsex=rwdgx:ahsex=rwdgx:ahsex=rwdgx",
                         bytes([0x1F, 0x1F, 0, 0, 0, 0, 2, 1, 0]), b"ha=xr:e=w:-", b"a=:b=r:-"])
    return 0


if __name__ == "__main__":
    sys.exit(main())

# Shared by the data-plane tests (test_dp_*.py): starts keylinkd on free loopback ports in a
# temp dir, drives `keylink iot`, makes CAs and device certificates with python3-cryptography,
# and speaks raw MQTT 3.1.1/5 (so every reason code and the MQTT 5 AUTH exchange are visible).
import base64
import datetime
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.x509.oid import NameOID

BIN = os.environ.get("KL_BIN_DIR", "")
KEYLINKD = os.environ.get("KL_KEYLINKD") or os.path.join(BIN, "keylinkd")
KEYLINK = os.environ.get("KL_KEYLINK") or os.path.join(BIN, "keylink")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def fail(msg):
    raise AssertionError(msg)


def check(cond, msg):
    if not cond:
        fail(msg)


def now():
    return datetime.datetime.now(datetime.timezone.utc)


# ---- certificates ----------------------------------------------------------------------------

def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def make_ca(cn):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now() - datetime.timedelta(days=1))
            .not_valid_after(now() + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def issue(ca_key, ca_cert, cn, before=None, after=None, key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(before or now() - datetime.timedelta(hours=1))
            .not_valid_after(after or now() + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def cert_id(cert):
    return cert.fingerprint(hashes.SHA256()).hex()


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def es256_jws(key, header, claims):
    h = b64url(json.dumps(header, separators=(",", ":")).encode())
    c = b64url(json.dumps(claims, separators=(",", ":")).encode())
    der = key.sign(f"{h}.{c}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = utils.decode_dss_signature(der)
    return f"{h}.{c}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


# ---- keylinkd --------------------------------------------------------------------------------

class Keylinkd:
    def __init__(self, args=(), dev=False, tmp=None, preexec=None):
        self.tmp = tmp or tempfile.mkdtemp(prefix="kl-dp-")
        self.dir = os.path.join(self.tmp, "kd")
        self.port, self.api = free_port(), free_port()
        self.dev_port = free_port() if dev else None
        cmd = [KEYLINKD, "--data-dir", self.dir, "--listen", f"127.0.0.1:{self.port}",
               "--api", f"127.0.0.1:{self.api}"]
        if dev:
            cmd += ["--dev-listener", f"127.0.0.1:{self.dev_port}"]
        cmd += list(args)
        self.logf = open(os.path.join(self.tmp, "kd.log"), "a")
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT,
                                     preexec_fn=preexec)
        self.files = []
        for _ in range(150):
            if os.path.exists(os.path.join(self.dir, "admin-token")):
                try:
                    self.iot("list-things")
                    break
                except Exception:
                    pass
            if self.proc.poll() is not None:
                fail("keylinkd exited: " + self.log())
            time.sleep(0.1)
        else:
            fail("keylinkd did not come up: " + self.log())
        self.root_ca = os.path.join(self.dir, "server-root-ca.pem")

    def log(self):
        if not self.logf.closed:
            self.logf.flush()
        with open(os.path.join(self.tmp, "kd.log")) as f:
            return f.read()

    def wait_log(self, text, timeout=3.0):
        t = time.time()
        while time.time() - t < timeout:
            if text in self.log():
                return True
            time.sleep(0.05)
        fail(f"keylinkd log lacks {text!r}:\n{self.log()[-3000:]}")

    def file(self, name, text):
        p = os.path.join(self.tmp, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def iot_raw(self, *args):
        env = dict(os.environ, KEYLINK_ENDPOINT_URL=f"http://127.0.0.1:{self.api}",
                   KEYLINK_TOKEN=open(os.path.join(self.dir, "admin-token")).read())
        return subprocess.run([KEYLINK, "iot"] + list(args), env=env, capture_output=True,
                              text=True, timeout=30)

    def iot(self, *args):
        r = self.iot_raw(*args)
        if r.returncode:
            raise RuntimeError(f"keylink iot {' '.join(args)}: {r.stderr.strip()}")
        return json.loads(r.stdout) if r.stdout.strip() else {}

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.api}/metrics", timeout=5) as r:
            check(r.headers.get("Content-Type", "").startswith("text/plain"),
                  "metrics content type")
            return r.read().decode()

    def metric(self, name):
        for line in self.metrics().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        fail(f"no metric {name}")

    # registry helpers
    def register_ca(self, cn="test CA", active=True, auto=False):
        key, cert = make_ca(cn)
        code = self.iot("get-registration-code")["registrationCode"]
        vkey, vcert = issue(key, cert, code)
        args = ["register-ca-certificate", "--ca-certificate",
                "file://" + self.file(f"ca-{cert_id(cert)[:8]}.pem", pem(cert)),
                "--verification-certificate",
                "file://" + self.file(f"v-{cert_id(cert)[:8]}.pem", pem(vcert))]
        args.append("--set-as-active" if active else "--no-set-as-active")
        if auto:
            args.append("--allow-auto-registration")
        r = self.iot(*args)
        return key, cert, r["certificateId"]

    def device(self, ca_key, ca_cert, name, status="ACTIVE", thing=True, policy="all",
               before=None, after=None):
        """Issues and registers a device certificate; returns (key, cert, arn, keyfile, certfile)."""
        key, cert = issue(ca_key, ca_cert, name, before, after)
        cf = self.file(name + ".pem", pem(cert))
        kf = self.file(name + ".key", key_pem(key))
        os.chmod(kf, 0o600)
        arn = None
        if status:
            arn = self.iot("register-certificate", "--certificate-pem", "file://" + cf,
                           "--status", status)["certificateArn"]
            if thing:
                self.iot("create-thing", "--thing-name", name)
                self.iot("attach-thing-principal", "--thing-name", name, "--principal", arn)
            if policy:
                self.iot("attach-policy", "--policy-name", policy, "--target", arn)
        return key, cert, arn, kf, cf

    def policy(self, name, statements):
        doc = {"Version": "2012-10-17", "Statement": statements}
        self.iot("create-policy", "--policy-name", name, "--policy-document",
                 "file://" + self.file(name + ".json", json.dumps(doc)))

    def tls(self, certfile=None, keyfile=None, version=None):
        ctx = ssl.create_default_context(cafile=self.root_ca)
        if certfile:
            ctx.load_cert_chain(certfile, keyfile)
        if version == "1.2":
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        elif version == "1.3":
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        return ctx

    def stop(self, keep=False):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        text = self.log()
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehavior"):
            if bad in text:
                fail("keylinkd reported a sanitizer error:\n" + text[text.index(bad) - 200:][:4000])
        if self.proc.returncode not in (0, None):
            fail(f"keylinkd exited with {self.proc.returncode}:\n{text[-2000:]}")
        if keep:
            pass
        elif os.environ.get("KL_KEEP_TMP"):
            print("kept", self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


# ---- raw MQTT --------------------------------------------------------------------------------

def varint(n):
    out = bytearray()
    while True:
        d = n % 128
        n //= 128
        out.append(d | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mstr(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack(">H", len(b)) + b


PROP_TYPES = {0x01: "B", 0x02: "I", 0x03: "S", 0x08: "S", 0x09: "D", 0x0B: "V", 0x11: "I",
              0x12: "S", 0x13: "H", 0x15: "S", 0x16: "D", 0x17: "B", 0x18: "I", 0x19: "B",
              0x1F: "S", 0x21: "H", 0x22: "H", 0x23: "H", 0x24: "B", 0x25: "B", 0x26: "P",
              0x27: "I", 0x28: "B", 0x29: "B", 0x2A: "B"}


def props(d):
    out = bytearray()
    for pid, v in d:
        out += varint(pid)
        t = PROP_TYPES[pid]
        if t == "B":
            out.append(v)
        elif t == "H":
            out += struct.pack(">H", v)
        elif t == "I":
            out += struct.pack(">I", v)
        elif t == "V":
            out += varint(v)
        elif t in "SD":
            out += mstr(v)
        elif t == "P":
            out += mstr(v[0]) + mstr(v[1])
    return varint(len(out)) + bytes(out)


def parse_props(b, i):
    n, mul = 0, 1
    while True:
        d = b[i]
        i += 1
        n += (d & 0x7F) * mul
        mul *= 128
        if not d & 0x80:
            break
    end = i + n
    out = {}
    while i < end:
        pid = b[i]
        i += 1
        t = PROP_TYPES[pid]
        if t == "B":
            v = b[i]
            i += 1
        elif t == "H":
            v = struct.unpack(">H", b[i:i + 2])[0]
            i += 2
        elif t == "I":
            v = struct.unpack(">I", b[i:i + 4])[0]
            i += 4
        elif t == "V":
            v, mul = 0, 1
            while True:
                d = b[i]
                i += 1
                v += (d & 0x7F) * mul
                mul *= 128
                if not d & 0x80:
                    break
        elif t in "SD":
            ln = struct.unpack(">H", b[i:i + 2])[0]
            v = b[i + 2:i + 2 + ln]
            i += 2 + ln
        else:
            l1 = struct.unpack(">H", b[i:i + 2])[0]
            k = b[i + 2:i + 2 + l1]
            i += 2 + l1
            l2 = struct.unpack(">H", b[i:i + 2])[0]
            v = (k, b[i + 2:i + 2 + l2])
            i += 2 + l2
            out.setdefault(pid, []).append(v)
            continue
        out[pid] = v
    return out, end


class Closed(Exception):
    pass


class Mqtt:
    """A blocking raw MQTT client over TLS (ctx) or plain TCP."""

    def __init__(self, port, ctx=None, version=5, timeout=5.0, server_name="localhost",
                 session=None):
        self.version = version
        s = socket.create_connection(("127.0.0.1", port), timeout)
        self.sock = (ctx.wrap_socket(s, server_hostname=server_name, session=session)
                     if ctx else s)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.pid = 0
        self.pending = []

    def send(self, ptype, flags, body):
        self.sock.sendall(bytes([ptype << 4 | flags]) + varint(len(body)) + body)

    def _read(self, n):
        while len(self.buf) < n:
            try:
                d = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError, BrokenPipeError) as e:
                raise Closed(str(e))
            if not d:
                raise Closed("EOF")
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def packet(self, timeout=None):
        if timeout is not None:
            self.sock.settimeout(timeout)
        h = self._read(1)[0]
        n, mul = 0, 1
        while True:
            d = self._read(1)[0]
            n += (d & 0x7F) * mul
            mul *= 128
            if not d & 0x80:
                break
        return h >> 4, h & 15, self._read(n)

    def connect(self, client_id, clean=True, keepalive=60, user=None, password=None, will=None,
                cprops=(), expect=None):
        v5 = self.version == 5
        fl = (2 if clean else 0) | (0x80 if user is not None else 0) | (0x40 if password is not None else 0)
        payload = mstr(client_id)
        if will:
            topic, msg, qos, retain = will[:4]
            fl |= 4 | (qos << 3) | (0x20 if retain else 0)
            if v5:
                payload += props(will[4] if len(will) > 4 else ())
            payload += mstr(topic) + mstr(msg)
        if user is not None:
            payload += mstr(user)
        if password is not None:
            payload += mstr(password)
        body = mstr("MQTT") + bytes([self.version, fl]) + struct.pack(">H", keepalive)
        if v5:
            body += props(cprops)
        self.send(1, 0, body + payload)
        return self.connack(expect)

    def connack(self, expect=None):
        t, _, b = self.packet()
        if t == 15:  # AUTH
            rc = b[0] if b else 0
            p, _ = parse_props(b, 1) if len(b) > 1 else ({}, 0)
            return ("auth", rc, p)
        check(t == 2, f"expected CONNACK, got type {t}")
        rc = b[1]
        p = parse_props(b, 2)[0] if self.version == 5 and len(b) > 2 else {}
        self.session_present = b[0] & 1
        self.connack_props = p
        if expect is not None:
            check(rc == expect, f"CONNACK rc {rc:#x}, expected {expect:#x} ({p.get(0x1F)})")
        return rc

    def auth(self, rc, method, data):
        self.send(15, 0, bytes([rc]) + props([(0x15, method), (0x16, data)]))
        return self.connack()

    def next_pid(self):
        self.pid = self.pid % 65535 + 1
        return self.pid

    def publish(self, topic, payload, qos=0, retain=False, pprops=(), dup=False):
        pid = self.next_pid() if qos else 0
        body = mstr(topic) + (struct.pack(">H", pid) if qos else b"")
        if self.version == 5:
            body += props(pprops)
        if isinstance(payload, str):
            payload = payload.encode()
        self.send(3, (8 if dup else 0) | qos << 1 | (1 if retain else 0), body + payload)
        if qos == 0:
            return None
        t, _, b = self.wait_for((4,) if qos == 1 else (5,))
        rc = b[2] if len(b) > 2 else 0
        if qos == 2 and rc < 0x80:
            self.send(6, 2, struct.pack(">H", pid))
            self.wait_for((7,))
        return rc

    def wait_for(self, types, timeout=5.0):
        """Next packet of one of types; PUBLISHes seen meanwhile are kept (acked)."""
        while True:
            t, f, b = self.packet(timeout)
            if t in types:
                return t, f, b
            if t == 3:
                self.pending.append(self._on_publish(f, b))
            elif t == 14:
                raise Closed(f"DISCONNECT {b[0] if b else 0:#x}")

    def _on_publish(self, f, b):
        qos = (f >> 1) & 3
        tl = struct.unpack(">H", b[:2])[0]
        topic = b[2:2 + tl].decode()
        i = 2 + tl
        pid = None
        if qos:
            pid = struct.unpack(">H", b[i:i + 2])[0]
            i += 2
        p = {}
        if self.version == 5:
            p, i = parse_props(b, i)
        if qos == 1:
            self.send(4, 0, struct.pack(">H", pid))
        elif qos == 2:
            self.send(5, 0, struct.pack(">H", pid))
            self.wait_for((6,))
            self.send(7, 0, struct.pack(">H", pid))
        return {"topic": topic, "payload": b[i:], "qos": qos, "retain": f & 1, "dup": f >> 3 & 1,
                "props": p}

    def recv(self, timeout=5.0):
        if self.pending:
            return self.pending.pop(0)
        t, f, b = self.wait_for((3,), timeout)
        return self._on_publish(f, b)

    def no_message(self, timeout=0.5):
        try:
            m = self.recv(timeout)
        except (socket.timeout, TimeoutError):
            return True
        fail(f"unexpected message {m}")

    def subscribe(self, *filters, sub_id=None):
        pid = self.next_pid()
        body = struct.pack(">H", pid)
        if self.version == 5:
            body += props([(0x0B, sub_id)] if sub_id else [])
        for f, opts in filters:
            body += mstr(f) + bytes([opts])
        self.send(8, 2, body)
        t, _, b = self.wait_for((9,))
        i = 2
        if self.version == 5:
            _, i = parse_props(b, 2)
        return list(b[i:])

    def unsubscribe(self, *filters):
        pid = self.next_pid()
        body = struct.pack(">H", pid) + (props(()) if self.version == 5 else b"")
        for f in filters:
            body += mstr(f)
        self.send(10, 2, body)
        t, _, b = self.wait_for((11,))
        i = 2
        if self.version == 5:
            _, i = parse_props(b, 2)
        return list(b[i:])

    def disconnect(self, rc=0, dprops=()):
        try:
            if self.version == 5 and (rc or dprops):
                self.send(14, 0, bytes([rc]) + props(dprops))
            else:
                self.send(14, 0, b"")
        except OSError:
            pass
        self.close()

    def closed_within(self, seconds):
        """Seconds until the server closed the connection (DISCONNECT or EOF), or fail."""
        t0 = time.time()
        self.sock.settimeout(seconds)
        try:
            while True:
                t, f, b = self.packet(seconds)
                if t == 14:
                    self.last_disconnect = b[0] if b else 0
                    self.packet(seconds)
        except Closed:
            return time.time() - t0
        except (socket.timeout, TimeoutError):
            fail(f"connection still open after {seconds}s")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def tls_refused(port, ctx):
    """1 when the TLS handshake (or the first read after it, TLS 1.3) fails; returns the
    error text."""
    try:
        m = Mqtt(port, ctx, version=5)
        m.connect("x", expect=None)
    except (ssl.SSLError, Closed, ConnectionResetError, OSError) as e:
        return str(e)
    fail("TLS connection with a bad certificate was accepted")

#!/usr/bin/env bash
# init_tls_iot on one chip (a keylink-se daemon on a temp socket, and mem: chips): the device
# certificate verifies and carries every extension, its key is the chip's 0x1004, the chip
# holds the certificate and root; CSR path; and every refusal writes nothing and leaves the
# chip as it was.
set -u
B=$KL_BIN_DIR; INIT=$B/init_tls_iot; MK=$B/make_ca_cert; SE=$B/keylink-se
T=$(mktemp -d); SEPID=""
cleanup() { [ -n "$SEPID" ] && kill "$SEPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
export KEYLINK_CA_PASSPHRASE="init-test-passphrase-$$"
KEYF=privkey_server_ECDSA_secp256r1_secp256r1.pem

# A tiny independent client of the chip link (docs/protocol.md frames) to look inside.
cat >"$T/chip.py" <<'PY'
import hashlib, socket, struct, sys
def crc(b):
    c = 0xFFFF
    for x in b:
        c ^= x << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) & 0xFFFF if c & 0x8000 else (c << 1) & 0xFFFF
    return c
class Chip:
    def __init__(s, path):
        s.s = socket.socket(socket.AF_UNIX); s.s.connect(path)
    def cmd(s, c, p=b""):
        f = bytes([c, 0]) + struct.pack(">H", len(p)) + p
        s.s.sendall(f + struct.pack(">H", crc(f)))
        h = b""
        while len(h) < 4: h += s.s.recv(4 - len(h))
        n = struct.unpack(">H", h[2:4])[0]; body = b""
        while len(body) < n + 2: body += s.s.recv(n + 2 - len(body))
        return h[0], body[:n]
    def read(s, oid):
        st, info = s.cmd(0x15, struct.pack(">H", oid))
        if st: return st, b""
        used = struct.unpack(">H", info[20:22])[0]; out = b""
        if info[2] in (2, 3): used = 64
        while len(out) < used:
            n = min(2000, used - len(out))
            st, d = s.cmd(0x12, struct.pack(">HHH", oid, len(out), n))
            if st: return st, out
            out += d
        return 0, out
R = bytes([0x1F, 0x1F, 0]) * 3
def main():
    c = Chip(sys.argv[1]); op = sys.argv[2]
    if op == "read":      # hex of an object's readable bytes, or "ERR <status>"
        st, d = c.read(int(sys.argv[3], 16)); print(d.hex() if st == 0 else "ERR %d" % st)
    elif op == "info":    # CREATE_OBJECT layout of an object, hex
        st, d = c.cmd(0x15, struct.pack(">H", int(sys.argv[3], 16))); print(d[:20].hex() if st == 0 else "ERR %d" % st)
    elif op == "fill":    # data objects until at most HI bytes stay free; prints what is free
        hi = int(sys.argv[3]); oid = 0x3000
        def free():
            st, d = c.cmd(0xF2); return struct.unpack(">H", d[48:50])[0]
        while free() > hi:
            size = min(2000, max(1, free() - hi - 40))
            st, _ = c.cmd(0x10, struct.pack(">HBBH", oid, 4, 2, size) + R + bytes([0, 0xFF, 0, 0xFF, 0]))
            if st: break
            oid += 1
        print(free())
    elif op in ("lock", "terminate"):  # admin key + authentication; DELIVERY -> INITIALIZED (-> TERMINATED)
        from cryptography.hazmat.primitives.asymmetric import ec, utils
        from cryptography.hazmat.primitives import hashes, serialization
        k = ec.generate_private_key(ec.SECP256R1())
        pub = k.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)[1:]
        st, _ = c.cmd(0x10, struct.pack(">HBBH", 0x1001, 2, 2, 64) + R + bytes([4, 0x08, 0x01, 0xFF, 0]))
        assert st == 0, "create admin key: %d" % st
        st, _ = c.cmd(0xCA, struct.pack(">HH", 0x1001, 64) + pub); assert st == 0, "import: %d" % st
        st, ch = c.cmd(0xF8); assert st == 0
        r, s_ = utils.decode_dss_signature(k.sign(ch, ec.ECDSA(hashes.SHA256())))
        st, _ = c.cmd(0xF9, struct.pack(">H", 0x1001) + r.to_bytes(32, "big") + s_.to_bytes(32, "big")); assert st == 0, "auth: %d" % st
        if op == "terminate":  # allow TERMINATED in the configuration while still in DELIVERY
            st, cfg = c.cmd(0xF5); assert st == 0
            st, _ = c.cmd(0xF4, bytes([cfg[0] | 2]) + cfg[1:]); assert st == 0, "config: %d" % st
        st, _ = c.cmd(0xF3, bytes([4])); assert st == 0, "lifecycle: %d" % st
        if op == "terminate":
            for state in (5, 6):
                st, _ = c.cmd(0xF3, bytes([state])); assert st == 0, "lifecycle %d: %d" % (state, st)
            print("TERMINATED")
        else:
            print("INITIALIZED")
main()
PY
chip() { /usr/bin/python3 "$T/chip.py" "$SOCK" "$@"; }
SOCK=$T/se.sock
"$SE" --state "$T/state" --socket "$SOCK" >"$T/se.log" 2>&1 & SEPID=$!
for i in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || { echo "FAIL: keylink-se made no socket"; exit 1; }
"$MK" --out-dir "$T/ca" --days 100 >/dev/null </dev/null || { echo "FAIL: make_ca_cert"; exit 1; }
CA=$T/ca/cert_CA.pem; CK=$T/ca/$KEYF
ROOT=/usr/share/ca-certificates/mozilla/Amazon_Root_CA_3.crt
init() { "$INIT" --ca-cert "$CA" --ca-key "$CK" "$@" </dev/null; }
pub_of_cert() { openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | tail -c 64 | od -An -tx1 | tr -d ' \n'; }
der_hex() { openssl x509 -in "$1" -outform DER | od -An -tx1 | tr -d ' \n'; }

# --- provision one chip over unix:, with the CSR path too --------------------------------
init --device "unix:$SOCK" --thing KL_TEST-1 --csr --out-dir "$T/dev" >"$T/out" 2>&1 \
  && ok "provisioned over unix:" || bad "init_tls_iot failed: $(cat "$T/out")"
crt=$T/dev/csr_cert.pem
openssl verify -CAfile "$CA" "$crt" >/dev/null 2>&1 && ok "openssl verify -CAfile cert_CA.pem csr_cert.pem" || bad "openssl verify"
txt=$(openssl x509 -in "$crt" -noout -text)
echo "$txt" | grep -q "Version: 3 (0x2)" && ok "v3" || bad "not v3"
echo "$txt" | grep -q "Subject: CN = KL_TEST-1$" && ok "CN = thing name" || bad "subject: $(echo "$txt" | grep Subject:)"
echo "$txt" | grep -A1 "Key Usage: critical" | grep -qx " *Digital Signature" && ok "keyUsage digitalSignature (critical)" || bad "keyUsage"
echo "$txt" | grep -A1 "Extended Key Usage" | grep -qx " *TLS Web Client Authentication" && ok "EKU clientAuth" || bad "EKU"
echo "$txt" | grep -A1 "Basic Constraints: critical" | grep -q "CA:FALSE" && ok "basicConstraints CA:FALSE" || bad "basicConstraints"
echo "$txt" | grep -q "Subject Key Identifier" && ok "subject key id" || bad "no SKI"
aki=$(echo "$txt" | grep -A1 "Authority Key Identifier" | tail -1 | tr -d ' ' | sed 's/^keyid://')
ski=$(openssl x509 -in "$CA" -noout -text | grep -A1 "Subject Key Identifier" | tail -1 | tr -d ' ')
[ -n "$aki" ] && [ "$aki" = "$ski" ] && ok "authority key id = CA's subject key id" || bad "AKI '$aki' vs '$ski'"
serial=$(openssl x509 -in "$crt" -noout -serial | cut -d= -f2)
[ ${#serial} -eq 40 ] && [ "$(printf '%d' "0x${serial:0:2}")" -lt 128 ] && ok "random positive serial" || bad "serial $serial"
[ "$(openssl x509 -in "$crt" -noout -enddate)" = "$(openssl x509 -in "$CA" -noout -enddate)" ] \
  && ok "validity clamped to the CA's notAfter (CA 100 days, device default 365)" || bad "device cert outlives the CA"
echo "$txt" | grep -q "ecdsa-with-SHA256" && ok "ECDSA-SHA256" || bad "signature algorithm"
certpub=$(pub_of_cert "$crt")
[ "$certpub" = "$(chip read 1004)" ] && ok "certificate key = chip's 0x1004 (raw link read)" || bad "key differs from chip's 0x1004"
kp=$("$B/keylink" se --device "unix:$SOCK" pubkey 0x1004 | openssl pkey -pubin -outform DER | tail -c 64 | od -An -tx1 | tr -d ' \n')
[ "$kp" = "$certpub" ] && ok "keylink se pubkey 0x1004 = certificate key" || bad "keylink se pubkey differs"
[ "$(chip info 1004 | cut -c5-8)" = "0302" ] && ok "0x1004 is a persistent key pair" || bad "0x1004 info $(chip info 1004)"
[ "$(chip info 1004 | cut -c31-40)" = "0404010101" ] && ok "0x1004: P-256, TLS auth + data signature, ECDSA-SHA256" || bad "0x1004 usage $(chip info 1004)"
[ "$(chip read 1002)" = "$(der_hex "$crt")" ] && ok "chip 0x1002 holds csr_cert.pem" || bad "chip 0x1002 differs"
[ "$(chip read 1003)" = "$(der_hex "$ROOT")" ] && ok "chip 0x1003 holds Amazon Root CA 3 (default root)" || bad "chip 0x1003 differs"
grep -q "$(openssl x509 -in "$crt" -outform DER | sha256sum | cut -c1-64)" "$T/out" && ok "prints the certificate id" || bad "no certificate id"
openssl req -in "$T/dev/csr.pem" -verify -noout 2>&1 | grep -q "verify OK" && ok "CSR verifies (openssl req -verify)" || bad "CSR does not verify"
openssl req -in "$T/dev/csr.pem" -noout -subject | grep -q "CN = KL_TEST-1" && ok "CSR subject" || bad "CSR subject"
[ "$(openssl req -in "$T/dev/csr.pem" -noout -pubkey | openssl pkey -pubin -outform DER | tail -c 64 | od -An -tx1 | tr -d ' \n')" = "$certpub" ] \
  && ok "CSR key = chip key" || bad "CSR key differs"

# --- KEYLINK_SE names the chip when --device is left out ---------------------------------
KEYLINK_SE="mem:$T/chipE" init --thing FROM_ENV --out-dir "$T/env" >"$T/out" 2>&1 && [ -f "$T/env/csr_cert.pem" ] \
  && ok "--device defaults to \$KEYLINK_SE" || bad "KEYLINK_SE: $(cat "$T/out")"

# --- a provisioned chip refuses without --force, unchanged ------------------------------
before=$(chip read 1004)
init --device "unix:$SOCK" --thing KL_TEST-1 --out-dir "$T/dev2" >"$T/out" 2>&1 && bad "re-provisioned without --force" || ok "provisioned chip refused"
grep -q "already provisioned" "$T/out" && ok "message: $(head -1 "$T/out")" || bad "message: $(cat "$T/out")"
[ ! -e "$T/dev2" ] && [ "$(chip read 1004)" = "$before" ] && ok "nothing written, chip unchanged" || bad "refusal changed something"
init --device "unix:$SOCK" --thing KL_TEST-1 --out-dir "$T/dev" --root "$CA" --force >"$T/out" 2>&1 && ok "--force re-provisions" || bad "--force: $(cat "$T/out")"
[ "$(chip read 1004)" != "$before" ] && [ "$(pub_of_cert "$crt")" = "$(chip read 1004)" ] && ok "new key, new certificate" || bad "--force result"
[ "$(chip read 1003)" = "$(der_hex "$CA")" ] && ok "--root FILE loaded as 0x1003" || bad "--root not loaded"

# --- bad CA input: clear message, nothing written, chip untouched -----------------------
M=mem:$T/chipA
expect_refusal() { # NAME PATTERN ARGS...
  local name=$1 pat=$2; shift 2
  "$INIT" "$@" </dev/null >"$T/out" 2>&1 && { bad "$name accepted"; return; }
  grep -q -- "$pat" "$T/out" && ok "$name refused: $(grep -m1 . "$T/out")" || bad "$name message: $(cat "$T/out")"
  [ ! -e "$T/x" ] || bad "$name wrote output"
}
KEYLINK_CA_PASSPHRASE=not-the-passphrase expect_refusal "wrong passphrase" "wrong passphrase" --device "$M" --ca-cert "$CA" --ca-key "$CK" --thing T1 --out-dir "$T/x"
"$MK" --out-dir "$T/ca2" >/dev/null </dev/null
expect_refusal "CA key not matching the CA cert" "does not match" --device "$M" --ca-cert "$T/ca2/cert_CA.pem" --ca-key "$CK" --thing T1 --out-dir "$T/x"
expect_refusal "non-CA certificate as CA" "not a CA" --device "$M" --ca-cert "$crt" --ca-key "$CK" --thing T1 --out-dir "$T/x"
mkdir "$T/old"
/usr/bin/python3 - "$CK" "$T/old/cert_CA.pem" <<'PY' || bad "could not make an expired CA"
import datetime, os, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
key = serialization.load_pem_private_key(open(sys.argv[1], "rb").read(), os.environ["KEYLINK_CA_PASSPHRASE"].encode())
name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "Old CA")])
now = datetime.datetime.utcnow()
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=20)).not_valid_after(now - datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256()))
open(sys.argv[2], "wb").write(cert.public_bytes(serialization.Encoding.PEM))
PY
expect_refusal "expired CA" "expired" --device "$M" --ca-cert "$T/old/cert_CA.pem" --ca-key "$CK" --thing T1 --out-dir "$T/x"
openssl ec -in "$CK" -passin env:KEYLINK_CA_PASSPHRASE -out "$T/plain.pem" 2>/dev/null
expect_refusal "unencrypted CA key" "not encrypted" --device "$M" --ca-cert "$CA" --ca-key "$T/plain.pem" --thing T1 --out-dir "$T/x"
expect_refusal "bad thing name" "thing name" --device "$M" --ca-cert "$CA" --ca-key "$CK" --thing "bad name!" --out-dir "$T/x"
expect_refusal "bad device URI" "URI" --device "tcp:1.2.3.4" --ca-cert "$CA" --ca-key "$CK" --thing T1 --out-dir "$T/x"
expect_refusal "missing --ca-key" "go together" --device "$M" --ca-cert "$CA" --thing T1 --out-dir "$T/x"
expect_refusal "passphrase on argv" "never taken from the command line" --device "$M" --passphrase abcdefghijkl --ca-cert "$CA" --ca-key "$CK" --thing T1
expect_refusal "root that is no certificate" "root certificate" --device "$M" --ca-cert "$CA" --ca-key "$CK" --thing T1 --root "$CK" --out-dir "$T/x"
expect_refusal "unreachable chip" "cannot open the chip" --device "unix:$T/none.sock" --ca-cert "$CA" --ca-key "$CK" --thing T1 --out-dir "$T/x"
[ ! -e "$T/chipA" ] && ok "no refusal touched the chip" || bad "a refusal opened the mem: chip"

# --- the root must be a trust anchor the chip can use -----------------------------------
expect_refusal "non-CA root" "not a self-signed CA certificate" --device "mem:$T/chipC" --ca-cert "$CA" --ca-key "$CK" --thing T1 --root "$crt" --out-dir "$T/x"
openssl req -x509 -newkey rsa:2048 -nodes -keyout /dev/null -subj /CN=rsa -days 2 -out "$T/rsa.pem" 2>/dev/null
expect_refusal "RSA root" "P-256" --device "mem:$T/chipC" --ca-cert "$CA" --ca-key "$CK" --thing T1 --root "$T/rsa.pem" --out-dir "$T/x"
[ ! -e "$T/chipC" ] && ok "bad roots refused before the chip was opened" || bad "a bad root touched the chip"

# --- a full chip: clear message, and what was made is taken back ------------------------
SOCK_SAVE=$SOCK; kill "$SEPID"; wait "$SEPID" 2>/dev/null
SOCK=$T/se2.sock
"$SE" --state "$T/state2" --socket "$SOCK" >"$T/se2.log" 2>&1 & SEPID=$!
for i in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
left=$(chip fill 700)
init --device "unix:$SOCK" --thing FULL --out-dir "$T/full" >"$T/out" 2>&1 && bad "full chip ($left bytes free) provisioned" || ok "full chip ($left bytes free) refused"
grep -q "chip is full" "$T/out" && ok "message: $(head -1 "$T/out")" || bad "full message: $(cat "$T/out")"
[ "$(chip read 1004)" = "ERR 4" ] && [ "$(chip read 1002)" = "ERR 4" ] && [ ! -e "$T/full" ] \
  && ok "partial objects taken back, no files" || bad "full chip left $(chip read 1004 | cut -c1-10) / files"

[ "$(chip terminate)" = TERMINATED ] && ok "chip moved to TERMINATED" || bad "could not terminate the chip"
init --device "unix:$SOCK" --thing TERM --out-dir "$T/term" >"$T/out" 2>&1 && bad "provisioned a TERMINATED chip" || ok "TERMINATED chip refused"
grep -q "TERMINATED" "$T/out" && [ ! -e "$T/term" ] && ok "message: $(head -1 "$T/out")" || bad "terminated: $(cat "$T/out")"

# --- life cycle: past DELIVERY the identity cannot be replaced --------------------------
kill "$SEPID"; wait "$SEPID" 2>/dev/null; SOCK=$SOCK_SAVE
"$SE" --state "$T/state" --socket "$SOCK" >>"$T/se.log" 2>&1 & SEPID=$!
for i in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ "$(chip lock)" = INITIALIZED ] && ok "chip moved to INITIALIZED" || bad "could not move the chip's life cycle"
before=$(chip read 1004)
init --device "unix:$SOCK" --thing KL_TEST-1 --out-dir "$T/lc" --force >"$T/out" 2>&1 && bad "re-provisioned an INITIALIZED chip" || ok "INITIALIZED chip refused"
grep -q "life cycle (INITIALIZED)" "$T/out" && ok "message: $(head -1 "$T/out")" || bad "life-cycle message: $(cat "$T/out")"
[ "$(chip read 1004)" = "$before" ] && [ ! -e "$T/lc" ] && ok "chip and files unchanged" || bad "life-cycle refusal changed something"

# --- CSR only, certificate from another CA tool, then --load-cert ------------------------
M2=mem:$T/chipB
"$INIT" --device "$M2" --thing CSR_ONLY --csr --out-dir "$T/csr" >"$T/out" 2>&1 </dev/null && ok "--csr without a CA" || bad "--csr alone: $(cat "$T/out")"
[ -f "$T/csr/csr.pem" ] && [ ! -e "$T/csr/csr_cert.pem" ] && ok "only csr.pem written" || bad "csr-only outputs"
openssl req -in "$T/csr/csr.pem" -verify -noout >/dev/null 2>&1 && ok "chip-signed CSR verifies" || bad "CSR verify"
openssl x509 -req -in "$T/csr/csr.pem" -CA "$CA" -CAkey "$CK" -passin env:KEYLINK_CA_PASSPHRASE -CAcreateserial \
  -CAserial "$T/srl" -days 5 -out "$T/csr/ext.pem" 2>/dev/null
"$INIT" --device "$M2" --load-cert "$T/csr/ext.pem" --ca-cert "$CA" >"$T/out" 2>&1 </dev/null && ok "--load-cert of the CA-signed CSR" || bad "--load-cert: $(cat "$T/out")"
expect_refusal "certificate for another key" "different key" --device "$M2" --load-cert "$crt" --force
expect_refusal "certificate not from the CA" "does not verify" --device "$M2" --load-cert "$crt" --ca-cert "$T/ca2/cert_CA.pem" --force
expect_refusal "second --load-cert without --force" "already holds" --device "$M2" --load-cert "$T/csr/ext.pem"

[ $fails -eq 0 ] && echo "all init_tls_iot checks passed" || echo "$fails check(s) failed"
exit $((fails > 0))

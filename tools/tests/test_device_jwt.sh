#!/usr/bin/env bash
# A JWT made and signed in the chip (`keylink device jwt`) verified by an independent
# implementation: PyJWT (Debian's python3-jwt) with the chip key's public half from
# `keylink se pubkey`; its claims and the x5c certificate (chip object 0x1002, standard base64
# DER) checked; a changed token, a wrong audience and an expired token refused by PyJWT.
set -u
B=${KL_BIN_DIR:?}
PY=/usr/bin/python3
$PY -c "import jwt, cryptography" 2>/dev/null || { echo "python3-jwt/python3-cryptography missing"; exit 1; }
T=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
wait_for() { local i=0; while ! "$@" >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 100 ] && return 1; sleep 0.1; done; }
export KEYLINK_CA_PASSPHRASE="test-pass-$RANDOM-long-enough"
sock=$T/se.sock
"$B/keylink-se" --state "$T/state" --socket "$sock" >"$T/se.log" 2>&1 & PIDS+=($!)
wait_for test -S "$sock" || fail "keylink-se"
openssl ecparam -name prime256v1 -genkey -noout -out "$T/root.key" 2>/dev/null
openssl req -x509 -new -key "$T/root.key" -subj "/CN=root" -days 30 -out "$T/root.pem" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
"$B/make_ca_cert" --out-dir "$T/ca" >/dev/null 2>&1 </dev/null || fail "make_ca_cert"
"$B/init_tls_iot" --device "unix:$sock" --ca-cert "$T/ca/cert_CA.pem" \
  --ca-key "$T/ca/privkey_server_ECDSA_secp256r1_secp256r1.pem" --thing DEV1 --root "$T/root.pem" \
  --out-dir "$T/dev" >/dev/null 2>&1 </dev/null || fail "init_tls_iot"
"$B/keylink" se --device "unix:$sock" pubkey 1004 >"$T/pub.pem" 2>"$T/pk.err" || fail "keylink se pubkey: $(cat "$T/pk.err")"
nonce=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
"$B/keylink" device jwt --device "unix:$sock" --audience aud.example --thing DEV1 --x5c --nonce $nonce \
  --lifetime 600 >"$T/tok" 2>"$T/jwt.err" || fail "keylink device jwt: $(cat "$T/jwt.err")"
"$B/keylink" device jwt --device "unix:$sock" --audience aud.example >"$T/tok2" || fail "jwt without x5c"
openssl x509 -in "$T/dev/csr_cert.pem" -outform DER -out "$T/cert.der"
$PY - "$T" "$nonce" <<'PYEOF' || fail "PyJWT checks"
import base64, json, sys, time, jwt
T, nonce = sys.argv[1], bytes.fromhex(sys.argv[2])
pub = open(T + "/pub.pem").read()
tok = open(T + "/tok").read().strip()
claims = jwt.decode(tok, pub, algorithms=["ES256"], audience="aud.example")
now = time.time()
assert claims["sub"] == "DEV1", claims
assert abs(claims["iat"] - now) < 60 and claims["exp"] - claims["iat"] == 600, claims
assert len(claims["jti"]) == 32, claims
assert base64.urlsafe_b64decode(claims["nonce"] + "=" * (-len(claims["nonce"]) % 4)) == nonce
hdr = jwt.get_unverified_header(tok)
assert hdr["alg"] == "ES256" and hdr["typ"] == "JWT", hdr
assert base64.b64decode(hdr["x5c"][0], validate=True) == open(T + "/cert.der", "rb").read()
# the certificate in x5c carries the key that signed
from cryptography import x509
from cryptography.hazmat.primitives import serialization
c = x509.load_der_x509_certificate(base64.b64decode(hdr["x5c"][0]))
jwt.decode(tok, c.public_key(), algorithms=["ES256"], audience="aud.example")
tok2 = open(T + "/tok2").read().strip()
assert "x5c" not in jwt.get_unverified_header(tok2)
jwt.decode(tok2, pub, algorithms=["ES256"], audience="aud.example")
def refused(t, **kw):
    try:
        jwt.decode(t, pub, algorithms=["ES256"], **kw)
    except jwt.InvalidTokenError:
        return True
    return False
h, p, s = tok.split(".")
body = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
body["sub"] = "DEV2"
p2 = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
assert refused(h + "." + p2 + "." + s, audience="aud.example")
assert refused(tok, audience="other")
assert refused(tok, audience="aud.example", leeway=-700)  # as if 700 s later: expired
print("pyjwt ok")
PYEOF
# usage errors
"$B/keylink" device jwt --device "unix:$sock" 2>/dev/null; [ $? = 2 ] || fail "missing --audience accepted"
"$B/keylink" device jwt --device "unix:$sock" --audience a --nonce abc 2>/dev/null; [ $? = 2 ] || fail "odd hex accepted"
"$B/keylink" device jwt --device "unix:$sock" --audience a --key-id 1003 >/dev/null 2>&1 && fail "signing with a certificate object worked"
echo "ok: chip-signed JWT verified by PyJWT"

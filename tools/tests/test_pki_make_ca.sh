#!/usr/bin/env bash
# make_ca_cert: the CA key is encrypted PKCS#8 with the stated parameters and opens only with
# the passphrase; the CA certificate has every extension; the verification certificate;
# every bad input fails with a clear message and writes nothing.
set -u
MK="$KL_BIN_DIR/make_ca_cert"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
KEY=privkey_server_ECDSA_secp256r1_secp256r1.pem
export KEYLINK_CA_PASSPHRASE="ca-test-passphrase-$$"
# no controlling terminal: a missing passphrase must fail, never hang on a prompt
run() { setsid -w "$@" </dev/null; }
sums() { (cd "$1" && sha256sum * 2>/dev/null); }

# --- a new CA -------------------------------------------------------------------------
run "$MK" --out-dir "$T/ca" --subject "/O=Acme Test/CN=Acme Root" --days 30 >"$T/out" 2>&1 \
  && ok "make_ca_cert made a CA" || bad "make_ca_cert failed: $(cat "$T/out")"
k=$T/ca/$KEY; c=$T/ca/cert_CA.pem
[ "$(stat -c %a "$k")" = 600 ] && ok "key mode 0600" || bad "key mode $(stat -c %a "$k")"
grep -q "BEGIN ENCRYPTED PRIVATE KEY" "$k" && ok "key is encrypted PKCS#8" || bad "key not encrypted PKCS#8"
asn=$(openssl asn1parse -in "$k")
for want in ":PBES2" ":PBKDF2" ":hmacWithSHA256" ":aes-256-cbc" "INTEGER *:0927C0"; do
  echo "$asn" | grep -q -- "$want" && ok "PKCS#8 has $want" || bad "PKCS#8 lacks $want"
done
openssl pkey -in "$k" -passin env:KEYLINK_CA_PASSPHRASE -noout 2>/dev/null && ok "key opens with the passphrase" || bad "key does not open"
openssl pkey -in "$k" -passin pass:wrong-passphrase -noout 2>/dev/null && bad "key opens with a wrong passphrase" || ok "wrong passphrase rejected by openssl"
openssl pkey -in "$k" -passin env:KEYLINK_CA_PASSPHRASE -noout -text 2>/dev/null | grep -q "prime256v1" && ok "P-256 key" || bad "key is not P-256"
txt=$(openssl x509 -in "$c" -noout -text)
echo "$txt" | grep -q "Version: 3" && ok "v3" || bad "not v3"
echo "$txt" | grep -A1 "Basic Constraints: critical" | grep -q "CA:TRUE" && ok "basicConstraints critical CA:TRUE" || bad "basicConstraints"
echo "$txt" | grep -A1 "Key Usage: critical" | grep -qx " *Certificate Sign, CRL Sign" && ok "keyUsage critical keyCertSign+cRLSign" || bad "keyUsage"
echo "$txt" | grep -q "Subject Key Identifier" && ok "subject key id" || bad "no subject key id"
echo "$txt" | grep -q "Subject: O = Acme Test, CN = Acme Root" && ok "subject as asked" || bad "subject: $(echo "$txt" | grep Subject:)"
echo "$txt" | grep -q "Issuer: O = Acme Test, CN = Acme Root" && ok "self-issued" || bad "issuer"
serial=$(openssl x509 -in "$c" -noout -serial | cut -d= -f2)
[ ${#serial} -eq 40 ] && [ "$(printf '%d' "0x${serial:0:2}")" -lt 128 ] && ok "random positive 20-byte serial" || bad "serial $serial"
end=$(date -d "$(openssl x509 -in "$c" -noout -enddate | cut -d= -f2)" +%s)
want=$(( $(date +%s) + 30 * 86400 ))
[ $((end - want)) -lt 120 ] && [ $((want - end)) -lt 120 ] && ok "valid 30 days" || bad "notAfter is not 30 days out"
openssl verify -CAfile "$c" "$c" >/dev/null 2>&1 && ok "self-signature verifies" || bad "self-signature"
grep -q "CA certificate id $(openssl x509 -in "$c" -outform DER | sha256sum | cut -c1-64)" "$T/out" \
  && ok "prints the CA certificate id (SHA-256 of DER)" || bad "certificate id not printed"

# --- never replaced without --force ----------------------------------------------------
before=$(sums "$T/ca")
run "$MK" --out-dir "$T/ca" >"$T/out" 2>&1 && bad "second run replaced the CA" || ok "second run refused"
grep -q "already exists" "$T/out" && ok "clear message: $(head -1 "$T/out")" || bad "message: $(cat "$T/out")"
[ "$before" = "$(sums "$T/ca")" ] && ok "CA unchanged" || bad "CA files changed"
run "$MK" --out-dir "$T/ca" --force >/dev/null 2>&1 && ok "--force replaces" || bad "--force failed"
[ "$before" != "$(sums "$T/ca")" ] && ok "new CA written" || bad "--force did not replace"

# --- passphrase sources -----------------------------------------------------------------
printf 'from-a-file-passphrase\nsecond line ignored\n' >"$T/pf"; chmod 600 "$T/pf"
run "$MK" --out-dir "$T/ca2" --passphrase-file "$T/pf" >/dev/null 2>&1 && ok "--passphrase-file" || bad "--passphrase-file failed"
openssl pkey -in "$T/ca2/$KEY" -passin pass:from-a-file-passphrase -noout 2>/dev/null && ok "file passphrase is the first line" || bad "file passphrase not used"
(unset KEYLINK_CA_PASSPHRASE; run "$MK" --out-dir "$T/ca3" >"$T/out" 2>&1) && bad "ran with no passphrase" || ok "no passphrase, no terminal: refused"
grep -q "passphrase" "$T/out" && [ ! -e "$T/ca3/$KEY" ] && ok "clear message, nothing written" || bad "no-passphrase: $(cat "$T/out")"
run "$MK" --out-dir "$T/ca3" --passphrase secret123456 >"$T/out" 2>&1 && bad "passphrase on argv accepted" || ok "passphrase on argv refused"
[ ! -e "$T/ca3" ] && ok "nothing written" || bad "wrote something"
KEYLINK_CA_PASSPHRASE=short run "$MK" --out-dir "$T/ca3" >"$T/out" 2>&1 && bad "short passphrase accepted" || ok "short passphrase refused"
grep -q "too short" "$T/out" && [ ! -e "$T/ca3/$KEY" ] && [ ! -e "$T/ca3/cert_CA.pem" ] && ok "clear message, nothing written" || bad "short: $(cat "$T/out")"
run "$MK" --out-dir "$T/ca3" --passphrase-file "$T/nope" >"$T/out" 2>&1 && bad "missing passphrase file accepted" || ok "missing passphrase file refused"
: >"$T/empty"; run "$MK" --out-dir "$T/ca3" --passphrase-file "$T/empty" >"$T/out" 2>&1 && bad "empty passphrase accepted" || ok "empty passphrase refused"
[ ! -e "$T/ca3/$KEY" ] && ok "nothing written" || bad "wrote a key"

# the terminal prompt: echo off, asked twice for a new key (script(1) gives a terminal)
if command -v script >/dev/null; then
  tty_run() { # DIR ANSWER1 ANSWER2: answers typed after the prompts appear
    (sleep 1; printf '%s\n' "$2"; sleep 1; printf '%s\n' "$3"; sleep 1) |
      env -u KEYLINK_CA_PASSPHRASE timeout 30 script -qec "$MK --out-dir $1" /dev/null >"$T/tty.out" 2>&1
  }
  tty_run "$T/tty" typed-at-the-prompt typed-at-the-prompt && ok "passphrase from a terminal prompt" || bad "prompt run: $(cat "$T/tty.out")"
  grep -q "CA key passphrase:" "$T/tty.out" && grep -q "Repeat the passphrase:" "$T/tty.out" && ok "asked twice" || bad "prompts: $(cat "$T/tty.out")"
  grep -q "typed-at-the-prompt" "$T/tty.out" && bad "passphrase echoed" || ok "no echo"
  openssl pkey -in "$T/tty/$KEY" -passin pass:typed-at-the-prompt -noout 2>/dev/null && ok "prompted passphrase encrypts the key" || bad "prompted key"
  tty_run "$T/tty2" first-passphrase other-passphrase && bad "mismatched prompts accepted" || ok "mismatched prompts refused"
  grep -q "do not match" "$T/tty.out" && [ ! -e "$T/tty2/$KEY" ] && ok "clear message, nothing written" || bad "mismatch: $(cat "$T/tty.out")"
fi

# --- bad arguments ----------------------------------------------------------------------
run "$MK" --out-dir "$T/ca4" --subject "/NOPE=x" >"$T/out" 2>&1 && bad "bad subject accepted" || ok "bad subject refused: $(head -1 "$T/out")"
run "$MK" --out-dir "$T/ca4" --days 0 >"$T/out" 2>&1 && bad "--days 0 accepted" || ok "--days 0 refused"
run "$MK" --out-dir "$T/ca4" --days x >"$T/out" 2>&1 && bad "--days x accepted" || ok "--days x refused"
run "$MK" --bogus >"$T/out" 2>&1 && bad "unknown option accepted" || ok "unknown option refused"
[ ! -e "$T/ca4" ] && ok "nothing written" || bad "wrote something"

# --- verification certificate -----------------------------------------------------------
before=$(sums "$T/ca")
run "$MK" --out-dir "$T/ca" --verification-cert 0a1b2c3d4e5f >"$T/out" 2>&1 && ok "verification cert with the existing CA" || bad "verification failed: $(cat "$T/out")"
v=$T/ca/verification_cert.pem
openssl x509 -in "$v" -noout -subject | grep -q "CN = 0a1b2c3d4e5f" && ok "CN = registration code" || bad "verification CN"
openssl verify -CAfile "$T/ca/cert_CA.pem" "$v" >/dev/null 2>&1 && ok "signed by the CA" || bad "verification cert does not verify"
[ "$(openssl x509 -in "$v" -noout -pubkey)" = "$(openssl pkey -in "$T/ca/verification_key.pem" -pubout)" ] && ok "verification_key.pem matches" || bad "verification key mismatch"
after=$(cd "$T/ca" && sha256sum cert_CA.pem $KEY)
[ "$(echo "$before" | grep -E "cert_CA|$KEY")" = "$after" ] && ok "CA unchanged by --verification-cert" || bad "CA changed"
rm -f "$T/ca/verification_"*
KEYLINK_CA_PASSPHRASE=wrong-passphrase-x run "$MK" --out-dir "$T/ca" --verification-cert abc >"$T/out" 2>&1 && bad "wrong passphrase signed" || ok "wrong passphrase refused"
grep -q "wrong passphrase" "$T/out" && [ ! -e "$T/ca/verification_cert.pem" ] && ok "clear message, nothing written" || bad "wrong pass: $(cat "$T/out")"
# a CA key that does not match the CA certificate
mkdir "$T/mix"; cp "$T/ca/$KEY" "$T/mix/"; cp "$T/ca2/cert_CA.pem" "$T/mix/"
run "$MK" --out-dir "$T/mix" --verification-cert abc >"$T/out" 2>&1 && bad "mismatched CA signed" || ok "mismatched key/cert refused"
grep -q "does not match" "$T/out" && [ ! -e "$T/mix/verification_cert.pem" ] && ok "clear message, nothing written" || bad "mismatch: $(cat "$T/out")"
# a certificate that is no CA
mkdir "$T/nonca"; cp "$T/ca/$KEY" "$T/nonca/"
run "$MK" --out-dir "$T/ca" --verification-cert abc >/dev/null 2>&1
openssl x509 -in "$T/ca/verification_cert.pem" -out "$T/nonca/cert_CA.pem"
openssl ec -in "$T/ca/verification_key.pem" -aes256 -passout env:KEYLINK_CA_PASSPHRASE -out "$T/nonca/$KEY" 2>/dev/null
run "$MK" --out-dir "$T/nonca" --verification-cert abc >"$T/out" 2>&1 && bad "non-CA signed" || ok "non-CA certificate refused"
grep -q "not a CA" "$T/out" && [ ! -e "$T/nonca/verification_cert.pem" ] && ok "clear message, nothing written" || bad "non-CA: $(cat "$T/out")"
# an expired CA (same key, dates in the past)
mkdir "$T/old"; cp "$T/ca/$KEY" "$T/old/"
/usr/bin/python3 - "$T/old" <<'PY' || bad "could not make an expired CA"
import datetime, os, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
d = sys.argv[1]
key = serialization.load_pem_private_key(open(d + "/privkey_server_ECDSA_secp256r1_secp256r1.pem", "rb").read(),
                                         os.environ["KEYLINK_CA_PASSPHRASE"].encode())
name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "Old CA")])
now = datetime.datetime.utcnow()
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=20)).not_valid_after(now - datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256()))
open(d + "/cert_CA.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
PY
run "$MK" --out-dir "$T/old" --verification-cert abc >"$T/out" 2>&1 && bad "expired CA signed" || ok "expired CA refused"
grep -q "expired" "$T/out" && [ ! -e "$T/old/verification_cert.pem" ] && ok "clear message, nothing written" || bad "expired: $(cat "$T/out")"
# half a CA
mkdir "$T/half"; cp "$T/ca/cert_CA.pem" "$T/half/"
run "$MK" --out-dir "$T/half" --verification-cert abc >"$T/out" 2>&1 && bad "half a CA signed" || ok "half a CA refused: $(head -1 "$T/out")"
# no CA yet: --verification-cert makes it first
run "$MK" --out-dir "$T/fresh" --verification-cert code42 >"$T/out" 2>&1 && ok "verification cert into an empty dir" || bad "fresh: $(cat "$T/out")"
[ -f "$T/fresh/$KEY" ] && [ -f "$T/fresh/cert_CA.pem" ] && openssl verify -CAfile "$T/fresh/cert_CA.pem" "$T/fresh/verification_cert.pem" >/dev/null 2>&1 \
  && ok "CA made first, verification cert signed by it" || bad "fresh dir content"

[ $fails -eq 0 ] && echo "all make_ca_cert checks passed" || echo "$fails check(s) failed"
exit $((fails > 0))

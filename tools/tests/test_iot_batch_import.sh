#!/usr/bin/env bash
# The provisioning line end to end: make_ca_cert, init_tls_iot --batch on three in-process
# chips (the endpoint's server-root-ca.pem loaded as their root), then the batch's
# bulk-registration.jsonl imported into keylinkd with `keylink iot bulk-import`: every
# thing exists with its chip's certificate attached and ACTIVE.
. "$(dirname "$0")/iot_env.sh"
MK=$B/make_ca_cert; INIT=$B/init_tls_iot
[ -x "$MK" ] && [ -x "$INIT" ] || { echo "FAIL: make_ca_cert or init_tls_iot not built"; exit 1; }
export KEYLINK_CA_PASSPHRASE="batch-import-passphrase-$$"
start_kd
"$MK" --out-dir "$T/ca" >/dev/null </dev/null || bad "make_ca_cert"
CA=$T/ca/cert_CA.pem; CK=$T/ca/privkey_server_ECDSA_secp256r1_secp256r1.pem
code=$(iot get-registration-code | j 'd["registrationCode"]')
"$MK" --out-dir "$T/ca" --verification-cert "$code" >/dev/null </dev/null || bad "verification cert"
caid=$(iot register-ca-certificate --ca-certificate "file://$CA" \
  --verification-certificate "file://$T/ca/verification_cert.pem" --set-as-active | j 'd["certificateId"]')
printf 'thing,device\nDEV-001,mem:%s/c1\nDEV-002,mem:%s/c2\nDEV-003,mem:%s/c3\n' "$T" "$T" "$T" >"$T/m.csv"
"$INIT" --batch "$T/m.csv" --ca-cert "$CA" --ca-key "$CK" --root "$T/kd/server-root-ca.pem" \
  --out-dir "$T/out" </dev/null >"$T/init.log" 2>&1 || bad "init_tls_iot --batch: $(tail -2 "$T/init.log")"
[ "$(wc -l <"$T/out/bulk-registration.jsonl")" = 3 ] && ok "init_tls_iot wrote 3 registration lines" || bad "bulk file"
out=$(iot bulk-import --input "file://$T/out/bulk-registration.jsonl") || bad "bulk-import"
[ "$(echo "$out" | j 'd["certificatesRegistered"]')" = 3 ] && ok "imported: $out" || bad "import result $out"
for n in 1 2 3; do
  name=DEV-00$n; cid=$(certid "$T/out/$name/csr_cert.pem")
  [ "$(iot list-thing-principals --thing-name "$name" | j 'd["principals"]')" = "['arn:aws:iot:us-east-1:123456789012:cert/$cid']" ] && \
  [ "$(iot describe-certificate --certificate-id "$cid" | j 'd["certificateDescription"]["status"]+" "+d["certificateDescription"]["caCertificateId"]')" = "ACTIVE $caid" ] \
    && ok "$name: chip certificate registered, ACTIVE, attached" || bad "$name"
done
# a tampered line (certificateId that is not the certificate's) is refused, nothing added
$PY - "$T/out/bulk-registration.jsonl" "$T/tampered.jsonl" <<'PY'
import json, sys
l = json.loads(open(sys.argv[1]).readline()); l["thingName"] = "DEV-X"; l["certificateId"] = "0" * 64
open(sys.argv[2], "w").write(json.dumps(l) + "\n")
PY
iot bulk-import --input "file://$T/tampered.jsonl" >/dev/null 2>"$T/err"
grep -q "CertificateValidationException" "$T/err" && ok "wrong certificateId refused" || bad "tampered: $(cat "$T/err")"
expect_err ResourceNotFoundException describe-thing --thing-name DEV-X
[ $fails -eq 0 ] && echo "batch provisioning -> import: all passed" || echo "$fails failure(s)"
exit $((fails > 0))

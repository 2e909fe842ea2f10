#!/usr/bin/env bash
# AN-7648 "Register the Device on AWS IoT Core", typed as in the app note with `keylink iot`
# for `aws iot`, against a running keylinkd: make_ca_cert makes the JWT_CA, the CA is
# registered (verification certificate with the registration code) and activated, the
# device certificate csr_cert.pem is registered, EXAMPLE_DEVICE is created and the
# certificate attached to it.
. "$(dirname "$0")/iot_env.sh"
MK=$B/make_ca_cert
[ -x "$MK" ] || { echo "FAIL: make_ca_cert not built"; exit 1; }
export KEYLINK_CA_PASSPHRASE="appnote-test-passphrase-$$"
start_kd

# Authentication Setup: make_ca_cert writes the JWT_CA key and cert_CA.pem
(cd "$T" && mkdir ca && cd ca && "$MK" >/dev/null </dev/null) || bad "make_ca_cert"
CA=$T/ca/cert_CA.pem; CAKEY=$T/ca/privkey_server_ECDSA_secp256r1_secp256r1.pem
[ -s "$CA" ] && [ -s "$CAKEY" ] && ok "make_ca_cert wrote cert_CA.pem and the CA key" || bad "CA files"

# Upload cert_CA.pem to the registry (the console's "Register CA" = register-ca-certificate)
code=$(iot get-registration-code | j 'd["registrationCode"]')
[ ${#code} -eq 64 ] && ok "registration code $code" || bad "registration code '$code'"
(cd "$T/ca" && "$MK" --verification-cert "$code" >/dev/null </dev/null) || bad "verification cert"
reg=$(iot register-ca-certificate --ca-certificate "file://$CA" \
  --verification-certificate "file://$T/ca/verification_cert.pem") || bad "register-ca-certificate"
caid=$(echo "$reg" | j 'd["certificateId"]')
[ "$caid" = "$(certid "$CA")" ] && ok "CA certificateId is the SHA-256 of cert_CA.pem's DER" || bad "CA id $caid"
st=$(iot describe-ca-certificate --certificate-id "$caid" | j 'd["certificateDescription"]["status"]')
[ "$st" = INACTIVE ] && ok "registered CA starts INACTIVE" || bad "CA status $st"
# "Click on the Actions dropdown, then click Activate"
iot update-ca-certificate --certificate-id "$caid" --new-status ACTIVE >/dev/null || bad "activate CA"
st=$(iot describe-ca-certificate --certificate-id "$caid" | j 'd["certificateDescription"]["status"]')
[ "$st" = ACTIVE ] && ok "CA activated" || bad "CA status after activate: $st"

# Provision the Device: the device certificate csr_cert.pem, issued with the JWT_CA key
openssl ecparam -name prime256v1 -genkey -noout -out "$T/device.key" 2>/dev/null
openssl req -new -key "$T/device.key" -subj "/CN=EXAMPLE_DEVICE" -out "$T/device.csr" 2>/dev/null
openssl x509 -req -in "$T/device.csr" -CA "$CA" -CAkey "$CAKEY" -passin env:KEYLINK_CA_PASSPHRASE \
  -CAcreateserial -days 30 -out "$T/csr_cert.pem" 2>/dev/null || bad "device certificate"

# Register the Device: upload csr_cert.pem (Register certificates), then in CloudShell:
#   aws iot create-thing --thing-name EXAMPLE_DEVICE
#   aws iot attach-thing-principal --thing-name EXAMPLE_DEVICE --principal arn:aws:iot:{Certificate ARN}
reg=$(iot register-certificate --certificate-pem "file://$T/csr_cert.pem" --set-as-active) \
  || bad "register-certificate"
arn=$(echo "$reg" | j 'd["certificateArn"]'); cid=$(echo "$reg" | j 'd["certificateId"]')
[ "$cid" = "$(certid "$T/csr_cert.pem")" ] && ok "certificateId = SHA-256 of csr_cert.pem" || bad "cert id"
case "$arn" in arn:aws:iot:us-east-1:123456789012:cert/"$cid") ok "certificate ARN $arn" ;; *) bad "ARN $arn" ;; esac
iot describe-certificate --certificate-id "$cid" | j 'd["certificateDescription"]["caCertificateId"]' \
  | grep -qx "$caid" && ok "csr_cert.pem verified against the registered JWT_CA" || bad "caCertificateId"
out=$(iot create-thing --thing-name EXAMPLE_DEVICE) || bad "create-thing"
[ "$(echo "$out" | j 'd["thingArn"]')" = "arn:aws:iot:us-east-1:123456789012:thing/EXAMPLE_DEVICE" ] \
  && ok "create-thing EXAMPLE_DEVICE" || bad "create-thing output: $out"
iot attach-thing-principal --thing-name EXAMPLE_DEVICE --principal "$arn" >"$T/o" || bad "attach"
[ ! -s "$T/o" ] && ok "attach-thing-principal prints nothing, as the AWS CLI" || bad "attach printed $(cat "$T/o")"
iot list-thing-principals --thing-name EXAMPLE_DEVICE | j 'd["principals"]' | grep -q "$arn" \
  && ok "EXAMPLE_DEVICE has the certificate" || bad "list-thing-principals"
iot list-principal-things --principal "$arn" | j 'd["things"]' | grep -q EXAMPLE_DEVICE \
  && ok "the certificate belongs to EXAMPLE_DEVICE" || bad "list-principal-things"
st=$(iot describe-certificate --certificate-id "$cid" | j 'd["certificateDescription"]["status"]')
[ "$st" = ACTIVE ] && ok "device certificate ACTIVE" || bad "device status $st"
# the app note's tutorial step "Detach a principal from a thing"
iot detach-thing-principal --thing-name EXAMPLE_DEVICE --principal "$arn" >/dev/null || bad "detach"
n=$(iot list-thing-principals --thing-name EXAMPLE_DEVICE | j 'len(d["principals"])')
[ "$n" = 0 ] && ok "detach-thing-principal" || bad "still $n principals"
[ $fails -eq 0 ] && echo "app note registration flow: all passed" || echo "$fails failure(s)"
exit $((fails > 0))

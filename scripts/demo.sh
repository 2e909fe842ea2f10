#!/usr/bin/env bash
# `make demo`: application note AN-7648 end to end on this machine. In a temporary
# directory it starts its own chip (keylink-se) and endpoint (keylinkd) on free ports, then
# runs the note's steps in its order with the commands a person would type (each shown
# before it runs): make the JWT_CA, provision the chip, register the CA and the device,
# create and attach a thing and a policy, connect the device over TLS whose crypto runs in
# the chip with an ES256 JWT over the server's challenge, exchange telemetry and a command
# with an operator console, revoke the certificate and watch the device shut out.
# Every step's outcome is checked; the exit status is 0 only if all of them held.
# Everything it started is stopped and the directory removed on any exit (unless --keep).
# usage: scripts/demo.sh [--keep]      programs from $KL_BIN_DIR (default build/bin)
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WAIT=${KL_DEMO_WAIT:-15} # seconds any one outcome may take to show (sanitizer builds are slow)
KEEP=0
for a in "$@"; do
  case "$a" in
    --keep) KEEP=1 ;;
    -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown option $a (try --help)" >&2; exit 2 ;;
  esac
done
BIN=${KL_BIN_DIR:-$ROOT/build/bin}
BIN=$(cd "$BIN" 2>/dev/null && pwd) || { echo "demo: no program folder ${KL_BIN_DIR:-$ROOT/build/bin}; run 'make demo' (it builds first)" >&2; exit 1; }
for p in keylink keylink-se keylinkd make_ca_cert init_tls_iot; do
  [ -x "$BIN/$p" ] || { echo "demo: $BIN/$p is missing; run 'make demo' (it builds first)" >&2; exit 1; }
done
for p in openssl mosquitto_sub mosquitto_pub timeout sha256sum; do
  command -v "$p" >/dev/null || { echo "demo: '$p' is not installed (scripts/deps.sh demo installs it)" >&2; exit 1; }
done
export PATH="$BIN:$PATH"

# ---- presentation --------------------------------------------------------------------------
if [ -t 1 ] && [ "${TERM:-dumb}" != dumb ] && [ -z "${NO_COLOR:-}" ]; then
  BOLD=$'\033[1m' CMD=$'\033[1;36m' DIM=$'\033[2m' GREEN=$'\033[32m' RED=$'\033[1;31m' OFF=$'\033[0m'
else
  BOLD='' CMD='' DIM='' GREEN='' RED='' OFF=''
fi
STEP=0 TITLE="" CHECKS=0
DONE=() FEEDS=()
step() { # step TITLE APP-NOTE-SECTION
  [ "$STEP" -gt 0 ] && DONE+=("$(printf '%2d. %s' "$STEP" "$TITLE")")
  STEP=$((STEP + 1)) TITLE=$1
  printf '\n%s== step %d: %s ==%s\n' "$BOLD" "$STEP" "$1" "$OFF"
  [ -n "${2:-}" ] && printf '%s   %s%s\n' "$DIM" "$2" "$OFF"
  return 0
}
quote() { # the command as one would type it
  local out='' w q="'" e="'\\''"
  for w in "$@"; do
    case "$w" in
      *[!A-Za-z0-9_./:=,@%+-]* | '') out+=" '${w//$q/$e}'" ;;
      *) out+=" $w" ;;
    esac
  done
  printf '%s' "${out# }"
}
show() { printf '%s$ %s%s\n' "$CMD" "$*" "$OFF"; }
indent() { sed 's/^/    /'; }
ok() { CHECKS=$((CHECKS + 1)); printf '  %sok%s: %s\n' "$GREEN" "$OFF" "$*"; }
die() {
  feeds 2>/dev/null # what the processes said last
  printf '\n%sdemo: FAILED at step %d (%s): %s%s\n' "$RED" "$STEP" "$TITLE" "$*" "$OFF" >&2
  printf 'steps done before it:\n' >&2
  [ ${#DONE[@]} -gt 0 ] && printf '  %s\n' "${DONE[@]}" >&2
  exit 1
}
# run CMD...: show it, run it (bounded), print its output, keep it in $OUT; the step fails
# if the command does
run() {
  show "$(quote "$@")"
  OUT=$(timeout --foreground -k 2 $((WAIT * 2)) "$@" </dev/null 2>&1)
  local rc=$?
  [ -n "$OUT" ] && printf '%s\n' "$OUT" | indent
  [ $rc -eq 0 ] || die "'$(quote "$@")' exited $rc"
}
# refused CMD...: the same, but the command must fail
refused() {
  show "$(quote "$@")"
  OUT=$(timeout --foreground -k 2 $((WAIT * 2)) "$@" </dev/null 2>&1)
  local rc=$?
  [ -n "$OUT" ] && printf '%s\n' "$OUT" | indent
  [ $rc -ne 0 ] || die "'$(quote "$@")' succeeded but should have been refused"
  RC=$rc
}
json() { # json KEY: the first string value of KEY in $OUT
  printf '%s\n' "$OUT" | sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" | head -1
}

# ---- processes and the temporary directory -------------------------------------------------
T=$(mktemp -d "${TMPDIR:-/tmp}/keylink-demo.XXXXXX") || { echo "demo: cannot make a temp dir" >&2; exit 1; }
PIDS=() NAMES=()
declare -A SEEN=()
finish() {
  local rc=$? i
  trap - EXIT INT TERM
  for i in "${!PIDS[@]}"; do kill -TERM "${PIDS[$i]}" 2>/dev/null; done
  for i in "${!PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "${PIDS[$i]}" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "${PIDS[$i]}" 2>/dev/null; then
      echo "demo: ${NAMES[$i]} (pid ${PIDS[$i]}) did not stop on SIGTERM; killing it" >&2
      kill -KILL "${PIDS[$i]}" 2>/dev/null
    fi
    wait "${PIDS[$i]}" 2>/dev/null
  done
  cd / || true
  if [ $KEEP -eq 1 ]; then echo "demo: kept $T (logs: *.log)"; else rm -rf "$T"; fi
  exit $rc
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$T" || exit 1
# spawn NAME LOG LIMIT CMD...: start CMD in the background (shown with &), output into LOG;
# LIMIT seconds at most (0: until stopped)
spawn() {
  local name=$1 log=$2 limit=$3
  shift 3
  show "$(quote "$@") &"
  if [ "$limit" -gt 0 ]; then timeout "$limit" "$@" >"$log" 2>&1 </dev/null & else "$@" >"$log" 2>&1 </dev/null & fi
  PIDS+=($!) NAMES+=("$name")
  SEEN[$log]=0
  LAST_PID=$!
}
# forget PID: it was stopped and reaped by the step itself
forget() {
  local i
  for i in "${!PIDS[@]}"; do [ "${PIDS[$i]}" = "$1" ] && unset 'PIDS[i]' 'NAMES[i]'; done
}
# news LOG PREFIX: print the lines LOG got since the last call
news() {
  local n
  n=$(wc -l <"$1" 2>/dev/null || echo 0)
  [ "$n" -gt "${SEEN[$1]:-0}" ] && sed -n "$((${SEEN[$1]:-0} + 1)),${n}p" "$1" | sed "s/^/  $2 | /"
  SEEN[$1]=$n
}
# FEEDS: "LOG PREFIX" pairs whose new lines are shown while waiting
feeds() { local f; for f in "${FEEDS[@]}"; do news ${f}; done; }
# await SECONDS LOG REGEX [PID]: wait until LOG has a line matching REGEX, showing the
# feeds; gives up early when PID (the process writing LOG) has exited
await() {
  local end=$((SECONDS + $1))
  while ! grep -qE -- "$3" "$2" 2>/dev/null; do
    feeds
    [ $SECONDS -ge $end ] && return 1
    if [ -n "${4:-}" ] && ! kill -0 "$4" 2>/dev/null; then
      grep -qE -- "$3" "$2" 2>/dev/null && break
      feeds
      return 1
    fi
    sleep 0.1
  done
  feeds
}
alive() { kill -0 "$1" 2>/dev/null; }

printf '%skeylink demo: AN-7648 (MAXQ1065 + AWS IoT Core) end to end%s\n' "$BOLD" "$OFF"
printf 'programs: %s\nworking in: %s (commands below run there)\n' "$BIN" "$T"

# ---- 1. the chip and the endpoint ----------------------------------------------------------
step "start the chip (keylink-se) and the endpoint (keylinkd) on free ports" "AN-7648 \"Preparation\": the MAXQ1065 and AWS IoT Core, here both on this machine"
spawn keylink-se se.log 0 keylink-se --state chip --socket se.sock
SE_PID=$LAST_PID
spawn keylinkd keylinkd.log 0 keylinkd --data-dir kd --listen 127.0.0.1:0 --api 127.0.0.1:0
KD_PID=$LAST_PID
FEEDS=("keylinkd.log keylinkd")
await "$WAIT" se.log "serving on" "$SE_PID" || die "keylink-se did not start: $(cat se.log)"
news se.log keylink-se
await "$WAIT" keylinkd.log "control API on" "$KD_PID" || die "keylinkd did not start: $(tail -3 keylinkd.log)"
DP_PORT=$(sed -n 's/.*data plane on [^ ]*:\([0-9][0-9]*\).*/\1/p' keylinkd.log | head -1)
API=$(sed -n 's/.*control API on \(http:[^ ]*\) .*/\1/p' keylinkd.log | head -1)
[ -n "$DP_PORT" ] && [ -n "$API" ] || die "keylinkd did not say its ports: $(cat keylinkd.log)"
ok "keylink-se (pid $SE_PID) serves the chip on se.sock"
ok "keylinkd (pid $KD_PID): control API $API, TLS + MQTT on localhost:$DP_PORT"
show "export KEYLINK_SE=unix:se.sock KEYLINK_ENDPOINT_URL=$API KEYLINK_TOKEN=\$(cat kd/admin-token)"
export KEYLINK_SE=unix:se.sock KEYLINK_ENDPOINT_URL=$API
KEYLINK_TOKEN=$(cat kd/admin-token) || die "no kd/admin-token"
export KEYLINK_TOKEN
PASS=demo-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
show "export KEYLINK_CA_PASSPHRASE=$PASS   # the CA key's passphrase (a throwaway one)"
export KEYLINK_CA_PASSPHRASE=$PASS
run keylink se status
printf '%s\n' "$OUT" | grep -q "lifecycle *DELIVERY" || die "a fresh chip should be in DELIVERY"
ok "a fresh chip in DELIVERY"

# ---- 2. the JWT_CA -------------------------------------------------------------------------
step "make the customer CA (JWT_CA)" "AN-7648 \"Authentication Setup\": execute the make_ca_cert script"
run make_ca_cert --out-dir ca
CA_KEY=ca/privkey_server_ECDSA_secp256r1_secp256r1.pem CA_CERT=ca/cert_CA.pem
grep -q "BEGIN ENCRYPTED PRIVATE KEY" "$CA_KEY" || die "$CA_KEY is not an encrypted PKCS#8 key"
ok "$CA_KEY: encrypted PKCS#8, mode $(stat -c %a "$CA_KEY")"
run openssl x509 -in "$CA_CERT" -noout -subject -ext basicConstraints,keyUsage
printf '%s\n' "$OUT" | grep -q "CA:TRUE" || die "cert_CA.pem is not a CA certificate"
ok "$CA_CERT: a self-signed CA certificate"

# ---- 3. provision the chip -----------------------------------------------------------------
step "provision the chip: key pair inside, device certificate, server root" "AN-7648 \"Provision the Device (MAXQ1065)\": the init_tls_iot script"
run init_tls_iot --device unix:se.sock --ca-cert "$CA_CERT" --ca-key "$CA_KEY" --thing EXAMPLE_DEVICE \
  --root kd/server-root-ca.pem --out-dir device
DEV_CERT=device/csr_cert.pem
run openssl verify -CAfile "$CA_CERT" "$DEV_CERT"
ok "csr_cert.pem is issued by the JWT_CA"
run keylink se pubkey 0x1004
CHIP_PUB=$(printf '%s\n' "$OUT" | openssl pkey -pubin -outform DER 2>/dev/null | sha256sum | cut -c1-64)
CERT_PUB=$(openssl x509 -in "$DEV_CERT" -noout -pubkey | openssl pkey -pubin -outform DER 2>/dev/null | sha256sum | cut -c1-64)
[ -n "$CHIP_PUB" ] && [ "$CHIP_PUB" = "$CERT_PUB" ] || die "the certificate's public key is not the chip's 0x1004"
ok "the certificate carries the public half of key 0x1004, generated in the chip (the private half never left)"
run keylink se list
for o in 0x1002 0x1003 0x1004; do printf '%s\n' "$OUT" | grep -q "^$o" || die "object $o is not on the chip"; done
ok "on the chip: 0x1004 device key, 0x1002 device certificate, 0x1003 server root (keylinkd's server-root-ca.pem, in the role of Amazon Root CA 3)"

# ---- 4. register the CA --------------------------------------------------------------------
step "register the CA with the endpoint and activate it" "AN-7648 \"Authentication Setup\": upload cert_CA.pem to the registry, then Activate"
run keylink iot get-registration-code
CODE=$(json registrationCode)
[ ${#CODE} -ge 32 ] || die "no registration code"
run make_ca_cert --out-dir ca --verification-cert "$CODE"
[ -f ca/verification_cert.pem ] || die "no ca/verification_cert.pem"
run keylink iot register-ca-certificate --ca-certificate file://ca/cert_CA.pem \
  --verification-certificate file://ca/verification_cert.pem --set-as-active
CA_ID=$(json certificateId)
WANT=$(openssl x509 -in "$CA_CERT" -outform DER | sha256sum | cut -c1-64)
[ "$CA_ID" = "$WANT" ] || die "CA certificateId '$CA_ID' is not the SHA-256 of its DER"
run keylink iot list-ca-certificates
printf '%s\n' "$OUT" | tr -d '\n ' | grep -q "\"certificateId\":\"$CA_ID\",\"status\":\"ACTIVE\"" ||
  die "the CA is not listed ACTIVE"
ok "CA $CA_ID registered (verification certificate CN = the registration code) and ACTIVE"

# ---- 5. register the device ----------------------------------------------------------------
step "register the device certificate" "AN-7648 \"Register the Device on AWS IoT Core\": upload csr_cert.pem"
run keylink iot register-certificate --certificate-pem file://device/csr_cert.pem --set-as-active
CERT_ID=$(json certificateId) CERT_ARN=$(json certificateArn)
WANT=$(openssl x509 -in "$DEV_CERT" -outform DER | sha256sum | cut -c1-64)
[ "$CERT_ID" = "$WANT" ] || die "certificateId '$CERT_ID' is not the SHA-256 of csr_cert.pem's DER"
ok "certificate $CERT_ID registered ACTIVE, checked against the registered CA"

# ---- 6. thing, principal, policy -----------------------------------------------------------
step "create the thing, attach the certificate and a policy" "AN-7648 \"Register the Device on AWS IoT Core\": create-thing, attach-thing-principal (+ the policy AWS needs)"
run keylink iot create-thing --thing-name EXAMPLE_DEVICE
THING_ARN=$(json thingArn)
ACCT=${THING_ARN%:thing/*} # arn:aws:iot:REGION:ACCOUNT
run keylink iot attach-thing-principal --thing-name EXAMPLE_DEVICE --principal "$CERT_ARN"
cat >device-policy.json <<EOF
{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect",
     "Resource": "$ACCT:client/\${iot:Connection.Thing.ThingName}"},
    {"Effect": "Allow", "Action": "iot:Publish",
     "Resource": "$ACCT:topic/dt/\${iot:Connection.Thing.ThingName}/*"},
    {"Effect": "Allow", "Action": "iot:Subscribe",
     "Resource": "$ACCT:topicfilter/cmd/\${iot:Connection.Thing.ThingName}/*"},
    {"Effect": "Allow", "Action": "iot:Receive",
     "Resource": "$ACCT:topic/cmd/\${iot:Connection.Thing.ThingName}/*"}
  ]
}
EOF
show "cat device-policy.json   # the device may publish dt/<its thing>/..., receive cmd/<its thing>/..."
indent <device-policy.json
run keylink iot create-policy --policy-name DevicePolicy --policy-document file://device-policy.json
run keylink iot attach-policy --policy-name DevicePolicy --target "$CERT_ARN"
run keylink iot list-thing-principals --thing-name EXAMPLE_DEVICE
printf '%s\n' "$OUT" | grep -q "$CERT_ARN" || die "the certificate is not attached to EXAMPLE_DEVICE"
run keylink iot list-attached-policies --target "$CERT_ARN"
printf '%s\n' "$OUT" | grep -q '"DevicePolicy"' || die "DevicePolicy is not attached"
ok "EXAMPLE_DEVICE has the certificate as principal; DevicePolicy is attached to the certificate"

# ---- 7. the operator console ---------------------------------------------------------------
step "an operator console subscribes (mosquitto_sub with its own registered certificate)" "not in AN-7648: stands in for the AWS console's MQTT test client"
mkdir -p operator
run openssl ecparam -name prime256v1 -genkey -noout -out operator/key.pem
run openssl req -new -key operator/key.pem -subj /CN=operator -out operator/csr.pem
run openssl x509 -req -in operator/csr.pem -CA "$CA_CERT" -CAkey "$CA_KEY" -passin env:KEYLINK_CA_PASSPHRASE \
  -days 1 -out operator/cert.pem
run keylink iot register-certificate --certificate-pem file://operator/cert.pem --set-as-active
OP_ARN=$(json certificateArn)
run keylink iot create-thing --thing-name operator
run keylink iot attach-thing-principal --thing-name operator --principal "$OP_ARN"
cat >operator-policy.json <<EOF
{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect", "Resource": "$ACCT:client/operator-*"},
    {"Effect": "Allow", "Action": ["iot:Subscribe", "iot:Receive"], "Resource": "*"},
    {"Effect": "Allow", "Action": "iot:Publish", "Resource": "$ACCT:topic/cmd/*"}
  ]
}
EOF
show "cat operator-policy.json"
indent <operator-policy.json
run keylink iot create-policy --policy-name OperatorPolicy --policy-document file://operator-policy.json
run keylink iot attach-policy --policy-name OperatorPolicy --target "$OP_ARN"
MQ=(-h localhost -p "$DP_PORT" --cafile kd/server-root-ca.pem --cert operator/cert.pem --key operator/key.pem)
spawn mosquitto_sub operator.log 300 mosquitto_sub "${MQ[@]}" -i operator-console -q 1 -v \
  -t 'dt/EXAMPLE_DEVICE/#' -t 'cmd/EXAMPLE_DEVICE/#' -t '$aws/events/presence/+/EXAMPLE_DEVICE'
SUB_PID=$LAST_PID
FEEDS=("keylinkd.log keylinkd" "operator.log operator")
await "$WAIT" keylinkd.log "client operator-console connected" "$SUB_PID" || die "the operator console did not connect: $(cat operator.log)"
alive "$SUB_PID" || die "mosquitto_sub exited: $(cat operator.log)"
ok "operator-console connected by mTLS and subscribed to dt/EXAMPLE_DEVICE/#, cmd/EXAMPLE_DEVICE/# and its presence events"

# ---- 8. the device connects ----------------------------------------------------------------
step "the device connects: TLS through the chip, then the ES256 challenge" "AN-7648 \"Running the Device\": verify the server, ECDHE in the chip, then authenticate the client"
if ! keylink device run --help >/dev/null 2>&1; then
  die "'keylink device run' is not in this build yet (the device-mqtt part: tools/device_run.c). The device cannot connect over MQTT, so telemetry, commands and revocation are not shown."
fi
spawn "keylink device run" device.log 300 keylink device run --endpoint "localhost:$DP_PORT" \
  --thing EXAMPLE_DEVICE --auth challenge --mqtt 5 --interval 1 --retries 2 --backoff-max 1 --verbose
DEV_PID=$LAST_PID
FEEDS=("device.log device" "keylinkd.log keylinkd" "operator.log operator")
await "$WAIT" keylinkd.log "client EXAMPLE_DEVICE connected from [^ ]* \(challenge" "$DEV_PID" ||
  die "keylinkd never let EXAMPLE_DEVICE in by the challenge (device.log and keylinkd.log above say why)"
await "$WAIT" device.log "TLS .* to localhost:$DP_PORT" "$DEV_PID" || die "no TLS through the chip"
ok "TLS 1.2 through the chip: keylinkd's certificate checked in the chip against 0x1003 (its server-root-ca.pem), ECDHE and the session keys in the chip"
ok "keylinkd sent a nonce; the chip signed the ES256 JWS over it with key 0x1004 (x5c = csr_cert.pem); keylinkd checked certificate, signature and nonce and let EXAMPLE_DEVICE in"
await "$WAIT" device.log "^subscribed filter=cmd/EXAMPLE_DEVICE/#" "$DEV_PID" ||
  die "the device did not subscribe to its commands"
ok "the device subscribed to cmd/EXAMPLE_DEVICE/#"

# ---- 9. telemetry --------------------------------------------------------------------------
step "the device sends telemetry; the operator sees it" "AN-7648 \"Running the Device\": application data sealed and opened by the chip"
await "$WAIT" operator.log "^dt/EXAMPLE_DEVICE/telemetry" "$SUB_PID" ||
  die "the operator never saw telemetry from EXAMPLE_DEVICE"
for _ in $(seq $((WAIT * 10))); do
  [ "$(grep -c '^dt/EXAMPLE_DEVICE/telemetry' operator.log)" -ge 2 ] && break
  feeds
  sleep 0.1
done
feeds
[ "$(grep -c '^dt/EXAMPLE_DEVICE/telemetry' operator.log)" -ge 2 ] || die "telemetry did not keep coming"
ok "telemetry from EXAMPLE_DEVICE reaches the operator through keylinkd, once a second"

# ---- 10. a command -------------------------------------------------------------------------
step "the operator sends a command; the device answers" "AN-7648 \"Running the Device\""
NONCE=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
run mosquitto_pub "${MQ[@]}" -i operator-cmd -q 1 -t cmd/EXAMPLE_DEVICE/blink -m "{\"id\":\"$NONCE\",\"times\":3}"
await "$WAIT" device.log "^command topic=cmd/EXAMPLE_DEVICE/blink payload=.*$NONCE" "$DEV_PID" ||
  die "the device never received the command"
await "$WAIT" device.log "^reply topic=dt/EXAMPLE_DEVICE/reply payload=.*$NONCE" "$DEV_PID" ||
  die "the device did not answer the command"
ok "the device received cmd/EXAMPLE_DEVICE/blink and answered on dt/EXAMPLE_DEVICE/reply"
await "$WAIT" operator.log "^dt/EXAMPLE_DEVICE/reply .*$NONCE" "$SUB_PID" || die "the operator never saw the device's answer"
ok "the device's answer (it echoes the command, id $NONCE) reached the operator"

# ---- 11. revoke ----------------------------------------------------------------------------
step "revoke the device certificate" "beyond AN-7648: what aws iot update-certificate --new-status REVOKED does"
run keylink iot update-certificate --certificate-id "$CERT_ID" --new-status REVOKED
await "$WAIT" keylinkd.log "disconnecting [0-9]+ connection\(s\) of certificate ${CERT_ID:0:16}" ||
  die "keylinkd did not drop the live connection of the revoked certificate"
await "$WAIT" keylinkd.log "client EXAMPLE_DEVICE disconnected" || die "EXAMPLE_DEVICE is still connected"
await "$WAIT" device.log "^lost reason=" "$DEV_PID" || die "the device did not notice that it was dropped"
ok "the live connection of EXAMPLE_DEVICE was dropped at once, and the device noticed"
run keylink iot list-certificates
printf '%s\n' "$OUT" | tr -d '\n ' | grep -q "\"certificateId\":\"$CERT_ID\",\"status\":\"REVOKED\"" ||
  die "the device certificate is not listed REVOKED"
ok "the registry lists the device certificate as REVOKED"

# ---- 12. shut out --------------------------------------------------------------------------
step "the revoked device is shut out" "beyond AN-7648: a revoked certificate cannot come back"
await "$WAIT" keylinkd.log "refused client EXAMPLE_DEVICE .*certificate_revoked|refused .* at TLS: certificate_revoked" "$DEV_PID" ||
  die "keylinkd did not refuse the device's reconnect"
ok "the device's own reconnect was refused: certificate_revoked"
# --retries 2: the device gives up by itself after two refused connects in a row
for _ in $(seq $((WAIT * 10))); do alive "$DEV_PID" || break; feeds; sleep 0.1; done
alive "$DEV_PID" && die "keylink device run still runs after its reconnects were refused"
wait "$DEV_PID"
DEV_RC=$?
forget "$DEV_PID"
feeds
[ "$DEV_RC" -eq 1 ] || die "keylink device run exited $DEV_RC; after --retries ran out it must exit 1"
grep -q "^stopped .*reason=retries" device.log || die "keylink device run did not say why it stopped"
ok "keylink device run gave up after $(grep -c '^refused attempt=' device.log) refused reconnects (exit $DEV_RC)"
refused keylink device pub --endpoint "localhost:$DP_PORT" --thing EXAMPLE_DEVICE --auth challenge --mqtt 5 \
  --topic dt/EXAMPLE_DEVICE/telemetry --message '{"after":"revocation"}'
feeds
[ "$RC" -eq 1 ] || die "keylink device pub exited $RC; a refused connection must exit 1"
ok "a fresh connection with the revoked certificate is refused (exit $RC)"
grep -q '^dt/EXAMPLE_DEVICE/telemetry {"after":"revocation"}' operator.log && die "a message of the revoked device got through"
ok "nothing from the revoked device reached the operator"

# ---- 13. stop ------------------------------------------------------------------------------
step "stop everything" ""
for what in "$SUB_PID operator console (mosquitto_sub)" "$KD_PID keylinkd" "$SE_PID keylink-se"; do
  pid=${what%% *}
  show "kill $pid   # ${what#* }"
  kill -TERM "$pid" 2>/dev/null
  wait "$pid"
  rc=$?
  forget "$pid"
  # mosquitto_sub runs under timeout, which answers SIGTERM with 124/143; the daemons must
  # stop cleanly
  [ "$pid" = "$SUB_PID" ] || [ $rc -eq 0 ] || die "${what#* } exited $rc on SIGTERM"
done
feeds
ok "keylinkd and keylink-se stopped cleanly"
DONE+=("$(printf '%2d. %s' "$STEP" "$TITLE")")

printf '\n%sdemo: all %d steps passed (%d checks, %ds)%s\n' "$BOLD$GREEN" "$STEP" "$CHECKS" $((SECONDS)) "$OFF"
printf '  %s\n' "${DONE[@]}"

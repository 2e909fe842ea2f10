#!/usr/bin/env bash
# kl-labels: demo
# `make demo`'s script (scripts/demo.sh) run against the built programs in KL_BIN_DIR: the
# output must show every step of AN-7648 with its outcome, the exit status must be 0, and
# afterwards no process it started may be running and its temporary directory must be gone.
# Failure paths: bad usage, missing programs, an endpoint that dies at start-up, one that
# ignores SIGTERM, and --keep.
set -u
BIN=${KL_BIN_DIR:?KL_BIN_DIR is not set}
SRC=${KL_SRC_DIR:?KL_SRC_DIR is not set}
DEMO=$SRC/scripts/demo.sh
W=$(mktemp -d /tmp/kl-test-demo.XXXXXX)
MARK=kl-demo-$$-$RANDOM # every process the demo starts inherits KL_DEMO_MARK=$MARK
marked() {              # pids of processes that carry the mark
  grep -lsa -- "KL_DEMO_MARK=$MARK" /proc/[0-9]*/environ | sed 's|^/proc/\([0-9]*\)/environ$|\1|' | grep -vx "$$"
}
cleanup() {
  local p
  for p in $(marked); do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$W"
}
trap cleanup EXIT
FAILS=0
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
pass() { echo "ok: $*"; }
# demo NAME BIN_DIR [ARGS]: runs the demo in its own TMPDIR; sets RC, OUT (the output file)
demo() {
  local name=$1 bin=$2
  shift 2
  mkdir -p "$W/$name/tmp"
  OUT=$W/$name/out
  env KL_DEMO_MARK="$MARK" TMPDIR="$W/$name/tmp" KL_BIN_DIR="$bin" NO_COLOR=1 \
    timeout 600 bash "$DEMO" "$@" >"$OUT" 2>&1 </dev/null
  RC=$?
}
# nothing_left NAME: no marked process (after a short grace) and the demo's temp dir is gone
nothing_left() {
  local left
  for _ in $(seq 30); do
    left=$(marked)
    [ -z "$left" ] && break
    sleep 0.1
  done
  if [ -n "$left" ]; then
    fail "$1: processes left running: $(for p in $left; do tr '\0' ' ' <"/proc/$p/cmdline"; echo; done)"
  else
    pass "$1: no process of the demo left running"
  fi
  if [ -n "$(ls -A "$W/$1/tmp")" ]; then fail "$1: temp dir left behind: $(ls "$W/$1/tmp")"; else pass "$1: temp dir removed"; fi
}
# has NAME REGEX WHAT: the output shows REGEX (extended, one line)
has() {
  if grep -qE -- "$2" "$OUT"; then pass "$1: $3"; else fail "$1: output lacks $3 (/$2/)"; fi
}

for p in keylink keylink-se keylinkd make_ca_cert init_tls_iot; do
  [ -x "$BIN/$p" ] || { echo "FAIL: $BIN/$p is not built"; exit 1; }
done

# the detector itself: a marked process is found, and found gone
env KL_DEMO_MARK="$MARK" sleep 30 &
probe=$!
sleep 0.2
marked | grep -qx "$probe" || { echo "FAIL: the process detector does not see a marked process"; exit 1; }
kill "$probe"
wait "$probe" 2>/dev/null
[ -z "$(marked)" ] || { echo "FAIL: the detector still sees a stopped process"; exit 1; }

# ---- the whole demo --------------------------------------------------------------------------
demo main "$BIN"
cat "$OUT"
echo "---- checks (demo exit status $RC) ----"
has main '^== step 1: start the chip' "step 1 header"
has main '^  ok: keylink-se \(pid [0-9]+\) serves the chip' "keylink-se started"
has main '^  ok: keylinkd \(pid [0-9]+\): control API http://127\.0\.0\.1:[0-9]+, TLS \+ MQTT on localhost:[0-9]+' "keylinkd started on free ports"
has main '^  ok: a fresh chip in DELIVERY' "a fresh chip"
has main '^== step 2: make the customer CA' "step 2 header"
has main '^\$ make_ca_cert --out-dir ca$' "make_ca_cert shown before it runs"
has main '^    wrote ca/cert_CA\.pem \(CA certificate id [0-9a-f]{64}\)' "make_ca_cert's output"
has main '^  ok: ca/privkey_server_ECDSA_secp256r1_secp256r1\.pem: encrypted PKCS#8, mode 600' "the CA key encrypted, 0600"
has main '^  ok: ca/cert_CA\.pem: a self-signed CA certificate' "the CA certificate checked"
has main '^== step 3: provision the chip' "step 3 header"
has main '^\$ init_tls_iot --device unix:se\.sock --ca-cert ca/cert_CA\.pem --ca-key ca/privkey_server_ECDSA_secp256r1_secp256r1\.pem --thing EXAMPLE_DEVICE --root kd/server-root-ca\.pem --out-dir device$' "init_tls_iot with --root = keylinkd's server-root-ca.pem"
has main '^    device/csr_cert\.pem: OK$' "openssl verifies csr_cert.pem against the CA"
has main '^  ok: the certificate carries the public half of key 0x1004' "the certificate's key is the chip's"
has main '^  ok: on the chip: 0x1004 device key, 0x1002 device certificate, 0x1003 server root' "the chip's objects"
has main '^== step 4: register the CA' "step 4 header"
has main '^\$ keylink iot get-registration-code$' "get-registration-code"
has main '^\$ make_ca_cert --out-dir ca --verification-cert [0-9a-f]{64}$' "make_ca_cert --verification-cert CODE"
has main '^\$ keylink iot register-ca-certificate --ca-certificate file://ca/cert_CA\.pem --verification-certificate file://ca/verification_cert\.pem --set-as-active$' "register-ca-certificate --set-as-active"
has main '^  ok: CA [0-9a-f]{64} registered \(verification certificate CN = the registration code\) and ACTIVE' "the CA ACTIVE"
has main '^== step 5: register the device certificate' "step 5 header"
has main '^\$ keylink iot register-certificate --certificate-pem file://device/csr_cert\.pem --set-as-active$' "register-certificate"
has main '^  ok: certificate [0-9a-f]{64} registered ACTIVE' "the device certificate registered (id = SHA-256 of the DER)"
has main '^== step 6: create the thing' "step 6 header"
has main '^\$ keylink iot create-thing --thing-name EXAMPLE_DEVICE$' "create-thing"
has main '^\$ keylink iot attach-thing-principal --thing-name EXAMPLE_DEVICE --principal arn:aws:iot:us-east-1:[0-9]{12}:cert/[0-9a-f]{64}$' "attach-thing-principal"
has main '^\$ keylink iot create-policy --policy-name DevicePolicy --policy-document file://device-policy\.json$' "create-policy"
has main '^\$ keylink iot attach-policy --policy-name DevicePolicy --target arn:aws:iot:' "attach-policy"
has main '^  ok: EXAMPLE_DEVICE has the certificate as principal; DevicePolicy is attached' "thing, principal and policy checked"
has main '^== step 7: an operator console subscribes' "step 7 header"
has main "^\\\$ mosquitto_sub -h localhost -p [0-9]+ .*-i operator-console .*-t 'dt/EXAMPLE_DEVICE/#'" "the operator's mosquitto_sub"
has main '^  keylinkd \| keylinkd: dp: client operator-console connected from 127\.0\.0\.1 \(mtls' "keylinkd's log: the operator connected by mTLS"
has main '^== step 8: the device connects' "step 8 header"
has main '^\$ keylink device run --endpoint localhost:[0-9]+ --thing EXAMPLE_DEVICE --auth challenge --mqtt 5 ' "keylink device run --auth challenge shown"
has main '^  device \| keylink device run: TLS ECDHE-ECDSA-AES128-(GCM-SHA256|CCM) to localhost:[0-9]+ ' "the device's TLS through the chip"
has main '^  keylinkd \| keylinkd: dp: client EXAMPLE_DEVICE connected from 127\.0\.0\.1 \(challenge, MQTT 5' "keylinkd's log: the device in by the challenge"
has main '^  ok: TLS 1\.2 through the chip: keylinkd.s certificate checked in the chip' "TLS outcome"
has main '^  ok: keylinkd sent a nonce; the chip signed' "challenge outcome"
has main '^  device \| connected auth=challenge mqtt=5 ' "the device's output: connected"
has main '^  device \| subscribed filter=cmd/EXAMPLE_DEVICE/#$' "the device's output: subscribed"
has main '^  ok: the device subscribed to cmd/EXAMPLE_DEVICE/#' "command subscription"
has main '^  device \| telemetry seq=1 topic=dt/EXAMPLE_DEVICE/telemetry payload=' "the device's output: telemetry"
has main '^== step 9: the device sends telemetry' "step 9 header"
has main '^  operator \| dt/EXAMPLE_DEVICE/telemetry \{"thing":"EXAMPLE_DEVICE","seq":2,' "the operator sees the second telemetry message"
has main '^  ok: telemetry from EXAMPLE_DEVICE reaches the operator' "telemetry outcome"
has main '^== step 10: the operator sends a command' "step 10 header"
has main '^\$ mosquitto_pub .* -t cmd/EXAMPLE_DEVICE/blink -m ' "the command published"
has main '^  device \| command topic=cmd/EXAMPLE_DEVICE/blink payload=\{"id":"[0-9a-f]{8}","times":3\}$' "the device's output: the command received"
has main '^  device \| reply topic=dt/EXAMPLE_DEVICE/reply payload=' "the device's output: its answer"
has main '^  operator \| dt/EXAMPLE_DEVICE/reply \{.*blink' "the operator sees the reply"
has main '^  ok: the device received cmd/EXAMPLE_DEVICE/blink and answered' "command outcome"
has main "^  ok: the device's answer \(it echoes the command, id [0-9a-f]{8}\) reached the operator" "reply outcome"
has main '^== step 11: revoke the device certificate' "step 11 header"
has main '^\$ keylink iot update-certificate --certificate-id [0-9a-f]{64} --new-status REVOKED$' "update-certificate REVOKED shown"
has main '^  keylinkd \| keylinkd: dp: registry change: disconnecting 1 connection\(s\) of certificate' "keylinkd's log: the live connection dropped"
has main '^  device \| lost reason=' "the device's output: connection lost"
has main '^  ok: the live connection of EXAMPLE_DEVICE was dropped at once, and the device noticed' "drop outcome"
has main '^  ok: the registry lists the device certificate as REVOKED' "REVOKED in the registry"
has main '^== step 12: the revoked device is shut out' "step 12 header"
has main '^  keylinkd \| keylinkd: dp: refused client EXAMPLE_DEVICE from 127\.0\.0\.1 \(challenge\): certificate_revoked' "keylinkd's log: reconnect refused as revoked"
has main "^  ok: the device's own reconnect was refused: certificate_revoked" "refusal outcome"
has main '^  device \| refused attempt=[0-9]+ reason=' "the device's output: reconnect refused"
has main '^  device \| stopped telemetry=[0-9]+ replies=1 reason=retries$' "the device's output: it gave up"
has main '^  ok: keylink device run gave up after [0-9]+ refused reconnects \(exit 1\)' "the device gave up on its own"
has main '^\$ keylink device pub --endpoint localhost:[0-9]+ --thing EXAMPLE_DEVICE --auth challenge' "a fresh connection attempt shown"
has main '^  ok: a fresh connection with the revoked certificate is refused \(exit [1-9][0-9]*\)' "fresh connection refused"
has main '^  ok: nothing from the revoked device reached the operator' "nothing got through"
has main '^== step 13: stop everything' "step 13 header"
has main '^  ok: keylinkd and keylink-se stopped cleanly' "clean stop of both daemons"
has main '^demo: all 13 steps passed \([0-9]+ checks, [0-9]+s\)$' "the final summary"
[ $RC -eq 0 ] && pass "main: exit status 0" || fail "main: exit status $RC"
# the processes' own output is part of the demo's: no sanitizer report in any of it
if grep -qE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$OUT"; then
  fail "main: a sanitizer report in the output"
else
  pass "main: no sanitizer report in the output"
fi
nothing_left main

# ---- failure paths ---------------------------------------------------------------------------
demo help "$W/no-such-dir" --help # works without a build
[ $RC -eq 0 ] && pass "help: --help exits 0" || fail "help: --help exited $RC"
has help '^usage: scripts/demo.sh \[--keep\]' "prints the usage line"
nothing_left help

demo usage "$BIN" --bogus
[ $RC -eq 2 ] && pass "usage: unknown option exits 2" || fail "usage: unknown option exited $RC"
has usage 'unknown option --bogus' "says which option"
nothing_left usage

mkdir -p "$W/empty-bin"
demo nobin "$W/empty-bin"
[ $RC -eq 1 ] && pass "nobin: exits 1" || fail "nobin: exited $RC"
has nobin 'keylink is missing; run .make demo.' "names the missing program"
nothing_left nobin

# an endpoint that dies at start-up: the demo fails at step 1, and stops the chip it started
mkdir -p "$W/dead-bin"
for p in keylink keylink-se make_ca_cert init_tls_iot; do ln -s "$BIN/$p" "$W/dead-bin/$p"; done
printf '#!/bin/sh\necho "keylinkd: cannot bind (test stand-in)" >&2\nexit 1\n' >"$W/dead-bin/keylinkd"
chmod +x "$W/dead-bin/keylinkd"
demo dead "$W/dead-bin"
[ $RC -eq 1 ] && pass "dead: exits 1" || fail "dead: exited $RC"
has dead '^demo: FAILED at step 1 .*keylinkd did not start: .*cannot bind' "says keylinkd did not start, with its message"
nothing_left dead

# the same with --keep: the directory and its logs stay
demo keep "$W/dead-bin" --keep
[ $RC -eq 1 ] && pass "keep: exits 1" || fail "keep: exited $RC"
kept=$(ls -d "$W/keep/tmp"/keylink-demo.* 2>/dev/null | head -1)
if [ -n "$kept" ] && [ -f "$kept/se.log" ]; then pass "keep: kept $kept with its logs"; else fail "keep: nothing kept"; fi
has keep "^demo: kept $kept" "says where"
rm -rf "$kept"
nothing_left keep

# an endpoint that never answers and ignores SIGTERM: bounded wait, then SIGKILL
mkdir -p "$W/stuck-bin"
for p in keylink keylink-se make_ca_cert init_tls_iot; do ln -s "$BIN/$p" "$W/stuck-bin/$p"; done
printf '#!/bin/bash\ntrap "" TERM\nwhile :; do sleep 0.2; done\n' >"$W/stuck-bin/keylinkd"
chmod +x "$W/stuck-bin/keylinkd"
export KL_DEMO_WAIT=2
demo stuck "$W/stuck-bin"
unset KL_DEMO_WAIT
[ $RC -eq 1 ] && pass "stuck: exits 1" || fail "stuck: exited $RC"
has stuck '^demo: FAILED at step 1 .*keylinkd did not start' "gives up on keylinkd after the bounded wait"
has stuck 'keylinkd \(pid [0-9]+\) did not stop on SIGTERM; killing it' "kills what ignores SIGTERM"
nothing_left stuck

echo "---- $FAILS failed ----"
[ $FAILS -eq 0 ] || exit 1
exit 0

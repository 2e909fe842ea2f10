#!/usr/bin/env bash
# keylink device against keylinkd's data plane, the app note's flow end to end: a device
# provisioned by make_ca_cert + init_tls_iot (keylinkd's server root in the chip) and registered
# with `keylink iot` connects with each of its three proofs - mTLS, the chip-signed JWT as MQTT
# password (3.1.1 and 5), the MQTT 5 keylink-es256-challenge - and exchanges messages with an
# independent client (mosquitto_pub/_sub with another registered certificate). A JWT for another
# audience is refused; `keylink device run` answers a command and publishes telemetry; after the
# certificate is revoked every method is refused and `run --retries` gives up.
set -u
B=${KL_BIN_DIR:?}
command -v mosquitto_sub >/dev/null || { echo "mosquitto-clients not installed"; exit 1; }
T=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- keylinkd log"; tail -15 "$T/kd.log"; exit 1; }
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_for() { local i=0; while ! "$@" >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 150 ] && return 1; sleep 0.1; done; }
export KEYLINK_CA_PASSPHRASE="test-pass-$RANDOM-long-enough"
AUD=keylink-test-audience
lp=$(port); ap=$(port)
"$B/keylinkd" --data-dir "$T/kd" --listen "127.0.0.1:$lp" --api "127.0.0.1:$ap" --audience "$AUD" >"$T/kd.log" 2>&1 & PIDS+=($!)
export KEYLINK_ENDPOINT_URL="http://127.0.0.1:$ap"
wait_for test -s "$T/kd/admin-token" || fail "keylinkd did not start"
export KEYLINK_TOKEN="$(cat "$T/kd/admin-token")"
wait_for "$B/keylink" iot list-things || fail "control API"
iot() { "$B/keylink" iot "$@"; }
j() { python3 -c 'import json,sys;d=json.load(sys.stdin);print(d[sys.argv[1]])' "$1"; }

# the customer CA (make_ca_cert) registered with its verification certificate
"$B/make_ca_cert" --out-dir "$T/ca" >/dev/null 2>&1 </dev/null || fail "make_ca_cert"
code=$(iot get-registration-code | j registrationCode)
"$B/make_ca_cert" --out-dir "$T/ca" --verification-cert "$code" >/dev/null 2>&1 </dev/null || fail "verification cert"
iot register-ca-certificate --ca-certificate "file://$T/ca/cert_CA.pem" \
  --verification-certificate "file://$T/ca/verification_cert.pem" --set-as-active >/dev/null || fail "register CA"
# the chip: key inside, certificate from the CA, keylinkd's server root as trust anchor
sock=$T/se.sock
"$B/keylink-se" --state "$T/state" --socket "$sock" >"$T/se.log" 2>&1 & PIDS+=($!)
wait_for test -S "$sock" || fail "keylink-se"
CAKEY=$T/ca/privkey_server_ECDSA_secp256r1_secp256r1.pem
"$B/init_tls_iot" --device "unix:$sock" --ca-cert "$T/ca/cert_CA.pem" --ca-key "$CAKEY" --thing DEV1 \
  --root "$T/kd/server-root-ca.pem" --out-dir "$T/dev" >/dev/null 2>&1 </dev/null || fail "init_tls_iot"
arn=$(iot register-certificate --certificate-pem "file://$T/dev/csr_cert.pem" --set-as-active | j certificateArn)
cid=${arn##*/}
iot create-thing --thing-name DEV1 >/dev/null && iot attach-thing-principal --thing-name DEV1 --principal "$arn" >/dev/null || fail "thing"
echo '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}' >"$T/pol.json"
iot create-policy --policy-name all --policy-document "file://$T/pol.json" >/dev/null || fail "policy"
iot attach-policy --policy-name all --target "$arn" >/dev/null || fail "attach policy"
# an independent client: another thing with an openssl-made certificate from the same CA
openssl ecparam -name prime256v1 -genkey -noout -out "$T/o.key" 2>/dev/null
openssl req -new -key "$T/o.key" -subj "/CN=OTHER" -out "$T/o.csr" 2>/dev/null
openssl x509 -req -in "$T/o.csr" -CA "$T/ca/cert_CA.pem" -CAkey "$CAKEY" -passin env:KEYLINK_CA_PASSPHRASE \
  -CAcreateserial -days 5 -out "$T/o.pem" 2>/dev/null
oarn=$(iot register-certificate --certificate-pem "file://$T/o.pem" --set-as-active | j certificateArn)
iot create-thing --thing-name OTHER >/dev/null && iot attach-thing-principal --thing-name OTHER --principal "$oarn" >/dev/null || fail "other thing"
iot attach-policy --policy-name all --target "$oarn" >/dev/null || fail "attach policy 2"

M=(-h localhost -p "$lp" --cafile "$T/kd/server-root-ca.pem" --cert "$T/o.pem" --key "$T/o.key" --tls-version tlsv1.2)
D=(--device "unix:$sock" --endpoint "localhost:$lp" --thing DEV1 --audience "$AUD")
n=0
for mode in ${MODES:-mtls:3 mtls:5 jwt:3 jwt:5 challenge:5}; do
  a=${mode%:*}; v=${mode#*:}
  mv=(); [ "$v" = 5 ] && mv=(-V mqttv5)
  # chip -> keylinkd -> mosquitto_sub
  timeout 20 mosquitto_sub "${M[@]}" -i OTHER-sub "${mv[@]}" -t "dt/DEV1/$a$v" -C 1 -q 1 >"$T/sub.out" 2>&1 & sp=$!
  sleep 0.5
  timeout 20 "$B/keylink" device pub "${D[@]}" --auth "$a" --mqtt "$v" --topic "dt/DEV1/$a$v" \
    --message "from-chip-$a-$v" --qos 1 2>"$T/pub.err" || fail "pub --auth $a --mqtt $v: $(cat "$T/pub.err")"
  wait $sp
  grep -qx "from-chip-$a-$v" "$T/sub.out" || fail "mosquitto_sub did not get the $a/$v message: $(cat "$T/sub.out")"
  # mosquitto_pub -> keylinkd -> chip
  rm -f "$T/ksub.out" "$T/ksub.err"  # a leftover "subscribed" must not count
  timeout 20 "$B/keylink" device sub "${D[@]}" --auth "$a" --mqtt "$v" --topic "cmd/DEV1/#" --qos 2 --count 1 \
    >"$T/ksub.out" 2>"$T/ksub.err" & kp=$!
  wait_for grep -q subscribed "$T/ksub.err" || fail "sub --auth $a --mqtt $v: $(cat "$T/ksub.err")"
  timeout 20 mosquitto_pub "${M[@]}" -i OTHER-pub "${mv[@]}" -t "cmd/DEV1/x" -m "to-chip-$a-$v" -q 2 || fail "mosquitto_pub"
  wait $kp || fail "sub --auth $a --mqtt $v exited non-zero: $(cat "$T/ksub.err")"
  grep -qx "to-chip-$a-$v" "$T/ksub.out" || fail "keylink device sub got: $(cat "$T/ksub.out")"
  n=$((n+1))
done
# ALPN as AWS IoT Core on port 443 wants it: offered, chosen by the server, shown by --verbose
for alpn in x-amzn-mqtt-ca mqtt; do
  timeout 20 "$B/keylink" device pub "${D[@]}" --auth mtls --alpn "$alpn" --topic "dt/DEV1/alpn" \
    --message "alpn" --verbose 2>"$T/alpn.err" || fail "pub --alpn $alpn: $(cat "$T/alpn.err")"
  grep -q "ALPN $alpn\$" "$T/alpn.err" || fail "ALPN $alpn not negotiated: $(cat "$T/alpn.err")"
done
timeout 20 "$B/keylink" device pub "${D[@]}" --auth mtls --topic "dt/DEV1/alpn" --message x --verbose 2>"$T/alpn.err" \
  && grep -q "ALPN none$" "$T/alpn.err" || fail "without --alpn no protocol is offered: $(cat "$T/alpn.err")"
timeout 20 "$B/keylink" device pub "${D[@]}" --alpn "$(printf 'x%.0s' $(seq 1 40))" --topic t --message x 2>"$T/alpn.err"
[ $? -eq 2 ] && grep -q "alpn" "$T/alpn.err" || fail "an over-long --alpn is a usage error"
grep -q "challenge" "$T/kd.log" || true
# a JWT for another audience is refused with the MQTT code for it
timeout 20 "$B/keylink" device pub --device "unix:$sock" --endpoint "localhost:$lp" --thing DEV1 --auth jwt \
  --audience someone-else --topic dt/DEV1/x --message no 2>"$T/aud.err" && fail "a JWT for another audience was accepted"
grep -q "MQTT connect failed: KL_E_REFUSED" "$T/aud.err" || fail "wrong audience: $(cat "$T/aud.err")"
grep -q "(the endpoint's log names the reason)" "$T/aud.err" || fail "no hint to the endpoint's log: $(cat "$T/aud.err")"
# a JWT for another thing's client id is refused (the key is not that thing's)
timeout 20 "$B/keylink" device pub "${D[@]}" --auth jwt --client-id OTHER --topic dt/DEV1/x --message no 2>/dev/null \
  && fail "a JWT was accepted for a thing whose certificate did not sign it"

# the device program: telemetry, a command answered, clean stop on SIGTERM
timeout 20 mosquitto_sub "${M[@]}" -i OTHER-sub -t "dt/DEV1/reply" -C 1 -q 1 >"$T/reply.out" 2>&1 & rp=$!
"$B/keylink" device run "${D[@]}" --auth challenge --mqtt 5 --interval 0.3 --qos 1 >"$T/run.out" 2>"$T/run.err" & runp=$!
wait_for grep -q "^subscribed filter=cmd/DEV1/#" "$T/run.out" || fail "run did not subscribe: $(cat "$T/run.out" "$T/run.err")"
timeout 10 mosquitto_pub "${M[@]}" -i OTHER-pub -t cmd/DEV1/reboot -m '{"do":"reboot"}' -q 1 || fail "command publish"
wait $rp
grep -q '"command":"{\\"do\\":\\"reboot\\"}"' "$T/reply.out" || fail "no reply echoing the command: $(cat "$T/reply.out")"
wait_for grep -q "^telemetry seq=3 " "$T/run.out" || fail "run published no telemetry: $(cat "$T/run.out")"
kill -TERM $runp; wait $runp || fail "run did not stop cleanly on SIGTERM"
grep -q "^connected auth=challenge mqtt=5" "$T/run.out" || fail "run connect line"
grep -q "^command topic=cmd/DEV1/reboot payload={\"do\":\"reboot\"}" "$T/run.out" || fail "run command line"
grep -q "^stopped .*reason=signal" "$T/run.out" || fail "run stop line: $(tail -2 "$T/run.out")"

# run with a JWT that lives 2 s: renewed before it expires (a new connection with a new token);
# --count stops it by itself
timeout 30 "$B/keylink" device run "${D[@]}" --auth jwt --jwt-lifetime 2 --interval 0.5 --duration 3 \
  >"$T/run3.out" 2>"$T/run3.err" || fail "run --auth jwt: $(cat "$T/run3.out" "$T/run3.err")"
grep -q "^jwt-renew exp=" "$T/run3.out" || fail "no JWT renewal: $(cat "$T/run3.out")"
[ "$(grep -c '^connected auth=jwt' "$T/run3.out")" -ge 2 ] || fail "no reconnect after the renewal: $(cat "$T/run3.out")"
grep -q "^stopped .*reason=duration" "$T/run3.out" || fail "run --duration stop line"
grep -q "^refused" "$T/run3.out" && fail "a renewed JWT was refused: $(cat "$T/run3.out")"
timeout 30 "$B/keylink" device run "${D[@]}" --interval 0.1 --count 3 >"$T/run4.out" 2>&1 || fail "run --count: $(cat "$T/run4.out")"
grep -q "^stopped telemetry=3 .*reason=count" "$T/run4.out" || fail "run --count stop line: $(tail -1 "$T/run4.out")"

# the chip's watchdog (2.5 s) is kept fed by run (a kick a second): no chip reset in 4 s (which would end the TLS
# session); without run, the same idle time resets the chip
"$B/keylink" se --device "unix:$sock" config watchdog=1 wd_initial_ms=3000 wd_normal_ms=2500 >/dev/null || fail "watchdog config"
r0=$("$B/keylink" se --device "unix:$sock" status | awk '/^resets/{print $2}')
timeout 30 "$B/keylink" device run "${D[@]}" --interval 0.5 --duration 4 >"$T/run5.out" 2>&1 || fail "run with the watchdog: $(cat "$T/run5.out")"
r1=$("$B/keylink" se --device "unix:$sock" status | awk '/^resets/{print $2}')
[ "$r0" = "$r1" ] || fail "the chip reset while run was kicking it ($r0 -> $r1): $(cat "$T/run5.out")"
grep -q "^lost" "$T/run5.out" && fail "run lost its connection under the watchdog: $(cat "$T/run5.out")"
sleep 3.0
r2=$("$B/keylink" se --device "unix:$sock" status | awk '/^resets/{print $2}')
[ "$r2" -gt "$r1" ] || fail "the watchdog did not reset an unkicked chip ($r1 -> $r2)"
"$B/keylink" se --device "unix:$sock" config watchdog=0 >/dev/null || fail "watchdog off"

# examples/device/main.c, the same program in one file, with the challenge
"$B/kl-example-device" "unix:$sock" localhost "$lp" DEV1 challenge "$AUD" >"$T/ex.out" 2>&1 & exp=$!
wait_for grep -q "^telemetry 1: KL_OK" "$T/ex.out" || fail "example: $(cat "$T/ex.out")"
timeout 10 mosquitto_pub "${M[@]}" -i OTHER-pub -t cmd/DEV1/ping -m hi -q 1 || fail "command to the example"
wait_for grep -q "^command on cmd/DEV1/ping answered: KL_OK" "$T/ex.out" || fail "example answer: $(cat "$T/ex.out")"
kill -TERM $exp; wait $exp || fail "example did not stop cleanly"
grep -q "^stopped after" "$T/ex.out" || fail "example stop line"

# a policy that denies some topics: MQTT 5 PUBACK/PUBREC 0x87 and SUBACK 0x87 are failures
cat >"$T/deny.json" <<'EOF'
{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:Publish",
 "Resource":["arn:aws:iot:*:*:topic/dt/DEV1/denied","arn:aws:iot:*:*:topic/dt/DEV1/telemetry"]},
 {"Effect":"Deny","Action":"iot:Subscribe","Resource":"arn:aws:iot:*:*:topicfilter/cmd/DEV1/denied/*"}]}
EOF
iot create-policy --policy-name deny-some --policy-document "file://$T/deny.json" >/dev/null || fail "deny policy"
iot attach-policy --policy-name deny-some --target "$arn" >/dev/null || fail "attach deny policy"
for q in 1 2; do
  timeout 20 "$B/keylink" device pub "${D[@]}" --mqtt 5 --qos $q --topic dt/DEV1/denied --message no --verbose \
    2>"$T/deny.err" && fail "pub --qos $q to a denied topic exited 0: $(cat "$T/deny.err")"
  grep -q "the server refused the message: not authorized (0x87)" "$T/deny.err" || fail "pub --qos $q refusal: $(cat "$T/deny.err")"
  grep -q "published" "$T/deny.err" && fail "pub --qos $q says published: $(cat "$T/deny.err")"
done
timeout 20 "$B/keylink" device pub "${D[@]}" --mqtt 5 --qos 1 --count 3 --topic dt/DEV1/denied --message no \
  2>"$T/deny.err" && fail "pub --count 3 to a denied topic exited 0"
grep -q "refused 3 of 3 messages: not authorized (0x87)" "$T/deny.err" || fail "pub --count 3 refusal: $(cat "$T/deny.err")"
timeout 20 "$B/keylink" device pub "${D[@]}" --mqtt 5 --qos 1 --topic dt/DEV1/allowed --message yes 2>"$T/deny.err" \
  || fail "pub to an allowed topic beside the denied ones: $(cat "$T/deny.err")"
# 3.1.1 has no reason codes: keylinkd closes the connection, which is a failure too
timeout 20 "$B/keylink" device pub "${D[@]}" --mqtt 3 --qos 1 --topic dt/DEV1/denied --message no 2>"$T/deny.err" \
  && fail "pub --mqtt 3 to a denied topic exited 0"
timeout 20 "$B/keylink" device sub "${D[@]}" --mqtt 5 --topic cmd/DEV1/denied/x --count 1 --duration 5 \
  >/dev/null 2>"$T/deny.err" && fail "sub to a denied filter exited 0"
grep -q "subscribe failed: the server refused a filter: not authorized 0x87" "$T/deny.err" || fail "sub refusal: $(cat "$T/deny.err")"
grep -q "^keylink device sub: subscribed" "$T/deny.err" && fail "a refused subscription was reported as subscribed"
# run: refused telemetry is logged as refused and not counted
timeout 30 "$B/keylink" device run "${D[@]}" --mqtt 5 --qos 1 --interval 0.2 --duration 1.5 >"$T/run6.out" 2>&1 \
  || fail "run with refused telemetry: $(cat "$T/run6.out")"
grep -q "^refused-telemetry seq=1 topic=dt/DEV1/telemetry reason=not authorized (0x87)" "$T/run6.out" \
  || fail "run did not log the refusal: $(cat "$T/run6.out")"
grep -q "^telemetry seq=" "$T/run6.out" && fail "run logged refused telemetry as sent: $(cat "$T/run6.out")"
grep -q "^stopped telemetry=0 " "$T/run6.out" || fail "run counted refused telemetry: $(tail -1 "$T/run6.out")"
# the example program reports refused telemetry too (MQTT 5 PUBACK 0x87, through on_done)
"$B/kl-example-device" "unix:$sock" localhost "$lp" DEV1 challenge "$AUD" >"$T/ex2.out" 2>&1 & exp=$!
wait_for grep -q "^message [0-9]* refused by the server: reason 0x87" "$T/ex2.out" \
  || fail "example did not report the refusal: $(cat "$T/ex2.out")"
kill -TERM $exp; wait $exp || fail "example did not stop cleanly after a refusal"
# run: a refused command subscription (SUBACK 0x87) is a failed connect, not "subscribed"
echo '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:Subscribe","Resource":"arn:aws:iot:*:*:topicfilter/cmd/DEV1/*"}]}' >"$T/deny2.json"
iot create-policy --policy-name deny-cmd --policy-document "file://$T/deny2.json" >/dev/null || fail "deny-cmd policy"
iot attach-policy --policy-name deny-cmd --target "$arn" >/dev/null || fail "attach deny-cmd"
timeout 30 "$B/keylink" device run "${D[@]}" --mqtt 5 --retries 1 >"$T/run7.out" 2>&1 \
  && fail "run with a refused subscription exited 0: $(cat "$T/run7.out")"
grep -q "^refused attempt=1 reason=subscribe cmd/DEV1/#: KL_E_REFUSED - the server refused a filter: not authorized 0x87" \
  "$T/run7.out" || fail "run subscription refusal: $(cat "$T/run7.out")"
grep -q "^subscribed" "$T/run7.out" && fail "run reported a refused subscription as subscribed"

# revocation: every method is refused afterwards, and run gives up after --retries
iot update-certificate --certificate-id "$cid" --new-status REVOKED >/dev/null || fail "revoke"
for a in "mtls 3" "jwt 3" "challenge 5"; do
  set -- $a
  timeout 20 "$B/keylink" device pub "${D[@]}" --auth "$1" --mqtt "$2" --topic dt/DEV1/x --message no 2>/dev/null \
    && fail "revoked certificate accepted with --auth $1"
done
timeout 30 "$B/keylink" device run "${D[@]}" --auth challenge --mqtt 5 --retries 2 --backoff-max 1 >"$T/run2.out" 2>&1 \
  && fail "run with a revoked certificate exited 0"
[ "$(grep -c '^refused ' "$T/run2.out")" = 2 ] || fail "run --retries 2: $(cat "$T/run2.out")"
grep -q "^stopped .*reason=retries" "$T/run2.out" || fail "run stop line after retries"
echo "ok: keylinkd with mTLS, JWT and challenge ($n modes), run, audience and revocation refusals"

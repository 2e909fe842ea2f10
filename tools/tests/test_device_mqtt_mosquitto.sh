#!/usr/bin/env bash
# keylink device pub/sub through the chip against Debian's mosquitto (TLS 1.2, require_certificate):
# chip -> mosquitto_sub and mosquitto_pub -> chip at QoS 0, 1, 2, on MQTT 3.1.1 and 5; wildcards;
# a wrong server name and a missing client certificate are refused. The server PKI is made with
# the openssl CLI (no keylink code), the device is provisioned with make_ca_cert + init_tls_iot.
set -u
B=${KL_BIN_DIR:?}
command -v mosquitto >/dev/null || { echo "mosquitto not installed"; exit 1; }
T=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$T"/*.log "$T"/*.err; do [ -f "$f" ] && { echo "== $f"; tail -5 "$f"; }; done; exit 1; }
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_for() { local i=0; while ! "$@" >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 100 ] && return 1; sleep 0.1; done; }
export KEYLINK_CA_PASSPHRASE="test-pass-$RANDOM-long-enough"

sock=$T/se.sock
"$B/keylink-se" --state "$T/state" --socket "$sock" >"$T/se.log" 2>&1 & PIDS+=($!)
wait_for test -S "$sock" || fail "keylink-se made no socket"
openssl ecparam -name prime256v1 -genkey -noout -out "$T/sroot.key" 2>/dev/null
openssl req -x509 -new -key "$T/sroot.key" -subj "/CN=Test Server Root" -days 30 -out "$T/sroot.pem" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$T/srv.key" 2>/dev/null
openssl req -new -key "$T/srv.key" -subj "/CN=localhost" -out "$T/srv.csr" 2>/dev/null
printf "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n" >"$T/ext"
openssl x509 -req -in "$T/srv.csr" -CA "$T/sroot.pem" -CAkey "$T/sroot.key" -CAcreateserial -days 30 \
  -extfile "$T/ext" -out "$T/srv.pem" 2>/dev/null
"$B/make_ca_cert" --out-dir "$T/ca" >/dev/null 2>&1 </dev/null || fail "make_ca_cert"
CAKEY=$T/ca/privkey_server_ECDSA_secp256r1_secp256r1.pem
"$B/init_tls_iot" --device "unix:$sock" --ca-cert "$T/ca/cert_CA.pem" --ca-key "$CAKEY" \
  --thing DEV1 --root "$T/sroot.pem" --out-dir "$T/dev" >/dev/null 2>&1 </dev/null || fail "init_tls_iot"
# an independent client with its own CA-issued key
openssl ecparam -name prime256v1 -genkey -noout -out "$T/cli.key" 2>/dev/null
openssl req -new -key "$T/cli.key" -subj "/CN=other" -out "$T/cli.csr" 2>/dev/null
openssl x509 -req -in "$T/cli.csr" -CA "$T/ca/cert_CA.pem" -CAkey "$CAKEY" -passin env:KEYLINK_CA_PASSPHRASE \
  -CAcreateserial -days 5 -out "$T/cli.pem" 2>/dev/null

mp=$(free_port)
cat >"$T/m.conf" <<CONF
listener $mp 127.0.0.1
cafile $T/ca/cert_CA.pem
certfile $T/srv.pem
keyfile $T/srv.key
require_certificate true
use_identity_as_username true
allow_anonymous false
user root
CONF
mosquitto -c "$T/m.conf" -v >"$T/mosquitto.log" 2>&1 & MQPID=$!; PIDS+=($MQPID)
wait_for python3 -c "import socket;socket.create_connection(('127.0.0.1',$mp))" || fail "mosquitto did not start"
M=(-h localhost -p "$mp" --cafile "$T/sroot.pem" --cert "$T/cli.pem" --key "$T/cli.key" --tls-version tlsv1.2)
D=(--device "unix:$sock" --endpoint "localhost:$mp" --thing DEV1)

for v in 3 5; do
  mv_opt=(); [ "$v" = 5 ] && mv_opt=(-V mqttv5)
  for q in 0 1 2; do
    # chip -> mosquitto_sub
    timeout 20 mosquitto_sub "${M[@]}" -i OTHER-sub "${mv_opt[@]}" -t "t/v$v/q$q" -C 1 -q "$q" >"$T/sub.out" 2>&1 & sp=$!
    sleep 0.4
    timeout 20 "$B/keylink" device pub "${D[@]}" --mqtt "$v" --topic "t/v$v/q$q" --message "chip-$v-$q" \
      --qos "$q" 2>"$T/pub.err" || fail "keylink device pub v$v q$q: $(cat "$T/pub.err")"
    wait $sp
    grep -qx "chip-$v-$q" "$T/sub.out" || fail "mosquitto_sub did not get chip-$v-$q: $(cat "$T/sub.out")"
    # mosquitto_pub -> chip (wildcard filter)
    rm -f "$T/ksub.out" "$T/ksub.err"  # a leftover "subscribed" must not count
  timeout 20 "$B/keylink" device sub "${D[@]}" --mqtt "$v" --topic "in/v$v/+/#" --qos "$q" --count 1 \
      --show-topic >"$T/ksub.out" 2>"$T/ksub.err" & kp=$!
    wait_for grep -q subscribed "$T/ksub.err" || fail "keylink device sub v$v q$q never subscribed: $(cat "$T/ksub.err")"
    timeout 20 mosquitto_pub "${M[@]}" -i OTHER-pub "${mv_opt[@]}" -t "in/v$v/x/y" -m "broker-$v-$q" -q "$q" || fail "mosquitto_pub"
    wait $kp || fail "keylink device sub v$v q$q exited non-zero: $(cat "$T/ksub.err")"
    grep -qx "in/v$v/x/y broker-$v-$q" "$T/ksub.out" || fail "keylink device sub got: $(cat "$T/ksub.out")"
  done
done

# MQTT 5 message properties set by keylink device pub, as mosquitto_sub shows them
timeout 20 mosquitto_sub "${M[@]}" -i OTHER-sub -V mqttv5 -t props -C 1 -q 1 -F '%C|%P|%R|%E|%p' >"$T/sub.out" 2>&1 & sp=$!
sleep 0.4
timeout 20 "$B/keylink" device pub "${D[@]}" --mqtt 5 --topic props --message with-props --qos 1 \
  --content-type text/plain --user-property k1=v1 --response-topic reply/here --message-expiry 120 \
  2>"$T/pub.err" || fail "pub with properties: $(cat "$T/pub.err")"
wait $sp
grep -q "^text/plain|k1:v1|reply/here|1[12][0-9]|with-props$" "$T/sub.out" || fail "properties: $(cat "$T/sub.out")"
"$B/keylink" device pub "${D[@]}" --topic props --message x --content-type a 2>/dev/null; [ $? = 2 ] || fail "properties on 3.1.1 accepted"

# several messages in one connection at QoS 2, more than the 16 in-flight slots
timeout 20 mosquitto_sub "${M[@]}" -i OTHER-sub -t many -C 40 -q 2 >"$T/many.out" 2>&1 & sp=$!
sleep 0.4
timeout 30 "$B/keylink" device pub "${D[@]}" --topic many --message m --qos 2 --count 40 2>"$T/pub.err" \
  || fail "40 messages: $(cat "$T/pub.err")"
wait $sp
[ "$(grep -cx m "$T/many.out")" = 40 ] || fail "expected 40 messages, got $(grep -cx m "$T/many.out")"

# the chip link inside the secure channel (pinned identity): same result; a wrong pin is refused
"$B/keylink" se --device "unix:$sock" channel pin --out "$T/pin.pem" >/dev/null 2>&1 || fail "channel pin"
timeout 20 mosquitto_sub "${M[@]}" -i OTHER-sub -t pinned -C 1 -q 1 >"$T/sub.out" 2>&1 & sp=$!
sleep 0.4
timeout 20 "$B/keylink" device pub "${D[@]}" --pin "$T/pin.pem" --mqtt 5 --topic pinned --message via-channel \
  --qos 1 2>"$T/pub.err" || fail "pub --pin: $(cat "$T/pub.err")"
wait $sp
grep -qx via-channel "$T/sub.out" || fail "no message through the secure channel: $(cat "$T/sub.out")"
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl ec -pubout 2>/dev/null >"$T/wrong.pem"
timeout 20 "$B/keylink" device pub "${D[@]}" --pin "$T/wrong.pem" --topic pinned --message no 2>"$T/pin.err" \
  && fail "a wrong pin was accepted"
grep -q "not the pinned one" "$T/pin.err" || fail "wrong pin: unclear: $(cat "$T/pin.err")"

# sub without a count runs until SIGTERM, then disconnects cleanly (mosquitto logs a clean disconnect)
"$B/keylink" device sub "${D[@]}" --client-id DEV1-long --topic forever --count 0 >/dev/null 2>"$T/long.err" & lp=$!
wait_for grep -q subscribed "$T/long.err" || fail "sub --count 0: $(cat "$T/long.err")"
kill -TERM $lp; wait $lp || fail "sub --count 0 did not exit 0 on SIGTERM: $(cat "$T/long.err")"
wait_for grep -q "Client DEV1-long disconnected" "$T/mosquitto.log" || fail "no clean DISCONNECT from sub on SIGTERM"

# keylink device run across a broker restart: connection lost, retries with backoff, connected
# again, telemetry goes on; SIGTERM stops it cleanly
"$B/keylink" device run "${D[@]}" --mqtt 5 --persistent --session-expiry 60 --interval 0.3 --qos 1 \
  --backoff-max 1 >"$T/run.out" 2>"$T/run.err" & rp=$!
wait_for grep -q "^telemetry seq=2 " "$T/run.out" || fail "run: no telemetry: $(cat "$T/run.out" "$T/run.err")"
kill $MQPID; wait $MQPID 2>/dev/null
wait_for grep -q "^lost reason=" "$T/run.out" || fail "run did not notice the broker going away: $(cat "$T/run.out")"
wait_for grep -q "^retry attempt=" "$T/run.out" || fail "run did not retry: $(cat "$T/run.out")"
mosquitto -c "$T/m.conf" >"$T/mosquitto2.log" 2>&1 & MQPID=$!; PIDS+=($MQPID)
for i in $(seq 100); do [ "$(grep -c '^connected ' "$T/run.out")" -ge 2 ] && break; sleep 0.1; done
[ "$(grep -c '^connected ' "$T/run.out")" -ge 2 ] || fail "run did not reconnect: $(cat "$T/run.out")"
n0=$(grep -c '^telemetry ' "$T/run.out")
for i in $(seq 50); do [ "$(grep -c '^telemetry ' "$T/run.out")" -gt "$n0" ] && break; sleep 0.1; done
[ "$(grep -c '^telemetry ' "$T/run.out")" -gt "$n0" ] || fail "no telemetry after the reconnect: $(cat "$T/run.out")"
kill -TERM $rp; wait $rp || fail "run did not stop cleanly: $(cat "$T/run.err")"
grep -q "^stopped .*reason=signal" "$T/run.out" || fail "run stop line: $(tail -2 "$T/run.out")"
wait_for python3 -c "import socket;socket.create_connection(('127.0.0.1',$mp))" || fail "mosquitto restart"

# a server name the certificate does not carry is refused, nothing is published
timeout 20 "$B/keylink" device pub "${D[@]}" --server-name wrong.example --topic x --message y 2>"$T/bad.err" \
  && fail "a wrong server name was accepted"
grep -q "TLS handshake failed" "$T/bad.err" || fail "wrong server name: unclear message: $(cat "$T/bad.err")"
# --auth jwt shows no client certificate: mosquitto (require_certificate) refuses the handshake
timeout 20 "$B/keylink" device pub "${D[@]}" --auth jwt --topic x --message y 2>"$T/jwt.err" \
  && fail "mosquitto let in a client without a certificate"
# usage errors
"$B/keylink" device pub "${D[@]}" --topic 'a/#' --message y 2>/dev/null; [ $? = 2 ] || fail "wildcard topic accepted"
"$B/keylink" device pub --device "unix:$sock" --endpoint "localhost:$mp" --topic a 2>/dev/null; [ $? = 2 ] || fail "missing --thing accepted"
"$B/keylink" device sub "${D[@]}" --auth challenge --topic a 2>/dev/null; [ $? = 2 ] || fail "challenge on MQTT 3.1.1 accepted"
"$B/keylink" device pub "${D[@]}" --qos 3 --topic a 2>/dev/null; [ $? = 2 ] || fail "--qos 3 accepted"
echo "ok: pub/sub through the chip with mosquitto, QoS 0/1/2, MQTT 3.1.1 and 5"

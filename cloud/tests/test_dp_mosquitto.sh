#!/usr/bin/env bash
# Debian's mosquitto_pub/mosquitto_sub with a registered device certificate talk through
# keylinkd over TLS (1.2 and 1.3, MQTT 3.1.1 and 5) at QoS 0, 1 and 2, and retained; an unregistered
# certificate is refused; a revoked subscriber is dropped and cannot come back.
set -u
BIN=${KL_BIN_DIR:?}
command -v mosquitto_sub >/dev/null || { echo "mosquitto-clients not installed"; exit 1; }
T=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- keylinkd log"; tail -30 "$T/kd.log"; exit 1; }
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
lp=$(port); ap=$(port)
"$BIN/keylinkd" --data-dir "$T/kd" --listen "127.0.0.1:$lp" --api "127.0.0.1:$ap" >"$T/kd.log" 2>&1 &
PIDS+=($!)
export KEYLINK_ENDPOINT_URL="http://127.0.0.1:$ap"
for i in $(seq 1 100); do [ -s "$T/kd/admin-token" ] && "$BIN/keylink" iot list-things >/dev/null 2>&1 && break; sleep 0.1; done
export KEYLINK_TOKEN="$(cat "$T/kd/admin-token")"
iot() { "$BIN/keylink" iot "$@"; }
j() { python3 -c 'import json,sys;d=json.load(sys.stdin);print(d[sys.argv[1]])' "$1"; }

# a CA (openssl), registered with its verification certificate
openssl ecparam -name prime256v1 -genkey -noout -out "$T/ca.key" 2>/dev/null
openssl req -x509 -new -key "$T/ca.key" -subj "/CN=mosquitto test CA" -days 30 -out "$T/ca.pem" \
  -addext basicConstraints=critical,CA:TRUE 2>/dev/null || fail "CA"
code=$(iot get-registration-code | j registrationCode)
sign() { # name cn
  openssl ecparam -name prime256v1 -genkey -noout -out "$T/$1.key" 2>/dev/null
  openssl req -new -key "$T/$1.key" -subj "/CN=$2" -out "$T/$1.csr" 2>/dev/null
  openssl x509 -req -in "$T/$1.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 5 \
    -out "$T/$1.pem" 2>/dev/null || fail "sign $1"
}
sign verif "$code"
iot register-ca-certificate --ca-certificate "file://$T/ca.pem" --verification-certificate \
  "file://$T/verif.pem" --set-as-active >/dev/null || fail "register CA"
sign dev1 dev1
sign stranger stranger
arn=$(iot register-certificate --certificate-pem "file://$T/dev1.pem" --set-as-active | j certificateArn)
iot create-thing --thing-name dev1 >/dev/null && iot attach-thing-principal --thing-name dev1 --principal "$arn" >/dev/null || fail "thing"
echo '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}' >"$T/pol.json"
iot create-policy --policy-name all --policy-document "file://$T/pol.json" >/dev/null || fail "policy"
iot attach-policy --policy-name all --target "$arn" >/dev/null || fail "attach policy"

C="-h localhost -p $lp --cafile $T/kd/server-root-ca.pem --cert $T/dev1.pem --key $T/dev1.key"
for tv in tlsv1.2/mqttv311 tlsv1.3/mqttv5 tlsv1.2/mqttv5; do
  tls=${tv%/*}; v=${tv#*/}
  {
    for q in 0 1 2; do
      out="$T/sub-$tls-$v-$q.out"
      id="sub-$tls-$v-$q"
      timeout 10 mosquitto_sub $C --tls-version $tls -V $v -i "$id" -t "dt/dev1/q$q" -q $q -C 1 -W 8 >"$out" 2>&1 &
      sp=$!
      # wait until the subscriber is connected (logged), then give its SUBSCRIBE a moment
      for i in $(seq 1 50); do grep -q "client $id connected" "$T/kd.log" && break; sleep 0.1; done
      sleep 0.3
      timeout 10 mosquitto_pub $C --tls-version $tls -V $v -i "pub-$q" -t "dt/dev1/q$q" -m "qos$q-$tls-$v" -q $q \
        || fail "mosquitto_pub $tls $v QoS $q"
      wait $sp || fail "mosquitto_sub $tls $v QoS $q: $(cat "$out")"
      grep -qx "qos$q-$tls-$v" "$out" || fail "no message at $tls $v QoS $q: $(cat "$out")"
    done
  }
done
# retained message to a later subscriber
timeout 10 mosquitto_pub $C -i rp -t dt/dev1/ret -m kept -q 1 -r || fail "retained publish"
timeout 10 mosquitto_sub $C -i rs -t dt/dev1/ret -C 1 -W 5 >"$T/ret.out" 2>&1 || fail "retained sub"
grep -qx kept "$T/ret.out" || fail "retained message not delivered"
# unregistered certificate
timeout 10 mosquitto_pub -h localhost -p "$lp" --cafile "$T/kd/server-root-ca.pem" --cert "$T/stranger.pem" \
  --key "$T/stranger.key" -i stranger -t x -m y -q 1 >/dev/null 2>&1 && fail "unregistered certificate accepted"
grep -q "refused client stranger from 127.0.0.1 (mtls): certificate_not_registered" "$T/kd.log" || fail "refusal not logged"
# revocation drops a live subscriber
timeout 20 mosquitto_sub $C -i live -t "dt/dev1/#" >/dev/null 2>&1 &
sp=$!
for i in $(seq 1 50); do grep -q "client live connected" "$T/kd.log" && break; sleep 0.1; done
cid=${arn##*/}
iot update-certificate --certificate-id "$cid" --new-status REVOKED >/dev/null || fail "revoke"
for i in $(seq 1 20); do grep -q "client live disconnected" "$T/kd.log" && break; sleep 0.05; done
grep -q "client live disconnected" "$T/kd.log" || fail "revoked subscriber not dropped within 1 s"
for i in $(seq 1 40); do kill -0 $sp 2>/dev/null || break; sleep 0.1; done
kill -0 $sp 2>/dev/null && fail "mosquitto_sub still running after revocation"
timeout 10 mosquitto_pub $C -i dev1 -t x -m y -q 1 >/dev/null 2>&1 && fail "revoked certificate reconnected"
kill "${PIDS[0]}"; wait "${PIDS[0]}"; rc=$?
[ $rc -eq 0 ] || fail "keylinkd exited with $rc"
grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "$T/kd.log" && fail "sanitizer report in the keylinkd log"
echo "mosquitto ok"

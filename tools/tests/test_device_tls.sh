#!/usr/bin/env bash
# `keylink device tls` through a keylink-se daemon provisioned by make_ca_cert +
# init_tls_iot, against openssl s_server with a server PKI made by the openssl CLI:
# mutual TLS echo (-rev) with each suite, standard input streamed, the idle timeout after
# stdin ends, and refusals (unknown root, wrong name, bad usage) with a clear message,
# non-zero exit and nothing printed from the server.
set -u
B=${KL_BIN_DIR:?}
SE=$B/keylink-se KL=$B/keylink MK=$B/make_ca_cert INIT=$B/init_tls_iot
T=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
free_port() { /usr/bin/python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
export KEYLINK_CA_PASSPHRASE="tls-test-pass-$RANDOM-long-enough"

sock=$T/se.sock
"$SE" --state "$T/state" --socket "$sock" >"$T/se.log" 2>&1 & PIDS+=($!)
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || fail "keylink-se made no socket"

cd "$T" || exit 1
openssl ecparam -name prime256v1 -genkey -noout -out sroot.key 2>/dev/null
openssl req -x509 -new -key sroot.key -subj "/CN=Test Server Root" -days 30 -out sroot.pem \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out srv.key 2>/dev/null
openssl req -new -key srv.key -subj "/CN=localhost" -out srv.csr 2>/dev/null
printf "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n" >ext
openssl x509 -req -in srv.csr -CA sroot.pem -CAkey sroot.key -CAcreateserial -days 30 \
  -extfile ext -out srv.pem 2>/dev/null || fail "server PKI"
"$MK" --out-dir "$T/ca" >/dev/null 2>&1 </dev/null || fail "make_ca_cert failed"
"$INIT" --device "unix:$sock" --ca-cert ca/cert_CA.pem \
  --ca-key ca/privkey_server_ECDSA_secp256r1_secp256r1.pem --thing TLS_TEST_DEVICE \
  --root sroot.pem --out-dir "$T/dev" >"$T/init.log" 2>&1 </dev/null || fail "init_tls_iot: $(tail -2 "$T/init.log")"

start_server() { # extra s_server arguments...
  port=$(free_port)
  openssl s_server -quiet -tls1_2 -accept "$port" "$@" >>"$T/s_server.log" 2>&1 &
  PIDS+=($!)
  wait_port "$port" || fail "s_server did not start"
}

# 1) mutual TLS, each suite, reversed echo of every line, both lines and a long one
for c in ECDHE-ECDSA-AES128-GCM-SHA256:gcm ECDHE-ECDSA-AES128-CCM:ccm; do
  start_server -cert srv.pem -key srv.key -Verify 1 -CAfile ca/cert_CA.pem -cipher "${c%%:*}" -rev
  long=$(head -c 3000 /dev/zero | tr '\0' 'k')
  out=$(printf 'hello-keylink\nsecond line\n%s\n' "$long" |
    timeout 20 "$KL" device tls --device "unix:$sock" --endpoint "127.0.0.1:$port" \
      --server-name localhost --suite "${c##*:}" 2>"$T/err")
  rc=$?
  [ $rc -eq 0 ] || fail "${c%%:*}: exit $rc: $(cat "$T/err")"
  echo "$out" | grep -qx "knilyek-olleh" || fail "${c%%:*}: no reversed echo: $out"
  echo "$out" | grep -qx "enil dnoces" || fail "${c%%:*}: second line missing"
  echo "$out" | grep -qx "$long" || fail "${c%%:*}: long line missing"
  grep -q "suite ${c%%:*}" "$T/err" || fail "suite not reported: $(cat "$T/err")"
  grep -q "extended master secret yes" "$T/err" || fail "EMS not reported"
  grep -q "peer subject CN=localhost" "$T/err" || fail "peer subject not reported"
  grep -q "client certificate sent" "$T/err" || fail "mTLS not reported"
done

# 2) idle timeout: the server stays silent after stdin ends; the tool ends on its own
start_server -cert srv.pem -key srv.key -rev
s=$(date +%s)
echo "x" | timeout 20 "$KL" device tls --device "unix:$sock" --endpoint "localhost:$port" \
  --idle-timeout 1 --no-client-cert >/dev/null 2>"$T/err" || fail "idle: $(cat "$T/err")"
e=$(date +%s)
[ $((e - s)) -lt 10 ] || fail "idle timeout not honoured"
grep -q "client certificate not sent" "$T/err" || fail "--no-client-cert not honoured"

# 2b) the chip link inside the secure channel, pinned identity; a wrong pin is refused
"$KL" se --device "unix:$sock" channel pin --out "$T/pin.pem" >/dev/null 2>&1 || fail "channel pin"
start_server -cert srv.pem -key srv.key -Verify 1 -CAfile ca/cert_CA.pem -rev
out=$(echo "through-the-channel" | timeout 20 "$KL" device tls --device "unix:$sock" \
  --pin "$T/pin.pem" --endpoint "127.0.0.1:$port" --server-name localhost 2>"$T/err") ||
  fail "channel: $(cat "$T/err")"
echo "$out" | grep -qx "lennahc-eht-hguorht" || fail "channel: no echo"
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl ec -pubout 2>/dev/null >"$T/wrong.pem"
echo x | timeout 20 "$KL" device tls --device "unix:$sock" --pin "$T/wrong.pem" \
  --endpoint "127.0.0.1:$port" --server-name localhost >/dev/null 2>"$T/err" && fail "wrong pin accepted"
grep -q "not the pinned one" "$T/err" || fail "wrong pin: unclear: $(cat "$T/err")"

# 3) refusals: a server certificate from a root the chip does not hold
openssl req -x509 -new -key srv.key -subj "/CN=localhost" -days 30 -out self.pem \
  -addext subjectAltName=DNS:localhost 2>/dev/null
start_server -cert self.pem -key srv.key -rev
out=$(echo "x" | timeout 20 "$KL" device tls --device "unix:$sock" --endpoint "127.0.0.1:$port" \
  --server-name localhost 2>"$T/err")
rc=$?
[ $rc -eq 1 ] || fail "unknown root: exit $rc"
[ -z "$out" ] || fail "unknown root: printed server data"
grep -q "does not chain to the chip's root" "$T/err" || fail "unknown root: unclear: $(cat "$T/err")"

# wrong host name (the certificate names localhost)
start_server -cert srv.pem -key srv.key -rev
echo "x" | timeout 20 "$KL" device tls --device "unix:$sock" --endpoint "127.0.0.1:$port" \
  --server-name other.example >/dev/null 2>"$T/err" && fail "wrong name accepted"
grep -q "not for 'other.example'" "$T/err" || fail "wrong name: unclear: $(cat "$T/err")"

# nothing listening; bad usage
p=$(free_port)
echo x | "$KL" device tls --device "unix:$sock" --endpoint "127.0.0.1:$p" >/dev/null 2>"$T/err"
[ $? -eq 1 ] || fail "closed port: wrong exit"
grep -q "cannot connect" "$T/err" || fail "closed port: unclear"
"$KL" device tls --device "unix:$sock" >/dev/null 2>&1
[ $? -eq 2 ] || fail "missing --endpoint: wrong exit"
"$KL" device tls --endpoint nohostport >/dev/null 2>&1
[ $? -eq 2 ] || fail "bad endpoint: wrong exit"
"$KL" device tls --endpoint h:1 --suite chacha >/dev/null 2>&1
[ $? -eq 2 ] || fail "bad suite: wrong exit"
echo "device tls ok"

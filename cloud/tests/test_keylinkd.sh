#!/usr/bin/env bash
# keylinkd start-up: what the first start writes (modes, server certificate names and
# chain), that a restart keeps it, configuration by file and flags, --help, usage errors,
# one keylinkd per data directory, and a damaged admin-token refused.
set -u
KD=$KL_BIN_DIR/keylinkd
T=$(mktemp -d); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
# start DIR LOG ARGS... -> sets PORT (the control API port) or fails
start() {
  local dir=$1 log=$2; shift 2
  "$KD" --data-dir "$dir" --api 127.0.0.1:0 --listen 127.0.0.1:0 "$@" >"$log" 2>&1 & PIDS+=($!)
  PORT=""
  for i in $(seq 100); do
    PORT=$(sed -n 's|.*control API on http://127.0.0.1:\([0-9]*\).*|\1|p' "$log"); [ -n "$PORT" ] && return 0
    kill -0 "${PIDS[-1]}" 2>/dev/null || return 1; sleep 0.1
  done
  return 1
}
stop_last() { kill "${PIDS[-1]}"; wait "${PIDS[-1]}"; }

"$KD" --help | grep -q "^SYNOPSIS" && "$KD" --help | grep -q "^OPTIONS" && "$KD" --help | grep -q -- "--listen HOST:PORT" \
  && ok "--help reads like a man page" || bad "--help"
"$KD" >/dev/null 2>&1; [ $? -eq 2 ] && ok "no --data-dir -> exit 2" || bad "no data dir"
"$KD" --data-dir "$T/x" --bogus 1 >/dev/null 2>&1; [ $? -eq 2 ] && ok "unknown option -> exit 2" || bad "bogus"
"$KD" --data-dir "$T/x" --api nonsense >/dev/null 2>&1; [ $? -eq 2 ] && ok "bad --api -> exit 2" || bad "bad api"
"$KD" --version | grep -q "registry schema" && ok "--version" || bad "--version"

start "$T/kd" "$T/log1" || bad "first start: $(cat "$T/log1")"
grep -q "data plane on 127.0.0.1:[1-9]" "$T/log1" && ok "data plane listening on the port it prints" || bad "listen message: $(cat "$T/log1")"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/metrics")" = 200 ] && ok "GET /metrics without token" || bad "metrics"
for f in admin-token server-root-ca.key server.key; do
  [ "$(stat -c %a "$T/kd/$f")" = 600 ] && ok "$f is 0600" || bad "$f mode $(stat -c %a "$T/kd/$f")"
done
[ "$(stat -c %a "$T/kd")" = 700 ] && ok "data dir 0700" || bad "dir mode"
grep -qE '^[0-9a-f]{64}$' "$T/kd/admin-token" && ok "admin-token: 64 hex digits" || bad "token format"
openssl verify -CAfile "$T/kd/server-root-ca.pem" -purpose sslserver "$T/kd/server.pem" >/dev/null 2>&1 \
  && ok "server.pem chains to server-root-ca.pem, serverAuth" || bad "server chain"
san=$(openssl x509 -in "$T/kd/server.pem" -noout -ext subjectAltName 2>/dev/null | tail -1)
echo "$san" | grep -q "DNS:localhost" && echo "$san" | grep -q "IP Address:127.0.0.1" \
  && { [ "$(hostname)" = localhost ] || echo "$san" | grep -q "DNS:$(hostname)"; } \
  && ok "server names: $san" || bad "SAN: $san"
openssl x509 -in "$T/kd/server-root-ca.pem" -noout -ext basicConstraints | grep -q "CA:TRUE" && ok "root is a CA" || bad "root CA"
openssl pkey -in "$T/kd/server.key" -pubout 2>/dev/null | cmp -s - <(openssl x509 -in "$T/kd/server.pem" -pubkey -noout) \
  && ok "server.key matches server.pem" || bad "server key"
first=${PIDS[-1]}
tok=$(cat "$T/kd/admin-token"); root=$(sha256sum <"$T/kd/server-root-ca.pem")
curl -s -H "Authorization: Bearer $tok" -X POST "http://127.0.0.1:$PORT/things/keepme" >/dev/null
start "$T/kd" "$T/log2" && bad "second keylinkd on the same directory started" \
  || { grep -q "in use" "$T/log2" && ok "second keylinkd on the same dir refused" || bad "second: $(cat "$T/log2")"; }
kill "$first"; wait "$first"
start "$T/kd" "$T/log3" || bad "restart"
[ "$(cat "$T/kd/admin-token")" = "$tok" ] && [ "$(sha256sum <"$T/kd/server-root-ca.pem")" = "$root" ] \
  && ok "restart keeps token and root CA" || bad "restart changed files"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" "http://127.0.0.1:$PORT/things/keepme")" = 200 ] \
  && ok "restart keeps the registry" || bad "thing lost"
stop_last

# configuration file, flags override it
cat >"$T/conf" <<C
# keylinkd test configuration
region = eu-west-1
account-id = 000011112222
server-name = dev.example.test
server-name = 10.1.2.3
endpoint-address = iot.example.test
api = 127.0.0.1:1
connect-timeout = 1500
max-packet = 64K
C
start "$T/kd2" "$T/log4" --config "$T/conf" --api 127.0.0.1:0 || bad "config start: $(cat "$T/log4")"
tok2=$(cat "$T/kd2/admin-token")
arn=$(curl -s -H "Authorization: Bearer $tok2" -X POST "http://127.0.0.1:$PORT/things/c1" | sed -n 's/.*"thingArn":"\([^"]*\)".*/\1/p')
[ "$arn" = "arn:aws:iot:eu-west-1:000011112222:thing/c1" ] && ok "region and account from the file" || bad "arn $arn"
curl -s -H "Authorization: Bearer $tok2" "http://127.0.0.1:$PORT/endpoint" | grep -q iot.example.test \
  && ok "endpoint-address from the file" || bad "endpoint"
san=$(openssl x509 -in "$T/kd2/server.pem" -noout -ext subjectAltName | tail -1)
echo "$san" | grep -q "DNS:dev.example.test" && echo "$san" | grep -q "IP Address:10.1.2.3" && ! echo "$san" | grep -q localhost \
  && ok "server-name from the file replaces the defaults" || bad "config SAN $san"
stop_last
printf 'bogus-key = 1\n' >"$T/conf2"
"$KD" --data-dir "$T/kd3" --config "$T/conf2" >"$T/log5" 2>&1; [ $? -eq 2 ] && grep -q "conf2:1" "$T/log5" \
  && ok "unknown config key named with file:line" || bad "bad config: $(cat "$T/log5")"
"$KD" --data-dir "$T/kd3" --config "$T/missing" >/dev/null 2>&1; [ $? -eq 2 ] && ok "missing config file -> 2" || bad "missing conf"

# a damaged admin-token stops the start
chmod 644 "$T/kd/admin-token"
start "$T/kd" "$T/log6" && bad "started with a 0644 admin-token" || ok "admin-token with group/other bits refused"
chmod 600 "$T/kd/admin-token"; printf 'short' >"$T/kd/admin-token"
start "$T/kd" "$T/log7" && bad "started with a short admin-token" || ok "malformed admin-token refused"
grep -q short "$T/log7" && bad "token content leaked into the log" || ok "token content not logged"
[ $fails -eq 0 ] && echo "keylinkd start-up: all passed" || echo "$fails failure(s)"
exit $((fails > 0))

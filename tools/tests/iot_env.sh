# Shared set-up of the test_iot_*.sh tests (sourced; not a test itself): a temp dir, keylinkd
# on a free port, `keylink iot`, and helpers to make CAs and certificates with openssl.
set -u
B=$KL_BIN_DIR; KD=$B/keylinkd; KL=$B/keylink
T=$(mktemp -d); KDPID=""
# stops keylinkd cleanly; a sanitizer report in its log (leaks show at exit) fails the test
cleanup() {
  local rc=$?
  [ -n "$KDPID" ] && kill "$KDPID" 2>/dev/null; wait 2>/dev/null
  if grep -qE "Sanitizer|runtime error" "$T"/kd.log* 2>/dev/null; then
    echo "FAIL: keylinkd sanitizer report:"; grep -hE -A20 "Sanitizer|runtime error" "$T"/kd.log* | head -40; rc=1
  fi
  rm -rf "$T"; exit $rc
}
trap cleanup EXIT
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
PY=/usr/bin/python3
j() { $PY -c 'import json,sys,signal;signal.signal(signal.SIGPIPE,signal.SIG_DFL);d=json.load(sys.stdin);print(eval(sys.argv[1]))' "$1"; }
# keylinkd on a free port (--api 127.0.0.1:0; the port is read from its start line)
start_kd() {
  [ -f "$T/kd.log" ] && cat "$T/kd.log" >>"$T/kd.log.old"  # keep earlier runs' reports
  : >"$T/kd.log"
  "$KD" --data-dir "$T/kd" --listen 127.0.0.1:0 --api 127.0.0.1:0 "$@" >"$T/kd.log" 2>&1 & KDPID=$!
  local i p=""
  for i in $(seq 150); do
    p=$(sed -n 's|.*control API on \(https*\)://127.0.0.1:\([0-9]*\).*|\1://127.0.0.1:\2|p' "$T/kd.log")
    [ -n "$p" ] && break; sleep 0.1
  done
  [ -n "$p" ] || { echo "FAIL: keylinkd did not start: $(cat "$T/kd.log")"; exit 1; }
  export KEYLINK_ENDPOINT_URL="$p" KEYLINK_TOKEN="$(cat "$T/kd/admin-token")"
  API=$KEYLINK_ENDPOINT_URL
}
iot() { "$KL" iot "$@"; }
# expect_err CODE ARGS...: keylink iot ARGS fails, printing the AWS CLI error line with CODE
expect_err() {
  local code=$1; shift
  if iot "$@" >"$T/_expect.out" 2>"$T/_expect.err"; then bad "$* succeeded, wanted $code"; return; fi
  grep -q "^An error occurred ($code) when calling the [A-Za-z]* operation: ." "$T/_expect.err" \
    && ok "$1 -> $code" || bad "$* -> $(cat "$T/_expect.err"), wanted $code"
}
# a CA (key unencrypted) with openssl: mkca NAME -> $T/NAME.pem, $T/NAME.key
mkca() {
  openssl ecparam -name prime256v1 -genkey -noout -out "$T/$1.key" 2>/dev/null
  openssl req -x509 -new -key "$T/$1.key" -subj "/CN=$1" -days 30 -out "$T/$1.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
# mkcert CA CN [OUT] -> $T/OUT.pem signed by CA
mkcert() {
  local out=${3:-$2}
  openssl ecparam -name prime256v1 -genkey -noout -out "$T/$out.key" 2>/dev/null
  openssl req -new -key "$T/$out.key" -subj "/CN=$2" -out "$T/$out.csr" 2>/dev/null
  openssl x509 -req -in "$T/$out.csr" -CA "$T/$1.pem" -CAkey "$T/$1.key" -CAcreateserial \
    -days 5 -out "$T/$out.pem" 2>/dev/null
}
certid() { openssl x509 -in "$1" -outform DER | sha256sum | cut -c1-64; }

#!/usr/bin/env bash
# `make bench`: keylinkd against Debian's mosquitto under the same load generator
# (bench/loadgen.c), the physical limit from `openssl speed`, provisioning, chip overhead
# and the device footprint. Writes bench/results/bench.md, bench.json and bench.png.
# usage: bench/run.sh [BUILD_BIN_DIR]        (default build/bin; `make bench` builds it)
# Environment (defaults in brackets): BENCH_RUNS [3], BENCH_HS_SECONDS [5],
# BENCH_PUB_SECONDS [2], BENCH_IDLE_LEVELS ["1000 5000 15000"], BENCH_PROV_N [20],
# BENCH_PROFILE [1: perf-profile both brokers during handshakes into results/profile.txt; 0 = skip].
# BENCH_BUDGET [660 s: idle runs after the first start only if they fit],
# BENCH_OUT [bench/results], BENCH_ONLY [all: or some of "speed hs idle fanin prov chip size"].
# Every process it starts is stopped on exit; all traffic is on 127.0.0.1.
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$SRC/build/bin}
BIN=$(cd "$BIN" && pwd)
OUT=${BENCH_OUT:-$SRC/bench/results}
RUNS=${BENCH_RUNS:-3}
HS_SECS=${BENCH_HS_SECONDS:-5}
PUB_SECS=${BENCH_PUB_SECONDS:-2}
LEVELS=${BENCH_IDLE_LEVELS:-"1000 5000 15000"}
PROV_N=${BENCH_PROV_N:-20}
BUDGET=${BENCH_BUDGET:-660}
IDLE_RUN_S=0
PY=/usr/bin/python3
ONLY=${BENCH_ONLY:-"speed hs idle fanin prov chip size"}
want() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }
for p in keylinkd keylink kl-loadgen kl-bench-chip init_tls_iot make_ca_cert keylink-se; do
  [ -x "$BIN/$p" ] || { echo "bench: missing $BIN/$p (build first: make bench)"; exit 1; }
done
for p in mosquitto openssl gnuplot "$PY"; do
  command -v "$p" >/dev/null || { echo "bench: $p not installed (scripts/deps.sh bench)"; exit 1; }
done
# the idle test holds up to 15,000 connections in each broker
ulimit -n "$(ulimit -Hn)" 2>/dev/null
[ "$(ulimit -n)" -ge 16500 ] || echo "bench: warning: only $(ulimit -n) open files allowed"

mkdir -p "$OUT" || exit 1
T=$(mktemp -d /tmp/kl-bench.XXXXXX)
PIDS=""
cleanup() {
  for p in $PIDS; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
RAW=$T/raw.tsv
: >"$RAW"
rec() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$RAW"; } # group broker key run value
log() { echo "[bench $(date -u +%H:%M:%S)] $*"; }
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, clock ticks
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; } # KiB
HZ=$(getconf CLK_TCK)
T0=$(date +%s)
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

{
  echo "cores=$(nproc)"
  echo "model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "mhz=$(grep -m1 'cpu MHz' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "mem_mb=$(free -m | awk '/^Mem:/ {print $2}')"
  echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "kernel=$(uname -r)"
  echo "openssl=$(openssl version | cut -d' ' -f1-2)"
  echo "mosquitto=$(mosquitto -h 2>/dev/null | head -1 | awk '{print $3}')"
  echo "commit=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "dirty=$(git -C "$SRC" status --porcelain 2>/dev/null | grep -c .)"
  echo "runs=$RUNS"
  echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
} >"$T/machine.txt"
log "machine: $(grep -E '^(cores|model|load_start)=' "$T/machine.txt" | tr '\n' ' ')"

# ---- certificates: one device CA and device; keylinkd's server certificate for both -----
cd "$T" || exit 1
openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -subj "/CN=keylink bench CA" -days 30 -out ca.pem \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out dev.key 2>/dev/null
openssl req -new -key dev.key -subj "/CN=bench-device" -out dev.csr 2>/dev/null
openssl x509 -req -in dev.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -out dev.pem 2>/dev/null
chmod 600 ca.key dev.key

KDPID=""; MQPID=""
start_keylinkd() {
  # shellcheck disable=SC2086 # KD_EXTRA: extra flags, word-split on purpose
  "$BIN/keylinkd" --data-dir "$T/kd" --api 127.0.0.1:0 --listen 127.0.0.1:0 ${KD_EXTRA:-} >"$T/kd.log" 2>&1 &
  KDPID=$!; PIDS="$PIDS $KDPID"
  for _ in $(seq 100); do grep -q "control API on" "$T/kd.log" && break; sleep 0.1; done
  KD_PORT=$(sed -n 's|.*MQTT over TLS on 127.0.0.1:\([0-9]*\).*|\1|p' "$T/kd.log" | tail -1)
  KD_API=$(sed -n 's|.*control API on http://127.0.0.1:\([0-9]*\).*|\1|p' "$T/kd.log" | tail -1)
  [ -n "$KD_PORT" ] && [ -n "$KD_API" ] || { echo "bench: keylinkd did not start"; cat "$T/kd.log"; exit 1; }
}
stop_pid() { kill "$1" 2>/dev/null; for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done; kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
start_mosquitto() {
  MQ_PORT=$(free_port)
  cat >"$T/mosquitto.conf" <<EOF
per_listener_settings false
listener $MQ_PORT 127.0.0.1
cafile $T/ca.pem
certfile $T/kd/server.pem
keyfile $T/kd/server.key
require_certificate true
tls_version tlsv1.2
allow_anonymous true
persistence false
max_inflight_messages 16
user root
log_dest stderr
EOF
  mosquitto -c "$T/mosquitto.conf" >"$T/mq.log" 2>&1 &
  MQPID=$!; PIDS="$PIDS $MQPID"
  for _ in $(seq 50); do grep -q "Opening ipv4 listen socket" "$T/mq.log" && $PY -c "import socket; socket.create_connection(('127.0.0.1',$MQ_PORT),1)" 2>/dev/null && break; sleep 0.1; done
}
# keylinkd-openssl: keylinkd with --tls-records openssl (OpenSSL keeps every connection's
# records), to show what the record layer hand-off saves
restart() { # broker: a fresh process (memory figures start from its own baseline)
  case $1 in
  keylinkd) stop_pid "$KDPID"; KD_EXTRA=""; start_keylinkd ;;
  keylinkd-openssl) stop_pid "$KDPID"; KD_EXTRA="--tls-records openssl"; start_keylinkd ;;
  *) stop_pid "$MQPID"; start_mosquitto ;;
  esac
}
bpid() { case $1 in keylinkd*) echo "$KDPID" ;; *) echo "$MQPID" ;; esac; }
bport() { case $1 in keylinkd*) echo "$KD_PORT" ;; *) echo "$MQ_PORT" ;; esac; }

start_keylinkd
export KEYLINK_ENDPOINT_URL=http://127.0.0.1:$KD_API KEYLINK_TOKEN=$(cat "$T/kd/admin-token")
iot() { "$BIN/keylink" iot "$@"; }
code=$(iot get-registration-code --output text)
openssl ecparam -name prime256v1 -genkey -noout -out v.key 2>/dev/null
openssl req -new -key v.key -subj "/CN=$code" -out v.csr 2>/dev/null
openssl x509 -req -in v.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 5 -out v.pem 2>/dev/null
iot register-ca-certificate --ca-certificate file://ca.pem --verification-certificate file://v.pem --set-as-active >/dev/null || exit 1
arn=$(iot register-certificate --certificate-pem file://dev.pem --status ACTIVE | $PY -c 'import json,sys; print(json.load(sys.stdin)["certificateArn"])') || exit 1
iot create-thing --thing-name bench-device >/dev/null
iot attach-thing-principal --thing-name bench-device --principal "$arn" >/dev/null
echo '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}' >pol.json
iot create-policy --policy-name bench-all --policy-document file://pol.json >/dev/null
iot attach-policy --policy-name bench-all --target "$arn" >/dev/null || exit 1
start_mosquitto
LG=("$BIN/kl-loadgen")
LGARGS=(--ca "$T/kd/server-root-ca.pem" --cert "$T/dev.pem" --key "$T/dev.key")
log "keylinkd (pid $KDPID, port $KD_PORT) and mosquitto (pid $MQPID, port $MQ_PORT) are up"

# ---- physical limit: openssl speed, one core -------------------------------------------
want speed && for r in $(seq "$RUNS"); do
  openssl speed -seconds 1 -mr ecdsap256 ecdhp256 2>/dev/null >"$T/speed.$r"
  # +F4:k:bits:sign/s:verify/s   +F5:k:bits:ecdh/s:...
  rec speed openssl sign_per_s "$r" "$(awk -F: '/^\+F4:/ {print $4}' "$T/speed.$r")"
  rec speed openssl verify_per_s "$r" "$(awk -F: '/^\+F4:/ {print $5}' "$T/speed.$r")"
  rec speed openssl ecdh_per_s "$r" "$(awk -F: '/^\+F5:/ {print $4}' "$T/speed.$r")"
done
log "openssl speed done"

# ---- handshakes: 2 generator processes x 16 handshakes in flight, HS_SECS each ----------
hs_round() { # broker run
  local b=$1 r=$2 port pid c0 c1 t0 t1 n=0 e=0 i
  port=$(bport "$b"); pid=$(bpid "$b")
  c0=$(cpu "$pid"); t0=$(date +%s.%N)
  for i in 1 2; do
    timeout $((HS_SECS + 20)) "${LG[@]}" hs --port "$port" "${LGARGS[@]}" --conns 16 --seconds "$HS_SECS" --id "hs$i" >"$T/hs.$i" 2>"$T/hs.$i.err" &
  done
  wait_lg
  t1=$(date +%s.%N); c1=$(cpu "$pid")
  for i in 1 2; do
    n=$((n + $(sed -n 's/.*handshakes=\([0-9]*\).*/\1/p' "$T/hs.$i"))); e=$((e + $(sed -n 's/.*errors=\([0-9]*\).*/\1/p' "$T/hs.$i")))
  done
  local rate cpums p50
  rate=$($PY -c "print('%.1f' % ($n / $HS_SECS))")
  cpums=$($PY -c "print('%.4f' % (($c1 - $c0) * 1000.0 / $HZ / max($n, 1)))")
  p50=$(sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p' "$T/hs.1")
  rec handshake "$b" rate "$r" "$rate"; rec handshake "$b" cpu_ms "$r" "$cpums"
  rec handshake "$b" errors "$r" "$e"; rec handshake "$b" p50_ms "$r" "$p50"
  log "handshakes $b run $r: $rate/s, $cpums ms CPU each, $e errors"
}
wait_lg() { local j; for j in $(jobs -p); do case " $PIDS " in *" $j "*) ;; *) wait "$j" 2>/dev/null ;; esac; done; }
want hs && for r in $(seq "$RUNS"); do
  hs_round keylinkd "$r"; hs_round mosquitto "$r"
done
if want hs; then # what the record hand-off costs a handshake: the same with OpenSSL's records
  restart keylinkd-openssl
  for r in $(seq "$RUNS"); do hs_round keylinkd-openssl "$r"; done
  restart keylinkd
fi

if [ "${BENCH_PROFILE:-1}" = 1 ] && command -v perf >/dev/null; then
  # where each broker's handshake CPU goes: inclusive shares of the OpenSSL entry points
  : >"$OUT/profile.txt"
  for b in keylinkd mosquitto; do
    log "profiling $b's handshakes (perf, dwarf call graphs)"
    timeout 30 "${LG[@]}" hs --port "$(bport "$b")" "${LGARGS[@]}" --conns 16 --seconds 9 --id prof >/dev/null 2>&1 &
    sleep 1
    timeout 20 perf record -q -F 999 --call-graph dwarf,16384 -p "$(bpid "$b")" -o "$T/$b.perf" -- sleep 6 >/dev/null 2>&1
    wait_lg
    perf report -i "$T/$b.perf" --children --sort symbol --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' >"$T/$b.prof"
    perf report -i "$T/$b.perf" --no-children --sort dso --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' >"$T/$b.dso"
    {
      echo "== $b: inclusive share of samples (perf record -F 999 --call-graph dwarf, 6 s of handshakes)"
      awk '{print $1, $4}' "$T/$b.prof" | grep -E ' (ASN1_item_d2i_ex|OSSL_DECODER_CTX_new_for_pkey|EC_POINT_mul|EVP_PKEY_generate|EVP_PKEY_derive|EVP_PKEY_derive_set_peer_ex|EVP_DigestSignFinal|EVP_DigestVerifyFinal|X509_verify_cert|EC_GROUP_new_by_curve_name_ex|SSL_free|SSL_new|SSL_do_handshake|SSL_accept|SSL_read|SSL_write|kl_auth_certificate|kl_tls_verify_cb|kl_conn_handoff|kl_trec_from_ssl|EVP_KDF_derive|kl_handle_connect|kl_event_presence|conn_free|accept_all|malloc|_int_malloc|_int_free|cfree@GLIBC_2.2.5|__GI___libc_write|epoll_wait|accept4|__close)$' | awk '!seen[$2]++ {printf "%8s  %s\n", $1, $2}'
      echo "-- by library (self):"
      awk '{printf "%8s  %s\n", $1, $2}' "$T/$b.dso" | head -8
      echo
    } >>"$OUT/profile.txt"
  done
fi

# ---- QoS 0 / QoS 1 fan-in: 8 publishers -> 1 subscriber (bench/#), 64 messages in flight -----
want fanin && for r in $(seq "$RUNS"); do
  for q in 0 1; do for s in 64 1024; do for b in keylinkd mosquitto; do
    line=$(timeout $((PUB_SECS + 70)) "${LG[@]}" pub --port "$(bport "$b")" "${LGARGS[@]}" --pubs 8 --qos "$q" --size "$s" --seconds "$PUB_SECS" --window 64 --id "pub$b$r" 2>"$T/pub.err")
    rate=$(echo "$line" | sed -n 's/.*rate=\([0-9.]*\).*/\1/p')
    rec "fanin_q${q}_${s}" "$b" rate "$r" "${rate:-0}"
    rec "fanin_q${q}_${s}" "$b" p50_us "$r" "$(echo "$line" | sed -n 's/.*p50_us=\([0-9.]*\).*/\1/p')"
    rec "fanin_q${q}_${s}" "$b" p99_us "$r" "$(echo "$line" | sed -n 's/.*p99_us=\([0-9.]*\).*/\1/p')"
    rec "fanin_q${q}_${s}" "$b" lost "$r" "$(echo "$line" | sed -n 's/.*lost=\([0-9]*\).*/\1/p')"
    log "fan-in QoS $q ${s} B $b run $r: ${line:-failed: $(tail -1 "$T/pub.err")}"
  done; done; done
done
# ---- provisioning: init_tls_iot --batch against openssl on the command line --------------
export KEYLINK_CA_PASSPHRASE="bench-passphrase-$$"
"$BIN/make_ca_cert" --out-dir "$T/pca" >/dev/null </dev/null || { echo "bench: make_ca_cert failed"; exit 1; }
PCA=$T/pca/cert_CA.pem; PCK=$T/pca/privkey_server_ECDSA_secp256r1_secp256r1.pem
want prov && for r in $(seq "$RUNS"); do
  rm -rf "$T/prov"; mkdir -p "$T/prov"
  { echo "thing,device"; for i in $(seq "$PROV_N"); do echo "DEV-$i,mem:$T/prov/chip$i"; done; } >"$T/prov/m.csv"
  t0=$(date +%s.%N)
  "$BIN/init_tls_iot" --batch "$T/prov/m.csv" --ca-cert "$PCA" --ca-key "$PCK" --root "$T/kd/server-root-ca.pem" \
    --out-dir "$T/prov/out" </dev/null >"$T/prov/log" 2>&1 || { echo "bench: init_tls_iot --batch failed"; tail -3 "$T/prov/log"; }
  t1=$(date +%s.%N)
  rec provisioning batch devices_per_s "$r" "$($PY -c "print('%.2f' % ($PROV_N / ($t1 - $t0)))")"
  # the same work with the openssl command line: a key and a certificate per device (the CA
  # key decrypted once, as a script would)
  rm -rf "$T/provsh"; mkdir -p "$T/provsh"
  t0=$(date +%s.%N)
  openssl pkey -in "$PCK" -passin env:KEYLINK_CA_PASSPHRASE -out "$T/provsh/ca.key" 2>/dev/null
  for i in $(seq "$PROV_N"); do
    openssl ecparam -name prime256v1 -genkey -noout -out "$T/provsh/$i.key" 2>/dev/null
    openssl req -new -key "$T/provsh/$i.key" -subj "/CN=DEV-$i" -out "$T/provsh/$i.csr" 2>/dev/null
    openssl x509 -req -in "$T/provsh/$i.csr" -CA "$PCA" -CAkey "$T/provsh/ca.key" -set_serial "$((1000 + i))" -days 365 -out "$T/provsh/$i.pem" 2>/dev/null
  done
  t1=$(date +%s.%N)
  rec provisioning openssl_cli devices_per_s "$r" "$($PY -c "print('%.2f' % ($PROV_N / ($t1 - $t0)))")"
done
log "provisioning done"

# ---- chip overhead: kl_se_* over mem: and unix: against OpenSSL in the same process ------
"$BIN/keylink-se" --state "$T/se-state" --socket "$T/se.sock" >"$T/se.log" 2>&1 &
SEPID=$!; PIDS="$PIDS $SEPID"
for _ in $(seq 50); do [ -S "$T/se.sock" ] && break; sleep 0.1; done
want chip && for r in $(seq "$RUNS"); do
  for tr in mem unix; do
    if [ $tr = mem ]; then uri="mem:$T/chip-mem"; else uri="unix:$T/se.sock"; fi
    timeout 60 "$BIN/kl-bench-chip" "$uri" 0.3 >"$T/chip.out" 2>"$T/chip.err" || { echo "bench: kl-bench-chip $tr: $(cat "$T/chip.err")"; }
    while read -r line; do
      op=$(echo "$line" | sed -n 's/^op=\([a-z0-9_]*\).*/\1/p'); [ -n "$op" ] || continue
      rec chip "$tr" "$op" "$r" "$(echo "$line" | sed -n 's/.* chip=\([0-9.]*\).*/\1/p')"
      rec chip "openssl_$tr" "$op" "$r" "$(echo "$line" | sed -n 's/.* openssl=\([0-9.]*\).*/\1/p')"
    done <"$T/chip.out"
  done
done
stop_pid "$SEPID"
log "chip overhead done"

# ---- device footprint (scripts/device-size.sh by the device-mqtt helper) -----------------
if ! want size; then
  echo "(not measured in this run)" >"$T/device-size.txt"
elif [ -x "$SRC/scripts/device-size.sh" ]; then
  (cd "$SRC" && timeout 300 scripts/device-size.sh) >"$T/device-size.txt" 2>&1 || echo "(device-size.sh failed)" >>"$T/device-size.txt"
else
  echo "scripts/device-size.sh is not in this tree yet" >"$T/device-size.txt"
fi

# ---- idle connections and memory ------------------------------------------------------------
idle_round() { # broker run
  local b=$1 r=$2 pid port base prev=0 lvl k up need chunk
  restart "$b"; pid=$(bpid "$b"); port=$(bport "$b"); sleep 0.5
  base=$(rss "$pid"); rec idle "$b" rss_base_kib "$r" "$base"
  k=0
  for lvl in $LEVELS; do
    need=$((lvl - prev))
    local first=$((k + 1)) j
    # at least 2 generator processes per level (both cores), at most 5,000 connections each
    local nproc=$(((need + 4999) / 5000)); [ "$nproc" -lt 2 ] && nproc=2
    local per=$(((need + nproc - 1) / nproc))
    while [ "$need" -gt 0 ]; do
      chunk=$((need > per ? per : need)); k=$((k + 1))
      "${LG[@]}" idle --port "$port" "${LGARGS[@]}" --conns "$chunk" --hold 600 --id "idle$k" >"$T/idle.$k" 2>"$T/idle.$k.err" &
      IDLE_PIDS="$IDLE_PIDS $!"
      need=$((need - chunk))
    done
    for j in $(seq "$first" "$k"); do # the generators of this level ramp up side by side
      for _ in $(seq 1500); do grep -q '^up=' "$T/idle.$j" && break; sleep 0.1; done
    done
    sleep 2 # steady state: keylinkd gives freed handshake memory back 0.5 s after a burst
    up=0; for f in "$T"/idle.[0-9]*; do case $f in *.err) ;; *) up=$((up + $(sed -n 's/^up=\([0-9]*\).*/\1/p' "$f"))) ;; esac; done
    local now; now=$(rss "$pid")
    rec idle "$b" "held_$lvl" "$r" "$up"; rec idle "$b" "rss_kib_$lvl" "$r" "$now"
    rec idle "$b" "kib_per_conn_$lvl" "$r" "$($PY -c "print('%.2f' % (($now - $base) / max($up, 1)))")"
    log "idle $b run $r: $up of $lvl held, RSS $now KiB (base $base)"
    prev=$lvl
  done
  for p in $IDLE_PIDS; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  IDLE_PIDS=""; rm -f "$T"/idle.[0-9]*
}
IDLE_PIDS=""
# the slowest part goes last: a run starts only if its estimate (the first run's time) fits
# in BENCH_BUDGET seconds from the start (`make bench` must stay under 15 minutes)
if want idle; then
  [ -n "$MQPID" ] || start_mosquitto
  for r in $(seq "$RUNS"); do
    t_start=$(date +%s)
    if [ "$r" -gt 1 ] && [ $((t_start - T0 + IDLE_RUN_S)) -gt "$BUDGET" ]; then
      log "idle: run $r skipped, it would end past the ${BUDGET} s budget"; break
    fi
    idle_round keylinkd "$r"; idle_round mosquitto "$r"; idle_round keylinkd-openssl "$r"
    IDLE_RUN_S=$(($(date +%s) - t_start))
  done
fi


echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$T/machine.txt"
echo "seconds=$(($(date +%s) - T0))" >>"$T/machine.txt"
mkdir -p "$OUT"
$PY "$SRC/bench/report.py" "$T/raw.tsv" "$T/machine.txt" "$T/device-size.txt" "$OUT" || exit 1
cp "$T/raw.tsv" "$OUT/raw.tsv"
log "done in $(($(date +%s) - T0)) s: $OUT/bench.md, bench.json, bench.png"

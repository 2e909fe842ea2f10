#!/usr/bin/env bash
# Device-side benchmark (not a test): TLS 1.2 handshakes through the chip model over mem:
# (in-process) and unix: (the keylink-se daemon), chip commands and bytes per handshake, a whole
# `keylink device pub` at QoS 1 against mosquitto, and the Cortex-M4 sizes of the device library
# beside published coreMQTT and Mbed TLS figures. Writes bench/results/device.md.
#   bench/bench_device.sh [BUILD_DIR]   (default: build/ in the checkout; built if missing)
#   N=20 handshakes per transport by default.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build}
N=${N:-20}
OUT=$SRC/bench/results/device.md
if [ ! -x "$BUILD/bin/keylink" ]; then
  cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && cmake --build "$BUILD" -j2 >/dev/null
fi
BIN=$BUILD/bin
T=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_for() { local i=0; while ! "$@" >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 100 ] && return 1; sleep 0.1; done; }
stats() { # numbers on stdin -> "median p90 min max"
  python3 -c 'import sys,statistics as s;v=sorted(float(x) for x in sys.stdin.read().split());n=len(v)
print("%.1f %.1f %.1f %.1f"%(s.median(v),v[min(n-1,int(0.9*n))],v[0],v[-1]))'; }
export KEYLINK_CA_PASSPHRASE="bench-pass-$RANDOM-long-enough"

# server PKI (openssl), the device CA and two provisioned chips: one in-process, one daemon
openssl ecparam -name prime256v1 -genkey -noout -out "$T/sroot.key" 2>/dev/null
openssl req -x509 -new -key "$T/sroot.key" -subj "/CN=Bench Root" -days 30 -out "$T/sroot.pem" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$T/srv.key" 2>/dev/null
openssl req -new -key "$T/srv.key" -subj "/CN=localhost" -out "$T/srv.csr" 2>/dev/null
printf "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n" >"$T/ext"
openssl x509 -req -in "$T/srv.csr" -CA "$T/sroot.pem" -CAkey "$T/sroot.key" -CAcreateserial -days 30 \
  -extfile "$T/ext" -out "$T/srv.pem" 2>/dev/null
"$BIN/make_ca_cert" --out-dir "$T/ca" >/dev/null 2>&1 </dev/null
CAKEY=$T/ca/privkey_server_ECDSA_secp256r1_secp256r1.pem
sock=$T/se.sock
"$BIN/keylink-se" --state "$T/unixchip" --socket "$sock" --verbose >"$T/se.log" 2>&1 & PIDS+=($!)
wait_for test -S "$sock"
"$BIN/init_tls_iot" --device "unix:$sock" --ca-cert "$T/ca/cert_CA.pem" --ca-key "$CAKEY" --thing BENCH \
  --root "$T/sroot.pem" --out-dir "$T/dev1" >/dev/null 2>&1 </dev/null
"$BIN/init_tls_iot" --device "mem:$T/memchip" --ca-cert "$T/ca/cert_CA.pem" --ca-key "$CAKEY" --thing BENCH \
  --root "$T/sroot.pem" --out-dir "$T/dev2" >/dev/null 2>&1 </dev/null

# 1) handshakes against openssl s_server (mTLS, GCM suite, EMS)
p=$(port)
openssl s_server -quiet -tls1_2 -accept "$p" -cert "$T/srv.pem" -key "$T/srv.key" -Verify 1 \
  -CAfile "$T/ca/cert_CA.pem" -rev >/dev/null 2>&1 & PIDS+=($!)
wait_for python3 -c "import socket;socket.create_connection(('127.0.0.1',$p))"
declare -A HS
for dev in "mem:$T/memchip" "unix:$sock"; do
  : >"$T/hs.txt"
  for i in $(seq "$N"); do
    echo x | "$BIN/keylink" device tls --device "$dev" --endpoint "localhost:$p" --idle-timeout 0.2 2>"$T/tls.err" >/dev/null
    sed -n 's/.*+ handshake \([0-9]*\) ms.*/\1/p' "$T/tls.err" >>"$T/hs.txt"
  done
  HS[${dev%%:*}]=$(stats <"$T/hs.txt")
done
# chip commands and payload bytes of one handshake (+ one record each way), from the daemon log
: >"$T/se.log"
echo x | "$BIN/keylink" device tls --device "unix:$sock" --endpoint "localhost:$p" --idle-timeout 0.2 >/dev/null 2>&1
sleep 0.2
read -r ncmd reqb respb < <(sed -n 's/.* -> .*(request \([0-9]*\) bytes, response \([0-9]*\) bytes).*/\1 \2/p' "$T/se.log" \
  | awk '{n++; q+=$1; r+=$2} END{print n+0, q+0, r+0}')
cmds=$(sed -n 's/.*host #[0-9]*: \([A-Z_]*\) -> .*/\1/p' "$T/se.log" | sort | uniq -c | sort -rn | awk '{printf "%s %s, ", $2, $1}' | sed 's/, $//')

# 2) a whole `keylink device pub` (chip open, TCP, TLS, CONNECT, PUBLISH QoS 1, PUBACK, DISCONNECT)
mp=$(port)
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
mosquitto -c "$T/m.conf" >"$T/m.log" 2>&1 & PIDS+=($!)
wait_for python3 -c "import socket;socket.create_connection(('127.0.0.1',$mp))"
declare -A PUB
for dev in "mem:$T/memchip" "unix:$sock"; do
  : >"$T/pub.txt"
  for i in $(seq 10); do
    t0=$(date +%s%N)
    "$BIN/keylink" device pub --device "$dev" --endpoint "localhost:$mp" --thing BENCH --topic bench/t \
      --message m --qos 1 >/dev/null 2>&1
    echo $(( ($(date +%s%N) - t0) / 1000000 )) >>"$T/pub.txt"
  done
  PUB[${dev%%:*}]=$(stats <"$T/pub.txt")
done

# 3) sizes on a Cortex-M4
SIZES=$("$SRC/scripts/device-size.sh" 2>&1) || SIZES="(scripts/device-size.sh failed: $SIZES)"

line() { local l=$1; set -- $2; echo "| $l | $1 | $2 | $3 | $4 |"; }
{
  echo "# Device benchmark"
  echo
  echo "Generated by \`bench/bench_device.sh\` on $(date -u +%Y-%m-%d) ($(nproc) cores, $(uname -m));"
  echo "$N handshakes per transport. Times are wall clock on this machine, where the chip is a"
  echo "software model: they show the cost of the protocol and the chip link, not of a real MAXQ1065"
  echo "(whose own ECC and link times come on top)."
  echo
  echo "## TLS 1.2 handshake through the chip (mTLS, ECDHE-ECDSA-AES128-GCM-SHA256, EMS) against openssl s_server"
  echo
  echo "| chip link | median ms | p90 ms | min ms | max ms |"
  echo "|---|---:|---:|---:|---:|"
  line "mem: (model in-process)" "${HS[mem]}"
  line "unix: (keylink-se daemon)" "${HS[unix]}"
  echo
  echo "One handshake plus one application record each way and close_notify takes **$ncmd chip"
  echo "commands**, **$reqb bytes** of request payload and **$respb bytes** of response payload"
  echo "(frames add 6 bytes each way; counted from \`keylink-se --verbose\`):"
  echo "$cmds."
  echo
  echo "## A whole \`keylink device pub --qos 1\` against mosquitto (require_certificate)"
  echo
  echo "Process start, chip open, TCP, TLS through the chip, CONNECT, PUBLISH, PUBACK, DISCONNECT; 10 runs."
  echo
  echo "| chip link | median ms | p90 ms | min ms | max ms |"
  echo "|---|---:|---:|---:|---:|"
  line "mem:" "${PUB[mem]}"
  line "unix:" "${PUB[unix]}"
  echo
  echo "## Cortex-M4 footprint (scripts/device-size.sh)"
  echo
  echo "$SIZES"
  echo
  echo "### Beside published figures"
  echo
  echo "| library | what | flash | source |"
  echo "|---|---|---:|---|"
  echo "| coreMQTT | MQTT 3.1.1 client (core_mqtt.c 3.4K, core_mqtt_state.c 1.3K, core_mqtt_serializer.c 2.2K), GCC for ARM Cortex-M, -Os | 6.9 KB | FreeRTOS coreMQTT library page, \"Code Size of coreMQTT\": https://docs.aws.amazon.com/freertos/latest/userguide/coremqtt.html |"
  echo "| Mbed TLS | TLS 1.2 client with ECDHE-ECDSA and software P-256, AES-GCM, SHA-256, X.509 | not published as one number; the project measures its configurations (default, suite-b, ccm-psk, thread) for Cortex-M3/M4 with scripts/footprint.sh | https://github.com/Mbed-TLS/mbedtls (scripts/footprint.sh), and \"Reducing Mbed TLS memory and storage footprint\": https://mbed-tls.readthedocs.io/en/latest/kb/how-to/reduce-polarssl-memory-and-storage-footprint/ |"
  echo "| Mbed TLS (third-party measurement) | peak RAM of a TLS 1.2 handshake with certificate authentication | 40-50 KB RAM | https://applied-ee.github.io/embedded/docs/networking/protocol-selection/embedded-tls-dtls/ |"
  echo
  echo "keylink's MQTT client is larger than coreMQTT's because it also speaks MQTT 5 (properties with"
  echo "their per-packet rules, AUTH, reason codes with their names for people: about 1.5 KB of strings)."
  echo "Its TLS client carries no cryptography at all: key exchange, signatures, the PRF and the record"
  echo "cipher run in the secure element, which is why TLS + MQTT + JWT + chip driver stay near 40 KB of"
  echo "flash with no static RAM, while a software TLS stack needs its bignum/ECC, AES, SHA and X.509"
  echo "code on the MCU and tens of KB of RAM during the handshake."
} >"$OUT"
cat "$OUT"

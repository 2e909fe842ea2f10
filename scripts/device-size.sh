#!/usr/bin/env bash
# Builds the device library (host/) for a Cortex-M4 (-Os -mthumb -mcpu=cortex-m4, Debian's
# gcc-arm-none-eabi + newlib, cmake/arm-none-eabi.cmake, -DKL_DEVICE_ONLY=ON) and prints, as a
# Markdown table, the flash (.text+.data) and static RAM (.data+.bss) of each part: TLS client,
# MQTT client, JWT, chip driver, and the optional secure channel; then the RAM the caller owns
# (struct sizes and minimum buffers on that target).
#   scripts/device-size.sh [BUILD_DIR]      (default: a temporary directory, removed after)
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
for t in arm-none-eabi-gcc arm-none-eabi-size arm-none-eabi-nm; do
  command -v $t >/dev/null || { echo "$t missing: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi" >&2; exit 1; }
done
B=${1:-}
tmp=""
if [ -z "$B" ]; then tmp=$(mktemp -d); B=$tmp; fi
trap '[ -n "$tmp" ] && rm -rf "$tmp"' EXIT
cmake -S "$SRC" -B "$B" -DCMAKE_TOOLCHAIN_FILE="$SRC/cmake/arm-none-eabi.cmake" -DKL_DEVICE_ONLY=ON \
  -DCMAKE_BUILD_TYPE=MinSizeRel >"$B/.configure.log" 2>&1 || { cat "$B/.configure.log" >&2; exit 1; }
cmake --build "$B" -j2 >"$B/.build.log" 2>&1 || { tail -20 "$B/.build.log" >&2; exit 1; }
LIB=$B/host/libkeylink.a
[ -f "$LIB" ] || { echo "no $LIB" >&2; exit 1; }

part_of() { # object file -> part name
  case "$1" in
    tls_*|se_tls.*) echo "TLS 1.2 client (crypto in the chip)" ;;
    mqtt_*) echo "MQTT 3.1.1/5 client" ;;
    jwt_*|base64.*|hcx_sha256.*) echo "JWT/JWS ES256 (+ host SHA-256)" ;;
    se_*|frame.*|status.*) echo "chip driver (commands, frames)" ;;
    channel*|hcx_*) echo "secure channel (optional)" ;;
    *) echo "other" ;;
  esac
}
declare -A TX DA BS
while read -r text data bss name; do
  [[ "$name" == *.obj || "$name" == *.o ]] || continue
  p=$(part_of "$(basename "$name")")
  TX[$p]=$(( ${TX[$p]:-0} + text )); DA[$p]=$(( ${DA[$p]:-0} + data )); BS[$p]=$(( ${BS[$p]:-0} + bss ))
done < <(arm-none-eabi-size "$LIB" | awk 'NR > 1 {print $1, $2, $3, $6}')

echo "| part | flash (.text+.data) | static RAM (.data+.bss) |"
echo "|---|---:|---:|"
tf=0; tr=0; core_f=0; core_r=0
for p in "TLS 1.2 client (crypto in the chip)" "MQTT 3.1.1/5 client" "JWT/JWS ES256 (+ host SHA-256)" \
         "chip driver (commands, frames)" "secure channel (optional)" "other"; do
  [ -n "${TX[$p]:-}" ] || continue
  f=$(( TX[$p] + DA[$p] )); r=$(( DA[$p] + BS[$p] ))
  [ $f -eq 0 ] && [ $r -eq 0 ] && continue
  echo "| $p | $f | $r |"
  tf=$((tf + f)); tr=$((tr + r))
  case "$p" in secure*|other) ;; *) core_f=$((core_f + f)); core_r=$((core_r + r)) ;; esac
done
echo "| **TLS + MQTT + JWT + chip driver** | **$core_f** | **$core_r** |"
echo "| everything in libkeylink | $tf | $tr |"

# caller-owned memory: struct sizes on the target, read back as symbol sizes
cat >"$B/probe.c" <<'PROBE'
#include "keylink/jwt.h"
#include "keylink/mqtt.h"
#include "keylink/se.h"
#include "keylink/tls.h"
struct kl_se probe_kl_se;
struct kl_tls probe_kl_tls;
struct kl_mq_client probe_kl_mq_client;
unsigned char probe_tls_rx_min[KL_TLS_RX_MIN];
unsigned char probe_tls_hs_min[KL_TLS_HS_MIN];
PROBE
arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -Os -fno-common -I"$SRC/include" -c "$B/probe.c" -o "$B/probe.o"
echo
echo "| caller-owned RAM (Cortex-M4) | bytes |"
echo "|---|---:|"
arm-none-eabi-nm -S "$B/probe.o" | while read -r _ size _ sym; do
  case "$sym" in
    probe_kl_se) d="struct kl_se (frame buffers for the chip link)" ;;
    probe_kl_tls) d="struct kl_tls" ;;
    probe_kl_mq_client) d="struct kl_mq_client" ;;
    probe_tls_rx_min) d="TLS record buffer, minimum (KL_TLS_RX_MIN)" ;;
    probe_tls_hs_min) d="TLS handshake buffer, minimum (KL_TLS_HS_MIN)" ;;
    *) continue ;;
  esac
  echo "| $d | $((16#$size)) |"
done
echo
echo "Built with $(arm-none-eabi-gcc --version | head -1), -Os -mthumb -mcpu=cortex-m4, newlib; sizes from arm-none-eabi-size (text includes read-only data)."

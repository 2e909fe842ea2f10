#!/bin/sh
# Installs the Debian packages a make target needs. Checks with dpkg; installs
# with apt-get when root, otherwise prints the exact command and fails.
# usage: scripts/deps.sh build|test|demo|bench
set -eu
BUILD="build-essential cmake pkg-config libssl-dev libsqlite3-dev libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev openssl ca-certificates"
TEST="$BUILD mosquitto mosquitto-clients python3 python3-cryptography python3-jwt python3-paho-mqtt libclang-rt-14-dev"
DEMO="$BUILD mosquitto-clients"
BENCH="$TEST gnuplot-nox linux-perf valgrind gcc-arm-none-eabi libnewlib-arm-none-eabi"
case "${1:-build}" in
  build) want=$BUILD ;;
  test) want=$TEST ;;
  demo) want=$DEMO ;;
  bench) want=$BENCH ;;
  *) echo "deps.sh: unknown set '$1' (build|test|demo|bench)" >&2; exit 2 ;;
esac
missing=""
for p in $want; do
  s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$s" in *"ok installed"*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  echo "deps: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing
else
  echo "deps: missing Debian packages:$missing" >&2
  echo "deps: run as root:  apt-get update && apt-get install -y$missing" >&2
  exit 1
fi

#!/usr/bin/env bash
# The chip tour: the secure element model alone. Starts keylink-se in a temp dir on a temp
# socket, runs `keylink se` commands (each printed before it runs), checks each outcome,
# stops the daemon and removes the temp dir (unless --keep). `make demo` runs the main job
# (scripts/demo.sh); this is the shorter look at the chip by itself.
# usage: scripts/chip-tour.sh [--keep]
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${KL_BIN_DIR:-$ROOT/build/bin}
KEEP=0
for a in "$@"; do
  case "$a" in
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown option $a (try --help)" >&2; exit 2 ;;
  esac
done
for p in keylink keylink-se; do
  [ -x "$BIN/$p" ] || { echo "demo: $BIN/$p is missing; run 'make demo' (it builds first)" >&2; exit 1; }
done
T=$(mktemp -d /tmp/keylink-chip-tour.XXXXXX)
SOCK=$T/se.sock
PID=
finish() {
  local rc=$?
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill "$PID"; wait "$PID" 2>/dev/null; fi
  if [ $KEEP -eq 1 ]; then echo "demo: kept $T"; else rm -rf "$T"; fi
  exit $rc
}
trap finish EXIT INT TERM
if [ -t 1 ]; then B=$'\033[1m' N=$'\033[0m'; else B= N=; fi
step() { printf '\n%s$ %s%s\n' "$B" "$*" "$N"; }
die() { echo "chip tour: FAILED: $*" >&2; exit 1; }
# run CMD...: print it, run it, keep its output in $OUT, fail the demo if it fails
run() { step "$*"; OUT=$("$@" 2>&1); local rc=$?; printf '%s\n' "$OUT"; [ $rc -eq 0 ] || die "'$*' exited $rc"; }

step "keylink-se --state $T/state --socket $SOCK &"
"$BIN/keylink-se" --state "$T/state" --socket "$SOCK" 2>"$T/se.log" &
PID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || die "keylink-se did not start: $(cat "$T/se.log")"
head -1 "$T/se.log"
export KEYLINK_SE="unix:$SOCK"
echo "(KEYLINK_SE=$KEYLINK_SE for the commands below)"

run "$BIN/keylink" se status
echo "$OUT" | grep -q "lifecycle *DELIVERY" || die "a fresh chip should be in DELIVERY"
run "$BIN/keylink" se status --json
total=$(printf '%s' "$OUT" | sed -n 's/.*"total_bytes": \([0-9]*\).*/\1/p')
[ "$total" = 8192 ] || die "total_bytes is '$total', not 8192"

run "$BIN/keylink" se genkey 0x1004 --create --usage sign
echo "$OUT" | grep -q "BEGIN PUBLIC KEY" || die "genkey printed no public key"
run "$BIN/keylink" se pubkey 0x1004
printf '%s\n' "$OUT" >"$T/device_pub.pem"
if command -v openssl >/dev/null; then
  run openssl pkey -pubin -in "$T/device_pub.pem" -noout -text
  echo "$OUT" | grep -q prime256v1 || die "the public key is not P-256"
fi

printf 'hello from the device' >"$T/msg.txt"
run "$BIN/keylink" se sign 0x1004 --in "$T/msg.txt"
SIG=$OUT
run "$BIN/keylink" se verify 0x1004 --sig "$SIG" --in "$T/msg.txt"
step "$BIN/keylink se verify 0x1004 --sig ... --hex 00   (a different message: must fail)"
if "$BIN/keylink" se verify 0x1004 --sig "$SIG" --hex 00; then die "a wrong message verified"; fi
if command -v openssl >/dev/null; then
  run "$BIN/keylink" se sign 0x1004 --in "$T/msg.txt" --der --out "$T/msg.sig"
  run openssl dgst -sha256 -verify "$T/device_pub.pem" -signature "$T/msg.sig" "$T/msg.txt"
fi

run "$BIN/keylink" se channel pin --out "$T/chip_identity.pem"
run "$BIN/keylink" se --pin "$T/chip_identity.pem" status --json
echo "$OUT" | grep -q '"channel_open": true' || die "the secure channel did not open"

run "$BIN/keylink" se create 0x2000 --type data --size 64
run "$BIN/keylink" se --pin "$T/chip_identity.pem" write 0x2000 --hex 6b65796c696e6b
run "$BIN/keylink" se read 0x2000
[ "$OUT" = 6b65796c696e6b ] || die "read back '$OUT'"
run "$BIN/keylink" se random 16
run "$BIN/keylink" se list
echo "$OUT" | grep -q "^0x1004 *key-pair" || die "the key pair is not listed"
echo "$OUT" | grep -q "^0x2000 *data" || die "the data object is not listed"

step "kill $PID   (SIGTERM: clean stop, state kept)"
kill "$PID"; wait "$PID"; rc=$?; PID=
[ $rc -eq 0 ] || die "keylink-se exited $rc"
[ ! -e "$SOCK" ] || die "socket left behind"
step "keylink-se --state $T/state --socket $SOCK &   (the same chip again)"
"$BIN/keylink-se" --state "$T/state" --socket "$SOCK" 2>>"$T/se.log" &
PID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
run "$BIN/keylink" se pubkey 0x1004
[ "$OUT" = "$(cat "$T/device_pub.pem")" ] || die "the key changed across a restart"

printf '\nchip tour: all steps passed\n'

#!/usr/bin/env bash
# Texts a new user follows: the chip tour names itself when it passes, the device example's
# usage says how it stops, docs/cli.md points to the right script and keeps keylinkd on
# loopback in its example, docs/mqtt.md refers to nothing outside the repository.
set -u
B=${KL_BIN_DIR:?}
S=${KL_SRC_DIR:?}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
bad() { echo "FAIL: $*"; fails=$((fails+1)); }

KL_BIN_DIR=$B "$S/scripts/chip-tour.sh" >"$T/tour.out" 2>&1 || bad "chip tour failed: $(tail -5 "$T/tour.out")"
[ "$(tail -1 "$T/tour.out")" = "chip tour: all steps passed" ] || bad "chip tour end: $(tail -1 "$T/tour.out")"
grep -q "^demo:" "$T/tour.out" && bad "the chip tour calls itself the demo"

"$B/kl-example-device" >"$T/ex.out" 2>&1
[ $? = 2 ] || bad "example without arguments: exit status"
grep -q "^usage: .*SE_URI HOST PORT THING" "$T/ex.out" && grep -q "SIGINT" "$T/ex.out" && grep -q "SIGTERM" "$T/ex.out" \
  || bad "example usage does not say how it stops: $(cat "$T/ex.out")"

grep -q "chip tour of \`make demo\`" "$S/docs/cli.md" && bad "docs/cli.md: the chip tour is not make demo"
grep -q "scripts/chip-tour.sh" "$S/docs/cli.md" || bad "docs/cli.md does not name scripts/chip-tour.sh"
grep -q "^keylinkd --data-dir kd --listen 127.0.0.1:8883 &" "$S/docs/cli.md" || bad "docs/cli.md keylinkd example listens everywhere"
grep -q "0.0.0.0:8883" "$S/docs/cli.md" || bad "docs/cli.md does not say the default listens on all interfaces"

grep -n "CLARIFICATIONS\|issue [0-9]" "$S/docs/mqtt.md" && bad "docs/mqtt.md refers to what users do not have"

[ $fails = 0 ] && echo "ok: user texts" || exit 1

#!/usr/bin/env bash
# Registry benchmark: create-thing calls per second through the control API (keep-alive
# HTTP clients, 1 and 4 connections) and bulk import rate (things + certificates per
# second), against a fresh keylinkd in a temp dir. Writes bench/results/registry.md.
# Not run by the tests. usage: bench/bench_registry.sh [BUILD_BIN_DIR]   (default build/bin)
# Environment: BENCH_SECONDS (default 5), BENCH_IMPORT_N (default 20000).
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$SRC/build/bin}
KD=$BIN/keylinkd; KL=$BIN/keylink; GEN=$BIN/kl-gen-batch
for p in "$KD" "$KL" "$GEN"; do [ -x "$p" ] || { echo "missing $p (build first)"; exit 1; }; done
SECS=${BENCH_SECONDS:-5}; N=${BENCH_IMPORT_N:-20000}
T=$(mktemp -d); KDPID=""
trap '[ -n "$KDPID" ] && kill $KDPID 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
"$KD" --data-dir "$T/kd" --api 127.0.0.1:0 --listen 127.0.0.1:0 >"$T/kd.log" 2>&1 & KDPID=$!
for i in $(seq 100); do grep -q "control API on" "$T/kd.log" && break; sleep 0.1; done
export KEYLINK_ENDPOINT_URL=http://127.0.0.1:$(sed -n 's|.*control API on http://127.0.0.1:\([0-9]*\).*|\1|p' "$T/kd.log")
export KEYLINK_TOKEN=$(cat "$T/kd/admin-token")
cpu() { awk '{print $14 + $15}' "/proc/$KDPID/stat"; }   # keylinkd CPU ticks (user+sys)
HZ=$(getconf CLK_TCK)

# create-thing: each client loops over its own names on one keep-alive connection
cat >"$T/load.py" <<'PY'
import http.client, os, sys, threading, time, urllib.parse
u = urllib.parse.urlparse(os.environ["KEYLINK_ENDPOINT_URL"])
h = {"Authorization": "Bearer " + os.environ["KEYLINK_TOKEN"], "Content-Type": "application/json"}
conns, secs, tag = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
counts = [0] * conns
def run(k):
    c = http.client.HTTPConnection(u.hostname, u.port)
    end = time.time() + secs
    i = 0
    while time.time() < end:
        c.request("POST", "/things/%s-%d-%d" % (tag, k, i), body='{"attributePayload":{"attributes":{"k":"v"}}}', headers=h)
        r = c.getresponse(); r.read()
        if r.status != 200: raise SystemExit("HTTP %d" % r.status)
        counts[k] += 1; i += 1
ts = [threading.Thread(target=run, args=(k,)) for k in range(conns)]
t0 = time.time(); [t.start() for t in ts]; [t.join() for t in ts]
print("%.0f" % (sum(counts) / (time.time() - t0)))
PY
c1=$(/usr/bin/python3 "$T/load.py" 1 "$SECS" a)
c4=$(/usr/bin/python3 "$T/load.py" 4 "$SECS" b)
r1=$(/usr/bin/python3 - <<PY
import http.client, os, time, urllib.parse
u = urllib.parse.urlparse(os.environ["KEYLINK_ENDPOINT_URL"])
h = {"Authorization": "Bearer " + os.environ["KEYLINK_TOKEN"]}
c = http.client.HTTPConnection(u.hostname, u.port); n = 0; end = time.time() + $SECS
while time.time() < end:
    c.request("GET", "/things/a-0-%d" % (n % 50), headers=h); r = c.getresponse(); r.read(); n += 1
print("%.0f" % (n / $SECS))
PY
)

# bulk import
openssl ecparam -name prime256v1 -genkey -noout -out "$T/ca.key" 2>/dev/null
openssl req -x509 -new -key "$T/ca.key" -subj "/CN=bench CA" -days 30 -out "$T/ca.pem" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in "$T/ca.key" -out "$T/ca.p8"
code=$("$KL" iot get-registration-code --output text)
openssl req -new -key "$T/ca.key" -subj "/CN=$code" -out "$T/v.csr" 2>/dev/null
openssl x509 -req -in "$T/v.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 5 -out "$T/v.pem" 2>/dev/null
"$KL" iot register-ca-certificate --ca-certificate "file://$T/ca.pem" --verification-certificate "file://$T/v.pem" --set-as-active >/dev/null
"$GEN" "$T/ca.pem" "$T/ca.p8" "$N" bulk "$T/batch.jsonl"
c0=$(cpu); t0=$(date +%s.%N)
"$KL" iot bulk-import --input "file://$T/batch.jsonl" >/dev/null
t1=$(date +%s.%N); cpu1=$(cpu)
imp=$(/usr/bin/python3 -c "print('%.0f' % ($N / ($t1 - $t0)))")
impcpu=$(/usr/bin/python3 -c "print('%.0f' % ($N / max(($cpu1 - $c0) / $HZ, 1e-9)))")
mkdir -p "$SRC/bench/results"
cat >"$SRC/bench/results/registry.md" <<MD
# Registry benchmark

\`bench/bench_registry.sh\`, $(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo ?),
$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load average at start:
$(cut -d' ' -f1-3 /proc/loadavg). keylinkd from \`$BIN\` (SQLite WAL, synchronous=FULL: every
acknowledged write is fsynced).

| measurement | result |
|---|---|
| create-thing, 1 keep-alive connection | $c1 calls/s |
| create-thing, 4 keep-alive connections | $c4 calls/s |
| describe-thing, 1 keep-alive connection | $r1 calls/s |
| bulk import of $N things + certificates (one transaction) | $imp per second wall clock |
| bulk import, per second of keylinkd CPU | $impcpu per CPU second |

Each create-thing is one transaction, fsynced before the answer; several connections
overlap their round trips while the single SQLite writer commits them one after another.
The bulk import commits once, so its rate is the certificate work per line (PEM parse,
whose OpenSSL 3 public-key decoding dominates, signature check against the CA, SHA-256)
plus three inserts. On a shared machine (see the load average) read these as lower bounds.
MD
cat "$SRC/bench/results/registry.md"

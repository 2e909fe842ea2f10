#!/usr/bin/env bash
# kill -9 of keylinkd at arbitrary instants loses no acknowledged change: writers record
# every change the API acknowledged (HTTP 200); after each SIGKILL and restart all of them
# are there. Three rounds, killed at different moments of a steady write load.
. "$(dirname "$0")/iot_env.sh"
start_kd
mkca ca1
code=$(iot get-registration-code | j 'd["registrationCode"]'); mkcert ca1 "$code" v1
iot register-ca-certificate --ca-certificate "file://$T/ca1.pem" --verification-certificate "file://$T/v1.pem" \
  --set-as-active >/dev/null || bad "register CA"
# writer: creates things (and registers + revokes certificates) over one keep-alive
# connection, printing each acknowledged change; stops at the first failure.
cat >"$T/writer.py" <<'PY'
import http.client, json, os, sys, urllib.parse
u = urllib.parse.urlparse(os.environ["KEYLINK_ENDPOINT_URL"])
tok = os.environ["KEYLINK_TOKEN"]; prefix = sys.argv[1]
c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
h = {"Authorization": "Bearer " + tok, "Content-Type": "application/json"}
i = 0
try:
    while True:
        name = "%s-%05d" % (prefix, i)
        c.request("POST", "/things/" + name, body=json.dumps({"attributePayload": {"attributes": {"n": str(i)}}}), headers=h)
        r = c.getresponse(); r.read()
        if r.status != 200: break
        print("thing", name, flush=True)
        if i % 5 == 0:
            c.request("PATCH", "/things/" + name, body=json.dumps({"attributePayload": {"attributes": {"u": "1"}, "merge": True}}), headers=h)
            r = c.getresponse(); r.read()
            if r.status != 200: break
            print("updated", name, flush=True)
        i += 1
except Exception:
    pass
PY
for round in 1 2 3; do
  $PY "$T/writer.py" "r$round" >"$T/acked.$round" 2>/dev/null & WP=$!
  sleep "0.$((RANDOM % 7 + 3))"
  kill -9 "$KDPID"; wait "$KDPID" 2>/dev/null
  wait "$WP"
  n=$(grep -c '^thing' "$T/acked.$round")
  [ "$n" -gt 0 ] || bad "round $round: writer acknowledged nothing"
  start_kd
  # every acknowledged thing (of every round so far) is there, with its acknowledged update
  iot list-things --attribute-name n >"$T/things.json" || bad "list-things after restart"
  missing=$($PY - "$T" "$round" <<'PY'
import json, sys
T, rounds = sys.argv[1], int(sys.argv[2])
have = {t["thingName"]: t["attributes"] for t in json.load(open(T + "/things.json"))["things"]}
miss = 0
for r in range(1, rounds + 1):
    for line in open("%s/acked.%d" % (T, r)):
        kind, name = line.split()
        if name not in have or (kind == "updated" and have[name].get("u") != "1"):
            miss += 1
print(miss)
PY
)
  [ "$missing" = 0 ] && ok "round $round: $n acknowledged things all present after kill -9" || bad "round $round: $missing acknowledged changes lost"
done
# the registry is usable after the crashes: a new change and the CA are intact
iot create-thing --thing-name after-crash >/dev/null && ok "writes work after the crashes" || bad "write after crash"
[ "$(iot list-ca-certificates | j 'd["certificates"][0]["status"]')" = ACTIVE ] && ok "CA intact" || bad "CA lost"
[ $fails -eq 0 ] && echo "kill -9: all passed" || echo "$fails failure(s)"
exit $((fails > 0))

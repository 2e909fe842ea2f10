#!/usr/bin/env bash
# kl-labels: no-asan
# 100,000 things and certificates through the bulk import (`keylink iot bulk-import`, the
# JSON-lines file the batch provisioning writes), then list pagination over all of them and
# describe of samples; a file with one bad line changes nothing.
. "$(dirname "$0")/iot_env.sh"
N=${KL_BULK_N:-100000}
GEN=$B/kl-gen-batch
start_kd
mkca ca1
code=$(iot get-registration-code | j 'd["registrationCode"]'); mkcert ca1 "$code" v1
caid=$(iot register-ca-certificate --ca-certificate "file://$T/ca1.pem" --verification-certificate "file://$T/v1.pem" \
  --set-as-active | j 'd["certificateId"]') || bad "register CA"
openssl pkcs8 -topk8 -nocrypt -in "$T/ca1.key" -out "$T/ca1.p8" 2>/dev/null
t0=$(date +%s.%N)
# two generators, one per core, then one file
h=$((N / 2))
"$GEN" "$T/ca1.pem" "$T/ca1.p8" "$h" dev "$T/b1.jsonl" 0 & g1=$!
"$GEN" "$T/ca1.pem" "$T/ca1.p8" "$((N - h))" dev "$T/b2.jsonl" "$h" || bad "kl-gen-batch"
wait $g1 || bad "kl-gen-batch"
cat "$T/b1.jsonl" "$T/b2.jsonl" >"$T/batch.jsonl"; rm -f "$T/b1.jsonl" "$T/b2.jsonl"
[ "$(wc -l <"$T/batch.jsonl")" = "$N" ] && ok "generated $N certificates" || bad "generator lines"

# one bad line (a certificate of an unknown CA) at the end: nothing is imported
mkca other; mkcert other stray
$PY -c 'import json,sys;print(json.dumps({"thingName":"stray","certificatePem":open(sys.argv[1]).read()}))' "$T/stray.pem" >"$T/bad.jsonl"
head -100 "$T/batch.jsonl" >"$T/small.jsonl"; cat "$T/bad.jsonl" >>"$T/small.jsonl"
iot bulk-import --input "file://$T/small.jsonl" >/dev/null 2>"$T/err"
grep -q "CertificateValidationException.*line 101" "$T/err" && ok "bad line 101 named" || bad "bad import: $(cat "$T/err")"
[ "$(iot list-things | j 'len(d["things"])')" = 0 ] && ok "failed import changed nothing" || bad "failed import left things"

t1=$(date +%s.%N)
out=$(iot bulk-import --input "file://$T/batch.jsonl") || bad "bulk-import: $(tail -1 "$T/kd.log")"
t2=$(date +%s.%N)
[ "$(echo "$out" | j 'd["certificatesRegistered"]')" = "$N" ] && [ "$(echo "$out" | j 'd["thingsCreated"]')" = "$N" ] \
  && ok "imported $N things + certificates in $($PY -c "print(round($t2-$t1,1))") s" || bad "import result $out"
iot bulk-import --input "file://$T/small.jsonl" >/dev/null 2>"$T/err"
grep -q ResourceAlreadyExistsException "$T/err" && ok "re-import of registered certificates refused" || bad "re-import: $(cat "$T/err")"

# pagination over everything: every thing exactly once, in order
iot list-things --page-size 250 >"$T/things.json" || bad "list-things"
$PY - "$T/things.json" "$N" <<'PY' && ok "list-things pages through all $N things once" || bad "list-things content"
import json, sys
t = [x["thingName"] for x in json.load(open(sys.argv[1]))["things"]]
n = int(sys.argv[2])
sys.exit(0 if t == ["dev-%07d" % i for i in range(n)] else 1)
PY
n=$(iot list-certificates-by-ca --ca-certificate-id "$caid" --page-size 250 | j 'len(set(c["certificateId"] for c in d["certificates"]))')
[ "$n" = "$N" ] && ok "list-certificates-by-ca: $N distinct certificates" || bad "certificates $n"
p=$(iot list-things --max-items 100 --starting-token "$(iot list-things --max-items $h | j 'd["NextToken"]')")
[ "$(echo "$p" | j 'd["things"][0]["thingName"]')" = "$(printf 'dev-%07d' $h)" ] && [ "$(echo "$p" | j 'len(d["things"])')" = 100 ] \
  && ok "--starting-token in the middle of $N" || bad "middle page"
# describe samples, and a certificate id computed independently
for i in 0 $((N / 3)) $((N - 1)); do
  name=$(printf 'dev-%07d' "$i")
  line=$(sed -n "$((i + 1))p" "$T/batch.jsonl")
  echo "$line" | $PY -c 'import json,sys;print(json.load(sys.stdin)["certificatePem"],end="")' >"$T/one.pem"
  cid=$(certid "$T/one.pem")
  [ "$(iot describe-thing --thing-name "$name" | j 'd["thingName"]')" = "$name" ] && \
    [ "$(iot describe-certificate --certificate-id "$cid" | j 'd["certificateDescription"]["status"]')" = ACTIVE ] && \
    [ "$(iot list-thing-principals --thing-name "$name" | j 'd["principals"][0]')" = "arn:aws:iot:us-east-1:123456789012:cert/$cid" ] \
    && ok "describe $name and its certificate" || bad "describe $name"
done
echo "timing: generate $($PY -c "print(round($t1-$t0,1))") s, import $($PY -c "print(round($t2-$t1,1))") s, total $($PY -c "import time;print(round(time.time()-$t0,1))") s"
[ $fails -eq 0 ] && echo "bulk import: all passed" || echo "$fails failure(s)"
exit $((fails > 0))

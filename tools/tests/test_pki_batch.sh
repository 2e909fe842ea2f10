#!/usr/bin/env bash
# init_tls_iot --batch: several mem: chips and one unix: chip; one chip fails and the others'
# results are kept; a re-run resumes (skips the ledger's chips); the two registration files
# hold one correct line per chip; a malformed manifest writes nothing.
set -u
B=$KL_BIN_DIR; INIT=$B/init_tls_iot; MK=$B/make_ca_cert; SE=$B/keylink-se
T=$(mktemp -d); SEPID=""
cleanup() { [ -n "$SEPID" ] && kill "$SEPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
export KEYLINK_CA_PASSPHRASE="batch-test-passphrase-$$"
"$MK" --out-dir "$T/ca" >/dev/null </dev/null || { echo "FAIL: make_ca_cert"; exit 1; }
CA=$T/ca/cert_CA.pem; CK=$T/ca/privkey_server_ECDSA_secp256r1_secp256r1.pem
SOCK=$T/se.sock
"$SE" --state "$T/state" --socket "$SOCK" >"$T/se.log" 2>&1 & SEPID=$!
for i in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
batch() { "$INIT" --batch "$1" --ca-cert "$CA" --ca-key "$CK" --out-dir "$T/out" "${@:2}" </dev/null; }

# --- malformed manifests: refused before any chip is touched ---------------------------
printf 'thing,device\nA1,mem:%s/c1\nA2\n' "$T" >"$T/m1.csv"
printf 'A1,mem:%s/c1\nbad name,mem:%s/c2\n' "$T" "$T" >"$T/m2.csv"
printf 'A1,mem:%s/c1\nA2,tcp:host\n' "$T" >"$T/m3.csv"
printf 'A1,mem:%s/c1\nA1,mem:%s/c2\n' "$T" "$T" >"$T/m4.csv"
printf 'A1,mem:%s/c1,extra\n' "$T" >"$T/m5.csv"
printf '# nothing\n\n' >"$T/m6.csv"
for m in m1:"$T/m1.csv:3" m2:"thing name" m3:"not a unix:PATH" m4:"repeats line 1" m5:"two fields" m6:"no chips"; do
  f=${m%%:*}; want=${m#*:}
  batch "$T/$f.csv" >"$T/o" 2>&1; rc=$?
  [ $rc -eq 2 ] && grep -q -- "$want" "$T/o" && ok "$f refused: $(head -1 "$T/o")" || bad "$f (rc $rc): $(cat "$T/o")"
done
[ ! -e "$T/out" ] && [ ! -e "$T/c1" ] && ok "malformed manifests wrote nothing, touched no chip" || bad "malformed manifest left something"

# --- a batch with one chip that fails ---------------------------------------------------
: >"$T/c3"  # a file where chip 3's state directory should be: that chip cannot open
cat >"$T/m.csv" <<CSV
thing,device
# factory line 1
DEV-001,mem:$T/c1
DEV-002,mem:$T/c2
DEV-003,mem:$T/c3
DEV-004 , mem:$T/c4
DEV-005,unix:$SOCK
CSV
batch "$T/m.csv" >"$T/o1" 2>"$T/e1"; rc=$?
[ $rc -eq 1 ] && ok "batch with a failing chip exits 1" || bad "exit $rc"
grep -q "DEV-003: FAILED (.*m.csv:5" "$T/e1" && ok "failure reported: $(grep FAILED "$T/e1")" || bad "failure report: $(cat "$T/e1")"
grep -q "4 provisioned, 0 skipped (done before), 1 failed" "$T/o1" && ok "summary: 4 provisioned, 1 failed" || bad "summary: $(tail -1 "$T/o1")"
grep -q "^\[1/5\] DEV-001: provisioned" "$T/o1" && ok "plain progress lines off a terminal" || bad "progress lines: $(head -2 "$T/o1")"
[ "$(wc -l <"$T/out/provisioned.csv")" -eq 4 ] && ok "ledger has the 4 chips" || bad "ledger: $(cat "$T/out/provisioned.csv")"
for d in 001 002 004 005; do
  openssl verify -CAfile "$CA" "$T/out/DEV-$d/csr_cert.pem" >/dev/null 2>&1 || bad "DEV-$d certificate does not verify"
done
[ ! -e "$T/out/DEV-003" ] && ok "nothing written for the failed chip" || bad "files for the failed chip"

check_bulk() { # N: both files have N lines matching the ledger and the certificates
  /usr/bin/python3 - "$T/out" "$CA" "$1" <<'PY'
import hashlib, json, subprocess, sys
out, ca, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def der(pem): return subprocess.run(["openssl", "x509", "-outform", "DER"], input=pem.encode(), capture_output=True, check=True).stdout
ca_pem = open(ca).read(); ca_id = hashlib.sha256(der(ca_pem)).hexdigest()
ours = [json.loads(l) for l in open(out + "/bulk-registration.jsonl")]
aws = [json.loads(l) for l in open(out + "/aws-bulk-registration.jsonl")]
ledger = {l.split(",")[0]: l.strip().split(",") for l in open(out + "/provisioned.csv")}
assert len(ours) == len(aws) == len(ledger) == n, (len(ours), len(aws), len(ledger))
for o, a in zip(ours, aws):
    l = ledger[o["thingName"]]
    pem = open("%s/%s/csr_cert.pem" % (out, o["thingName"])).read()
    assert o["certificatePem"] == pem and a["CertificatePem"] == pem
    assert o["caCertificateId"] == ca_id, "caCertificateId"
    assert o["certificateId"] == hashlib.sha256(der(pem)).hexdigest() == l[2], "certificateId"
    assert a["ThingName"] == o["thingName"] == l[0]
    assert a["CACertificatePem"].strip() == ca_pem.strip()
    assert len(a["SerialNumber"]) == 48 and a["SerialNumber"] == o["serialNumber"] == l[3]
    subj = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem.encode(), capture_output=True).stdout.decode()
    assert ("CN = " + o["thingName"]) in subj, subj
t = json.load(open(out + "/aws-provisioning-template.json"))
assert set(t["Parameters"]) >= {"ThingName", "CertificatePem", "CACertificatePem"}
print("bulk ok")
PY
}
check_bulk 4 >/dev/null 2>"$T/pyerr" && ok "registration files: 4 lines each, matching certificates, ids and ledger" || bad "bulk files: $(tail -2 "$T/pyerr")"

# --- fix the chip, re-run: only it is done, the others are skipped untouched -------------
sums_before=$(cd "$T/out" && sha256sum DEV-00*/csr_cert.pem)
rm "$T/c3"
batch "$T/m.csv" >"$T/o2" 2>"$T/e2"; rc=$?
[ $rc -eq 0 ] && ok "resumed batch exits 0" || bad "resume exit $rc: $(cat "$T/e2")"
grep -q "4 of 5 chips are in .* already; skipping them" "$T/e2" && ok "resume skips the ledger's chips" || bad "skip message: $(cat "$T/e2")"
grep -q "1 provisioned, 4 skipped (done before), 0 failed" "$T/o2" && ok "summary: 1 provisioned, 4 skipped" || bad "resume summary: $(tail -1 "$T/o2")"
[ "$sums_before" = "$(cd "$T/out" && sha256sum DEV-00[1245]/csr_cert.pem)" ] && ok "earlier chips' certificates untouched" || bad "earlier results changed"
openssl verify -CAfile "$CA" "$T/out/DEV-003/csr_cert.pem" >/dev/null 2>&1 && ok "DEV-003 now provisioned" || bad "DEV-003 cert"
check_bulk 5 >/dev/null 2>"$T/pyerr" && ok "registration files now hold all 5" || bad "bulk after resume: $(tail -2 "$T/pyerr")"
batch "$T/m.csv" >"$T/o3" 2>&1 && grep -q "0 provisioned, 5 skipped" "$T/o3" && ok "third run does nothing" || bad "third run: $(tail -1 "$T/o3")"

# --- on a terminal: a progress bar with rate and ETA ------------------------------------
if command -v script >/dev/null; then
  printf 'TTY-1,mem:%s/t1\nTTY-2,mem:%s/t2\n' "$T" "$T" >"$T/mt.csv"
  timeout 60 script -qec "$INIT --batch $T/mt.csv --ca-cert $CA --ca-key $CK --out-dir $T/outt" /dev/null </dev/null >"$T/ot" 2>&1
  grep -q "\[#*\.*\] [0-9]*/2 .*chips/s  ETA [0-9]*:[0-9][0-9]" "$T/ot" && grep -q "2/2" "$T/ot" \
    && ok "terminal progress bar with rate and ETA" || bad "progress bar: $(cat -A "$T/ot" | head -3)"
fi

# --- a chip provisioned outside the ledger is refused, not silently re-keyed ------------
printf 'DEV-001,mem:%s/c1\n' "$T" >"$T/m7.csv"
"$INIT" --batch "$T/m7.csv" --ca-cert "$CA" --ca-key "$CK" --out-dir "$T/out7" </dev/null >"$T/o" 2>&1
grep -q "already provisioned" "$T/o" && ok "already-provisioned chip reported in a batch" || bad "m7: $(cat "$T/o")"

[ $fails -eq 0 ] && echo "all batch checks passed" || echo "$fails check(s) failed"
exit $((fails > 0))

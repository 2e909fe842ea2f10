#!/usr/bin/env bash
# keylink se: every subcommand against a real keylink-se (unix:) and in-process (mem:):
# JSON shapes, PEM that OpenSSL reads, signatures OpenSSL verifies, errors that name the
# chip status, exit codes (0 done, 1 refused, 2 usage).
set -u
KL="$KL_BIN_DIR/keylink"; SE="$KL_BIN_DIR/keylink-se"
T=$(mktemp -d); PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
py() { /usr/bin/python3 -c "$@"; }
# expect CODE DESCRIPTION CMD...: runs CMD, output in $T/out, checks the exit code
expect() {
  local want=$1 what=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  [ $rc -eq "$want" ] && ok "$what (exit $rc)" || bad "$what: exit $rc, want $want: $(cat "$T/err")"
}

"$SE" --state "$T/state" --socket "$T/se.sock" 2>"$T/se.log" & PID=$!
for _ in $(seq 100); do [ -S "$T/se.sock" ] && break; sleep 0.05; done

for DEV in "unix:$T/se.sock" "mem:$T/memchip"; do
  K=("$KL" se --device "$DEV")
  echo "--- $DEV"
  expect 0 "status --json" "${K[@]}" status --json
  py 'import json,sys
d=json.load(open(sys.argv[1]))
assert set(["serial","lifecycle","free_bytes","total_bytes","name","firmware"]) <= set(d), d
assert d["total_bytes"] == 8192 and 0 <= d["free_bytes"] <= 8192
assert d["lifecycle"] == "DELIVERY" and d["lifecycle_code"] == 3
assert len(d["serial"]) == 48 and int(d["serial"], 16) != 0
assert d["admin_authenticated"] is False' "$T/out" && ok "status json shape" || bad "status json: $(cat "$T/out")"
  serial=$(py 'import json,sys;print(json.load(open(sys.argv[1]))["serial"])' "$T/out")
  expect 0 "status table" "${K[@]}" status
  grep -q "serial *$serial" "$T/out" && grep -q "lifecycle *DELIVERY" "$T/out" && ok "table shows serial and life cycle" || bad "status table: $(cat "$T/out")"
  # options before the command too
  expect 0 "--json before the command" "$KL" se --json --device "$DEV" status

  expect 0 "ping" "${K[@]}" ping 00ff10
  expect 0 "genkey --create" "${K[@]}" genkey 0x1004 --create
  grep -q "BEGIN PUBLIC KEY" "$T/out" && ok "genkey prints PEM" || bad "genkey output: $(cat "$T/out")"
  expect 0 "pubkey" "${K[@]}" pubkey 1004
  cp "$T/out" "$T/pub.pem"
  openssl pkey -pubin -in "$T/pub.pem" -noout -text 2>/dev/null | grep -q "prime256v1" && ok "pubkey PEM is a P-256 SPKI for OpenSSL" || bad "pubkey PEM unreadable: $(cat "$T/pub.pem")"
  expect 0 "pubkey --json" "${K[@]}" --json pubkey 1004
  py 'import json,sys
d=json.load(open(sys.argv[1])); assert d["id"]=="0x1004" and len(d["public_key"])==128
assert d["spki_der"].startswith("3059301306072a8648ce3d020106082a8648ce3d030107034200")' "$T/out" && ok "pubkey json" || bad "pubkey json: $(cat "$T/out")"

  printf 'message to sign' >"$T/msg"
  expect 0 "sign --der --out" "${K[@]}" sign 1004 --in "$T/msg" --der --out "$T/sig.der"
  openssl dgst -sha256 -verify "$T/pub.pem" -signature "$T/sig.der" "$T/msg" >/dev/null 2>&1 && ok "OpenSSL verifies the chip's DER signature" || bad "OpenSSL rejects the chip's signature"
  expect 0 "sign raw" "${K[@]}" sign 1004 --in "$T/msg"
  sig=$(cat "$T/out")
  [ ${#sig} -eq 128 ] && ok "raw signature is 64 bytes" || bad "raw signature: $sig"
  expect 0 "verify good" "${K[@]}" verify 1004 --sig "$sig" --in "$T/msg"
  expect 1 "verify wrong message" "${K[@]}" verify 1004 --sig "$sig" --hex 00
  grep -q "NOT valid" "$T/out" && ok "says NOT valid" || bad "verify output: $(cat "$T/out")"
  expect 0 "verify DER file" "${K[@]}" verify 1004 --der --sig-file "$T/sig.der" --in "$T/msg"
  digest=$(sha256sum "$T/msg" | cut -d' ' -f1)
  expect 0 "verify by digest" "${K[@]}" verify 1004 --sig "$sig" --digest "$digest"
  head -c 100000 /dev/urandom >"$T/big"
  expect 0 "sign a 100 KB file (hashed on the chip)" "${K[@]}" sign 1004 --in "$T/big" --der --out "$T/big.sig"
  openssl dgst -sha256 -verify "$T/pub.pem" -signature "$T/big.sig" "$T/big" >/dev/null 2>&1 && ok "OpenSSL verifies the big-file signature" || bad "big-file signature"

  expect 0 "create data" "${K[@]}" create 2000 --type data --size 3000
  head -c 3000 /dev/urandom >"$T/blob"
  expect 0 "write 3000 bytes (chunked)" "${K[@]}" write 2000 --in "$T/blob"
  expect 0 "read --out" "${K[@]}" read 2000 --out "$T/back"
  cmp -s "$T/blob" "$T/back" && ok "read back the same 3000 bytes" || bad "read back differs"
  expect 0 "read --json" "${K[@]}" read 2000 --offset 10 --length 4 --json
  py 'import json,sys
d=json.load(open(sys.argv[1])); b=open(sys.argv[2],"rb").read()
assert d["length"]==4 and d["hex"]==b[10:14].hex()' "$T/out" "$T/blob" && ok "read slice json" || bad "read json: $(cat "$T/out")"
  expect 0 "info --json" "${K[@]}" info 2000 --json
  py 'import json,sys
d=json.load(open(sys.argv[1]))
assert d["type"]=="data" and d["size"]==3000 and d["used"]==3000 and d["write_count"]>=2' "$T/out" && ok "info json" || bad "info json: $(cat "$T/out")"
  expect 0 "create counter" "${K[@]}" create 2001 --type up-counter --initial 7
  expect 0 "counter add" "${K[@]}" --json counter 2001 --add 3
  py 'import json,sys; assert json.load(open(sys.argv[1]))["value"]==10' "$T/out" && ok "counter 7+3=10" || bad "counter: $(cat "$T/out")"
  expect 0 "list --json" "${K[@]}" list --json
  py 'import json,sys
l=json.load(open(sys.argv[1])); ids=[o["id"] for o in l]
assert ids==sorted(ids) and {"0x1004","0x2000","0x2001"} <= set(ids), ids
assert [o for o in l if o["id"]=="0x1004"][0]["type"]=="key-pair"' "$T/out" && ok "list json" || bad "list json: $(cat "$T/out")"
  expect 0 "list table" "${K[@]}" list
  grep -q "^0x2000 *data" "$T/out" && ok "list table row" || bad "list table: $(cat "$T/out")"
  expect 0 "random" "${K[@]}" random 3000
  [ "$(tr -d '\n' <"$T/out" | wc -c)" -eq 6000 ] && ok "3000 random bytes" || bad "random length"
  expect 0 "config --json" "${K[@]}" config --json
  py 'import json,sys; d=json.load(open(sys.argv[1])); assert "watchdog" in d and "wd_normal_ms" in d' "$T/out" && ok "config json" || bad "config json: $(cat "$T/out")"
  expect 0 "config set in DELIVERY" "${K[@]}" config --json factory_reset=1 wd_normal_ms=7000
  py 'import json,sys; d=json.load(open(sys.argv[1])); assert d["wd_normal_ms"]==7000 and d["factory_reset"] is True' "$T/out" && ok "config changed" || bad "config set: $(cat "$T/out")"
  expect 0 "lifecycle" "${K[@]}" lifecycle
  grep -qx DELIVERY "$T/out" && ok "lifecycle DELIVERY" || bad "lifecycle: $(cat "$T/out")"
  expect 0 "kick" "${K[@]}" kick

  # refusals name the chip status and exit 1, changing nothing
  expect 1 "create twice" "${K[@]}" create 2000 --type data --size 10
  grep -q "KL_E_EXISTS" "$T/err" && ok "names KL_E_EXISTS" || bad "create twice: $(cat "$T/err")"
  expect 1 "read missing" "${K[@]}" read 0x7777
  grep -q "KL_E_NOT_FOUND" "$T/err" && grep -q "list the objects" "$T/err" && ok "names KL_E_NOT_FOUND and what to do" || bad "read missing: $(cat "$T/err")"
  expect 1 "lifecycle without admin" "${K[@]}" lifecycle OPERATIONAL
  grep -q "KL_E_AUTH_REQUIRED\|KL_E_LIFECYCLE" "$T/err" && ok "life cycle refused with the chip status" || bad "lifecycle: $(cat "$T/err")"
  expect 1 "write past the end" "${K[@]}" write 2000 --offset 2999 --hex 0011
  expect 0 "data unchanged after refusals" "${K[@]}" read 2000 --out "$T/back2"
  cmp -s "$T/blob" "$T/back2" && ok "object intact" || bad "object changed by a refused write"
  expect 0 "delete" "${K[@]}" delete 2000
  expect 1 "delete again" "${K[@]}" delete 2000
  expect 0 "tamper" "${K[@]}" tamper
  expect 0 "reset" "${K[@]}" reset
  expect 0 "status after tamper" "${K[@]}" status --json
  py 'import json,sys; d=json.load(open(sys.argv[1])); assert d["tamper_events"]>=1 and d["resets"]>=1' "$T/out" && ok "tamper and reset counted" || bad "counters: $(cat "$T/out")"
  # usage errors exit 2
  expect 2 "unknown subcommand" "${K[@]}" frobnicate
  expect 2 "bad id" "${K[@]}" read xyz
  expect 2 "create without --type" "${K[@]}" create 3000
  expect 2 "bad rules" "${K[@]}" create 3000 --type data --size 4 --rules "q=r:-:-"
  expect 2 "sign without data" "${K[@]}" sign 1004
  expect 2 "unknown option" "${K[@]}" status --bogus
done

# the secure channel: pin the identity key, then run commands inside the channel
K=("$KL" se --device "unix:$T/se.sock")
expect 0 "channel pin" "${K[@]}" channel pin --out "$T/pin.pem"
openssl pkey -pubin -in "$T/pin.pem" -noout -text 2>/dev/null | grep -q prime256v1 && ok "pin file is a P-256 PEM key" || bad "pin file: $(cat "$T/pin.pem")"
expect 0 "channel check" "${K[@]}" channel check --pin "$T/pin.pem"
expect 0 "status inside the channel" "${K[@]}" --pin "$T/pin.pem" status --json
py 'import json,sys; assert json.load(open(sys.argv[1]))["channel_open"] is True' "$T/out" && ok "status shows the channel open" || bad "channel status: $(cat "$T/out")"
expect 0 "sign inside the channel" "${K[@]}" --pin "$T/pin.pem" sign 1004 --in "$T/msg" --der --out "$T/sig2.der"
"${K[@]}" pubkey 1004 >"$T/upub.pem"
openssl dgst -sha256 -verify "$T/upub.pem" -signature "$T/sig2.der" "$T/msg" >/dev/null 2>&1 && ok "signature made inside the channel verifies" || bad "channel signature"
expect 0 "another chip's key" "$KL" se --device "mem:$T/otherchip" channel pin --out "$T/wrong.pem"
expect 1 "wrong pin refused" "${K[@]}" --pin "$T/wrong.pem" status
grep -q "did not prove" "$T/err" && ok "wrong pin explained" || bad "wrong pin: $(cat "$T/err")"
expect 2 "missing pin file" "${K[@]}" --pin "$T/none.pem" status
echo "not a key" >"$T/junk.pem"
expect 2 "junk pin file" "${K[@]}" --pin "$T/junk.pem" status
expect 2 "channel check without --pin" "${K[@]}" channel check

# owner keys: admin authentication for the life cycle, signed key import after DELIVERY
openssl ecparam -name prime256v1 -genkey -noout -out "$T/admin.pem" 2>/dev/null
openssl ec -in "$T/admin.pem" -pubout -out "$T/admin_pub.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$T/imp.pem" 2>/dev/null
openssl ec -in "$T/imp.pem" -pubout -out "$T/imp_pub.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$T/other.pem" 2>/dev/null
expect 0 "create admin key object" "${K[@]}" create 1001 --type public-key --usage admin --alg ecdsa
expect 0 "import admin public key" "${K[@]}" import 1001 --pem "$T/admin_pub.pem"
expect 0 "create key-import key object" "${K[@]}" create 1000 --type public-key --usage key-import --alg ecdsa
expect 0 "import key-import public key" "${K[@]}" import 1000 --pem "$T/imp_pub.pem"
expect 1 "lifecycle with a stranger's key" "${K[@]}" --admin-key "$T/other.pem" lifecycle INITIALIZED
grep -q "KL_E_AUTH_FAILED" "$T/err" && ok "names KL_E_AUTH_FAILED" || bad "stranger admin: $(cat "$T/err")"
expect 0 "lifecycle with the admin key" "${K[@]}" --admin-key "$T/admin.pem" --json lifecycle INITIALIZED
py 'import json,sys; assert json.load(open(sys.argv[1]))["lifecycle"]=="INITIALIZED"' "$T/out" && ok "now INITIALIZED" || bad "lifecycle: $(cat "$T/out")"
expect 2 "admin key file missing" "${K[@]}" --admin-key "$T/none.pem" lifecycle OPERATIONAL
expect 0 "create an AES key object" "${K[@]}" create 3000 --type secret-key --size 16 --key-type aes --usage encrypt --alg aes-gcm
expect 1 "unsigned import after DELIVERY" "${K[@]}" import 3000 --hex 000102030405060708090a0b0c0d0e0f
expect 1 "import signed by a stranger" "${K[@]}" import 3000 --hex 000102030405060708090a0b0c0d0e0f --import-key "$T/other.pem"
expect 0 "signed import" "${K[@]}" import 3000 --hex 000102030405060708090a0b0c0d0e0f --import-key "$T/imp.pem"
expect 0 "info shows the key" "${K[@]}" info 3000 --json
py 'import json,sys; assert json.load(open(sys.argv[1]))["has_key"] is True' "$T/out" && ok "key present after signed import" || bad "import: $(cat "$T/out")"
expect 1 "secret key never read" "${K[@]}" read 3000
grep -q "KL_E_ACCESS_DENIED" "$T/err" && ok "secret stays in the chip" || bad "read secret: $(cat "$T/err")"

# errors about the device itself
expect 2 "no device" env -u KEYLINK_SE "$KL" se status
grep -q "KEYLINK_SE" "$T/err" && ok "says how to name a device" || bad "no device: $(cat "$T/err")"
expect 0 "KEYLINK_SE is used" env KEYLINK_SE="unix:$T/se.sock" "$KL" se status --json
expect 2 "bad scheme" "$KL" se --device "tcp:1.2.3.4" status
expect 1 "no daemon there" "$KL" se --device "unix:$T/nothing.sock" status
grep -q "KL_E_IO" "$T/err" && grep -q "keylink-se running" "$T/err" && ok "link error explained" || bad "no daemon: $(cat "$T/err")"
expect 0 "--help" "$KL" se --help
grep -q "pubkey ID" "$T/out" && ok "help lists pubkey" || bad "help text"
expect 0 "command --help" "$KL" se sign --help
# the daemon's state dir cannot be opened in-process at the same time
expect 1 "mem: on a served state dir" "$KL" se --device "mem:$T/state" status
grep -q "KL_E_BUSY" "$T/err" && ok "names KL_E_BUSY for a locked state dir" || bad "locked dir: $(cat "$T/err")"
# a second host while one holds the chip: KL_E_BUSY
/usr/bin/python3 -c 'import socket,sys,time
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(1.5)' "$T/se.sock" &
holder=$!; sleep 0.3
expect 1 "busy chip" "$KL" se --device "unix:$T/se.sock" status
grep -q "KL_E_BUSY" "$T/err" && ok "names KL_E_BUSY" || bad "busy: $(cat "$T/err")"
[ "$(wc -l <"$T/err")" = 1 ] && grep -q "in use by another host" "$T/err" && ok "busy said once" \
  || bad "busy is not one line: $(cat "$T/err")"
wait $holder

[ $fails -eq 0 ] && echo "all keylink se CLI checks passed" || { echo "$fails failures"; exit 1; }

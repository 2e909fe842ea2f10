#!/usr/bin/env bash
# Every `keylink iot` subcommand against a running keylinkd: success with the AWS CLI's
# output shape, and each documented error (AWS error name on stderr, non-zero exit).
# Also the API's own guards: bad JSON, oversize bodies (413), missing/wrong token (401,
# nothing changed), unknown paths and methods.
. "$(dirname "$0")/iot_env.sh"
start_kd
mkca ca1; mkca ca2; mkca stranger
code=$(iot get-registration-code | j 'd["registrationCode"]')
[ ${#code} -eq 64 ] && ok "get-registration-code" || bad "registration code '$code'"
mkcert ca1 "$code" v1; mkcert ca2 "$code" v2; mkcert ca1 wrong-code vbad; mkcert stranger "$code" vstr

# --- CA certificates ------------------------------------------------------------------
expect_err RegistrationCodeValidationException register-ca-certificate \
  --ca-certificate "file://$T/ca1.pem" --verification-certificate "file://$T/vbad.pem"
expect_err CertificateValidationException register-ca-certificate \
  --ca-certificate "file://$T/ca1.pem" --verification-certificate "file://$T/vstr.pem"
expect_err CertificateValidationException register-ca-certificate \
  --ca-certificate "file://$T/v1.pem" --verification-certificate "file://$T/v1.pem"
expect_err InvalidRequestException register-ca-certificate --ca-certificate "file://$T/ca1.pem"
iot register-ca-certificate --verification-certificate x >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 252 ] && grep -q "required: --ca-certificate" "$T/err" && ok "missing argument -> usage error 252" || bad "missing arg rc=$rc"
iot register-ca-certificate --ca-certificate "file://$T/nonexistent.pem" >/dev/null 2>&1 \
  && bad "unreadable file:// accepted" || ok "unreadable file:// refused"
out=$(iot register-ca-certificate --ca-certificate "file://$T/ca1.pem" \
  --verification-certificate "file://$T/v1.pem" --set-as-active --allow-auto-registration) || bad "register CA"
ca1=$(echo "$out" | j 'd["certificateId"]')
[ "$ca1" = "$(certid "$T/ca1.pem")" ] && echo "$out" | j 'd["certificateArn"]' | grep -q ":cacert/$ca1$" \
  && ok "register-ca-certificate {certificateArn, certificateId}" || bad "register CA output $out"
expect_err ResourceAlreadyExistsException register-ca-certificate \
  --ca-certificate "file://$T/ca1.pem" --verification-certificate "file://$T/v1.pem"
ca2=$(iot register-ca-certificate --ca-certificate "file://$T/ca2.pem" \
  --verification-certificate "file://$T/v2.pem" | j 'd["certificateId"]')
d=$(iot describe-ca-certificate --certificate-id "$ca1")
[ "$(echo "$d" | j 'd["certificateDescription"]["status"]')" = ACTIVE ] && \
  [ "$(echo "$d" | j 'd["certificateDescription"]["autoRegistrationStatus"]')" = ENABLE ] && \
  echo "$d" | j 'd["certificateDescription"]["certificatePem"]' | grep -q "BEGIN CERTIFICATE" && \
  echo "$d" | j 'd["certificateDescription"]["creationDate"]' | grep -q '^20[0-9-]*T' \
  && ok "describe-ca-certificate" || bad "describe CA: $d"
expect_err ResourceNotFoundException describe-ca-certificate --certificate-id "$(certid "$T/stranger.pem")"
expect_err InvalidRequestException describe-ca-certificate --certificate-id xyz
iot update-ca-certificate --certificate-id "$ca2" --new-status INACTIVE >/dev/null && ok "update-ca-certificate" || bad "update CA"
expect_err InvalidRequestException update-ca-certificate --certificate-id "$ca2" --new-status REVOKED
expect_err ResourceNotFoundException update-ca-certificate --certificate-id "$(certid "$T/stranger.pem")" --new-status ACTIVE
n=$(iot list-ca-certificates | j 'len(d["certificates"])')
[ "$n" = 2 ] && ok "list-ca-certificates" || bad "list-ca-certificates $n"

# --- device certificates ---------------------------------------------------------------
mkcert ca1 dev1; mkcert ca1 dev2; mkcert ca2 dev3; mkcert stranger dev4
expect_err CertificateValidationException register-certificate --certificate-pem "file://$T/dev4.pem"
expect_err CertificateValidationException register-certificate --certificate-pem "file://$T/dev4.pem" \
  --ca-certificate-pem "file://$T/stranger.pem"
expect_err CertificateStateException register-certificate --certificate-pem "file://$T/dev3.pem" --set-as-active
expect_err CertificateValidationException register-certificate --certificate-pem "not a pem"
out=$(iot register-certificate --certificate-pem "file://$T/dev1.pem" --ca-certificate-pem "file://$T/ca1.pem" --set-as-active)
c1=$(echo "$out" | j 'd["certificateId"]'); arn1=$(echo "$out" | j 'd["certificateArn"]')
[ "$c1" = "$(certid "$T/dev1.pem")" ] && [ "$(echo "$out" | j 'sorted(d)')" = "['certificateArn', 'certificateId']" ] \
  && ok "register-certificate {certificateArn, certificateId}" || bad "register-certificate $out"
expect_err ResourceAlreadyExistsException register-certificate --certificate-pem "file://$T/dev1.pem"
c2=$(iot register-certificate --certificate-pem "file://$T/dev2.pem" --status INACTIVE | j 'd["certificateId"]')
arn2="arn:aws:iot:us-east-1:123456789012:cert/$c2"
d=$(iot describe-certificate --certificate-id "$c2")
[ "$(echo "$d" | j 'd["certificateDescription"]["status"]')" = INACTIVE ] && \
  [ "$(echo "$d" | j 'd["certificateDescription"]["caCertificateId"]')" = "$ca1" ] \
  && ok "describe-certificate {certificateDescription:{...}}" || bad "describe-certificate $d"
expect_err ResourceNotFoundException describe-certificate --certificate-id "$(certid "$T/dev4.pem")"
iot update-certificate --certificate-id "$c2" --new-status REVOKED >/dev/null && ok "update-certificate REVOKED" || bad "revoke"
expect_err CertificateStateException update-certificate --certificate-id "$c2" --new-status ACTIVE
expect_err ResourceNotFoundException update-certificate --certificate-id "$(certid "$T/dev4.pem")" --new-status ACTIVE
n=$(iot list-certificates | j 'len(d["certificates"])'); [ "$n" = 2 ] && ok "list-certificates" || bad "list-certificates $n"
n=$(iot list-certificates-by-ca --ca-certificate-id "$ca1" | j 'len(d["certificates"])')
[ "$n" = 2 ] && ok "list-certificates-by-ca" || bad "by-ca $n"
n=$(iot list-certificates-by-ca --ca-certificate-id "$ca2" | j 'len(d["certificates"])')
[ "$n" = 0 ] && ok "list-certificates-by-ca (empty CA)" || bad "by-ca ca2 $n"
expect_err ResourceNotFoundException list-certificates-by-ca --ca-certificate-id "$(certid "$T/stranger.pem")"

# --- things -------------------------------------------------------------------------------
out=$(iot create-thing --thing-name dev1 --attribute-payload '{"attributes":{"model":"m1","site":"lab"}}')
[ "$(echo "$out" | j 'sorted(d)')" = "['thingArn', 'thingId', 'thingName']" ] && ok "create-thing" || bad "create-thing $out"
iot create-thing --thing-name dev9 --attribute-payload 'attributes={model=m2},merge=false' >/dev/null \
  && ok "create-thing with shorthand attributes" || bad "shorthand"
expect_err ResourceAlreadyExistsException create-thing --thing-name dev1
expect_err InvalidRequestException create-thing --thing-name 'bad name!'
expect_err InvalidRequestException create-thing --thing-name dev2 --attribute-payload '{"attributes":{"a":1}}'
d=$(iot describe-thing --thing-name dev1)
[ "$(echo "$d" | j 'd["attributes"]["model"]')" = m1 ] && [ "$(echo "$d" | j 'd["version"]')" = 1 ] && \
  [ "$(echo "$d" | j 'd["defaultClientId"]')" = dev1 ] && ok "describe-thing" || bad "describe-thing $d"
iot describe-thing --thing-name NOPE >/dev/null 2>"$T/err"; rc=$?
[ $rc -ne 0 ] && grep -qx "An error occurred (ResourceNotFoundException) when calling the DescribeThing operation: thing NOPE not found" "$T/err" \
  && ok "describe-thing unknown: the AWS CLI error line" || bad "describe unknown: rc=$rc $(cat "$T/err")"
iot update-thing --thing-name dev1 --attribute-payload '{"attributes":{"site":"","fw":"2"},"merge":true}' --expected-version 1 >/dev/null \
  && ok "update-thing" || bad "update-thing"
d=$(iot describe-thing --thing-name dev1)
[ "$(echo "$d" | j 'sorted(d["attributes"].items())')" = "[('fw', '2'), ('model', 'm1')]" ] && [ "$(echo "$d" | j 'd["version"]')" = 2 ] \
  && ok "update-thing merged attributes, version 2" || bad "after update $d"
expect_err VersionConflictException update-thing --thing-name dev1 --attribute-payload '{"attributes":{"x":"1"}}' --expected-version 1
expect_err ResourceNotFoundException update-thing --thing-name NOPE --attribute-payload '{"attributes":{"x":"1"}}'
for i in 1 2 3 4 5; do iot create-thing --thing-name "pg-$i" >/dev/null; done
n=$(iot list-things | j 'len(d["things"])'); [ "$n" = 7 ] && ok "list-things (all pages)" || bad "list-things $n"
p1=$(iot list-things --max-items 3)
[ "$(echo "$p1" | j 'len(d["things"])')" = 3 ] && tok=$(echo "$p1" | j 'd["NextToken"]') && [ -n "$tok" ] \
  && ok "list-things --max-items 3 gives NextToken" || bad "max-items: $p1"
p2=$(iot list-things --starting-token "$tok" --page-size 2)
names=$( (echo "$p1"; echo "$p2") | $PY -c 'import json,sys;t=sys.stdin.read();import re
ds=[json.loads(x) for x in re.split(r"(?<=\n})\n",t) if x.strip()];print(sorted(x["thingName"] for d in ds for x in d["things"]))')
[ "$(echo "$p2" | j 'len(d["things"])')" = 4 ] && [ "$names" = "$(iot list-things | j 'sorted(x["thingName"] for x in d["things"])')" ] \
  && ok "--starting-token continues where --max-items stopped" || bad "pagination $names"
expect_err InvalidRequestException list-things --starting-token not-a-token
n=$(iot list-things --attribute-name model --attribute-value m1 | j 'len(d["things"])')
[ "$n" = 1 ] && ok "list-things --attribute-name/--attribute-value" || bad "filter $n"

# --- principals ----------------------------------------------------------------------------
iot attach-thing-principal --thing-name dev1 --principal "$arn1" && ok "attach-thing-principal" || bad "attach"
expect_err ResourceNotFoundException attach-thing-principal --thing-name NOPE --principal "$arn1"
expect_err InvalidRequestException attach-thing-principal --thing-name dev1 --principal "arn:aws:iot:us-east-1:123456789012:cert/x"
expect_err ResourceNotFoundException attach-thing-principal --thing-name dev1 --principal "arn:aws:iot:us-east-1:123456789012:cert/$(certid "$T/dev4.pem")"
[ "$(iot list-thing-principals --thing-name dev1 | j 'd["principals"]')" = "['$arn1']" ] && ok "list-thing-principals" || bad "list-thing-principals"
expect_err ResourceNotFoundException list-thing-principals --thing-name NOPE
[ "$(iot list-principal-things --principal "$arn1" | j 'd["things"]')" = "['dev1']" ] && ok "list-principal-things" || bad "list-principal-things"
expect_err ResourceNotFoundException list-principal-things --principal "arn:aws:iot:us-east-1:123456789012:cert/$(certid "$T/dev4.pem")"
expect_err InvalidRequestException list-principal-things --principal "arn:aws:iot:eu-west-1:123456789012:cert/$c1"
expect_err CertificateStateException delete-certificate --certificate-id "$c1"
iot update-certificate --certificate-id "$c1" --new-status INACTIVE >/dev/null
expect_err DeleteConflictException delete-certificate --certificate-id "$c1"
expect_err InvalidRequestException delete-thing --thing-name dev1
iot detach-thing-principal --thing-name dev1 --principal "$arn1" && ok "detach-thing-principal" || bad "detach"
expect_err ResourceNotFoundException detach-thing-principal --thing-name NOPE --principal "$arn1"

# --- policies ---------------------------------------------------------------------------
cat >"$T/pol.json" <<'P'
{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"]},
 {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/dt/${iot:Connection.Thing.ThingName}/*"]}]}
P
out=$(iot create-policy --policy-name dev-policy --policy-document "file://$T/pol.json")
[ "$(echo "$out" | j 'd["policyVersionId"]')" = 1 ] && echo "$out" | j 'd["policyArn"]' | grep -q ':policy/dev-policy$' \
  && ok "create-policy" || bad "create-policy $out"
expect_err ResourceAlreadyExistsException create-policy --policy-name dev-policy --policy-document "file://$T/pol.json"
expect_err MalformedPolicyException create-policy --policy-name p2 --policy-document '{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'
expect_err MalformedPolicyException create-policy --policy-name p2 --policy-document '{nope'
[ "$(iot get-policy --policy-name dev-policy | j 'd["defaultVersionId"]')" = 1 ] && ok "get-policy" || bad "get-policy"
expect_err ResourceNotFoundException get-policy --policy-name NOPE
[ "$(iot list-policies | j '[p["policyName"] for p in d["policies"]]')" = "['dev-policy']" ] && ok "list-policies" || bad "list-policies"
iot attach-policy --policy-name dev-policy --target "$arn1" && ok "attach-policy" || bad "attach-policy"
expect_err ResourceNotFoundException attach-policy --policy-name NOPE --target "$arn1"
expect_err ResourceNotFoundException attach-policy --policy-name dev-policy --target "arn:aws:iot:us-east-1:123456789012:cert/$(certid "$T/dev4.pem")"
[ "$(iot list-attached-policies --target "$arn1" | j '[p["policyName"] for p in d["policies"]]')" = "['dev-policy']" ] \
  && ok "list-attached-policies" || bad "list-attached-policies"
expect_err ResourceNotFoundException list-attached-policies --target "arn:aws:iot:us-east-1:123456789012:cert/$(certid "$T/dev4.pem")"
expect_err DeleteConflictException delete-policy --policy-name dev-policy
expect_err DeleteConflictException delete-certificate --certificate-id "$c1"
iot delete-certificate --certificate-id "$c1" --force-delete && ok "delete-certificate --force-delete (policy attached)" || bad "force delete"
expect_err ResourceNotFoundException describe-certificate --certificate-id "$c1"
[ "$(iot list-attached-policies --target "$arn2" | j 'len(d["policies"])')" = 0 ] && ok "no policies on cert 2" || bad "attached on 2"
iot attach-policy --policy-name dev-policy --target "$arn2" && iot detach-policy --policy-name dev-policy --target "$arn2" \
  && ok "detach-policy" || bad "detach-policy"
expect_err ResourceNotFoundException detach-policy --policy-name dev-policy --target "$arn2"
out=$(iot create-policy-version --policy-name dev-policy --policy-document "file://$T/pol.json" --set-as-default)
[ "$(echo "$out" | j 'd["policyVersionId"], d["isDefaultVersion"]')" = "('2', True)" ] && ok "create-policy-version --set-as-default" || bad "create version $out"
[ "$(iot list-policy-versions --policy-name dev-policy | j '[(v["versionId"], v["isDefaultVersion"]) for v in d["policyVersions"]]')" = "[('2', True), ('1', False)]" ] \
  && ok "list-policy-versions" || bad "list versions"
[ "$(iot get-policy-version --policy-name dev-policy --policy-version-id 1 | j 'd["isDefaultVersion"]')" = False ] && ok "get-policy-version" || bad "get version"
expect_err ResourceNotFoundException get-policy-version --policy-name dev-policy --policy-version-id 7
expect_err DeleteConflictException delete-policy --policy-name dev-policy
expect_err DeleteConflictException delete-policy-version --policy-name dev-policy --policy-version-id 2
iot set-default-policy-version --policy-name dev-policy --policy-version-id 1 && ok "set-default-policy-version" || bad "set default"
iot delete-policy-version --policy-name dev-policy --policy-version-id 2 && ok "delete-policy-version" || bad "delete version"
iot delete-policy --policy-name dev-policy && ok "delete-policy" || bad "delete-policy"
expect_err ResourceNotFoundException delete-policy --policy-name dev-policy

# --- deletions ---------------------------------------------------------------------------
iot delete-certificate --certificate-id "$c2" && ok "delete-certificate (REVOKED, unattached)" || bad "delete c2"
expect_err ResourceNotFoundException delete-certificate --certificate-id "$c2"
iot delete-thing --thing-name dev1 && ok "delete-thing" || bad "delete-thing"
iot delete-thing --thing-name dev1 && ok "delete-thing of a thing that is gone succeeds (AWS)" || bad "delete gone"
expect_err ResourceNotFoundException describe-thing --thing-name dev1
expect_err CertificateStateException delete-ca-certificate --certificate-id "$ca1"
iot delete-ca-certificate --certificate-id "$ca2" && ok "delete-ca-certificate" || bad "delete CA"
expect_err ResourceNotFoundException delete-ca-certificate --certificate-id "$ca2"
mkcert ca1 dev5
iot register-certificate --certificate-pem "file://$T/dev5.pem" >/dev/null
iot update-ca-certificate --certificate-id "$ca1" --new-status INACTIVE >/dev/null
expect_err DeleteConflictException delete-ca-certificate --certificate-id "$ca1"

# --- endpoint, output formats ---------------------------------------------------------------
[ "$(iot describe-endpoint --endpoint-type iot:Data-ATS | j 'd["endpointAddress"]')" = localhost ] && ok "describe-endpoint" || bad "describe-endpoint"
expect_err InvalidRequestException describe-endpoint --endpoint-type iot:Jobs
iot describe-thing --thing-name pg-1 --output text | grep -qP "^pg-1\tarn:aws:iot:\S*thing/pg-1\t" && ok "--output text" || bad "text: $(iot describe-thing --thing-name pg-1 --output text)"
iot describe-thing --thing-name pg-1 --output table | grep -q "| thingName .*| pg-1 " && ok "--output table" || bad "table"
iot describe-thing --thing-name pg-1 --output yaml >/dev/null 2>&1; [ $? -eq 252 ] && ok "--output yaml refused" || bad "yaml"
"$KL" iot --help | grep -q "list-certificates-by-ca" && ok "keylink iot --help lists subcommands" || bad "help"
[ "$(iot get-registration-code --query registrationCode --output text)" = "$code" ] && ok "--query NAME --output text" || bad "query text"
[ "$(iot list-things --query 'things[*].thingName' --output text)" = "$(printf 'dev9\tpg-1\tpg-2\tpg-3\tpg-4\tpg-5')" ] \
  && ok "--query 'things[*].thingName'" || bad "query projection: $(iot list-things --query 'things[*].thingName' --output text)"
[ "$(iot list-things --query 'things[-1].version')" = 1 ] && ok "--query with a negative index (JSON)" || bad "query index"
[ "$(iot describe-thing --thing-name pg-1 --query nothing.here)" = null ] && ok "--query with no match prints null" || bad "query null"
iot list-things --query 'things[?x]' >/dev/null 2>&1; [ $? -eq 252 ] && ok "unsupported --query -> 252" || bad "bad query"

# --- the API's guards ---------------------------------------------------------------------
TOKEN=$KEYLINK_TOKEN
h() { curl -s -o "$T/body" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$@"; }
[ "$(h -X POST --data '{"attributePayload":' "$API/things/badjson")" = 400 ] && grep -q InvalidRequestException "$T/body" \
  && ok "bad JSON -> 400 InvalidRequestException" || bad "bad JSON: $(cat "$T/body")"
[ "$(h -X POST --data '[1,2]' "$API/things/badjson")" = 400 ] && ok "JSON that is not an object -> 400" || bad "array body"
head -c 300000 /dev/zero | tr '\0' 'a' | sed 's/^/{"thingTypeName":"/; s/$/"}/' >"$T/big.json"
[ "$(h -X POST --data-binary "@$T/big.json" "$API/things/oversize")" = 413 ] && grep -q RequestEntityTooLargeException "$T/body" \
  && ok "300 KB body -> 413 RequestEntityTooLargeException" || bad "oversize: $(head -c 200 "$T/body")"
[ "$(h -X POST -H 'Transfer-Encoding: chunked' --data-binary "@$T/big.json" "$API/things/oversize2")" = 413 ] \
  && ok "300 KB chunked body -> 413" || bad "chunked oversize"
iot describe-thing --thing-name oversize >/dev/null 2>&1 || iot describe-thing --thing-name oversize2 >/dev/null 2>&1 \
  || ok "oversize requests created nothing"
[ "$(h "$API/no/such/path")" = 404 ] && ok "unknown path -> 404" || bad "unknown path"
[ "$(h -X PATCH "$API/cacertificates")" = 405 ] && ok "wrong method -> 405" || bad "405"
before=$(iot list-things | j 'len(d["things"])')
[ "$(curl -s -o "$T/body" -w '%{http_code}' -X POST --data '{}' "$API/things/no-token")" = 401 ] && grep -q UnauthorizedException "$T/body" \
  && ok "no token -> 401 UnauthorizedException" || bad "no token"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${TOKEN}x" -X POST --data '{}' "$API/things/bad-token")" = 401 ] \
  && ok "wrong token -> 401" || bad "wrong token"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Basic $TOKEN" -X DELETE "$API/things/pg-1")" = 401 ] \
  && ok "non-bearer auth -> 401" || bad "basic auth"
KEYLINK_TOKEN=wrong expect_err UnauthorizedException create-thing --thing-name cli-bad-token
printf 'wrong\n' >"$T/tokfile"
iot --token-file "$T/tokfile" create-thing --thing-name cli-bad-token2 >/dev/null 2>&1 && bad "wrong token file accepted"
after=$(iot list-things | j 'len(d["things"])')
[ "$before" = "$after" ] && iot describe-thing --thing-name pg-1 >/dev/null && ok "401s changed nothing ($after things)" || bad "things $before -> $after"
printf '%s\n' "$TOKEN" >"$T/tokfile"
env -u KEYLINK_TOKEN "$KL" iot --token-file "$T/tokfile" describe-thing --thing-name pg-1 >/dev/null && ok "--token-file" || bad "--token-file"
env -u KEYLINK_TOKEN "$KL" iot describe-thing --thing-name pg-1 >/dev/null 2>&1; [ $? -eq 253 ] && ok "no token at all -> 253" || bad "no token rc"
KEYLINK_ENDPOINT_URL=http://127.0.0.1:1 iot list-things >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 255 ] && grep -q "Could not connect" "$T/err" && ok "unreachable endpoint -> 255" || bad "unreachable rc=$rc"
[ $fails -eq 0 ] && echo "keylink iot commands: all passed" || echo "$fails failure(s)"
exit $((fails > 0))

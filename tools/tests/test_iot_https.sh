#!/usr/bin/env bash
# The control API over HTTPS (--api-tls yes): keylink iot with --ca-bundle (the endpoint's
# server-root-ca.pem) works; without it the server is not trusted; plain HTTP to the TLS
# port gets no answer; the bearer token is still required.
. "$(dirname "$0")/iot_env.sh"
start_kd --api-tls yes
case "$API" in https://*) ok "control API announced as $API" ;; *) bad "not https: $API" ;; esac
CA=$T/kd/server-root-ca.pem
iot --ca-bundle "$CA" create-thing --thing-name over-tls >/dev/null && ok "create-thing over HTTPS with --ca-bundle" || bad "https create"
[ "$(KEYLINK_CA_BUNDLE=$CA iot describe-thing --thing-name over-tls --query thingName --output text)" = over-tls ] \
  && ok "KEYLINK_CA_BUNDLE" || bad "env bundle"
iot list-things >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 255 ] && grep -q "Could not connect" "$T/err" && ok "untrusted server refused (255)" || bad "no bundle: rc=$rc $(cat "$T/err")"
mkca other
iot --ca-bundle "$T/other.pem" list-things >/dev/null 2>&1; [ $? -eq 255 ] && ok "wrong CA bundle refused" || bad "wrong bundle"
KEYLINK_TOKEN=wrong KEYLINK_CA_BUNDLE=$CA expect_err UnauthorizedException list-things
plain=${API/https:/http:}
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Authorization: Bearer $KEYLINK_TOKEN" "$plain/things")
[ "$code" != 200 ] && ok "plain HTTP to the TLS port gets no answer ($code)" || bad "plain http answered 200"
[ "$(curl -s --cacert "$CA" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEYLINK_TOKEN" "$API/things/over-tls")" = 200 ] \
  && ok "curl --cacert server-root-ca.pem verifies the server certificate" || bad "curl https"
[ $fails -eq 0 ] && echo "control API over HTTPS: all passed" || echo "$fails failure(s)"
exit $((fails > 0))

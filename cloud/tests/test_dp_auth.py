# Device authentication against the registry at connect time: mTLS, the MQTT 5
# keylink-es256-challenge (raw MQTT 5 client), JWT as password (Debian's paho-mqtt), and the
# whole refusal matrix, each with its code and its logged reason; revocation, detach and CA
# deactivation of a connected device; auto-registration; policy-denied publish/subscribe.
import datetime
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import paho.mqtt.client as paho  # noqa: E402

from dp_fixture import (Closed, Keylinkd, Mqtt, b64url, cert_id, check, es256_jws, fail,  # noqa: E402
                        issue, make_ca, key_pem, now, pem, tls_refused)

METHOD = "keylink-es256-challenge"
AUD = "keylink-test-audience"


def mtls(kd, cf, kf, cid, version=5, expect=0, tls="1.3"):
    m = Mqtt(kd.port, kd.tls(cf, kf, tls), version=version)
    m.connect(cid, expect=expect)
    return m


def refused_mtls(kd, cf, kf, cid, reason, v5=0x87, v3=5):
    for version, code in ((5, v5), (4, v3)):
        m = Mqtt(kd.port, kd.tls(cf, kf, "1.2"), version=version)
        m.connect(cid, expect=code)
        m.close()
    kd.wait_log(f"refused client {cid} from 127.0.0.1 (mtls): {reason}")


def challenge(kd, key, cert, cid, tamper=None, version_nonce=None):
    """Runs the MQTT 5 challenge; returns the CONNACK code (and the connection)."""
    m = Mqtt(kd.port, kd.tls(), version=5)
    r = m.connect(cid, cprops=[(0x15, METHOD)])
    check(r[0] == "auth" and r[1] == 0x18 and r[2][0x15] == METHOD.encode(),
          f"expected AUTH continue, got {r}")
    nonce = r[2][0x16]
    check(len(nonce) == 32, "nonce is 32 bytes")
    der = cert.public_bytes(__import__("cryptography.hazmat.primitives.serialization",
                                       fromlist=["Encoding"]).Encoding.DER)
    claims = {"nonce": b64url(version_nonce or nonce), "aud": AUD, "iat": int(time.time())}
    if tamper:
        claims = tamper(claims)
    hdr = {"alg": "ES256", "typ": "JWT", "x5c": [__import__("base64").b64encode(der).decode()]}
    rc = m.auth(0x18, METHOD, es256_jws(key, hdr, claims).encode())
    return rc, m, nonce


def jwt_connect(kd, thing, token, version=paho.MQTTv311):
    """Connects with paho (TLS, JWT as password); returns (rc, client)."""
    res = {}
    ev = threading.Event()
    c = paho.Client(client_id=thing, protocol=version)
    c.tls_set(ca_certs=kd.root_ca)
    c.username_pw_set("unused", token)

    def on_connect(cl, ud, flags, rc, *a):
        res["rc"] = rc
        ev.set()

    def on_disconnect(cl, ud, rc, *a):
        res.setdefault("rc", -1)
        ev.set()
    c.on_connect = on_connect
    c.on_disconnect = on_disconnect
    c.connect("localhost", kd.port, 30)
    c.loop_start()
    ev.wait(10)
    if res.get("rc") != 0:
        c.loop_stop()
        c.disconnect()
    return res.get("rc"), c


def main():
    kd = Keylinkd(args=["--audience", AUD, "--connect-timeout", "3000"])
    try:
        kd.policy("all", [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}])
        ca_key, ca, ca_id = kd.register_ca("dp test CA")
        _, dev1, arn1, kf1, cf1 = kd.device(ca_key, ca, "dev1")

        # ---- mTLS works over TLS 1.2 and 1.3, MQTT 3.1.1 and 5 --------------------------------
        for tls in ("1.2", "1.3"):
            for version in (4, 5):
                m = mtls(kd, cf1, kf1, "dev1", version=version, tls=tls)
                check(m.subscribe(("dt/dev1/#", 1)) == [1], "suback")
                check(m.publish("dt/dev1/x", b"hi", qos=1) == 0, "puback")
                got = m.recv()
                check(got["payload"] == b"hi", f"own message back: {got}")
                m.disconnect()
        # ALPN as AWS uses it, and SNI with another name
        ctx = kd.tls(cf1, kf1)
        ctx.set_alpn_protocols(["x-amzn-mqtt-ca"])
        m = Mqtt(kd.port, ctx, version=4)
        check(m.sock.selected_alpn_protocol() == "x-amzn-mqtt-ca", "ALPN x-amzn-mqtt-ca")
        m.connect("dev1", expect=0)
        m.disconnect()
        ctx = kd.tls(cf1, kf1)
        ctx.set_alpn_protocols(["mqtt"])
        m = Mqtt(kd.port, ctx, version=4)
        check(m.sock.selected_alpn_protocol() == "mqtt", "ALPN mqtt")
        m.close()

        # lifecycle event names the certificate
        w = mtls(kd, cf1, kf1, "presence-watch")
        w.subscribe(("$aws/events/presence/connected/dev1", 1))
        m = mtls(kd, cf1, kf1, "dev1")
        import json as _json
        ev = _json.loads(w.recv()["payload"])
        check(ev["principalIdentifier"] == cert_id(dev1) and ev["clientId"] == "dev1",
              f"presence event {ev}")
        m.disconnect()
        w.disconnect()

        # ---- the refusal matrix (mTLS) ---------------------------------------------------------
        # unregistered CA: the TLS handshake fails (unknown CA) and the reason is logged
        ox_key, ox = make_ca("other CA")
        sk, sc = issue(ox_key, ox, "stranger")
        scf, skf = kd.file("s.pem", pem(sc)), kd.file("s.key", key_pem(sk))
        e = tls_refused(kd.port, kd.tls(scf, skf, "1.2"))
        check("unknown ca" in e.lower(), f"unknown_ca alert: {e}")
        kd.wait_log("refused 127.0.0.1 at TLS: ca_not_registered")
        # a CA registered a second ago is trusted at once
        ca2_key, ca2, ca2_id = kd.register_ca("second CA")
        _, _, _, kf2, cf2 = kd.device(ca2_key, ca2, "dev2")
        mtls(kd, cf2, kf2, "dev2").disconnect()
        # ... and one deactivated is not
        kd.iot("update-ca-certificate", "--certificate-id", ca2_id, "--new-status", "INACTIVE")
        e = tls_refused(kd.port, kd.tls(cf2, kf2, "1.2"))
        check("bad certificate" in e.lower(), f"bad_certificate alert: {e}")
        kd.wait_log("refused 127.0.0.1 at TLS: ca_inactive")
        # unregistered certificate of a registered CA
        _, _, _, kf, cf = kd.device(ca_key, ca, "unreg", status=None)
        refused_mtls(kd, cf, kf, "unreg", "certificate_not_registered")
        for st, reason in (("INACTIVE", "certificate_inactive"),
                           ("REVOKED", "certificate_revoked"),
                           ("PENDING_ACTIVATION", "certificate_pending_activation")):
            name = "d-" + st.lower()
            _, _, _, kf, cf = kd.device(ca_key, ca, name, status=st)
            refused_mtls(kd, cf, kf, name, reason)
        _, _, _, kf, cf = kd.device(ca_key, ca, "loner", thing=False)
        refused_mtls(kd, cf, kf, "loner", "certificate_not_attached")
        # expired: registered while valid, then its notAfter passed
        _, sc, _, kf, cf = kd.device(ca_key, ca, "shortlived",
                                     after=now() + datetime.timedelta(seconds=4))
        mtls(kd, cf, kf, "shortlived").disconnect()
        time.sleep(max(0, sc.not_valid_after.timestamp() - time.time() + 1.2))
        e = tls_refused(kd.port, kd.tls(cf, kf, "1.2"))
        check("certificate expired" in e.lower(), f"certificate_expired alert: {e}")
        kd.wait_log("refused 127.0.0.1 at TLS: certificate_expired")
        # client id not allowed by the policy
        kd.policy("own-id", [{"Effect": "Allow", "Action": "iot:Connect",
                              "Resource": "arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}"},
                             {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
                              "Resource": "arn:aws:iot:*:*:topic/dt/${iot:Connection.Thing.ThingName}/*"},
                             {"Effect": "Allow", "Action": "iot:Subscribe",
                              "Resource": "arn:aws:iot:*:*:topicfilter/dt/${iot:Connection.Thing.ThingName}/*"}])
        _, _, _, kf3, cf3 = kd.device(ca_key, ca, "dev3", policy="own-id")
        refused_mtls(kd, cf3, kf3, "not-dev3", "not_allowed_by_policy")

        # ---- publish / subscribe outside the policy ---------------------------------------------
        m = mtls(kd, cf3, kf3, "dev3")
        check(m.subscribe(("dt/dev3/a", 1), ("dt/dev1/a", 1)) == [1, 0x87],
              "v5 subscribe outside policy gets 0x87")
        check(m.publish("dt/dev3/a", "ok", qos=1) == 0, "publish inside policy")
        check(m.recv()["payload"] == b"ok", "receive inside policy")
        check(m.publish("dt/dev1/a", "no", qos=1) == 0x87, "v5 QoS 1 publish outside -> 0x87")
        check(m.publish("dt/dev1/a", "no", qos=2) == 0x87, "v5 QoS 2 publish outside -> 0x87")
        m.publish("dt/dev1/a", "no", qos=0)
        try:
            m.wait_for((3,), 3)
            fail("v5 QoS 0 publish outside policy was not answered by DISCONNECT")
        except Closed as e:
            check("0x87" in str(e), f"DISCONNECT 0x87 for QoS 0 outside policy: {e}")
        kd.wait_log("client dev3: publish to dt/dev1/a denied by policy")
        kd.wait_log("client dev3: subscribe to dt/dev1/a denied by policy")
        for action in ("sub", "pub"):
            m = mtls(kd, cf3, kf3, "dev3", version=4)
            if action == "sub":
                m.send(8, 2, b"\x00\x05" + b"\x00\x09dt/dev1/a\x01")
            else:
                m.send(3, 2, b"\x00\x09dt/dev1/a\x00\x07no")
            check(m.closed_within(3) < 3, f"v3.1.1 {action} outside policy disconnects")

        # iot:Receive: a subscription the policy allows still gets only the topics it may receive
        kd.policy("recv", [{"Effect": "Allow", "Action": ["iot:Connect", "iot:Subscribe",
                                                          "iot:Publish"], "Resource": "*"},
                           {"Effect": "Allow", "Action": "iot:Receive",
                            "Resource": "arn:aws:iot:*:*:topic/in/*"}])
        _, _, _, kf8, cf8 = kd.device(ca_key, ca, "dev8", policy="recv")
        m = mtls(kd, cf8, kf8, "dev8")
        check(m.subscribe(("#", 1)) == [1], "subscribe # allowed")
        check(m.publish("out/a", "hidden", qos=1, retain=True) in (0, 0x10), "publish out/a")
        check(m.publish("in/a", "shown", qos=1) == 0, "publish in/a")
        check(m.recv()["payload"] == b"shown", "only the receivable topic arrives")
        m.no_message(0.3)
        m.disconnect()
        m = mtls(kd, cf8, kf8, "dev8")
        m.subscribe(("out/#", 1))
        m.no_message(0.3)  # the retained out/a is not receivable either
        m.disconnect()

        # ---- auto-registration -----------------------------------------------------------------
        ca3_key, ca3, ca3_id = kd.register_ca("auto CA", auto=True)
        watcher = mtls(kd, cf1, kf1, "watcher")
        watcher.subscribe(("$aws/events/certificates/registered/" + ca3_id, 1))
        ak, ac = issue(ca3_key, ca3, "newcomer")
        acf, akf = kd.file("a.pem", pem(ac)), kd.file("a.key", key_pem(ak))
        refused_mtls(kd, acf, akf, "newcomer", "certificate_pending_activation")
        ev = watcher.recv()
        import json
        body = json.loads(ev["payload"])
        check(body["certificateId"] == cert_id(ac) and body["caCertificateId"] == ca3_id and
              body["certificateStatus"] == "PENDING_ACTIVATION", f"registered event {body}")
        d = kd.iot("describe-certificate", "--certificate-id", cert_id(ac))
        check(d["certificateDescription"]["status"] == "PENDING_ACTIVATION",
              "auto-registered certificate is PENDING_ACTIVATION")
        watcher.disconnect()

        # ---- MQTT 5 challenge ------------------------------------------------------------------
        k4, c4, arn4, kf4, cf4 = kd.device(ca_key, ca, "dev4")
        rc, m, nonce = challenge(kd, k4, c4, "dev4")
        check(rc == 0, f"challenge accepted (CONNACK {rc})")
        check(m.connack_props.get(0x15) == METHOD.encode(), "CONNACK names the method")
        check(m.publish("dt/dev4/t", "c", qos=1) in (0, 0x10), "publish after challenge")
        m.disconnect()
        kd.wait_log("client dev4 connected from 127.0.0.1 (challenge")
        # wrong signature: signed by another key, certificate of dev4
        other = issue(ca_key, ca, "x")[0]
        rc, m, _ = challenge(kd, other, c4, "dev4")
        check(rc == 0x87, f"wrong signature refused 0x87, got {rc:#x}")
        kd.wait_log("refused client dev4 from 127.0.0.1 (challenge): challenge_bad_signature")
        # replayed nonce: a correctly signed answer to an old nonce
        rc, m, _ = challenge(kd, k4, c4, "dev4", version_nonce=nonce)
        check(rc == 0x87, f"replayed nonce refused, got {rc:#x}")
        kd.wait_log("refused client dev4 from 127.0.0.1 (challenge): challenge_wrong_or_used_nonce")
        rc, m, _ = challenge(kd, k4, c4, "dev4", tamper=lambda c: dict(c, aud="elsewhere"))
        check(rc == 0x87, "challenge with a wrong aud refused")
        m = Mqtt(kd.port, kd.tls(), version=5)
        check(m.connect("dev4", cprops=[(0x15, "SCRAM-SHA-1")]) == 0x8C, "unknown method 0x8C")
        # an unregistered certificate in x5c
        uk, uc = issue(ca_key, ca, "ghost")
        rc, m, _ = challenge(kd, uk, uc, "ghost")
        check(rc == 0x87, "challenge with an unregistered certificate refused")
        kd.wait_log("refused client ghost from 127.0.0.1 (challenge): certificate_not_registered")

        # ---- JWT as password (paho-mqtt) ---------------------------------------------------------
        k5, c5, arn5, _, _ = kd.device(ca_key, ca, "dev5")
        t = int(time.time())

        def tok(claims, hdr=None, key=k5):
            return es256_jws(key, hdr or {"alg": "ES256", "typ": "JWT"}, claims)
        good = tok({"iat": t, "exp": t + 3600, "aud": AUD})
        rc, c = jwt_connect(kd, "dev5", good)
        check(rc == 0, f"JWT accepted by keylinkd (paho rc {rc})")
        got = threading.Event()
        c.on_message = lambda cl, ud, msg: got.set() if msg.payload == b"jwt-ok" else None
        c.subscribe("dt/dev5/t", 1)
        time.sleep(0.3)
        c.publish("dt/dev5/t", b"jwt-ok", qos=1)
        check(got.wait(5), "paho JWT client got its message back")
        c.loop_stop()
        c.disconnect()
        kd.wait_log("client dev5 connected from 127.0.0.1 (jwt")
        h = b64url(b'{"alg":"none","typ":"JWT"}')
        body = b64url(('{"iat":%d,"exp":%d,"aud":"%s"}' % (t, t + 60, AUD)).encode())
        import hashlib
        import hmac
        hs = b64url(b'{"alg":"HS256","typ":"JWT"}')
        mac = b64url(hmac.new(pem(c5).encode(), f"{hs}.{body}".encode(), hashlib.sha256).digest())
        cases = [
            (f"{h}.{body}.", "jwt_alg_not_es256"),
            (f"{hs}.{body}.{mac}", "jwt_alg_not_es256"),
            (tok({"iat": t - 7200, "exp": t - 3600, "aud": AUD}), "jwt_expired"),
            (tok({"iat": t + 3600, "exp": t + 7200, "aud": AUD}), "jwt_iat_in_future"),
            (tok({"iat": t, "exp": t + 3600, "aud": "someone-else"}), "jwt_wrong_audience"),
            (tok({"iat": t - 60, "exp": t + 86400, "aud": AUD}), "jwt_lifetime_over_24h"),
            (tok({"iat": t, "exp": t + 3600, "aud": AUD}, key=other), "jwt_bad_signature"),
            # the lifetime check cannot be bypassed by overflow or out-of-range numbers
            (tok({"iat": -9223372036854775807, "exp": t + 10 * 365 * 86400, "aud": AUD}),
             "jwt_malformed"),
            (tok({"iat": t, "exp": 1e300, "aud": AUD}), "jwt_malformed"),
            (tok({"iat": t, "exp": "soon", "aud": AUD}), "jwt_malformed"),
        ]
        for token, reason in cases:
            rc, c = jwt_connect(kd, "dev5", token)
            check(rc == 4, f"{reason}: paho rc {rc}, expected 4 (bad user name or password)")
            kd.wait_log(f"refused client dev5 from 127.0.0.1 (jwt): {reason}")
        # 9 minutes of skew is tolerated
        rc, c = jwt_connect(kd, "dev5", tok({"iat": t + 540, "exp": t + 3600, "aud": AUD}))
        check(rc == 0, "iat 9 minutes ahead is within the skew")
        c.loop_stop()
        c.disconnect()
        m = Mqtt(kd.port, kd.tls(), version=5)
        check(m.connect("dev5", user="u", password=b"not.a.jwt") == 0x86, "v5 JWT refusal 0x86")
        m = Mqtt(kd.port, kd.tls(), version=5)
        check(m.connect("nobody") == 0x87, "no credentials at all: 0x87")
        kd.wait_log("refused client nobody from 127.0.0.1 (none): no_credentials")

        # ---- a connected device loses its rights: revoked, detached, CA deactivated ----------------
        k6, c6, arn6, kf6, cf6 = kd.device(ca_key, ca, "dev6")
        m = mtls(kd, cf6, kf6, "dev6")
        t0 = time.time()
        kd.iot("update-certificate", "--certificate-id", cert_id(c6), "--new-status", "REVOKED")
        t_api = time.time()
        gone = m.closed_within(3)
        check(gone < 1.0, f"revoked device dropped {gone:.3f}s after the API answered")
        check(getattr(m, "last_disconnect", 0x87) == 0x87, "v5 DISCONNECT 0x87 on revocation")
        print(f"revocation: API call {t_api - t0:.3f}s, then disconnected in {gone:.3f}s")
        refused_mtls(kd, cf6, kf6, "dev6", "certificate_revoked")
        # the challenge and JWT connections of a revoked certificate go too
        rc, m, _ = challenge(kd, k4, c4, "dev4")
        check(rc == 0, "dev4 challenge again")
        kd.iot("update-certificate", "--certificate-id", cert_id(c4), "--new-status", "INACTIVE")
        check(m.closed_within(3) < 1.0, "INACTIVE drops a challenge connection within 1 s")
        # detaching the certificate from its thing
        k7, c7, arn7, kf7, cf7 = kd.device(ca_key, ca, "dev7")
        m = mtls(kd, cf7, kf7, "dev7", version=4)
        kd.iot("detach-thing-principal", "--thing-name", "dev7", "--principal", arn7)
        check(m.closed_within(3) < 1.0, "detached certificate dropped within 1 s")
        refused_mtls(kd, cf7, kf7, "dev7", "certificate_not_attached")
        # TLS resumption skips the handshake's certificate check: CONNECT checks again
        _, c9, _, kf9, cf9 = kd.device(ca_key, ca, "dev9")
        ctx9 = kd.tls(cf9, kf9, "1.2")
        m = Mqtt(kd.port, ctx9, version=5)
        m.connect("dev9", expect=0)
        sess = m.sock.session
        m.disconnect()
        m = Mqtt(kd.port, ctx9, version=5, session=sess)
        check(m.sock.session_reused, "TLS 1.2 session resumed")
        m.connect("dev9", expect=0)
        m.disconnect()
        kd.iot("update-certificate", "--certificate-id", cert_id(c9), "--new-status", "REVOKED")
        m = Mqtt(kd.port, ctx9, version=5, session=sess)
        check(m.sock.session_reused, "resumed again")
        m.connect("dev9", expect=0x87)
        kd.wait_log("refused client dev9 from 127.0.0.1 (mtls): certificate_revoked")
        # deactivating the CA
        m1 = mtls(kd, cf1, kf1, "dev1")
        kd.iot("update-ca-certificate", "--certificate-id", ca_id, "--new-status", "INACTIVE")
        check(m1.closed_within(3) < 1.0, "CA deactivation drops its devices within 1 s")
        tls_refused(kd.port, kd.tls(cf1, kf1, "1.2"))
        kd.iot("update-ca-certificate", "--certificate-id", ca_id, "--new-status", "ACTIVE")
        mtls(kd, cf1, kf1, "dev1").disconnect()

        # ---- metrics count the refusals by reason ---------------------------------------------------
        text = kd.metrics()
        for reason in ("ca_not_registered", "certificate_revoked", "jwt_expired",
                       "challenge_bad_signature", "not_allowed_by_policy"):
            line = [ln for ln in text.splitlines()
                    if ln.startswith(f'keylinkd_auth_failures_total{{reason="{reason}"}}')]
            check(line and float(line[0].split()[-1]) >= 1, f"metric for {reason}")
        check(kd.metric("keylinkd_tls_handshakes_total") > 10, "handshake counter")
        check(kd.metric("keylinkd_registry_disconnects_total") >= 4, "registry disconnects")
        print("auth matrix ok")
    except Exception:
        print(kd.log()[-6000:])
        raise
    finally:
        kd.stop()


if __name__ == "__main__":
    main()

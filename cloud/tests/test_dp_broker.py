# The MQTT 3.1.1/5 broker of keylinkd, driven by a raw client over the plaintext development
# listener (and TLS for the timeouts): QoS 0/1/2, wildcards and $-topics, retained messages,
# wills, persistent sessions and their bounded queue, session expiry, takeover, keep-alive,
# maximum packet size, topic limits, MQTT 5 properties, presence events, timeouts, the dev
# policy and the loopback-only rule.
import json
import os
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dp_fixture import (KEYLINKD, Closed, Keylinkd, Mqtt, check, fail, free_port, mstr,  # noqa: E402
                        varint)


def dev(kd, cid, version=5, **kw):
    m = Mqtt(kd.dev_port, None, version=version)
    kw.setdefault("expect", 0)
    m.connect(cid, **kw)
    return m


def qos_and_wildcards(kd):
    for version in (4, 5):
        s = dev(kd, f"sub{version}", version)
        check(s.subscribe(("w/+/t", 2), ("w/#", 1), ("x/y", 0)) == [2, 1, 0], "suback codes")
        p = dev(kd, f"pub{version}", version)
        for q in (0, 1, 2):
            rc = p.publish("w/a/t", f"m{q}", qos=q)
            check(rc in (None, 0), f"ack for QoS {q}: {rc}")
            got = s.recv()
            # overlapping subscriptions: one copy at the highest granted QoS
            check(got["payload"] == f"m{q}".encode() and got["qos"] == q, f"QoS {q}: {got}")
            s.no_message(0.2)
        p.publish("x/y", "down", qos=2)
        check(s.recv()["qos"] == 0, "QoS downgraded to the subscription's")
        p.publish("w", "parent", qos=1)
        check(s.recv()["payload"] == b"parent", "w/# matches w")
        if version == 5:
            check(p.publish("nobody/here", "x", qos=1) == 0x10, "v5 no matching subscribers")
        p.disconnect()
        s.disconnect()
    # $-topics are not matched by leading wildcards; publishing to $aws/events is refused
    s = dev(kd, "dollar")
    s.subscribe(("#", 0), ("+/x", 0), ("$app/x", 0))
    p = dev(kd, "dollar-pub")
    p.publish("$app/x", "d")
    got = s.recv()
    check(got["topic"] == "$app/x", "explicit $ filter matches")
    s.no_message(0.3)
    check(p.publish("$aws/events/presence/connected/fake", "x", qos=1) == 0x87,
          "clients cannot publish server events")
    p.disconnect()
    s.disconnect()


def retained(kd):
    p = dev(kd, "rp")
    p.publish("r/a", "keep-a", qos=1, retain=True)
    p.publish("r/b/c", "keep-c", qos=0, retain=True)
    p.publish("sync/t", "barrier", qos=1)  # acked: the QoS 0 one is retained by now
    s = dev(kd, "rs")
    s.subscribe(("r/#", 1))
    got = sorted([s.recv(), s.recv()], key=lambda m: m["topic"])
    check([g["payload"] for g in got] == [b"keep-a", b"keep-c"] and all(g["retain"] for g in got),
          f"retained delivered with retain=1: {got}")
    check(got[0]["qos"] == 1 and got[1]["qos"] == 0, "retained QoS is min(pub, sub)")
    p.publish("r/a", "live", qos=1, retain=True)
    m = s.recv()
    check(m["payload"] == b"live" and m["retain"] == 0, "live delivery has retain=0")
    p.publish("r/a", b"", retain=True)  # clears
    s.recv()
    s2 = dev(kd, "rs2")
    s2.subscribe(("r/+", 1))
    s2.no_message(0.3)
    s2.subscribe(("r/b/+", 0x20 | 1))  # retain handling 2: none at subscribe
    s2.no_message(0.3)
    s2.subscribe(("r/b/c", 1))
    check(s2.recv()["payload"] == b"keep-c", "retain handling 0 sends")
    # retain-as-published
    s2.subscribe(("rap/t", 0x08 | 1))
    p.publish("rap/t", "x", qos=1, retain=True)
    check(s2.recv()["retain"] == 1, "retain as published")
    for c in (p, s, s2):
        c.disconnect()


def wills(kd):
    s = dev(kd, "wwatch")
    s.subscribe(("will/#", 1))
    for version in (4, 5):
        a = dev(kd, f"wa{version}", version, will=("will/a", b"gone", 1, False))
        a.close()  # no DISCONNECT: the will goes out
        got = s.recv()
        check(got["topic"] == "will/a" and got["payload"] == b"gone", f"will v{version}")
        b = dev(kd, f"wb{version}", version, will=("will/b", b"no", 1, False))
        b.disconnect()
        s.no_message(0.3)
    c = dev(kd, "wc", 5, will=("will/c", b"asked", 0, False,
                               [(0x26, ("k", "v")), (0x03, "text/plain")]))
    c.disconnect(rc=0x04)  # DISCONNECT with will message
    got = s.recv()
    check(got["payload"] == b"asked" and got["props"].get(0x03) == b"text/plain" and
          got["props"].get(0x26) == [(b"k", b"v")], f"v5 will with properties: {got}")
    # MQTT 5 Will Delay Interval: sent after the delay, not at all when the client is back
    d = dev(kd, "wd", 5, cprops=[(0x11, 30)], will=("will/d", b"late", 1, False, [(0x18, 1)]))
    d.close()
    s.no_message(0.6)  # not at once...
    got = s.recv(15)  # ...but after its delay (how soon is not asserted: the machine is shared)
    check(got["payload"] == b"late", f"delayed will: {got}")
    d = dev(kd, "wd2", 5, cprops=[(0x11, 30)], will=("will/d2", b"never", 1, False, [(0x18, 2)]))
    d.close()
    time.sleep(0.3)
    d = dev(kd, "wd2", 5, clean=False, cprops=[(0x11, 30)])
    s.no_message(3.0)
    d.disconnect()
    s.disconnect()


def sessions(kd):
    # v3.1.1 persistent session: QoS 1 queued while offline, QoS 0 not
    a = dev(kd, "pers", 4, clean=False)
    a.subscribe(("q/#", 1))
    a.disconnect()
    # DISCONNECT is not answered: wait until keylinkd has taken the session offline, or the
    # QoS 0 message below may still find it online (and be queued for delivery)
    kd.wait_log("client pers disconnected (CLIENT_INITIATED_DISCONNECT)", timeout=10)
    p = dev(kd, "qpub", 4)
    for i in range(3):
        p.publish("q/t", f"m{i}", qos=1)
    p.publish("q/t", "lost", qos=0)
    p.publish("sync/t", "barrier", qos=1)  # acked: the QoS 0 one was routed before it
    a = dev(kd, "pers", 4, clean=False)
    check(a.session_present == 1, "session present")
    got = [a.recv()["payload"] for _ in range(3)]
    check(got == [b"m0", b"m1", b"m2"], f"offline queue in order: {got}")
    a.no_message(0.3)
    a.disconnect()
    # the offline queue is bounded (1000 messages)
    for i in range(1010):
        p.send(3, 2, mstr("q/t") + (i % 60000 + 1).to_bytes(2, "big") + b"x%d" % i)
    for _ in range(1010):
        p.wait_for((4,))
    a = dev(kd, "pers", 4, clean=False)
    n = 0
    try:
        while True:
            a.recv(1.0)
            n += 1
    except (socket.timeout, TimeoutError):
        pass
    check(n == 1000, f"offline queue bounded at 1000, got {n}")
    # clean session discards it
    a.disconnect()
    a = dev(kd, "pers", 4, clean=True)
    check(a.session_present == 0, "clean session starts fresh")
    a.disconnect()
    # v5 session expiry
    b = dev(kd, "exp5", 5, clean=True, cprops=[(0x11, 1)])
    b.subscribe(("e/t", 1))
    b.disconnect()
    b = dev(kd, "exp5", 5, clean=False, cprops=[(0x11, 60)])
    check(b.session_present == 1, "v5 session kept within its expiry")
    b.disconnect()
    b = dev(kd, "exp5", 5, clean=False, cprops=[(0x11, 1)])
    b.disconnect()
    time.sleep(1.6)
    b = dev(kd, "exp5", 5, clean=False)
    check(b.session_present == 0, "v5 session gone after its expiry")
    b.disconnect()
    # v5 message expiry in an offline queue
    c = dev(kd, "mexp", 5, clean=True, cprops=[(0x11, 60)])
    c.subscribe(("me/t", 1))
    c.disconnect()
    kd.wait_log("client mexp disconnected", timeout=10)  # offline before the publishes
    p5 = dev(kd, "mexp-pub", 5)
    p5.publish("me/t", "short", qos=1, pprops=[(0x02, 1)])
    p5.publish("me/t", "long", qos=1, pprops=[(0x02, 100)])
    time.sleep(1.5)
    c = dev(kd, "mexp", 5, clean=False, cprops=[(0x11, 60)])
    got = c.recv()
    check(got["payload"] == b"long" and 0 < got["props"].get(0x02, 0) <= 100,
          f"expired message dropped, remaining expiry sent: {got}")
    c.no_message(0.3)
    c.disconnect()
    p5.disconnect()
    p.disconnect()
    # an unacknowledged QoS 1 delivery is resent with DUP when the session comes back
    u = dev(kd, "unacked", 4, clean=False)
    u.subscribe(("ua/t", 1))
    p4 = dev(kd, "ua-pub", 4)
    p4.publish("ua/t", "again", qos=1)
    t, f, b = u.packet(5)  # read it without PUBACK
    check(t == 3 and not f & 8, "first delivery without DUP")
    u.close()
    time.sleep(0.2)
    u = dev(kd, "unacked", 4, clean=False)
    got = u.recv()
    check(got["payload"] == b"again" and got["dup"] == 1 and got["qos"] == 1,
          f"resent with DUP: {got}")
    u.no_message(0.3)
    u.disconnect()
    # a QoS 2 PUBLISH sent twice before PUBREL is delivered once
    q2 = dev(kd, "q2sub", 5)
    q2.subscribe(("q2/t", 2))
    body = mstr("q2/t") + b"\x00\x2a" + b"\x00" + b"once"
    p5b = dev(kd, "q2pub", 5)
    p5b.send(3, 4, body)
    check(p5b.wait_for((5,))[2][:2] == b"\x00\x2a", "PUBREC")
    p5b.send(3, 4 | 8, body)  # DUP resend
    check(p5b.wait_for((5,))[2][:2] == b"\x00\x2a", "PUBREC again")
    p5b.send(6, 2, b"\x00\x2a")
    t, f, b = p5b.wait_for((7,))
    check(len(b) == 2 or b[2] == 0, "PUBCOMP success")
    p5b.send(6, 2, b"\x00\x2a")
    t, f, b = p5b.wait_for((7,))
    check(len(b) > 2 and b[2] == 0x92, "PUBREL for an unknown id: PUBCOMP 0x92")
    check(q2.recv()["payload"] == b"once", "QoS 2 delivered")
    q2.no_message(0.3)
    q2.disconnect()
    p5b.disconnect()
    p4.disconnect()
    # takeover: the old connection gets DISCONNECT 0x8E
    watch = dev(kd, "twin-watch")
    watch.subscribe(("$aws/events/presence/disconnected/twin", 1))
    old = dev(kd, "twin", 5)
    new = dev(kd, "twin", 5)
    try:
        old.wait_for((3,), 3)
        fail("old connection not told about the takeover")
    except Closed as e:
        check("0x8e" in str(e), f"session taken over: {e}")
    check(new.publish("t/x", "y", qos=1) in (0, 0x10), "new connection works")
    new.disconnect()
    kd.wait_log("client twin: session taken over")
    reasons = sorted(json.loads(watch.recv()["payload"])["disconnectReason"] for _ in range(2))
    check(reasons == ["CLIENT_INITIATED_DISCONNECT", "DUPLICATE_CLIENTID"],
          f"presence disconnect reasons {reasons}")
    watch.disconnect()


def v5_properties(kd):
    s = dev(kd, "props-sub", 5)
    check(s.subscribe(("pp/#", 1), sub_id=42) == [1], "suback")
    s.subscribe(("pp/nolocal", 0x04 | 1))
    p = dev(kd, "props-pub", 5)
    p.publish("pp/a", "x", qos=1, pprops=[(0x01, 1), (0x03, "application/json"),
                                            (0x08, "resp/t"), (0x09, b"\x01\x02"),
                                            (0x26, ("a", "1")), (0x26, ("b", "2"))])
    got = s.recv()
    pr = got["props"]
    check(pr.get(0x0B) == 42 and pr.get(0x01) == 1 and pr.get(0x03) == b"application/json" and
          pr.get(0x08) == b"resp/t" and pr.get(0x09) == b"\x01\x02" and
          pr.get(0x26) == [(b"a", b"1"), (b"b", b"2")], f"properties forwarded: {pr}")
    # no local: own messages on that filter are not sent back
    s.publish("pp/nolocal", "self", qos=1)
    got = s.recv()  # still matches pp/# (no No Local there)
    check(got["payload"] == b"self" and got["props"].get(0x0B) == 42, "pp/# copy only")
    s.no_message(0.3)
    # payload format 1 with invalid UTF-8 is refused
    p.send(3, 0, mstr("pp/a") + bytes([2, 0x01, 0x01]) + b"\xff\xfe")
    try:
        p.wait_for((3,), 3)
        fail("bad UTF-8 payload accepted")
    except Closed as e:
        check("0x99" in str(e), f"payload format invalid: {e}")
    # topic alias: we announce maximum 0
    q = dev(kd, "alias", 5)
    check(q.connack_props.get(0x22) == 0 and q.connack_props.get(0x21) == 16 and
          q.connack_props.get(0x27) == 128 * 1024, f"CONNACK properties {q.connack_props}")
    q.send(3, 0, mstr("pp/a") + bytes([3, 0x23, 0, 1]) + b"x")
    try:
        q.wait_for((3,), 3)
        fail("topic alias accepted")
    except Closed as e:
        check("0x94" in str(e), f"topic alias invalid: {e}")
    # a receiver's Maximum Packet Size is respected (the message is dropped for it)
    small = dev(kd, "small", 5, cprops=[(0x27, 100)])
    small.subscribe(("big/t", 0))
    p2 = dev(kd, "bigpub", 5)
    p2.publish("big/t", b"x" * 200)
    p2.publish("big/t", b"ok")
    check(small.recv()["payload"] == b"ok", "oversized message skipped for that receiver")
    for c in (s, small, p2):
        c.disconnect()
    # keep-alive 0 becomes 1200 (Server Keep Alive)
    k = dev(kd, "ka0", 5, keepalive=0)
    check(k.connack_props.get(0x13) == 1200, "server keep alive 1200")
    k.disconnect()


def limits(kd):
    def closed_with(m, code, what):
        try:
            m.wait_for((3,), 3)
            fail(f"{what}: still open")
        except Closed as e:
            check(f"{code:#x}" in str(e), f"{what}: {e}")
    m = dev(kd, "lim")
    m.send(3, 0, mstr("a/b/c/d/e/f/g/h/i") + b"\x00x")
    closed_with(m, 0x90, "8 slashes")
    m = dev(kd, "lim")
    m.send(3, 0, mstr("t" * 257) + b"\x00x")
    closed_with(m, 0x90, "257-byte topic")
    m = dev(kd, "lim")
    check(m.subscribe(("a/#/b", 1), ("a+", 1), ("$share/g/t", 1), ("ok/+", 1)) ==
          [0x8F, 0x8F, 0x9E, 1], "invalid filters and shared subscriptions")
    m.disconnect()
    # maximum packet size 128 KiB
    m = dev(kd, "lim")
    body = mstr("big") + b"\x00" + b"x" * (128 * 1024)
    m.send(3, 0, body)
    closed_with(m, 0x95, "packet over 128 KiB")
    m = dev(kd, "lim")
    m.publish("big", b"x" * (120 * 1024), qos=1)  # under the limit is fine
    m.disconnect()
    # two large packets and a split PINGREQ in one write, then its last byte later
    bs = dev(kd, "bigsub")
    bs.subscribe(("big/1", 0))
    m = dev(kd, "lim")
    body = mstr("big/1") + b"\x00" + b"a" * 100000
    pkt = bytes([0x30]) + varint(len(body)) + body
    m.sock.sendall(pkt + pkt + bytes([0xC0]))
    time.sleep(0.2)
    m.sock.sendall(b"\x00")
    m.wait_for((13,))
    check([len(bs.recv()["payload"]) for _ in range(2)] == [100000, 100000],
          "back-to-back large packets")
    bs.disconnect()
    m.disconnect()
    # keep-alive x 1.5
    m = dev(kd, "ka", 5, keepalive=1)
    t = m.closed_within(8)
    # 1.5 x the keep-alive; the upper bound leaves room for a busy machine
    check(1.2 < t < 5.0, f"keep-alive 1 s: dropped after {t:.2f}s")
    check(getattr(m, "last_disconnect", 0) == 0x8D, "DISCONNECT 0x8D keep alive timeout")
    m = dev(kd, "ka3", 4, keepalive=1)
    for _ in range(4):  # PINGREQ keeps it alive
        time.sleep(0.6)
        m.send(12, 0, b"")
        m.wait_for((13,))
    m.disconnect()
    # protocol errors
    m = Mqtt(kd.dev_port, None)
    m.send(12, 0, b"")  # first packet not CONNECT
    m.closed_within(2)
    m = Mqtt(kd.dev_port, None)
    m.send(1, 0, mstr("MQTT") + bytes([3, 2, 0, 60]) + mstr("old"))
    t, _, b = m.packet()
    check(t == 2 and b[1] == 1, "unsupported protocol level -> CONNACK 1")
    m = Mqtt(kd.dev_port, None, version=4)
    check(m.connect("c" * 129) == 2, "client id over 128 bytes -> identifier rejected")
    m = Mqtt(kd.dev_port, None, version=4)
    check(m.connect("", clean=False) == 2, "empty client id with a persistent session")
    # a client id cannot forge log lines
    m = dev(kd, "evil\nkeylinkd: dp: client forged connected", 4)
    m.disconnect()
    kd.wait_log("client evil?keylinkd: dp: client forged connected")
    check("\nkeylinkd: dp: client forged" not in kd.log(), "control characters reach the log")
    m = Mqtt(kd.dev_port, None, version=5)
    check(m.connect("", expect=0) == 0 and m.connack_props.get(0x12, b"").startswith(b"kl-"),
          "v5 empty client id gets an assigned one")
    m.disconnect()


def presence(kd):
    s = dev(kd, "pres-watch")
    s.subscribe(("$aws/events/presence/+/+", 1))

    def event(cid):
        """The next presence event of cid (a client of an earlier test may still be on its
        way out: its event is skipped)."""
        while True:
            m = s.recv(10)
            ev = json.loads(m["payload"])
            if ev["clientId"] == cid:
                return m, ev
    a = dev(kd, "pres-a", 4)
    _, con = event("pres-a")
    check(con["eventType"] == "connected", f"connected {con}")
    a.disconnect()
    m, ev = event("pres-a")
    check(m["topic"] == "$aws/events/presence/disconnected/pres-a" and
          ev["eventType"] == "disconnected" and ev["clientInitiatedDisconnect"] is True,
          f"disconnected {ev}")
    # both events of one connection pair up; the next connection gets a new id, a higher version
    check(ev["sessionIdentifier"] == con["sessionIdentifier"] and
          ev["versionNumber"] == con["versionNumber"] and con["versionNumber"] > 0,
          f"one session id/version per connection: {con} / {ev}")
    a = dev(kd, "pres-a", 4)
    _, con2 = event("pres-a")
    check(con2["sessionIdentifier"] != con["sessionIdentifier"] and
          con2["versionNumber"] > con["versionNumber"], f"second connection {con2}")
    a.disconnect()
    event("pres-a")
    s.disconnect()


def timeouts(kd):
    # plain TCP to the dev listener, nothing sent: closed after the connect timeout (1.5 s)
    t0 = time.time()
    s = socket.create_connection(("127.0.0.1", kd.dev_port))
    s.settimeout(5)
    check(s.recv(10) == b"", "silent client closed")
    dt = time.time() - t0
    # not before the 1.5 s deadline; the upper bounds only need to be well under what a
    # deadline that never fired (or one extended by the dribble: 4.8 s) would give, with
    # slack for a busy machine
    check(1.2 < dt < 4.0, f"silent client dropped after {dt:.2f}s")
    # slowloris: a CONNECT dribbled byte by byte does not extend the deadline
    s = socket.create_connection(("127.0.0.1", kd.dev_port))
    pkt = bytes([0x10, 16]) + mstr("MQTT") + bytes([4, 2, 0, 60]) + mstr("slow")
    t0 = time.time()
    try:
        for b in pkt[:-1]:
            s.send(bytes([b]))
            time.sleep(0.3)
    except OSError:
        pass
    dt = time.time() - t0
    check(dt < 4.0, f"slow CONNECT dropped after {dt:.2f}s")
    # TLS listener: TCP open but no handshake (half-open), then handshake but no CONNECT
    t0 = time.time()
    s = socket.create_connection(("127.0.0.1", kd.port))
    s.settimeout(5)
    check(s.recv(10) == b"", "no TLS handshake: closed")
    check(time.time() - t0 < 4.0, "handshake timeout")
    ctx = ssl.create_default_context(cafile=kd.root_ca)
    t0 = time.time()
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", kd.port)),
                        server_hostname="localhost")
    s.settimeout(5)
    try:
        check(s.recv(10) == b"", "TLS without CONNECT closed")
    except (ssl.SSLError, ConnectionResetError):
        pass
    check(time.time() - t0 < 4.0, "CONNECT timeout after TLS")
    kd.wait_log("timeout after 1500 ms, dropped")
    check(kd.metric("keylinkd_timeouts_total") >= 4, "timeouts counted")


def dev_policy_and_loopback():
    # a non-loopback development listener is refused at start
    r = subprocess.run([KEYLINKD, "--data-dir", "/tmp/kl-dp-never", "--listen", "127.0.0.1:0",
                        "--api", "127.0.0.1:0", "--dev-listener", f"0.0.0.0:{free_port()}"],
                       capture_output=True, text=True, timeout=20)
    check(r.returncode != 0 and "loopback" in r.stderr, f"dev listener on 0.0.0.0: {r.stderr}")
    subprocess.run(["rm", "-rf", "/tmp/kl-dp-never"])
    # a data-plane port that is taken stops the start with a message
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    r = subprocess.run([KEYLINKD, "--data-dir", "/tmp/kl-dp-never2", "--listen",
                        f"127.0.0.1:{busy.getsockname()[1]}", "--api", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=20)
    busy.close()
    subprocess.run(["rm", "-rf", "/tmp/kl-dp-never2"])
    check(r.returncode == 1 and "cannot listen" in r.stderr, f"port in use: {r.stderr}")
    # --dev-policy: dev clients get that policy; a policy that does not exist stops the start
    kd = Keylinkd()
    kd.policy("devpol", [{"Effect": "Allow", "Action": ["iot:Connect", "iot:Receive"],
                          "Resource": "*"},
                         {"Effect": "Allow", "Action": ["iot:Publish", "iot:Subscribe"],
                          "Resource": ["arn:aws:iot:*:*:topic/open/*",
                                       "arn:aws:iot:*:*:topicfilter/open/*"]}])
    tmp = kd.tmp
    kd.stop(keep=True)
    r = subprocess.run([KEYLINKD, "--data-dir", kd.dir, "--listen", "127.0.0.1:0", "--api",
                        "127.0.0.1:0", "--dev-listener", f"127.0.0.1:{free_port()}",
                        "--dev-policy", "nosuch"], capture_output=True, text=True, timeout=20)
    check(r.returncode != 0 and "nosuch" in r.stderr, f"unknown dev policy: {r.stderr}")
    kd = Keylinkd(dev=True, args=["--dev-policy", "devpol"], tmp=tmp)
    try:
        m = dev(kd, "d1", 5)
        check(m.subscribe(("open/a", 1), ("closed/a", 1)) == [1, 0x87], "dev policy subscribe")
        check(m.publish("open/a", "yes", qos=1) == 0, "dev policy publish allowed")
        check(m.recv()["payload"] == b"yes", "dev policy receive")
        check(m.publish("closed/a", "no", qos=1) == 0x87, "dev policy publish denied")
        m.disconnect()
    finally:
        kd.stop()


def hostile(kd):
    """Mutated packets after a good CONNECT: each is handled or the connection closed; the
    broker keeps serving (the sanitizer build catches memory errors)."""
    import random
    rnd = random.Random(7648)
    samples = [
        (3, 2, mstr("h/t") + b"\x00\x01" + b"\x00" + b"payload"),
        (3, 0, mstr("h/t") + bytes([9, 0x26]) + mstr("k") + mstr("v") + b"x"),
        (8, 2, b"\x00\x02" + bytes([2, 0x0B, 5]) + mstr("h/#") + b"\x01"),
        (10, 2, b"\x00\x03\x00" + mstr("h/#")),
        (4, 0, b"\x00\x01\x00\x00"),
        (6, 2, b"\x00\x01"),
        (14, 0, b"\x00\x00"),
        (15, 0, b"\x18\x00"),
    ]
    for i in range(300):
        version = 5 if i % 3 else 4
        m = dev(kd, f"hostile{i % 7}", version)
        t, f, body = samples[rnd.randrange(len(samples))]
        body = bytearray(body)
        for _ in range(rnd.randrange(1, 4)):
            op = rnd.randrange(3)
            if op == 0 and body:
                body[rnd.randrange(len(body))] ^= 1 << rnd.randrange(8)
            elif op == 1 and body:
                del body[rnd.randrange(len(body)):]
            else:
                body.insert(rnd.randrange(len(body) + 1), rnd.randrange(256))
        try:
            m.send(t, f, bytes(body))
            m.sock.settimeout(0.05)
            while True:
                m.packet(0.05)
        except (Closed, OSError, socket.timeout, IndexError):
            pass
        m.close()
    ok = dev(kd, "after-hostile", 5)
    check(ok.publish("h/ok", "fine", qos=1) in (0, 0x10), "broker still serves")
    ok.disconnect()


def vanishing_subscribers(kd):
    """Subscribers that vanish (RST) while a publisher floods their topic: the worker's mailbox
    closes such a connection while its own socket event may still be in the same epoll batch;
    the connection must not be touched after it is closed (a use-after-free once; the
    sanitizer build catches a regression). TLS 1.2, so the records are keylinkd's."""
    import struct
    import threading
    kd.policy("vanish-all", [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}])
    ca_key, ca, _ = kd.register_ca("vanish CA")
    _, _, _, kf, cf = kd.device(ca_key, ca, "vanish1", policy="vanish-all")
    pub = Mqtt(kd.port, kd.tls(cf, kf, "1.2"), version=4)
    pub.connect("v-pub", expect=0)
    stop = []

    def flood():
        while not stop:
            try:
                pub.publish("v/t", os.urandom(3000))
            except (OSError, Closed):
                return
    th = threading.Thread(target=flood)
    th.start()
    try:
        for i in range(150):
            s = Mqtt(kd.port, kd.tls(cf, kf, "1.2"), version=4)
            s.connect(f"v-sub{i % 4}", expect=0)
            s.send(8, 2, struct.pack(">H", 1) + mstr("v/t") + b"\x00")
            time.sleep(0.005)
            s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.sock.close()
            check(kd.proc.poll() is None, f"keylinkd died after {i + 1} vanished subscribers")
    finally:
        stop.append(1)
        th.join()
    pub.close()
    ok = dev(kd, "after-vanish", 5)
    check(ok.publish("v/ok", "fine", qos=1) in (0, 0x10), "broker still serves")
    ok.disconnect()


def out_of_descriptors():
    """With its descriptors used up keylinkd pauses accepting, then serves again."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))
    kd = Keylinkd(dev=True, preexec=limit)
    try:
        held = []
        for i in range(60):
            try:
                m = Mqtt(kd.dev_port, None, version=4, timeout=1.0)
                m.connect(f"fd{i}", expect=0)
                held.append(m)
            except (OSError, Closed, socket.timeout):
                break
        check(0 < len(held) < 48, f"descriptors ran out after {len(held)} connections")
        kd.wait_log("accept: out of file descriptors, pausing new connections")
        for m in held:
            m.disconnect()
        time.sleep(0.5)
        m = dev(kd, "after", 4)
        m.disconnect()
        print(f"out of descriptors after {len(held)} connections, then served again")
    finally:
        kd.stop()


def main():
    kd = Keylinkd(dev=True, args=["--connect-timeout", "1500"])
    try:
        qos_and_wildcards(kd)
        retained(kd)
        wills(kd)
        sessions(kd)
        v5_properties(kd)
        limits(kd)
        presence(kd)
        timeouts(kd)
        hostile(kd)
        vanishing_subscribers(kd)
        check(kd.metric("keylinkd_messages_in_total") > 1000, "messages in counted")
        check(kd.metric("keylinkd_messages_out_total") > 1000, "messages out counted")
        print("broker ok")
    except Exception:
        print(kd.log()[-5000:])
        raise
    finally:
        kd.stop()
    dev_policy_and_loopback()
    out_of_descriptors()


if __name__ == "__main__":
    main()

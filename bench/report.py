#!/usr/bin/python3
"""Turns bench/run.sh's raw measurements into bench.md, bench.json and bench.png.

usage: report.py RAW.tsv MACHINE.txt DEVICE_SIZE.txt OUT_DIR
RAW.tsv lines: group, subject (broker, transport, ...), key, run, value. Every figure
reported is the median over the runs.
"""
import json
import os
import statistics
import subprocess
import sys
from collections import defaultdict

raw, machine_f, devsize_f, out = sys.argv[1:5]
vals = defaultdict(list)
for line in open(raw):
    parts = line.rstrip("\n").split("\t")
    if len(parts) != 5 or parts[4] == "":
        continue
    try:
        vals[(parts[0], parts[1], parts[2])].append(float(parts[4]))
    except ValueError:
        pass
machine = dict(l.rstrip("\n").split("=", 1) for l in open(machine_f) if "=" in l)
devsize = open(devsize_f).read().strip()
cores = int(machine.get("cores", "1"))
runs = int(machine.get("runs", "1"))


def med(g, s, k):
    v = vals.get((g, s, k))
    return statistics.median(v) if v else None


def nruns(g, s, k):
    return len(vals.get((g, s, k), []))


def f(x, nd=1):
    return "n/a" if x is None else f"{x:,.{nd}f}"


def ratio(a, b, nd=2):
    return "n/a" if a is None or not b else f"{a / b:.{nd}f}"


B = ("keylinkd", "mosquitto")
J = {"machine": {"cores": cores, "model": machine.get("model"), "mhz": machine.get("mhz"),
                 "memory_mb": machine.get("mem_mb"), "kernel": machine.get("kernel"),
                 "openssl": machine.get("openssl"), "mosquitto": machine.get("mosquitto"),
                 "load_average_start": machine.get("load_start"),
                 "load_average_end": machine.get("load_end")},
     "commit": machine.get("commit"), "uncommitted_files": int(machine.get("dirty", "0")),
     "date": machine.get("date"), "runs": runs, "statistic": "median of runs",
     "duration_s": int(machine.get("seconds", "0"))}

# ---- physical limit -------------------------------------------------------------------
sign, verify, ecdh = (med("speed", "openssl", k) for k in ("sign_per_s", "verify_per_s", "ecdh_per_s"))
lim = {}
if sign and verify and ecdh:
    ts, tv, te = 1e6 / sign, 1e6 / verify, 1e6 / ecdh  # microseconds
    # server: ECDHE key generation (a fixed-base multiplication, costed as one signature),
    # the ECDH derivation, the ServerKeyExchange signature and the client's CertificateVerify.
    # A server that must also check the client's chain pays one more verification.
    server_us = ts + te + ts + tv
    # client: the same plus the server's ServerKeyExchange and its certificate's signature
    client_us = ts + te + ts + tv + tv
    lim = {"sign_per_s": sign, "verify_per_s": verify, "ecdh_per_s": ecdh,
           "server_crypto_us": server_us, "server_crypto_with_chain_us": server_us + tv,
           "client_crypto_us": client_us,
           "handshakes_per_s_both_sides": cores * 1e6 / (server_us + client_us),
           "server_handshakes_per_core_s": 1e6 / server_us}
J["physical_limit"] = lim

# ---- handshakes -------------------------------------------------------------------------
hs = {}
# keylinkd-openssl: keylinkd with --tls-records openssl (no record layer hand-off)
HB = B + tuple(b for b in ("keylinkd-openssl",) if any(k[0] == "handshake" and k[1] == b for k in vals))
for b in HB:
    rate, cpu = med("handshake", b, "rate"), med("handshake", b, "cpu_ms")
    hs[b] = {"handshakes_per_s": rate, "cpu_ms_per_handshake": cpu,
             "handshakes_per_cpu_s": 1000.0 / cpu if cpu else None,
             "p50_ms": med("handshake", b, "p50_ms"), "errors": med("handshake", b, "errors"),
             "runs": nruns("handshake", b, "rate")}
    if lim and rate:
        hs[b]["fraction_of_limit"] = rate / lim["handshakes_per_s_both_sides"]
    if lim and cpu:
        hs[b]["crypto_share_of_cpu"] = lim["server_crypto_us"] / (cpu * 1000.0)
k, m = hs["keylinkd"], hs["mosquitto"]
hs["ratio_keylinkd_over_mosquitto"] = {
    "handshakes_per_s": k["handshakes_per_s"] / m["handshakes_per_s"] if k["handshakes_per_s"] and m["handshakes_per_s"] else None,
    "cpu_ms_per_handshake": k["cpu_ms_per_handshake"] / m["cpu_ms_per_handshake"] if k["cpu_ms_per_handshake"] and m["cpu_ms_per_handshake"] else None}
J["handshake"] = hs

# ---- idle connections ------------------------------------------------------------------------
levels = sorted({int(key[2].split("_")[1]) for key in vals if key[0] == "idle" and key[2].startswith("held_")})
idle = {}
# keylinkd-openssl: keylinkd with --tls-records openssl (no record layer hand-off)
IB = B + tuple(b for b in ("keylinkd-openssl",) if any(k[0] == "idle" and k[1] == b for k in vals))
for b in IB:
    idle[b] = {"rss_base_kib": med("idle", b, "rss_base_kib"), "levels": {}}
    for lv in levels:
        idle[b]["levels"][str(lv)] = {"runs": nruns("idle", b, f"held_{lv}"), "held": med("idle", b, f"held_{lv}"),
                                      "rss_kib": med("idle", b, f"rss_kib_{lv}"),
                                      "kib_per_connection": med("idle", b, f"kib_per_conn_{lv}")}
    top = idle[b]["levels"].get(str(levels[-1])) if levels else None
    if top and top["kib_per_connection"]:
        idle[b]["gib_for_1m_connections"] = top["kib_per_connection"] * 1e6 / 1024 / 1024
J["idle"] = idle

# ---- fan-in -------------------------------------------------------------------------------------
fan = {}
for q in (0, 1):
    for s in (64, 1024):
        g = f"fanin_q{q}_{s}"
        fan[g] = {b: {"msgs_per_s": med(g, b, "rate"), "p50_us": med(g, b, "p50_us"),
                      "p99_us": med(g, b, "p99_us"), "lost": med(g, b, "lost"),
                      "runs": nruns(g, b, "rate")} for b in B}
J["fanin"] = fan

# ---- provisioning, chip -----------------------------------------------------------------------
J["provisioning"] = {"init_tls_iot_batch_devices_per_s": med("provisioning", "batch", "devices_per_s"),
                     "openssl_cli_devices_per_s": med("provisioning", "openssl_cli", "devices_per_s")}
ops = ["ecdsa_sign", "ecdsa_verify", "ecdh", "sha256_1k", "aes128gcm_1k"]
J["chip"] = {op: {"mem_ops_per_s": med("chip", "mem", op), "unix_ops_per_s": med("chip", "unix", op),
                  "openssl_ops_per_s": med("chip", "openssl_mem", op)} for op in ops}
footprint = {"text": devsize}
for row in devsize.splitlines():
    cells = [c.strip().strip("*") for c in row.strip().strip("|").split("|")]
    if len(cells) == 3 and cells[1].isdigit() and cells[2].isdigit():
        footprint.setdefault("parts", {})[cells[0]] = {"flash_bytes": int(cells[1]), "static_ram_bytes": int(cells[2])}
    elif len(cells) == 2 and cells[1].isdigit():
        footprint.setdefault("caller_ram", {})[cells[0]] = int(cells[1])
J["device_footprint"] = footprint

with open(os.path.join(out, "bench.json"), "w") as fh:
    json.dump(J, fh, indent=2)
    fh.write("\n")

# ---- markdown ----------------------------------------------------------------------------------
L = []
w = L.append
w("# keylink benchmarks")
w("")
w(f"Made by `make bench` (`bench/run.sh`) on {J['date']}, commit {J['commit']}"
  + (f" with {J['uncommitted_files']} uncommitted files in the tree" if J["uncommitted_files"] else "")
  + f", in {J['duration_s']} s.")
w("")
w(f"**Machine:** {cores} cores, {machine.get('model')} ({machine.get('mhz')} MHz), "
  f"{machine.get('mem_mb')} MB RAM, Linux {machine.get('kernel')}, {machine.get('openssl')}, "
  f"mosquitto {machine.get('mosquitto')}. Load average at start {machine.get('load_start')}, "
  f"at end {machine.get('load_end')} (the machine is shared; other work adds noise).")
w(f"**Every figure is the median of {runs} runs** (a table's `runs` column says when fewer were done in the time budget). Brokers and generator run on the same "
  f"{cores} cores over 127.0.0.1; the generator is `bench/loadgen.c` (OpenSSL client, epoll, "
  "TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256 on P-256, client certificate, no resumption, "
  "MQTT 3.1.1). mosquitto has the same server certificate and key as keylinkd, "
  "`require_certificate true`, `persistence false`, `user root`.")
w("")
w("**Summary (keylinkd / mosquitto, same run):** "
  f"handshakes/s {ratio(k['handshakes_per_s'], m['handshakes_per_s'])}, "
  f"handshakes per server CPU-second {ratio(k['handshakes_per_cpu_s'], m['handshakes_per_cpu_s'])}"
  + (f", memory per idle connection at {levels[-1]:,} {ratio(idle['keylinkd']['levels'][str(levels[-1])]['kib_per_connection'], idle['mosquitto']['levels'][str(levels[-1])]['kib_per_connection'])}" if levels else "")
  + ", fan-in messages/s " + ", ".join(f"{g.split('_')[1].upper()} {g.split('_')[2]} B {ratio(d['keylinkd']['msgs_per_s'], d['mosquitto']['msgs_per_s'])}" for g, d in fan.items())
  + (f". Physical limit of this machine: {f(lim['handshakes_per_s_both_sides'], 0)} handshakes/s with both sides on its {cores} cores; keylinkd reaches {ratio(k['handshakes_per_s'], lim['handshakes_per_s_both_sides'], 3)} of it, mosquitto {ratio(m['handshakes_per_s'], lim['handshakes_per_s_both_sides'], 3)}." if lim else "."))
w("")
w("![keylinkd and mosquitto side by side](bench.png)")
w("")
w("## Full mutual-TLS handshakes + MQTT CONNECT")
w("")
w("2 generator processes, 16 handshakes in flight each; CPU is the broker's utime+stime "
  "(/proc/PID/stat) over the run divided by the handshakes completed."
  + (" `keylinkd-openssl` (`--tls-records openssl`, measured after the others) shows what the "
     "record layer hand-off costs or saves per handshake." if "keylinkd-openssl" in hs else ""))
w("")
w("| broker | handshakes/s | server CPU per handshake | handshakes per server CPU-second | p50 latency | share of the physical limit | raw ECDSA/ECDH share of server CPU | errors |")
w("|---|---|---|---|---|---|---|---|")
for b in HB:
    h = hs[b]
    w(f"| {b} | {f(h['handshakes_per_s'])} | {f(h['cpu_ms_per_handshake'], 3)} ms | "
      f"{f(h['handshakes_per_cpu_s'], 0)} | {f(h['p50_ms'], 1)} ms | "
      f"{f(100 * h['fraction_of_limit'], 1) + ' %' if h.get('fraction_of_limit') else 'n/a'} | "
      f"{f(100 * h['crypto_share_of_cpu'], 0) + ' %' if h.get('crypto_share_of_cpu') else 'n/a'} | {f(h['errors'], 0)} |")
r = hs["ratio_keylinkd_over_mosquitto"]
w(f"| **keylinkd / mosquitto** | **{ratio(k['handshakes_per_s'], m['handshakes_per_s'])}** | "
  f"**{ratio(k['cpu_ms_per_handshake'], m['cpu_ms_per_handshake'])}** | "
  f"**{ratio(k['handshakes_per_cpu_s'], m['handshakes_per_cpu_s'])}** | | | | |")
w("")
w("## The physical limit on this machine")
w("")
if lim:
    w(f"`openssl speed ecdsap256 ecdhp256` on one core: {f(sign, 0)} ECDSA P-256 signatures/s, "
      f"{f(verify, 0)} verifications/s, {f(ecdh, 0)} ECDH derivations/s. Per mutual-TLS "
      "handshake the server does one ECDHE key generation (a fixed-base multiplication, costed "
      "as one signature), one ECDH derivation, one signature (ServerKeyExchange) and one "
      "verification (the client's CertificateVerify); the client does the same plus one "
      "verification (ServerKeyExchange) and one for the server certificate's signature.")
    w("")
    w("| quantity | value |")
    w("|---|---|")
    w(f"| server ECDSA/ECDH work per handshake | {f(lim['server_crypto_us'], 1)} µs ({f(lim['server_crypto_with_chain_us'], 1)} µs when the client chain is verified too) |")
    w(f"| client ECDSA/ECDH work per handshake | {f(lim['client_crypto_us'], 1)} µs |")
    w(f"| **limit: handshakes/s with both sides on these {cores} cores** | **{f(lim['handshakes_per_s_both_sides'], 0)}** |")
    w(f"| limit: handshakes/s per server core (server work only) | {f(lim['server_handshakes_per_core_s'], 0)} |")
    for b in B:
        h = hs[b]
        w(f"| {b}: measured / limit (both sides) | {ratio(h['handshakes_per_s'], lim['handshakes_per_s_both_sides'], 3)} |")
        w(f"| {b}: handshakes per server CPU-second / server limit per core | {ratio(h['handshakes_per_cpu_s'], lim['server_handshakes_per_core_s'], 3)} |")
else:
    w("openssl speed gave no figures.")
w("")
w("Where the rest of the time goes: `bench/README.md` (profile).")
w("")
w("## Idle connections and memory")
w("")
w("Connections opened (full handshake + CONNECT, keep-alive 1000 s) and held by up to 5,000 per "
  "generator process; 2 s after the last one is up, the broker's resident set (VmRSS) minus its "
  "own idle baseline, divided by the connections held. Kernel socket buffers are not in it (the "
  "same for both). keylinkd hands each TLS 1.2 AES-GCM connection's records off from OpenSSL "
  "after the handshake and frees the `SSL` object (docs/dataplane.md, \"Record layer hand-off\"); "
  "`keylinkd-openssl` is the same keylinkd with `--tls-records openssl`, which keeps every "
  "connection with OpenSSL as mosquitto does.")
w("")
w("| broker | connections held | RSS | KiB per connection | runs |")
w("|---|---|---|---|---|")
for b in IB:
    w(f"| {b} (idle baseline) | 0 | {f((idle[b]['rss_base_kib'] or 0) / 1024, 1)} MiB | | {nruns('idle', b, 'rss_base_kib')} |")
    for lv in levels:
        d = idle[b]["levels"][str(lv)]
        w(f"| {b} | {f(d['held'], 0)} of {lv:,} | {f((d['rss_kib'] or 0) / 1024, 1)} MiB | {f(d['kib_per_connection'], 2)} | {nruns('idle', b, f'held_{lv}')} |")
for lv in levels:
    w(f"| **keylinkd / mosquitto at {lv:,}** | | | **{ratio(idle['keylinkd']['levels'][str(lv)]['kib_per_connection'], idle['mosquitto']['levels'][str(lv)]['kib_per_connection'])}** | |")
if "keylinkd-openssl" in idle:
    for lv in levels:
        w(f"| keylinkd-openssl / mosquitto at {lv:,} | | | {ratio(idle['keylinkd-openssl']['levels'][str(lv)]['kib_per_connection'], idle['mosquitto']['levels'][str(lv)]['kib_per_connection'])} | |")
w("")
for b in IB:
    if idle[b].get("gib_for_1m_connections"):
        w(f"- {b}: 1,000,000 connections would need about {f(idle[b]['gib_for_1m_connections'], 1)} GiB "
          f"of broker memory (per-connection figure at {levels[-1]:,}), plus kernel socket memory.")
w("")
w("## Fan-in: QoS 0 and QoS 1")
w("")
w("8 publishers -> 1 subscriber of `bench/#` in one generator process, at most 64 messages in "
  "the broker at a time (QoS 1: at most 10 unacknowledged per publisher); latency is publish "
  "to delivery, measured with a monotonic timestamp in the payload.")
w("")
w("| test | broker | messages/s | p50 | p99 | lost (QoS 0 drops) |")
w("|---|---|---|---|---|---|")
for g, d in fan.items():
    q, s = g.split("_")[1][1], g.split("_")[2]
    for b in B:
        w(f"| QoS {q}, {s} B | {b} | {f(d[b]['msgs_per_s'], 0)} | {f(d[b]['p50_us'], 0)} µs | {f(d[b]['p99_us'], 0)} µs | {f(d[b]['lost'], 0)} |")
    w(f"| QoS {q}, {s} B | **keylinkd / mosquitto** | **{ratio(d['keylinkd']['msgs_per_s'], d['mosquitto']['msgs_per_s'])}** | {ratio(d['keylinkd']['p50_us'], d['mosquitto']['p50_us'])} | {ratio(d['keylinkd']['p99_us'], d['mosquitto']['p99_us'])} | |")
w("")
w("## Provisioning")
w("")
p = J["provisioning"]
w("Devices per second: `init_tls_iot --batch` (key pair generated inside an in-process `mem:` "
  "chip, certificate issued by the CA, certificate and root written back into the chip, chip "
  "image and ledger fsynced per device) against a shell loop over the `openssl` command line "
  "doing a key and a certificate per device (CA key decrypted once).")
w("")
w("| method | devices/s |")
w("|---|---|")
w(f"| init_tls_iot --batch | {f(p['init_tls_iot_batch_devices_per_s'], 2)} |")
w(f"| openssl command line | {f(p['openssl_cli_devices_per_s'], 2)} |")
w(f"| **batch / openssl CLI** | **{ratio(p['init_tls_iot_batch_devices_per_s'], p['openssl_cli_devices_per_s'])}** |")
w("")
w("## Chip overhead")
w("")
w("Operations per second through `kl_se_*` (include/keylink/se.h) over the in-process `mem:` "
  "transport and over `unix:` to a `keylink-se` daemon, against the same operation done with "
  "OpenSSL directly in the same process and run.")
w("")
w("| operation | mem: | unix: | OpenSSL | mem: / OpenSSL | unix: / OpenSSL |")
w("|---|---|---|---|---|---|")
for op in ops:
    c = J["chip"][op]
    w(f"| {op} | {f(c['mem_ops_per_s'], 0)} | {f(c['unix_ops_per_s'], 0)} | {f(c['openssl_ops_per_s'], 0)} | "
      f"{ratio(c['mem_ops_per_s'], c['openssl_ops_per_s'], 3)} | {ratio(c['unix_ops_per_s'], c['openssl_ops_per_s'], 3)} |")
w("")
w("## Device footprint (Cortex-M4)")
w("")
w("From `scripts/device-size.sh` (the device library built for the target, measured in this run):")
w("")
if devsize.startswith("|"):
    w(devsize)  # already a markdown table
else:
    w("```")
    w(devsize)
    w("```")
w("")
with open(os.path.join(out, "bench.md"), "w") as fh:
    fh.write("\n".join(L))

# ---- plot ----------------------------------------------------------------------------------------
dat = os.path.join(out, ".bench-plot.dat")
rows = [("handshakes/s", k["handshakes_per_s"], m["handshakes_per_s"]),
        ("handshakes per\\nserver CPU-s", k["handshakes_per_cpu_s"], m["handshakes_per_cpu_s"])]
mem_rows = [(f"{lv:,}\\nconnections", idle["keylinkd"]["levels"][str(lv)]["kib_per_connection"],
             idle["mosquitto"]["levels"][str(lv)]["kib_per_connection"]) for lv in levels]
fan_rows = [(f"QoS{g.split('_')[1][1]} {g.split('_')[2]}B", d["keylinkd"]["msgs_per_s"],
             d["mosquitto"]["msgs_per_s"]) for g, d in fan.items()]


def block(rs):
    return "\n".join(f'"{n}" {a or 0} {b or 0}' for n, a, b in rs) + "\n\n\n"


with open(dat, "w") as fh:
    fh.write(block(rows) + block(mem_rows) + block(fan_rows))
limit = lim.get("handshakes_per_s_both_sides", 0)
gp = f"""
set terminal pngcairo size 1500,520 font ",10" noenhanced
set output "{os.path.join(out, 'bench.png')}"
set multiplot layout 1,3 title "keylinkd vs mosquitto — {cores} cores, {machine.get('model')}, median of {runs} runs"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set key outside bottom center horizontal
set bmargin 6
set yrange [0:*]
set title "Handshakes (limit, both sides: {limit:,.0f}/s)"
plot "{dat}" index 0 using 2:xtic(1) title "keylinkd" lc rgb "#1f77b4", '' index 0 using 3 title "mosquitto" lc rgb "#ff7f0e"
set title "Memory per idle connection (KiB, lower is better)"
plot "{dat}" index 1 using 2:xtic(1) title "keylinkd" lc rgb "#1f77b4", '' index 1 using 3 title "mosquitto" lc rgb "#ff7f0e"
set title "Fan-in messages/s (8 publishers -> 1 subscriber)"
plot "{dat}" index 2 using 2:xtic(1) title "keylinkd" lc rgb "#1f77b4", '' index 2 using 3 title "mosquitto" lc rgb "#ff7f0e"
unset multiplot
"""
r = subprocess.run(["gnuplot"], input=gp, text=True, capture_output=True)
os.unlink(dat)
if r.returncode:
    sys.exit("gnuplot failed: " + r.stderr)
print(open(os.path.join(out, "bench.md")).read())

"""The signed run of dns_bench.py (--signed): one DNSSEC key and NSEC3 narrow in every server,
the signed query sets, the check that signed answers agree and validate, and its report.

Every zone of the data set gets the SAME private key (one ECDSA P-256 CSK, algorithm 13, made
once with `pdnsutil generate-zone-key ksk ecdsa256`) and NSEC3PARAM `1 0 0 -` narrow, each
through pdnsutil and the server's own backend:
  * our store (smimea-native, smimea-unix, smimea-pipe read the same file): `pdnsutil
    import-zone-key` and `set-nsec3` with pdns loading the native module, as an operator
    would run them (README, DNSSEC). The store bumps each zone's serial on every key or
    metadata change, so the zones are exported again afterwards and the gsqlite3 SOAs and the
    bind zone files take the new serials: every server serves the same SOA.
  * gsqlite3: a copy of the data set's database, `import-zone-key`, `set-nsec3`, then
    `rectify-all-zones` as pdnsutil asks.
  * bind: `pdnsutil create-bind-db` makes its DNSSEC database (`bind-dnssec-db`), then
    `import-zone-key` and `set-nsec3`.
The signed data set lives in its own directory (data-...-signed) beside the unsigned one.

Query sets, asked with the DO bit (dnsperf -D):
  hits      random owners: the SMIMEA RRset and its RRSIG
  nxdomain  random names below _smimecert.<zone> that no owner has: NXDOMAIN, SOA and three
            NSEC3 (closest encloser, next closer, wildcard), each signed
  ent       _smimecert.<zone> SMIMEA, the empty non-terminal: NODATA, SOA and the ENT's NSEC3
pdns's caches are off as in the unsigned run (cache-ttl, query-cache-ttl, negquery-cache-ttl
0); its signature cache is left at its default (on, unbounded: max-signature-cache-entries
unset, emptied weekly). A first pass over every query file (first_pass()) fills it before the
rounds, which then measure the steady state in which every RRSIG asked for was made before;
the first pass is reported as well.
"""
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import time

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype

NSEC3PARAM = "1 0 0 -"
SIGNED_SETS = {
    "hits": "all hits, signed",
    "nxdomain": "NXDOMAIN, NSEC3 narrow denial",
    "ent": "the _smimecert empty non-terminal: NODATA, NSEC3",
}
DEFAULT_SERVERS = "smimea-native,smimea-unix,gsqlite3,bind"
KIND_SETTINGS = {  # pdns.conf lines that turn DNSSEC on, per backend kind (bind: its db)
    "smimea": ["remote-dnssec=yes"],
    "gsqlite3": ["gsqlite3-dnssec=yes"],
    "native": [],
}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def add_argument(parser):
    parser.add_argument("--signed", action="store_true",
                        help="DNSSEC: the same ECDSA P-256 key and NSEC3 narrow in every server, "
                             "the DO bit set; servers default to " + DEFAULT_SERVERS + " (not "
                             "null-*), sets to " + ",".join(SIGNED_SETS) + " (signed_setup.py)")


def apply_arguments(args, query_sets):
    """--signed: the signed query sets and the signed run's default servers and sets."""
    if args.signed:
        query_sets.update(SIGNED_SETS)
        args.servers = args.servers or DEFAULT_SERVERS
        args.sets = args.sets or ",".join(SIGNED_SETS)


def pdnsutil(conf_dir, *argv):
    r = subprocess.run(["pdnsutil", f"--config-dir={conf_dir}", *map(str, argv)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"pdnsutil {' '.join(map(str, argv))} exited {r.returncode}:\n"
                           f"{r.stdout}{r.stderr}")
    return r.stdout


def paths(data):
    d = data.dir
    return {"marker": d / "signed.json", "key": d / "zone-key.private", "conf": d / "pdnsutil",
            "gsqlite": d / "pdns-signed.sqlite3", "bind_db": d / "bind-dnssec.db"}


def pdns_settings(server):
    """Extra pdns.conf lines for a server of the signed run."""
    if server.kind == "bind":
        return [f"bind-dnssec-db={paths(server.data)['bind_db']}"]
    return KIND_SETTINGS[server.kind]


def ensure(data, build, absent_prefix):
    """Signs the data set's zones in every store (once: signed.json marks it done). Afterwards
    data.gsqlite is the signed copy of the gsqlite3 database."""
    p = paths(data)
    unsigned_gsqlite, data.gsqlite = data.gsqlite, p["gsqlite"]
    if p["marker"].exists():
        data.meta.update(json.loads(p["marker"].read_text()))
        return
    t0 = time.time()
    zones = [f"dom{z + 1:03d}.example.com" for z in range(data.meta["zones"])]
    conf = p["conf"]
    for sub in ("smimea", "gsqlite3", "bind"):
        (conf / sub).mkdir(parents=True, exist_ok=True)
    (conf / "smimea/pdns.conf").write_text(
        f"load-modules={build / 'libsmimeabackend.so'}\nlaunch=smimea\n"
        f"smimea-config={data.config}\n")
    if not p["key"].exists():
        p["key"].write_text(pdnsutil(conf / "smimea", "generate-zone-key", "ksk", "ecdsa256"))
    log(f"signed: importing the key and NSEC3 narrow into {len(zones)} zones of each store")
    for z in zones:
        pdnsutil(conf / "smimea", "import-zone-key", z, p["key"], "ksk", "active", "published")
        pdnsutil(conf / "smimea", "set-nsec3", z, NSEC3PARAM, "narrow")
    # The store moved every serial: the others serve the store's zones as exported now.
    p["gsqlite"].unlink(missing_ok=True)
    p["gsqlite"].write_bytes(unsigned_gsqlite.read_bytes())
    db = sqlite3.connect(p["gsqlite"])
    for z in zones:
        text = data.ctl("export", z)
        (data.bind_dir / f"{z}.zone").write_text(text)
        soa = next(line for line in text.splitlines() if "\tSOA\t" in line).split("\t")[4]
        soa = " ".join(w[:-1] if w.endswith(".") else w for w in soa.split(" "))
        with db:
            if db.execute("UPDATE records SET content = ? WHERE name = ? AND type = 'SOA'",
                          (soa, z)).rowcount != 1:
                raise RuntimeError(f"signed: no SOA row for {z} in the gsqlite3 copy")
    db.close()
    (conf / "gsqlite3/pdns.conf").write_text(
        f"launch=gsqlite3\ngsqlite3-database={p['gsqlite']}\ngsqlite3-dnssec=yes\n")
    p["bind_db"].unlink(missing_ok=True)
    pdnsutil(conf / "bind", "create-bind-db", p["bind_db"])
    (conf / "bind/pdns.conf").write_text(
        f"launch=bind\nbind-config={data.named_conf}\nbind-dnssec-db={p['bind_db']}\n")
    for sub in ("gsqlite3", "bind"):
        for z in zones:
            pdnsutil(conf / sub, "import-zone-key", z, p["key"], "ksk", "active", "published")
            pdnsutil(conf / sub, "set-nsec3", z, NSEC3PARAM, "narrow")
    pdnsutil(conf / "gsqlite3", "rectify-all-zones")
    shown = pdnsutil(conf / "smimea", "show-zone", zones[0])
    if "NARROW hashed NSEC3" not in shown or "algo = 13" not in shown:
        raise RuntimeError(f"signed: {zones[0]} is not signed as expected:\n{shown}")
    make_queries(data, zones, absent_prefix)
    meta = {"signed_zones": len(zones), "key": shown.split("tag = ")[1].split(",")[0]}
    p["marker"].write_text(json.dumps(meta))
    data.meta.update(meta)
    log(f"signed: done in {time.time() - t0:.0f} s (key tag {meta['key']})")


def make_queries(data, zones, absent, count=100000):
    rng = random.Random(data.args.seed + 23)
    with open(data.queries["nxdomain"], "w") as f:
        for _ in range(count):
            f.write(f"{absent}{rng.getrandbits(192):048x}._smimecert.{rng.choice(zones)} "
                    "SMIMEA\n")
    with open(data.queries["ent"], "w") as f:
        for _ in range(count):
            f.write(f"_smimecert.{rng.choice(zones)} SMIMEA\n")


# --------------------------------------------------------------------------------------------
# Checking signed answers


def ask(server, qname, qtype):
    q = dns.message.make_query(qname, qtype, want_dnssec=True, payload=1232)
    r = dns.query.udp(q, "127.0.0.1", port=server.port, timeout=2.0)
    if r.flags & dns.flags.TC:
        r = dns.query.tcp(q, "127.0.0.1", port=server.port, timeout=2.0)
    return r


def shape(msg):
    """What must agree between servers: rcode, AA, every RRset in full except the signature
    bytes of RRSIGs (ECDSA signatures differ at each signing)."""
    def section(rrsets):
        out = []
        for rr in rrsets:
            if rr.rdtype == dns.rdatatype.RRSIG:
                out += [f"{rr.name} {rr.ttl} RRSIG {dns.rdatatype.to_text(r.type_covered)} "
                        f"{r.algorithm} {r.labels} {r.original_ttl} {r.expiration} "
                        f"{r.inception} {r.key_tag} {r.signer}" for r in rr]
            else:
                out += rr.to_text().splitlines()
        return sorted(out)
    return (dns.rcode.to_text(msg.rcode()), bool(msg.flags & dns.flags.AA), section(msg.answer),
            section(msg.authority))


def validate(msg, keys):
    """Checks every RRSIG of the answer and authority sections against the zone's DNSKEY and
    that every RRset there is signed. Returns the number of signatures checked."""
    checked = 0
    for section in (msg.answer, msg.authority):
        sigs = {(rr.name, rr.covers): rr for rr in section if rr.rdtype == dns.rdatatype.RRSIG}
        for rr in section:
            if rr.rdtype == dns.rdatatype.RRSIG:
                continue
            sig = sigs.get((rr.name, rr.rdtype))
            if sig is None:
                raise RuntimeError(f"unsigned RRset {rr.name} {dns.rdatatype.to_text(rr.rdtype)}")
            signer = next(iter(sig)).signer
            dns.dnssec.validate(rr, sig, {signer: keys[signer]})
            checked += 1
    return checked


def expected_shape(qset, msg):
    """The answer a query set must give: hits an SMIMEA RRset, nxdomain NXDOMAIN with three
    NSEC3, ent NODATA with one."""
    types = [rr.rdtype for rr in msg.authority]
    nsec3 = types.count(dns.rdatatype.NSEC3)
    if qset == "hits":
        return msg.rcode() == dns.rcode.NOERROR and any(
            rr.rdtype == dns.rdatatype.SMIMEA for rr in msg.answer)
    if qset == "nxdomain":
        return msg.rcode() == dns.rcode.NXDOMAIN and nsec3 == 3 and not msg.answer
    if qset == "ent":
        return msg.rcode() == dns.rcode.NOERROR and nsec3 == 1 and not msg.answer
    return True


def check_answers(servers, data, samples, sets):
    """Asks every server the same signed questions (samples per set, plus the apex): their
    shapes must agree (see shape()), every signature must validate against that server's
    DNSKEY RRset, which must be the same key everywhere."""
    rng = random.Random(1)
    zones = {}
    questions = []
    for qset in sets:
        lines = data.queries[qset].read_text().splitlines()[:20000]
        questions += [(qset, *line.split()) for line in rng.sample(lines, min(samples, len(lines)))]
    zone = data.meta["first_zone"]
    questions += [("apex", zone, "SOA"), ("apex", zone, "DNSKEY"), ("apex", zone, "NSEC3PARAM")]
    ref = servers[0]
    problems, checked = [], 0
    for s in servers:
        zones[s.name] = {}
    for qset, qname, qtype in questions:
        zone_name = dns.name.from_text(".".join(qname.split(".")[-3:]))
        want = None
        for s in servers:
            keys = zones[s.name]
            if zone_name not in keys:
                k = ask(s, zone_name, "DNSKEY").find_rrset(
                    dns.message.ANSWER, zone_name, dns.rdataclass.IN, dns.rdatatype.DNSKEY)
                keys[zone_name] = k
                if s is not ref and k != zones[ref.name][zone_name]:
                    problems.append(f"{s.name}: DNSKEY of {zone_name} differs from {ref.name}'s")
            msg = ask(s, qname, qtype)
            try:
                checked += validate(msg, keys)
            except Exception as e:  # dns.dnssec.ValidationFailure, or unsigned
                problems.append(f"{s.name}: {qname} {qtype}: does not validate: {e}")
            if not expected_shape(qset, msg):
                problems.append(f"{s.name}: {qname} {qtype}: not a {qset} answer:\n{msg}")
            got = shape(msg)
            if want is None:
                want = got
            elif got != want:
                problems.append(f"{s.name} vs {ref.name}: {qname} {qtype}:\n  {got}\n  {want}")
    if problems:
        raise RuntimeError("signed answers disagree:\n" + "\n".join(problems[:10]))
    log(f"signed answers agree on {len(questions)} questions; {checked} signatures validated")


# --------------------------------------------------------------------------------------------
# Measuring


def signatures_made(server):
    """pdns's count of RRSIGs it computed (signature cache misses), or None."""
    r = subprocess.run(["pdns_control", f"--socket-dir={server.dir}", "show", "signatures"],
                       capture_output=True, text=True)
    return int(r.stdout) if r.returncode == 0 and r.stdout.strip().isdigit() else None


def counting_signatures(measure):
    """measure(), plus r["signs"]: signatures computed per answered question during the run."""
    def run(args, server, query_file, duration, extra=()):
        before = signatures_made(server)
        r = measure(args, server, query_file, duration, extra)
        after = signatures_made(server)
        r["signs"] = (None if before is None or after is None
                      else (after - before) / max(1, r["completed"]))
        return r
    return run


def first_pass(args, servers, measure):
    """Every server answers every set's query file once through (dnsperf -n 1), set by set,
    the servers in turn. pdns's signature cache (on by default, unbounded, emptied weekly)
    then holds the RRSIG of every RRset the measured runs ask for, whatever the order or the
    speed of the servers: the rounds measure that steady state. The pass itself is reported
    too: there a question whose RRset was not asked before pays for a fresh ECDSA signature
    (hits: each owner's first appearance in the file, ~63% of the questions; nxdomain: the
    next closer name's NSEC3, every question; ent: no question after the first 100)."""
    results = {}
    for qset in args.sets:
        for s in servers:
            r = measure(args, s, s.data.queries[qset], 900, ["-n", "1"])
            results[(s.name, qset)] = r
            log(f"first pass {qset:8} {s.name:20} {r['qps']:9,.0f} q/s {r['cpu_us']:6.1f} µs/q "
                f"signatures/q {r['signs']} lost {r['lost']} codes {r['codes']}")
    return results


# --------------------------------------------------------------------------------------------
# Report


def report(args, servers, results, latency_by_set, first):
    """Per query set: QPS, CPU, the ratio to gsqlite3 (median of per-round ratios, min-max),
    p50/p99 at --latency-qps, and the first pass (see first_pass())."""
    def per_round(name, other, qset):
        a, b = results.get((name, qset), []), results.get((other, qset), [])
        return [x["qps"] / y["qps"] for x, y in zip(a, b) if y["qps"]]

    def spread(ratios):
        if not ratios:
            return "-"
        if len(ratios) < 3:
            return f"{statistics.median(ratios):.2f}"
        return f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})"

    def signs_text(runs):
        signs = [r["signs"] for r in runs if r.get("signs") is not None]
        return f"{statistics.median(signs):.2f}" if signs else "-"

    names = [s.name for s in servers]
    lines = ["", f"Signed zones (ECDSA P-256 CSK, NSEC3 {NSEC3PARAM} narrow, DO bit; "
             "ratios: median of the per-round ratios, min–max in brackets; latency at "
             f"{args.latency_qps} QPS):", ""]
    lines.append("| server | set | QPS | CPU µs/q | ×gsqlite3 | p50 / p99 ms | SERVFAIL / lost | "
                 "signatures made per question | first pass: QPS, CPU µs/q, ×gsqlite3, "
                 "signatures/q |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for qset in args.sets:
        for n in names:
            runs = results.get((n, qset), [])
            if not runs:
                continue
            lat = latency_by_set.get(qset, {}).get(n, {})
            qps = statistics.median(r["qps"] for r in runs)
            cpu = statistics.median(r["cpu_us"] for r in runs)
            bad = sum(r["codes"].get("SERVFAIL", 0) for r in runs), sum(r["lost"] for r in runs)
            ratio = spread(per_round(n, "gsqlite3", qset)) if "gsqlite3" in names else "-"
            p50, p99 = lat.get("p50"), lat.get("p99")
            lat_text = "-" if p99 is None else f"{p50:.2f} / {p99:.2f}"
            f, g = first.get((n, qset)), first.get(("gsqlite3", qset))
            first_text = "-" if not f else (
                f"{f['qps']:,.0f}, {f['cpu_us']:.0f}"
                + (f", {f['qps'] / g['qps']:.2f}" if g and g["qps"] else "")
                + f", {signs_text([f])}")
            lines.append(f"| {n} | {qset} | {qps:,.0f} | {cpu:.0f} | {ratio} | {lat_text} | "
                         f"{bad[0]} / {bad[1]} | {signs_text(runs)} | {first_text} |")
    return "\n".join(lines) + "\n"

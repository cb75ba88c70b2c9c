#!/usr/bin/python3
"""Side-by-side DNS benchmark: smimea-backend against PowerDNS's own backends and a remote
backend that does no work. Not part of the test suite. See tests/bench/README.md.

    /usr/bin/python3 tests/bench/dns_bench.py [--records 100000] [--rounds 3] [--duration 15]

Method (docs PERFORMANCE.md): all servers run at once on their own free loopback ports with
pdns's caches off (cache-ttl=0 query-cache-ttl=0 negquery-cache-ttl=0), the zone cache on and
the default 3 distributor threads. Each round runs dnsperf (-T 1 -c 4 -q 64) against every
server in turn, for every query set; medians over the rounds are reported. Latency is
measured apart at a fixed -Q 1000 with -v, in one slice per round, interleaved the same way;
p50/p99 are taken over the pooled per-query lines. CPU per query
is the CPU time of pdns, of every process below it (pipe backends) and of the unix-socket
backend process, over the queries answered.

Servers (--servers):
  smimea-unix  pdns + smimea-backend --listen (unix connector)
  smimea-pipe  pdns + smimea-backend --pipe (pipe connector, timeout=0)
  smimea-native pdns + libsmimeabackend.so (launch=smimea, in process)
  gsqlite3     pdns + gsqlite3, the same records
  bind         pdns + the bind backend, the same records as zone files
  null-unix    pdns + null_backend over unix: the protocol's own ceiling
  null-pipe    pdns + null_backend over pipe, timeout=0

With --signed, every zone is signed with the same key in every server (NSEC3 narrow) and the
query sets are hits, nxdomain and ent, asked with the DO bit: see signed_setup.py.

With --also-records M, every server also runs on a second data set of M owners (named
"server@M"), in the same rounds: the column "QPS ×itself@M" is then how much of its QPS at M
a server keeps at --records owners, measured side by side (flatness with size).

Data set (cached under --workdir, reused while the parameters are the same):
  * N owners user<i>@domNNN.example.com (i mod Z picks the zone), owner hash =
    SHA2-256(local-part)[:28] as RFC 8162 says. An owner gets "3 0 0" (the DER of a ~925-byte
    RSA-2048 certificate) when the first 16 bits of its hash are below 0x199a, about 10% of
    them, and "3 1 1" (SHA2-256 of the certificate's SubjectPublicKeyInfo) otherwise. The rule
    lets null_backend give the same answers without a store.
  * Certificates: a pool of --cert-pool real RSA-2048 certificates made with the openssl
    command line and published through `smimea-ctl cert add` into a scratch store. Loading N
    certificates through smimea-ctl is the product path but is slow at 100k-1M, so the
    benchmark store is written directly with SQL: `smimea-ctl init` and `zone add` make it,
    then one transaction inserts, per owner, a copy of a pool certificate's certificates row
    and records row (the rows smimea-ctl wrote, with the address, zone and owner replaced).
    The certificate rows are thus well-formed but do not name their owners' addresses.
  * Checks: `smimea-ctl cert list` on a sample of addresses, `smimea-ctl check-config`, and
    `smimea-ctl export` of every zone, whose output (SOA, 2 NS, the SMIMEA records) becomes
    the bind backend's zone files and the gsqlite3 database (plus the _smimecert empty
    non-terminal that pdnsutil rectify-zone would add). Before measuring, sample questions
    from every query set are asked of every server and the answers compared.
  * Query sets: hits (random owners), mix (90% hits, 10% NXDOMAIN: random owner names that
    start with 00000000, which no owner does), full (only owners with "3 0 0").

Needs: pdns-server, pdns-backend-remote, pdns-backend-sqlite3, pdns-backend-bind, dnsperf,
openssl, python3-dnspython, and a build with SMIMEA_BUILD_BENCH=ON (--build, default
build-bench). Every process started here is stopped on exit, Ctrl-C and errors.
"""
import argparse
import hashlib
import json
import os
import pathlib
import random
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))
from smimea_test import free_port  # noqa: E402  (one definition, shared with the tests)
import signed_setup  # noqa: E402  (--signed: tests/bench/signed_setup.py)

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

ROOT = pathlib.Path(__file__).resolve().parents[2]
GENERATOR_VERSION = 1
FULL_BELOW = 0x199A          # owners whose hash starts below this get "3 0 0" (~10%)
ABSENT_PREFIX = "00000000"   # NXDOMAIN owner names start with this; no real owner does
NAMESERVERS = ["ns1.example.net.", "ns2.example.net."]
RNAME = "hostmaster.example.net."
PDNS_SQLITE_SCHEMA = pathlib.Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql")
CLK_TCK = os.sysconf("SC_CLK_TCK")

SERVERS = {
    # name: (backend kind, connector). Each round runs them in this order (rotated), so a
    # backend and its ceiling run next to each other.
    "smimea-unix": ("smimea", "unix"),
    "null-unix": ("null", "unix"),
    "smimea-pipe": ("smimea", "pipe"),
    "null-pipe": ("null", "pipe"),
    "smimea-native": ("native", None),
    "gsqlite3": ("gsqlite3", None),
    "bind": ("bind", None),
}
QUERY_SETS = {"hits": "all hits", "mix": "90% hits / 10% NXDOMAIN", "full": "3 0 0 answers only"}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    """Runs cmd and returns its stdout as text; raises with stderr on failure."""
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {r.returncode}:\n{r.stderr}")
    return r.stdout


# --------------------------------------------------------------------------------------------
# Data set


class DataSet:
    """The generated files for (records, zones, seed, cert pool), under workdir."""

    def __init__(self, args, records):
        self.args = args
        self.records = records
        # The store is made by smimea-ctl init: a new schema means a new data set.
        schema = hashlib.sha256((ROOT / "schema/schema.sql").read_bytes()).hexdigest()[:8]
        self.dir = pathlib.Path(args.workdir) / (
            f"data-n{records}-z{args.zones}-s{args.seed}-p{args.cert_pool}"
            f"-g{GENERATOR_VERSION}-{schema}"
            + ("-signed" if getattr(args, "signed", False) else ""))
        self.config = self.dir / "smimea.yaml"
        self.store = self.dir / "smimea.db"
        self.gsqlite = self.dir / "pdns.sqlite3"
        self.bind_dir = self.dir / "bind"
        self.named_conf = self.bind_dir / "named.conf"
        self.canned = self.dir / "null-backend.canned"
        self.queries = {name: self.dir / f"queries-{name}.txt" for name in QUERY_SETS}
        self.meta_file = self.dir / "meta.json"
        self.meta = None

    def ctl(self, *argv, config=None):
        return run([self.args.build / "smimea-ctl", "-c", config or self.config, *argv])

    def ensure(self):
        if self.meta_file.exists() and not self.args.regenerate:
            try:
                self.ctl("check-config")  # the store still opens with this build
                self.meta = json.loads(self.meta_file.read_text())
                log(f"data set: reusing {self.dir}")
                return
            except RuntimeError as e:  # made by a build with another schema, say
                log(f"data set: cannot reuse {self.dir}, making it again: {e}")
        if self.dir.exists():
            for p in sorted(self.dir.rglob("*"), reverse=True):
                p.unlink() if p.is_file() or p.is_symlink() else p.rmdir()
        self.dir.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        pool = self.make_cert_pool()
        zones, owners = self.make_store(pool)
        self.check_store(owners)
        zone_files = self.export_zones(zones, owners)
        self.make_gsqlite(zones, zone_files)
        self.make_canned(zones, pool)
        self.make_queries(zones, owners)
        self.meta = {
            "records": len(owners),
            "zones": len(zones),
            "full": sum(1 for o in owners if o["full"]),
            "der_bytes": len(pool[0]["der"]),
            "first_zone": zones[0]["name"],
        }
        self.meta_file.write_text(json.dumps(self.meta, indent=1))
        log(f"data set: generated in {time.time() - t0:.0f} s")

    def write_config(self, path, database):
        path.write_text(
            f"database: {database}\n"
            f"nameservers: [{', '.join(NAMESERVERS)}]\n"
            f"soa:\n  rname: {RNAME}\n"
            "default-ttl: 3600\n")

    def make_cert_pool(self):
        """Real certificates, published by smimea-ctl into a scratch store: its rows are the
        templates of the benchmark store's rows."""
        n = self.args.cert_pool
        log(f"data set: {n} RSA-2048 certificates for the pool")
        pool_dir = self.dir / "pool"
        pool_dir.mkdir()
        config = pool_dir / "smimea.yaml"
        self.write_config(config, pool_dir / "pool.db")
        self.ctl("init", config=config)
        self.ctl("zone", "add", "pool.example.com", config=config)
        for k in range(n):
            email = f"bench{k:02d}@pool.example.com"
            key, pem = pool_dir / f"{k}.key", pool_dir / f"{k}.pem"
            run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                 "-out", key])
            run(["openssl", "req", "-x509", "-new", "-key", key, "-out", pem, "-days", "3650",
                 "-subj", f"/O=SMIMEA/CN={email}",
                 "-addext", f"subjectAltName=email:{email}",
                 "-addext", "keyUsage=critical,digitalSignature,keyEncipherment",
                 "-addext", "extendedKeyUsage=emailProtection"])
            self.ctl("cert", "add", email, pem, "--record", "3 1 1", "--record", "3 0 0",
                     config=config)
        db = sqlite3.connect(pool_dir / "pool.db")
        pool = []
        for row in db.execute("SELECT id, address, fingerprint, der, subject, issuer, serial, "
                              "not_before, not_after FROM certificates ORDER BY address"):
            recs = {(u, s, m): bytes(d) for u, s, m, d in db.execute(
                "SELECT usage, selector, matching_type, data FROM records "
                "WHERE certificate_id = ?", (row[0],))}
            pool.append({"fingerprint": bytes(row[2]), "der": bytes(row[3]), "subject": row[4],
                         "issuer": row[5], "serial": row[6], "not_before": row[7],
                         "not_after": row[8], "311": recs[(3, 1, 1)], "300": recs[(3, 0, 0)]})
        db.close()
        assert len(pool) == n and all(p["300"] == p["der"] for p in pool)
        return pool

    def make_store(self, pool):
        args = self.args
        log(f"data set: store with {self.records} owners in {args.zones} zones")
        self.write_config(self.config, self.store)
        self.ctl("init")
        names = [f"dom{z + 1:03d}.example.com" for z in range(args.zones)]
        for name in names:
            self.ctl("zone", "add", name)
        db = sqlite3.connect(self.store)
        zones = [{"id": i, "name": n, "serial": s} for i, n, s in
                 db.execute("SELECT id, name, serial FROM zones ORDER BY name")]
        assert [z["name"] for z in zones] == names
        now = int(time.time())
        owners = []
        for i in range(self.records):
            local = f"user{i}"
            h = hashlib.sha256(local.encode()).digest()[:28]
            while h.hex().startswith(ABSENT_PREFIX):  # never in practice; keeps misses absent
                local += "x"
                h = hashlib.sha256(local.encode()).digest()[:28]
            zone = zones[i % len(zones)]
            owners.append({"local": local, "hash": h, "zone": zone["name"], "zone_id": zone["id"],
                           "full": int.from_bytes(h[:2], "big") < FULL_BELOW,
                           "cert": i % len(pool)})

        def cert_rows():
            for i, o in enumerate(owners):
                p = pool[o["cert"]]
                yield (i + 1, o["zone_id"], f"{o['local']}@{o['zone']}", o["zone"],
                       p["fingerprint"], p["der"], p["subject"], p["issuer"], p["serial"],
                       p["not_before"], p["not_after"], now)

        def record_rows():
            for i, o in enumerate(owners):
                p = pool[o["cert"]]
                params, data = ((3, 0, 0), p["300"]) if o["full"] else ((3, 1, 1), p["311"])
                yield (i + 1, i + 1, o["zone_id"], o["hash"], *params, 3600, data)

        with db:
            db.executemany("INSERT INTO certificates (id, zone_id, address, domain, fingerprint, "
                           "der, subject, issuer, serial, not_before, not_after, created_at) "
                           "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", cert_rows())
            db.executemany("INSERT INTO records (id, certificate_id, zone_id, owner, usage, "
                           "selector, matching_type, ttl, data) VALUES (?,?,?,?,?,?,?,?,?)",
                           record_rows())
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        return zones, owners

    def check_store(self, owners):
        log("data set: checking the store with smimea-ctl")
        self.ctl("check-config")
        rng = random.Random(self.args.seed)
        for o in rng.sample(owners, min(5, len(owners))):
            certs = json.loads(self.ctl("--json", "cert", "list", f"{o['local']}@{o['zone']}"))
            want = (3, 0, 0) if o["full"] else (3, 1, 1)
            rec = certs[0]["records"][0] if len(certs) == 1 and len(certs[0]["records"]) == 1 else {}
            got = (rec.get("usage"), rec.get("selector"), rec.get("matching_type"))
            owner = f"{o['hash'].hex()}._smimecert.{o['zone']}."
            if rec.get("owner") != owner or got != want:
                raise RuntimeError(f"smimea-ctl cert list disagrees for {o['local']}: {certs}")

    def export_zones(self, zones, owners):
        """smimea-ctl export of every zone: the bind backend's zone files, and the check that
        every record of the store can be read back."""
        log("data set: smimea-ctl export of every zone -> bind zone files")
        self.bind_dir.mkdir()
        expected = {}
        for o in owners:
            expected[o["zone"]] = expected.get(o["zone"], 0) + 1
        conf = []
        files = []
        for z in zones:
            text = self.ctl("export", z["name"])
            lines = [line for line in text.splitlines() if line and not line.startswith(";")]
            types = [line.split("\t")[3] for line in lines]
            if (types[:3] != ["SOA", "NS", "NS"] or
                    types.count("SMIMEA") != expected.get(z["name"], 0)):
                raise RuntimeError(f"export of {z['name']}: unexpected records {types[:5]}...")
            path = self.bind_dir / f"{z['name']}.zone"
            path.write_text(text)
            files.append(path)
            conf.append(f'zone "{z["name"]}" {{ type master; file "{path}"; }};')
        self.named_conf.write_text("\n".join(conf) + "\n")
        return files

    def make_gsqlite(self, zones, zone_files):
        log("data set: gsqlite3 database from the exported zones")
        db = sqlite3.connect(self.gsqlite)
        db.executescript(PDNS_SQLITE_SCHEMA.read_text())

        def canonical(rtype, content):
            # pdnsutil stores names without the trailing dot.
            if rtype in ("SOA", "NS"):
                return " ".join(w[:-1] if w.endswith(".") else w for w in content.split(" "))
            return content

        def rows():
            for z, path in zip(zones, zone_files):
                for line in path.read_text().splitlines():
                    if not line or line.startswith(";"):
                        continue
                    name, ttl, _, rtype, content = line.split("\t", 4)
                    yield (z["id"], name.rstrip(".").lower(), rtype, canonical(rtype, content),
                           int(ttl), 0, 0, None, 1)
                # The empty non-terminal that pdnsutil rectify-zone would add.
                yield (z["id"], f"_smimecert.{z['name']}", None, None, None, None, 0, None, 1)

        with db:
            db.executemany("INSERT INTO domains (id, name, type) VALUES (?, ?, 'NATIVE')",
                           [(z["id"], z["name"]) for z in zones])
            db.executemany("INSERT INTO records (domain_id, name, type, content, ttl, prio, "
                           "disabled, ordername, auth) VALUES (?,?,?,?,?,?,?,?,?)", rows())
        db.execute("ANALYZE")
        db.close()

    def make_canned(self, zones, pool):
        soa_tail = "10800 3600 1209600 300"  # smimea's SOA defaults, as in the export
        first = (self.bind_dir / f"{zones[0]['name']}.zone").read_text().splitlines()
        soa = next(line for line in first if "\tSOA\t" in line).split("\t")
        lines = []
        for z in zones:
            content = f"{NAMESERVERS[0]} {RNAME} {z['serial']} {soa_tail}"
            if z is zones[0] and soa[4] != content:
                raise RuntimeError(f"SOA is {soa[4]!r}, null_backend would serve {content!r}")
            lines.append(f"zone {z['id']} {z['name']}. {z['serial']} {soa[1]} {content}")
        lines += [f"ns 3600 {ns}" for ns in NAMESERVERS]
        lines.append(f"smimea 3600 3 1 1 {pool[0]['311'].hex()}")
        lines.append(f"full 3600 3 0 0 {pool[0]['300'].hex()}")
        lines.append(f"full-below {FULL_BELOW:04x}")
        lines.append(f"absent-prefix {ABSENT_PREFIX}")
        self.canned.write_text("\n".join(lines) + "\n")

    def make_queries(self, zones, owners):
        rng = random.Random(self.args.seed)
        count = min(max(len(owners), 100000), 1000000)
        names = [f"{o['hash'].hex()}._smimecert.{o['zone']}" for o in owners]
        full = [n for n, o in zip(names, owners) if o["full"]]

        def absent():
            z = rng.choice(zones)["name"]
            return f"{ABSENT_PREFIX}{rng.getrandbits(192):048x}._smimecert.{z}"

        sets = {
            "hits": (rng.choice(names) for _ in range(count)),
            "mix": (absent() if rng.random() < 0.1 else rng.choice(names) for _ in range(count)),
            "full": (rng.choice(full) for _ in range(count)),
        }
        for name, gen in sets.items():
            with open(self.queries[name], "w") as f:
                for q in gen:
                    f.write(f"{q} SMIMEA\n")


# --------------------------------------------------------------------------------------------
# Processes


def proc_stat(pid):
    """(ppid, cpu ticks including reaped children) of pid, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), sum(int(x) for x in fields[11:15])  # utime stime cutime cstime


def descendants(pid):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st:
                children.setdefault(st[0], []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def rss_kib(pid):
    """Private resident memory (RssAnon): a memory-mapped store's pages are the kernel's page
    cache, shared by every process that reads the file, and are not counted."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Server:
    def __init__(self, name, bench, data, suffix=""):
        self.name = name + suffix  # suffix "@N": the servers of --also-records N
        self.suffix = suffix
        self.kind, self.connector = SERVERS[name]
        self.bench = bench
        self.data = data
        self.dir = bench.run_dir / self.name
        self.dir.mkdir(parents=True)
        self.port = None
        self.pdns = None
        self.backend = None      # the unix-socket backend process, if any
        self.seen_children = {}  # pid -> cmdline, pipe backends seen under pdns

    def backend_command(self, socket_path=None):
        build, data = self.bench.args.build, self.data
        if self.kind == "smimea":
            binary = self.bench.args.backend_binaries.get(self.name.removesuffix(self.suffix),
                                                          build / "smimea-backend")
            cmd = [binary, "--config", data.config]
        else:
            cmd = [build / "tests/bench/null_backend", "--canned", data.canned]
        return cmd + (["--listen", socket_path] if socket_path else ["--pipe"])

    def start_backend(self):
        if self.connector != "unix":
            return
        sock = self.dir / "backend.sock"
        self.backend = self.bench.spawn(self.backend_command(sock), self.dir / "backend.log")
        deadline = time.time() + 30
        while not sock.exists():
            if self.backend.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"{self.name}: backend did not start, see {self.dir}/backend.log")
            time.sleep(0.05)

    def start_pdns(self):
        args, data = self.bench.args, self.data
        self.port = free_port()
        conf = [
            "local-address=127.0.0.1", f"local-port={self.port}", f"socket-dir={self.dir}",
            "daemon=no", "guardian=no", "disable-syslog=yes", "write-pid=no",
            "security-poll-suffix=", "loglevel=4",
            "cache-ttl=0", "query-cache-ttl=0", "negquery-cache-ttl=0",
        ]
        if self.kind == "gsqlite3":
            conf += ["launch=gsqlite3", f"gsqlite3-database={data.gsqlite}"]
        elif self.kind == "bind":
            conf += ["launch=bind", f"bind-config={data.named_conf}"]
        elif self.kind == "native":
            module = args.backend_binaries.get(self.name.removesuffix(self.suffix),
                                               args.build / "libsmimeabackend.so")
            conf += [f"load-modules={module}",
                     "launch=smimea", f"smimea-config={data.config}"]
        elif self.connector == "unix":
            conf += ["launch=remote",
                     f"remote-connection-string=unix:path={self.dir / 'backend.sock'}"]
        else:
            cmd = " ".join(str(c) for c in self.backend_command())
            if any("," in c for c in cmd.split(" ")):
                raise RuntimeError(f"pipe command must not contain commas: {cmd}")
            conf += ["launch=remote", f"remote-connection-string=pipe:command={cmd},timeout=0"]
        if args.signed:
            conf += signed_setup.pdns_settings(self)
        conf += args.pdns_setting
        (self.dir / "pdns.conf").write_text("\n".join(conf) + "\n")
        self.pdns = self.bench.spawn(["/usr/sbin/pdns_server", f"--config-dir={self.dir}"],
                                     self.dir / "pdns.log")

    def query(self, qname, qtype, timeout=2.0):
        q = dns.message.make_query(qname, qtype)
        return dns.query.udp(q, "127.0.0.1", port=self.port, timeout=timeout)

    def wait_ready(self, zone, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.pdns.poll() is not None:
                raise RuntimeError(f"{self.name}: pdns exited, see {self.dir}/pdns.log")
            try:
                if self.query(zone, "SOA", timeout=1.0).rcode() == dns.rcode.NOERROR:
                    return
            except (dns.exception.Timeout, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name}: no answer within {timeout} s, see {self.dir}/pdns.log")

    def children(self):
        kids = descendants(self.pdns.pid)
        for pid in kids:
            if pid not in self.seen_children:
                try:
                    self.seen_children[pid] = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    pass
        return kids

    def cpu_ticks(self):
        """(pdns, backend) CPU ticks so far: pipe backends are pdns's children."""
        pdns = (proc_stat(self.pdns.pid) or (0, 0))[1]
        backend = sum((proc_stat(p) or (0, 0))[1] for p in self.children())
        if self.backend:
            backend += (proc_stat(self.backend.pid) or (0, 0))[1]
            backend += sum((proc_stat(p) or (0, 0))[1] for p in descendants(self.backend.pid))
        return pdns, backend

    def rss(self):
        """(pdns, backend) private resident memory in KiB."""
        backend = sum(rss_kib(p) for p in self.children())
        if self.backend:
            backend += rss_kib(self.backend.pid)
        return rss_kib(self.pdns.pid), backend

    def stop_leftover_children(self):
        """Pipe backends normally exit with pdns; stop any that did not (same pid, same
        command line as when seen)."""
        for pid, cmdline in self.seen_children.items():
            try:
                if pathlib.Path(f"/proc/{pid}/cmdline").read_bytes() == cmdline:
                    os.kill(pid, signal.SIGTERM)
            except OSError:
                pass


class Bench:
    def __init__(self, args):
        self.args = args
        self.data = DataSet(args, args.records)
        self.also = DataSet(args, args.also_records) if args.also_records else None
        self.procs = []
        self.run_dir = None

    def spawn(self, cmd, logfile):
        with open(logfile, "ab") as out:
            # A session of its own: Ctrl-C reaches only this script, which stops everything in
            # order.
            p = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(p)
        return p

    def stop_all(self, servers):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        deadline = time.time() + 10
        for p in reversed(self.procs):
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for s in servers:
            s.stop_leftover_children()


# --------------------------------------------------------------------------------------------
# Measuring


def dnsperf(args, server, query_file, duration, extra=()):
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(server.port), "-d", str(query_file),
           "-l", str(duration), "-T", str(args.threads), "-c", str(args.clients), *extra]
    if args.signed:
        cmd.append("-D")  # the DO bit: signed answers
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    if r.returncode != 0:
        raise RuntimeError(f"dnsperf failed: {r.stderr}")
    return r.stdout


def parse_dnsperf(text):
    def num(pattern, cast=int):
        m = re.search(pattern, text)
        return cast(m.group(1)) if m else 0
    codes = {}
    m = re.search(r"Response codes:\s+(.*)", text)
    if m:
        for code, n in re.findall(r"([A-Z]+) (\d+) \(", m.group(1)):
            codes[code] = int(n)
    return {
        "sent": num(r"Queries sent:\s+(\d+)"),
        "completed": num(r"Queries completed:\s+(\d+)"),
        "lost": num(r"Queries lost:\s+(\d+)"),
        "qps": num(r"Queries per second:\s+([\d.]+)", float),
        "codes": codes,
    }


def measure(args, server, query_file, duration, extra=()):
    cpu0, t0 = server.cpu_ticks(), time.time()
    out = dnsperf(args, server, query_file, duration, ["-q", str(args.outstanding), *extra])
    cpu1, t1 = server.cpu_ticks(), time.time()
    r = parse_dnsperf(out)
    answered = max(1, r["completed"])
    r["cpu_us_pdns"] = (cpu1[0] - cpu0[0]) / CLK_TCK * 1e6 / answered
    r["cpu_us_backend"] = (cpu1[1] - cpu0[1]) / CLK_TCK * 1e6 / answered
    r["cpu_us"] = r["cpu_us_pdns"] + r["cpu_us_backend"]
    r["cores"] = ((cpu1[0] - cpu0[0]) + (cpu1[1] - cpu0[1])) / CLK_TCK / (t1 - t0)
    r["rss_pdns"], r["rss_backend"] = server.rss()
    return r


def measure_latency(args, servers, query_set):
    """p50/p99 at a fixed --latency-qps. Each server gets --latency-duration seconds in all,
    in one slice per round, the servers interleaved as in the QPS rounds; percentiles are taken
    over the pooled answers, so one noisy moment of the machine cannot decide a server's p99."""
    slices = max(1, min(args.rounds, args.latency_duration))
    seconds = max(1, args.latency_duration // slices)
    pooled = {s.name: ([], [0]) for s in servers}
    for rnd in range(slices):
        order = servers[rnd % len(servers):] + servers[:rnd % len(servers)]
        for s in order:
            out = dnsperf(args, s, s.data.queries[query_set], seconds,
                          ["-q", str(args.outstanding), "-Q", str(args.latency_qps), "-v"])
            lat, lost = pooled[s.name]
            lat += [float(line.split()[-1]) for line in out.splitlines() if line.startswith("> ")]
            lost[0] += parse_dnsperf(out)["lost"]
    result = {}
    for name, (lat, lost) in pooled.items():
        lat.sort()
        pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1e3 if lat else None
        result[name] = {"p50": pick(0.50), "p99": pick(0.99), "n": len(lat), "lost": lost[0]}
    return result


def answer_signature(msg, exact):
    """What must agree between servers: everything for servers with the same records; the
    shape (rcode, sections, types, sizes apart from SMIMEA data) against null_backend."""
    def section(rrsets):
        out = []
        for rr in rrsets:
            if exact or rr.rdtype != dns.rdatatype.SMIMEA:
                out += rr.to_text().splitlines()  # pdns shuffles records within an RRset
            else:
                out.append(f"{rr.name} {rr.ttl} SMIMEA x{len(rr)} "
                           f"{sorted((r.usage, r.selector, r.mtype) for r in rr)}")
        return sorted(out)
    return (dns.rcode.to_text(msg.rcode()), msg.flags & 0x0400, section(msg.answer),
            section(msg.authority))


def check_answers(servers, data, samples):
    """Asks every server the same sample questions; raises on any disagreement."""
    rng = random.Random(1)
    questions = []
    for name, path in data.queries.items():
        lines = path.read_text().splitlines()[:20000]
        questions += [line.split() for line in rng.sample(lines, min(samples, len(lines)))]
    zone = data.meta["first_zone"]
    questions += [[zone, "SOA"], [zone, "NS"], [f"_smimecert.{zone}", "SMIMEA"]]
    problems = []
    ref = next(s for s in servers if s.kind != "null")
    for qname, qtype in questions:
        want = ref.query(qname, qtype)
        for s in servers:
            if s is ref:
                continue
            exact = s.kind != "null"
            got = answer_signature(s.query(qname, qtype), exact)
            if got != answer_signature(want, exact):
                problems.append(f"{s.name} vs {ref.name}: {qname} {qtype}:\n  {got}\n  "
                                f"{answer_signature(want, exact)}")
    if problems:
        raise RuntimeError("servers disagree:\n" + "\n".join(problems[:10]))
    log(f"answers agree on {len(questions)} sample questions")


# --------------------------------------------------------------------------------------------
# Report


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def report(args, bench, servers, results, latency, started):
    """Markdown tables: the all-hits set in full, then QPS and CPU for every set."""
    names = [s.name for s in servers]
    suffix_of = {s.name: s.suffix for s in servers}
    base_of = {s.name: s.name.removesuffix(s.suffix) for s in servers}
    main_set = args.sets[0]
    med = {}
    for (server, qset), runs in results.items():
        med[(server, qset)] = {
            "qps": median([r["qps"] for r in runs]),
            "cpu": median([r["cpu_us"] for r in runs]),
            "cpu_pdns": median([r["cpu_us_pdns"] for r in runs]),
            "cpu_backend": median([r["cpu_us_backend"] for r in runs]),
            "rss_pdns": median([r["rss_pdns"] for r in runs]),
            "rss_backend": median([r["rss_backend"] for r in runs]),
            "servfail": sum(r["codes"].get("SERVFAIL", 0) for r in runs),
            "lost": sum(r["lost"] for r in runs),
            "other": sum(n for r in runs for c, n in r["codes"].items()
                         if c not in ("NOERROR", "NXDOMAIN", "SERVFAIL")
                         or (c == "NXDOMAIN" and qset != "mix")),
            "cores": median([r["cores"] for r in runs]),
        }

    def ratio(a, b):
        return None if a is None or b is None or b == 0 else a / b

    def paired(name, other, key, qset=main_set):
        """Median over rounds of name's figure over other's in the same round: on a noisy
        machine, steadier than the ratio of the medians."""
        a, b = results.get((name, qset), []), results.get((other, qset), [])
        return median([ratio(x[key], y[key]) for x, y in zip(a, b)]) if other else None

    def paired_spread(name, other, key, qset=main_set):
        """paired() with the middle half of the per-round ratios, "0.85 (0.81-0.90)": whether a
        ratio near a target is above it or only noise. Four rounds at least."""
        a, b = results.get((name, qset), []), results.get((other, qset), [])
        ratios = [r for r in (ratio(x[key], y[key]) for x, y in zip(a, b)) if r is not None]
        if not ratios:
            return "-"
        if len(ratios) < 4 or name == other:
            return f"{median(ratios):.2f}"
        q1, q2, q3 = statistics.quantiles(ratios, n=4)
        return f"{q2:.2f} ({q1:.2f}–{q3:.2f})"

    def same_size(name, other):
        """other's server on name's data set, if it ran."""
        other += suffix_of[name]
        return other if other in names else None

    def ceiling(name):
        kind, conn = SERVERS[base_of[name]]
        return same_size(name, f"null-{conn}") if conn else None

    def data_text(data):
        m = data.meta
        return f"{m['records']} records ({m['full']} `3 0 0`) in {m['zones']} zones"

    lines = []
    host = socket.gethostname()
    lines.append(f"Benchmark of {time.strftime('%Y-%m-%d %H:%M', time.localtime(started))} on "
                 f"{host} ({os.cpu_count()} CPUs, load before start "
                 f"{args.load_before:.2f}): {data_text(bench.data)}"
                 + (f" (servers named @{args.also_records}: {data_text(bench.also)})"
                    if bench.also else "") + "; pdns caches off; "
                 f"dnsperf -T {args.threads} -c {args.clients} -q {args.outstanding}, "
                 f"{args.rounds} interleaved rounds of {args.duration} s, medians.")
    lines.append("")
    lines.append(f"Query set `{main_set}` ({QUERY_SETS[main_set]}):")
    lines.append("")
    also = f"@{args.also_records}" if bench.also else None
    lines.append("| server | QPS | CPU µs/q (pdns + backend) | cores | p50 / p99 ms at "
                 f"{args.latency_qps} QPS | memory MiB pdns / backend | SERVFAIL / lost / other | "
                 "QPS ×gsqlite3 | QPS ×bind | QPS ×ceiling | CPU/q ×ceiling |"
                 + (f" QPS ×itself{also} |" if also else ""))
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
                 + ("---:|" if also else ""))
    for n in names:
        m = med.get((n, main_set))
        if not m:
            continue
        lat = latency.get(n, {})
        ceil = ceiling(n)
        cm = med.get((ceil, main_set)) if ceil else None
        g = same_size(n, "gsqlite3")
        b = same_size(n, "bind")
        backend_rss = f"{m['rss_backend'] / 1024:.0f}" if SERVERS[base_of[n]][1] else "-"
        flat = ""
        if also:
            other = n + also if not suffix_of[n] else None
            flat = f" {fmt(paired(n, other, 'qps') if other in names else None, '.2f')} |"
        lines.append(
            f"| {n} | {m['qps']:,.0f} | {m['cpu']:.0f} ({m['cpu_pdns']:.0f} + "
            f"{m['cpu_backend']:.0f}) | {m['cores']:.2f} | {fmt(lat.get('p50'), '.2f')} / "
            f"{fmt(lat.get('p99'), '.2f')} | {m['rss_pdns'] / 1024:.0f} / {backend_rss} | "
            f"{m['servfail']} / {m['lost']} / {m['other']} | "
            f"{fmt(paired(n, g, 'qps') if g else None, '.2f')} | "
            f"{fmt(paired(n, b, 'qps') if b else None, '.2f')} | "
            f"{paired_spread(n, ceil, 'qps') if cm else '-'} | "
            f"{fmt(paired(n, ceil, 'cpu_us') if cm else None, '.2f')} |" + flat)
    if len(args.sets) > 1:
        lines.append("")
        lines.append("All query sets, QPS and CPU µs/q (SERVFAIL / lost)"
                     + (f"; ×itself{also}" if also else "") + ":")
        lines.append("")
        lines.append("| server | " + " | ".join(f"{s}: {QUERY_SETS[s]}" for s in args.sets) + " |")
        lines.append("|---|" + "---:|" * len(args.sets))
        for n in names:
            cells = []
            for s in args.sets:
                m = med.get((n, s))
                flat = paired(n, n + also, "qps", s) if also and not suffix_of[n] else None
                cells.append("-" if not m else
                             f"{m['qps']:,.0f} q/s, {m['cpu']:.0f} µs ({m['servfail']} / {m['lost']})"
                             + (f", ×{flat:.2f}" if flat is not None else ""))
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("CPU µs/q: CPU time of pdns (and its pipe children) and of the backend process "
                 "over the queries answered. Ratios are medians of the per-round ratios (for "
                 "QPS ×ceiling, in brackets, the middle half of them: their quartiles); "
                 "×ceiling is against null_backend on the same connector"
                 + (f", ×itself{also} against the same server on the other data set"
                    if also else "") + ". Memory: private "
                 "resident memory (RssAnon), without the page cache of memory-mapped files; "
                 "for the pipe backend the sum over its processes.")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", type=pathlib.Path, default=ROOT / "build-bench",
                   help="build directory with smimea-ctl, smimea-backend, tests/bench/null_backend")
    p.add_argument("--records", type=int, default=100000, help="SMIMEA owners (default 100000)")
    p.add_argument("--also-records", type=int, metavar="M",
                   help="also run every server on a data set of M owners, in the same rounds, "
                        "and report QPS at --records over QPS at M (flatness with size)")
    p.add_argument("--zones", type=int, default=100, help="zones (default 100)")
    p.add_argument("--workdir", default="/tmp/smimea-bench", help="data cache and run files")
    p.add_argument("--regenerate", action="store_true", help="rebuild the cached data set")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--cert-pool", type=int, default=32, help="real certificates (default 32)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=15, help="seconds per dnsperf run")
    p.add_argument("--warmup", type=int, default=2, help="seconds of unrecorded load per server")
    p.add_argument("--latency-duration", type=int, default=10)
    p.add_argument("--latency-qps", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1, help="dnsperf -T")
    p.add_argument("--clients", type=int, default=4, help="dnsperf -c")
    p.add_argument("--outstanding", type=int, default=64, help="dnsperf -q")
    p.add_argument("--servers", help=f"comma-separated subset of {','.join(SERVERS)}")
    p.add_argument("--sets", help="query sets, the first one gets the full table (hits, mix, "
                                  "full; default all three)")
    p.add_argument("--check-samples", type=int, default=20,
                   help="questions per query set compared across servers before measuring")
    p.add_argument("--other-backend", action="append", default=[], metavar="LABEL=PATH",
                   help="also measure this smimea-backend binary (another build, say) as "
                        "servers LABEL-unix and LABEL-pipe, or this libsmimeabackend.so as "
                        "server LABEL-native, in the same rounds (repeatable)")
    p.add_argument("--pdns-setting", action="append", default=[],
                   help="extra pdns.conf line for every server (repeatable)")
    p.add_argument("--ready-timeout", type=int, default=600, help="seconds for pdns to load")
    p.add_argument("--generate-only", action="store_true", help="make the data set and stop")
    p.add_argument("--out", type=pathlib.Path, help="also write the table here (Markdown)")
    signed_setup.add_argument(p)
    args = p.parse_args()
    args.build = args.build.resolve()
    if " " in str(args.build) + args.workdir:
        p.error("--build and --workdir must not contain spaces (pdns splits the pipe command)")
    signed_setup.apply_arguments(args, QUERY_SETS)
    args.servers = [s for s in (args.servers or ",".join(SERVERS)).split(",") if s]
    args.sets = args.sets or "hits,mix,full"
    args.backend_binaries = {}
    for spec in args.other_backend:
        label, _, path = spec.partition("=")
        module = path.endswith(".so")
        if not label or " " in path or not (os.path.isfile(path) if module
                                            else os.access(path, os.X_OK)):
            p.error(f"--other-backend {spec}: expected LABEL=PATH of an executable or a .so")
        for conn in ([None] if module else ["unix", "pipe"]):
            name = f"{label}-{conn or 'native'}"
            SERVERS[name] = ("native", None) if module else ("smimea", conn)
            args.backend_binaries[name] = pathlib.Path(path).resolve()
            args.servers.append(name)
    args.sets = [s for s in args.sets.split(",") if s]
    for s in args.servers:
        if s not in SERVERS:
            p.error(f"unknown server {s}")
        if args.signed and SERVERS[s][0] == "null":
            p.error(f"--signed: {s} cannot serve signed zones")
    for s in args.sets:
        if s not in QUERY_SETS:
            p.error(f"unknown query set {s}")
    for binary in ("smimea-ctl", "smimea-backend", "tests/bench/null_backend"):
        if not (args.build / binary).exists():
            p.error(f"{args.build / binary} missing: build with -DSMIMEA_BUILD_BENCH=ON")
    return args


def on_signal(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    args.load_before = os.getloadavg()[0]
    started = time.time()
    bench = Bench(args)
    bench.data.ensure()
    if bench.also:
        bench.also.ensure()
    if args.signed:
        for data in (bench.data, bench.also):
            if data:
                signed_setup.ensure(data, args.build, ABSENT_PREFIX)
    if args.generate_only:
        return 0
    run_root = pathlib.Path(args.workdir) / "run"
    run_root.mkdir(parents=True, exist_ok=True)
    bench.run_dir = pathlib.Path(tempfile.mkdtemp(prefix="r", dir=run_root))
    servers = [Server(n, bench, bench.data) for n in args.servers]
    if bench.also:
        servers += [Server(n, bench, bench.also, f"@{args.also_records}") for n in args.servers]
    try:
        for s in servers:
            s.start_backend()
        for s in servers:
            s.start_pdns()
        for s in servers:
            s.wait_ready(s.data.meta["first_zone"], args.ready_timeout)
        log("servers: " + ", ".join(f"{s.name} :{s.port}" for s in servers))
        if args.check_samples > 0:
            for data in (bench.data, bench.also):
                if data and args.signed:
                    signed_setup.check_answers([s for s in servers if s.data is data], data,
                                               args.check_samples, args.sets)
                elif data:
                    check_answers([s for s in servers if s.data is data], data,
                                  args.check_samples)
        first_pass = {}
        if args.signed:  # a first pass over every file: every measured signature is cached
            measure_run = signed_setup.counting_signatures(measure)
            first_pass = signed_setup.first_pass(args, servers, measure_run)
        elif args.warmup > 0:
            for s in servers:
                dnsperf(args, s, s.data.queries[args.sets[0]], args.warmup,
                        ["-q", str(args.outstanding)])
        results = {}
        for rnd in range(args.rounds):
            for qset in args.sets:
                # Rotate the order each round so no server always follows the same one.
                order = servers[rnd % len(servers):] + servers[:rnd % len(servers)]
                for s in order:
                    r = (measure_run if args.signed else measure)(args, s, s.data.queries[qset],
                                                                  args.duration)
                    results.setdefault((s.name, qset), []).append(r)
                    log(f"round {rnd + 1}/{args.rounds} {qset:4} {s.name:20} "
                        f"{r['qps']:9,.0f} q/s {r['cpu_us']:6.1f} µs/q "
                        f"(pdns {r['cpu_us_pdns']:.1f} + backend {r['cpu_us_backend']:.1f}) "
                        f"cores {r['cores']:.2f} lost {r['lost']} codes {r['codes']}")
        # The signed run measures latency for every set; the unsigned one for the first.
        latency_by_set = {q: measure_latency(args, servers, q)
                          for q in (args.sets if args.signed else args.sets[:1])}
        latency = latency_by_set[args.sets[0]]
        for s in servers:
            log(f"latency {s.name:20} p50 {fmt(latency[s.name]['p50'], '.3f')} ms "
                f"p99 {fmt(latency[s.name]['p99'], '.3f')} ms ({latency[s.name]['n']} answers, "
                f"{latency[s.name]['lost']} lost)")
    finally:
        bench.stop_all(servers)
    table = report(args, bench, servers, results, latency, started)
    if args.signed:
        table += signed_setup.report(args, servers, results, latency_by_set, first_pass)
    print(table)
    raw = {"args": {k: str(v) for k, v in vars(args).items()},
           "results": {f"{k[0]} {k[1]}": v for k, v in results.items()},
           "latency": latency_by_set if args.signed else latency,
           "first_pass": {f"{k[0]} {k[1]}": v for k, v in first_pass.items()}}
    (bench.run_dir / "results.json").write_text(json.dumps(raw, indent=1))
    (bench.run_dir / "results.md").write_text(table)
    log(f"raw results in {bench.run_dir}")
    if args.out:
        args.out.write_text(table)
        log(f"table written to {args.out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); servers stopped")
        sys.exit(130)

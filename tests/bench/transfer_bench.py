#!/usr/bin/python3
"""Zone-transfer scale figures: a store of many zones and certificates served by pdns. Not part
of the test suite; see tests/bench/README.md and README.md, "Primary and secondaries".

    /usr/bin/python3 tests/bench/transfer_bench.py --build build-xfer \\
        [--zones 10000] [--records 1000000] [--largest 100000] [--out results.md]

Measured:
  * getAllDomains: one request to `smimea-backend --pipe` (the remote backend), the first one
    (zone table read from the store) and the median of the next ones; the native module's
    getAllDomains runs inside pdns's start-up, measured next.
  * pdns start-up: from starting pdns_server (and, for the unix connector, a running
    smimea-backend --listen) to the first NOERROR answer for the SOA of the last zone, which
    needs the zone cache filled (getAllDomains over every zone).
  * A full AXFR of the largest zone with kdig, per connector (pipe with timeout=0, native, and
    unix, which pdns 4.7.3 re-parses quadratically: it is expected to fail on a large zone), the
    record count checked, and the peak resident memory of pdns and of our backend process
    (sampled every 50 ms) while it runs.
  * `smimea-ctl cert add` latency (each a new process, one transaction) into the largest zone
    and into a small one: idle, then while AXFRs of the largest zone run back to back.

Data set (cached under --workdir, reused while the parameters and schema.sql are the same): the
certificate pool of dns_bench.py (real RSA-2048 certificates published by smimea-ctl into a
scratch store), then one SQL transaction writing the zones (dom00000.example.com ...), and per
owner a copy of a pool certificate's row and one record: "3 0 0" (the DER, ~925 bytes) for
every tenth owner, "3 1 1" otherwise. (dns_bench.py picks its "3 0 0" owners by hash prefix,
which puts all of them first in a zone's owner order: 100 of them in one AXFR message exceed
pdns's 64 KB, see README.md, "Limits of pdns 4.7.3's AXFR".) The largest zone (the first) gets
--largest owners; the rest are spread evenly over the other zones. Owner hashes are real (SHA2-256 of user<i>, 28
octets).

Needs: pdns-server, pdns-backend-remote, knot-dnsutils (kdig), openssl, python3-dnspython, and a
build with smimea-ctl, smimea-backend and (unless --connectors leaves it out) the native module.
Every process started here is stopped on exit, Ctrl-C and errors.
"""
import argparse
import hashlib
import json
import os
import pathlib
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types

import dns.exception
import dns.message
import dns.query
import dns.rcode

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import dns_bench  # noqa: E402  (its certificate pool, logging and process helpers)
from dns_bench import NAMESERVERS, RNAME, descendants, free_port, log, run  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
GENERATOR_VERSION = 2
PDNS_SERVER = "/usr/sbin/pdns_server"
KDIG = shutil.which("kdig") or "/usr/bin/kdig"


# --------------------------------------------------------------------------------------------
# Data set


class DataSet:
    def __init__(self, args):
        self.args = args
        schema = hashlib.sha256((ROOT / "schema/schema.sql").read_bytes()).hexdigest()[:8]
        self.dir = pathlib.Path(args.workdir) / (
            f"xfr-z{args.zones}-n{args.records}-l{args.largest}-p{args.cert_pool}"
            f"-g{GENERATOR_VERSION}-{schema}")
        self.config = self.dir / "smimea.yaml"
        self.store = self.dir / "smimea.db"
        self.meta_file = self.dir / "meta.json"
        self.meta = None

    def ctl(self, *argv):
        return run([self.args.build / "smimea-ctl", "-c", self.config, *argv])

    def zone_name(self, i):
        return f"dom{i:05d}.example.com"

    def ensure(self):
        if self.meta_file.exists() and not self.args.regenerate:
            self.meta = json.loads(self.meta_file.read_text())
            log(f"data set: reusing {self.dir}")
            self.ctl("check-config")
            return
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        t0 = time.time()
        # dns_bench's pool: real certificates, published by smimea-ctl into a scratch store.
        pool_maker = dns_bench.DataSet(types.SimpleNamespace(
            workdir=str(self.dir), zones=0, seed=0, cert_pool=self.args.cert_pool,
            build=self.args.build, regenerate=False, signed=False), 0)
        pool_maker.dir = self.dir
        pool = pool_maker.make_cert_pool()
        self.make_store(pool)
        self.meta = {"zones": self.args.zones, "records": self.args.records,
                     "largest": self.args.largest, "largest_zone": self.zone_name(0),
                     "store_bytes": self.store.stat().st_size,
                     "generated_seconds": round(time.time() - t0)}
        self.meta_file.write_text(json.dumps(self.meta, indent=1))
        log(f"data set: generated in {time.time() - t0:.0f} s, store "
            f"{self.meta['store_bytes'] / 1e6:.0f} MB")

    def make_store(self, pool):
        a = self.args
        log(f"data set: {a.records} certificates in {a.zones} zones, {a.largest} in the first")
        self.config.write_text(f"database: {self.store}\nnameservers: [{', '.join(NAMESERVERS)}]\n"
                               f"soa:\n  rname: {RNAME}\ndefault-ttl: 3600\n")
        self.ctl("init")
        now = int(time.time())
        db = sqlite3.connect(self.store)
        with db:
            db.executemany(
                "INSERT INTO zones (id, name, mode, kind, serial, notified_serial, created_at, "
                "updated_at) VALUES (?, ?, 'authoritative', 'master', ?, ?, ?, ?)",
                ((i + 1, self.zone_name(i), now, now, now, now) for i in range(a.zones)))

        def zone_of(i):
            if i < a.largest or a.zones == 1:
                return 0
            return 1 + (i - a.largest) % (a.zones - 1)

        def owners():
            for i in range(a.records):
                local = f"user{i}"
                h = hashlib.sha256(local.encode()).digest()[:28]
                yield i, local, h, zone_of(i)

        def cert_rows():
            for i, local, _, z in owners():
                p = pool[i % len(pool)]
                yield (i + 1, z + 1, f"{local}@{self.zone_name(z)}", self.zone_name(z),
                       p["fingerprint"], p["der"], p["subject"], p["issuer"], p["serial"],
                       p["not_before"], p["not_after"], now)

        def record_rows():
            for i, _, h, z in owners():
                p = pool[i % len(pool)]
                full = i % 10 == 0
                params, data = ((3, 0, 0), p["300"]) if full else ((3, 1, 1), p["311"])
                yield (i + 1, i + 1, z + 1, h, *params, 3600, data)

        with db:
            db.executemany("INSERT INTO certificates (id, zone_id, address, domain, fingerprint, "
                           "der, subject, issuer, serial, not_before, not_after, created_at) "
                           "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", cert_rows())
            db.executemany("INSERT INTO records (id, certificate_id, zone_id, owner, usage, "
                           "selector, matching_type, ttl, data) VALUES (?,?,?,?,?,?,?,?,?)",
                           record_rows())
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        self.ctl("check-config")
        listed = json.loads(self.ctl("--json", "cert", "list",
                                     f"user0@{self.zone_name(zone_of(0))}"))
        if len(listed) != 1 or len(listed[0]["records"]) != 1:
            raise RuntimeError(f"smimea-ctl cert list disagrees for user0: {listed}")


# --------------------------------------------------------------------------------------------
# Processes


class Procs:
    """Everything started here, stopped in reverse order."""

    def __init__(self):
        self.procs = []

    def spawn(self, cmd, logfile, **kw):
        with open(logfile, "ab") as out:
            p = subprocess.Popen([str(c) for c in cmd], stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def stop(self, p, timeout=15):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in reversed(list(self.procs)):
            self.stop(p)


class Primary:
    """pdns_server on our store over one connector (pipe, unix or native)."""

    def __init__(self, bench, spec):
        """spec: pipe, native, unix, or unix@MS for the unix connector's timeout in ms."""
        self.bench = bench
        self.spec = spec
        self.connector, _, timeout = spec.partition("@")
        self.unix_timeout = int(timeout or 2000)
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix=f"pdns-{self.connector}-",
                                                 dir=bench.run_dir))
        self.port = free_port()
        self.pdns = None
        self.backend = None

    def config(self):
        data, build = self.bench.data, self.bench.args.build
        lines = ["local-address=127.0.0.1", f"local-port={self.port}", f"socket-dir={self.dir}",
                 "daemon=no", "guardian=no", "write-pid=no", "disable-syslog=yes",
                 "security-poll-suffix=", "loglevel=4", "allow-axfr-ips=127.0.0.0/8"]
        if self.connector == "native":
            lines += ["launch=smimea", f"load-modules={build / 'libsmimeabackend.so'}",
                      f"smimea-config={data.config}"]
        elif self.connector == "pipe":
            lines += ["launch=remote", "remote-connection-string=pipe:command="
                      f"{build / 'smimea-backend'} --config {data.config} --pipe,timeout=0"]
        else:
            lines += ["launch=remote",
                      f"remote-connection-string=unix:path={self.dir / 'backend.sock'},"
                      f"timeout={self.unix_timeout}"]
        return "\n".join(lines + self.bench.args.pdns_setting) + "\n"

    def start(self, last_zone):
        """Starts pdns; returns seconds to the first NOERROR SOA answer for last_zone."""
        (self.dir / "pdns.conf").write_text(self.config())
        if self.connector == "unix":
            sock = self.dir / "backend.sock"
            self.backend = self.bench.procs.spawn(
                [self.bench.args.build / "smimea-backend", "--config", self.bench.data.config,
                 "--listen", sock], self.dir / "backend.log")
            deadline = time.time() + 30
            while not sock.exists() and time.time() < deadline:
                time.sleep(0.02)
        t0 = time.monotonic()
        self.pdns = self.bench.procs.spawn([PDNS_SERVER, f"--config-dir={self.dir}"],
                                           self.dir / "pdns.log", stdin=subprocess.DEVNULL)
        q = dns.message.make_query(last_zone + ".", "SOA")
        deadline = t0 + self.bench.args.ready_timeout
        while time.monotonic() < deadline:
            if self.pdns.poll() is not None:
                raise RuntimeError(f"pdns ({self.connector}) exited:\n" + self.log_tail())
            try:
                r = dns.query.udp(q, "127.0.0.1", port=self.port, timeout=0.2)
                if r.rcode() == dns.rcode.NOERROR and r.answer:
                    return time.monotonic() - t0
            except (dns.exception.Timeout, OSError):
                pass
            time.sleep(0.02)
        raise RuntimeError(f"pdns ({self.connector}) not ready:\n" + self.log_tail())

    def last_error(self):
        """pdns's last logged error line (why a transfer failed), or ''."""
        try:
            lines = (self.dir / "pdns.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        errors = [x for x in lines if "error" in x.lower() or "exception" in x.lower()]
        return errors[-1].split(" ", 3)[-1] if errors else ""

    def log_tail(self):
        try:
            return (self.dir / "pdns.log").read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"

    def backend_pids(self):
        """Our backend's processes: pipe children of pdns, or the unix server."""
        if self.connector == "pipe":
            return descendants(self.pdns.pid)
        if self.connector == "unix":
            return [self.backend.pid]
        return []

    def stop(self):
        for p in (self.pdns, self.backend):
            if p is not None:
                self.bench.procs.stop(p)


def anon_kib(pid):
    """Private (anonymous) resident memory of pid in KiB: heap and stacks, without the pages of
    the store file SQLite maps (PRAGMA mmap_size), which VmRSS counts too."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakRss:
    """Samples the anonymous resident memory of pdns and of our backend every 50 ms."""

    def __init__(self, primary):
        self.primary = primary
        self.pdns = 0
        self.backend = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.pdns = max(self.pdns, anon_kib(self.primary.pdns.pid))
            # The largest of our backend's processes: with the pipe connector, the child pdns
            # started for this transfer.
            for pid in self.primary.backend_pids():
                self.backend = max(self.backend, anon_kib(pid))
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def kdig_axfr(port, zone, timeout):
    """(seconds, records, error or None) of one AXFR with kdig."""
    t0 = time.monotonic()
    try:
        r = subprocess.run([KDIG, "@127.0.0.1", "-p", str(port), "+noall", "+answer",
                            f"+timeout={max(1, int(timeout))}", zone, "AXFR"],
                           capture_output=True, text=True, timeout=timeout + 30)
    except subprocess.TimeoutExpired:
        return time.monotonic() - t0, 0, "timed out"
    took = time.monotonic() - t0
    lines = [x for x in r.stdout.splitlines() if x and not x.startswith(";")]
    err = None
    if r.returncode != 0 or not lines or lines[-1].split()[3] != "SOA":
        text = [x.strip(" ;") for x in (r.stdout + "\n" + r.stderr).splitlines()
                if "ERROR" in x or "WARNING" in x]
        err = "kdig: " + (text[-1] if text else "the transfer ended without its closing SOA")
    return took, len(lines), err


def ctl_latency(bench, command, addresses, pem=None):
    """Seconds each `smimea-ctl cert add|remove ADDRESS` took."""
    times = []
    for address in addresses:
        extra = [pem, "--force", "--record", "3 1 1"] if command == "add" else []
        t0 = time.monotonic()
        run([bench.args.build / "smimea-ctl", "-c", bench.data.config, "cert", command, address,
             *extra])
        times.append(time.monotonic() - t0)
    return times


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


# --------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args):
        self.args = args
        self.data = DataSet(args)
        self.procs = Procs()
        self.run_dir = None
        self.results = {}

    def get_all_domains(self):
        cmd = [self.args.build / "smimea-backend", "--config", self.data.config, "--pipe"]
        p = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.procs.procs.append(p)
        try:
            def call(method, **params):
                p.stdin.write((json.dumps({"method": method, "parameters": params}) +
                               "\n").encode())
                p.stdin.flush()
                t0 = time.monotonic()
                line = p.stdout.readline()
                return time.monotonic() - t0, len(line), json.loads(line)

            call("initialize", command="bench", timeout="2000")
            times = []
            for _ in range(6):
                took, size, reply = call("getAllDomains", include_disabled=True)
                if len(reply["result"]) != self.args.zones:
                    raise RuntimeError(f"getAllDomains: {len(reply['result'])} zones")
                times.append(took)
            self.results["getAllDomains"] = {"first": times[0],
                                             "median": statistics.median(times[1:]),
                                             "bytes": size}
            log(f"getAllDomains: first {times[0] * 1000:.0f} ms, then "
                f"{statistics.median(times[1:]) * 1000:.0f} ms, {size / 1e6:.1f} MB")
        finally:
            p.stdin.close()
            self.procs.stop(p)

    def connector_figures(self, connector):
        a = self.args
        zone = self.data.zone_name(0)
        last = self.data.zone_name(a.zones - 1)
        want = self.zone_records(1) + len(NAMESERVERS) + 2
        primary = Primary(self, connector)
        out = self.results.setdefault(connector, {})
        try:
            try:
                out["startup"] = primary.start(last)
            except RuntimeError:
                out["startup_error"] = primary.last_error() or "did not start"
                log(f"{connector}: pdns did not start: {out['startup_error']}")
                return
            log(f"{connector}: pdns answers {last} after {out['startup']:.1f} s")
            runs = []
            for i in range(1 if connector.startswith("unix") else a.axfr_runs):
                with PeakRss(primary) as rss:
                    took, count, err = kdig_axfr(primary.port, zone, a.axfr_timeout)
                if err:
                    err += f"; pdns: {primary.last_error()}"
                elif count != want:
                    err = f"{count} records, want {want}"
                runs.append({"seconds": took, "records": count, "error": err,
                             "pdns_rss_kib": rss.pdns, "backend_rss_kib": rss.backend})
                status = err or "ok"
                log(f"{connector}: AXFR {zone}: {took:.1f} s, {count} records ({status}), "
                    f"peak anon RSS pdns {rss.pdns / 1024:.0f} MiB, backend "
                    f"{rss.backend / 1024:.0f} MiB")
                if err:
                    break
            out["axfr"] = runs
        finally:
            primary.stop()

    def zone_records(self, zone_id):
        db = sqlite3.connect(f"file:{self.data.store}?mode=ro", uri=True)
        try:
            return db.execute("SELECT count(*) FROM records WHERE zone_id = ?",
                              (zone_id,)).fetchone()[0]
        finally:
            db.close()

    def latency_figures(self):
        primary = Primary(self, self.args.latency_connector)
        try:
            primary.start(self.data.zone_name(self.args.zones - 1))
            self.latency(primary, self.data.zone_name(0))
        finally:
            primary.stop()

    def latency(self, primary, zone):
        a = self.args
        pem = self.run_dir / "ec.pem"
        key = self.run_dir / "ec.key"
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", key, "-out", pem, "-days", "30", "-subj", "/CN=bench",
             "-addext", "subjectAltName=email:bench@example.com"])
        small = self.data.zone_name(a.zones - 1)
        n = a.adds
        addresses = {key: [f"{key.replace('_', '-')}{i}@{z}" for i in range(n)]
                     for key, z in (("idle_big", zone), ("idle_small", small),
                                    ("busy_big", zone), ("busy_small", small))}
        try:
            self.measure_latency(primary, zone, pem, addresses)
        finally:
            # The cached data set is left as it was.
            for group in addresses.values():
                for address in group:
                    subprocess.run([str(a.build / "smimea-ctl"), "-c", str(self.data.config),
                                    "cert", "remove", address], capture_output=True)

    def measure_latency(self, primary, zone, pem, addresses):
        a = self.args
        n = a.adds
        idle_big = ctl_latency(self, "add", addresses["idle_big"], pem)
        idle_small = ctl_latency(self, "add", addresses["idle_small"], pem)
        idle_remove = ctl_latency(self, "remove", addresses["idle_small"])
        addresses["idle_small"] = []  # removed already
        stop = threading.Event()
        transfers = []

        def transfer_loop():
            while not stop.is_set():
                transfers.append(kdig_axfr(primary.port, zone, a.axfr_timeout))

        low = self.zone_records(1) + len(NAMESERVERS) + 2
        threads = [threading.Thread(target=transfer_loop) for _ in range(a.parallel_axfr)]
        for t in threads:
            t.start()
        time.sleep(1.0)  # the transfers are under way
        try:
            busy_big = ctl_latency(self, "add", addresses["busy_big"], pem)
            busy_small = ctl_latency(self, "add", addresses["busy_small"], pem)
            busy_remove = ctl_latency(self, "remove", addresses["busy_big"])
            addresses["busy_big"] = []  # removed already
        finally:
            stop.set()
            for t in threads:
                t.join()
        # Each transfer is one snapshot: its record count is that of some moment of the run.
        failed = [t for t in transfers if t[2] or not low <= t[1] <= low + n]
        self.results["latency"] = {
            "connector": primary.connector, "adds": n, "parallel_axfr": a.parallel_axfr,
            "transfers": len(transfers), "transfers_failed": len(failed),
            "idle_big": idle_big, "idle_small": idle_small, "busy_big": busy_big,
            "busy_small": busy_small, "idle_remove": idle_remove, "busy_remove": busy_remove}
        for label, v in (("idle, largest zone", idle_big), ("idle, small zone", idle_small),
                         ("during AXFRs, largest zone", busy_big),
                         ("during AXFRs, small zone", busy_small),
                         ("remove, idle, small zone", idle_remove),
                         ("remove during AXFRs, largest zone", busy_remove)):
            log(f"cert add {label}: median {statistics.median(v) * 1000:.0f} ms, "
                f"max {max(v) * 1000:.0f} ms")
        log(f"{len(transfers)} AXFRs ran meanwhile, {len(failed)} failed")

    def report(self, started):
        a, r, m = self.args, self.results, self.data.meta
        lines = [f"# Transfer benchmark, {time.strftime('%Y-%m-%d %H:%M')}", "",
                 f"Command: `{' '.join(sys.argv)}`", "",
                 f"Store: {m['zones']} zones, {m['records']} certificates (one record each), "
                 f"largest zone {m['largest_zone']} with {m['largest']}; "
                 f"{m['store_bytes'] / 1e6:.0f} MB; generated in {m['generated_seconds']} s.",
                 f"Machine: {os.cpu_count()} cores, load {a.load_before:.1f} before the run; "
                 f"run took {time.time() - started:.0f} s.", ""]
        if "getAllDomains" in r:
            g = r["getAllDomains"]
            lines += [f"getAllDomains (remote backend, one request, {m['zones']} zones, "
                      f"{g['bytes'] / 1e3:.0f} KB reply): first {g['first'] * 1000:.0f} ms, "
                      f"then {g['median'] * 1000:.0f} ms (median of 5)", ""]
        lines += ["| connector | pdns start-up to first answer | AXFR of the largest zone | "
                  "records | peak anon RSS pdns | peak anon RSS backend |",
                  "|---|---|---|---|---|---|"]
        for c in a.connectors:
            if c not in r:
                continue
            if "startup_error" in r[c]:
                lines.append(f"| {c} | pdns exits: {r[c]['startup_error']} | - | - | - | - |")
                continue
            runs = r[c].get("axfr", [])
            ok = [x for x in runs if not x["error"]]
            if ok:
                axfr = f"{statistics.median([x['seconds'] for x in ok]):.1f} s"
                if len(ok) > 1:
                    axfr += f" (median of {len(ok)})"
                rec = str(ok[0]["records"])
            else:
                axfr = f"fails after {runs[0]['seconds']:.1f} s: {runs[0]['error']}" if runs \
                    else "-"
                rec = "-"
            src = ok or runs
            pdns_rss = f"{max(x['pdns_rss_kib'] for x in src) / 1024:.0f} MiB" if src else "-"
            be_rss = (f"{max(x['backend_rss_kib'] for x in src) / 1024:.0f} MiB"
                      if src and c != "native" else "(in pdns)")
            lines.append(f"| {c} | {r[c]['startup']:.1f} s | {axfr} | {rec} | {pdns_rss} | "
                         f"{be_rss} |")
        if "latency" in r:
            lat = r["latency"]
            lines += ["", f"`smimea-ctl cert add` latency ({lat['adds']} adds each, one process "
                      f"and transaction per add; pdns over {lat['connector']}; "
                      f"{lat['parallel_axfr']} AXFR loop(s) of the largest zone, "
                      f"{lat['transfers']} transfers, {lat['transfers_failed']} failed; the "
                      "adds run after this table's transfers):", "",
                      "| | median | p90 | max |", "|---|---|---|---|"]
            for label, key in (("idle, largest zone", "idle_big"),
                               ("idle, small zone", "idle_small"),
                               ("during AXFRs, largest zone", "busy_big"),
                               ("during AXFRs, small zone", "busy_small"),
                               ("cert remove, idle, small zone", "idle_remove"),
                               ("cert remove during AXFRs, largest zone", "busy_remove")):
                v = lat[key]
                lines.append(f"| {label} | {statistics.median(v) * 1000:.0f} ms | "
                             f"{pct(v, 0.9) * 1000:.0f} ms | {max(v) * 1000:.0f} ms |")
        return "\n".join(lines) + "\n"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", type=pathlib.Path, default=ROOT / "build",
                   help="build directory with smimea-ctl, smimea-backend, libsmimeabackend.so")
    p.add_argument("--zones", type=int, default=10000)
    p.add_argument("--records", type=int, default=1000000, help="certificates, one record each")
    p.add_argument("--largest", type=int, default=100000, help="certificates in the first zone")
    p.add_argument("--cert-pool", type=int, default=8, help="real certificates (default 8)")
    p.add_argument("--workdir", default="/tmp/smimea-xfer-bench")
    p.add_argument("--regenerate", action="store_true")
    p.add_argument("--connectors", default="pipe,native,unix,unix@60000",
                   help="pipe (timeout=0), native, unix (pdns's default timeout, 2000 ms), "
                        "unix@MS (that timeout)")
    p.add_argument("--axfr-runs", type=int, default=3)
    p.add_argument("--axfr-timeout", type=float, default=600)
    p.add_argument("--latency-connector", default="pipe",
                   help="the connector whose pdns serves the AXFRs during the latency run")
    p.add_argument("--adds", type=int, default=20, help="cert adds per latency series")
    p.add_argument("--parallel-axfr", type=int, default=1, help="AXFR loops during latency")
    p.add_argument("--pdns-setting", action="append", default=[])
    p.add_argument("--ready-timeout", type=int, default=900)
    p.add_argument("--generate-only", action="store_true")
    p.add_argument("--out", type=pathlib.Path, help="also write the results here (Markdown)")
    args = p.parse_args()
    args.build = args.build.resolve()
    args.connectors = [c for c in args.connectors.split(",") if c]
    for c in args.connectors:
        name, _, ms = c.partition("@")
        if name not in ("pipe", "native", "unix") or (ms and (name != "unix" or
                                                               not ms.isdigit())):
            p.error(f"unknown connector {c}")
    if " " in str(args.build) + args.workdir:
        p.error("--build and --workdir must not contain spaces (pdns splits the pipe command)")
    if not 1 <= args.largest <= args.records or args.zones < 1:
        p.error("need 1 <= --largest <= --records and --zones >= 1")
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
    if args.generate_only:
        return 0
    bench.run_dir = pathlib.Path(tempfile.mkdtemp(prefix="run-", dir=args.workdir))
    try:
        bench.get_all_domains()
        for c in args.connectors:
            bench.connector_figures(c)
        if args.adds > 0:
            bench.latency_figures()
    finally:
        bench.procs.stop_all()
    text = bench.report(started)
    print(text)
    (bench.run_dir / "results.md").write_text(text)
    (bench.run_dir / "results.json").write_text(json.dumps(bench.results, indent=1))
    if args.out:
        args.out.write_text(text)
    log(f"run files in {bench.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

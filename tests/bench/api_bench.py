#!/usr/bin/python3
"""smimea-api publish throughput and latency, side by side with smimea-ctl. Not part of the
test suite.

    /usr/bin/python3 tests/bench/api_bench.py [--build build-bench] [--certs 20000] [--rounds 3]
        [--clients 8] [--chunk 5000] [--cli-sample 500] [--json [FILE]] [--keep]

Data: N self-signed EC P-256 certificates for user<i>@d0.bench.example, one shared key, made by
the import benchmark's generator (tests/bench/gen_certs from the build, one PEM file each), or
with python3-cryptography when the build has no gen_certs. Every measurement starts from a
fresh store (smimea-ctl init, zone add d0.bench.example, token add bench --zone ...); the
publishes are the same for all of them: one "3 0 0" record per certificate (the default).

Measurements, each on its own fresh store, every round running all four in turn (the order
reversed every other round), R rounds (default 3):
  api-single  smimea-api (api: {rate-limit: 0, threads: 4}) on 127.0.0.1 (a free port), --clients
              client processes (multiprocessing: the GIL would measure Python), each with one
              http.client connection kept open, POSTing its share of the N certificates to
              /api/v1/certificates one at a time. Publishes/s = N / (last answer - first
              request); latency per request (request sent to the whole answer read) p50/p99
              over all requests of the round. Also from the daemon's request log: its own
              duration per request.
  api-bulk    the same N into a fresh store through POST /api/v1/certificates/bulk, --chunk
              certificates per request, one client. Certificates/s = N / the sum of the
              request times (bodies are encoded before and answers parsed after timing).
  cli-add     `smimea-ctl cert add ADDRESS FILE` for the first --cli-sample certificates, one
              process each, one after another: certificates/s = sample / wall clock; latency =
              one process.
  cli-import  `smimea-ctl cert import DIR` of the N files: certificates/s over wall clock.

Reported: per measurement the median over rounds and min-max; CPU per certificate (the
daemon's, or smimea-ctl's, user + system: the figure noise disturbs least); ratios API / CLI
(api-single / cli-add, api-bulk / cli-import; and of CPU per certificate, CLI / API) as the
median of the per-round ratios and their min-max; next to them the targets: single
publishes >= 1,000/s with p99 <= 20 ms at 8 clients, bulk >= 20,000 certificates/s. Every
answer's status is counted: anything but 201 (single) or 200 with nothing refused (bulk), a
reconnection, a status other than those in the daemon's request log, any other line on its
stderr, or a daemon that did not exit 0 on SIGTERM is reported (with the daemon's stderr),
and the exit status is then 1. After each round the stores are compared: every path must
have stored the same rows.

Needs only Debian packages (python3, python3-cryptography for the fallback generator) and a
build with smimea-api and smimea-ctl. Downloads nothing. Every process started here is
stopped on exit, Ctrl-C and errors. Run files (certificates, stores, the daemon's logs) go to
a new directory under --workdir (default $TMPDIR), removed at the end unless --keep.
"""
import argparse
import collections
import hashlib
import http.client
import json
import math
import multiprocessing
import os
import pathlib
import re
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))
from smimea_test import free_port  # noqa: E402  (one definition, shared with the tests)

ROOT = pathlib.Path(__file__).resolve().parents[2]
ZONE = "d0.bench.example"
TOKEN_NAME = "bench"
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MEASUREMENTS = ["api-single", "api-bulk", "cli-add", "cli-import"]
TARGETS = {"single_rate": 1000, "single_p99_ms": 20, "bulk_rate": 20000}
LOG_LINE = re.compile(r"^(?:smimea-api: )?info: (\S+) (\S+) (\d{3}) ([0-9.]+)ms token=")

# Request bodies, one per certificate (set before the client processes fork).
BODIES = []


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    """Runs cmd and returns its stdout as text; raises with stderr on failure."""
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {r.returncode}:\n{r.stderr}")
    return r.stdout


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def proc_cpu(pid):
    """utime + stime of a running process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


# --------------------------------------------------------------------------------------------
# Certificates


def address(i):
    return f"user{i}@{ZONE}"


def generate_certs(args, directory):
    """N PEM files 0000000.pem ... for address(i), one shared EC P-256 key."""
    gen = args.build / "tests/bench/gen_certs"
    t0 = time.time()
    if os.access(gen, os.X_OK):
        run([gen, directory, args.certs, 1])
        how = "gen_certs"
    else:
        python_certs(directory, args.certs)
        how = "python3-cryptography"
    files = sorted(directory.glob("*.pem"))
    if len(files) != args.certs:
        raise RuntimeError(f"expected {args.certs} certificates in {directory}, got {len(files)}")
    log(f"certificates: {args.certs} in {time.time() - t0:.1f} s ({how})")
    return files


def python_certs(directory, n):
    """The same certificates as gen_certs (self-signed, SAN rfc822Name, not a CA, valid from a
    day ago for a year), with python3-cryptography: for a build without SMIMEA_BUILD_BENCH."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    now = datetime.datetime.now(datetime.timezone.utc)
    for i in range(n):
        email = address(i)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, email)])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(public).serial_number(i + 1)
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=365))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                               critical=False)
                .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]),
                               critical=False)
                .sign(key, hashes.SHA256()))
        (directory / f"{i:07d}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


# --------------------------------------------------------------------------------------------
# Stores and the daemon


class Store:
    """A fresh store with the benchmark zone and a zone token, in its own directory."""

    def __init__(self, args, directory, api=False):
        self.args = args
        self.dir = directory
        self.dir.mkdir(parents=True)
        self.db = directory / "smimea.db"
        self.config = directory / "smimea.yaml"
        text = f"database: {self.db}\n"
        if api:
            text += f"api:\n  rate-limit: 0\n  threads: {args.api_threads}\n"
        self.config.write_text(text)
        self.ctl("init")
        self.ctl("zone", "add", ZONE)
        self.token = None
        if api:
            out = self.ctl("token", "add", TOKEN_NAME, "--zone", ZONE)
            self.token = out.strip().splitlines()[-1].strip()

    def ctl(self, *argv):
        return run([self.args.build / "smimea-ctl", "--config", self.config, *argv])

    def rows(self, addresses=None):
        """(count, digest) of what is published: address, certificate and its records."""
        db = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT c.address, hex(c.fingerprint), hex(r.owner), r.usage, r.selector, "
                "r.matching_type, r.ttl, hex(r.data) FROM certificates c "
                "JOIN records r ON r.certificate_id = c.id JOIN zones z ON z.id = c.zone_id "
                "WHERE z.name = ? ORDER BY c.address, r.owner, r.usage, r.selector, "
                "r.matching_type", (ZONE,)).fetchall()
            certs = db.execute("SELECT count(*) FROM certificates").fetchone()[0]
        finally:
            db.close()
        if addresses is not None:
            rows = [r for r in rows if r[0] in addresses]
            certs = len({r[0] for r in rows})
        return certs, hashlib.sha256(repr(rows).encode()).hexdigest()


class Daemon:
    def __init__(self, args, store, bench):
        self.args = args
        self.store = store
        self.bench = bench
        self.log = store.dir / "smimea-api.stderr"
        self.proc = None
        self.port = None

    def start(self, timeout=15):
        for _ in range(3):
            self.port = free_port()
            with open(self.log, "ab") as err:
                self.proc = subprocess.Popen(
                    [str(self.args.build / "smimea-api"), "--config", str(self.store.config),
                     "--listen", f"{HOST}:{self.port}"],
                    stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True)
            self.bench.procs.append(self.proc)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    c = http.client.HTTPConnection(HOST, self.port, timeout=1)
                    c.request("GET", "/api/v1/openapi.json")
                    if c.getresponse().status == 200:
                        c.close()
                        return self
                    c.close()
                except (OSError, http.client.HTTPException):
                    time.sleep(0.05)
            self.stop()
            if "in use" not in self.log.read_text(errors="replace"):
                break
        raise RuntimeError(f"smimea-api did not start (exit {self.proc.returncode}):\n"
                           f"{tail(self.log)}")

    def cpu(self):
        return proc_cpu(self.proc.pid)

    def stop(self):
        """SIGTERM; returns the exit code (0 expected)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return "ignored SIGTERM for 15 s (killed)"
        return self.proc.returncode

    def request_log(self):
        """From the daemon's request log: status counts, its durations (ms) by path, and
        every line that is not a request line."""
        codes = collections.Counter()
        durations = collections.defaultdict(list)
        other = []
        for line in self.log.read_text(errors="replace").splitlines():
            m = LOG_LINE.match(line)
            if m:
                codes[f"{m.group(1)} {m.group(2)} {m.group(3)}"] += 1
                durations[m.group(2)].append(float(m.group(4)))
            elif not re.match(r"^(?:smimea-api: )?info: (listening on|stopping on signal)", line):
                other.append(line)
        return codes, durations, other


def tail(path, limit=3000):
    try:
        text = pathlib.Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return text if len(text) <= limit else "..." + text[-limit:]


# --------------------------------------------------------------------------------------------
# Clients


class CountingConnection(http.client.HTTPConnection):
    """Keeps count of the TCP connections it opens: 1 if keep-alive held."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.opened = 0

    def connect(self):
        super().connect()
        self.opened += 1


def post(conn, path, body, headers):
    """One request; returns (status, answer bytes) or (error text, b"")."""
    try:
        conn.request("POST", path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    except (OSError, http.client.HTTPException) as e:
        conn.close()  # the next request reconnects (and is counted)
        return f"{type(e).__name__}: {e}", b""


def single_client(k, clients, port, token, barrier, queue):
    """Publishes BODIES[k], BODIES[k + clients], ... one request at a time on one connection."""
    headers = {"Content-Type": "application/json", "Authorization": "Bearer " + token}
    conn = CountingConnection(HOST, port, timeout=60)
    conn.connect()
    mine = range(k, len(BODIES), clients)
    latencies = []
    codes = collections.Counter()
    samples = []
    barrier.wait()
    cpu0 = time.process_time()
    start = time.perf_counter()
    for i in mine:
        t0 = time.perf_counter()
        status, answer = post(conn, "/api/v1/certificates", BODIES[i], headers)
        latencies.append(time.perf_counter() - t0)
        codes[status] += 1
        if status != 201:
            if len(samples) < 5:
                samples.append(f"{address(i)}: {status} {answer[:300].decode(errors='replace')}")
        elif i == mine[0] or i == mine[-1]:  # a look at the answer, not only its status
            try:
                a = json.loads(answer)
            except ValueError:
                a = {}
            if a.get("address") != address(i) or a.get("changed") is not True:
                samples.append(f"{address(i)}: unexpected answer {answer[:300]!r}")
    end = time.perf_counter()
    queue.put({"k": k, "start": start, "end": end, "latencies": latencies,
               "codes": {str(c): n for c, n in codes.items()}, "samples": samples,
               "connections": conn.opened, "cpu": time.process_time() - cpu0})
    conn.close()


# --------------------------------------------------------------------------------------------
# Measurements


class Bench:
    def __init__(self, args, files):
        self.args = args
        self.files = files
        self.procs = []
        self.problems = []  # text of everything that went wrong, reported at the end
        self.digests = collections.defaultdict(dict)  # round -> measurement -> digests
        self.orders = []  # the order of the measurements in each round

    def problem(self, where, text):
        log(f"PROBLEM {where}: {text}")
        self.problems.append(f"{where}: {text}")

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    def check_store(self, where, store, expected, rnd, name):
        n, digest = store.rows()
        sample = set(address(i) for i in range(self.args.cli_sample))
        sample_n, sample_digest = store.rows(sample)
        if n != expected:
            self.problem(where, f"{n} certificates in the store, expected {expected}")
        self.digests[rnd][name] = (digest if expected == len(self.files) else None,
                                   sample_digest, sample_n)

    def daemon_report(self, where, daemon, result, expected_codes):
        code = daemon.stop()
        codes, durations, other = daemon.request_log()
        result["daemon_exit"] = code
        result["daemon_log_codes"] = dict(codes)
        if code != 0:
            self.problem(where,
                         f"smimea-api exit {code} after SIGTERM; stderr:\n{tail(daemon.log)}")
        unexpected = {c: n for c, n in codes.items() if c not in expected_codes}
        if unexpected:
            self.problem(where, f"daemon log statuses {unexpected}")
        if other:
            self.problem(where, f"daemon stderr (other lines, {len(other)}):\n"
                         + "\n".join(other[:20]))
        return durations

    def api_single(self, rnd):
        a = self.args
        where = f"round {rnd + 1} api-single"
        store = Store(a, a.workdir / f"r{rnd + 1}-api-single", api=True)
        daemon = Daemon(a, store, self).start()
        ctx = multiprocessing.get_context("fork")
        barrier = ctx.Barrier(a.clients + 1)
        queue = ctx.Queue()
        workers = [ctx.Process(target=single_client,
                               args=(k, a.clients, daemon.port, store.token, barrier, queue))
                   for k in range(a.clients)]
        for w in workers:
            w.start()
        cpu0 = daemon.cpu()
        barrier.wait(timeout=60)
        outs = [queue.get(timeout=3600) for _ in workers]
        cpu1 = daemon.cpu()
        hwm = proc_hwm_kib(daemon.proc.pid)
        for w in workers:
            w.join()
            if w.exitcode != 0:
                self.problem(where, f"client process exited {w.exitcode}")
        wall = max(o["end"] for o in outs) - min(o["start"] for o in outs)
        lat = [x for o in outs for x in o["latencies"]]
        codes = collections.Counter()
        for o in outs:
            codes.update(o["codes"])
            for s in o["samples"]:
                self.problem(where, s)
            if o["connections"] != 1:
                self.problem(where, f"client {o['k']} opened {o['connections']} connections "
                             "(keep-alive not held)")
        ok = codes.get("201", 0)
        if ok != len(lat):
            self.problem(where, f"answers: {dict(codes)}")
        n = len(self.files)
        result = {
            "requests": len(lat), "ok": ok, "codes": dict(codes), "seconds": wall,
            "rate": ok / wall, "p50_ms": percentile(lat, 50) * 1e3,
            "p99_ms": percentile(lat, 99) * 1e3, "max_ms": max(lat) * 1e3,
            "cpu_us_per_cert": (cpu1 - cpu0) / n * 1e6,
            "client_cpu_us_per_request": sum(o["cpu"] for o in outs) / len(lat) * 1e6,
            "daemon_peak_rss_kib": hwm,
        }
        durations = self.daemon_report(where, daemon, result,
                                       {"GET /api/v1/openapi.json 200",
                                        "POST /api/v1/certificates 201"})
        server = durations.get("/api/v1/certificates", [])
        if server:
            result["server_p50_ms"] = percentile(server, 50)
            result["server_p99_ms"] = percentile(server, 99)
        self.check_store(where, store, n, rnd, "api-single")
        return result

    def api_bulk(self, rnd):
        a = self.args
        where = f"round {rnd + 1} api-bulk"
        store = Store(a, a.workdir / f"r{rnd + 1}-api-bulk", api=True)
        chunks = []
        for lo in range(0, len(BODIES), a.chunk):
            part = BODIES[lo:lo + a.chunk]
            chunks.append((lo, len(part), b'{"certificates":[' + b",".join(part) + b"]}"))
        daemon = Daemon(a, store, self).start()
        headers = {"Content-Type": "application/json", "Authorization": "Bearer " + store.token}
        conn = CountingConnection(HOST, daemon.port, timeout=600)
        conn.connect()
        latencies, answers = [], []
        cpu0 = daemon.cpu()
        for lo, count, body in chunks:
            t0 = time.perf_counter()
            status, answer = post(conn, "/api/v1/certificates/bulk", body, headers)
            latencies.append(time.perf_counter() - t0)
            answers.append((lo, count, status, answer))
        cpu1 = daemon.cpu()
        hwm = proc_hwm_kib(daemon.proc.pid)
        conn.close()
        published = 0
        codes = collections.Counter()
        for lo, count, status, answer in answers:
            codes[str(status)] += 1
            if status != 200:
                self.problem(where, f"chunk at {lo}: {status} "
                             f"{answer[:300].decode(errors='replace')}")
                continue
            out = json.loads(answer)
            published += out["published"]
            if out["published"] != count or out["refused"] != 0:
                refused = [r for r in out["results"] if r["status"] != 201][:5]
                self.problem(where, f"chunk at {lo}: published {out['published']}, refused "
                             f"{out['refused']}: {refused}")
            elif not all(r["changed"] and r["address"] ==
                         address(lo + r["index"]) for r in out["results"]):
                self.problem(where, f"chunk at {lo}: an answer that is not a new publish")
        if conn.opened != 1:
            self.problem(where, f"opened {conn.opened} connections (keep-alive not held)")
        seconds = sum(latencies)
        n = len(self.files)
        result = {
            "requests": len(chunks), "ok": published, "codes": dict(codes), "seconds": seconds,
            "rate": published / seconds, "p50_ms": percentile(latencies, 50) * 1e3,
            "p99_ms": percentile(latencies, 99) * 1e3, "max_ms": max(latencies) * 1e3,
            "cpu_us_per_cert": (cpu1 - cpu0) / n * 1e6, "daemon_peak_rss_kib": hwm,
        }
        durations = self.daemon_report(where, daemon, result,
                                       {"GET /api/v1/openapi.json 200",
                                        "POST /api/v1/certificates/bulk 200"})
        server = durations.get("/api/v1/certificates/bulk", [])
        if server:
            result["server_p50_ms"] = percentile(server, 50)
            result["server_p99_ms"] = percentile(server, 99)
        self.check_store(where, store, n, rnd, "api-bulk")
        return result

    def cli_add(self, rnd):
        a = self.args
        where = f"round {rnd + 1} cli-add"
        store = Store(a, a.workdir / f"r{rnd + 1}-cli-add")
        ctl = str(a.build / "smimea-ctl")
        cmds = [[ctl, "--config", str(store.config), "cert", "add", address(i), str(self.files[i])]
                for i in range(a.cli_sample)]
        latencies = []
        failures = 0
        cpu0 = children_cpu()
        start = time.perf_counter()
        for cmd in cmds:
            t0 = time.perf_counter()
            r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
            latencies.append(time.perf_counter() - t0)
            if r.returncode != 0:
                failures += 1
                if failures <= 5:
                    self.problem(where, f"{cmd[5]}: exit {r.returncode}: {r.stderr.decode()}")
        wall = time.perf_counter() - start
        cpu = children_cpu() - cpu0
        ok = len(cmds) - failures
        self.check_store(where, store, a.cli_sample, rnd, "cli-add")
        return {"requests": len(cmds), "ok": ok, "seconds": wall, "rate": ok / wall,
                "p50_ms": percentile(latencies, 50) * 1e3,
                "p99_ms": percentile(latencies, 99) * 1e3, "max_ms": max(latencies) * 1e3,
                "cpu_us_per_cert": cpu / len(cmds) * 1e6}

    def cli_import(self, rnd):
        a = self.args
        where = f"round {rnd + 1} cli-import"
        store = Store(a, a.workdir / f"r{rnd + 1}-cli-import")
        n = len(self.files)
        cpu0 = children_cpu()
        start = time.perf_counter()
        r = subprocess.run([str(a.build / "smimea-ctl"), "--config", str(store.config), "cert",
                            "import", str(a.workdir / "certs")], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True)
        wall = time.perf_counter() - start
        cpu = children_cpu() - cpu0
        if r.returncode != 0 or f"imported {n} certificate" not in r.stdout:
            self.problem(where, f"exit {r.returncode}: {r.stdout[-500:]} {r.stderr[-1000:]}")
        self.check_store(where, store, n, rnd, "cli-import")
        return {"requests": 1, "ok": n if r.returncode == 0 else 0, "seconds": wall,
                "rate": n / wall, "cpu_us_per_cert": cpu / n * 1e6}

    def compare_stores(self, rnd):
        """Every path must have published the same rows."""
        d = self.digests[rnd]
        full = {name: v[0] for name, v in d.items() if v[0] is not None}
        if len(set(full.values())) > 1:
            self.problem(f"round {rnd + 1}", f"the stores differ (all {len(self.files)}): {full}")
        sample = {name: v[1] for name, v in d.items()}
        if len(set(sample.values())) > 1:
            self.problem(f"round {rnd + 1}",
                         f"the stores differ (first {self.args.cli_sample}): {sample}")


# --------------------------------------------------------------------------------------------
# Report


def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "values": values}


def fmt_num(v, digits=0):
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def fmt_range(s, digits=0, unit=""):
    if s is None:
        return "-"
    if len(s["values"]) == 1:
        return f"{fmt_num(s['median'], digits)}{unit}"
    return (f"{fmt_num(s['median'], digits)}{unit} "
            f"({fmt_num(s['min'], digits)}–{fmt_num(s['max'], digits)})")


def build_summary(args, results, bench, started, load_before):
    per = {}
    for name in MEASUREMENTS:
        runs = results[name]
        per[name] = {key: summary([r.get(key) for r in runs]) for key in
                     ("rate", "p50_ms", "p99_ms", "max_ms", "cpu_us_per_cert",
                      "server_p50_ms", "server_p99_ms", "client_cpu_us_per_request",
                      "daemon_peak_rss_kib")}
    def paired(key, a, b):
        """Per-round ratios of a's figure over b's (neighbours in time on a noisy machine)."""
        return summary([x[key] / y[key] for x, y in zip(results[a], results[b])])

    ratios = {  # certificates/s, API over CLI: above 1, the API is faster
        "api-single/cli-add": paired("rate", "api-single", "cli-add"),
        "api-bulk/cli-import": paired("rate", "api-bulk", "cli-import"),
        "api-single/cli-import": paired("rate", "api-single", "cli-import"),
    }
    cpu_ratios = {  # CPU per certificate, CLI over API: above 1, the API needs less
        "cli-add/api-single": paired("cpu_us_per_cert", "cli-add", "api-single"),
        "cli-import/api-bulk": paired("cpu_us_per_cert", "cli-import", "api-bulk"),
    }
    single, bulk = per["api-single"], per["api-bulk"]
    targets = {
        "single_rate": {"target": TARGETS["single_rate"], "median": single["rate"]["median"],
                        "met": single["rate"]["median"] >= TARGETS["single_rate"]},
        "single_p99_ms": {"target": TARGETS["single_p99_ms"],
                          "median": single["p99_ms"]["median"],
                          "met": single["p99_ms"]["median"] <= TARGETS["single_p99_ms"]},
        "bulk_rate": {"target": TARGETS["bulk_rate"], "median": bulk["rate"]["median"],
                      "met": bulk["rate"]["median"] >= TARGETS["bulk_rate"]},
    }
    return {
        "parameters": {"certs": args.certs, "rounds": args.rounds, "clients": args.clients,
                       "chunk": args.chunk, "cli_sample": args.cli_sample,
                       "api_threads": args.api_threads, "build": str(args.build),
                       "zone": ZONE, "cpus": os.cpu_count(),
                       "load_before": round(load_before, 2),
                       "load_after": round(os.getloadavg()[0], 2),
                       "seconds": round(time.time() - started)},
        "summary": per, "ratios": ratios, "cpu_ratios": cpu_ratios, "targets": targets,
        "rounds": results,
        "order": bench.orders, "problems": bench.problems,
    }


def table(s):
    p = s["parameters"]
    per, t = s["summary"], s["targets"]
    lines = [
        f"smimea-api vs smimea-ctl: {p['certs']:,} certificates (EC P-256, one \"3 0 0\" record "
        f"each) in one zone, {p['rounds']} rounds (order alternating), fresh store each; "
        f"api threads {p['api_threads']}, rate-limit 0; build {p['build']}; "
        f"load {p['load_before']} -> {p['load_after']}; {p['seconds']} s",
        "median (min–max) over rounds",
        "",
        "| measurement | certificates/s | p50 ms | p99 ms | daemon p50 / p99 ms | CPU µs/cert | "
        "target |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]

    def mark(key):
        return "met" if t[key]["met"] else "MISSED"

    def server(m):
        if m["server_p50_ms"] is None:
            return "-"
        return f"{fmt_num(m['server_p50_ms']['median'], 1)} / " \
               f"{fmt_num(m['server_p99_ms']['median'], 1)}"

    rows = [
        ("api-single", f"API single publish, {p['clients']} clients keep-alive",
         f">= {TARGETS['single_rate']:,}/s: {mark('single_rate')}; p99 <= "
         f"{TARGETS['single_p99_ms']} ms: {mark('single_p99_ms')}"),
        ("api-bulk", f"API bulk, {p['chunk']:,} per request, 1 client",
         f">= {TARGETS['bulk_rate']:,}/s: {mark('bulk_rate')}"),
        ("cli-add", f"smimea-ctl cert add, {p['cli_sample']} processes", ""),
        ("cli-import", f"smimea-ctl cert import, {p['certs']:,} files", ""),
    ]
    for key, label, target in rows:
        m = per[key]
        lat_digits = 0 if key in ("api-bulk",) else 1
        lines.append(f"| {label} | {fmt_range(m['rate'])} | {fmt_range(m['p50_ms'], lat_digits)} | "
                     f"{fmt_range(m['p99_ms'], lat_digits)} | {server(m)} | "
                     f"{fmt_range(m['cpu_us_per_cert'])} | {target} |")
    lines.append("")
    lines.append("Ratios (median of the per-round ratios, min–max):")
    for name, r in s["ratios"].items():
        lines.append(f"  certificates/s {name:24s} {fmt_range(r, 2)}")
    for name, r in s["cpu_ratios"].items():
        lines.append(f"  CPU per cert   {name:24s} {fmt_range(r, 2)}"
                     "  (above 1: the API needs less)")
    c = per["api-single"]["client_cpu_us_per_request"]
    if c is not None:
        lines.append(f"Python clients' own CPU per single publish: {fmt_range(c)} µs "
                     "(on the same cores as the daemon)")
    lines.append("")
    if s["problems"]:
        lines.append(f"PROBLEMS ({len(s['problems'])}):")
        lines.extend("  " + x.replace("\n", "\n    ") for x in s["problems"])
    else:
        lines.append("No errors: every single publish answered 201, every bulk request 200 with "
                     "nothing refused, one connection per client, the daemon exited 0 each "
                     "time, and every path stored the same rows.")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    default_build = ROOT / "build-bench" if (ROOT / "build-bench").is_dir() else ROOT / "build"
    p.add_argument("--build", type=pathlib.Path, default=default_build,
                   help="build directory with smimea-api and smimea-ctl "
                        "(default build-bench if it exists, else build)")
    p.add_argument("--certs", "-n", type=int, default=20000, help="certificates (default 20000)")
    p.add_argument("--rounds", "-r", type=int, default=3, help="rounds (default 3)")
    p.add_argument("--clients", type=int, default=8, help="single-publish clients (default 8)")
    p.add_argument("--chunk", type=int, default=5000, help="certificates per bulk request")
    p.add_argument("--cli-sample", type=int, default=500,
                   help="certificates published with one smimea-ctl cert add each (default 500)")
    p.add_argument("--api-threads", type=int, default=4, help="api.threads (default 4)")
    p.add_argument("--workdir", type=pathlib.Path, default=pathlib.Path(tempfile.gettempdir()),
                   help="run files go to a new directory under it (default $TMPDIR or /tmp)")
    p.add_argument("--keep", action="store_true", help="keep the run files")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE",
                   help="JSON results: on stdout instead of the table, or into FILE")
    args = p.parse_args()
    args.build = args.build.resolve()
    for binary in ("smimea-api", "smimea-ctl"):
        if not os.access(args.build / binary, os.X_OK):
            p.error(f"{args.build / binary} missing: build it (ninja -C {args.build} {binary})")
    if args.certs < 1 or args.rounds < 1 or args.clients < 1 or args.chunk < 1:
        p.error("--certs, --rounds, --clients and --chunk must be positive")
    args.cli_sample = min(args.cli_sample, args.certs)
    return args


def on_signal(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    load_before = os.getloadavg()[0]
    started = time.time()
    args.workdir.mkdir(parents=True, exist_ok=True)
    args.workdir = pathlib.Path(tempfile.mkdtemp(prefix="smimea-api-bench.",
                                                 dir=args.workdir.resolve()))
    log(f"run files in {args.workdir}")
    bench = None
    try:
        files = generate_certs(args, args.workdir / "certs")
        BODIES.extend(json.dumps({"address": address(i), "certificate": f.read_text()})
                      .encode() for i, f in enumerate(files))
        bench = Bench(args, files)
        run_of = {"api-single": bench.api_single, "api-bulk": bench.api_bulk,
                  "cli-add": bench.cli_add, "cli-import": bench.cli_import}
        results = {m: [] for m in MEASUREMENTS}
        for rnd in range(args.rounds):
            order = list(MEASUREMENTS)
            if rnd % 2:
                order.reverse()
            bench.orders.append(order)
            for m in order:
                r = run_of[m](rnd)
                results[m].append(r)
                log(f"round {rnd + 1}/{args.rounds} {m}: {r['rate']:,.0f}/s"
                    + (f", p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms"
                       if "p50_ms" in r else "")
                    + f", {r['cpu_us_per_cert']:.0f} µs CPU/cert")
            bench.compare_stores(rnd)
            if not args.keep:
                for d in args.workdir.glob(f"r{rnd + 1}-*"):
                    shutil.rmtree(d)
        s = build_summary(args, results, bench, started, load_before)
        if args.json == "-":
            print(json.dumps(s, indent=1))
        else:
            print(table(s))
            if args.json:
                pathlib.Path(args.json).write_text(json.dumps(s, indent=1) + "\n")
        return 1 if bench.problems else 0
    finally:
        if bench is not None:
            bench.stop_all()
        if not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

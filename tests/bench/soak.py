#!/usr/bin/python3
"""Load and soak (not part of the test suite): dnsperf at a fixed rate against pdns with
smimea-backend (unix connector) for a bounded time, while a second process imports N
certificates with `smimea-ctl cert import`. Then every imported owner is asked once.

Pass criteria, printed at the end: 0 SERVFAIL and 0 lost queries under load, every imported
owner answered afterwards, and the backend's anonymous memory flat in the steady state (30 s
more load after every owner was asked once adds at most 5% + 2 MiB; the mapped store file is
not counted, and SQLite's page cache grows up to cache-kib per connection as the store does).

Usage: /usr/bin/python3 tests/bench/soak.py [--build build] [--certs 100000] [--rate 1000]
                                            [--duration 120] [--zones 100]
Needs a build with SMIMEA_BUILD_BENCH=ON (tests/bench/gen_certs).
"""
import argparse
import hashlib
import pathlib
import re
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import dns.message  # noqa: E402
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402


def owner(local, domain):
    return hashlib.sha256(local.encode()).hexdigest()[:56] + f"._smimecert.{domain}."


def rss_kib(pid):
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            # Anonymous memory only: the store is mapped (mmap_size), and the pages of it a
            # process has touched count in VmRSS without being its own memory.
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", type=pathlib.Path, default=ROOT / "build")
    p.add_argument("--certs", type=int, default=100000)
    p.add_argument("--zones", type=int, default=100)
    p.add_argument("--rate", type=int, default=1000, help="queries per second")
    p.add_argument("--duration", type=int, default=120, help="seconds of load")
    args = p.parse_args()
    build = args.build.resolve()
    import os
    os.environ["SMIMEA_BUILD_DIR"] = str(build)
    from pdns import PdnsServer, UnixConnector
    from smimea_test import Store, run

    with tempfile.TemporaryDirectory(prefix="smimea-soak-") as tmp:
        tmp = pathlib.Path(tmp)
        store = Store(tmp, extra_config="nameservers: [ns1.example.net.]\n")
        zones = [f"d{z}.bench.example" for z in range(args.zones)]
        for z in zones:
            store.ctl("zone", "add", z)
        # Something to ask before the import: one certificate per zone.
        certs = tmp / "certs"
        run([build / "tests/bench/gen_certs", certs, str(args.certs), str(args.zones)],
            timeout=3600)
        first = sorted(certs.iterdir())[: args.zones]
        store.ctl("cert", "import", *first)
        queries = tmp / "queries"
        queries.write_text("".join(f"{owner(f'user{i}', zones[i % args.zones])} SMIMEA\n"
                                   for i in range(args.zones)) +
                           "".join(f"{owner(f'user{i}', zones[i % args.zones])} SMIMEA\n"
                                   for i in range(args.zones, args.certs,
                                                  max(1, args.certs // 5000))))
        connector = UnixConnector(store, tmp / "pdns")
        with PdnsServer(connector, tmp / "pdns") as server:  # caches off: every query hits us
            perf = subprocess.Popen(["dnsperf", "-s", "127.0.0.1", "-p", str(server.port),
                                     "-d", str(queries), "-l", str(args.duration),
                                     "-Q", str(args.rate), "-t", "2"],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            time.sleep(min(5, args.duration / 10))
            rss = [rss_kib(connector.proc.pid)]
            started = time.monotonic()
            importer = subprocess.Popen([str(build / "smimea-ctl"), "--config", str(store.config),
                                         "cert", "import", str(certs)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            import_seconds = None
            while perf.poll() is None:
                time.sleep(1)
                rss.append(rss_kib(connector.proc.pid))
                if import_seconds is None and importer.poll() is not None:
                    import_seconds = time.monotonic() - started
            out, _ = perf.communicate()
            imp_out, imp_err = importer.communicate()
            if import_seconds is None:
                import_seconds = time.monotonic() - started
            if importer.returncode != 0:
                sys.exit(f"import failed: {imp_err}")
            sent = int(re.search(r"Queries sent:\s+(\d+)", out).group(1))
            lost = int(re.search(r"Queries lost:\s+(\d+)", out).group(1))
            servfail = re.search(r"SERVFAIL (\d+)", out)
            servfail = int(servfail.group(1)) if servfail else 0
            qps = re.search(r"Queries per second:\s+([\d.]+)", out).group(1)
            # Every imported owner, once, over TCP (3 0 0 answers can exceed UDP sizes).
            server.control("purge")
            missing = 0
            for i in range(args.certs):
                q = dns.message.make_query(owner(f"user{i}", zones[i % args.zones]), "SMIMEA")
                r = dns.query.tcp(q, "127.0.0.1", port=server.port, timeout=5)
                if r.rcode() != dns.rcode.NOERROR or not r.answer:
                    missing += 1
            # Steady state: with every owner asked once, SQLite's page cache (cache-kib per
            # connection) holds what it will hold; more load must not add memory.
            steady_before = rss_kib(connector.proc.pid)
            run(["dnsperf", "-s", "127.0.0.1", "-p", str(server.port), "-d", str(queries),
                 "-l", "30", "-Q", str(args.rate), "-t", "2"], timeout=120)
            steady_after = rss_kib(connector.proc.pid)
            flat = steady_after <= steady_before * 1.05 + 2048
            print(f"load: {sent} queries at {args.rate}/s for {args.duration} s ({qps} answered/s), "
                  f"{servfail} SERVFAIL, {lost} lost")
            print(f"import: {imp_out.strip()} in {import_seconds:.1f} s during the load")
            print(f"after: {args.certs - missing}/{args.certs} imported owners answered")
            print(f"backend anonymous RSS: {rss[0] / 1024:.1f} MiB before the import, "
                  f"{max(rss) / 1024:.1f} MiB at most during it (the page cache filling); "
                  f"steady state {steady_before / 1024:.1f} -> {steady_after / 1024:.1f} MiB "
                  f"over 30 s more load ({'flat' if flat else 'GROWING'})")
            ok = servfail == 0 and lost == 0 and missing == 0 and flat
            print("PASS" if ok else "FAIL")
            return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

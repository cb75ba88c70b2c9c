#!/usr/bin/python3
"""What one zone transfer costs the primary as the number of zones grows: pdns 4.7 with the
native module of each build given, side by side, on one store. Not part of the test suite; see
README.md, "Many zones: one zone table per process".

    /usr/bin/python3 tests/scale/axfr_cost.py --build build-bench --baseline /tmp/old/build \\
        --zones 10000 --transfers 30 --rounds 3

pdns makes a backend instance for every AXFR, so whatever an instance does before it lists its
zone is paid once per transfer. For each round and build: a pdns primary on the store, then
--transfers AXFRs of one small zone, one after another (dnspython); measured: wall time per
AXFR and pdns's CPU time (utime + stime from /proc) per AXFR. A baseline build from before
schema version 7 gets a copy of the store taken back to version 6 (the zone-table version's
table and triggers dropped).

The store is transfer_bench.py's data set (--zones zones, 10 records each), cached under
--workdir.
"""
import argparse
import os
import pathlib
import shutil
import sqlite3
import statistics
import sys
import time
import types

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "tests" / "bench"))

import dns.rdatatype  # noqa: E402

from pdns import NativeConnector, PdnsServer  # noqa: E402
from test_ixfrdist import transfer  # noqa: E402
from transfer_bench import DataSet  # noqa: E402

CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(msg, flush=True)


class ModuleOf(NativeConnector):
    """The native module of a given build."""

    def __init__(self, store, directory, module):
        super().__init__(store, directory)
        self.module = module

    def config_lines(self):
        return [f"load-modules={self.module}", f"smimea-config={self.store.config}"]


def cpu_seconds(pid):
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK  # utime, stime


def schema_version(ctl):
    """The schema version a build's smimea-ctl makes: init a scratch store and read it."""
    scratch = pathlib.Path(f"/tmp/axfr-cost-schema-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    (scratch / "c.yaml").write_text(f"database: {scratch / 's.db'}\n")
    os.system(f"{ctl} -c {scratch / 'c.yaml'} init >/dev/null")
    with sqlite3.connect(scratch / "s.db") as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
    db.close()
    shutil.rmtree(scratch)
    return version


def store_for(build, data, workdir):
    """A config and store this build can open: the data set's, or a copy at version 6."""
    if schema_version(build / "smimea-ctl") >= 7:
        return data.config
    d = workdir / f"v6-{data.dir.name}"
    if not (d / "smimea.db").exists():
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(data.store, d / "smimea.db")
        with sqlite3.connect(d / "smimea.db") as db:
            for trigger in ("zones_insert", "zones_update", "zones_delete", "catalog_update"):
                db.execute(f"DROP TRIGGER {trigger}_moves_version")
            db.execute("DROP TABLE zone_table_version")
            db.execute("PRAGMA user_version = 6")
        db.close()
    config = d / "smimea.yaml"
    config.write_text(data.config.read_text().replace(str(data.store), str(d / "smimea.db")))
    return config


def measure(label, build, config, zone, transfers, run_dir):
    store = types.SimpleNamespace(config=config)
    d = run_dir / label
    server = PdnsServer(ModuleOf(store, d, build / "libsmimeabackend.so"), d,
                        extra_config=["allow-axfr-ips=127.0.0.0/8", "loglevel=4"])
    server.start(timeout=300, attempts=2)
    try:
        transfer(server.port, zone, dns.rdatatype.AXFR)  # warm: pages, the first instance
        cpu0, t0 = cpu_seconds(server.proc.pid), time.monotonic()
        for _ in range(transfers):
            records, _, _ = transfer(server.port, zone, dns.rdatatype.AXFR)
            assert len(records) > 10, f"{label}: {zone}: {len(records)} records"
        wall = (time.monotonic() - t0) / transfers
        cpu = (cpu_seconds(server.proc.pid) - cpu0) / transfers
    finally:
        server.stop()
    return wall * 1000, cpu * 1000


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", type=pathlib.Path, default=ROOT / "build-bench")
    p.add_argument("--baseline", type=pathlib.Path, help="another build, measured beside it")
    p.add_argument("--zones", type=int, default=10000)
    p.add_argument("--transfers", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workdir", type=pathlib.Path, default=pathlib.Path("/tmp/smimea-axfr-cost"))
    a = p.parse_args()
    builds = {"build": a.build.resolve()}
    if a.baseline:
        builds["baseline"] = a.baseline.resolve()
    data = DataSet(types.SimpleNamespace(
        workdir=str(a.workdir / "data"), zones=a.zones, records=a.zones * 10, largest=0,
        cert_pool=8, build=builds["build"], regenerate=False, seed=0, signed=False))
    data.ensure()
    configs = {label: store_for(b, data, a.workdir) for label, b in builds.items()}
    zone = data.zone_name(1)
    results = {label: [] for label in builds}
    run_dir = a.workdir / "run" / time.strftime("%Y%m%d-%H%M%S")
    for r in range(a.rounds):
        for label, b in builds.items():
            wall, cpu = measure(f"{label}-{r}", b, configs[label], zone, a.transfers, run_dir)
            results[label].append((wall, cpu))
            log(f"round {r + 1} {label}: {wall:.1f} ms wall, {cpu:.1f} ms pdns CPU per AXFR")
    log(f"\n{a.zones} zones, {a.transfers} AXFRs of {zone} per round, {a.rounds} rounds "
        "(median, range):\n")
    log("| build | wall time per AXFR | pdns CPU per AXFR |\n|---|---|---|")
    for label, rows in results.items():
        walls, cpus = [w for w, _ in rows], [c for _, c in rows]
        log(f"| {label} ({builds[label]}) | {statistics.median(walls):.1f} ms "
            f"({min(walls):.1f}–{max(walls):.1f}) | {statistics.median(cpus):.1f} ms "
            f"({min(cpus):.1f}–{max(cpus):.1f}) |")
    if "baseline" in results:
        ratios = [b[1] / n[1] for b, n in zip(results["baseline"], results["build"]) if n[1] > 0]
        if ratios:
            log(f"\nbaseline CPU / build CPU per round: {statistics.median(ratios):.1f}x "
                f"({min(ratios):.1f}–{max(ratios):.1f})")


if __name__ == "__main__":
    main()

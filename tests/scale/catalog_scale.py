#!/usr/bin/python3
"""Scale test of the catalog and IXFR tiers: our pdns primary (native module) + Debian's ixfrdist
4.7.3 + three secondaries (pdns 4.7 with gsqlite3, Knot 3.2, BIND 9.18), all on loopback ports,
with many zones listed in the catalog. Not part of the test suite; see README.md, "Scale: 10,000
zones on three secondaries".

    scripts/scale-test                                       # 100 zones, 10,000 records
    scripts/scale-test --zones 10000 --records 1000000       # the README's run

Topology (why: README):
    pdns + libsmimeabackend.so (catalog: catalog.invalid, primary=yes, NOTIFY to Knot)
      |-- AXFR + NOTIFY --> knotd        (catalog-role: interpret; members from the primary)
      `-- AXFR ----------> ixfrdist      (domains: the catalog + every zone, from the store's
                             |            zone list; regenerated and restarted on zone add)
                             |-- IXFR/AXFR --> named       (catalog-zones, SOA refresh)
                             `-- AXFR -------> pdns gsqlite3 (catalog.invalid of kind consumer)

Measured and printed as a table: initial full sync of every zone to each tier; `zone add` to
each secondary serving the new zone's SOA, then `cert add` into it to each serving the SMIMEA;
`cert add` into an existing zone to each serving it; ixfrdist's restart after its zone list is
regenerated; bytes of each change as IXFR from ixfrdist against AXFR (the sum of the TCP
messages, counted by test_ixfrdist.transfer); VmHWM/VmRSS of every server after the initial sync.

The data set is transfer_bench.py's (SQL bulk generation from a pool of real certificates,
cached under --workdir/data); unique catalog ids are added here. Ports: --port-base and the next
four. Every process started here is stopped on exit, errors and Ctrl-C.
"""
import argparse
import json
import os
import pathlib
import select
import signal
import socket
import sqlite3
import statistics
import sys
import threading
import time
import types

ROOT = pathlib.Path(__file__).resolve().parents[2]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", type=pathlib.Path, default=ROOT / "build-bench",
                   help="build with smimea-ctl and libsmimeabackend.so (default build-bench)")
    p.add_argument("--workdir", type=pathlib.Path, default=pathlib.Path("/tmp/smimea-scale"))
    p.add_argument("--zones", type=int, default=100)
    p.add_argument("--records", type=int, default=10000, help="certificates, one record each")
    p.add_argument("--largest", type=int, default=0,
                   help="certificates in the first zone (default: an even spread)")
    p.add_argument("--secondaries", default="knot,bind,pdns")
    p.add_argument("--bind-from", choices=["ixfrdist", "primary"], default="primary",
                   help="BIND 9.18 refuses ixfrdist 4.7.3's SOA answers (no AA bit)")
    p.add_argument("--refresh", type=int, default=20,
                   help="SOA refresh of every zone (s): sets ixfrdist's and the polling "
                        "secondaries' delay, and the SOA query load (zones/refresh per tier)")
    p.add_argument("--changes", type=int, default=2, help="zone adds and cert adds measured")
    p.add_argument("--port-base", type=int, default=55500)
    p.add_argument("--sync-timeout", type=int, default=3600)
    p.add_argument("--change-timeout", type=int, default=300)
    p.add_argument("--regenerate", action="store_true")
    p.add_argument("--out", type=pathlib.Path, help="also write the results here (Markdown)")
    a = p.parse_args()
    a.build = a.build.resolve()
    a.secondaries = [s for s in a.secondaries.split(",") if s]
    if not set(a.secondaries) <= {"knot", "bind", "pdns"}:
        p.error("--secondaries: knot, bind, pdns")
    if a.largest <= 0:
        a.largest = max(1, a.records // a.zones)
    return a


ARGS = parse_args()
# The integration helpers read the build from the environment when imported.
os.environ["SMIMEA_BUILD_DIR"] = str(ARGS.build)
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "tests" / "bench"))

import dns.message  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402

from pdns import ADDRESS, LoggedProcess, NativeConnector, PdnsServer  # noqa: E402
from smimea_test import CTL, Cert, run  # noqa: E402
import test_catalog  # noqa: E402  (Knot and BIND catalog secondaries)
from test_ixfrdist import IXFRDIST, transfer  # noqa: E402
from test_transfer import PdnsSecondary, smimea_at  # noqa: E402
from transfer_bench import DataSet  # noqa: E402

CATALOG = test_catalog.CATALOG
SOA, SMIMEA = dns.rdatatype.SOA, dns.rdatatype.SMIMEA
AXFR, IXFR = dns.rdatatype.AXFR, dns.rdatatype.IXFR
T0 = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - T0:7.1f}s] {msg}", flush=True)


# --------------------------------------------------------------------------------------------
# Many SOA questions at once


def soa_serials(port, zones, timeout=1.5, window=50):
    """{zone: serial} for the zones a server answers with an SOA (NOERROR) over UDP, `window`
    questions in flight on one socket: a busy server's socket buffer drops a larger burst."""
    got = {}
    zones = list(zones)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((ADDRESS, port))
        s.setblocking(False)
        for start in range(0, len(zones), window):
            chunk = zones[start:start + window]
            pending = {}
            for i, z in enumerate(chunk):
                q = dns.message.make_query(z + ".", SOA, use_edns=False)
                q.id = (start + i) & 0xFFFF
                pending[q.id] = z
                try:
                    s.send(q.to_wire())
                except OSError:
                    pass
            deadline = time.monotonic() + timeout
            while pending and time.monotonic() < deadline:
                ready, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
                if not ready:
                    break
                try:
                    data = s.recv(65535)
                    m = dns.message.from_wire(data)
                except (OSError, dns.exception.DNSException):
                    continue
                z = pending.pop(m.id, None)
                # No AA test: ixfrdist 4.7.3 answers without it (which BIND will not accept).
                if z is None or m.rcode() != dns.rcode.NOERROR:
                    continue
                for rrset in m.answer:
                    if rrset.rdtype == SOA:
                        got[z] = rrset[0].serial
    return got


def wait_ports_free(ports, timeout=60):
    """Waits until TCP and UDP can bind every port (a server of the last run may still exit)."""
    deadline = time.monotonic() + timeout
    for port in ports:
        while True:
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    u.bind((ADDRESS, port))
                    t.bind((ADDRESS, port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"port {port} stays in use: pick --port-base") from None
                time.sleep(1)


def memory(pid):
    """(VmHWM, VmRSS) of pid in MiB."""
    fields = {}
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                fields[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return fields.get("VmHWM", 0.0), fields.get("VmRSS", 0.0)


# --------------------------------------------------------------------------------------------
# The servers


class Ixfrdist(LoggedProcess):
    """ixfrdist 4.7.3 in the foreground. It reads no catalog: its domains are its configuration,
    generated from the store's zone list; a zone added needs a new file and a restart."""

    name = "ixfrdist"

    def __init__(self, directory, port, primary_port, timeout):
        self.dir = pathlib.Path(directory)
        (self.dir / "work").mkdir(parents=True, exist_ok=True)
        self.port, self.primary_port, self.timeout = port, primary_port, timeout
        self.conf = self.dir / "ixfrdist.yml"
        self.logfile = self.dir / "ixfrdist.log"

    def write_config(self, zones):
        lines = [f"listen:\n  - {ADDRESS}:{self.port}", "acl:\n  - 127.0.0.0/8",
                 f"work-dir: {self.dir / 'work'}", f"axfr-timeout: {self.timeout}",
                 "failed-soa-retry: 2", "keep: 20", "tcp-in-threads: 20", "domains:"]
        for z in [CATALOG] + sorted(zones):
            lines.append(f"  - domain: {z}\n    master: {ADDRESS}:{self.primary_port}")
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self):
        self.launch([IXFRDIST, "--config", str(self.conf)])
        time.sleep(0.2)
        if self.proc.poll() is not None:
            raise RuntimeError(f"ixfrdist exited with {self.proc.returncode}\n{self.log()}")


class Bind(test_catalog.BindSecondary):
    """named with catalog-zones, tuned for many zones: BIND's defaults allow 20 SOA queries a
    second (serial-query-rate), 2 transfers per primary and a 300 s minimum refresh."""

    def write_config(self):
        super().write_config()
        conf = self.dir / "named.conf"
        conf.write_text(conf.read_text().replace(
            "    allow-new-zones yes;\n",
            "    allow-new-zones yes;\n    serial-query-rate 2000;\n    transfers-in 40;\n"
            "    transfers-per-ns 20;\n    min-refresh-time 1;\n    min-retry-time 1;\n"
            "    request-ixfr yes;\n"))
        run(["named-checkconf", conf])


# --------------------------------------------------------------------------------------------


class Scale:
    def __init__(self, args):
        self.args = args
        self.run_dir = args.workdir / "run"
        self.results = {"args": {k: str(v) for k, v in vars(args).items()}, "tiers": {},
                        "changes": []}
        self.servers = []   # (label, object with .stop()), in start order
        self.tiers = {}     # label -> (port, pid getter)

    # --- data ---

    def prepare_store(self):
        a = self.args
        a.workdir.mkdir(parents=True, exist_ok=True)
        ns = types.SimpleNamespace(
            workdir=str(a.workdir / "data"), zones=a.zones, records=a.records, largest=a.largest,
            cert_pool=8, build=a.build, regenerate=a.regenerate, seed=0, signed=False)
        data = DataSet(ns)
        t = time.monotonic()
        data.ensure()  # transfer_bench's generator, cached under --workdir
        self.data = data
        self.results["data_seconds"] = data.meta["generated_seconds"]
        self.config = a.workdir / "scale.yaml"
        self.config.write_text(
            f"database: {data.store}\ncatalog: {CATALOG}\n"
            "nameservers: [ns1.example.net., ns2.example.org.]\ndefault-ttl: 3600\n"
            f"soa:\n  mname: ns1.example.net.\n  rname: hostmaster@example.net\n"
            f"  refresh: {a.refresh}\n  retry: 5\n  expire: 604800\n  minimum: 60\n")
        with sqlite3.connect(data.store) as db:   # transfer_bench predates catalog ids
            db.execute("UPDATE zones SET catalog_id = lower(hex(randomblob(8))) "
                       "WHERE catalog_id = ''")
            leftovers = [r[0] for r in db.execute(
                "SELECT name FROM zones WHERE name LIKE 'scale-%'")]
            addresses = [r[0] for r in db.execute(
                "SELECT address FROM certificates WHERE address LIKE 'scale-%'")]
        db.close()
        for z in leftovers:
            self.ctl("zone", "remove", z, "--force")
        for address in addresses:
            self.ctl("cert", "remove", address, check=False)
        self.zones = self.zone_serials()
        log(f"store ready ({time.monotonic() - t:.0f} s): {len(self.zones)} zones, "
            f"{a.records} records, {data.store.stat().st_size / 1e6:.0f} MB")

    def ctl(self, *argv, check=True):
        return run([CTL, "--config", self.config, *argv], check=check, timeout=600)

    def zone_serials(self):
        listed = json.loads(self.ctl("--json", "zone", "list").stdout)
        return {z["zone"]: z["serial"] for z in listed if z["mode"] == "authoritative"}

    def catalog_serial(self):
        with sqlite3.connect(f"file:{self.data.store}?mode=ro", uri=True) as db:
            serial = db.execute("SELECT serial FROM catalog").fetchone()[0]
        db.close()
        return serial

    # --- servers ---

    def start(self):
        a, base = self.args, self.args.port_base
        self.run_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        d = self.run_dir / stamp
        d.mkdir()
        self.dir = d
        ports = {"primary": base, "ixfrdist": base + 1, "knot": base + 2, "bind": base + 3,
                 "pdns": base + 4}
        notify = [ports["knot"]] if "knot" in a.secondaries else []
        if "bind" in a.secondaries and a.bind_from == "primary":
            notify.append(ports["bind"])
        wait_ports_free(ports.values())
        started = {}
        store = types.SimpleNamespace(config=self.config)
        primary = PdnsServer(NativeConnector(store, d / "primary"), d / "primary", extra_config=[
            "primary=yes", "allow-axfr-ips=127.0.0.0/8", "xfr-cycle-interval=1",
            "also-notify=" + ",".join(f"{ADDRESS}:{p}" for p in notify), "loglevel=4",
            "distributor-threads=2", "receiver-threads=2", "max-tcp-connections=100"])
        primary.port = ports["primary"]
        started["primary"] = time.monotonic()
        primary.start(timeout=300, attempts=1)
        self.primary = primary
        self.servers.append(("primary", primary))
        self.tiers["pdns primary (native module)"] = (primary.port, lambda: primary.proc.pid)
        log(f"primary up in {time.monotonic() - started['primary']:.1f} s on {primary.port}")

        ix = Ixfrdist(d / "ixfrdist", ports["ixfrdist"], primary.port, 600)
        ix.write_config(self.zones)
        started["ixfrdist"] = time.monotonic()
        ix.start()
        self.ixfrdist = ix
        self.servers.append(("ixfrdist", ix))
        self.tiers["ixfrdist"] = (ix.port, lambda: ix.proc.pid)

        self.secondaries = {}
        if "knot" in a.secondaries:
            k = test_catalog.KnotSecondary(d / "knot")
            k.port, k.primary_port = ports["knot"], primary.port
            started["knot"] = time.monotonic()
            k.start()
            self.secondaries["knot"] = k
            self.servers.append(("knot", k))
            self.tiers["knot (from the primary)"] = (k.port, lambda: k.proc.pid)
        if "bind" in a.secondaries:
            b = Bind(d / "bind")
            b.port = ports["bind"]
            b.primary_port = ix.port if a.bind_from == "ixfrdist" else primary.port
            started["bind"] = time.monotonic()
            b.start()
            self.secondaries["bind"] = b
            self.servers.append(("bind", b))
            self.tiers[f"bind (from {a.bind_from})"] = (b.port, lambda: b.proc.pid)
        if "pdns" in a.secondaries:
            s = PdnsSecondary(d / "pdns", ports["pdns"])
            # pdns 4.7 consumes catalogs: the catalog as a secondary zone of kind consumer;
            # its members become secondary zones with the catalog's primary (ixfrdist).
            s.pdnsutil("create-secondary-zone", CATALOG, f"{ADDRESS}:{ix.port}")
            s.pdnsutil("set-kind", CATALOG, "consumer")
            started["pdns"] = time.monotonic()
            s.start()
            self.secondaries["pdns"] = s
            self.servers.append(("pdns", s))
            self.tiers["pdns gsqlite3 (from ixfrdist)"] = (s.port, lambda: s.server.proc.pid)
        self.started = started

    def stop(self):
        for name, obj in reversed(self.servers):
            try:
                obj.stop()
            except Exception as e:  # noqa: BLE001 - stop the others anyway
                log(f"stopping {name}: {e}")
        self.servers = []

    def alive(self):
        for name, obj in self.servers:
            proc = obj.server.proc if isinstance(obj, PdnsSecondary) else obj.proc
            if proc is None or proc.poll() is not None:
                raise RuntimeError(f"{name} exited:\n{obj.log() if hasattr(obj, 'log') else ''}")

    def port_of(self, name):
        return self.ixfrdist.port if name == "ixfrdist" else self.secondaries[name].port

    # --- measurements ---

    def initial_sync(self):
        expected = dict(self.zones)
        expected[CATALOG] = self.catalog_serial()
        names = ["ixfrdist"] + list(self.secondaries)
        pending = {n: set(expected) for n in names}
        pending.get("knot", set()).discard(CATALOG)  # Knot interprets the catalog, serves it not
        done = {}
        deadline = time.monotonic() + self.args.sync_timeout
        last_report = 0
        while pending and time.monotonic() < deadline:
            self.alive()
            for n in list(pending):
                got = soa_serials(self.port_of(n), sorted(pending[n]))
                pending[n] -= {z for z, s in got.items() if s == expected[z]}
                if not pending[n]:
                    done[n] = time.monotonic() - self.started[n]
                    log(f"{n}: all {len(expected)} zones in {done[n]:.1f} s")
                    del pending[n]
            if time.monotonic() - last_report > 30:
                last_report = time.monotonic()
                log("waiting: " + ", ".join(f"{n} {len(expected) - len(p)}/{len(expected)}"
                                            for n, p in pending.items()))
            time.sleep(max(1.0, len(expected) / 2000))  # the polls' own load stays small
        if pending:
            raise RuntimeError("initial sync not complete: " + ", ".join(
                f"{n} misses {len(p)}, e.g. {sorted(p)[:3]}" for n, p in pending.items()))
        self.results["initial_sync"] = done
        mem = {}
        for label, (_, pid) in self.tiers.items():
            mem[label] = memory(pid())
        self.results["memory"] = mem

    def wait_each(self, what, check, since):
        """Seconds from `since` until check(name) holds, for each secondary, polled together."""
        times = {}
        deadline = time.monotonic() + self.args.change_timeout
        while len(times) < len(self.secondaries) and time.monotonic() < deadline:
            for n in self.secondaries:
                if n not in times and check(n):
                    times[n] = time.monotonic() - since
            time.sleep(0.1)
        for n in self.secondaries:
            if n not in times:
                log(f"{n}: not within {self.args.change_timeout} s: {what}")
                times[n] = None
        return times

    def serves_soa(self, name, zone, serial):
        return soa_serials(self.port_of(name), [zone], timeout=0.5).get(zone) == serial

    def serves_cert(self, name, cert):
        rcode, data = smimea_at(self.port_of(name), cert.owner)
        return rcode == dns.rcode.NOERROR and bool(data)

    def restart_ixfrdist(self, zones):
        """What an operator does after a zone add with ixfrdist 4.7.3: a new configuration from
        the store's zone list, and a restart. Seconds until it answers for every zone again."""
        ix = self.ixfrdist
        ix.write_config(zones)
        t = time.monotonic()
        ix.stop()
        ix.start()
        expected = set(zones) | {CATALOG}
        while expected and time.monotonic() - t < self.args.sync_timeout:
            expected -= set(soa_serials(ix.port, sorted(expected)))
            time.sleep(0.2)
        return time.monotonic() - t

    def bytes_of(self, zone, old_serial):
        """(IXFR from ixfrdist from old_serial, AXFR from the primary) wire bytes of zone."""
        _, ixfr_msgs, ixfr = transfer(self.ixfrdist.port, zone, IXFR, serial=old_serial)
        _, axfr_msgs, axfr = transfer(self.primary.port, zone, AXFR, timeout=300)
        return {"ixfr": ixfr, "ixfr_messages": ixfr_msgs, "axfr": axfr,
                "axfr_messages": axfr_msgs}

    def wait_ixfrdist(self, zone, serial):
        t = time.monotonic()
        while time.monotonic() - t < self.args.change_timeout:
            if soa_serials(self.ixfrdist.port, [zone], timeout=0.5).get(zone) == serial:
                return
            time.sleep(0.2)
        raise RuntimeError(f"ixfrdist does not have {zone} at {serial}")

    def zone_add(self, k, certdir):
        zone = f"scale-{int(time.time())}-{k}.example"
        old_catalog = self.catalog_serial()
        cert = Cert(certdir, f"scale-{k}@{zone}")
        t0 = time.monotonic()
        self.ctl("zone", "add", zone)
        serial = self.zone_serials()[zone]
        # The operator's restart of ixfrdist runs beside the wait: Knot and BIND do not need it.
        restart = {}
        zones = list(self.zone_serials())
        thread = threading.Thread(target=lambda: restart.setdefault(
            "s", self.restart_ixfrdist(zones)))
        thread.start()
        soa = self.wait_each(f"SOA of {zone}", lambda n: self.serves_soa(n, zone, serial), t0)
        thread.join()
        restart = restart["s"]
        t1 = time.monotonic()
        self.ctl("cert", "add", cert.address, cert.pem)
        rec = self.wait_each(f"SMIMEA in {zone}", lambda n: self.serves_cert(n, cert), t1)
        new_catalog = self.catalog_serial()
        self.wait_ixfrdist(CATALOG, new_catalog)
        sizes = self.bytes_of(CATALOG, old_catalog)
        row = {"kind": "zone add", "zone": zone, "ixfrdist_restart": restart, "soa": soa,
               "smimea_after_cert_add": rec,
               "bytes": sizes}
        log(f"zone add {zone}: ixfrdist restart {restart:.1f} s, SOA {fmt(soa)}, "
            f"SMIMEA after cert add {fmt(rec)}; catalog IXFR {sizes['ixfr']} B, "
            f"AXFR {sizes['axfr']} B")
        self.results["changes"].append(row)

    def cert_add(self, k, certdir):
        names = sorted(self.zones)
        zone = names[(k * 7919 + len(names) // 2) % len(names)]
        old = self.zone_serials()[zone]
        cert = Cert(certdir, f"scale-{int(time.time())}-{k}@{zone}")
        t0 = time.monotonic()
        self.ctl("cert", "add", cert.address, cert.pem)
        rec = self.wait_each(f"SMIMEA in {zone}", lambda n: self.serves_cert(n, cert), t0)
        new = self.zone_serials()[zone]
        self.wait_ixfrdist(zone, new)
        sizes = self.bytes_of(zone, old)
        row = {"kind": "cert add", "zone": zone, "smimea": rec, "bytes": sizes}
        log(f"cert add in {zone}: SMIMEA {fmt(rec)}; IXFR {sizes['ixfr']} B, "
            f"AXFR {sizes['axfr']} B")
        self.results["changes"].append(row)


def fmt(times):
    return ", ".join(f"{n} {'-' if t is None else f'{t:.1f} s'}" for n, t in times.items())


def med(values):
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.1f} s"
    return f"{statistics.median(values):.1f} s ({min(values):.1f}–{max(values):.1f})"


def report(sc):
    r, a = sc.results, sc.args
    names = list(sc.secondaries)
    out = [f"## catalog_scale: {len(sc.zones)} zones, {a.records} records "
           f"(largest zone {a.largest}), SOA refresh {a.refresh} s, "
           f"BIND from {a.bind_from}, {os.cpu_count()} cores, "
           f"load before {r['load_before']:.1f}", ""]
    adds = [c for c in r["changes"] if c["kind"] == "zone add"]
    certs = [c for c in r["changes"] if c["kind"] == "cert add"]
    out += ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    out.append("| initial full sync of every zone (from the server's start) | " + " | ".join(
        f"{r['initial_sync'][n]:.1f} s" for n in names) + " |")
    out.append("| `zone add` → SOA of the new zone served | " + " | ".join(
        med([c["soa"][n] for c in adds]) for n in names) + " |")
    out.append("| `cert add` in the new zone → its SMIMEA served | " + " | ".join(
        med([c["smimea_after_cert_add"][n] for c in adds]) for n in names) + " |")
    out.append("| `cert add` in an existing zone → SMIMEA served | " + " | ".join(
        med([c["smimea"][n] for c in certs]) for n in names) + " |")
    out += ["", f"ixfrdist: all {len(sc.zones) + 1} zones (with the catalog) loaded "
            f"{r['initial_sync']['ixfrdist']:.1f} s after its start; restart after its zone "
            "list is regenerated (to answering for every zone again): "
            + med([c["ixfrdist_restart"] for c in adds]) + ".", ""]
    out += ["| change | IXFR from ixfrdist | AXFR of the same zone | ratio |", "|---|---|---|---|"]
    for c in r["changes"]:
        b = c["bytes"]
        what = (f"zone add: the catalog ({len(sc.zones) + 1} members)" if c["kind"] == "zone add"
                else f"cert add: {c['zone']}")
        out.append(f"| {what} | {b['ixfr']:,} B, {b['ixfr_messages']} msgs | {b['axfr']:,} B, "
                   f"{b['axfr_messages']} msgs | {b['axfr'] / b['ixfr']:.0f}x |")
    out += ["", "| tier (after the initial sync) | VmHWM | VmRSS |", "|---|---|---|"]
    for label, (hwm, rss) in r["memory"].items():
        out.append(f"| {label} | {hwm:.0f} MiB | {rss:.0f} MiB |")
    out += ["", f"Run files: {sc.dir}; total {r['total_seconds']:.0f} s."]
    return "\n".join(out) + "\n"


def on_signal(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    sc = Scale(ARGS)
    sc.results["load_before"] = os.getloadavg()[0]
    start = time.time()
    sc.prepare_store()
    try:
        sc.start()
        sc.initial_sync()
        log("memory after the initial sync: " + ", ".join(
            f"{k} {v[0]:.0f}/{v[1]:.0f} MiB" for k, v in sc.results["memory"].items()))
        certdir = sc.dir / "certs"
        certdir.mkdir()
        for k in range(ARGS.changes):
            sc.zone_add(k, certdir)
            sc.cert_add(k, certdir)
    finally:
        sc.stop()
    sc.results["total_seconds"] = time.time() - start
    text = report(sc)
    print(text)
    (sc.dir / "results.md").write_text(text)
    (sc.dir / "results.json").write_text(json.dumps(sc.results, indent=1, default=str))
    if ARGS.out:
        ARGS.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

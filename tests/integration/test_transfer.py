"""Zone transfer end to end: our store, served by pdns_server as a primary (primary=yes,
also-notify, a short xfr-cycle-interval) over each connector, feeding two real secondaries from
Debian packages on loopback: a second pdns_server with the gsqlite3 backend, and Knot DNS.

What is checked, with the bound each check states:
* the secondaries load every zone, and their copies equal the primary's AXFR and the records
  this file inserted, record by record;
* `smimea-ctl cert add` / `cert remove` reach both secondaries through NOTIFY + AXFR within
  NOTIFY_BOUND seconds, with no manual step (their SOA refresh is an hour: only NOTIFY can do
  it that fast); native zones are not announced until they are made master;
* TSIG: keys made with pdnsutil live in our store; a transfer without the key, or with a key
  TSIG-ALLOW-AXFR does not name, is refused; with the key it succeeds (dnspython and kdig);
  secondaries configured with the key still follow changes;
* a DNSSEC-signed zone (NSEC) transfers: pdns signs on the way out, so the secondaries receive
  presigned data (RRSIG, NSEC, DNSKEY) and serve it; it validates there (delv, and dnspython
  against the DS pdnsutil exports from the primary). An NSEC3-narrow zone is refused by pdns;
* the transfer is one snapshot: AXFRs taken while smimea-ctl keeps adding certificates never
  hold half of an addition.

Certificates are EC (P-256): their "3 0 0" records are small, so 100 of them (pdns 4.7.3 puts
100 records in each AXFR message) stay far below the 64 KB a message may hold.

Expected values come from the openssl command line, hashlib and this file's configuration,
never from our own output.

Run: SMIMEA_BUILD_DIR=build /usr/bin/python3 -m pytest -q tests/integration/test_transfer.py
"""
import base64
import json
import os
import pathlib
import re
import select
import shutil
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import dns.dnssec  # noqa: E402
import dns.exception  # noqa: E402
import dns.message  # noqa: E402
import dns.name  # noqa: E402
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402
import dns.rrset  # noqa: E402
import dns.tsig  # noqa: E402
import dns.tsigkeyring  # noqa: E402

from pdns import (ADDRESS, CONNECTORS, PDNSUTIL, Connector, LoggedProcess,  # noqa: E402
                  PdnsServer, sqlite_schema_file)
from smimea_test import (BACKEND, CTL, Cert, Store, free_port, owner_name, require,  # noqa: E402
                         run)

KNOTD = shutil.which("knotd") or "/usr/sbin/knotd"
DELV = shutil.which("delv") or "/usr/bin/delv"
KDIG = shutil.which("kdig") or "/usr/bin/kdig"
require(BACKEND, CTL, "/usr/sbin/pdns_server", KNOTD)

NOERROR, NXDOMAIN = dns.rcode.NOERROR, dns.rcode.NXDOMAIN
SMIMEA, SOA, NS = dns.rdatatype.SMIMEA, dns.rdatatype.SOA, dns.rdatatype.NS
RRSIG, NSEC, DNSKEY = dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.DNSKEY

# How long a change may take to reach both secondaries: pdns looks for moved serials every
# xfr-cycle-interval (1 s here), sends NOTIFY, and each secondary checks the SOA and transfers.
NOTIFY_BOUND = 20
# How long the secondaries may take to load every zone at start.
LOAD_BOUND = 45
# How long a native zone's change is watched to see that it is NOT announced.
QUIET_WATCH = 6

NAMESERVERS = ["ns1.example.net.", "ns2.example.org."]
NS_TTL = 1800
SOA_TTL = 600
DEFAULT_TTL = 900
SOA_REFRESH = 3600  # no secondary refreshes on its own during a test run
CONFIG_YAML = f"""
default-ttl: {DEFAULT_TTL}
nameservers: [{", ".join(NAMESERVERS)}]
ns-ttl: {NS_TTL}
soa:
  mname: {NAMESERVERS[0]}
  rname: hostmaster@example.net
  refresh: {SOA_REFRESH}
  retry: 600
  expire: 604800
  minimum: 120
  ttl: {SOA_TTL}
"""

# The main primary's zones: name -> kind. Addresses below pick the zone by their domain.
MAIN_ZONES = {
    "xfr.example": "master",
    "_smimecert.sub.example": "master",  # a delegated _smimecert subzone: its apex
    "quiet.example": "native",
    "busy.example": "master",
    "signed.example": "master",          # NSEC-signed by pdns with keys in our store
    "narrow.example": "master",          # NSEC3 narrow: pdns refuses to transfer it
}
# Zones the secondaries carry from the main primary (not narrow.example).
SECONDARY_ZONES = [z for z in MAIN_ZONES if z != "narrow.example"]
# The TSIG primary has its own store and this one zone.
TSIG_ZONE = "tsig.example"
TSIG_KEY = "xfr-key"
OTHER_KEY = "other-key"
OTHER_SECRET = base64.b64encode(b"another-secret-of-32-bytes-long!").decode()

CONNECTOR_NAMES = list(CONNECTORS)
PEOPLE = {
    # who: (address, records)
    "ann": ("ann@xfr.example", ["3 0 0", "3 1 1"]),
    "ben": ("ben@xfr.example", ["3 0 0"]),
    "cid": ("cid@sub.example", ["3 1 1"]),
    "dot": ("dot@quiet.example", ["3 0 0"]),
    "eve": ("eve@signed.example", ["3 0 0"]),
    "fay": ("fay@narrow.example", ["3 0 0"]),
    "gus": ("gus@tsig.example", ["3 0 0"]),
    # added during the tests
    "new": ("new@xfr.example", ["3 0 0", "3 1 1"]),
    "hal": ("hal@quiet.example", ["3 0 0"]),
    "ida": ("ida@tsig.example", ["3 0 0"]),
}
INITIAL = ["ann", "ben", "cid", "dot", "eve", "fay"]


# --------------------------------------------------------------------------------------------
# Expected records, computed without our code


def params_of(records):
    return [tuple(int(x) for x in r.split()) for r in records]


def zone_of(address):
    domain = address.rsplit("@", 1)[1]
    return "_smimecert." + domain if "_smimecert." + domain in MAIN_ZONES else domain


def record_args(records):
    args = []
    for r in records:
        args += ["--record", r]
    return args


class Expected:
    """The records each zone should hold, from what the test added and removed."""

    def __init__(self):
        self.rows = {}  # zone (no dot) -> {key}

    def add(self, cert, records, ttl=DEFAULT_TTL):
        zone = zone_of(cert.address)
        rows = self.rows.setdefault(zone, set())
        rows |= {(cert.owner, "SMIMEA", ttl, u, s, m, cert.data(s, m))
                 for (u, s, m) in params_of(records)}

    def remove(self, cert):
        zone = zone_of(cert.address)
        self.rows[zone] = {r for r in self.rows.get(zone, set()) if r[0] != cert.owner}

    def zone(self, zone):
        """SMIMEA and NS rows of a zone (SOA is compared separately)."""
        ns = {(zone + ".", "NS", NS_TTL, n) for n in NAMESERVERS}
        return self.rows.get(zone, set()) | ns


def row_of(name, ttl, rdata):
    """A comparable row for one transferred record (SOA and DNSSEC records excluded)."""
    name = name.to_text().lower()
    if rdata.rdtype == SMIMEA:
        return (name, "SMIMEA", ttl, rdata.usage, rdata.selector, rdata.mtype, bytes(rdata.cert))
    if rdata.rdtype == NS:
        return (name, "NS", ttl, rdata.target.to_text().lower())
    return (name, dns.rdatatype.to_text(rdata.rdtype), ttl, rdata.to_text())


# --------------------------------------------------------------------------------------------
# Transfers and questions


def axfr(port, zone, *, keyring=None, keyname=None, keyalgorithm=None, timeout=10.0):
    """(soa, [(name, ttl, rdata)...]) of an AXFR from 127.0.0.1:port. The SOA at both ends
    is checked and left out of the list. Raises dns.exception.FormError/TransferError/EOFError
    when the server refuses or aborts."""
    records = []
    kw = {}
    if keyring is not None:
        kw = {"keyring": keyring, "keyname": keyname, "keyalgorithm": keyalgorithm}
    for message in dns.query.xfr(ADDRESS, zone, port=port, timeout=timeout, lifetime=timeout,
                                 relativize=False, **kw):
        if message.rcode() != NOERROR:
            raise dns.query.TransferError(message.rcode())
        for rrset in message.answer:
            for rdata in rrset:
                records.append((rrset.name, rrset.ttl, rdata))
    assert len(records) >= 2 and records[0][2].rdtype == SOA and records[-1][2].rdtype == SOA, \
        f"AXFR {zone} from port {port}: not framed by SOA records: {records[:3]}"
    assert records[0][2] == records[-1][2]
    return records[0][2], records[1:-1]


def plain_rows(records):
    """Rows of the non-DNSSEC records; fails on duplicates."""
    rows = [row_of(n, t, rd) for n, t, rd in records
            if rd.rdtype not in (RRSIG, NSEC, DNSKEY, dns.rdatatype.NSEC3,
                                 dns.rdatatype.NSEC3PARAM)]
    assert len(rows) == len(set(rows)), f"duplicate records: {rows}"
    return set(rows)


def query(port, name, rdtype, *, dnssec=False, timeout=3.0):
    q = dns.message.make_query(name, rdtype, want_dnssec=dnssec)
    return dns.query.tcp(q, ADDRESS, port=port, timeout=timeout)


def soa_serial(port, zone):
    """The SOA serial a server answers for zone, or None (not loaded, refused, no answer)."""
    try:
        r = query(port, zone + ".", SOA, timeout=1.0)
    except (dns.exception.DNSException, OSError):
        return None
    if r.rcode() != NOERROR:
        return None
    for rrset in r.answer:
        if rrset.rdtype == SOA:
            return rrset[0].serial
    return None


def smimea_at(port, name):
    """(rcode, {(u, s, m, data)}) of an SMIMEA question, or (None, None) without an answer."""
    try:
        r = query(port, name, SMIMEA, timeout=1.0)
    except (dns.exception.DNSException, OSError):
        return None, None
    data = set()
    for rrset in r.answer:
        if rrset.rdtype == SMIMEA:
            data |= {(rd.usage, rd.selector, rd.mtype, bytes(rd.cert)) for rd in rrset}
    return r.rcode(), data


def wait_for(what, check, timeout, explain=lambda: ""):
    """Polls check() until it returns a true value; returns (value, seconds taken)."""
    start = time.monotonic()
    last = None
    while True:
        try:
            last = check()
        except (dns.exception.DNSException, OSError) as e:
            last = e
            if time.monotonic() - start > timeout:
                raise
        if last and not isinstance(last, Exception):
            return last, time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})\n{explain()}")
        time.sleep(0.2)


def keyring_for(name, secret_b64):
    return dns.tsigkeyring.from_text({name: secret_b64})


# --------------------------------------------------------------------------------------------
# The servers


class Gsqlite3(Connector):
    """pdns's own gsqlite3 backend: the secondary's storage."""

    name = "gsqlite3"
    launch = "gsqlite3"

    def __init__(self, directory):
        super().__init__(None, directory)
        self.db = self.dir / "secondary.sqlite3"
        with sqlite3.connect(self.db) as con:
            con.executescript(sqlite_schema_file().read_text())
        con.close()

    def config_lines(self):
        return [f"gsqlite3-database={self.db}", "gsqlite3-dnssec=yes"]


class PdnsSecondary:
    """pdns_server + gsqlite3 as secondary (secondary=yes) for zones of given primaries."""

    def __init__(self, directory, port):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.server = PdnsServer(Gsqlite3(self.dir), self.dir, extra_config=[
            "secondary=yes", "allow-notify-from=127.0.0.0/8", "xfr-cycle-interval=1",
            "allow-axfr-ips=127.0.0.0/8"])
        self.server.port = port
        (self.dir / "pdns.conf").write_text(self.server.config_text())

    @property
    def port(self):
        return self.server.port

    def pdnsutil(self, *args):
        return run([PDNSUTIL, f"--config-dir={self.dir}", *args], timeout=60)

    def add_zone(self, zone, primary_port, tsig=None):
        self.pdnsutil("create-secondary-zone", zone, f"{ADDRESS}:{primary_port}")
        if tsig:
            self.pdnsutil("set-meta", zone, "AXFR-MASTER-TSIG", tsig)

    def start(self):
        # One attempt: the primaries already send NOTIFY to this port.
        self.server.start(attempts=1)

    def stop(self):
        self.server.stop()

    def log(self):
        return self.server.explain("pdns secondary")


class KnotSecondary(LoggedProcess):
    """knotd as secondary, configured in its own directory, running as the current user."""

    name = "knotd"

    def __init__(self, directory, port):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.conf = self.dir / "knot.conf"
        self.logfile = self.dir / "knot.log"
        self.keys = {}     # name -> (algorithm, secret)
        self.zones = {}    # zone -> (primary port, key name or None)
        self.proc = None
        self._log = None

    def add_key(self, name, algorithm, secret):
        self.keys[name] = (algorithm, secret)

    def add_zone(self, zone, primary_port, tsig=None):
        self.zones[zone] = (primary_port, tsig)

    def config_text(self):
        d = self.dir
        lines = ["server:", f'    rundir: "{d}"', f"    listen: {ADDRESS}@{self.port}",
                 f'    pidfile: "{d}/knot.pid"',
                 "control:", f'    listen: "{d}/knot.sock"',
                 "database:", f'    storage: "{d}/db"',
                 "log:", "  - target: stderr", "    any: info"]
        if self.keys:
            lines.append("key:")
            for name, (algorithm, secret) in self.keys.items():
                lines += [f"  - id: {name}", f"    algorithm: {algorithm}", f"    secret: {secret}"]
        remotes = sorted({v for v in self.zones.values()}, key=str)
        rid = {r: f"primary{i}" for i, r in enumerate(remotes)}
        lines.append("remote:")
        for (port, key), ident in rid.items():
            lines += [f"  - id: {ident}", f"    address: {ADDRESS}@{port}"]
            if key:
                lines.append(f"    key: {key}")
        lines += ["acl:", "  - id: transfer", f"    address: {ADDRESS}", "    action: transfer",
                  "  - id: notify", f"    address: {ADDRESS}", "    action: notify"]
        for key in self.keys:
            lines += [f"  - id: notify-{key}", f"    address: {ADDRESS}", "    action: notify",
                      f"    key: {key}"]
        lines += ["template:", "  - id: default", f'    storage: "{d}/zones"',
                  "    zonefile-sync: -1", "    zonefile-load: none", "    journal-content: none",
                  "zone:"]
        for zone, (port, key) in self.zones.items():
            acl = ["transfer", f"notify-{key}" if key else "notify"]
            lines += [f"  - domain: {zone}", f"    master: {rid[(port, key)]}",
                      f"    acl: [{', '.join(acl)}]"]
        return "\n".join(lines) + "\n"

    def start(self):
        self.conf.write_text(self.config_text())
        run(["knotc", "-c", self.conf, "conf-check"])
        self.launch([KNOTD, "-c", str(self.conf)])
        deadline = time.monotonic() + 15
        probe = dns.message.make_query("version.server.", "TXT", "CH")
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"knotd exited with {self.proc.returncode}\n{self.log()}")
            try:
                dns.query.udp(probe, ADDRESS, port=self.port, timeout=0.3)
                return
            except (dns.exception.Timeout, OSError):
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"knotd did not answer on port {self.port}\n{self.log()}")



def primary_config(connector, notify_ports, axfr_ips):
    extra = ["primary=yes", f"also-notify={','.join(f'{ADDRESS}:{p}' for p in notify_ports)}",
             f"allow-axfr-ips={axfr_ips}", "xfr-cycle-interval=1",
             # every pdnsutil change shows at once
             "zone-metadata-cache-ttl=0", "dnssec-key-cache-ttl=0"]
    if connector.launch == "remote":
        extra.append("remote-dnssec=yes")
    return extra


class Topology:
    """Per connector: the main primary (its own store; allow-axfr-ips=127.0.0.0/8), the TSIG
    primary (another store; no address may transfer without TSIG), and the two secondaries
    fed by both."""

    def __init__(self, name, directory, people):
        self.name = name
        self.dir = pathlib.Path(directory)
        self.people = people
        self.expected = Expected()
        self.processes = []
        self.store = self.tsig_store = None
        self.primary = self.tsig_primary = self.pdns2 = self.knot = None
        self.tsig_secret = None

    def make_store(self, name):
        (self.dir / name).mkdir()
        return Store(self.dir / name, extra_config=CONFIG_YAML)

    def ctl(self, *args, **kw):
        return self.store.ctl(*args, **kw)

    def add_person(self, who, store=None):
        address, records = PEOPLE[who]
        (store or self.store).ctl("cert", "add", address, self.people[who].pem,
                                  *record_args(records))
        self.expected.add(self.people[who], records)

    def remove_person(self, who, store=None):
        (store or self.store).ctl("cert", "remove", PEOPLE[who][0])
        self.expected.remove(self.people[who])

    def start(self):
        self.store = self.make_store("main")
        self.tsig_store = self.make_store("tsig")
        for zone, kind in MAIN_ZONES.items():
            self.ctl("zone", "add", zone, "--kind", kind)
        self.tsig_store.ctl("zone", "add", TSIG_ZONE)
        for who in INITIAL:
            self.add_person(who)
        self.add_person("gus", self.tsig_store)
        self.add_busy_zone()

        pdns_port, knot_port = free_port(), free_port()
        while knot_port == pdns_port:
            knot_port = free_port()
        notify = [pdns_port, knot_port]
        connector = CONNECTORS[self.name]
        (self.dir / "main-backend").mkdir()
        self.primary = PdnsServer(connector(self.store, self.dir / "main-backend"),
                                  self.dir / "primary",
                                  extra_config=primary_config(connector, notify, "127.0.0.0/8"))
        self.primary.start()
        self.processes.append(self.primary)
        (self.dir / "tsig-backend").mkdir()
        self.tsig_primary = PdnsServer(connector(self.tsig_store, self.dir / "tsig-backend"),
                                       self.dir / "tsig-primary",
                                       extra_config=primary_config(connector, notify, ""))
        self.tsig_primary.start()
        self.processes.append(self.tsig_primary)

        # DNSSEC and TSIG through pdnsutil, into our stores.
        self.primary.pdnsutil("secure-zone", "signed.example")
        self.primary.pdnsutil("secure-zone", "narrow.example")
        self.primary.pdnsutil("set-nsec3", "narrow.example", "1 0 0 -", "narrow")
        self.tsig_primary.pdnsutil("generate-tsig-key", TSIG_KEY, "hmac-sha256")
        self.tsig_primary.pdnsutil("import-tsig-key", OTHER_KEY, "hmac-sha512", OTHER_SECRET)
        self.tsig_primary.pdnsutil("set-meta", TSIG_ZONE, "TSIG-ALLOW-AXFR", TSIG_KEY)
        with sqlite3.connect(self.tsig_store.db) as con:
            rows = con.execute("SELECT secret FROM tsig_keys WHERE name = ?",
                               (TSIG_KEY,)).fetchall()
        con.close()
        assert len(rows) == 1, f"{TSIG_KEY} is not in the store: {rows}"
        self.tsig_secret = rows[0][0]

        self.pdns2 = PdnsSecondary(self.dir / "pdns-secondary", pdns_port)
        self.knot = KnotSecondary(self.dir / "knot", knot_port)
        for zone in SECONDARY_ZONES:
            self.pdns2.add_zone(zone, self.primary.port)
            self.knot.add_zone(zone, self.primary.port)
        self.pdns2.pdnsutil("import-tsig-key", TSIG_KEY, "hmac-sha256", self.tsig_secret)
        self.pdns2.add_zone(TSIG_ZONE, self.tsig_primary.port, tsig=TSIG_KEY)
        self.knot.add_key(TSIG_KEY, "hmac-sha256", self.tsig_secret)
        self.knot.add_zone(TSIG_ZONE, self.tsig_primary.port, tsig=TSIG_KEY)
        self.pdns2.start()
        self.processes.append(self.pdns2)
        self.knot.start()
        self.processes.append(self.knot)

    def add_busy_zone(self):
        """busy.example gets 60 addresses with two records each: a list reply of ~80 KB."""
        cert = self.people["ben"]
        for i in range(60):
            address = f"user{i:03d}@busy.example"
            self.ctl("cert", "add", address, cert.pem, "--force", "--record", "3 0 0",
                     "--record", "3 1 1")
            zone_rows = self.expected.rows.setdefault("busy.example", set())
            owner = owner_name(address)
            zone_rows |= {(owner, "SMIMEA", DEFAULT_TTL, u, s, m, cert.data(s, m))
                          for (u, s, m) in ((3, 0, 0), (3, 1, 1))}

    def stop(self):
        for p in reversed(self.processes):
            try:
                p.stop()
            except Exception:  # noqa: BLE001 - stop the others anyway
                pass
        self.processes.clear()
        for s in (self.store, self.tsig_store):
            if s:
                s.cleanup()

    @property
    def secondaries(self):
        return {"pdns-gsqlite3": self.pdns2, "knot": self.knot}

    def primary_for(self, zone):
        return self.tsig_primary if zone == TSIG_ZONE else self.primary

    def logs(self):
        parts = [self.primary.explain("primary"), self.tsig_primary.explain("tsig primary")]
        parts += [self.pdns2.log(), self.knot.log()]
        return "\n\n".join(parts)


@pytest.fixture(scope="session")
def people(tmp_path_factory):
    d = tmp_path_factory.mktemp("people")
    return {who: Cert(d, address) for who, (address, _) in PEOPLE.items()}


@pytest.fixture(scope="module", params=CONNECTOR_NAMES)
def topo(request, people, tmp_path_factory):
    name = request.param
    reason = CONNECTORS[name].unavailable()
    if reason:
        pytest.skip(reason)
    t = Topology(name, tmp_path_factory.mktemp(f"xfr-{name}"), people)
    try:
        t.start()
        yield t
    finally:
        t.stop()


def wait_loaded(topo, zones=None, timeout=LOAD_BOUND):
    """Waits until both secondaries serve each zone at the primary's current serial."""
    for zone in zones or SECONDARY_ZONES + [TSIG_ZONE]:
        want = soa_serial(topo.primary_for(zone).port, zone)
        assert want is not None, topo.logs()
        for label, sec in topo.secondaries.items():
            wait_for(f"{label} loads {zone} at serial {want}",
                     lambda: soa_serial(sec.port, zone) == want, timeout, topo.logs)


def compare_with_primary(topo, zone, secondary_port, label, keyring=None):
    """The secondary's copy equals the primary's AXFR and the records this test inserted."""
    kw = {}
    if keyring is not None:
        kw = {"keyring": keyring, "keyname": TSIG_KEY, "keyalgorithm": dns.tsig.HMAC_SHA256}
    p_soa, p_records = axfr(topo.primary_for(zone).port, zone, **kw)
    s_soa, s_records = axfr(secondary_port, zone)
    assert s_soa == p_soa, f"{label} {zone}: SOA {s_soa} != primary's {p_soa}"
    want = topo.expected.zone(zone)
    got_primary, got_secondary = plain_rows(p_records), plain_rows(s_records)
    assert got_primary == want, \
        f"primary AXFR {zone}: extra {got_primary - want}, missing {want - got_primary}"
    assert got_secondary == got_primary, (
        f"{label} {zone}: extra {got_secondary - got_primary}, "
        f"missing {got_primary - got_secondary}")
    return p_records, s_records


# --------------------------------------------------------------------------------------------
# Loading, NOTIFY, native zones


def test_secondaries_hold_what_the_primary_transfers(topo):
    wait_loaded(topo)
    for zone in SECONDARY_ZONES:
        if zone == "signed.example":
            continue  # compared with its signatures below
        for label, sec in topo.secondaries.items():
            compare_with_primary(topo, zone, sec.port, label)


def test_zone_kinds_are_reported(topo):
    listed = json.loads(topo.ctl("--json", "zone", "list").stdout)
    kinds = {z["zone"]: z["kind"] for z in listed}
    assert kinds == MAIN_ZONES, listed
    shown = topo.primary.pdnsutil("list-all-zones", "master").stdout.split()
    assert set(shown) == set(MAIN_ZONES) - {"quiet.example"}, shown
    shown = topo.primary.pdnsutil("list-all-zones", "native").stdout.split()
    assert shown == ["quiet.example"], shown


def wait_all(what, secondaries, check, timeout, explain):
    """Polls check(secondary) for every secondary at once; returns {label: seconds} taken by
    each from now. Fails naming those that missed the bound."""
    start = time.monotonic()
    took = {}
    while len(took) < len(secondaries):
        for label, sec in secondaries.items():
            if label not in took and check(sec):
                took[label] = round(time.monotonic() - start, 2)
        if len(took) == len(secondaries):
            break
        if time.monotonic() - start > timeout:
            missing = sorted(set(secondaries) - set(took))
            raise AssertionError(f"{what}: {missing} not within {timeout} s\n{explain()}")
        time.sleep(0.1)
    return took


def test_cert_add_and_remove_reach_the_secondaries(topo):
    wait_loaded(topo, ["xfr.example"])
    new = topo.people["new"]
    zone = "xfr.example"
    before = soa_serial(topo.primary.port, zone)
    want = {(u, s, m, new.data(s, m)) for (u, s, m) in params_of(PEOPLE["new"][1])}
    assert smimea_at(topo.primary.port, new.owner)[0] == NXDOMAIN

    topo.add_person("new")
    assert smimea_at(topo.primary.port, new.owner) == (NOERROR, want), topo.logs()
    assert soa_serial(topo.primary.port, zone) != before
    added = wait_all(f"answers {new.owner} after cert add", topo.secondaries,
                     lambda sec: smimea_at(sec.port, new.owner) == (NOERROR, want),
                     NOTIFY_BOUND, topo.logs)
    for label, sec in topo.secondaries.items():
        compare_with_primary(topo, zone, sec.port, label)

    topo.remove_person("new")
    assert smimea_at(topo.primary.port, new.owner)[0] == NXDOMAIN
    removed = wait_all(f"stops answering {new.owner} after cert remove", topo.secondaries,
                       lambda sec: smimea_at(sec.port, new.owner)[0] == NXDOMAIN,
                       NOTIFY_BOUND, topo.logs)
    for label, sec in topo.secondaries.items():
        compare_with_primary(topo, zone, sec.port, label)
    print(f"[{topo.name}] seconds from smimea-ctl to the secondaries: cert add {added}, "
          f"cert remove {removed}")


def test_notified_serial_is_recorded(topo):
    """pdns's setNotified lands in the store: every master zone ends at notified_serial =
    serial; the native zone is never announced."""
    wait_loaded(topo)

    def settled():
        with sqlite3.connect(topo.store.db) as con:
            rows = con.execute("SELECT name, kind, serial, notified_serial FROM zones").fetchall()
        con.close()
        masters_done = all(n == s for _, k, s, n in rows if k == "master")
        return rows if masters_done else None

    rows, _ = wait_for("notified_serial = serial for every master zone", settled, NOTIFY_BOUND,
                       topo.logs)
    native = [r for r in rows if r[1] == "native"]
    assert native == [("quiet.example", "native", native[0][2], None)], rows


def test_native_zone_is_announced_only_once_master(topo):
    wait_loaded(topo, ["quiet.example"])
    hal = topo.people["hal"]
    topo.add_person("hal")
    assert smimea_at(topo.primary.port, hal.owner)[0] == NOERROR
    primary_serial = soa_serial(topo.primary.port, "quiet.example")
    # No NOTIFY for a native zone: the secondaries keep the old serial (their own refresh is
    # an hour away).
    time.sleep(QUIET_WATCH)
    for label, sec in topo.secondaries.items():
        assert soa_serial(sec.port, "quiet.example") != primary_serial, \
            f"{label} got a native zone's change without NOTIFY\n{topo.logs()}"
        assert smimea_at(sec.port, hal.owner)[0] == NXDOMAIN
    topo.ctl("zone", "set-kind", "quiet.example", "master")
    try:
        for label, sec in topo.secondaries.items():
            wait_for(f"{label} gets quiet.example once it is master",
                     lambda: smimea_at(sec.port, hal.owner)[0] == NOERROR, NOTIFY_BOUND,
                     topo.logs)
            compare_with_primary(topo, "quiet.example", sec.port, label)
    finally:
        topo.ctl("zone", "set-kind", "quiet.example", "native")


def test_delegated_subzone_transfers(topo):
    wait_loaded(topo, ["_smimecert.sub.example"])
    cid = topo.people["cid"]
    for label, sec in topo.secondaries.items():
        rcode, data = smimea_at(sec.port, cid.owner)
        assert rcode == NOERROR and data == {(3, 1, 1, cid.data(1, 1))}, (label, rcode, data)


# --------------------------------------------------------------------------------------------
# Consistency while smimea-ctl writes


def test_axfr_is_one_snapshot_while_smimea_ctl_writes(topo):
    """Each address added here gets two records in one transaction. An AXFR taken meanwhile
    holds both or neither, and its record set is exactly the state after some number of
    additions: no half-applied command, nothing skipped. busy.example's list reply (~80 KB and
    growing) is sent in several pieces."""
    cert = topo.people["ben"]
    zone = "busy.example"
    base = {r for r in topo.expected.zone(zone)}
    started, added = [], []  # addresses whose cert add began / returned, in commit order
    stop = threading.Event()
    errors = []

    def writer():
        try:
            for i in range(200, 230):
                if stop.is_set():
                    return
                address = f"late{i}@busy.example"
                started.append(address)
                topo.ctl("cert", "add", address, cert.pem, "--force", "--record", "3 0 0",
                         "--record", "3 1 1")
                added.append(address)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def rows_after(n):
        rows = set(base)
        for address in started[:n]:
            owner = owner_name(address)
            rows |= {(owner, "SMIMEA", DEFAULT_TTL, u, s, m, cert.data(s, m))
                     for (u, s, m) in ((3, 0, 0), (3, 1, 1))}
        return rows

    t = threading.Thread(target=writer)
    t.start()
    seen = []
    try:
        deadline = time.monotonic() + 60
        while t.is_alive() and time.monotonic() < deadline:
            # Committed for sure before the transfer: `added`; perhaps committed by its end:
            # `started`. The snapshot is the state after some number in between.
            low = len(added)
            _, records = axfr(topo.primary.port, zone)
            high = len(started)
            got = plain_rows(records)
            assert any(got == rows_after(n) for n in range(low, high + 1)), (
                f"AXFR of {zone} is not the state after {low}..{high} additions "
                f"({len(got)} records)")
            seen.append(len(got))
    finally:
        stop.set()
        t.join()
    assert not errors, errors
    assert len(set(seen)) >= 2, f"the AXFRs did not overlap the writes: sizes {seen}"
    for address in added:
        owner = owner_name(address)
        topo.expected.rows[zone] |= {(owner, "SMIMEA", DEFAULT_TTL, u, s, m, cert.data(s, m))
                                     for (u, s, m) in ((3, 0, 0), (3, 1, 1))}
    _, records = axfr(topo.primary.port, zone)
    assert plain_rows(records) == topo.expected.zone(zone)


# --------------------------------------------------------------------------------------------
# DNSSEC


def ds_of_primary(topo, zone):
    return topo.primary.pdnsutil("export-zone-ds", zone).stdout


def test_signed_zone_arrives_presigned_and_validates(topo, tmp_path):
    """pdns signs on the way out of an AXFR: the secondaries receive the RRSIGs, the NSEC
    chain and the DNSKEY, and serve them as they are (presigned). The pdns secondary's answers
    validate with delv against the DS pdnsutil gives for the primary's key; every RRSIG of the
    transferred zone verifies with dnspython."""
    zone = "signed.example"
    wait_loaded(topo, [zone])
    eve = topo.people["eve"]
    p_records, _ = compare_with_primary(topo, zone, topo.pdns2.port, "pdns-gsqlite3")
    types = {rd.rdtype for _, _, rd in p_records}
    assert {RRSIG, NSEC, DNSKEY} <= types, f"primary AXFR of {zone} is not signed: {types}"

    ds_text = ds_of_primary(topo, zone)
    # "signed.example. IN DS 12345 13 2 <hex> ; ( SHA256 digest )"
    ds_lines = [line.split() for line in ds_text.splitlines()
                if len(line.split()) >= 7 and line.split()[2] == "DS"]
    assert ds_lines, ds_text
    for label, sec in topo.secondaries.items():
        soa, records = axfr(sec.port, zone)
        records = records + [(dns.name.from_text(zone + "."), SOA_TTL, soa)]
        # Every RRset of the transferred copy is signed, and the signatures verify with the
        # DNSKEY whose DS the primary exports.
        keys = dns.rrset.from_rdata_list(dns.name.from_text(zone + "."), 0,
                                         [rd for _, _, rd in records if rd.rdtype == DNSKEY])
        assert len(keys) >= 1, f"{label}: no DNSKEY in {zone}"
        digests = {dns.dnssec.make_ds(zone + ".", k, "SHA256").to_text().split()[-1].lower()
                   for k in keys}
        assert any(f[6].lower() in digests for f in ds_lines), (label, digests, ds_text)
        rrsets = {}
        for name, ttl, rd in records:
            rrsets.setdefault((name, rd.rdtype, rd.covers() if rd.rdtype == RRSIG else 0),
                              []).append((ttl, rd))
        signed_types = set()
        for (name, rdtype, covers), items in rrsets.items():
            if rdtype != RRSIG:
                continue
            covered = rrsets.get((name, covers, 0))
            assert covered, f"{label}: RRSIG over missing {name} {covers}"
            rrset = dns.rrset.from_rdata_list(name, covered[0][0], [rd for _, rd in covered])
            sigs = dns.rrset.from_rdata_list(name, items[0][0], [rd for _, rd in items])
            dns.dnssec.validate(rrset, sigs, {dns.name.from_text(zone + "."): keys})
            signed_types.add((name.to_text(), dns.rdatatype.to_text(covers)))
        unsigned = {(n.to_text(), dns.rdatatype.to_text(t)) for (n, t, _) in rrsets
                    if t != RRSIG} - signed_types
        assert not unsigned, f"{label}: RRsets without RRSIG in {zone}: {unsigned}"
        # The secondary answers with the signatures.
        r = query(sec.port, eve.owner, SMIMEA, dnssec=True)
        assert r.rcode() == NOERROR and any(rr.rdtype == RRSIG for rr in r.answer), \
            f"{label}: {r}"

    # A full validation of the pdns secondary's answers, trust anchored at the DS; and a
    # failure with a wrong DS, so the check can fail.
    def delv(name, digest_of):
        anchors = tmp_path / "anchors.conf"
        entries = "".join(f'  "{zone}." static-ds {f[3]} {f[4]} {f[5]} "{digest_of(f[6])}";\n'
                          for f in ds_lines)
        anchors.write_text("trust-anchors {\n" + entries + "};\n")
        r = run([DELV, f"@{ADDRESS}", "-p", str(topo.pdns2.port), "-a", anchors,
                 f"+root={zone}.", "+tcp", name, "SMIMEA"], check=False)
        return r.stdout + r.stderr

    text = delv(eve.owner, lambda d: d)
    assert "; fully validated" in text and "resolution failed" not in text, text
    assert eve.data(0, 0).hex().upper()[:40] in text.replace(" ", "").upper(), text
    absent = "0" * 56 + "._smimecert.signed.example."
    text = delv(absent, lambda d: d)
    assert "; negative response, fully validated" in text and "ncache nxdomain" in text, text
    wrong = delv(eve.owner, lambda d: ("0" if d[0] != "0" else "1") + d[1:])
    assert "fully validated" not in wrong and "resolution failed" in wrong, wrong


def test_nsec3_narrow_zone_is_not_transferred(topo):
    """pdns 4.7.3 refuses to transfer a zone signed with NSEC3 narrow ("not doing AXFR of an
    NSEC3 narrow zone"): narrow hashes are made per answer, there is no chain to send."""
    with pytest.raises((dns.query.TransferError, dns.exception.FormError, EOFError,
                        ConnectionError)):
        axfr(topo.primary.port, "narrow.example")
    assert "not doing AXFR of an NSEC3 narrow zone" in topo.primary.log.read_text(
        errors="replace")


# --------------------------------------------------------------------------------------------
# TSIG


def test_pdnsutil_tsig_keys_live_in_the_store(topo):
    listed = topo.tsig_primary.pdnsutil("list-tsig-keys").stdout
    assert re.search(rf"^{TSIG_KEY}\. hmac-sha256\. {re.escape(topo.tsig_secret)}$", listed,
                     re.M), listed
    assert re.search(rf"^{OTHER_KEY}\. hmac-sha512\. {re.escape(OTHER_SECRET)}$", listed,
                     re.M), listed
    with sqlite3.connect(topo.tsig_store.db) as con:
        rows = con.execute("SELECT name, algorithm FROM tsig_keys ORDER BY name").fetchall()
    con.close()
    assert rows == [(OTHER_KEY, "hmac-sha512"), (TSIG_KEY, "hmac-sha256")], rows
    assert len(base64.b64decode(topo.tsig_secret)) >= 32
    meta = topo.tsig_primary.pdnsutil("get-meta", TSIG_ZONE, "TSIG-ALLOW-AXFR").stdout
    assert TSIG_KEY in meta, meta
    # Add, see, delete a third key.
    topo.tsig_primary.pdnsutil("import-tsig-key", "temp-key", "hmac-sha256", OTHER_SECRET)
    assert "temp-key." in topo.tsig_primary.pdnsutil("list-tsig-keys").stdout
    topo.tsig_primary.pdnsutil("delete-tsig-key", "temp-key")
    assert "temp-key." not in topo.tsig_primary.pdnsutil("list-tsig-keys").stdout


def test_transfer_without_the_key_is_refused(topo):
    port = topo.tsig_primary.port
    with pytest.raises((dns.query.TransferError, dns.exception.FormError, EOFError)):
        axfr(port, TSIG_ZONE)
    # A key pdns knows but TSIG-ALLOW-AXFR does not name.
    with pytest.raises((dns.query.TransferError, dns.exception.FormError, EOFError)):
        axfr(port, TSIG_ZONE, keyring=keyring_for(OTHER_KEY, OTHER_SECRET), keyname=OTHER_KEY,
             keyalgorithm=dns.tsig.HMAC_SHA512)
    # The right name with the wrong secret.
    with pytest.raises((dns.query.TransferError, dns.exception.FormError, EOFError,
                        dns.tsig.PeerError, dns.tsig.BadSignature)):
        axfr(port, TSIG_ZONE, keyring=keyring_for(TSIG_KEY, OTHER_SECRET), keyname=TSIG_KEY,
             keyalgorithm=dns.tsig.HMAC_SHA256)
    log = topo.tsig_primary.log.read_text(errors="replace")
    assert "denied" in log or "may not request AXFR" in log, log[-3000:]


def test_transfer_with_the_key_succeeds(topo):
    kr = keyring_for(TSIG_KEY, topo.tsig_secret)
    soa, records = axfr(topo.tsig_primary.port, TSIG_ZONE, keyring=kr, keyname=TSIG_KEY,
                        keyalgorithm=dns.tsig.HMAC_SHA256)
    assert plain_rows(records) == topo.expected.zone(TSIG_ZONE)
    out = run([KDIG, f"@{ADDRESS}", "-p", str(topo.tsig_primary.port), "-y",
               f"hmac-sha256:{TSIG_KEY}:{topo.tsig_secret}", "+noall", "+answer", TSIG_ZONE,
               "AXFR"]).stdout
    types = [line.split()[3] for line in out.splitlines() if line and not line.startswith(";")]
    assert types[0] == "SOA" and types[-1] == "SOA", out
    assert types.count("SMIMEA") == len(PEOPLE["gus"][1]), out


def test_secondaries_with_the_key_follow_changes(topo):
    wait_loaded(topo, [TSIG_ZONE])
    ida = topo.people["ida"]
    topo.add_person("ida", topo.tsig_store)
    kr = keyring_for(TSIG_KEY, topo.tsig_secret)
    for label, sec in topo.secondaries.items():
        wait_for(f"{label} answers {ida.owner} (TSIG zone) after cert add",
                 lambda: smimea_at(sec.port, ida.owner)[0] == NOERROR, NOTIFY_BOUND, topo.logs)
        compare_with_primary(topo, TSIG_ZONE, sec.port, label, keyring=kr)


def test_allow_axfr_ips_lets_unsigned_transfers_through(topo):
    """Documented pdns 4.7.3 behaviour: TSIG-ALLOW-AXFR only says which keys are good. An
    unsigned request from an address in allow-axfr-ips is still served, so a zone that must
    need TSIG is served by a pdns whose allow-axfr-ips does not match the clients."""
    topo.primary.pdnsutil("set-meta", "xfr.example", "TSIG-ALLOW-AXFR", TSIG_KEY)
    try:
        _, records = axfr(topo.primary.port, "xfr.example")
        assert plain_rows(records) == topo.expected.zone("xfr.example")
    finally:
        topo.primary.pdnsutil("set-meta", "xfr.example", "TSIG-ALLOW-AXFR")


def test_secrets_are_not_logged(topo):
    logs = topo.tsig_primary.log.read_text(errors="replace") + topo.tsig_primary.connector.logs()
    for secret in (topo.tsig_secret, OTHER_SECRET):
        assert secret not in logs


# --------------------------------------------------------------------------------------------
# The remote backend's transfer calls, spoken to directly over its pipe (no pdns)


class PipeBackend:
    """smimea-backend --pipe, one request line in, one reply line out."""

    def __init__(self, store):
        self.proc = subprocess.Popen([str(BACKEND), "--config", str(store.config), "--pipe"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)

    def call(self, method, timeout=10.0, **parameters):
        line = json.dumps({"method": method, "parameters": parameters}) + "\n"
        self.proc.stdin.write(line.encode())
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, f"{method}: no reply within {timeout} s"
        reply = self.proc.stdout.readline()
        assert reply.endswith(b"\n"), reply[-200:]
        return json.loads(reply)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        err = self.proc.stderr.read().decode(errors="replace")
        self.proc.stdout.close()
        self.proc.stderr.close()
        return err


@pytest.fixture
def lone(tmp_path, people):
    store = Store(tmp_path, extra_config=CONFIG_YAML)
    store.ctl("zone", "add", "xfr.example")
    store.ctl("zone", "add", "quiet.example", "--kind", "native")
    store.ctl("zone", "add", "over.example", "--mode", "overlay")
    store.ctl("cert", "add", PEOPLE["ann"][0], people["ann"].pem)
    backend = PipeBackend(store)
    try:
        yield store, backend
    finally:
        log = backend.close()
        store.cleanup()
        assert "Traceback" not in log


def zones_table(store):
    with sqlite3.connect(store.db) as con:
        rows = {name: (kind, serial, notified) for name, kind, serial, notified in con.execute(
            "SELECT name, kind, serial, notified_serial FROM zones")}
    con.close()
    return rows


def test_remote_domaininfo_kinds(lone):
    store, backend = lone
    domains = backend.call("getAllDomains", include_disabled=True)["result"]
    kinds = {d["zone"]: d["kind"] for d in domains}
    assert kinds == {"xfr.example.": "master", "quiet.example.": "native"}, domains
    info = backend.call("getDomainInfo", name="quiet.example.")["result"]
    assert info["kind"] == "native" and info["zone"] == "quiet.example."


def test_remote_get_updated_masters_and_set_notified(lone, people):
    store, backend = lone
    table = zones_table(store)
    updated = backend.call("getUpdatedMasters")["result"]
    # Never notified: the master zone only (not the native one, not the overlay).
    assert [(d["zone"], d["kind"], d["serial"]) for d in updated] == \
        [("xfr.example.", "master", table["xfr.example"][1])], updated
    serial = table["xfr.example"][1]
    # pdns writes the numbers as JSON doubles.
    assert backend.call("setNotified", id=float(updated[0]["id"]), serial=float(serial)) == \
        {"result": True}
    assert zones_table(store)["xfr.example"] == ("master", serial, serial)
    assert backend.call("getUpdatedMasters")["result"] == []
    # The serial moves: announced again, with notified_serial telling the old one.
    store.ctl("cert", "add", PEOPLE["ben"][0], people["ben"].pem)
    updated = backend.call("getUpdatedMasters")["result"]
    new_serial = zones_table(store)["xfr.example"][1]
    assert [(d["zone"], d["serial"], d["notified_serial"]) for d in updated] == \
        [("xfr.example.", new_serial, serial)], updated
    # A native zone that becomes master is announced.
    store.ctl("zone", "set-kind", "quiet.example", "master")
    updated = backend.call("getUpdatedMasters")["result"]
    assert sorted(d["zone"] for d in updated) == ["quiet.example.", "xfr.example."], updated
    bad = backend.call("setNotified", id=999999, serial=1)
    assert bad["result"] is False and "no such zone" in bad["log"][0], bad
    bad = backend.call("setNotified", id=1, serial=-5)
    assert bad["result"] is False, bad


def test_remote_tsig_calls(lone):
    store, backend = lone
    secret = base64.b64encode(os.urandom(32)).decode()
    assert backend.call("getTSIGKeys") == {"result": []}
    assert backend.call("getTSIGKey", name="xfr-key.") == {"result": False}
    assert backend.call("setTSIGKey", name="Xfr-Key.", algorithm="hmac-sha256.",
                        content=secret) == {"result": True}
    got = backend.call("getTSIGKey", name="xfr-key.")["result"]
    assert got == {"name": "xfr-key.", "algorithm": "hmac-sha256.", "content": secret}
    assert backend.call("getTSIGKeys")["result"] == [got]
    with sqlite3.connect(store.db) as con:
        assert con.execute("SELECT name, algorithm, secret FROM tsig_keys").fetchall() == \
            [("xfr-key", "hmac-sha256", secret)]
    con.close()
    assert backend.call("deleteTSIGKey", name="xfr-key.") == {"result": True}
    assert backend.call("getTSIGKeys") == {"result": []}
    bad = backend.call("setTSIGKey", name="k.", algorithm="hmac-sha256.", content="")
    assert bad["result"] is False and secret not in json.dumps(bad)


def test_remote_list_streams_a_large_zone_as_one_line(lone, people):
    """A list reply far over the 64 KB the backend buffers: still one JSON line, every record
    in it, in owner order."""
    store, backend = lone
    cert = people["ben"]
    with sqlite3.connect(store.db) as con:
        zone_id = con.execute("SELECT id FROM zones WHERE name = 'xfr.example'").fetchone()[0]
        cert_row = con.execute("SELECT id FROM certificates").fetchone()[0]
        rows = []
        for i in range(3000):
            address = f"bulk{i}@xfr.example"
            owner = bytes.fromhex(owner_name(address).split(".")[0])
            rows.append((cert_row, zone_id, owner, 3, 0, 0, 300 + i % 7, cert.der))
        con.executemany("INSERT INTO records (certificate_id, zone_id, owner, usage, selector, "
                        "matching_type, ttl, data) VALUES (?,?,?,?,?,?,?,?)", rows)
    con.close()
    reply = backend.call("list", zonename="xfr.example.", domain_id=-1, include_disabled=False)
    records = reply["result"]
    assert len(json.dumps(reply)) > 20 * 64 * 1024
    smimea = [r for r in records if r["qtype"] == "SMIMEA"]
    assert len(smimea) == 3000 + 1  # and ann's
    assert [r["qtype"] for r in records[:3]] == ["SOA", "NS", "NS"]
    owners = [r["qname"] for r in smimea]
    assert owners == sorted(owners)
    want = {(owner_name(f"bulk{i}@xfr.example"), 300 + i % 7) for i in range(3000)}
    assert want <= {(r["qname"], r["ttl"]) for r in smimea}
    assert all(r["content"] == "3 0 0 " + cert.der.hex() for r in smimea
               if r["qname"] != people["ann"].owner)
    # The next request on the same pipe is answered normally.
    assert backend.call("getTSIGKeys") == {"result": []}

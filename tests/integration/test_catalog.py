"""The catalog zone (RFC 9432, version 2) end to end: our store, served by pdns_server as a
primary (primary=yes, also-notify, xfr-cycle-interval=1) over each connector, with two real
secondaries from Debian packages on loopback configured with nothing but the catalog:

* Knot DNS (catalog-role: interpret, members from a catalog-template);
* BIND 9.18 (catalog-zones in options, the catalog itself a secondary zone).

What is checked, with the bound each check states:
* the catalog's AXFR, record by record: SOA (the configured template, the serial the store
  keeps), NS invalid., version TXT "2", and one <id>.zones PTR per authoritative zone, the ids
  read from the store with sqlite3; overlay zones are not members;
* both secondaries serve every member at start; a zone added with `smimea-ctl zone add` is
  served by both within NOTIFY_BOUND seconds, and its SMIMEA records after `cert add`; a
  removed zone is dropped by both within the same bound;
* a zone removed and added again has a new unique id; a change that leaves the membership as
  it was (a certificate added) keeps the catalog's serial;
* smimea-ctl check-config refuses a catalog that is also a zone of the store.

Expected values come from this file's configuration, the store's rows (sqlite3) and hashlib,
never from our program's output: dnspython has no catalog parser, so the records are compared
with expectations built here.

Run: SMIMEA_BUILD_DIR=build /usr/bin/python3 -m pytest -q tests/integration/test_catalog.py
"""
import pathlib
import shutil
import sqlite3
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import dns.exception  # noqa: E402
import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.name  # noqa: E402
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402

from pdns import ADDRESS, CONNECTORS, LoggedProcess, PdnsServer  # noqa: E402
from smimea_test import BACKEND, CTL, Cert, Store, free_port, require, run  # noqa: E402

KNOTD = shutil.which("knotd") or "/usr/sbin/knotd"
NAMED = shutil.which("named") or "/usr/sbin/named"
require(BACKEND, CTL, "/usr/sbin/pdns_server", KNOTD, NAMED)

NOERROR, REFUSED = dns.rcode.NOERROR, dns.rcode.REFUSED
SOA, NS, TXT, PTR = (dns.rdatatype.SOA, dns.rdatatype.NS, dns.rdatatype.TXT,
                     dns.rdatatype.PTR)
SMIMEA = dns.rdatatype.SMIMEA

# A change reaches both secondaries in: pdns's next xfr cycle (1 s), NOTIFY of the catalog,
# its AXFR, then the member's SOA query and AXFR. Generous for slow machines.
NOTIFY_BOUND = 20
LOAD_BOUND = 45

CATALOG = "catalog.invalid"
NAMESERVERS = ["ns1.example.net.", "ns2.example.org."]
NS_TTL = 1800
SOA_TTL = 600
CONFIG_YAML = f"""
catalog: Catalog.Invalid.
nameservers: [{", ".join(NAMESERVERS)}]
ns-ttl: {NS_TTL}
soa:
  mname: {NAMESERVERS[0]}
  rname: hostmaster@example.net
  refresh: 3600
  retry: 600
  expire: 604800
  minimum: 120
  ttl: {SOA_TTL}
"""
INITIAL_ZONES = ["one.example", "two.example"]
OVERLAY_ZONE = "over.example"  # not a member: another backend's


def primary_config(notify_ports):
    return ["primary=yes",
            f"also-notify={','.join(f'{ADDRESS}:{p}' for p in notify_ports)}",
            "allow-axfr-ips=127.0.0.0/8", "xfr-cycle-interval=1"]


def _wait_answering(proc, port, what, log):
    deadline = time.monotonic() + 15
    probe = dns.message.make_query("version.server.", "TXT", "CH")
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}\n{log()}")
        try:
            dns.query.udp(probe, ADDRESS, port=port, timeout=0.3)
            return
        except (dns.exception.Timeout, OSError):
            time.sleep(0.1)
    raise AssertionError(f"{what} did not answer on port {port}\n{log()}")


class Secondary(LoggedProcess):
    """A DNS server in its own directory, run in the foreground as the current user."""

    name = "?"

    def __init__(self, directory):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.primary_port = None  # set before start()
        self.logfile = self.dir / f"{self.name}.log"
        self.proc = None
        self._log = None

    def command(self):
        raise NotImplementedError

    def write_config(self):
        raise NotImplementedError

    def start(self):
        self.write_config()
        self.launch(self.command())
        try:
            _wait_answering(self.proc, self.port, self.name, self.log)
        except AssertionError:
            self.stop()
            raise


    def query(self, name, rdtype):
        q = dns.message.make_query(name, rdtype)
        return dns.query.tcp(q, ADDRESS, port=self.port, timeout=2)  # a certificate: > 512


class KnotSecondary(Secondary):
    """knotd with the catalog zone (catalog-role: interpret) and a template for its members."""

    name = "knot"

    def write_config(self):
        d = self.dir
        common = [f'    storage: "{d}/zones"', "    zonefile-sync: -1", "    zonefile-load: none",
                  "    journal-content: none"]
        text = "\n".join([
            "server:", f'    rundir: "{d}"', f"    listen: {ADDRESS}@{self.port}",
            f'    pidfile: "{d}/knot.pid"',
            "control:", f'    listen: "{d}/knot.sock"',
            "database:", f'    storage: "{d}/db"',
            "log:", "  - target: stderr", "    any: info",
            "remote:", "  - id: primary", f"    address: {ADDRESS}@{self.primary_port}",
            "acl:", "  - id: notify", f"    address: {ADDRESS}", "    action: notify",
            "template:", "  - id: default", *common,
            "  - id: member", *common, "    master: primary", "    acl: notify",
            "zone:", f"  - domain: {CATALOG}.", "    master: primary", "    acl: notify",
            "    catalog-role: interpret", "    catalog-template: member",
        ]) + "\n"
        # knotd 3.2 opens the catalog database in it and does not make it.
        (d / "db").mkdir(exist_ok=True)
        conf = d / "knot.conf"
        conf.write_text(text)
        run(["knotc", "-c", conf, "conf-check"])

    def command(self):
        return [KNOTD, "-c", str(self.dir / "knot.conf")]


class BindSecondary(Secondary):
    """named 9.18 with catalog-zones: members are added and removed at run time (in memory)."""

    name = "named"

    def write_config(self):
        d = self.dir
        primary = f"{ADDRESS} port {self.primary_port}"
        (d / "named.conf").write_text(f"""options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {self.port} {{ {ADDRESS}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
    allow-new-zones yes;
    catalog-zones {{
        zone "{CATALOG}" default-masters {{ {primary}; }} in-memory yes;
    }};
}};
controls {{ }};
zone "{CATALOG}" {{
    type secondary;
    file "{d}/catalog.db";
    primaries {{ {primary}; }};
}};
""")
        run([shutil.which("named-checkconf") or "/usr/bin/named-checkconf", d / "named.conf"])

    def command(self):
        return [NAMED, "-g", "-n", "1", "-c", str(self.dir / "named.conf")]


class Topology:
    def __init__(self, connector, directory):
        self.dir = pathlib.Path(directory)
        (self.dir / "store").mkdir()
        self.store = Store(self.dir / "store", extra_config=CONFIG_YAML)
        for zone in INITIAL_ZONES:
            self.store.ctl("zone", "add", zone)
        self.store.ctl("zone", "add", OVERLAY_ZONE, "--mode", "overlay")
        conn = CONNECTORS[connector](self.store, self.dir / "primary")
        self.secondaries = [KnotSecondary(self.dir / "knot"), BindSecondary(self.dir / "named")]
        self.primary = PdnsServer(conn, self.dir / "primary",
                                  extra_config=primary_config([s.port for s in self.secondaries]))

    def start(self):
        self.primary.start()
        for s in self.secondaries:
            s.primary_port = self.primary.port
            s.start()

    def stop(self):
        for s in self.secondaries:
            s.stop()
        self.primary.stop()
        self.store.cleanup()

    def ctl(self, *args, **kw):
        return self.store.ctl(*args, **kw)

    def rows(self, sql, *params):
        with sqlite3.connect(f"file:{self.store.db}?mode=ro", uri=True) as db:
            return db.execute(sql, params).fetchall()

    def member_ids(self):
        """zone name -> unique id, from the store's rows."""
        return dict(self.rows("SELECT name, catalog_id FROM zones WHERE mode = 'authoritative'"))

    def catalog_serial(self):
        return self.rows("SELECT serial FROM catalog")[0][0]

    def explain(self, what):
        return "\n\n".join([self.primary.explain(what)] + [s.log() for s in self.secondaries])


@pytest.fixture(scope="module", params=list(CONNECTORS))
def topo(request, tmp_path_factory):
    reason = CONNECTORS[request.param].unavailable()
    if reason:
        pytest.skip(reason)
    t = Topology(request.param, tmp_path_factory.mktemp(f"catalog-{request.param}"))
    try:
        t.start()
        yield t
    finally:
        t.stop()


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return Cert(tmp_path_factory.mktemp("catalog-certs"), "amy@new.example")


def serves(secondary, zone, serial=None):
    """Whether the secondary answers authoritatively for zone (at serial, if given)."""
    try:
        r = secondary.query(zone + ".", SOA)
    except (dns.exception.Timeout, OSError):
        return False
    if r.rcode() != NOERROR or not r.flags & dns.flags.AA or not r.answer:
        return False
    return serial is None or r.answer[0][0].serial == serial


def wait_until(topo, what, predicate, timeout=NOTIFY_BOUND):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(0.2)
    raise AssertionError(topo.explain(f"not within {timeout} s: {what}"))


def expected_catalog(topo):
    """The catalog's records but the SOA, as (name, type, ttl, text), from the store's rows."""
    apex = CATALOG + "."
    rows = {(apex, "NS", NS_TTL, "invalid."), ("version." + apex, "TXT", NS_TTL, '"2"')}
    for zone, ident in topo.member_ids().items():
        assert len(ident) == 16 and all(c in "0123456789abcdef" for c in ident), ident
        rows.add((f"{ident}.zones.{apex}", "PTR", NS_TTL, zone + "."))
    return rows


def transferred_catalog(topo):
    records = topo.primary.axfr(CATALOG + ".")
    soas = [(name, ttl, rdata) for name, ttl, rdata in records if rdata.rdtype == SOA]
    rest = {(name.to_text().lower(), dns.rdatatype.to_text(rdata.rdtype), ttl,
             rdata.to_text().lower()) for name, ttl, rdata in records if rdata.rdtype != SOA}
    return records, soas, rest


# --------------------------------------------------------------------------------------------


def test_catalog_axfr_record_by_record(topo):
    records, soas, rest = transferred_catalog(topo)
    assert records[0][2].rdtype == SOA and records[-1][2].rdtype == SOA, records
    assert len(soas) == 2
    name, ttl, soa = soas[0]
    assert name == dns.name.from_text(CATALOG + ".")
    assert ttl == SOA_TTL
    assert soa.mname.to_text() == NAMESERVERS[0]
    assert soa.rname.to_text() == "hostmaster.example.net."
    assert (soa.refresh, soa.retry, soa.expire, soa.minimum) == (3600, 600, 604800, 120)
    assert soa.serial == topo.catalog_serial()
    assert rest == expected_catalog(topo)
    assert len(records) == 2 + len(rest)  # no record twice
    members = {r[3] for r in rest if r[1] == "PTR"}
    assert members == {z + "." for z in INITIAL_ZONES}  # the overlay zone is not one


def test_catalog_lookups(topo):
    apex = CATALOG + "."
    r = topo.primary.query(apex, NS)
    assert r.rcode() == NOERROR and r.flags & dns.flags.AA
    assert [x.to_text() for x in r.answer[0]] == ["invalid."]
    r = topo.primary.query("version." + apex, TXT)
    assert [x.to_text() for x in r.answer[0]] == ['"2"']
    ident = topo.member_ids()["one.example"]
    r = topo.primary.query(f"{ident}.zones.{apex}", PTR)
    assert [x.to_text() for x in r.answer[0]] == ["one.example."]
    # zones.<catalog> is an empty non-terminal; an unknown id does not exist.
    r = topo.primary.query("zones." + apex, TXT)
    assert r.rcode() == NOERROR and not r.answer, r
    r = topo.primary.query("0123456789abcdef.zones." + apex, PTR)
    assert r.rcode() == dns.rcode.NXDOMAIN, r


def test_secondaries_load_members(topo):
    for zone in INITIAL_ZONES:
        serial = topo.rows("SELECT serial FROM zones WHERE name = ?", zone)[0][0]
        for s in topo.secondaries:
            wait_until(topo, f"{s.name} serves {zone}", lambda: serves(s, zone, serial),
                       LOAD_BOUND)
    for s in topo.secondaries:
        assert not serves(s, OVERLAY_ZONE)


def test_membership_unchanged_keeps_serial(topo, cert):
    before = topo.catalog_serial()
    soa_before = topo.primary.query(CATALOG + ".", SOA).answer[0][0].serial
    assert soa_before == before
    topo.ctl("zone", "set-kind", "two.example", "native")
    topo.ctl("zone", "set-kind", "two.example", "master")
    time.sleep(1.5)
    assert topo.catalog_serial() == before
    assert topo.primary.query(CATALOG + ".", SOA).answer[0][0].serial == before


def test_zone_add_followed_then_remove_dropped(topo, cert):
    zone = "new.example"
    before = topo.catalog_serial()
    start = time.monotonic()
    topo.ctl("zone", "add", zone)
    after_add = topo.catalog_serial()
    assert after_add != before
    assert zone in topo.member_ids()
    for s in topo.secondaries:
        wait_until(topo, f"{s.name} serves added {zone}", lambda: serves(s, zone))
    # Its records, after cert add (NOTIFY of the member zone, as for any zone).
    topo.ctl("cert", "add", cert.address, cert.pem)
    serial = topo.rows("SELECT serial FROM zones WHERE name = ?", zone)[0][0]
    expected = {cert.data(0, 0)}
    for s in topo.secondaries:
        wait_until(topo, f"{s.name} serves {zone} at {serial}", lambda: serves(s, zone, serial))
        r = s.query(cert.owner, SMIMEA)
        assert r.rcode() == NOERROR and r.answer, topo.explain(f"{s.name}: {r}")
        assert {bytes(x.cert) for x in r.answer[0]} == expected
    # A certificate in an existing member leaves the catalog's serial alone.
    assert topo.catalog_serial() == after_add

    old_id = topo.member_ids()[zone]
    topo.ctl("zone", "remove", zone, "--force")
    assert zone not in topo.member_ids()
    _, _, rest = transferred_catalog(topo)
    assert rest == expected_catalog(topo)
    for s in topo.secondaries:
        wait_until(topo, f"{s.name} drops removed {zone}", lambda: not serves(s, zone))
        assert s.query(zone + ".", SOA).rcode() == REFUSED

    # Added again: a new member, with a new unique id, followed again.
    topo.ctl("zone", "add", zone)
    new_id = topo.member_ids()[zone]
    assert new_id != old_id
    _, _, rest = transferred_catalog(topo)
    assert (f"{new_id}.zones.{CATALOG}.", "PTR", NS_TTL, zone + ".") in rest
    assert not any(r[0].startswith(old_id) for r in rest)
    for s in topo.secondaries:
        wait_until(topo, f"{s.name} serves re-added {zone}", lambda: serves(s, zone))
    print(f"add, remove and add followed in {time.monotonic() - start:.1f} s")


def test_check_config_refuses_catalog_that_is_a_zone(tmp_path):
    store = Store(tmp_path, extra_config=f"catalog: {CATALOG}\n")
    assert store.ctl("check-config").returncode == 0
    added = store.ctl("zone", "add", CATALOG)
    assert "is the catalog zone" in added.stderr
    r = store.ctl("check-config", check=False)
    assert r.returncode != 0
    assert f"{CATALOG} is also a zone in the store" in r.stderr

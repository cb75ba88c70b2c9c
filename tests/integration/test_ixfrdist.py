"""IXFR through PowerDNS's ixfrdist: our store, served by pdns_server (pipe connector) as the
primary, feeding Debian's ixfrdist (pdns-ixfrdist 4.7.3), which feeds a pdns secondary
(gsqlite3, `IXFR` metadata 1). pdns 4.7 serves only AXFR; ixfrdist keeps the last versions of
the zone and serves the difference between them as IXFR.

The zone holds SMIMEA_IXFR_RECORDS certificates ("3 1 1" each; 5,000 by default, 100,000 for
the README's figures), imported from a directory of certificates made by the benchmark's
gen_certs. After the secondary has the zone, ONE certificate is added with `smimea-ctl cert
add` (two records, "3 0 0" and "3 1 1"). Checked:
* an IXFR from ixfrdist from the old serial holds exactly the old SOA (deleted), the new SOA and
  the two SMIMEA records of that address (owner name from hashlib, RDATA from the openssl
  command line);
* the secondary, whose only primary is ixfrdist, took the change by IXFR (its log), not by
  AXFR, and has the two records; it serves them after `pdnsutil rectify-zone` (pdns 4.7.3's
  IXFR-in stores them with auth=0, which this test pins);
* the bytes on the wire of that IXFR and of a full AXFR of the same zone, printed.

ixfrdist 4.7.3 neither takes NOTIFY from the primary nor sends any: it asks the primary for the
SOA every `refresh` seconds of the zone's SOA, and the secondary does the same towards
ixfrdist. The store's SOA refresh is therefore 1 s here.

Knot DNS 3.2 is not the secondary here: after the AXFR that loads the zone, it asks for the SOA
over TCP and sends its IXFR query on the same connection, which ixfrdist 4.7.3 closes after one
answer; every refresh then fails with "connection reset" (test_knot_cannot_refresh_from_ixfrdist
pins it).

Run: SMIMEA_BUILD_DIR=build /usr/bin/python3 -m pytest -q -s tests/integration/test_ixfrdist.py
     (SMIMEA_IXFR_RECORDS=100000 for the large run)
"""
import os
import pathlib
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import dns.message  # noqa: E402
import dns.name  # noqa: E402
import dns.query  # noqa: E402
import dns.rdataclass  # noqa: E402
import dns.rdatatype  # noqa: E402
import dns.rdtypes.ANY.SOA  # noqa: E402

from pdns import ADDRESS, CONNECTORS, LoggedProcess, PdnsServer  # noqa: E402
import smimea_test  # noqa: E402
from smimea_test import BACKEND, CTL, ROOT, Cert, Store, free_port, require  # noqa: E402
from test_transfer import (KnotSecondary, PdnsSecondary, primary_config, smimea_at,  # noqa: E402
                           soa_serial, wait_for)  # noqa: E402

IXFRDIST = shutil.which("ixfrdist") or "/usr/bin/ixfrdist"
KNOTD = shutil.which("knotd") or "/usr/sbin/knotd"
# The benchmark's certificate maker, from the build (with SMIMEA_INSTALLED=1: ROOT/build).
GEN_CERTS = getattr(smimea_test, "BUILD", ROOT / "build") / "tests" / "bench" / "gen_certs"
require(BACKEND, CTL, "/usr/sbin/pdns_server", KNOTD, IXFRDIST, GEN_CERTS)

SOA, SMIMEA = dns.rdatatype.SOA, dns.rdatatype.SMIMEA

RECORDS = int(os.environ.get("SMIMEA_IXFR_RECORDS", "5000"))
# gen_certs OUTDIR N 1 names user<i>@d0.bench.example.
ZONE = "d0.bench.example"
NEW_ADDRESS = f"newcomer@{ZONE}"
NEW_PARAMS = [(3, 0, 0), (3, 1, 1)]

DEFAULT_TTL = 900
# ixfrdist 4.7.3 and Knot both poll their primary's SOA every `refresh` seconds.
SOA_REFRESH = 1
CONFIG_YAML = f"""
default-ttl: {DEFAULT_TTL}
nameservers: [ns1.example.net., ns2.example.org.]
ns-ttl: 1800
soa:
  mname: ns1.example.net.
  rname: hostmaster@example.net
  refresh: {SOA_REFRESH}
  retry: 1
  expire: 604800
  minimum: 120
  ttl: 600
"""

# Loading the zone: the primary's AXFR into ixfrdist, then ixfrdist's into Knot.
LOAD_BOUND = 60 if RECORDS <= 10000 else 600
# One change: the primary's SOA refresh by ixfrdist, its AXFR of the zone and diff, Knot's
# refresh and IXFR.
CHANGE_BOUND = 30 if RECORDS <= 10000 else 300


class Ixfrdist(LoggedProcess):
    """ixfrdist in the foreground as the current user, with its own YAML configuration."""

    name = "ixfrdist"

    def __init__(self, directory, port, zone, primary_port):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.conf = self.dir / "ixfrdist.yml"
        self.logfile = self.dir / "ixfrdist.log"
        (self.dir / "work").mkdir(exist_ok=True)
        self.conf.write_text(
            f"listen:\n  - {ADDRESS}:{port}\n"
            "acl:\n  - 127.0.0.0/8\n"
            f"work-dir: {self.dir / 'work'}\n"
            f"axfr-timeout: {LOAD_BOUND}\n"
            "failed-soa-retry: 1\n"
            "keep: 20\n"
            f"domains:\n  - domain: {zone}\n    master: {ADDRESS}:{primary_port}\n")
        self.proc = None
        self._log = None

    def start(self):
        self.launch([IXFRDIST, "--verbose", "--config", str(self.conf)])
        # It answers nothing for a zone it has not transferred yet: callers wait for the SOA.
        time.sleep(0.2)
        if self.proc.poll() is not None:
            raise AssertionError(f"ixfrdist exited with {self.proc.returncode}\n{self.log()}")



# --------------------------------------------------------------------------------------------
# Transfers over a plain TCP socket, so that the bytes on the wire can be counted


def _read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def transfer(port, zone, rdtype, serial=None, timeout=60.0):
    """Runs an AXFR or IXFR from 127.0.0.1:port. Returns (records, messages, wire_bytes):
    records as (name, ttl, rdata) in the order received, and the sum of the sizes of the
    response messages (each with its 2-byte TCP length). IXFR's query carries an SOA of
    `serial` in its authority section (RFC 1995)."""
    origin = dns.name.from_text(zone)
    q = dns.message.make_query(origin, rdtype, use_edns=False)
    if rdtype == dns.rdatatype.IXFR:
        soa = dns.rdtypes.ANY.SOA.SOA(dns.rdataclass.IN, SOA, dns.name.root, dns.name.root,
                                      serial, 0, 0, 0, 0)
        rrset = q.find_rrset(q.authority, origin, dns.rdataclass.IN, SOA, create=True)
        rrset.add(soa, 0)
    wire = q.to_wire()
    records, messages, total = [], 0, 0
    first_serial = None
    state = "start"
    with socket.create_connection((ADDRESS, port), timeout=timeout) as sock:
        sock.sendall(struct.pack("!H", len(wire)) + wire)
        while state != "done":
            (length,) = struct.unpack("!H", _read_exact(sock, 2))
            data = _read_exact(sock, length)
            messages += 1
            total += 2 + length
            m = dns.message.from_wire(data, xfr=True, origin=None, one_rr_per_rrset=True)
            assert m.rcode() == 0, f"{dns.rdatatype.to_text(rdtype)} {zone}: rcode {m.rcode()}"
            for rrset in m.answer:
                for rd in rrset:
                    records.append((rrset.name, rrset.ttl, rd))
                    is_soa = rd.rdtype == SOA
                    # RFC 1995: SOA(new), then per version SOA(old) deletions SOA(newer)
                    # additions, ending with SOA(new); or the whole zone, AXFR style.
                    if state == "start":
                        assert is_soa, f"transfer does not start with an SOA: {rd}"
                        first_serial = rd.serial
                        state = "axfr" if rdtype == dns.rdatatype.AXFR else "second"
                    elif state == "second":
                        state = "del" if is_soa and rd.serial != first_serial else "axfr"
                        if is_soa and rd.serial == first_serial:
                            state = "done"  # up to date: SOA, SOA
                    elif state == "del":
                        state = "add" if is_soa else "del"
                    elif state == "add":
                        if is_soa:
                            state = "done" if rd.serial == first_serial else "del"
                    elif state == "axfr":
                        if is_soa:
                            state = "done"
                    else:
                        raise AssertionError(f"records after the final SOA: {rd}")
            if not m.answer and state != "done":
                raise AssertionError(f"empty message in the transfer: {m}")
    return records, messages, total


def ixfr_diff(records):
    """(old SOA, new SOA, deletions, additions) of a single-version IXFR; fails otherwise."""
    assert len(records) >= 4, f"not an incremental transfer: {records}"
    soas = [i for i, (_, _, rd) in enumerate(records) if rd.rdtype == SOA]
    # SOA(new), SOA(old), deletions..., SOA(new), additions..., SOA(new)
    assert len(soas) == 4 and soas[0] == 0 and soas[1] == 1 and soas[3] == len(records) - 1, \
        f"not one IXFR version (SOA positions {soas} of {len(records)} records)"
    new, old, mid = records[0][2], records[1][2], records[soas[2]][2]
    assert mid == new and records[-1][2] == new
    deletions = records[2:soas[2]]
    additions = records[soas[2] + 1:-1]
    return old, new, deletions, additions


# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    d = tmp_path_factory.mktemp("ixfrdist")
    processes = []
    (d / "store").mkdir()
    store = Store(d / "store", extra_config=CONFIG_YAML)
    try:
        store.ctl("zone", "add", ZONE)
        certs = d / "certs"
        certs.mkdir()
        start = time.monotonic()
        subprocess.run([str(GEN_CERTS), str(certs), str(RECORDS), "1"], check=True,
                       capture_output=True, timeout=1800)
        generated = time.monotonic() - start
        store.ctl("cert", "import", "--record", "3 1 1", certs)
        imported = time.monotonic() - start - generated
        shutil.rmtree(certs)
        print(f"\n{RECORDS} certificates made in {generated:.1f} s, imported in {imported:.1f} s")

        connector = CONNECTORS["pipe"]
        (d / "backend").mkdir()
        # No also-notify: ixfrdist 4.7 does not act on NOTIFY; it polls the SOA.
        primary = PdnsServer(connector(store, d / "backend"), d / "primary",
                             extra_config=primary_config(connector, [], "127.0.0.0/8"))
        primary.start()
        processes.append(primary)

        ixfr_port = free_port()
        while ixfr_port == primary.port:
            ixfr_port = free_port()
        ixfrdist = Ixfrdist(d / "ixfrdist", ixfr_port, ZONE, primary.port)
        ixfrdist.start()
        processes.append(ixfrdist)
        serial = soa_serial(primary.port, ZONE)
        assert serial, primary.explain("the primary does not serve the zone")
        _, took = wait_for("ixfrdist has the zone", lambda: serial_at(ixfr_port) == serial,
                           LOAD_BOUND, ixfrdist.log)
        print(f"ixfrdist loaded the zone in {took:.1f} s")

        secondary_port = free_port()
        while secondary_port in (primary.port, ixfr_port):
            secondary_port = free_port()
        secondary = PdnsSecondary(d / "secondary", secondary_port)
        secondary.add_zone(ZONE, ixfr_port)  # ixfrdist is its only primary
        secondary.pdnsutil("set-meta", ZONE, "IXFR", "1")
        secondary.start()
        processes.append(secondary)
        _, took = wait_for("the secondary has the zone",
                           lambda: serial_at(secondary_port) == serial, LOAD_BOUND,
                           secondary.log)
        print(f"the secondary loaded the zone from ixfrdist in {took:.1f} s")
        yield {"dir": d, "store": store, "primary": primary, "ixfrdist": ixfrdist,
               "secondary": secondary, "serial": serial}
    finally:
        for p in reversed(processes):
            try:
                p.stop()
            except Exception:  # noqa: BLE001 - stop the others anyway
                pass
        store.cleanup()


def serial_at(port):
    """The zone's SOA serial at 127.0.0.1:port, or None. ixfrdist closes the TCP connection
    without an answer while it has no copy of the zone."""
    try:
        return soa_serial(port, ZONE)
    except EOFError:
        return None


def log_since(path, offset):
    return pathlib.Path(path).read_bytes()[offset:].decode(errors="replace")


def test_one_certificate_reaches_the_secondary_as_an_ixfr_of_that_change_only(chain, tmp_path):
    primary, ixfrdist, secondary = chain["primary"], chain["ixfrdist"], chain["secondary"]
    old = chain["serial"]
    cert = Cert(tmp_path, NEW_ADDRESS)
    expected = {(cert.owner, u, s, m, cert.data(s, m)) for (u, s, m) in NEW_PARAMS}
    assert len(expected) == 2

    log_offset = secondary.server.log.stat().st_size
    start = time.monotonic()
    record_args = []
    for params in NEW_PARAMS:
        record_args += ["--record", " ".join(map(str, params))]
    chain["store"].ctl("cert", "add", NEW_ADDRESS, cert.pem, *record_args)
    new = soa_serial(primary.port, ZONE)
    assert new and new != old, primary.explain(f"the serial did not move from {old}")

    def explain():
        return "\n\n".join([ixfrdist.log(), secondary.log()])

    _, at_ixfrdist = wait_for("ixfrdist has the new serial",
                              lambda: serial_at(ixfrdist.port) == new, CHANGE_BOUND, explain)
    wait_for("the secondary has the new serial", lambda: serial_at(secondary.port) == new,
             CHANGE_BOUND, explain)
    at_secondary = time.monotonic() - start
    print(f"\ncert add -> ixfrdist: {at_ixfrdist:.1f} s, -> secondary: {at_secondary:.1f} s")

    # The IXFR ixfrdist serves from the old serial: that change and nothing else.
    records, ixfr_messages, ixfr_bytes = transfer(ixfrdist.port, ZONE, dns.rdatatype.IXFR,
                                                  serial=old)
    old_soa, new_soa, deletions, additions = ixfr_diff(records)
    assert (old_soa.serial, new_soa.serial) == (old, new)
    assert deletions == [], f"records deleted by the IXFR: {deletions}"
    got = {(name.to_text().lower(), rd.usage, rd.selector, rd.mtype, bytes(rd.cert))
           for name, _, rd in additions if rd.rdtype == SMIMEA}
    assert len(additions) == len(got) == 2, f"additions: {additions}"
    assert got == expected
    assert all(ttl == DEFAULT_TTL for _, ttl, _ in additions)

    # The secondary took it as an IXFR, not as an AXFR, and serves it.
    log = log_since(secondary.server.log, log_offset)
    assert f"IXFR-in zone: '{ZONE}', primary: '{ADDRESS}', got 1 delta, zone committed with " \
        f"serial {new}" in log, f"no incoming IXFR:\n{log}"
    assert "AXFR-in" not in log and "starting AXFR" not in log, \
        f"the secondary transferred the whole zone:\n{log}"
    with sqlite3.connect(secondary.server.connector.db) as con:
        rows = con.execute("SELECT content FROM records WHERE name = ? AND type = 'SMIMEA'",
                           (cert.owner.rstrip("."),)).fetchall()
    con.close()
    assert len(rows) == 2, rows
    # pdns 4.7.3 stores the records an IXFR adds with auth=0 and does not rectify the zone
    # (slavecommunicator.cc, ixfrSuck): they are not served until `pdnsutil rectify-zone`.
    rcode, data = smimea_at(secondary.port, cert.owner)
    assert not data, "pdns's IXFR-in now serves new records without a rectify: update the README"
    secondary.pdnsutil("rectify-zone", ZONE)
    rcode, data = smimea_at(secondary.port, cert.owner)
    assert rcode == 0 and data == {e[1:] for e in expected}, secondary.log()

    # Bytes on the wire: this IXFR against a full AXFR of the same zone, both from ixfrdist.
    axfr_records, axfr_messages, axfr_bytes = transfer(ixfrdist.port, ZONE, dns.rdatatype.AXFR)
    # SOA, 2 NS, the imported records, the 2 new ones, SOA
    assert len(axfr_records) == RECORDS + 6, len(axfr_records)
    print(f"zone of {RECORDS + 2} SMIMEA records ({len(axfr_records)} records in the AXFR): "
          f"IXFR of one added certificate {ixfr_bytes} bytes in {ixfr_messages} messages, "
          f"AXFR {axfr_bytes} bytes in {axfr_messages} messages "
          f"({axfr_bytes / ixfr_bytes:.0f}x)")
    # The IXFR's size does not depend on the zone's: 4 SOA and the 2 new records.
    assert ixfr_bytes < 2000 and axfr_bytes > RECORDS * 50


def test_knot_cannot_refresh_from_ixfrdist(chain, tmp_path):
    """Pins why Knot is not the secondary above: Knot 3.2 loads the zone from ixfrdist 4.7.3
    (an AXFR, its first query on the connection), but a later refresh asks for the SOA over TCP
    and sends the IXFR query on the same connection, which ixfrdist has closed."""
    ixfrdist, primary = chain["ixfrdist"], chain["primary"]
    port = free_port()
    while port in (primary.port, ixfrdist.port, chain["secondary"].port):
        port = free_port()
    knot = KnotSecondary(tmp_path / "knot", port)
    knot.add_zone(ZONE, ixfrdist.port)
    knot.start()
    try:
        loaded = serial_at(ixfrdist.port)
        wait_for("Knot has the zone", lambda: serial_at(port) == loaded, LOAD_BOUND, knot.log)
        cert = Cert(tmp_path, f"knot-pin@{ZONE}")
        chain["store"].ctl("cert", "add", cert.address, cert.pem)
        new = soa_serial(primary.port, ZONE)
        wait_for("ixfrdist has the new serial", lambda: serial_at(ixfrdist.port) == new,
                 CHANGE_BOUND, ixfrdist.log)
        wait_for("Knot's refresh fails", lambda: "failed (connection reset)" in
                 knot.logfile.read_text(errors="replace"), CHANGE_BOUND, knot.log)
        assert serial_at(port) == loaded, \
            "Knot now follows ixfrdist: make it the secondary of the test above\n" + knot.log()
    finally:
        knot.stop()

"""DNSSEC end to end: pdns_server signs SMIMEA answers with keys kept in our store (the remote
backend with remote-dnssec=yes over the unix and pipe connectors, and the native module), or,
in overlay mode, with the keys of the backend that owns the zone (gsqlite3). A real validating
resolver, unbound on loopback with the zone's DS (from pdnsutil export-zone-ds) as its only
trust anchor, must accept the answers as secure (AD), and must fail them with a wrong anchor or
when a proxy alters the RDATA. Then the S/MIME round trip: a sender who knows only an address
fetches the certificate with `smimea-ctl lookup`, encrypts with `openssl cms`, and the owner
decrypts.

Expected values come from openssl, the resolver's verdict (AD bit, SERVFAIL) and the canonical
order of RFC 4034 section 6.1 as dnspython implements it, never from our own output.

Run: SMIMEA_BUILD_DIR=build /usr/bin/python3 -m pytest -q tests/integration/test_dnssec.py
"""
import json
import os
import pathlib
import random
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import types

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import dns.dnssec  # noqa: E402
import dns.exception  # noqa: E402
import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.name  # noqa: E402
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402

from pdns import (ADDRESS, CONNECTORS, PdnsServer, sqlite_schema_file,  # noqa: E402
                  stop_process)
from smimea_test import (BACKEND, CTL, Cert, Store, free_port, make_cert, openssl,  # noqa: E402
                         owner_name, require, run)

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"
require(BACKEND, CTL, "/usr/sbin/pdns_server", UNBOUND)

NOERROR, NXDOMAIN, SERVFAIL = dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.SERVFAIL
SMIMEA = dns.rdatatype.SMIMEA
NSEC = dns.rdatatype.NSEC

CONFIG_YAML = """
nameservers: [ns1.example.net.]
soa:
  mname: ns1.example.net.
  rname: hostmaster@example.net
  minimum: 60
"""

# Our signed zones: name -> (denial, form). Domain-form zones have the _smimecert empty
# non-terminal; in subzone form _smimecert.<domain> is the apex.
NARROW = "nsec3-narrow"
ZONES = {
    "example.com": NARROW,
    "_smimecert.example.org": NARROW,
    "nsec.example": "nsec",
    "_smimecert.nsec2.example": "nsec",
    "roll.example": NARROW,
    "wide.example": "nsec3-wide",
}
# Who is published where, and with which records.
PEOPLE = {
    "alice": ("alice@example.com", "rsa", ["3 0 0"]),
    "bob": ("bob@example.com", "ec", ["3 1 1"]),
    "carol": ("carol@example.org", "ec", ["3 0 0"]),
    "dave": ("dave@nsec.example", "ec", ["3 0 0"]),
    "erin": ("erin@nsec.example", "ec", ["3 0 0"]),
    "frank": ("frank@nsec2.example", "ec", ["3 0 0"]),
    "gina": ("gina@roll.example", "ec", ["3 0 0"]),
    "hank": ("hank@wide.example", "ec", ["3 0 0"]),
}
CONNECTOR_NAMES = list(CONNECTORS)


# --------------------------------------------------------------------------------------------
# Expected values, computed without our code


def random_owner(domain, seed):
    return f"{random.Random(seed).getrandbits(224):056x}._smimecert.{domain}."


def zone_of(address):
    """The zone of ours holding an address's owner (the most specific one)."""
    domain = address.rsplit("@", 1)[1]
    return "_smimecert." + domain if "_smimecert." + domain in ZONES else domain


# --------------------------------------------------------------------------------------------
# A validating resolver and a tampering proxy


class Unbound:
    """unbound on 127.0.0.1 with stub zones pointing at our pdns, validating with only the
    trust anchors given (DS or DNSKEY lines, zone-file format)."""

    def __init__(self, directory, stubs, anchors):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.stubs = stubs  # zone -> port
        self.anchor_file = self.dir / "anchors"
        self.anchor_file.write_text(anchors)
        self.log = self.dir / "unbound.log"
        self.port = None
        self.proc = None

    def config_text(self):
        lines = [
            "server:",
            "  interface: 127.0.0.1",
            f"  port: {self.port}",
            "  do-ip6: no",
            "  num-threads: 1",
            "  username: \"\"",
            "  chroot: \"\"",
            f"  directory: \"{self.dir}\"",
            "  pidfile: \"\"",
            "  use-syslog: no",
            f"  logfile: \"{self.log}\"",
            "  verbosity: 1",
            "  val-log-level: 2",
            "  do-not-query-localhost: no",
            "  module-config: \"validator iterator\"",
            f"  trust-anchor-file: \"{self.anchor_file}\"",
            # Every answer must come from pdns, not from what an earlier one proved.
            "  aggressive-nsec: no",
            "  qname-minimisation: no",
            "  harden-referral-path: no",
        ]
        for zone, port in self.stubs.items():
            lines += ["stub-zone:", f"  name: \"{zone}\"", f"  stub-addr: 127.0.0.1@{port}"]
        return "\n".join(lines) + "\n"

    def start(self, attempts=3):
        for _ in range(attempts):
            self.port = free_port()
            conf = self.dir / "unbound.conf"
            conf.write_text(self.config_text())
            self.proc = subprocess.Popen([UNBOUND, "-d", "-c", str(conf)],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 10
            probe = dns.message.make_query("version.server", "TXT", "CH")
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    dns.query.udp(probe, ADDRESS, port=self.port, timeout=0.3)
                    return self
                except (dns.exception.Timeout, OSError):
                    time.sleep(0.05)
            stop_process(self.proc)  # port taken, or slow: try another port
        raise AssertionError(f"unbound did not start:\n{self.log_text()}")

    def stop(self):
        stop_process(self.proc)
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"

    def query(self, name, rdtype):
        q = dns.message.make_query(name, rdtype, want_dnssec=True)
        return dns.query.tcp(q, ADDRESS, port=self.port, timeout=10)

    @property
    def server(self):
        return f"{ADDRESS}:{self.port}"


class TamperProxy:
    """A DNS proxy on 127.0.0.1 (UDP and TCP) in front of pdns that flips one octet in the
    middle of `needle` wherever it appears in an answer: an attacker on the path."""

    def __init__(self, upstream_port, needle):
        self.upstream = (ADDRESS, upstream_port)
        self.needle = needle
        self.altered = 0
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        while True:
            self.port = free_port()
            try:
                self.udp.bind((ADDRESS, self.port))
                self.tcp.bind((ADDRESS, self.port))
                break
            except OSError:
                self.udp.close()
                self.tcp.close()
                self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.listen(16)
        self._stop = False
        for loop in (self._udp_loop, self._tcp_loop):
            threading.Thread(target=loop, daemon=True).start()

    def tamper(self, wire):
        i = wire.find(self.needle)
        if i < 0:
            return wire
        self.altered += 1
        j = i + len(self.needle) // 2
        return wire[:j] + bytes([wire[j] ^ 0x01]) + wire[j + 1:]

    def _udp_loop(self):
        while not self._stop:
            try:
                data, client = self.udp.recvfrom(65535)
            except OSError:
                return
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
                up.settimeout(5)
                up.sendto(data, self.upstream)
                try:
                    answer, _ = up.recvfrom(65535)
                except OSError:
                    continue
            self.udp.sendto(self.tamper(answer), client)

    @staticmethod
    def _read_exact(sock, n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def _serve(self, client):
        with client, socket.create_connection(self.upstream, timeout=10) as up:
            try:
                while True:
                    length = self._read_exact(client, 2)
                    query = self._read_exact(client, int.from_bytes(length, "big"))
                    up.sendall(length + query)
                    n = int.from_bytes(self._read_exact(up, 2), "big")
                    answer = self.tamper(self._read_exact(up, n))
                    client.sendall(len(answer).to_bytes(2, "big") + answer)
            except (EOFError, OSError):
                return

    def _tcp_loop(self):
        while not self._stop:
            try:
                client, _ = self.tcp.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def close(self):
        self._stop = True
        for s in (self.udp, self.tcp):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


# --------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def people(tmp_path_factory):
    d = tmp_path_factory.mktemp("people")
    return {who: Cert(d, addr, key=key) for who, (addr, key, _) in PEOPLE.items()}


class Env:
    """A store with the ZONES, a pdns signing them, and resolvers anchored at their DS."""

    def __init__(self, name, directory, store, server):
        self.name = name
        self.dir = pathlib.Path(directory)
        self.store = store
        self.server = server
        self._resolver = None
        self._count = 0

    def pdnsutil(self, *args, check=True):
        return self.server.pdnsutil(*args, check=check)

    def ds(self, *zones):
        """The DS lines pdnsutil export-zone-ds prints for zones."""
        return "".join(self.pdnsutil("export-zone-ds", z).stdout for z in zones)

    def new_resolver(self, anchors=None, stubs=None):
        """A fresh unbound (empty cache); default anchors: the DS of every zone."""
        self._count += 1
        zones = list(stubs or {})
        stubs = stubs or {z: self.server.port for z in ZONES}
        if anchors is None:
            anchors = self.ds(*(zones or ZONES))
        return Unbound(self.dir / f"unbound-{self._count}", stubs, anchors)

    @property
    def resolver(self):
        """One shared resolver for the read-only checks."""
        if self._resolver is None:
            self._resolver = self.new_resolver().start()
        return self._resolver

    def close(self):
        if self._resolver:
            self._resolver.stop()

    def why(self, what, response=None, resolver=None):
        text = self.server.explain(what, response)
        resolver = resolver or self._resolver
        if resolver is not None:
            text += f"\n\nunbound log ({resolver.log}):\n{resolver.log_text()}"
        return text


def dnssec_server(connector, directory, *, before=(), extra_config=()):
    """PdnsServer with DNSSEC on for our backend, and the key and metadata caches off so that
    every pdnsutil change shows at once."""
    extra = list(extra_config) + ["zone-metadata-cache-ttl=0", "dnssec-key-cache-ttl=0"]
    if connector.launch == "remote":
        extra.append("remote-dnssec=yes")
    return PdnsServer(connector, directory, before=before, extra_config=extra)


@pytest.fixture(scope="module", params=CONNECTOR_NAMES)
def signed(request, people, tmp_path_factory):
    name = request.param
    reason = CONNECTORS[name].unavailable()
    if reason:
        pytest.skip(reason)
    d = tmp_path_factory.mktemp(f"dnssec-{name}")
    store = Store(d, extra_config=CONFIG_YAML)
    for zone in ZONES:
        store.ctl("zone", "add", zone)
    for who, (address, _, records) in PEOPLE.items():
        args = []
        for r in records:
            args += ["--record", r]
        store.ctl("cert", "add", address, people[who].pem, *args)
    (d / "backend").mkdir()
    server = dnssec_server(CONNECTORS[name](store, d / "backend"), d / "pdns")
    server.start()
    env = Env(name, d, store, server)
    try:
        for zone, denial in ZONES.items():
            env.pdnsutil("secure-zone", zone)
            if denial == NARROW:
                env.pdnsutil("set-nsec3", zone, "1 0 0 -", "narrow")
            elif denial == "nsec3-wide":
                env.pdnsutil("set-nsec3", zone, "1 0 0 -")
        yield env
    finally:
        env.close()
        server.stop()
        store.cleanup()


def store_rows(env, sql, *args):
    with sqlite3.connect(env.store.db) as con:
        rows = con.execute(sql, args).fetchall()
    con.close()
    return rows


def assert_secure(env, r, rcode, what, resolver=None):
    assert r.rcode() == rcode, env.why(f"{what}: rcode {dns.rcode.to_text(r.rcode())}", r,
                                       resolver)
    assert r.flags & dns.flags.AD, env.why(f"{what}: not validated (no AD)", r, resolver)


def smimea_data(r, name):
    out = set()
    for rrset in r.answer:
        if rrset.rdtype == SMIMEA and rrset.name == dns.name.from_text(name):
            out |= {(rd.usage, rd.selector, rd.mtype, bytes(rd.cert)) for rd in rrset}
    return out


# --------------------------------------------------------------------------------------------
# pdnsutil against our store


def test_secure_zone_puts_one_active_key_per_zone_in_the_store(signed):
    rows = store_rows(signed, "SELECT z.name, k.flags, k.active, k.published, k.content FROM "
                              "domain_keys k JOIN zones z ON z.id = k.zone_id ORDER BY z.name")
    assert sorted(r[0] for r in rows) == sorted(ZONES), rows
    for zone, flags, active, published, content in rows:
        assert (flags, active, published) == (257, 1, 1), (zone, flags, active, published)
        assert content.startswith("Private-key-format: v1.2\n"), zone
    out = signed.pdnsutil("show-zone", "example.com").stdout
    assert re.search(r"ID = \d+ \(CSK\), flags = 257.*Active.*Published", out), out


def test_private_keys_are_not_logged(signed):
    secret = store_rows(signed, "SELECT content FROM domain_keys")[0][0]
    line = next(x for x in secret.splitlines() if x.startswith("PrivateKey:"))
    material = line.split(":", 1)[1].strip()
    logs = signed.server.log.read_text(errors="replace") + signed.server.connector.logs()
    assert material not in logs


def test_set_nsec3_narrow_is_kept_as_metadata(signed):
    rows = store_rows(signed, "SELECT m.kind, m.content FROM domain_metadata m JOIN zones z ON "
                              "z.id = m.zone_id WHERE z.name = 'example.com' ORDER BY m.kind")
    assert rows == [("NSEC3NARROW", "1"), ("NSEC3PARAM", "1 0 0 -")], rows
    out = signed.pdnsutil("show-zone", "example.com").stdout
    assert "NARROW hashed NSEC3" in out, out
    assert "NSEC semantics" in signed.pdnsutil("show-zone", "nsec.example").stdout


@pytest.mark.parametrize("zone", [z for z in ZONES if z != "roll.example"])
def test_check_zone_finds_no_errors(signed, zone):
    r = signed.pdnsutil("check-zone", zone, check=False)
    text = r.stdout + r.stderr
    assert r.returncode == 0 and re.search(r"\b0 errors\b", text), text


def test_export_zone_ds_matches_the_served_dnskey(signed):
    for zone in ("example.com", "nsec.example"):
        q = dns.message.make_query(zone, "DNSKEY", want_dnssec=True)
        r = dns.query.tcp(q, ADDRESS, port=signed.server.port, timeout=5)
        keys = [rd for rrset in r.answer if rrset.rdtype == dns.rdatatype.DNSKEY for rd in rrset]
        assert keys, signed.why(f"no DNSKEY for {zone}", r)
        want = {dns.dnssec.make_ds(zone + ".", k, "SHA256").to_text()
                for k in keys if k.flags == 257}
        got = set()
        for line in signed.ds(zone).splitlines():
            fields = line.split(";")[0].split()
            if fields and fields[5] == "2":  # name IN DS tag algorithm digest-type digest
                got.add(" ".join(fields[3:]))
        assert got == want, (got, want)


def test_clear_zone_is_refused_and_the_records_stay(signed, people):
    r = signed.pdnsutil("clear-zone", "nsec.example", check=False)
    assert r.returncode != 0, r.stdout + r.stderr
    ans = signed.server.query(people["dave"].owner, SMIMEA, tcp=True)
    assert ans.rcode() == NOERROR and smimea_data(ans, people["dave"].owner), signed.why("dave")


# --------------------------------------------------------------------------------------------
# A validating resolver accepts the answers


@pytest.mark.parametrize("who", ["alice", "bob", "carol", "dave", "erin", "frank"])
def test_positive_answer_is_secure(signed, people, who):
    p = people[who]
    r = signed.resolver.query(p.owner, SMIMEA)
    assert_secure(signed, r, NOERROR, f"{who} SMIMEA")
    want = {(int(u), int(s), int(m), p.data(int(s), int(m)))
            for u, s, m in (rec.split() for rec in PEOPLE[who][2])}
    assert smimea_data(r, p.owner) == want, signed.why("data", r)


@pytest.mark.parametrize("zone", ["example.com", "_smimecert.example.org", "nsec.example",
                                  "_smimecert.nsec2.example"])
def test_nxdomain_under_smimecert_is_secure(signed, zone):
    domain = zone.replace("_smimecert.", "")
    for seed in (1, 2, 3):
        r = signed.resolver.query(random_owner(domain, seed), SMIMEA)
        assert_secure(signed, r, NXDOMAIN, f"unknown owner in {zone}")


@pytest.mark.parametrize("zone", ["example.com", "nsec.example"])
def test_nodata_at_smimecert_is_secure(signed, zone):
    r = signed.resolver.query(f"_smimecert.{zone}.", SMIMEA)
    assert_secure(signed, r, NOERROR, f"_smimecert.{zone}")
    assert not r.answer, signed.why("NODATA expected", r)


@pytest.mark.parametrize("who", ["alice", "dave", "frank"])
def test_nodata_at_owner_is_secure(signed, people, who):
    r = signed.resolver.query(people[who].owner, "TXT")
    assert_secure(signed, r, NOERROR, f"TXT at {who}'s owner")
    assert not r.answer


def test_apex_and_dnskey_are_secure(signed):
    for zone in ZONES:
        r = signed.resolver.query(zone + ".", "DNSKEY")
        assert_secure(signed, r, NOERROR, f"DNSKEY {zone}")
        r = signed.resolver.query(zone + ".", "SOA")
        assert_secure(signed, r, NOERROR, f"SOA {zone}")


# --------------------------------------------------------------------------------------------
# Plain NSEC: the chain served must be the zone's names in canonical order


def nsec_zone_names(zone, people):
    """Every name of an NSEC zone of ours, sorted canonically by dnspython."""
    apex = dns.name.from_text(zone)
    names = {apex}
    for who, (address, _, _) in PEOPLE.items():
        if zone_of(address) == zone:
            names.add(dns.name.from_text(people[who].owner))
    if not zone.startswith("_smimecert."):
        names.add(dns.name.from_text("_smimecert." + zone))
    return sorted(names)  # dns.name.Name orders canonically (RFC 4034 section 6.1)


def covering(names, qname):
    """The (owner, next) of the NSEC covering a name that does not exist."""
    qname = dns.name.from_text(qname)
    before = [n for n in names if n < qname]
    owner = before[-1] if before else names[-1]
    nxt = names[(names.index(owner) + 1) % len(names)]
    return owner, nxt


def nsec_records(r):
    return {(rrset.name, rd.next) for rrset in r.authority if rrset.rdtype == NSEC for rd in rrset}


@pytest.mark.parametrize("zone", ["nsec.example", "_smimecert.nsec2.example"])
def test_nsec_denials_follow_canonical_order(signed, people, zone):
    names = nsec_zone_names(zone, people)
    domain = zone.replace("_smimecert.", "")
    probes = [random_owner(domain, s) for s in range(4)]
    probes += [f"0._smimecert.{domain}.", f"zzz._smimecert.{domain}.", f"www.{zone}.",
               f"0www.{zone}.", f"a.b.{people['dave' if domain == zone else 'frank'].owner}",
               f"*._smimecert.{domain}.", f"_t.{zone}.", f"-.{zone}."]
    if zone == domain:  # around the _smimecert label itself (one byte longer, one shorter)
        probes += [f"_smimecerta.{zone}.", f"_smimecer.{zone}.", f"x._smimecerta.{zone}."]
    for qname in probes:
        # pdns itself: the NSEC covering the name must be the one canonical order gives.
        q = dns.message.make_query(qname, SMIMEA, want_dnssec=True)
        r = dns.query.tcp(q, ADDRESS, port=signed.server.port, timeout=5)
        assert r.rcode() == NXDOMAIN, signed.why(qname, r)
        assert covering(names, qname) in nsec_records(r), signed.why(
            f"{qname}: expected NSEC {covering(names, qname)}", r)
        # And the resolver validates the proof.
        assert_secure(signed, signed.resolver.query(qname, SMIMEA), NXDOMAIN, qname)


def test_nsec_nodata_names_the_existing_name(signed, people):
    names = nsec_zone_names("nsec.example", people)
    for qname in ("_smimecert.nsec.example.", people["erin"].owner, "nsec.example."):
        q = dns.message.make_query(qname, "TXT", want_dnssec=True)
        r = dns.query.tcp(q, ADDRESS, port=signed.server.port, timeout=5)
        n = dns.name.from_text(qname)
        nxt = names[(names.index(n) + 1) % len(names)]
        assert r.rcode() == NOERROR and (n, nxt) in nsec_records(r), signed.why(qname, r)
        assert_secure(signed, signed.resolver.query(qname, "TXT"), NOERROR, qname)


def test_delv_fully_validates(signed, people, tmp_path):
    delv = shutil.which("delv")
    if delv is None:
        pytest.skip("delv is not installed")
    anchors = tmp_path / "anchors"
    lines = []
    for line in signed.ds("nsec.example").splitlines():
        f = line.split(";")[0].split()
        if f and f[5] == "2":  # delv wants "trust-anchors { name static-ds ... };"
            lines.append(f'  {f[0]} static-ds {f[3]} {f[4]} {f[5]} "{f[6]}";')
    anchors.write_text("trust-anchors {\n" + "\n".join(lines) + "\n};\n")
    for qname, rdtype in ((people["dave"].owner, "SMIMEA"), (random_owner("nsec.example", 9),
                                                              "SMIMEA")):
        r = run([delv, "-a", anchors, "+root=nsec.example", f"@{ADDRESS}", "-p",
                 str(signed.server.port), "+tcp", qname, rdtype], check=False)
        assert "fully validated" in r.stdout, r.stdout + r.stderr


# --------------------------------------------------------------------------------------------
# Validation is really on


def wrong_anchors(ds_text):
    """The same DS lines with one digest digit changed."""
    out = []
    for line in ds_text.splitlines():
        f = line.split(";")[0].split()
        if len(f) >= 7:
            digest = f[6]
            f[6] = ("1" if digest[0] != "1" else "2") + digest[1:]
            out.append(" ".join(f))
    return "\n".join(out) + "\n"


def test_wrong_trust_anchor_fails_the_same_queries(signed, people):
    with signed.new_resolver(anchors=wrong_anchors(signed.ds(*ZONES))) as bad:
        for qname, rdtype in ((people["alice"].owner, "SMIMEA"),
                              (random_owner("example.com", 5), "SMIMEA"),
                              ("_smimecert.example.com.", "SMIMEA"),
                              (people["dave"].owner, "SMIMEA"),
                              (random_owner("nsec.example", 5), "SMIMEA")):
            r = bad.query(qname, rdtype)
            assert r.rcode() == SERVFAIL, signed.why(f"{qname} with a wrong anchor", r, bad)
        assert "validation failure" in bad.log_text(), bad.log_text()


def test_non_narrow_nsec3_is_refused_with_a_clear_message(signed, people):
    r = signed.resolver.query(people["hank"].owner, SMIMEA)
    assert_secure(signed, r, NOERROR, "positive answers need no denial")
    r = signed.resolver.query(random_owner("wide.example", 1), SMIMEA)
    assert r.rcode() == SERVFAIL and not r.flags & dns.flags.AD, signed.why("wide NSEC3", r)
    # pdns's log (pipe, native) or smimea-backend's own (unix)
    text = signed.server.log.read_text(errors="replace") + signed.server.connector.logs()
    assert "set-nsec3 wide.example '1 0 0 -' narrow" in text, text[-3000:]


# --------------------------------------------------------------------------------------------
# Key rollover (CSK, double signature) on roll.example


def key_ids(env, zone):
    out = env.pdnsutil("list-keys", zone).stdout
    return [int(m.group(1)) for m in re.finditer(r"\s(\d+)\s+cryptokeys", out)]


def test_key_rollover(signed, people):
    zone, who = "roll.example", people["gina"]
    old_ds = signed.ds(zone)
    [old] = key_ids(signed, zone)

    def check(anchors, rcode=NOERROR, secure=True, what=""):
        with signed.new_resolver(anchors=anchors, stubs={zone: signed.server.port}) as u:
            r = u.query(who.owner, SMIMEA)
            if secure:
                assert_secure(signed, r, rcode, what, u)
                assert smimea_data(r, who.owner) == {(3, 0, 0, who.der)}
            else:
                assert r.rcode() == SERVFAIL, signed.why(what, r, u)

    # 1. A new key, published but inactive: it is in the DNSKEY set but signs nothing, so its
    #    DS alone does not validate yet.
    new = int(signed.pdnsutil("add-zone-key", zone, "ksk", "inactive", "published",
                              "ecdsa256").stdout.split()[-1])
    assert sorted(key_ids(signed, zone)) == sorted([old, new])
    new_ds = "".join(line + "\n" for line in signed.ds(zone).splitlines()
                     if line not in old_ds.splitlines())
    assert new_ds.strip(), "export-zone-ds shows no new DS"
    check(old_ds, what="old DS, new key published")
    check(new_ds, secure=False, what="new DS, new key not active yet")
    # 2. Activated: both keys sign, either DS validates.
    signed.pdnsutil("activate-zone-key", zone, str(new))
    check(old_ds, what="old DS during the rollover")
    check(new_ds, what="new DS during the rollover")
    # 3. The old key stops signing, then goes: only the new DS still leads to a valid key.
    signed.pdnsutil("deactivate-zone-key", zone, str(old))
    check(new_ds, what="new DS, old key inactive")
    signed.pdnsutil("unpublish-zone-key", zone, str(old))
    signed.pdnsutil("remove-zone-key", zone, str(old))
    assert key_ids(signed, zone) == [new]
    rows = store_rows(signed, "SELECT k.id FROM domain_keys k JOIN zones z ON z.id = k.zone_id "
                              "WHERE z.name = ?", zone)
    assert rows == [(new,)], rows
    check(new_ds, what="new DS after the rollover")
    check(old_ds, secure=False, what="old DS after the rollover")
    r = signed.pdnsutil("check-zone", zone, check=False)
    assert r.returncode == 0 and re.search(r"\b0 errors\b", r.stdout + r.stderr), r.stdout


# --------------------------------------------------------------------------------------------
# The S/MIME round trip through DNS


def sender_gets_certificate(address, server, anchors):
    """What a careful sending client does: look the address up through a validating resolver
    and take the certificate of a 3 0 0 record only if the lookup is secure. Returns
    (der or None, lookup output, exit status)."""
    r = run([CTL, "--json", "lookup", address, "--server", server, "--trust-anchor", anchors],
            check=False)
    out = json.loads(r.stdout) if r.stdout.strip() else {}
    if r.returncode != 0 or out.get("status") != "secure":
        return None, out, r.returncode
    for owner in out["owners"]:
        for rec in owner["records"]:
            if (rec["usage"], rec["selector"], rec["matching_type"]) == (3, 0, 0):
                return bytes.fromhex(rec["data"]), out, r.returncode
    return None, out, r.returncode


def encrypt_and_decrypt(tmp_path, der, recipient):
    message = tmp_path / "message.txt"
    plain = b"Subject: SMIMEA round trip\r\n\r\nMeet at noon. " + os.urandom(16).hex().encode()
    message.write_bytes(plain)
    cert_der = tmp_path / "recipient.der"
    cert_der.write_bytes(der)
    cert_pem = tmp_path / "recipient.pem"
    openssl("x509", "-inform", "DER", "-in", cert_der, "-out", cert_pem)
    encrypted = tmp_path / "message.p7m"
    openssl("cms", "-encrypt", "-aes256", "-in", message, "-out", encrypted, cert_pem)
    assert plain not in encrypted.read_bytes()
    decrypted = tmp_path / "decrypted.txt"
    openssl("cms", "-decrypt", "-in", encrypted, "-out", decrypted, "-inkey", recipient.key,
            "-recip", recipient.pem)
    return plain, decrypted.read_bytes()


def anchors_file(tmp_path, text, name="anchors"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_smime_round_trip(signed, people, tmp_path):
    alice = people["alice"]
    anchors = anchors_file(tmp_path, signed.ds("example.com"))
    der, out, code = sender_gets_certificate(alice.address, signed.resolver.server, anchors)
    assert code == 0 and der is not None, out
    assert der == alice.der  # what openssl says Alice's certificate is
    # The sender used only the address; the lookup shows what the certificate says.
    [owner] = [o for o in out["owners"] if o["records"]]
    assert owner["name"] == alice.owner and owner["state"] == "secure"
    cert = owner["records"][0]["certificate"]
    assert cert["addresses"] == [alice.address] and cert["names_address"], cert
    plain, decrypted = encrypt_and_decrypt(tmp_path, der, alice)
    assert decrypted == plain


def test_round_trip_asking_the_authoritative_server_directly(signed, people, tmp_path):
    alice = people["alice"]
    anchors = anchors_file(tmp_path, signed.ds("example.com"))
    der, out, code = sender_gets_certificate(alice.address, f"{ADDRESS}:{signed.server.port}",
                                             anchors)
    assert code == 0 and der == alice.der, out
    plain, decrypted = encrypt_and_decrypt(tmp_path, der, alice)
    assert decrypted == plain


def test_sender_refuses_with_a_wrong_trust_anchor(signed, people, tmp_path):
    anchors = anchors_file(tmp_path, wrong_anchors(signed.ds("example.com")))
    der, out, code = sender_gets_certificate(people["alice"].address, signed.resolver.server,
                                             anchors)
    assert der is None and code == 5 and out["status"] == "bogus", out
    assert all(not o["records"] for o in out["owners"]), "bogus data must not be shown"


@pytest.mark.parametrize("path", ["direct", "through unbound"])
def test_sender_refuses_an_answer_altered_in_transit(signed, people, tmp_path, path):
    alice = people["alice"]
    proxy = TamperProxy(signed.server.port, alice.der)
    try:
        anchors = anchors_file(tmp_path, signed.ds("example.com"))
        if path == "direct":
            der, out, code = sender_gets_certificate(alice.address, f"{ADDRESS}:{proxy.port}",
                                                     anchors)
            assert proxy.altered > 0
            assert der is None and code == 5 and out["status"] == "bogus", out
            assert "signature" in out["owners"][0]["why"], out
        else:
            stubs = {"example.com": proxy.port}
            with signed.new_resolver(anchors=signed.ds("example.com"), stubs=stubs) as u:
                r = u.query(alice.owner, SMIMEA)
                assert r.rcode() == SERVFAIL, signed.why("altered answer", r, u)
                assert proxy.altered > 0
                assert "validation failure" in u.log_text()
                # libunbound asks unbound with CD set and validates by itself: it sees the
                # altered record and calls it bogus, as a validating client library should.
                der, out, code = sender_gets_certificate(alice.address, u.server, anchors)
                assert der is None and code == 5 and out["status"] == "bogus", out
    finally:
        proxy.close()


def test_lookup_reports_not_found_insecure_and_verify(signed, people, tmp_path):
    anchors = anchors_file(tmp_path, signed.ds("example.com"))
    server = signed.resolver.server
    r = run([CTL, "lookup", "nobody@example.com", "--server", server, "--trust-anchor",
             anchors], check=False)
    assert r.returncode == 6, r.stdout + r.stderr
    # Anchored elsewhere: the same records, but no chain of trust to them.
    other = anchors_file(tmp_path, signed.ds("nsec.example"), "other")
    r = run([CTL, "lookup", people["alice"].address, "--server", server, "--trust-anchor",
             other], check=False)
    assert r.returncode == 4 and "insecure" in r.stdout, r.stdout + r.stderr
    r = run([CTL, "lookup", people["alice"].address, "--server", server, "--trust-anchor",
             anchors, "--verify", people["alice"].pem], check=False)
    assert r.returncode == 0 and "matches --verify" in r.stdout, r.stdout + r.stderr
    r = run([CTL, "lookup", people["alice"].address, "--server", server, "--trust-anchor",
             anchors, "--verify", people["bob"].pem], check=False)
    assert r.returncode == 8, r.stdout + r.stderr
    # bob publishes only 3 1 1: --verify matches the SPKI digest.
    r = run([CTL, "--json", "lookup", people["bob"].address, "--server", server,
             "--trust-anchor", anchors, "--verify", people["bob"].pem], check=False)
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["verify"]["matched"], out
    [rec] = [rec for o in out["owners"] for rec in o["records"]]
    assert bytes.fromhex(rec["data"]) == people["bob"].data(1, 1)


# --------------------------------------------------------------------------------------------
# Overlay: gsqlite3 owns example.net and its keys; we add the _smimecert names


@pytest.fixture(scope="module", params=CONNECTOR_NAMES)
def overlay(request, people, tmp_path_factory):
    name = request.param
    reason = CONNECTORS[name].unavailable()
    if reason:
        pytest.skip(reason)
    d = tmp_path_factory.mktemp(f"dnssec-overlay-{name}")
    gdb = d / "pdns.sqlite3"
    with sqlite3.connect(gdb) as con:
        con.executescript(sqlite_schema_file().read_text())
    con.close()
    util = d / "gsqlite3-only"
    util.mkdir()
    (util / "pdns.conf").write_text(f"launch=gsqlite3\ngsqlite3-database={gdb}\n"
                                    "gsqlite3-dnssec=yes\n")
    pdnsutil = ["/usr/bin/pdnsutil", f"--config-dir={util}"]
    run(pdnsutil + ["create-zone", "example.net", "ns1.example.net"])
    run(pdnsutil + ["add-record", "example.net", "ns1", "A", "3600", "192.0.2.53"])
    run(pdnsutil + ["add-record", "example.net", "www", "A", "3600", "192.0.2.80"])
    run(pdnsutil + ["secure-zone", "example.net"])
    run(pdnsutil + ["set-nsec3", "example.net", "1 0 0 -", "narrow"])
    run(pdnsutil + ["rectify-zone", "example.net"])
    ds = run(pdnsutil + ["export-zone-ds", "example.net"]).stdout

    store = Store(d, extra_config=CONFIG_YAML)
    store.ctl("zone", "add", "example.net", "--mode", "overlay")
    bob = make_cert(d, "bob@example.net", key="rsa")
    store.ctl("cert", "add", "bob@example.net", bob[0])
    (d / "backend").mkdir()
    server = dnssec_server(CONNECTORS[name](store, d / "backend"), d / "pdns",
                           before=["gsqlite3"],
                           extra_config=[f"gsqlite3-database={gdb}", "gsqlite3-dnssec=yes"])
    server.start()
    env = Env(name, d, store, server)
    env.gsqlite_ds = ds
    env.bob = bob
    env.bob_der = openssl("x509", "-in", bob[0], "-outform", "DER")
    try:
        env._resolver = env.new_resolver(anchors=ds, stubs={"example.net": server.port}).start()
        yield env
    finally:
        env.close()
        server.stop()
        store.cleanup()


def test_overlay_answers_validate(overlay):
    owner = owner_name("bob@example.net")
    r = overlay.resolver.query(owner, SMIMEA)
    assert_secure(overlay, r, NOERROR, "overlay SMIMEA")
    assert smimea_data(r, owner) == {(3, 0, 0, overlay.bob_der)}
    assert_secure(overlay, overlay.resolver.query(random_owner("example.net", 4), SMIMEA),
                  NXDOMAIN, "overlay NXDOMAIN")
    r = overlay.resolver.query("_smimecert.example.net.", SMIMEA)
    assert_secure(overlay, r, NOERROR, "overlay _smimecert")
    assert not r.answer
    assert_secure(overlay, overlay.resolver.query(owner, "TXT"), NOERROR, "overlay NODATA")
    assert_secure(overlay, overlay.resolver.query("www.example.net.", "A"), NOERROR, "www")


def test_overlay_keys_stay_with_the_owner(overlay):
    # The combined configuration sees gsqlite3's key and NSEC3 settings, not ours.
    assert overlay.ds("example.net") == overlay.gsqlite_ds
    assert "NARROW hashed NSEC3" in overlay.pdnsutil("show-zone", "example.net").stdout
    assert store_rows(overlay, "SELECT count(*) FROM domain_keys") == [(0,)]
    assert store_rows(overlay, "SELECT count(*) FROM domain_metadata") == [(0,)]


def test_overlay_round_trip(overlay, tmp_path):
    anchors = anchors_file(tmp_path, overlay.gsqlite_ds)
    der, out, code = sender_gets_certificate("bob@example.net", overlay.resolver.server, anchors)
    assert code == 0 and der == overlay.bob_der, out

    bob = types.SimpleNamespace(pem=overlay.bob[0], key=overlay.bob[1])
    plain, decrypted = encrypt_and_decrypt(tmp_path, der, bob)
    assert decrypted == plain


# --------------------------------------------------------------------------------------------
# smimea-ctl init migrates a version-1 store (tests/data/db/store-v1.db, see its README)

FIXTURE_V1 = pathlib.Path(__file__).resolve().parents[1] / "data" / "db" / "store-v1.db"


def test_init_migrates_a_version_1_store(tmp_path):
    db = tmp_path / "store.db"
    shutil.copyfile(FIXTURE_V1, db)
    config = tmp_path / "smimea.yaml"
    config.write_text(f"database: {db}\n")
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA user_version").fetchone() == (1,)
        before = con.execute("SELECT id, name, mode, serial FROM zones ORDER BY id").fetchall()
        records = con.execute("SELECT zone_id, owner, usage, selector, matching_type, data "
                              "FROM records ORDER BY id").fetchall()
    con.close()
    # The old store is refused until migrated.
    r = run([CTL, "--config", config, "cert", "list"], check=False)
    assert r.returncode == 3 and "smimea-ctl init" in r.stderr, r.stderr
    r = run([CTL, "--config", config, "init"])
    migrated = re.search(r"from schema version 1 to (\d+)", r.stdout)
    assert migrated and int(migrated.group(1)) >= 2, r.stdout
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA user_version").fetchone() == (int(migrated.group(1)),)
        assert con.execute("SELECT id, name, mode, serial FROM zones ORDER BY id").fetchall() \
            == before
        assert con.execute("SELECT zone_id, owner, usage, selector, matching_type, data FROM "
                           "records ORDER BY id").fetchall() == records
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master")}
    con.close()
    assert {"domain_keys", "domain_metadata"} <= tables
    # The v1 data is served as before: alice's 3 0 0 record holds the certificate of
    # tests/data/certs/rsa.pem, which openssl converts independently.
    rsa_der = openssl("x509", "-in", FIXTURE_V1.parents[1] / "certs" / "rsa.pem", "-outform",
                      "DER")
    out = run([CTL, "--config", config, "export", "example.com"]).stdout
    line = next(x for x in out.splitlines() if "SMIMEA" in x)
    assert line.split()[0] == owner_name("alice@example.com")
    assert bytes.fromhex(line.split()[-1]) == rsa_der
    listed = run([CTL, "--config", config, "cert", "list"]).stdout
    assert "alice@example.com" in listed and "carol@example.org" in listed, listed
    r = run([CTL, "--config", config, "init"])
    assert "up to date" in r.stdout, r.stdout


def test_lookup_reports_a_failed_resolution(signed, tmp_path):
    # wide.example's denials fail (NSEC3 without narrow): the resolver answers SERVFAIL, which
    # is neither "not found" nor "bogus".
    anchors = anchors_file(tmp_path, signed.ds("wide.example"))
    r = run([CTL, "lookup", "nobody@wide.example", "--server", signed.resolver.server,
             "--trust-anchor", anchors], check=False)
    assert r.returncode == 7 and "failed" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("content,words", [
    ("", "no DS or DNSKEY record"),
    ("garbage garbage\n; example.com. DS 1 2 3\n", "no DS or DNSKEY record"),
    ("example.com. IN DS not a digest\n", "could not start"),
])
def test_lookup_refuses_a_bad_trust_anchor_file(tmp_path, content, words):
    """A trust anchor file that holds no anchor, or one libunbound cannot read, is an error in
    the command (exit 1, naming the file), not a failed lookup (7) or an insecure one (4)."""
    anchors = tmp_path / "anchors"
    anchors.write_text(content)
    r = run([CTL, "lookup", "alice@example.com", "--server", "127.0.0.1:1", "--trust-anchor",
             anchors], check=False, timeout=30)
    assert r.returncode == 1, r.stdout + r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert str(anchors) in last and words in last, r.stderr
    assert r.stdout == "", r.stdout


def test_lookup_help_documents_the_exit_status():
    out = run([CTL, "lookup", "--help"]).stdout
    for text in ("0 secure", "4 insecure", "5 bogus", "6 not found", "7 lookup failed",
                 "8 --verify"):
        assert text in " ".join(out.split()), out

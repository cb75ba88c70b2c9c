"""Regression test for issue 17 (1): a signed zone and its _smimecert child in one store form a
proper delegation. The parent answers NS (not authoritative) and the DS computed from the
child's keys at the cut; its NSEC3 there proves "no DS" while the child is unsigned; a
validator that trusts only the parent's key (delv, unbound) validates a record of the child.

Before: lookups ignored pdns's zone id, so the parent answered the child's SOA at the cut, its
NSEC3 there carried the SOA bit, it could never show a DS, and every answer below was bogus.

Expected values come from pdnsutil (export-zone-ds of the child), dnspython's parsing of the
answers and the validators' verdicts (delv's "fully validated", unbound's AD bit).

Run: SMIMEA_BUILD_DIR=build /usr/bin/python3 -m pytest -q tests/integration/test_delegation.py
"""
import pathlib
import shutil
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402

from pdns import ADDRESS, CONNECTORS  # noqa: E402
from smimea_test import Cert, Store, run  # noqa: E402
from test_dnssec import CONFIG_YAML, Env, dnssec_server, random_owner  # noqa: E402

PARENT, CHILD = "example.com", "_smimecert.example.com"
DS, NS, SOA, NSEC3 = (dns.rdatatype.DS, dns.rdatatype.NS, dns.rdatatype.SOA,
                      dns.rdatatype.NSEC3)


@pytest.fixture(scope="module", params=list(CONNECTORS))
def env(request, tmp_path_factory):
    name = request.param
    reason = CONNECTORS[name].unavailable()
    if reason:
        pytest.skip(reason)
    d = tmp_path_factory.mktemp(f"delegation-{name}")
    store = Store(d, extra_config=CONFIG_YAML)
    store.ctl("zone", "add", PARENT)
    alice = Cert(d, "alice@example.com")
    store.ctl("cert", "add", "alice@example.com", alice.pem)
    (d / "backend").mkdir()
    server = dnssec_server(CONNECTORS[name](store, d / "backend"), d / "pdns")
    server.start()
    e = Env(name, d, store, server)
    e.alice = alice
    try:
        e.pdnsutil("secure-zone", PARENT)
        e.pdnsutil("set-nsec3", PARENT, "1 0 0 -", "narrow")
        store.ctl("zone", "add", CHILD)
        server.control("rediscover")
        server.control("purge")
        yield e
    finally:
        e.close()
        server.stop()
        store.cleanup()


def ask(env, name, rdtype):
    q = dns.message.make_query(name, rdtype, want_dnssec=True)
    return dns.query.tcp(q, ADDRESS, port=env.server.port, timeout=10)


def parent_anchor(env):
    return env.ds(PARENT)


def resolver(env):
    """A fresh unbound that trusts only the parent's DS."""
    return env.new_resolver(anchors=parent_anchor(env),
                            stubs={PARENT: env.server.port, CHILD: env.server.port})


def serial(env, zone):
    r = ask(env, zone, "SOA")
    return r.answer[0][0].serial


def test_unsigned_child_is_an_insecure_delegation(env):
    r = ask(env, CHILD + ".", "DS")
    assert r.rcode() == dns.rcode.NOERROR, env.why("DS at the cut", r)
    assert not [rr for rr in r.answer if rr.rdtype == DS], env.why("DS of an unsigned child", r)
    nsec3 = [rr for rr in r.authority if rr.rdtype == NSEC3]
    assert nsec3, env.why("no NSEC3 for the cut", r)
    # The NSEC3 matching the cut: NS only (RFC 5155 section 8.6), no SOA, no DS.
    # "<alg> <flags> <iterations> <salt> <next> <types...>"
    bitmaps = [set(rd.to_text().split()[5:]) for rrset in nsec3 for rd in rrset]
    assert {"NS"} in bitmaps, env.why(f"NSEC3 type maps {bitmaps}", r)
    # Below the cut the child answers (unsigned: no AD), not SERVFAIL.
    with resolver(env) as unbound:
        r = unbound.query(env.alice.owner, "SMIMEA")
        assert r.rcode() == dns.rcode.NOERROR, env.why("owner through unbound", r, unbound)
        assert r.answer and not r.flags & dns.flags.AD, env.why("insecure owner", r, unbound)
    exported = env.store.ctl("export", PARENT).stdout
    assert f"{CHILD}.\t" in exported and "\tNS\t" in exported, exported


def test_signed_child_validates_from_the_parents_key(env, tmp_path):
    before = serial(env, PARENT)
    env.pdnsutil("secure-zone", CHILD)
    env.pdnsutil("set-nsec3", CHILD, "1 0 0 -", "narrow")
    env.server.control("purge")
    # The DS the parent serves is the child's, as pdnsutil computes it.
    r = ask(env, CHILD + ".", "DS")
    served = {rd.to_text().lower() for rrset in r.answer if rrset.rdtype == DS for rd in rrset}
    expected = set()
    for line in env.ds(CHILD).splitlines():
        f = line.split(";")[0].split()
        if len(f) >= 7 and f[5] == "2":
            expected.add(" ".join(f[3:7]).lower())
    assert expected and served == expected, env.why(f"DS {served} != {expected}", r)
    assert any(rrset.rdtype == dns.rdatatype.RRSIG for rrset in r.answer), env.why("DS unsigned", r)
    assert serial(env, PARENT) != before  # secondaries of the parent follow the DS
    # delv with only the parent's trust anchor.
    delv = shutil.which("delv")
    if delv is not None:
        anchors = tmp_path / "anchors"
        lines = []
        for line in parent_anchor(env).splitlines():
            f = line.split(";")[0].split()
            if f and f[5] == "2":
                lines.append(f'  {f[0]} static-ds {f[3]} {f[4]} {f[5]} "{f[6]}";')
        anchors.write_text("trust-anchors {\n" + "\n".join(lines) + "\n};\n")
        for qname in (env.alice.owner, random_owner(PARENT, 17)):
            r = run([delv, "-a", anchors, f"+root={PARENT}", f"@{ADDRESS}", "-p",
                     str(env.server.port), "+tcp", qname, "SMIMEA"], check=False)
            assert "fully validated" in r.stdout, r.stdout + r.stderr
    with resolver(env) as unbound:
        r = unbound.query(env.alice.owner, "SMIMEA")
        assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AD, \
            env.why("owner through unbound, parent anchor only", r, unbound)
    for zone in (PARENT, CHILD):
        check = env.pdnsutil("check-zone", zone, check=False)
        assert "0 errors" in check.stdout + check.stderr, check.stdout + check.stderr


def test_a_new_child_key_adds_its_ds(env):
    before = serial(env, PARENT)
    env.pdnsutil("add-zone-key", CHILD, "ksk", "active", "ecdsa256")
    env.server.control("purge")
    r = ask(env, CHILD + ".", "DS")
    assert sum(len(rrset) for rrset in r.answer if rrset.rdtype == DS) == 2, env.why("2 DS", r)
    assert serial(env, PARENT) != before


def test_removing_the_child_ends_the_delegation(env):
    env.store.ctl("zone", "remove", CHILD, "--force")
    env.server.control("rediscover")
    env.server.control("purge")
    r = ask(env, env.alice.owner, "SMIMEA")
    assert r.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)
    r = ask(env, CHILD + ".", "NS")
    assert not [rr for rr in r.answer + r.authority if rr.rdtype == NS and
                rr.name.to_text() == CHILD + "."], env.why("NS at a cut that is gone", r)

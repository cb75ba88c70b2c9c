"""Regression tests for issue 17, end to end: one mailbox per case-folded address (README,
"Mailbox case"), one TTL per RRset in answers, AXFR and export (RFC 2181 section 5.2), a store
that other users cannot read, and the migration that repairs a version-3 store.

Expected values are computed here: owner names with hashlib, association data with the
openssl command line, answers parsed by dnspython one RR at a time (so that a TTL mismatch
inside an RRset shows), zone files checked by named-checkzone.

Run: SMIMEA_BUILD_DIR=build /usr/bin/python3 -m pytest -q tests/integration/test_regress_issue17.py
"""
import json
import os
import pathlib
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import dns.message  # noqa: E402
import dns.query  # noqa: E402
import dns.rdatatype  # noqa: E402

from pdns import ADDRESS, CONNECTORS, PdnsServer  # noqa: E402
from smimea_test import BACKEND, CTL, Cert, Store, owner_name, require, run  # noqa: E402

require(BACKEND, CTL, "/usr/sbin/pdns_server", "/usr/bin/named-checkzone")

FIXTURE_V3 = pathlib.Path(__file__).resolve().parents[1] / "data" / "db" / "store-v3.db"
CERTS = pathlib.Path(__file__).resolve().parents[1] / "data" / "certs"
NAMESERVERS = "nameservers: [ns1.example.net., ns2.example.net.]\n"


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path, extra_config=NAMESERVERS)
    s.ctl("zone", "add", "example.com")
    return s


def smimea_lines(store, zone):
    """(owner, ttl, rdata) of the SMIMEA lines of `smimea-ctl export`."""
    out = []
    for line in store.ctl("export", zone).stdout.splitlines():
        fields = line.split()
        if len(fields) > 4 and not line.startswith(";") and fields[3] == "SMIMEA":
            out.append((fields[0], int(fields[1]), " ".join(fields[4:7]) + " " + fields[7]))
    return out


def rdata(cert):
    return "3 0 0 " + cert.der.hex()


class ConfigStore:
    """smimea-ctl on an existing config and store (Store would create a new one)."""

    def __init__(self, config, db):
        self.config, self.db = config, db

    def ctl(self, *args, check=True):
        return run([CTL, "--config", self.config, *args], check=check)


def db_bytes(store):
    return store.db.read_bytes()


# --- one mailbox per case-folded address ---------------------------------------------------

def test_other_letter_case_joins_the_stored_mailbox(store, tmp_path):
    # Before: alice@ became a second mailbox, and Alice@'s certificate answered for it at
    # sha256("alice").
    first = Cert(tmp_path, "Alice@example.com")
    second = Cert(tmp_path, "alice@example.com", key="rsa")
    store.ctl("cert", "add", "Alice@example.com", first.pem)
    r = store.ctl("cert", "add", "alice@example.com", second.pem)
    assert "alice@example.com is the mailbox Alice@example.com" in r.stderr
    listed = json.loads(store.ctl("--json", "cert", "list").stdout)
    assert sorted(c["address"] for c in listed) == ["Alice@example.com"] * 2
    exact, lower = owner_name("Alice@example.com"), owner_name("alice@example.com")
    assert sorted(smimea_lines(store, "example.com")) == sorted(
        (o, 3600, rdata(c)) for o in (exact, lower) for c in (first, second))
    # Any letter case names the mailbox: list and remove take all of it.
    assert len(json.loads(store.ctl("--json", "cert", "list", "ALICE@example.com").stdout)) == 2
    assert store.ctl("cert", "remove", "aLiCe@example.com").stdout == \
        "removed 2 certificate(s) of aLiCe@example.com\n"
    assert smimea_lines(store, "example.com") == []


def test_case_sensitive_zone_keeps_mailboxes_apart(tmp_path):
    s = Store(tmp_path, extra_config=NAMESERVERS)
    r = s.ctl("zone", "add", "example.org", "--case-sensitive")
    assert "case-sensitive local-parts" in r.stdout
    upper = Cert(tmp_path, "Alice@example.org")
    lower = Cert(tmp_path, "alice@example.org", key="rsa")
    s.ctl("cert", "add", "Alice@example.org", upper.pem)
    s.ctl("cert", "add", "alice@example.org", lower.pem)
    # No lower-cased variant: each mailbox at its own owner name only.
    assert sorted(smimea_lines(s, "example.org")) == sorted([
        (owner_name("Alice@example.org"), 3600, rdata(upper)),
        (owner_name("alice@example.org"), 3600, rdata(lower))])
    # A certificate naming Alice@ does not name alice@ here.
    before = db_bytes(s)
    r = s.ctl("cert", "add", "alice@example.org", upper.pem, check=False)
    assert r.returncode == 1
    assert "does not name alice@example.org" in r.stderr
    assert "compares local-parts exactly" in r.stderr
    assert db_bytes(s) == before
    listed = json.loads(s.ctl("--json", "cert", "list", "alice@example.org").stdout)
    assert [c["address"] for c in listed] == ["alice@example.org"]
    r = s.ctl("cert", "remove", "ALICE@example.org", check=False)
    assert r.returncode == 1
    assert db_bytes(s) == before
    zones = json.loads(s.ctl("--json", "zone", "list").stdout)
    assert [z["case_sensitive"] for z in zones] == [True]


def test_set_case_refuses_a_zone_with_certificates(store, tmp_path):
    cert = Cert(tmp_path, "alice@example.com")
    store.ctl("cert", "add", "alice@example.com", cert.pem)
    before = db_bytes(store)
    r = store.ctl("zone", "set-case", "example.com", "sensitive", check=False)
    assert r.returncode == 1
    assert "remove them first" in r.stderr
    assert db_bytes(store) == before
    store.ctl("zone", "add", "example.net")
    assert "case-sensitive" in store.ctl("zone", "set-case", "example.net", "sensitive").stdout


# --- one TTL per RRset -----------------------------------------------------------------------

def test_explicit_ttl_moves_the_whole_rrset_and_named_checkzone_agrees(store, tmp_path):
    a = Cert(tmp_path, "dave@example.com")
    b = Cert(tmp_path, "dave@example.com", key="rsa", name="dave-rsa")
    store.ctl("cert", "add", "dave@example.com", a.pem, "--ttl", "600")
    r = store.ctl("cert", "add", "dave@example.com", b.pem, "--ttl", "300")
    assert "TTL of 1 record(s) changed" in r.stdout
    assert {ttl for _, ttl, _ in smimea_lines(store, "example.com")} == {300}
    # Without --ttl, a new record joins its RRset's TTL (default-ttl is 3600 here).
    c = Cert(tmp_path, "dave@example.com", key="ed25519", name="dave-ed")
    store.ctl("cert", "add", "dave@example.com", c.pem)
    assert sorted(ttl for _, ttl, _ in smimea_lines(store, "example.com")) == [300] * 3
    assert "TTL set to prior TTL" not in checkzone(store, tmp_path)


def checkzone(store, tmp_path):
    zone_file = tmp_path / "example.com.zone"
    zone_file.write_text(store.ctl("export", "example.com").stdout)
    r = subprocess.run(["/usr/bin/named-checkzone", "example.com", str(zone_file)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout + r.stderr


def test_named_checkzone_sees_a_mixed_rrset(store, tmp_path):
    # The check above can fail: two TTLs in one RRset, written behind the store's back.
    a = Cert(tmp_path, "dave@example.com")
    b = Cert(tmp_path, "dave@example.com", key="rsa", name="dave-rsa")
    store.ctl("cert", "add", "dave@example.com", a.pem)
    store.ctl("cert", "add", "dave@example.com", b.pem)
    with sqlite3.connect(store.db) as db:
        db.execute("UPDATE records SET ttl = 60 WHERE id = (SELECT min(id) FROM records)")
    assert "TTL set to prior TTL" in checkzone(store, tmp_path)


@pytest.fixture(scope="module", params=list(CONNECTORS))
def connector_name(request):
    reason = CONNECTORS[request.param].unavailable()
    if reason:
        pytest.skip(reason)
    return request.param


def test_answers_and_axfr_carry_one_ttl_per_rrset(connector_name, tmp_path):
    s = Store(tmp_path, extra_config=NAMESERVERS)
    s.ctl("zone", "add", "example.com")
    a = Cert(tmp_path, "Erin@example.com")
    b = Cert(tmp_path, "erin@example.com", key="rsa")
    s.ctl("cert", "add", "Erin@example.com", a.pem, "--ttl", "600")
    s.ctl("cert", "add", "erin@example.com", b.pem, "--ttl", "120")
    with PdnsServer(CONNECTORS[connector_name](s, tmp_path), tmp_path / "pdns") as pdns:
        for owner in (owner_name("Erin@example.com"), owner_name("erin@example.com")):
            q = dns.message.make_query(owner, "SMIMEA", use_edns=0, payload=4096)
            answer = dns.query.tcp(q, ADDRESS, port=pdns.port, timeout=5, one_rr_per_rrset=True)
            rrs = [rr for rr in answer.answer if rr.rdtype == dns.rdatatype.SMIMEA]
            assert len(rrs) == 2, pdns.explain(owner, answer)
            assert {rr.ttl for rr in rrs} == {120}
        assert axfr_smimea_ttls(pdns.port, "example.com") == [120] * 4


def axfr_smimea_ttls(port, zone):
    """The TTL of each SMIMEA RR of an AXFR, read one RR at a time (dns.query.xfr merges RRs
    into RRsets, which would hide a mismatch)."""
    with socket.create_connection((ADDRESS, port), timeout=10) as sock:
        dns.query.send_tcp(sock, dns.message.make_query(zone, "AXFR"))
        soas, ttls = 0, []
        while soas < 2:
            msg, _ = dns.query.receive_tcp(sock, time.time() + 10, one_rr_per_rrset=True)
            for rr in msg.answer:
                soas += rr.rdtype == dns.rdatatype.SOA
                if rr.rdtype == dns.rdatatype.SMIMEA:
                    ttls.append(rr.ttl)
        return ttls


# --- the store's files ---------------------------------------------------------------------

def others_bits(path):
    return stat.S_IMODE(os.stat(path).st_mode) & 0o007


def test_store_is_never_readable_by_others(tmp_path):
    # Before: 0644 under the default umask, with DNSSEC private keys and TSIG secrets in it.
    config = tmp_path / "smimea.yaml"
    db = tmp_path / "store.db"
    config.write_text(f"database: {db}\n" + NAMESERVERS)
    umask022 = dict(preexec_fn=lambda: os.umask(0o022))
    subprocess.run([CTL, "-c", config, "init"], check=True, capture_output=True, **umask022)
    subprocess.run([CTL, "-c", config, "zone", "add", "example.com"], check=True,
                   capture_output=True, **umask022)
    for f in (db, pathlib.Path(f"{db}-wal"), pathlib.Path(f"{db}-shm")):
        if f.exists():
            assert others_bits(f) == 0, (f, oct(os.stat(f).st_mode))
    assert others_bits(db) == 0

    os.chmod(db, 0o644)
    r = run([CTL, "-c", config, "check-config"])
    assert "accessible to other users (mode 644)" in r.stderr
    backend = subprocess.run([BACKEND, "-c", config, "--pipe"], input="", capture_output=True,
                             text=True, timeout=30)
    assert "accessible to other users (mode 644)" in backend.stderr
    r = run([CTL, "-c", config, "init"])
    assert "removed other users' access to " + str(db) in r.stdout
    assert others_bits(db) == 0
    assert "accessible to other users" not in run([CTL, "-c", config, "check-config"]).stderr


# --- the migration ---------------------------------------------------------------------------

def test_init_migrates_a_version3_store_and_says_what_happened(tmp_path):
    # tests/data/db/store-v3.db: Alice@, alice@ and ALICE@ as three mailboxes; the lower-cased
    # owner's RRset with TTLs 600 and 300.
    db = tmp_path / "store.db"
    shutil.copyfile(FIXTURE_V3, db)
    os.chmod(db, 0o640)
    config = tmp_path / "smimea.yaml"
    config.write_text(f"database: {db}\n" + NAMESERVERS)
    r = run([CTL, "-c", config, "init"])
    assert "from schema version 3 to " in r.stdout, r.stdout
    assert "2 certificate(s) stored under another letter case" in r.stdout
    assert "1 RRset(s) had records with different TTLs" in r.stdout
    s = ConfigStore(config, db)
    listed = json.loads(s.ctl("--json", "cert", "list", "--zone", "example.com").stdout)
    assert sorted(c["address"] for c in listed) == ["Alice@example.com"] * 2
    rsa_der = subprocess.run(["openssl", "x509", "-in", CERTS / "rsa.pem", "-outform", "DER"],
                             capture_output=True, check=True).stdout
    lines = smimea_lines(s, "example.com")
    # rsa.pem stays at all three owner names it was published at.
    for owner in ("Alice", "alice", "ALICE"):
        assert (owner_name(owner + "@example.com"), "3 0 0 " + rsa_der.hex()) in \
            {(o, d) for o, _, d in lines}
    by_owner = {}
    for owner, ttl, _ in lines:
        by_owner.setdefault(owner, set()).add(ttl)
    assert all(len(ttls) == 1 for ttls in by_owner.values()), by_owner
    assert "TTL set to prior TTL" not in checkzone(s, tmp_path)


# --- cert import and special files -----------------------------------------------------------

def test_import_reports_every_entry_it_does_not_import_and_never_blocks(store, tmp_path):
    # Before: symbolic links were followed out of the tree, dangling links and FIFOs were
    # skipped without a word, and `cert import some.fifo` waited forever for a writer.
    tree, outside = tmp_path / "tree", tmp_path / "outside"
    (tree / "sub").mkdir(parents=True)
    outside.mkdir()
    inside = Cert(tree / "sub", "inside@example.com")
    os.remove(inside.key)  # make_cert leaves the private key beside the certificate
    linked = Cert(outside, "linked@example.com")
    (tree / "link.pem").symlink_to(linked.pem)
    (tree / "dangling.pem").symlink_to(tmp_path / "nonexistent.pem")
    os.mkfifo(tree / "fifo.pem")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tree / "sock"))
        r = run([CTL, "-c", store.config, "cert", "import", tree], timeout=30)
    assert r.stdout.startswith("imported 1 certificate(s)")
    skipped = sorted(line for line in r.stderr.splitlines() if "skipped" in line)
    assert skipped == sorted([
        f"smimea-ctl: skipped {tree}/dangling.pem: a symbolic link, not followed in a directory "
        "(name the file itself to import it)",
        f"smimea-ctl: skipped {tree}/fifo.pem: not a regular file (a FIFO)",
        f"smimea-ctl: skipped {tree}/link.pem: a symbolic link, not followed in a directory "
        "(name the file itself to import it)",
        f"smimea-ctl: skipped {tree}/sock: not a regular file (a socket)"])
    # Only the certificate inside the tree was imported.
    listed = json.loads(store.ctl("--json", "cert", "list").stdout)
    assert [c["address"] for c in listed] == [inside.address]
    # Named on the command line: a link is followed, a FIFO or a device refused at once.
    before = db_bytes(store)
    r = store.ctl("cert", "import", tree / "fifo.pem", check=False)
    assert r.returncode == 1 and "not a regular file (a FIFO)" in r.stderr
    r = store.ctl("cert", "add", "linked@example.com", "/dev/zero", check=False)
    assert r.returncode == 1 and "not a regular file (a character device)" in r.stderr
    assert db_bytes(store) == before
    store.ctl("cert", "import", tree / "link.pem")
    assert len(json.loads(store.ctl("--json", "cert", "list").stdout)) == 2


def test_remote_list_goes_by_name_only(store):
    # Before: a list without a zonename listed whatever zone had pdns's domain_id (an id of
    # another backend's, or of a removed zone, since ids are reused).
    zone_id = json.loads(store.ctl("--json", "zone", "list").stdout)[0]["id"]
    lines = [{"method": "initialize", "parameters": {"command": str(BACKEND), "timeout": "2000"}},
             {"method": "list", "parameters": {"zonename": "", "domain_id": zone_id,
                                               "include_disabled": False}},
             {"method": "list", "parameters": {"zonename": "other.example.", "domain_id": zone_id,
                                               "include_disabled": False}},
             {"method": "list", "parameters": {"zonename": "example.com.", "domain_id": 4242,
                                               "include_disabled": False}}]
    r = subprocess.run([BACKEND, "-c", store.config, "--pipe"], capture_output=True, text=True,
                       input="".join(json.dumps(line) + "\n" for line in lines), timeout=30)
    replies = [json.loads(line) for line in r.stdout.splitlines()]
    assert [reply["result"] for reply in replies[1:3]] == [False, False], r.stdout
    listed = replies[3]["result"]
    assert [rr["qtype"] for rr in listed][:1] == ["SOA"]
    assert {rr["domain_id"] for rr in listed} == {zone_id}

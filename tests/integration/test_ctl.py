"""End-to-end tests of smimea-ctl: the commands, their exit codes and messages, and what they
leave in the store.

Every expected value is computed here, independently of our programs: owner names with
hashlib (RFC 8162 section 3), association data with the openssl command line, the store's
contents with the sqlite3 command line, zone files checked with named-checkzone. Bulk
certificates come from python3-cryptography.

Run: SMIMEA_BUILD_DIR=build /usr/bin/python3 -m pytest -q tests/integration/test_ctl.py
"""
import base64
import hashlib
import json
import os
import pathlib
import pwd
import random
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from smimea_test import (CTL, Store, make_cert, require, run,  # noqa: E402
                         self_signed_certificates)

require(CTL)

DATA = pathlib.Path(__file__).resolve().parents[1] / "data" / "certs"
NAMED_CHECKZONE = "/usr/bin/named-checkzone"
RFC8162_OWNER = "c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6._smimecert.example.com."
NAMESERVERS = "nameservers: [ns1.example.net., ns2.example.net.]\n"


# --- independent computations -----------------------------------------------------------------

def owner(local_part, domain):
    """RFC 8162 section 3 owner name, with hashlib."""
    digest = hashlib.sha256(local_part.encode("utf-8")).hexdigest()[:56]
    return f"{digest}._smimecert.{domain}."


def openssl_der(cert):
    return run(["openssl", "x509", "-in", cert, "-outform", "DER"], input=b"").stdout


def openssl_spki(cert):
    pem = run(["openssl", "x509", "-in", cert, "-pubkey", "-noout"]).stdout
    return run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pem.encode()).stdout


def openssl_association(cert, selector, matching_type):
    """RFC 6698 section 2.1 association data, hex, from the openssl CLI (and hashlib)."""
    data = openssl_der(cert) if selector == 0 else openssl_spki(cert)
    if matching_type == 1:
        return hashlib.sha256(data).hexdigest()
    if matching_type == 2:
        return hashlib.sha512(data).hexdigest()
    return data.hex()


def openssl_fingerprint(cert):
    out = run(["openssl", "x509", "-in", cert, "-noout", "-fingerprint", "-sha256"]).stdout
    return out.strip().split("=", 1)[1].replace(":", "").lower()


def expired_cert(directory, email, key="ec"):
    """A certificate for email that expired in 2020, made with `openssl ca`, the only openssl
    3.0 command that takes explicit validity dates."""
    directory = pathlib.Path(directory)
    ca_dir = directory / "expired-ca"
    ca_dir.mkdir(exist_ok=True)
    (ca_dir / "index.txt").write_text("")
    (ca_dir / "serial").write_text("1000\n")
    (ca_dir / "ca.cnf").write_text(
        "[ca]\ndefault_ca = d\n[d]\n"
        f"database = {ca_dir}/index.txt\nnew_certs_dir = {ca_dir}\nserial = {ca_dir}/serial\n"
        "default_md = sha256\npolicy = p\ncopy_extensions = copy\nunique_subject = no\n"
        "[p]\ncommonName = supplied\n")
    keyfile = directory / "expired.key"
    run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-out", keyfile])
    csr = directory / "expired.csr"
    run(["openssl", "req", "-new", "-key", keyfile, "-subj", "/CN=" + email,
         "-addext", "subjectAltName=email:" + email, "-out", csr])
    cert = directory / "expired.pem"
    run(["openssl", "ca", "-batch", "-config", ca_dir / "ca.cnf", "-selfsign", "-keyfile", keyfile,
         "-in", csr, "-startdate", "20200101000000Z", "-enddate", "20200201000000Z",
         "-notext", "-out", cert])
    return cert


def bulk_certs(directory, n, domain="bulk.example", prefix="user"):
    """n certificates, one file each, for prefix<i>@domain, all with one EC key. Returns the
    total size of the files."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    certs = self_signed_certificates(ec.generate_private_key(ec.SECP256R1()),
                                     [f"{prefix}{i}@{domain}" for i in range(n)])
    total = 0
    for i, cert in enumerate(certs):
        data = cert.public_bytes(serialization.Encoding.PEM)
        (directory / f"{prefix}{i:05d}.pem").write_bytes(data)
        total += len(data)
    return total


# --- the store, read with the sqlite3 CLI -----------------------------------------------------

def sql(store, query):
    return run(["sqlite3", "-batch", store.db, query]).stdout.strip()


def counts(store):
    return tuple(int(sql(store, f"SELECT count(*) FROM {t}"))
                 for t in ("zones", "certificates", "records"))


def serial(store, zone):
    return int(sql(store, f"SELECT serial FROM zones WHERE name = '{zone}'"))


def dump(store):
    """Everything in the store, as text."""
    return run(["sqlite3", "-batch", store.db, ".dump"]).stdout


def integrity_ok(store):
    return sql(store, "PRAGMA integrity_check") == "ok"


def exported(store, zone):
    """The SMIMEA lines of `smimea-ctl export`, as (owner, ttl, 'u s m', hex)."""
    out = []
    for line in store.ctl("export", zone).stdout.splitlines():
        if line.startswith(";") or not line.strip():
            continue
        fields = line.split()
        if fields[3] == "SMIMEA":
            out.append((fields[0], int(fields[1]), " ".join(fields[4:7]), fields[7]))
    return out


def refused(store, *args, code=1, input=None):
    """Runs smimea-ctl expecting exit `code` and exactly one line on stderr; returns it."""
    r = store.ctl(*args, check=False, input=input)
    assert r.returncode == code, (args, r.returncode, r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, (args, r.stderr)
    assert lines[0].startswith("smimea-ctl: "), lines[0]
    return lines[0]


# --- fixtures ---------------------------------------------------------------------------------

@pytest.fixture
def store(tmp_path):
    (tmp_path / "store").mkdir()
    s = Store(tmp_path / "store", extra_config=NAMESERVERS)
    s.ctl("zone", "add", "example.com")
    return s


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """Certificates made once with the openssl CLI: {key type: (cert, address)}."""
    d = tmp_path_factory.mktemp("certs")
    out = {}
    for key in ("rsa", "ec", "ed25519"):
        address = f"{key}.user@example.com"
        out[key] = (make_cert(d, address, key=key)[0], address)
    return out


@pytest.fixture(scope="module")
def bulk(tmp_path_factory):
    d = tmp_path_factory.mktemp("bulk")
    total = bulk_certs(d / "certs", 3000)
    return d / "certs", total


# --- smimea-ctl name --------------------------------------------------------------------------

def test_name_rfc8162_vector():
    r = run([CTL, "name", "hugh@example.com"])
    assert r.stdout == RFC8162_OWNER + "\n"
    assert owner("hugh", "example.com") == RFC8162_OWNER


def test_name_upper_case_gives_exact_and_lower_cased_owner():
    r = run([CTL, "name", "Hugh@Example.COM"])
    assert r.stdout.splitlines() == [owner("Hugh", "example.com"), owner("hugh", "example.com")]


def test_name_exact_only():
    r = run([CTL, "name", "--exact-only", "Hugh@example.com"])
    assert r.stdout.splitlines() == [owner("Hugh", "example.com")]


def test_name_follows_lowercase_variant_in_config(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"database: {tmp_path}/none.db\nlowercase-variant: false\n")
    r = run([CTL, "--config", config, "name", "Hugh@example.com"])
    assert r.stdout.splitlines() == [owner("Hugh", "example.com")]


def test_name_quoted_nfd_and_idn():
    assert run([CTL, "name", '"john doe"@example.com']).stdout.splitlines() == [
        owner("john doe", "example.com")]
    # NFD input, NFC hashed.
    assert run([CTL, "name", "jose\u0301@example.com"]).stdout.splitlines() == [
        owner("jos\u00e9", "example.com")]
    alabel = "bücher".encode("idna").decode()
    assert run([CTL, "name", "hugh@bücher.example"]).stdout.splitlines() == [
        owner("hugh", f"{alabel}.example")]


def test_name_json():
    r = run([CTL, "--json", "name", "Hugh@example.com"])
    doc = json.loads(r.stdout)
    assert doc["owners"] == [owner("Hugh", "example.com"), owner("hugh", "example.com")]


@pytest.mark.parametrize("address", ["hugh", "@example.com", "hugh@", "hu gh@example.com",
                                     "hugh@example", "hugh@" + "x" * 64 + ".example"])
def test_name_bad_address(address):
    r = run([CTL, "name", address], check=False)
    assert r.returncode == 1
    assert len(r.stderr.splitlines()) == 1
    assert r.stdout == ""


# --- cert add: association data against openssl ----------------------------------------------

@pytest.mark.parametrize("key", ["rsa", "ec", "ed25519"])
def test_association_data_all_six_combinations(store, certs, key):
    cert, address = certs[key]
    local, domain = address.split("@")
    for s in (0, 1):
        for m in (0, 1, 2):
            store.ctl("cert", "add", address, cert, "--selector", str(s), "--matching-type",
                      str(m), "--usage", "3")
    expected = sorted((owner(local, domain), 3600, f"3 {s} {m}", openssl_association(cert, s, m))
                      for s in (0, 1) for m in (0, 1, 2))
    assert sorted(exported(store, "example.com")) == expected
    # The same, read with sqlite3.
    for s in (0, 1):
        for m in (0, 1, 2):
            assert sql(store, "SELECT lower(hex(data)) FROM records WHERE selector = "
                              f"{s} AND matching_type = {m}") == openssl_association(cert, s, m)
    assert sql(store, "SELECT lower(hex(fingerprint)) FROM certificates") == \
        openssl_fingerprint(cert)


def test_default_record_is_3_0_0(store, certs):
    cert, address = certs["ec"]
    r = store.ctl("cert", "add", address, cert)
    assert r.stdout.startswith("added ")
    local, domain = address.split("@")
    assert exported(store, "example.com") == [
        (owner(local, domain), 3600, "3 0 0", openssl_association(cert, 0, 0))]


def test_record_option_and_ttl(store, certs):
    cert, address = certs["rsa"]
    store.ctl("cert", "add", address, cert, "--record", "3 1 1", "--record", "1,0,2",
              "--ttl", "120")
    local, domain = address.split("@")
    assert sorted(exported(store, "example.com")) == sorted([
        (owner(local, domain), 120, "3 1 1", openssl_association(cert, 1, 1)),
        (owner(local, domain), 120, "1 0 2", openssl_association(cert, 0, 2))])


def test_upper_case_address_publishes_both_owners(store, tmp_path):
    cert, _ = make_cert(tmp_path, "Mixed.Case@example.com")
    store.ctl("cert", "add", "Mixed.Case@example.com", cert)
    owners = sorted(o for o, *_ in exported(store, "example.com"))
    assert owners == sorted([owner("Mixed.Case", "example.com"),
                             owner("mixed.case", "example.com")])


def test_lowercase_variant_off(tmp_path):
    (tmp_path / "s").mkdir()
    s = Store(tmp_path / "s", extra_config="lowercase-variant: false\n")
    s.ctl("zone", "add", "example.com")
    cert, _ = make_cert(tmp_path, "Mixed@example.com")
    s.ctl("cert", "add", "Mixed@example.com", cert)
    assert [o for o, *_ in exported(s, "example.com")] == [owner("Mixed", "example.com")]


def test_cert_add_from_stdin(store, certs):
    cert, address = certs["ec"]
    store.ctl("cert", "add", address, "-", input=pathlib.Path(cert).read_text())
    assert counts(store) == (1, 1, 1)


def test_cert_add_der_and_pkcs7(store, tmp_path, certs):
    cert, address = certs["ec"]
    der = tmp_path / "c.der"
    run(["openssl", "x509", "-in", cert, "-outform", "DER", "-out", der])
    store.ctl("cert", "add", address, der)
    other, other_address = certs["rsa"]
    p7 = tmp_path / "bundle.p7b"
    # A bundle: the certificate that names the address is the one published.
    run(["openssl", "crl2pkcs7", "-nocrl", "-certfile", cert, "-certfile", other, "-out", p7])
    r = store.ctl("cert", "add", other_address, p7)
    assert r.stdout.startswith("added ")
    local, domain = other_address.split("@")
    assert (owner(local, domain), 3600, "3 0 0", openssl_association(other, 0, 0)) in \
        exported(store, "example.com")
    assert counts(store) == (1, 2, 2)


def test_utf8_mailbox_certificate(store):
    # tests/data/certs/utf8.pem names пример@example.com in a SmtpUTF8Mailbox.
    store.ctl("cert", "add", "пример@example.com", DATA / "utf8.pem")
    assert [o for o, *_ in exported(store, "example.com")] == [owner("пример", "example.com")]


# --- refused inputs ---------------------------------------------------------------------------

def _garbage(tmp_path):
    p = tmp_path / "garbage.pem"
    p.write_bytes(b"this is not a certificate\n" * 20)
    return p


def _oversize(tmp_path):
    p = tmp_path / "big.pem"
    p.write_bytes((DATA / "ec.pem").read_bytes() + b"\n" * (1024 * 1024))
    return p


def _empty(tmp_path):
    p = tmp_path / "empty.pem"
    p.write_bytes(b"")
    return p


def _cert_then_key(tmp_path, between, indent):
    """ec.pem, then its key: after some text, or indented as when pasted from YAML or mail.
    OpenSSL's PEM reader sees only the certificate."""
    key = b"".join(indent + line for line in (DATA / "ec.key").read_bytes().splitlines(True))
    p = tmp_path / "cert-and-key.pem"
    p.write_bytes((DATA / "ec.pem").read_bytes() + between + key)
    return p


REFUSALS = {
    # name: (address, input maker, words the message must contain)
    "not-naming": ("bob@example.com", lambda t, c: c["ec"][0], ["does not name"]),
    "expired": ("old@example.com", lambda t, c: expired_cert(t, "old@example.com"), ["expired"]),
    "ca-with-usage-3": ("ca@example.com", lambda t, c: DATA / "ca.pem", ["CA"]),
    "private-key": ("ec.user@example.com", lambda t, c: DATA / "ec.key", ["private key"]),
    "private-key-der": ("ec.user@example.com", lambda t, c: DATA / "ec.key.der", ["private key"]),
    "private-key-indented": ("ec.user@example.com", lambda t, c: _cert_then_key(t, b"", b"  "),
                             ["private key"]),
    "private-key-after-text": ("ec.user@example.com",
                               lambda t, c: _cert_then_key(t, b"junk", b""), ["private key"]),
    "csr": ("ec.user@example.com", lambda t, c: DATA / "csr.pem", ["request"]),
    "empty": ("ec.user@example.com", lambda t, c: _empty(t), ["empty"]),
    "garbage": ("ec.user@example.com", lambda t, c: _garbage(t), ["not a certificate"]),
    "oversize": ("ec.user@example.com", lambda t, c: _oversize(t), ["larger than"]),
    "missing-file": ("ec.user@example.com", lambda t, c: t / "absent.pem", ["absent.pem"]),
    "directory": ("ec.user@example.com", lambda t, c: t, ["Is a directory"]),
    "no-zone": ("bob@example.net", lambda t, c: DATA / "ec.pem", ["no zone", "example.net"]),
    "bad-address": ("not-an-address", lambda t, c: c["ec"][0], ["not-an-address"]),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refused_input_changes_nothing(store, tmp_path, certs, case):
    store.ctl("cert", "add", certs["rsa"][1], certs["rsa"][0])  # something to keep
    address, make_input, words = REFUSALS[case]
    path = make_input(tmp_path, certs)
    before = dump(store)
    line = refused(store, "cert", "add", address, path)
    for word in words:
        assert word in line, line
    assert dump(store) == before
    assert integrity_ok(store)
    assert counts(store) == (1, 1, 1)


def test_refused_ca_with_usage_2_is_fine(store):
    # DANE-TA (2) is for trust anchors: a CA certificate is what it expects.
    store.ctl("cert", "add", "ca@example.com", DATA / "ca.pem", "--usage", "2")
    assert [r[2] for r in exported(store, "example.com")] == ["2 0 0"]


def make_chain(directory, address, ca_subject="/CN=Example CA"):
    """A CA, and a certificate for `address` that it issued, made with the openssl CLI.
    Returns (ca_pem, leaf_pem, bundle_pem), the bundle being the leaf then the CA."""
    d = pathlib.Path(directory)
    d.mkdir(exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run(["openssl", "req", "-x509", *ec, "-keyout", d / "ca.key", "-out", d / "ca.pem",
         "-subj", ca_subject, "-days", "30", "-addext",
         "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"])
    run(["openssl", "req", *ec, "-keyout", d / "leaf.key", "-out", d / "leaf.csr",
         "-subj", "/CN=Leaf"])
    (d / "leaf.ext").write_text(f"subjectAltName=email:{address}\nbasicConstraints=CA:FALSE\n")
    run(["openssl", "x509", "-req", "-in", d / "leaf.csr", "-CA", d / "ca.pem", "-CAkey",
         d / "ca.key", "-CAcreateserial", "-days", "30", "-extfile", d / "leaf.ext",
         "-out", d / "leaf.pem"])
    (d / "bundle.pem").write_text((d / "leaf.pem").read_text() + (d / "ca.pem").read_text())
    return d / "ca.pem", d / "leaf.pem", d / "bundle.pem"


def test_anchor_usages_publish_the_ca_of_the_chain(store, tmp_path):
    """Usages 0 and 2 point at the CA that issued the address's certificate (RFC 6698 section
    2.1.1), usages 1 and 3 at the certificate itself: from a bundle of both, each record gets
    the right one, all at the address's owner name."""
    ca, leaf, bundle = make_chain(tmp_path, "alice@example.com")
    r = store.ctl("cert", "add", "alice@example.com", bundle, "--record", "3 1 1", "--record",
                  "2 0 1", "--record", "0 1 2")
    assert r.stderr == "", r.stderr
    assert sorted(exported(store, "example.com")) == sorted([
        (owner("alice", "example.com"), 3600, "3 1 1", openssl_association(leaf, 1, 1)),
        (owner("alice", "example.com"), 3600, "2 0 1", openssl_association(ca, 0, 1)),
        (owner("alice", "example.com"), 3600, "0 1 2", openssl_association(ca, 1, 2))])
    listed = json.loads(store.ctl("--json", "cert", "list", "alice@example.com").stdout)
    assert sorted(c["fingerprint"] for c in listed) == sorted(
        [openssl_fingerprint(leaf), openssl_fingerprint(ca)])

    # Without the CA there is no anchor to publish: refused, unless forced (with a warning).
    before = dump(store)
    line = refused(store, "cert", "add", "alice@example.com", leaf, "--usage", "2")
    assert "not a CA certificate" in line and "--force" in line, line
    assert dump(store) == before
    r = store.ctl("cert", "add", "alice@example.com", leaf, "--usage", "2", "--force")
    assert "not a CA certificate" in r.stderr, r.stderr
    # cert import takes the certificate the files hold: a leaf is no anchor.
    doc = json.loads(store.ctl("--json", "cert", "import", leaf, "--usage", "0",
                               check=False).stdout)
    assert doc["added"] == 0 and "not a CA certificate" in doc["skipped"][0], doc


def test_anchor_usages_take_only_the_cas_that_issued_the_certificate(store, tmp_path):
    """A bundle with an unrelated CA appended (a system CA file, say), and a CA whose subject
    names the address (openssl's prompts ask for an email): usage 2 goes to the issuing CA
    only, usage 3 to the end-entity certificate only."""
    ca, leaf, bundle = make_chain(tmp_path / "a", "alice@example.com",
                                  "/CN=Example CA/emailAddress=alice@example.com")
    other_ca, _, _ = make_chain(tmp_path / "b", "zed@example.com", "/CN=Other CA")
    mixed = tmp_path / "mixed.pem"
    mixed.write_text(leaf.read_text() + other_ca.read_text() + ca.read_text())
    store.ctl("cert", "add", "alice@example.com", mixed, "--record", "3 1 1", "--record",
              "2 1 1")
    assert sorted(r[2:] for r in exported(store, "example.com")) == sorted([
        ("3 1 1", openssl_association(leaf, 1, 1)), ("2 1 1", openssl_association(ca, 1, 1))])


def test_refused_rrset_cap(tmp_path, certs):
    (tmp_path / "s").mkdir()
    s = Store(tmp_path / "s", extra_config="max-rrset-bytes: 1024\n")
    s.ctl("zone", "add", "example.com")
    cert, address = certs["rsa"]  # 3 0 0 of an RSA-2048 certificate: ~800 octets
    s.ctl("cert", "add", address, cert)
    other = make_cert(tmp_path, address, key="rsa", name="second")[0]
    before = dump(s)
    line = refused(s, "cert", "add", address, other)
    assert "max-rrset-bytes" in line
    assert dump(s) == before


def test_rrset_cap_holds_when_a_certificate_moves_into_its_zone(tmp_path, certs):
    """A store from before zone add moved certificates: adding one again moves it into the
    _smimecert zone, whose RRset for the owner it joins must stay under the cap."""
    (tmp_path / "s").mkdir()
    s = Store(tmp_path / "s", extra_config="max-rrset-bytes: 1024\n")
    s.ctl("zone", "add", "example.com")
    cert, address = certs["rsa"]  # 3 0 0 of an RSA-2048 certificate: ~800 octets
    s.ctl("cert", "add", address, cert)
    s.ctl("zone", "add", "_smimecert.example.com")
    sql(s, "UPDATE records SET zone_id = (SELECT id FROM zones WHERE name = 'example.com');"
           "UPDATE certificates SET zone_id = (SELECT id FROM zones WHERE name = 'example.com')")
    other = make_cert(tmp_path, address, key="rsa", name="second")[0]
    s.ctl("cert", "add", address, other)  # alone in _smimecert.example.com: under the cap
    before = dump(s)
    line = refused(s, "cert", "add", address, cert)
    assert "max-rrset-bytes" in line, line
    assert dump(s) == before


def test_force_publishes_a_certificate_that_does_not_name_the_address(store, certs):
    cert, _ = certs["ec"]
    r = store.ctl("cert", "add", "someone@example.com", cert, "--force")
    assert "warning" in r.stderr and "does not name" in r.stderr
    assert [o for o, *_ in exported(store, "example.com")] == [owner("someone", "example.com")]


def test_force_publishes_a_ca_certificate(store):
    r = store.ctl("cert", "add", "ca@example.com", DATA / "ca.pem", "--force")
    assert "warning" in r.stderr and "CA" in r.stderr
    assert counts(store) == (1, 1, 1)


def test_allow_expired(store, tmp_path):
    cert = expired_cert(tmp_path, "old@example.com")
    before = dump(store)
    # --force is not enough for an expired certificate.
    assert "expired" in refused(store, "cert", "add", "old@example.com", cert, "--force")
    assert dump(store) == before
    r = store.ctl("cert", "add", "old@example.com", cert, "--allow-expired")
    assert "warning" in r.stderr and "expired" in r.stderr
    assert counts(store) == (1, 1, 1)


# --- idempotence and serials ------------------------------------------------------------------

def test_same_certificate_twice_changes_nothing(store, certs):
    cert, address = certs["ec"]
    store.ctl("cert", "add", address, cert)
    s1 = serial(store, "example.com")
    before = dump(store)
    r = store.ctl("cert", "add", address, cert)
    assert "unchanged" in r.stdout
    assert dump(store) == before
    assert serial(store, "example.com") == s1
    doc = json.loads(store.ctl("--json", "cert", "add", address, cert).stdout)
    assert doc["added"][0]["records_added"] == 0
    assert doc["serial"] == s1


def test_same_certificate_with_another_ttl_updates_its_rrset(store, certs):
    # One TTL per RRset (RFC 2181 section 5.2): the new TTL is the whole owner's, also for the
    # 3 0 0 record not named this time.
    cert, address = certs["ec"]
    store.ctl("cert", "add", address, cert, "--record", "3 1 1", "--record", "3 0 0")
    s1 = serial(store, "example.com")
    r = store.ctl("cert", "add", address, cert, "--record", "3 1 1", "--ttl", "300")
    assert r.stdout.startswith("updated ") and "TTL of 2 record(s) changed" in r.stdout, r.stdout
    assert sql(store, "SELECT usage || selector || matching_type, ttl FROM records ORDER BY 1") \
        == "300|300\n311|300"
    assert serial(store, "example.com") > s1
    assert counts(store) == (1, 1, 2)


def test_serial_moves_on_every_change(store, certs):
    s0 = serial(store, "example.com")
    store.ctl("cert", "add", certs["ec"][1], certs["ec"][0])
    s1 = serial(store, "example.com")
    store.ctl("cert", "add", certs["rsa"][1], certs["rsa"][0])
    s2 = serial(store, "example.com")
    store.ctl("cert", "remove", certs["ec"][1])
    s3 = serial(store, "example.com")
    assert s0 < s1 < s2 < s3
    zones = json.loads(store.ctl("--json", "zone", "list").stdout)
    assert zones[0]["serial"] == s3


# --- cert import ------------------------------------------------------------------------------

def test_import_directory_reports_added_and_skipped(store, tmp_path, certs):
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    for key in ("rsa", "ec"):
        (d / f"{key}.pem").write_bytes(pathlib.Path(certs[key][0]).read_bytes())
    (d / "sub" / "ed.pem").write_bytes(pathlib.Path(certs["ed25519"][0]).read_bytes())
    (d / "key.pem").write_bytes((DATA / "ec.key").read_bytes())
    (d / "garbage.txt").write_bytes(b"garbage\n")
    (d / "otherzone.pem").write_bytes((DATA / "ed25519.pem").read_bytes())  # carol@example.org
    (d / "noaddr.pem").write_bytes((DATA / "noaddr.pem").read_bytes())
    expired = expired_cert(tmp_path, "old@example.com")
    (d / "expired.pem").write_bytes(expired.read_bytes())
    s0 = serial(store, "example.com")
    r = store.ctl("--json", "cert", "import", d)
    doc = json.loads(r.stdout)
    assert doc["added"] == 3
    assert doc["unchanged"] == 0
    assert doc["records_added"] == 3
    assert doc["zones_changed"] == ["example.com"]
    assert len(doc["skipped"]) == 5
    skipped = "\n".join(doc["skipped"])
    for word in ("key.pem", "garbage.txt", "otherzone.pem", "noaddr.pem", "expired.pem"):
        assert word in skipped
    assert counts(store) == (1, 3, 3)
    assert serial(store, "example.com") > s0

    # Again, for people: one stderr line per skipped input, the summary on stdout.
    r = store.ctl("cert", "import", d)
    assert "3 unchanged" in r.stdout and "5 skipped" in r.stdout
    assert len([x for x in r.stderr.splitlines() if x.startswith("smimea-ctl: skipped ")]) == 5
    assert counts(store) == (1, 3, 3)


def test_import_goes_on_past_an_unreadable_directory(store, tmp_path, certs):
    """A subdirectory that cannot be read is reported by its own path, and the certificates in
    the directories after it are still imported."""
    d = tmp_path / "in"
    for sub, key in (("a", "rsa"), ("locked", "ec"), ("z", "ed25519")):
        (d / sub).mkdir(parents=True)
        (d / sub / f"{key}.pem").write_bytes(pathlib.Path(certs[key][0]).read_bytes())
    (d / "locked").chmod(0)
    # Root reads any directory: take away the capabilities that let it.
    drop = (["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
            if os.geteuid() == 0 else [])
    try:
        r = run(drop + [str(CTL), "--config", str(store.config), "--json", "cert", "import",
                        str(d)])
    finally:
        (d / "locked").chmod(0o755)
    doc = json.loads(r.stdout)
    assert doc["added"] == 2, doc
    assert len(doc["skipped"]) == 1, doc
    assert doc["skipped"][0].startswith(f"{d / 'locked'}: "), doc
    assert "ermission denied" in doc["skipped"][0]
    assert counts(store) == (1, 2, 2)


def test_import_skips_a_certificate_over_the_rrset_cap_entirely(tmp_path, certs):
    (tmp_path / "s").mkdir()
    s = Store(tmp_path / "s", extra_config="max-rrset-bytes: 1024\n")
    s.ctl("zone", "add", "example.com")
    cert, address = certs["rsa"]
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.pem").write_bytes(pathlib.Path(cert).read_bytes())
    (d / "b.pem").write_bytes(
        pathlib.Path(make_cert(tmp_path, address, key="rsa", name="second")[0]).read_bytes())
    (d / "c.pem").write_bytes(pathlib.Path(certs["ec"][0]).read_bytes())
    # Each certificate gets 3 0 0 (~800 octets) and 3 1 1: the second RSA one does not fit.
    doc = json.loads(s.ctl("--json", "cert", "import", d, "--record", "3 1 1",
                           "--record", "3 0 0").stdout)
    assert doc["added"] == 2
    assert len(doc["skipped"]) == 1 and "b.pem" in doc["skipped"][0]
    assert "max-rrset-bytes" in doc["skipped"][0]
    # Nothing of b.pem stayed behind: two certificates, two records each.
    assert counts(s) == (1, 2, 4)
    assert sql(s, "SELECT count(*) FROM certificates WHERE lower(hex(fingerprint)) = "
                  f"'{openssl_fingerprint(d / 'b.pem')}'") == "0"
    assert integrity_ok(s)


def test_import_with_record_options(store, certs):
    cert, address = certs["ed25519"]
    store.ctl("cert", "import", cert, "--selector", "1", "--matching-type", "2")
    local, domain = address.split("@")
    assert exported(store, "example.com") == [
        (owner(local, domain), 3600, "3 1 2", openssl_association(cert, 1, 2))]


def test_import_all_skipped_is_refused(store, tmp_path):
    before = dump(store)
    r = store.ctl("cert", "import", DATA / "ec.key", DATA / "csr.pem", check=False)
    assert r.returncode == 1
    assert len(r.stderr.splitlines()) == 2
    assert dump(store) == before


def test_import_killed_halfway_leaves_the_store_consistent(store, bulk):
    directory, total_bytes = bulk
    store.ctl("zone", "add", "bulk.example")
    before = counts(store)
    # Every file read, then the import blocks on stdin ("-") inside its transaction.
    proc = subprocess.Popen([CTL, "--config", store.config, "cert", "import", directory, "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_until_read(proc, total_bytes)
    time.sleep(0.2)
    assert proc.poll() is None
    proc.kill()
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert counts(store) == before
    assert integrity_ok(store)

    # Killed at some point while reading: none or all of the import, never a part.
    for _ in range(2):
        proc = subprocess.Popen([CTL, "--config", store.config, "cert", "import", directory],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_until_read(proc, random.randint(total_bytes // 4, total_bytes * 3 // 4))
        proc.kill()
        proc.wait()
        after = counts(store)
        assert after in (before, (before[0], before[1] + 3000, before[2] + 3000)), after
        assert integrity_ok(store)
        if after != before:
            break

    doc = json.loads(store.ctl("--json", "cert", "import", directory).stdout)
    assert doc["added"] + doc["unchanged"] == 3000
    assert counts(store) == (before[0], before[1] + 3000, before[2] + 3000)
    assert integrity_ok(store)
    assert int(sql(store, "SELECT count(DISTINCT owner) FROM records r JOIN zones z ON "
                          "z.id = r.zone_id WHERE z.name = 'bulk.example'")) == 3000


def test_readers_keep_reading_during_an_import(store, bulk, certs):
    directory, total_bytes = bulk
    store.ctl("zone", "add", "bulk.example")
    store.ctl("cert", "add", certs["ec"][1], certs["ec"][0])
    proc = subprocess.Popen([CTL, "--config", store.config, "--json", "cert", "import", directory,
                             "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        _wait_until_read(proc, total_bytes)
        # The import holds its write transaction open; readers see the last commit.
        for _ in range(3):
            assert sql(store, "SELECT count(*) FROM certificates") == "1"
            listed = json.loads(store.ctl("--json", "cert", "list").stdout)
            assert [c["address"] for c in listed] == [certs["ec"][1]]
            assert exported(store, "example.com")
        assert proc.poll() is None
        out, err = proc.communicate(input=pathlib.Path(certs["rsa"][0]).read_bytes(), timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert json.loads(out)["added"] == 3001
    assert sql(store, "SELECT count(*) FROM certificates") == "3002"
    assert len(json.loads(store.ctl("--json", "cert", "list", "--zone", "bulk.example").stdout)) \
        == 3000


def _wait_until_read(proc, nbytes, timeout=120):
    """Waits until proc has read nbytes through read(2) (/proc/PID/io rchar)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            io = pathlib.Path(f"/proc/{proc.pid}/io").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            io = ""
        if proc.poll() is not None:
            raise AssertionError(f"exited early with {proc.returncode}")
        for line in io.splitlines():
            if line.startswith("rchar:") and int(line.split()[1]) >= nbytes:
                return
        time.sleep(0.001)
    raise AssertionError("timed out")


# --- cert list / remove -----------------------------------------------------------------------

def test_cert_list_json(store, certs):
    store.ctl("zone", "add", "_smimecert.example.org")
    for key in ("rsa", "ec"):
        store.ctl("cert", "add", certs[key][1], certs[key][0])
    store.ctl("cert", "add", "carol@example.org", DATA / "ed25519.pem", "--selector", "1",
              "--matching-type", "1")
    listed = json.loads(store.ctl("--json", "cert", "list").stdout)
    assert [c["address"] for c in listed] == sorted([certs["rsa"][1], certs["ec"][1],
                                                     "carol@example.org"])
    by_address = {c["address"]: c for c in listed}
    carol = by_address["carol@example.org"]
    assert carol["zone"] == "_smimecert.example.org"
    assert carol["fingerprint"] == openssl_fingerprint(DATA / "ed25519.pem")
    assert carol["subject"] == "CN=Carol"
    assert carol["records"] == [{"owner": owner("carol", "example.org"), "usage": 3,
                                 "selector": 1, "matching_type": 1, "ttl": 3600,
                                 "data_bytes": 32}]
    rsa = by_address[certs["rsa"][1]]
    assert rsa["records"][0]["data_bytes"] == len(openssl_der(certs["rsa"][0]))
    serial_hex = run(["openssl", "x509", "-in", certs["rsa"][0], "-noout", "-serial"]).stdout
    assert int(rsa["serial"], 16) == int(serial_hex.strip().split("=")[1], 16)

    only = json.loads(store.ctl("--json", "cert", "list", "--zone", "_smimecert.example.org").stdout)
    assert [c["address"] for c in only] == ["carol@example.org"]
    one = json.loads(store.ctl("--json", "cert", "list", certs["ec"][1]).stdout)
    assert [c["address"] for c in one] == [certs["ec"][1]]
    text = store.ctl("cert", "list").stdout
    assert owner("carol", "example.org") in text


def test_cert_remove(store, certs):
    cert, address = certs["ec"]
    store.ctl("cert", "add", address, cert)
    store.ctl("cert", "add", certs["rsa"][1], certs["rsa"][0])
    r = store.ctl("cert", "remove", address)
    assert "removed 1" in r.stdout
    assert counts(store) == (1, 1, 1)
    before = dump(store)
    assert "no certificate" in refused(store, "cert", "remove", address)
    assert dump(store) == before


def test_cert_remove_by_fingerprint(store, certs, tmp_path):
    cert, address = certs["ec"]
    second = make_cert(tmp_path, address, key="ec", name="second")[0]
    store.ctl("cert", "add", address, cert)
    store.ctl("cert", "add", address, second)
    assert counts(store) == (1, 2, 2)
    before = dump(store)
    wrong = "00" * 32
    assert "fingerprint" in refused(store, "cert", "remove", address, "--fingerprint", wrong)
    assert "fingerprint" in refused(store, "cert", "remove", address, "--fingerprint", "xyz")
    assert dump(store) == before
    fp = openssl_fingerprint(second)
    colons = ":".join(fp[i:i + 2] for i in range(0, 64, 2)).upper()
    store.ctl("cert", "remove", address, "--fingerprint", colons)
    assert counts(store) == (1, 1, 1)
    assert sql(store, "SELECT lower(hex(fingerprint)) FROM certificates") == \
        openssl_fingerprint(cert)


# --- zones ------------------------------------------------------------------------------------

def test_smimecert_zone_added_later_takes_over_the_domains_certificates(store, certs):
    """The delegated layout adopted after certificates went into the domain's own zone:
    queries for their owners go to the most specific zone, so `zone add _smimecert.<domain>`
    moves them there, records and all, in the same transaction."""
    store.ctl("zone", "add", "example.org")
    store.ctl("cert", "add", certs["ec"][1], certs["ec"][0])
    store.ctl("cert", "add", certs["rsa"][1], certs["rsa"][0])
    store.ctl("cert", "add", "carol@example.org", DATA / "ed25519.pem")
    published = exported(store, "example.com")
    s_com, s_org = serial(store, "example.com"), serial(store, "example.org")

    r = store.ctl("zone", "add", "_smimecert.example.com")
    assert "moved 2 certificate(s) of example.com" in r.stdout, r.stdout
    assert exported(store, "_smimecert.example.com") == published
    assert exported(store, "example.com") == []
    assert exported(store, "example.org") != []
    listed = json.loads(store.ctl("--json", "cert", "list").stdout)
    assert {c["address"]: c["zone"] for c in listed} == {
        certs["ec"][1]: "_smimecert.example.com", certs["rsa"][1]: "_smimecert.example.com",
        "carol@example.org": "example.org"}
    assert sql(store, "SELECT count(*) FROM records r JOIN certificates c ON "
                      "c.id = r.certificate_id WHERE r.zone_id != c.zone_id") == "0"
    assert serial(store, "example.com") > s_com
    assert serial(store, "example.org") == s_org
    doc = json.loads(store.ctl("--json", "zone", "add", "_smimecert.example.org").stdout)
    assert doc["certificates_moved"] == 1
    # Removing the _smimecert zone undoes the move: nothing is lost.
    s_com = serial(store, "example.com")
    r = store.ctl("zone", "remove", "_smimecert.example.com")
    assert "moved 2 certificate(s) back into zone example.com" in r.stdout, r.stdout
    assert exported(store, "example.com") == published
    assert serial(store, "example.com") > s_com
    store.ctl("zone", "add", "_smimecert.example.com")
    assert exported(store, "_smimecert.example.com") == published

    # A store from before this move: adding a certificate again moves it.
    sql(store, "UPDATE records SET zone_id = (SELECT id FROM zones WHERE name = 'example.org') "
               "WHERE certificate_id = (SELECT id FROM certificates WHERE address = "
               "'carol@example.org');"
               "UPDATE certificates SET zone_id = (SELECT id FROM zones WHERE name = "
               "'example.org') WHERE address = 'carol@example.org'")
    r = store.ctl("cert", "add", "carol@example.org", DATA / "ed25519.pem")
    assert r.stdout.startswith("updated ") and "moved into this zone" in r.stdout, r.stdout
    assert [c["zone"] for c in json.loads(store.ctl("--json", "cert", "list",
                                                    "carol@example.org").stdout)] == \
        ["_smimecert.example.org"]


def test_zone_add_list_remove(store, certs):
    store.ctl("zone", "add", "_smimecert.Example.ORG.")
    store.ctl("zone", "add", "bücher.example", "--mode", "overlay")
    zones = json.loads(store.ctl("--json", "zone", "list").stdout)
    alabel = "bücher".encode("idna").decode()
    assert [(z["zone"], z["mode"]) for z in zones] == [
        ("_smimecert.example.org", "authoritative"), ("example.com", "authoritative"),
        (f"{alabel}.example", "overlay")]
    assert all(isinstance(z["serial"], int) and z["serial"] > 0 for z in zones)
    before = dump(store)
    assert "exists" in refused(store, "zone", "add", "EXAMPLE.com")
    assert "bad..name" in refused(store, "zone", "add", "bad..name")
    refused(store, "zone", "add", "x.example", "--mode", "primary", code=2)
    assert dump(store) == before

    store.ctl("cert", "add", certs["ec"][1], certs["ec"][0])
    before = dump(store)
    assert "--force" in refused(store, "zone", "remove", "example.com")
    assert dump(store) == before
    r = store.ctl("zone", "remove", "example.com", "--force")
    assert "1 certificate" in r.stdout
    assert counts(store) == (2, 0, 0)
    store.ctl("zone", "remove", f"{alabel}.example")
    assert "no such zone" in refused(store, "zone", "remove", "example.com")
    assert integrity_ok(store)


# --- configuration, usage and store errors ----------------------------------------------------

@pytest.mark.parametrize("bad, line, key", [
    ("defualt-ttl: 60\n", 2, "defualt-ttl"),
    ("default-ttl: 700000\n", 2, "default-ttl"),
    ("soa:\n  refresh: 0\n", 3, "soa.refresh"),
    ("max-rrset-bytes: 1\n", 2, "max-rrset-bytes"),
    ("default-ttl: 60\ndefault-ttl: 70\n", 3, "default-ttl"),
])
def test_bad_config_exits_2_naming_file_line_and_key(tmp_path, bad, line, key):
    config = tmp_path / "smimea.yaml"
    config.write_text(f"database: {tmp_path}/store.db\n{bad}")
    for args in (["zone", "list"], ["init"], ["cert", "add", "a@example.com", DATA / "ec.pem"],
                 ["check-config"], ["name", "a@example.com"]):
        r = run([CTL, "--config", config, *args], check=False)
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.splitlines()
        assert len(lines) == 1, r.stderr
        assert lines[0].startswith(f"smimea-ctl: {config}:{line}: {key}: "), lines[0]
    assert not (tmp_path / "store.db").exists()


def test_missing_config_exits_2(tmp_path):
    r = run([CTL, "--config", tmp_path / "absent.yaml", "zone", "list"], check=False)
    assert r.returncode == 2
    assert "absent.yaml" in r.stderr


@pytest.mark.parametrize("args", [
    [], ["frobnicate"], ["zone"], ["zone", "add"], ["cert", "add", "a@example.com"],
    ["cert", "add", "a@example.com", "f.pem", "--usage", "4"],
    ["cert", "add", "a@example.com", "f.pem", "--selector", "x"],
    ["cert", "add", "a@example.com", "f.pem", "--no-such-option"],
    ["cert", "import"], ["name"], ["export"],
])
def test_usage_errors_exit_2(store, args):
    before = dump(store)
    refused(store, *args, code=2)
    assert dump(store) == before


def test_store_errors_exit_3(tmp_path):
    config = tmp_path / "smimea.yaml"
    db = tmp_path / "store.db"
    config.write_text(f"database: {db}\n")
    for args in (["zone", "list"], ["zone", "add", "example.com"], ["cert", "list"],
                 ["cert", "add", "bob@example.net", DATA / "ec.pem"],
                 ["cert", "import", DATA / "ec.pem"], ["export", "example.com"],
                 ["check-config"]):
        r = run([CTL, "--config", config, *args], check=False)
        assert r.returncode == 3, (args, r.returncode, r.stderr)
        assert len(r.stderr.splitlines()) == 1
        assert "init" in r.stderr
    assert not db.exists()

    db.write_text("not a database\n" * 1000)
    r = run([CTL, "--config", config, "zone", "list"], check=False)
    assert r.returncode == 3 and len(r.stderr.splitlines()) == 1

    db.unlink()
    run([CTL, "--config", config, "init"])
    run(["sqlite3", db, "PRAGMA user_version = 99"])
    for args in (["zone", "list"], ["init"]):
        r = run([CTL, "--config", config, *args], check=False)
        assert r.returncode == 3
        assert "newer" in r.stderr and "99" in r.stderr
        assert len(r.stderr.splitlines()) == 1


@pytest.mark.parametrize("umask,mode", [("022", 0o640), ("007", 0o660), ("077", 0o600)])
def test_init_creates_the_store_with_the_umask(tmp_path, umask, mode):
    # 0660 minus the umask, never readable by others (it holds DNSSEC private keys and TSIG
    # secrets), not SQLite's fixed 0644: the package relies on umask 007 to let the pdns group
    # write the store (README, Packaging).
    config = tmp_path / "smimea.yaml"
    config.write_text(f"database: {tmp_path / 'store.db'}\n")
    run(["sh", "-c", f'umask {umask}; exec "$0" --config "$1" init', CTL, config])
    assert stat.S_IMODE((tmp_path / "store.db").stat().st_mode) == mode


def test_init_is_idempotent(store):
    before = dump(store)
    r = store.ctl("init")
    assert "up to date" in r.stdout
    assert dump(store) == before
    assert sql(store, "PRAGMA journal_mode") == "wal"


def test_check_config(store, tmp_path):
    """The unit's ExecStartPre: ok with the store's zone count; a bad store fails it (exit 3),
    so systemd never starts a backend that would refuse pdns."""
    r = store.ctl("check-config")
    assert r.stdout == f"{store.config}: ok; store {store.db} (1 zones)\n", r.stdout
    doc = json.loads(store.ctl("--json", "check-config").stdout)
    assert doc == {"config": str(store.config), "database": str(store.db), "zones": 1}
    config = tmp_path / "other.yaml"
    config.write_text(f"database: {tmp_path / 'absent.db'}\n")
    r = run([CTL, "--config", config, "check-config"], check=False)
    assert r.returncode == 3 and "absent.db" in r.stderr, r


# --- export -----------------------------------------------------------------------------------

def named_checkzone(zone, text, tmp_path):
    path = tmp_path / f"{zone}.zone"
    path.write_text(text)
    r = run([NAMED_CHECKZONE, "-i", "full", "-k", "fail", "-n", "fail", zone, path], check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_export_passes_named_checkzone(store, certs, tmp_path):
    for key in ("rsa", "ec", "ed25519"):
        cert, address = certs[key]
        store.ctl("cert", "add", address, cert, "--record", "3 0 0", "--record", "3 1 1",
                  "--record", "1 1 2")
    store.ctl("cert", "add", "пример@example.com", DATA / "utf8.pem")
    mixed = make_cert(tmp_path, "Mixed.Case@example.com")[0]
    store.ctl("cert", "add", "Mixed.Case@example.com", mixed, "--ttl", "60")
    store.ctl("zone", "add", "_smimecert.example.org")
    store.ctl("cert", "add", "carol@example.org", DATA / "ed25519.pem")
    store.ctl("zone", "add", "empty.example")

    text = store.ctl("export", "example.com").stdout
    out = named_checkzone("example.com", text, tmp_path)
    assert f"serial {serial(store, 'example.com')}" in out
    assert len(exported(store, "example.com")) == 3 * 3 + 1 + 2
    lines = [x.split() for x in text.splitlines() if x and not x.startswith(";")]
    assert lines[0][:4] == ["example.com.", "3600", "IN", "SOA"]
    assert lines[0][4:] == ["ns1.example.net.", "hostmaster.invalid.",
                            str(serial(store, "example.com")), "10800", "3600", "1209600", "300"]
    assert [x[4] for x in lines if x[3] == "NS"] == ["ns1.example.net.", "ns2.example.net."]

    named_checkzone("_smimecert.example.org", store.ctl("export", "_smimecert.example.org").stdout,
                    tmp_path)
    assert exported(store, "_smimecert.example.org") == [
        (owner("carol", "example.org"), 3600, "3 0 0",
         openssl_association(DATA / "ed25519.pem", 0, 0))]
    named_checkzone("empty.example", store.ctl("export", "empty.example").stdout, tmp_path)


def test_export_of_an_overlay_zone_holds_only_the_records(store, certs, tmp_path):
    store.ctl("zone", "add", "example.net", "--mode", "overlay")
    store.ctl("cert", "add", "bob@example.net", DATA / "ec.pem")
    text = store.ctl("export", "example.net").stdout
    assert not any(" SOA " in x or "\tSOA\t" in x for x in text.splitlines())
    # The lines belong in the zone the other backend serves: they load next to its SOA and NS.
    head = ("example.net. 3600 IN SOA ns1.example.net. hostmaster.example.net. 1 2 3 4 5\n"
            "example.net. 3600 IN NS ns.example.org.\n")
    named_checkzone("example.net", head + text, tmp_path)


def test_export_unknown_zone(store):
    assert "no such zone" in refused(store, "export", "example.info")


# --- smimea-ctl token -------------------------------------------------------------------------

def _store_bytes(store):
    """Every byte the store keeps on disk: the database, its WAL and shared-memory index."""
    return b"".join(p.read_bytes() for p in store.dir.glob("store.db*"))


def test_token_secret_is_printed_once_and_stored_only_as_its_sha256(store):
    r = store.ctl("token", "add", "panel", "--zone", "example.com", "--expires-days", "30")
    lines = r.stdout.strip().splitlines()
    secret = lines[-1]
    assert re.fullmatch(r"smimea_[A-Za-z0-9_-]{43}", secret), r.stdout
    assert "panel" in lines[0] and "example.com" in lines[0]
    # 256 bits of base64url: decodes to 32 octets.
    assert len(base64.urlsafe_b64decode(secret[len("smimea_"):] + "=")) == 32
    listed = store.ctl("token", "list").stdout + store.ctl("token", "list", "--json").stdout
    assert secret not in listed and secret[len("smimea_"):] not in listed
    assert secret.encode() not in _store_bytes(store)
    db = sqlite3.connect(store.db)
    try:
        (stored,) = db.execute("SELECT secret_sha256 FROM tokens WHERE name='panel'").fetchone()
    finally:
        db.close()
    assert stored == hashlib.sha256(secret.encode()).digest()
    # Two tokens never share a secret.
    other = store.ctl("token", "add", "other", "--zone", "example.com").stdout.split()[-1]
    assert other != secret


def test_token_list_remove_and_json(store):
    store.ctl("token", "add", "cust", "--address", "Alice@Example.COM", "--network",
              "192.0.2.0/24", "--read-only")
    store.ctl("token", "add", "ops", "--admin")
    tokens = {t["name"]: t for t in json.loads(store.ctl("token", "list", "--json").stdout)}
    assert tokens["cust"]["addresses"] == ["Alice@example.com"]
    assert tokens["cust"]["networks"] == ["192.0.2.0/24"]
    assert tokens["cust"]["read_only"] is True and tokens["cust"]["admin"] is False
    assert tokens["ops"]["admin"] is True and tokens["ops"]["expires"] is None
    assert tokens["ops"]["created_by"].startswith("cli:")
    assert "secret" not in json.dumps(tokens)
    store.ctl("token", "remove", "cust")
    r = store.ctl("token", "remove", "cust", check=False)
    assert r.returncode == 1 and "no such token" in r.stderr
    assert [t["name"] for t in json.loads(store.ctl("token", "list", "--json").stdout)] == ["ops"]


@pytest.mark.parametrize("args, words", [
    (["t"], "needs a scope"),
    (["t", "--zone", "example.org"], "example.org"),
    (["bad name", "--zone", "example.com"], "letters, digits"),
    (["t", "--admin", "--zone", "example.com"], "every zone"),
    (["t", "--zone", "example.com", "--expires-days", "0"], "not in range"),
    (["t", "--zone", "example.com", "--network", "example.com"], "not an IPv4 or IPv6 network"),
])
def test_token_add_refused_changes_nothing(store, args, words):
    r = store.ctl("token", "add", *args, check=False)
    assert r.returncode in (1, 2), r
    assert words in r.stderr
    assert r.stdout == ""
    assert json.loads(store.ctl("token", "list", "--json").stdout) == []


def test_cert_changes_record_who_made_them(store, certs):
    cert, address = certs["ec"]
    store.ctl("cert", "add", address, cert)
    (listed,) = json.loads(store.ctl("cert", "list", "--json").stdout)
    assert listed["changed_by"] == "cli:" + pwd.getpwuid(os.geteuid()).pw_name

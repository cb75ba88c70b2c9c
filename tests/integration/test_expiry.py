"""Certificate expiry end to end: `smimea-ctl check-expiry` as a monitoring plugin, and
`expired-certificates: withdraw` with a real pdns_server on each connector feeding a real Knot
secondary.

What is checked:
* check-expiry against certificates that expire in 3, 20 and 365 days and one that expired:
  the exit code (monitoring-plugins convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN), the
  first line with its performance data, one line per certificate concerned, and --json; the
  notAfter dates it prints are the ones the openssl CLI reads from the same files;
* withdraw: a certificate is answered until its notAfter and not after it (NXDOMAIN for its
  owner name, as if it had none), with no command run at that moment; the zone's SOA serial
  moves by itself, pdns sends NOTIFY, and the Knot secondary transfers the zone and drops the
  record too; AXFR and `smimea-ctl export` leave it out; a certificate added after it expired
  (--allow-expired) is never served;
* keep (the default): an expired certificate stays served and the serial stays put.

Certificates with a notAfter seconds away are made with python3-cryptography (the openssl CLI
of Debian 12 counts validity in days).

Run: SMIMEA_BUILD_DIR=build /usr/bin/python3 -m pytest -q tests/integration/test_expiry.py
"""
import datetime
import json
import pathlib
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

from pdns import CONNECTORS, PdnsServer, connector_name  # noqa: E402,F401 (a fixture)
from smimea_test import CTL, Cert, Store, free_port, openssl, owner_name, run  # noqa: E402
from test_transfer import (CONFIG_YAML, KnotSecondary, primary_config, smimea_at,  # noqa: E402
                           soa_serial, wait_for)

NXDOMAIN, NOERROR = dns.rcode.NXDOMAIN, dns.rcode.NOERROR
ZONE = "expiry.example"


def make_cert(directory, address, not_after, not_before=None):
    """A self-signed end-entity certificate for address (P-256) valid until not_after."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)])
    not_before = not_before or datetime.datetime.now(datetime.timezone.utc) - \
        datetime.timedelta(days=1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(address)]), False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
            .sign(key, hashes.SHA256()))
    path = pathlib.Path(directory) / (address.replace("@", "_at_") + ".pem")
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def in_seconds(seconds):
    """A notAfter `seconds` from now, on a whole second (X.509 times have no fraction)."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return now + datetime.timedelta(seconds=seconds)


def openssl_not_after(pem):
    """notAfter as the openssl CLI reads it, in check-expiry's ISO 8601 form."""
    text = openssl("x509", "-in", pem, "-noout", "-enddate").decode().strip()
    when = datetime.datetime.strptime(text.split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def run_check(store, *args, json_output=False):
    cmd = [CTL, "--config", str(store.config)] + (["--json"] if json_output else []) + \
        ["check-expiry", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


# --------------------------------------------------------------------------------------------
# check-expiry


@pytest.fixture(scope="module")
def expiring_store(tmp_path_factory):
    d = tmp_path_factory.mktemp("check-expiry")
    store = Store(d)
    store.ctl("zone", "add", "example.com")
    store.ctl("zone", "add", "example.org")
    certs = {}
    for days in (3, 20, 365):
        c = Cert(d, f"in{days}@example.com", days=days)
        store.ctl("cert", "add", c.address, c.pem)
        certs[days] = c.pem
    gone = make_cert(d, "gone@example.org", in_seconds(-3 * 86400),
                     not_before=datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc))
    store.ctl("cert", "add", "gone@example.org", gone, "--allow-expired")
    certs["expired"] = gone
    yield store, certs
    store.cleanup()


def test_check_expiry_reports_what_expires_in_monitoring_plugin_form(expiring_store):
    store, certs = expiring_store
    r = run_check(store)
    assert r.returncode == 2, r  # CRITICAL: one expired and still published, one within 7 days
    lines = r.stdout.splitlines()
    assert lines[0].startswith("SMIMEA CRITICAL - "), lines
    assert lines[0].endswith("| expiring=2;30;7 expired=1"), lines[0]
    assert lines[0].startswith("SMIMEA CRITICAL - 1 expired, 1 expiring within 7 days, "
                               "1 more expiring within 30 days (of 4 certificates) |"), lines[0]
    body = lines[1:]
    assert len(body) == 3, body  # the 365-day certificate is not concerned
    by_address = {line.split()[0]: line for line in body}
    assert set(by_address) == {"gone@example.org", "in3@example.com", "in20@example.com"}
    assert body[0].startswith("gone@example.org example.org notAfter ")  # soonest first
    for key, address in ((3, "in3@example.com"), (20, "in20@example.com"),
                         ("expired", "gone@example.org")):
        assert f"notAfter {openssl_not_after(certs[key])} " in by_address[address]
    assert "expired, still published (CRITICAL)" in by_address["gone@example.org"]
    assert "(CRITICAL)" in by_address["in3@example.com"]
    assert "days left (WARNING)" in by_address["in20@example.com"]


def test_check_expiry_thresholds_and_zone(expiring_store):
    store, _ = expiring_store
    # Only example.com, and 2 days for CRITICAL: the 3-day certificate is a WARNING.
    r = run_check(store, "--zone", "example.com", "--warning", "25", "--critical", "2")
    assert r.returncode == 1, r
    first = r.stdout.splitlines()[0]
    assert first.startswith("SMIMEA WARNING - ") and "in example.com" in first, first
    assert first.endswith("| expiring=2;25;2 expired=0"), first
    # Nothing within 2 days in example.com: OK, no certificate lines.
    r = run_check(store, "--zone", "example.com", "--warning", "2", "--critical", "1")
    assert r.returncode == 0, r
    assert r.stdout.splitlines() == [
        "SMIMEA OK - 3 certificates, none expiring within 2 days in example.com "
        "| expiring=0;2;1 expired=0"]


def test_check_expiry_json(expiring_store):
    store, certs = expiring_store
    r = run_check(store, json_output=True)
    assert r.returncode == 2, r
    doc = json.loads(r.stdout)
    assert doc["state"] == "CRITICAL"
    assert (doc["certificates"], doc["expiring"], doc["expired"]) == (4, 2, 1)
    got = {c["address"]: c for c in doc["concerned"]}
    assert got["gone@example.org"]["state"] == "CRITICAL"
    assert got["gone@example.org"]["days_left"] < 0
    assert got["in3@example.com"]["state"] == "CRITICAL"
    assert 2 <= got["in3@example.com"]["days_left"] <= 3
    assert got["in20@example.com"]["state"] == "WARNING"
    assert got["in20@example.com"]["not_after"] == openssl_not_after(certs[20])
    sha = openssl("x509", "-in", certs[20], "-noout", "-fingerprint", "-sha256").decode()
    assert got["in20@example.com"]["sha256"] == sha.split("=")[1].strip().replace(":", "").lower()


def test_check_expiry_unknown(expiring_store, tmp_path):
    store, _ = expiring_store
    r = run_check(store, "--zone", "nowhere.example")
    assert (r.returncode, r.stdout.splitlines()[0]) == \
        (3, "SMIMEA UNKNOWN - no such zone: nowhere.example")
    r = run_check(store, "--warning", "5", "--critical", "9")
    assert r.returncode == 3 and r.stdout.startswith("SMIMEA UNKNOWN - "), r
    r = run_check(store, "--warning", "soon")
    assert r.returncode == 3 and r.stdout.startswith("SMIMEA UNKNOWN - "), r
    missing = tmp_path / "missing.yaml"
    missing.write_text(f"database: {tmp_path / 'nothing.db'}\n")
    r = subprocess.run([CTL, "--config", str(missing), "check-expiry"], capture_output=True,
                       text=True)
    assert r.returncode == 3 and r.stdout.startswith("SMIMEA UNKNOWN - "), r
    assert "nothing.db" in r.stdout


def test_check_expiry_with_withdraw_makes_an_expired_certificate_a_warning(expiring_store,
                                                                          tmp_path):
    store, _ = expiring_store
    # The same store, served with withdraw: the expired certificate is no longer in DNS.
    config = tmp_path / "withdraw.yaml"
    config.write_text(store.config.read_text() + "expired-certificates: withdraw\n")
    r = subprocess.run([CTL, "--config", str(config), "check-expiry", "--zone", "example.org"],
                       capture_output=True, text=True)
    assert r.returncode == 1, r
    assert "expired, withdrawn (WARNING)" in r.stdout


# --------------------------------------------------------------------------------------------
# expired-certificates: withdraw | keep, with pdns and a secondary

# Seconds from adding bob's certificate to its notAfter: long enough for the secondary to load
# the zone with it first.
BOB_LIFETIME = 12


def start_primary(store, connector_name, directory, notify_ports=()):
    connector = CONNECTORS[connector_name]
    (directory / "backend").mkdir()
    primary = PdnsServer(connector(store, directory / "backend"), directory / "primary",
                         extra_config=primary_config(connector, list(notify_ports),
                                                     "127.0.0.0/8"))
    primary.start()
    return primary


def test_withdraw_stops_serving_at_not_after_and_the_secondary_follows(connector_name,
                                                                       tmp_path):
    store = Store(tmp_path, extra_config=CONFIG_YAML + "expired-certificates: withdraw\n")
    store.ctl("zone", "add", ZONE)
    alice = Cert(tmp_path, f"alice@{ZONE}")
    store.ctl("cert", "add", alice.address, alice.pem)
    carol = make_cert(tmp_path, f"carol@{ZONE}", in_seconds(-60))
    store.ctl("cert", "add", f"carol@{ZONE}", carol, "--allow-expired")
    knot_port = free_port()
    primary = start_primary(store, connector_name, tmp_path, [knot_port])
    knot = KnotSecondary(tmp_path / "knot", knot_port)
    knot.add_zone(ZONE, primary.port)
    knot.start()
    bob_address = f"bob@{ZONE}"
    try:
        bob_not_after = in_seconds(BOB_LIFETIME)
        bob = make_cert(tmp_path, bob_address, bob_not_after)
        store.ctl("cert", "add", bob_address, bob)
        serial = soa_serial(primary.port, ZONE)

        def logs():
            return primary.explain("primary") + "\n\n" + knot.log()

        wait_for("knot loads the zone with bob", lambda: soa_serial(knot.port, ZONE) == serial,
                 BOB_LIFETIME - 4, logs)
        for port in (primary.port, knot.port):
            assert smimea_at(port, owner_name(bob_address))[0] == NOERROR, logs()
            assert smimea_at(port, owner_name(bob_address))[1], logs()
            # carol expired before she was added: never served.
            assert smimea_at(port, owner_name(f"carol@{ZONE}"))[0] == NXDOMAIN, logs()
        assert time.time() < bob_not_after.timestamp(), "too slow to see bob before expiry"

        # Served through his notAfter second, gone the second after: no command runs.
        time.sleep(max(0.0, bob_not_after.timestamp() + 1.2 - time.time()))
        rcode, data = smimea_at(primary.port, owner_name(bob_address))
        assert (rcode, data) == (NXDOMAIN, set()), logs()
        assert smimea_at(primary.port, alice.owner)[1] == alice.rdatas((3, 0, 0)), logs()

        # The serial moves by itself; NOTIFY brings the secondary along.
        moved, _ = wait_for("the primary's serial moves",
                            lambda: (soa_serial(primary.port, ZONE) or serial) != serial and
                            soa_serial(primary.port, ZONE), 15, logs)
        wait_for("knot follows", lambda: soa_serial(knot.port, ZONE) == moved, 20, logs)
        assert smimea_at(knot.port, owner_name(bob_address))[0] == NXDOMAIN, logs()
        assert smimea_at(knot.port, alice.owner)[1] == alice.rdatas((3, 0, 0)), logs()

        # AXFR and export: only alice.
        names = {str(n) for n, _, rd in primary.axfr(ZONE) if rd.rdtype == dns.rdatatype.SMIMEA}
        assert names == {alice.owner}, names
        export = store.ctl("export", ZONE).stdout
        assert alice.owner in export
        assert owner_name(bob_address) not in export
        assert owner_name(f"carol@{ZONE}") not in export
        # The store keeps the certificates: cert list shows them, for renewal.
        listed = json.loads(store.ctl("--json", "cert", "list", "--zone", ZONE).stdout)
        assert {c["address"] for c in listed} == {alice.address, bob_address, f"carol@{ZONE}"}
    finally:
        knot.stop()
        primary.stop()
        store.cleanup()


def test_keep_serves_expired_certificates(tmp_path):
    if CONNECTORS["native"].unavailable():
        pytest.skip(CONNECTORS["native"].unavailable())
    store = Store(tmp_path, extra_config=CONFIG_YAML)  # expired-certificates: keep (default)
    store.ctl("zone", "add", ZONE)
    carol = make_cert(tmp_path, f"carol@{ZONE}", in_seconds(3))
    store.ctl("cert", "add", f"carol@{ZONE}", carol)
    primary = start_primary(store, "native", tmp_path)
    try:
        serial = soa_serial(primary.port, ZONE)
        time.sleep(max(0.0, in_seconds(0).timestamp() + 4.5 - time.time()))
        rcode, data = smimea_at(primary.port, owner_name(f"carol@{ZONE}"))
        assert rcode == NOERROR and len(data) == 1, primary.explain("keep")
        time.sleep(1.5)
        assert soa_serial(primary.port, ZONE) == serial
    finally:
        primary.stop()
        store.cleanup()


def test_withdraw_is_a_valid_setting_and_others_are_refused(tmp_path):
    store = Store(tmp_path)
    for value, code in (("withdraw", 0), ("keep", 0), ("delete", 2), ("yes", 2)):
        config = tmp_path / f"{value}.yaml"
        config.write_text(store.config.read_text() + f"expired-certificates: {value}\n")
        r = run([CTL, "--config", config, "check-config"], check=False)
        assert r.returncode == code, (value, r.stderr)
        if code:
            assert "expired-certificates" in r.stderr and "keep or withdraw" in r.stderr

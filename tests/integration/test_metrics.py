"""Metrics end to end.

- The lookup counters of the core, read from a real pdns_server: with the native module in
  pdns's own statistics (`pdns_control show smimea-lookups-answer`, pdns's webserver /metrics),
  and with the remote backend over the unix connector from smimea-backend's metrics-listen
  endpoint. Known questions are sent with dnspython and each must move the counters by exactly
  the lookups pdns 4.7.3 makes for it (the same table for both connectors).
- smimea-api's /metrics: certificates by zone and state, expiring within 7 and 30 days, zone
  serials and last changes, against certificates made to expire in 3, 20 and 365 days and one
  that has expired.
"""
import datetime
import pathlib
import re
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request

import dns.rcode
import pytest

from api_client import ApiServer, http_request
from pdns import NativeConnector, PdnsServer, UnixConnector
from smimea_test import BACKEND, Store, free_port, make_cert, owner_name

ZONE = "example.com"
ALICE = "alice@example.com"
NOBODY = "nobody@example.com"

# The result counters, in pdns's names and in the Prometheus names of smimea-backend.
RESULTS = ["answer", "nodata", "nxdomain", "not-ours"]

# Each question, its rcode, and the backend lookups pdns 4.7.3 makes for it, by result (query,
# packet and negative caches off, and the zone cache too: pdns then finds the zone by asking
# for the SOA of the name and of each parent), and the owner-name reads among them:
#   owner: SOA of the owner (not read: nodata), of _smimecert (the ENT: nodata) and of the apex
#   (answer); NS of the owner (its referral check: nodata); ANY of the owner, twice (answer;
#   the repeat is answered from the first read if it comes within 1 ms: one or two reads).
#   _smimecert: SOA of it (nodata) and of the apex (answer); NS and ANY of it (nodata).
#   apex: SOA, then ANY (answer).
#   missing owner: as the owner, but ANY of it is an nxdomain, once; then pdns's closest
#   encloser (ANY of _smimecert: nodata) and wildcards (*._smimecert and *.<zone>: nxdomain).
#   not ours: SOA of example.info, info and the root (not ours).
QUESTIONS = [
    # name, qtype, rcode, {answer, nodata, nxdomain, not-ours}, owner reads (at least, at most)
    (owner_name(ALICE), "SMIMEA", dns.rcode.NOERROR, (3, 3, 0, 0), (1, 2)),
    (f"_smimecert.{ZONE}", "SMIMEA", dns.rcode.NOERROR, (1, 3, 0, 0), (0, 0)),
    (ZONE, "SMIMEA", dns.rcode.NOERROR, (2, 0, 0, 0), (0, 0)),
    (owner_name(NOBODY), "SMIMEA", dns.rcode.NXDOMAIN, (1, 4, 3, 0), (1, 1)),
    ("example.info", "SOA", dns.rcode.REFUSED, (0, 0, 0, 3), (0, 0)),
]


def counters_from_prometheus(text):
    values = {}
    for result in RESULTS:
        label = result.replace("-", "_")
        m = re.search(r'^smimea_lookups_total\{result="%s"\} (\d+)$' % label, text, re.M)
        assert m, f"no smimea_lookups_total for {label} in:\n{text}"
        values[result] = int(m.group(1))
    for name in ("smimea_store_errors_total", "smimea_store_read_seconds_count"):
        m = re.search(r"^%s (\d+)$" % name, text, re.M)
        assert m, f"no {name} in:\n{text}"
        values[name] = int(m.group(1))
    return values


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    directory = tmp_path_factory.mktemp("metrics-store")
    port = free_port()
    s = Store(directory, extra_config=f"nameservers: [ns1.example.net.]\n"
                                      f"metrics-listen: '127.0.0.1:{port}'\n")
    s.metrics_port = port
    s.ctl("zone", "add", ZONE)
    cert, _ = make_cert(directory, ALICE)
    s.ctl("cert", "add", ALICE, str(cert))
    yield s
    s.cleanup()


class Reader:
    """The counters as the connector publishes them."""

    def __init__(self, server, store, connector):
        self.server = server
        self.store = store
        self.connector = connector

    def read(self):
        if self.connector == "native":
            values = {}
            for result in RESULTS:
                out = self.server.control("show", f"smimea-lookups-{result}").stdout.strip()
                values[result] = int(out)
            values["smimea_store_errors_total"] = int(
                self.server.control("show", "smimea-store-errors").stdout.strip())
            values["smimea_store_read_seconds_count"] = int(
                self.server.control("show", "smimea-store-reads").stdout.strip())
            return values
        _, _, text = get(f"http://127.0.0.1:{self.store.metrics_port}/metrics")
        return counters_from_prometheus(text)


def delta(before, after):
    return {k: after[k] - before[k] for k in after}


def check_delta(what, d, counts, reads):
    reads_seen = d.pop("smimea_store_read_seconds_count")
    assert reads[0] <= reads_seen <= reads[1], f"{what}: {reads_seen} owner reads"
    expected = dict(zip(RESULTS, counts))
    expected["smimea_store_errors_total"] = 0
    assert d == expected, what


@pytest.mark.parametrize("connector", ["native", "unix"])
def test_lookup_counters_count_each_question(store, tmp_path, connector):
    """The same counts from pdns's statistics (native) and smimea-backend's endpoint (unix)."""
    cls = {"native": NativeConnector, "unix": UnixConnector}[connector]
    if cls.unavailable():
        pytest.skip(cls.unavailable())
    web_port = free_port()
    extra = ["webserver=yes", "webserver-address=127.0.0.1", f"webserver-port={web_port}",
             "webserver-allow-from=127.0.0.0/8", "zone-cache-refresh-interval=0"]
    with PdnsServer(cls(store, tmp_path), tmp_path / "pdns", extra_config=extra) as server:
        reader = Reader(server, store, connector)
        first = reader.read()
        for qname, qtype, rcode, counts, reads in QUESTIONS:
            before = reader.read()
            r = server.query(qname, qtype)
            assert r.rcode() == rcode, server.explain(f"{qname} {qtype}", r)
            check_delta(f"{qname} {qtype}", delta(before, reader.read()), counts, reads)
        # Nothing else asked meanwhile: the totals are the questions' sums.
        total = delta(first, reader.read())
        for i, result in enumerate(RESULTS):
            assert total[result] == sum(q[3][i] for q in QUESTIONS), result
        if connector == "native":
            # pdns's own /metrics and `show '*'` have them too.
            _, _, text = get(f"http://127.0.0.1:{web_port}/metrics")
            now = reader.read()
            for result in RESULTS:
                name = "pdns_auth_smimea_lookups_" + result.replace("-", "_")
                m = re.search(r"^%s (\d+)$" % name, text, re.M)
                assert m, f"{name} not in pdns's /metrics"
                assert int(m.group(1)) == now[result], name
            assert "# TYPE pdns_auth_smimea_lookups_answer counter" in text
            everything = server.control("show", "*").stdout
            for name in ("smimea-lookups-answer", "smimea-lookups-nodata",
                         "smimea-lookups-nxdomain", "smimea-lookups-not-ours",
                         "smimea-store-errors", "smimea-store-reads", "smimea-store-read-usec"):
                assert f"{name}=" in everything, name
            # pdnsutil loads the module too, without pdns's statistics to declare them in.
            assert "example.com" in server.pdnsutil("list-all-zones").stdout.split()
        else:
            status, ctype, text = get(f"http://127.0.0.1:{store.metrics_port}/metrics")
            assert status == 200 and ctype.startswith("text/plain; version=0.0.4"), ctype
            assert "# TYPE smimea_lookups_total counter" in text
            assert re.search(r"^smimea_store_read_seconds_sum \d+\.\d+$", text, re.M), text
            with pytest.raises(urllib.error.HTTPError) as e:
                get(f"http://127.0.0.1:{store.metrics_port}/")
            assert e.value.code == 404


def test_metrics_listen_is_ignored_with_a_warning_in_pipe_mode(store):
    """pdns starts one --pipe process per thread: none of them may take the port."""
    p = subprocess.run([str(BACKEND), "--config", str(store.config), "--pipe"],
                       input=b"", capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert b"metrics-listen 127.0.0.1:" in p.stderr and b"ignored with --pipe" in p.stderr, \
        p.stderr


def test_a_metrics_port_in_use_stops_the_backend(store, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "smimea.yaml"
        config.write_text(f"database: {store.db}\nmetrics-listen: '127.0.0.1:{port}'\n")
        p = subprocess.run([str(BACKEND), "--config", str(config), "--listen",
                            str(tmp_path / "b.sock")], capture_output=True, timeout=30)
    assert p.returncode == 2, p.stderr
    assert b"metrics-listen 127.0.0.1:" in p.stderr, p.stderr
    assert not (tmp_path / "b.sock").exists()


# --------------------------------------------------------------------------------------------
# smimea-api's /metrics


def make_expired_cert(directory, email, days_ago=2):
    """A self-signed certificate for email whose notAfter is days_ago days past (openssl 3.0's
    command line cannot set notAfter in the past)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, email)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=days_ago + 365))
            .not_valid_after(now - datetime.timedelta(days=days_ago))
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    path = pathlib.Path(directory) / (email.replace("@", "_at_") + ".expired.pem")
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def series(text, name):
    """{labels text: value} of one metric's samples."""
    out = {}
    for m in re.finditer(r"^%s(\{[^}]*\})? (\S+)$" % re.escape(name), text, re.M):
        out[m.group(1) or ""] = float(m.group(2))
    return out


def test_api_metrics_per_zone(tmp_path):
    store = Store(tmp_path)
    try:
        store.ctl("zone", "add", "example.com")
        store.ctl("zone", "add", "example.org")
        for address, days in (("year@example.com", 365), ("three@example.com", 3),
                              ("twenty@example.com", 20), ("year@example.org", 365)):
            cert, _ = make_cert(tmp_path, address, days=days)
            store.ctl("cert", "add", address, str(cert))
        expired = make_expired_cert(tmp_path, "old@example.org")
        assert store.ctl("cert", "add", "old@example.org", str(expired), check=False).returncode \
            != 0, "an expired certificate needs --allow-expired"
        store.ctl("cert", "add", "--allow-expired", "old@example.org", str(expired))
        with sqlite3.connect(store.db) as db:
            zones = {name: (serial, updated) for name, serial, updated in
                     db.execute("SELECT name, serial, updated_at FROM zones")}
        with ApiServer(store, tmp_path / "api") as api:
            assert http_request(api.target, "GET", "/api/v1/zones").status == 401
            # A request is counted once its answer has gone out, which the client may see
            # first: ask again until the 401 shows (at once, unless the daemon is slow).
            deadline = time.monotonic() + 10
            while True:
                r = http_request(api.target, "GET", "/metrics")
                assert r.status == 200, r
                assert r.header("Content-Type").startswith("text/plain; version=0.0.4")
                text = r.body.decode()
                requests = series(text, "smimea_api_requests_total")
                if '{endpoint="zones",code="401"}' in requests or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
    finally:
        store.cleanup()

    assert series(text, "smimea_api_store_up") == {"": 1}
    certificates = series(text, "smimea_certificates")
    assert certificates == {
        '{zone="example.com",state="valid"}': 1,
        '{zone="example.com",state="expiring"}': 2,
        '{zone="example.com",state="expired"}': 0,
        '{zone="example.org",state="valid"}': 1,
        '{zone="example.org",state="expiring"}': 0,
        '{zone="example.org",state="expired"}': 1,
    }, text
    assert series(text, "smimea_certificates_expiring") == {
        '{zone="example.com",within="7d"}': 1,
        '{zone="example.com",within="30d"}': 2,
        '{zone="example.org",within="7d"}': 0,
        '{zone="example.org",within="30d"}': 0,
    }, text
    assert series(text, "smimea_zone_serial") == {
        f'{{zone="{z}"}}': serial for z, (serial, _) in zones.items()}
    last = series(text, "smimea_zone_last_change_timestamp_seconds")
    assert last == {f'{{zone="{z}"}}': updated for z, (_, updated) in zones.items()}
    assert all(abs(v - time.time()) < 600 for v in last.values()), last
    for kind in ("smimea_certificates", "smimea_certificates_expiring", "smimea_zone_serial",
                 "smimea_zone_last_change_timestamp_seconds", "smimea_api_store_up"):
        assert f"# TYPE {kind} gauge\n" in text, kind
    # Requests by endpoint and status, as before.
    assert series(text, "smimea_api_requests_total")['{endpoint="zones",code="401"}'] == 1
    # Labels name zones, never an address.
    assert "@" not in text

"""Faults a name server meets in production, against a real pdns_server:

- smimea-backend killed with SIGKILL while dnsperf runs: answers resume by themselves once the
  backend is back (as systemd's Restart= brings it back); the test reports the failed queries
  and the recovery time, and bounds them;
- smimea-ctl killed inside a large import while pdns serves: nothing of the import is ever
  served, the store stays intact, and the import can be run again;
- the disk filling up (RLIMIT_FSIZE) during `cert add`: a clear error, the store unchanged;
- a corrupt, truncated or read-only store: a clear message, never garbage in answers;
- a store that fails to read a row (a damaged page) on every connector: SERVFAIL, never an
  NXDOMAIN for a name that exists or an unsigned answer from a signed zone.
"""
import hashlib
import os
import pathlib
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import time

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from pdns import CONNECTORS, PdnsServer, UnixConnector  # noqa: E402
from smimea_test import BACKEND, CTL, Store, make_cert, run  # noqa: E402
from test_ctl import _wait_until_read, bulk_certs  # noqa: E402

SMIMEA = dns.rdatatype.SMIMEA
SOA = dns.rdatatype.SOA


def owner(local, domain):
    return hashlib.sha256(local.encode()).hexdigest()[:56] + f"._smimecert.{domain}."


def der_of(pem_path):
    return run(["openssl", "x509", "-in", pem_path, "-outform", "DER"], input=b"").stdout


def counts(store):
    with sqlite3.connect(store.db) as db:
        return tuple(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                     for t in ("zones", "certificates", "records"))


def integrity_ok(store):
    with sqlite3.connect(store.db) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.fixture
def store(tmp_path):
    (tmp_path / "store").mkdir()
    s = Store(tmp_path / "store", extra_config="nameservers: [ns1.example.net.]\n")
    s.ctl("zone", "add", "example.com")
    return s


def test_backend_killed_under_load_recovers(store, tmp_path):
    """SIGKILL the unix backend while dnsperf sends 1000 queries/s for 8 s; a supervisor
    restarts it at once, as systemd's Restart= would. pdns must reconnect by itself."""
    addresses = [f"user{i}@example.com" for i in range(20)]
    cert, _ = make_cert(tmp_path, None, name="shared")
    for a in addresses:
        store.ctl("cert", "add", a, cert, "--force", "--record", "3 1 1")
    queries = tmp_path / "queries"
    queries.write_text("".join(f"{owner(a.split('@')[0], 'example.com')} SMIMEA\n"
                               for a in addresses))
    connector = UnixConnector(store, tmp_path / "pdns")
    with PdnsServer(connector, tmp_path / "pdns") as server:
        perf = subprocess.Popen(["dnsperf", "-s", "127.0.0.1", "-p", str(server.port), "-d",
                                 str(queries), "-l", "8", "-Q", "1000", "-t", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(2)
        killed_at = time.monotonic()
        connector.proc.send_signal(signal.SIGKILL)
        connector.proc.wait()
        connector.stop()  # reaps and closes the log; the socket file stays behind (stale)
        assert connector.socket.exists()
        connector.start()  # must clear the stale socket and listen again
        name = owner("user0", "example.com")
        recovered_at = None
        while time.monotonic() - killed_at < 10:
            try:
                r = server.query(name, SMIMEA, timeout=0.5)
                if r.rcode() == dns.rcode.NOERROR and r.answer:
                    recovered_at = time.monotonic()
                    break
            except Exception:  # noqa: BLE001 - a timeout is what we are waiting out
                pass
            time.sleep(0.05)
        out, _ = perf.communicate(timeout=30)
        assert recovered_at is not None, server.explain("no answer after the backend restart")
        sent = int(re.search(r"Queries sent:\s+(\d+)", out).group(1))
        completed = int(re.search(r"Queries completed:\s+(\d+)", out).group(1))
        noerror = re.search(r"NOERROR (\d+)", out)
        answered = int(noerror.group(1)) if noerror else 0
        failed = sent - answered
        recovery = recovered_at - killed_at
        print(f"\nbackend SIGKILL under load: {sent} sent, {completed} completed, {answered} "
              f"NOERROR, {failed} failed; recovery {recovery * 1000:.0f} ms")
        # pdns's unix connector fails at most one query per connection, then reconnects.
        assert recovery < 5.0, out
        assert failed <= max(20, sent // 20), out
        # And it serves normally afterwards.
        r = server.query(name, SMIMEA)
        assert r.rcode() == dns.rcode.NOERROR and r.answer


def test_pipe_backend_exits_when_its_pdns_is_gone(store):
    """pdns's pipe connector starts one backend per thread from pipes that are not
    close-on-exec: each backend inherits the write end of the others' stdin. Keeping them
    open, the backends of a pdns that was killed never saw EOF and lived on, holding the
    store open. Here the backend inherits the write end of its own stdin: it must still exit
    once the parent's copies are closed."""
    r, w = os.pipe()
    proc = subprocess.Popen([str(BACKEND), "--config", str(store.config), "--pipe"], stdin=r,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=(w,))
    os.close(r)
    os.close(w)
    try:
        code = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("smimea-backend --pipe kept an inherited pipe open and never saw EOF")
    assert code == 0, proc.stderr.read()
    proc.stderr.close()


def test_import_killed_while_serving(store, tmp_path):
    """Inside the import's open transaction (blocked on stdin after reading every file), no
    imported owner is served; after SIGKILL the store is intact and still serves none; the
    re-run serves all of them, each with exactly its certificate."""
    n = 1500
    directory = tmp_path / "certs"
    total = bulk_certs(directory, n, domain="example.com")
    connector = UnixConnector(store, tmp_path / "pdns")
    before = counts(store)
    sample = [0, n // 2, n - 1]
    with PdnsServer(connector, tmp_path / "pdns") as server:
        proc = subprocess.Popen([CTL, "--config", store.config, "cert", "import", directory, "-"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        _wait_until_read(proc, total)
        time.sleep(0.2)
        assert proc.poll() is None
        for i in sample:
            r = server.query(owner(f"user{i}", "example.com"), SMIMEA, tcp=True)
            assert r.rcode() == dns.rcode.NXDOMAIN, server.explain("uncommitted record served", r)
        proc.kill()
        proc.communicate()
        assert counts(store) == before
        assert integrity_ok(store)
        for i in sample:
            r = server.query(owner(f"user{i}", "example.com"), SMIMEA, tcp=True)
            assert r.rcode() == dns.rcode.NXDOMAIN, server.explain("killed import served", r)

        store.ctl("cert", "import", directory)
        assert counts(store) == (before[0], before[1] + n, before[2] + n)
        assert integrity_ok(store)
        for i in sample:
            expected = der_of(directory / f"user{i:05d}.pem")
            r = server.query(owner(f"user{i}", "example.com"), SMIMEA, tcp=True)
            assert r.rcode() == dns.rcode.NOERROR, server.explain("imported record", r)
            rdatas = [rd for rrset in r.answer for rd in rrset]
            assert [(rd.usage, rd.selector, rd.mtype, rd.cert) for rd in rdatas] == \
                [(3, 0, 0, expected)]


def _limit_file_size(limit):
    def apply():
        # Without this, exceeding the limit kills the process with SIGXFSZ instead of making
        # write(2) fail with EFBIG, which is what a full disk looks like to SQLite.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_disk_full_during_cert_add(store, tmp_path):
    cert, _ = make_cert(tmp_path, "alice@example.com", key="rsa")
    store.ctl("cert", "add", "alice@example.com", cert)  # the store and its WAL exist
    with sqlite3.connect(store.db) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = counts(store)
    dump_before = subprocess.run(["sqlite3", store.db, ".dump"], capture_output=True,
                                 text=True).stdout
    big, _ = make_cert(tmp_path, "bob@example.com", key="rsa", name="bob")
    size = os.path.getsize(store.db)
    r = subprocess.run([str(CTL), "--config", str(store.config), "cert", "add", "bob@example.com",
                        str(big), "--record", "3 0 0", "--record", "3 0 1", "--record", "3 0 2"],
                       capture_output=True, text=True, preexec_fn=_limit_file_size(4096),
                       timeout=60)
    assert r.returncode == 3, r
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert re.search(r"disk|full|large|I/O", r.stderr, re.I), r.stderr
    assert os.path.getsize(store.db) == size
    assert counts(store) == before
    assert integrity_ok(store)
    assert subprocess.run(["sqlite3", store.db, ".dump"], capture_output=True,
                          text=True).stdout == dump_before
    # With room again, the same command works.
    store.ctl("cert", "add", "bob@example.com", big)
    assert counts(store)[1] == before[1] + 1


def _backend_start_error(store, tmp_path):
    r = subprocess.run([str(BACKEND), "--config", str(store.config), "--listen",
                        str(tmp_path / "b.sock")], capture_output=True, text=True, timeout=20)
    return r


def test_corrupt_store_is_refused_at_start(store, tmp_path):
    data = bytearray(store.db.read_bytes())
    data[0:16] = b"this is garbage!"
    store.db.write_bytes(bytes(data))
    r = _backend_start_error(store, tmp_path)
    assert r.returncode == 3, r
    assert "not a readable SQLite database" in r.stderr or "not a database" in r.stderr, r.stderr
    assert not (tmp_path / "b.sock").exists()
    r = store.ctl("cert", "list", check=False)
    assert r.returncode == 3 and len(r.stderr.strip().splitlines()) == 1, r


def test_truncated_store_never_serves_garbage(store, tmp_path):
    """A store cut short (a bad copy): the backend either refuses it at start, with SQLite's
    reason, or answers with alice's certificate or SERVFAIL; never a made-up record, and never
    an empty or negative answer for a name that exists."""
    cert, _ = make_cert(tmp_path, "alice@example.com")
    store.ctl("cert", "add", "alice@example.com", cert)
    with sqlite3.connect(store.db) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = os.path.getsize(store.db)
    with open(store.db, "r+b") as f:
        f.truncate(size // 2)
    connector = UnixConnector(store, tmp_path / "pdns")
    server = PdnsServer(connector, tmp_path / "pdns")
    try:
        server.start()
    except AssertionError as e:
        assert "malformed" in str(e) or "not a database" in str(e), e
        return
    try:
        r = server.query(owner("alice", "example.com"), SMIMEA, tcp=True)
        if r.rcode() == dns.rcode.NOERROR:
            assert [rd.cert for rrset in r.answer for rd in rrset] == [der_of(cert)], \
                server.explain("truncated store", r)
        else:
            assert r.rcode() == dns.rcode.SERVFAIL, server.explain("truncated store", r)
    finally:
        server.stop()


AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


@pytest.fixture
def store_nobody_may_only_read():
    """A store with one zone that `nobody` can read but not write (files 0644, directory
    0755, owned by root), outside pytest's tmp_path, which nobody cannot traverse. Root ignores
    file permissions: the tests run the programs as nobody."""
    import shutil
    import tempfile
    base = pathlib.Path(tempfile.mkdtemp(prefix="smimea-ro-"))
    try:
        base.chmod(0o755)
        store = Store(base, extra_config="nameservers: [ns1.example.net.]\n")
        store.ctl("zone", "add", "example.com")
        for p in base.iterdir():
            p.chmod(0o644)
        yield store
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_read_only_store_for_the_writer(store_nobody_may_only_read):
    """smimea-ctl without write access to the store: a clear one-line error, exit 3, and the
    store unchanged."""
    store = store_nobody_may_only_read
    cert, _ = make_cert(store.dir, "alice@example.com")
    cert.chmod(0o644)
    before = counts(store)
    r = subprocess.run(AS_NOBODY + [str(CTL), "--config", str(store.config), "cert", "add",
                                    "alice@example.com", str(cert)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 3, r
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert re.search(r"readonly|read-only|permission|unable to open", r.stderr, re.I), r.stderr
    assert counts(store) == before
    assert integrity_ok(store)


def test_backend_without_write_access_to_the_directory(store_nobody_may_only_read):
    """In WAL mode the first read creates store.db-shm beside the store: a backend user that
    cannot write the directory gets a message that says so, not "not a database"."""
    store = store_nobody_may_only_read
    for leftover in store.dir.glob("*.db-*"):
        leftover.unlink()
    r = subprocess.run(AS_NOBODY + [str(BACKEND), "--config", str(store.config), "--pipe"],
                       input='{"method":"initialize","parameters":{}}\n', capture_output=True,
                       text=True, timeout=30)
    assert r.returncode != 0, r
    assert "write access to the store's directory" in r.stderr, r.stderr
    assert "not a readable SQLite database" not in r.stderr, r.stderr


def damage_table(db_path, table):
    """Gives every b-tree page of `table` (not of its indexes) an invalid page type, as a bad
    disk sector would: reading one of its rows fails with SQLITE_CORRUPT, while the other
    tables, and queries that the indexes alone answer, still work."""
    with sqlite3.connect(db_path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        pages = [r[0] for r in db.execute("SELECT pageno FROM dbstat WHERE name = ?", (table,))]
    db.close()
    assert pages and 1 not in pages, pages
    with open(db_path, "r+b") as f:
        for page in pages:
            f.seek((page - 1) * page_size)
            f.write(b"\x00")


@pytest.fixture(params=list(CONNECTORS))
def connector_class(request):
    reason = CONNECTORS[request.param].unavailable()
    if reason:
        pytest.skip(reason)
    return CONNECTORS[request.param]


def test_store_error_is_servfail_not_nxdomain(store, tmp_path, connector_class):
    """An owner whose row cannot be read: SERVFAIL, which resolvers retry elsewhere, not the
    NXDOMAIN that pdns makes of a backend's "no records" and that resolvers and senders would
    take for "no certificate". The zone's other answers go on, and the reason is logged."""
    cert, _ = make_cert(tmp_path, "alice@example.com")
    store.ctl("cert", "add", "alice@example.com", cert)
    damage_table(store.db, "records")
    (tmp_path / "backend").mkdir()
    with PdnsServer(connector_class(store, tmp_path / "backend"), tmp_path / "pdns") as server:
        for attempt in range(3):  # the remote backend's connection is renewed after each
            r = server.query(owner("alice", "example.com"), SMIMEA)
            assert r.rcode() == dns.rcode.SERVFAIL, server.explain(f"attempt {attempt}", r)
        r = server.query("example.com.", SOA)
        assert r.rcode() == dns.rcode.NOERROR and r.answer, server.explain("apex SOA", r)
        logs = server.log.read_text() + server.connector.logs()
        assert "malformed" in logs, server.explain("no reason logged")


def test_key_store_error_is_servfail_not_unsigned(store, tmp_path, connector_class):
    """A signed zone whose keys cannot be read: SERVFAIL for a DNSSEC question, never an
    answer without signatures, which validating resolvers would take as an attack (bogus)."""
    cert, _ = make_cert(tmp_path, "alice@example.com")
    store.ctl("cert", "add", "alice@example.com", cert)
    extra = ["zone-metadata-cache-ttl=0", "dnssec-key-cache-ttl=0"]
    if connector_class.launch == "remote":
        extra.append("remote-dnssec=yes")
    (tmp_path / "backend").mkdir()
    server = PdnsServer(connector_class(store, tmp_path / "backend"), tmp_path / "pdns",
                        extra_config=extra)
    with server:
        server.pdnsutil("secure-zone", "example.com")
        q = dns.message.make_query(owner("alice", "example.com"), SMIMEA, want_dnssec=True)
        r = dns.query.tcp(q, "127.0.0.1", port=server.port, timeout=5)
        signed = [rrset for rrset in r.answer if rrset.rdtype == dns.rdatatype.RRSIG]
        assert r.rcode() == dns.rcode.NOERROR and signed, server.explain("signed answer", r)
    damage_table(store.db, "domain_keys")
    with server:
        for name, rdtype in ((owner("alice", "example.com"), SMIMEA), ("example.com.", SOA)):
            q = dns.message.make_query(name, rdtype, want_dnssec=True)
            r = dns.query.tcp(q, "127.0.0.1", port=server.port, timeout=5)
            assert r.rcode() == dns.rcode.SERVFAIL, server.explain(f"{name} DO", r)
        logs = server.log.read_text() + server.connector.logs()
        assert "malformed" in logs, server.explain("no reason logged")

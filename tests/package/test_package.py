"""The installed Debian packages, as an operator gets them (scripts/test-package runs this).

Checks what smimea and pdns-backend-smimea put on the system (files, conffiles, man pages,
user, store directory and modes, the pin to the pdns-server version), then runs the real
thing from the installed files only: the systemd unit's own command lines as its user,
pdns_server as the pdns user with the shipped pdns.d example (remote, then native module),
the shipped /etc/smimea/smimea.yaml. Then upgrades: reinstalling the package over a store of
the previous schema version migrates it; a store newer than the package is refused. Last,
purge: the configuration goes, the store stays.

Changes the system (root only, SMIMEA_INSTALLED=1, SMIMEA_DEB_DIR=<the .deb files>).
The tests depend on each other's order (install state), as an operator's session would.
"""
import configparser
import grp
import json
import os
import pathlib
import pwd
import shlex
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))

if os.environ.get("SMIMEA_INSTALLED") != "1":
    pytest.skip("tests the installed packages: run scripts/test-package", allow_module_level=True)
assert os.geteuid() == 0, "the package tests install and purge packages: run them as root"

from pdns import (HAS_WORKAROUND_11804, Connector, PdnsServer, UnixConnector,  # noqa: E402
                  wait_for_socket)
from smimea_test import ROOT, free_port, make_cert, run  # noqa: E402

DEB_DIR = pathlib.Path(os.environ.get("SMIMEA_DEB_DIR", ROOT / "build-deb")).resolve()
CONFIG = pathlib.Path("/etc/smimea/smimea.yaml")
STATE_DIR = pathlib.Path("/var/lib/smimea")
STORE = STATE_DIR / "smimea.db"
PDNS_SNIPPET = pathlib.Path("/etc/powerdns/pdns.d/pdns-smimea.conf.example")
UNIT = "smimea-backend.service"
API_UNIT = "smimea-api.service"
EXPIRY_UNIT = "smimea-check-expiry.service"
EXPIRY_TIMER = "smimea-check-expiry.timer"
# The schema version a new package must bring a store to: schema.sql's, which is one more
# than the number of the last migration (schema/migrations/NNNN_*.sql).
MIGRATIONS = sorted((ROOT / "schema" / "migrations").glob("[0-9][0-9][0-9][0-9]_*.sql"))
CURRENT_SCHEMA = int(MIGRATIONS[-1].name[:4])
FIXTURES = ROOT / "tests" / "data" / "db"


def dpkg_files(package):
    return set(run(["dpkg", "-L", package]).stdout.split("\n"))


def dpkg_field(package, field):
    return run(["dpkg-query", "-W", "-f", "${" + field + "}", package]).stdout


def schema_version(path):
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute("PRAGMA user_version").fetchone()[0]
    finally:
        con.close()


def remove_store():
    for suffix in ("", "-wal", "-shm"):
        pathlib.Path(f"{STORE}{suffix}").unlink(missing_ok=True)


def module_debs():
    """pdns-backend-smimea, absent where the installed pdns's source was not (scripts/package)."""
    return sorted(DEB_DIR.glob("pdns-backend-smimea_*.deb"))


needs_module = pytest.mark.skipif(
    not module_debs(), reason="pdns-backend-smimea was not built: no source for this pdns-server")


def debs():
    found = sorted(DEB_DIR.glob("smimea_*.deb")) + module_debs()
    assert len(found) in (1, 2) and "smimea_" in found[0].name, \
        f"expected smimea (and pdns-backend-smimea) in {DEB_DIR}, found {found}"
    return [str(p) for p in found]


def test_packages_are_for_this_release():
    """The version names the Debian release they were built on (0.1.0+deb12, +deb13)."""
    release = dict(line.split("=", 1) for line in
                   pathlib.Path("/etc/os-release").read_text().splitlines() if "=" in line)
    major = release["VERSION_ID"].strip('"').split(".")[0]
    for package in ["smimea"] + (["pdns-backend-smimea"] if module_debs() else []):
        assert dpkg_field(package, "Version").endswith(f"+deb{major}"), package


def unit_path(unit=UNIT):
    for path in dpkg_files("smimea"):
        if path.endswith("/system/" + unit):
            return pathlib.Path(path)
    raise AssertionError(f"smimea does not install {unit}")


def unit_service_section(unit=UNIT):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(unit_path(unit).read_text())
    return parser["Service"]


def as_service_user(argv, unit=UNIT):
    """argv as the unit runs it: user smimea, group pdns, with the unit's UMask."""
    service = unit_service_section(unit)
    umask = service.get("UMask", "0022")
    return ["runuser", "-u", service["User"], "-g", service["Group"], "--", "sh", "-c",
            f"umask {umask}; exec " + shlex.join(argv)]


def owner(path):
    st = path.stat()
    return pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name, stat.S_IMODE(st.st_mode)


def test_packages_install_their_files():
    files = dpkg_files("smimea")
    for path in ("/usr/bin/smimea-ctl", "/usr/bin/smimea-backend", str(CONFIG), str(PDNS_SNIPPET),
                 "/usr/share/man/man8/smimea-ctl.8.gz", "/usr/share/man/man8/smimea-backend.8.gz",
                 "/usr/share/man/man5/smimea.yaml.5.gz",
                 "/usr/share/doc/smimea/examples/smimea.example.yaml"):
        assert path in files, f"smimea does not install {path}"
    conffiles = dpkg_field("smimea", "Conffiles")
    assert str(CONFIG) in conffiles and str(PDNS_SNIPPET) in conffiles, conffiles
    # man finds the pages (the database may be stale on a fresh machine: look by path).
    for page in ("smimea-ctl", "smimea-backend", "smimea.yaml"):
        assert run(["man", "-w", page]).stdout.strip()


@needs_module
def test_native_module_is_installed():
    module = [p for p in dpkg_files("pdns-backend-smimea") if p.endswith("/libsmimeabackend.so")]
    assert len(module) == 1 and module[0].startswith("/usr/lib/"), module


@needs_module
def test_native_module_is_pinned_to_the_installed_pdns():
    pdns_version = dpkg_field("pdns-server", "Version")
    depends = dpkg_field("pdns-backend-smimea", "Depends")
    assert f"pdns-server (= {pdns_version})" in depends, depends


def test_smimea_depends_on_the_remote_backend():
    assert "pdns-backend-remote" in dpkg_field("smimea", "Depends")


def test_user_store_directory_and_store():
    user = pwd.getpwnam("smimea")
    assert user.pw_shell in ("/usr/sbin/nologin", "/bin/false"), user.pw_shell
    assert user.pw_uid < 1000, "smimea must be a system user"
    assert owner(STATE_DIR) == ("smimea", "pdns", 0o2770), owner(STATE_DIR)
    # postinst created the store named in the shipped configuration, at the current schema.
    assert f"database: {STORE}" in CONFIG.read_text()
    assert owner(STORE) == ("smimea", "pdns", 0o660), owner(STORE)
    assert schema_version(STORE) == CURRENT_SCHEMA


def test_unit_verifies():
    service = unit_service_section()
    assert service["ExecStartPre"].startswith("/usr/bin/smimea-ctl")
    assert "check-config" in service["ExecStartPre"]
    assert service["RuntimeDirectory"] == "smimea"
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    r = run(["systemd-analyze", "verify", str(unit_path())], check=False)
    # It also complains about unrelated units of the machine: only ours counts.
    ours = [line for line in (r.stdout + r.stderr).splitlines() if UNIT in line]
    assert not ours, "\n".join(ours)


class UnitService(UnixConnector):
    """smimea-backend as smimea-backend.service runs it: its ExecStartPre and ExecStart lines,
    as its user and group, in its RuntimeDirectory."""

    name = "unit"

    def __init__(self):
        super().__init__(None, tempfile.mkdtemp(prefix="smimea-unit-"))

    def start(self):
        service = unit_service_section()
        runtime = pathlib.Path("/run") / service["RuntimeDirectory"]
        runtime.mkdir(mode=int(service["RuntimeDirectoryMode"], 8), exist_ok=True)
        shutil.chown(runtime, service["User"], service["Group"])
        runtime.chmod(int(service["RuntimeDirectoryMode"], 8))
        run(as_service_user(shlex.split(service["ExecStartPre"])))
        argv = shlex.split(service["ExecStart"])
        self.socket = pathlib.Path(argv[argv.index("--listen") + 1])
        self._logfile = open(self.log, "ab")
        self.proc = subprocess.Popen(as_service_user(argv), stdin=subprocess.DEVNULL,
                                     stdout=self._logfile, stderr=subprocess.STDOUT)
        wait_for_socket(self.socket, self.proc)

    def config_lines(self):
        return snippet_lines("remote")


class InstalledModule(Connector):
    """The installed module, loaded by pdns from its module directory."""

    name = "native"
    launch = "smimea"

    def __init__(self):
        pass

    def start(self):
        pass

    def stop(self):
        pass

    def config_lines(self):
        # No load-modules: pdns loads lib<launch>backend.so from its module directory.
        return snippet_lines("smimea")

    def logs(self):
        return ""


def snippet_lines(launch):
    """The settings of the shipped pdns.d example for launch=<launch>, uncommented (a way
    ends at an empty comment line), and workaround-11804=yes where pdns has it (4.8+)."""
    lines = []
    current = None
    text = PDNS_SNIPPET.read_text()
    for line in text.splitlines():
        setting = line.lstrip("# ").strip()
        if not setting:
            current = None
        elif setting.startswith("launch+="):
            current = setting.split("=", 1)[1]
        elif current == launch and "=" in setting and " " not in setting:
            lines.append(setting)
    assert lines, f"{PDNS_SNIPPET} has no settings for launch={launch}"
    assert "\n# workaround-11804=yes\n" in text, "the example no longer names workaround-11804"
    if HAS_WORKAROUND_11804:
        lines.append("workaround-11804=yes")
    return lines


def pdns_as_pdns_user(connector, directory):
    """pdns_server with the given connector, dropping to the pdns user as Debian's unit does."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.chown(directory, "pdns", "pdns")
    return PdnsServer(connector, directory, extra_config=["setuid=pdns", "setgid=pdns"])


def smimea_answer(server, name):
    r = run(["kdig", "+short", "+tcp", "-p", str(server.port), "@127.0.0.1", name, "TYPE53"])
    return r.stdout.strip()


@pytest.fixture(scope="module")
def alice(tmp_path_factory):
    """A certificate added with the shipped configuration by root, as an operator does with
    sudo; and the SMIMEA owner name and RDATA computed with the openssl command line."""
    directory = tmp_path_factory.mktemp("alice")
    cert, _ = make_cert(directory, "alice@pkg.example")
    # Left by an earlier run on this machine (purge keeps the store): start again.
    run(["smimea-ctl", "--config", CONFIG, "zone", "remove", "--force", "pkg.example"],
        check=False)
    run(["smimea-ctl", "--config", CONFIG, "zone", "add", "pkg.example"])
    run(["smimea-ctl", "--config", CONFIG, "cert", "add", "alice@pkg.example", cert])
    digest = run(["sh", "-c", "printf %s alice | openssl dgst -sha256 -r"]).stdout.split()[0]
    der = subprocess.run(["openssl", "x509", "-in", str(cert), "-outform", "DER"],
                         capture_output=True, check=True).stdout
    return f"{digest[:56]}._smimecert.pkg.example.", der.hex().upper()


def rdata_hex(answer):
    # kdig prints an unknown-to-it type as \# <length> <hex in groups>, SMIMEA as
    # "3 0 0 <hex in groups>": either way the last fields are the hex of the RDATA or data.
    fields = answer.split()
    assert fields, "no answer"
    if fields[0] == "\\#":
        data = "".join(fields[2:]).upper()
        assert data[:6] == "030000", data[:6]
        return data[6:]
    assert fields[:3] == ["3", "0", "0"], fields[:3]
    return "".join(fields[3:]).upper()


def test_store_stays_usable_by_the_service_after_root_writes(alice):
    # root's smimea-ctl changed the store: it must still belong to smimea:pdns, mode 0660.
    assert owner(STORE) == ("smimea", "pdns", 0o660), owner(STORE)


def test_remote_backend_through_the_unit_and_the_shipped_snippet(alice, tmp_path):
    name, der_hex = alice
    with pdns_as_pdns_user(UnitService(), tmp_path / "pdns") as server:
        assert rdata_hex(smimea_answer(server, name)) == der_hex


@needs_module
def test_native_module_with_the_shipped_snippet(alice, tmp_path):
    name, der_hex = alice
    with pdns_as_pdns_user(InstalledModule(), tmp_path / "pdns") as server:
        assert rdata_hex(smimea_answer(server, name)) == der_hex


def test_api_is_installed_with_its_man_page_and_unit():
    files = dpkg_files("smimea")
    for path in ("/usr/bin/smimea-api", "/usr/share/man/man8/smimea-api.8.gz"):
        assert path in files, f"smimea does not install {path}"
    assert run(["man", "-w", "smimea-api"]).stdout.strip()
    service = unit_service_section(API_UNIT)
    assert service["User"] == "smimea" and "check-config" in service["ExecStartPre"]
    assert service["ProtectSystem"] == "strict" and service["NoNewPrivileges"] == "true"
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    r = run(["systemd-analyze", "verify", str(unit_path(API_UNIT))], check=False)
    ours = [line for line in (r.stdout + r.stderr).splitlines() if API_UNIT in line]
    assert not ours, "\n".join(ours)


def test_expiry_report_unit_mails_what_check_expiry_finds(alice, tmp_path):
    """smimea-check-expiry.service's command as the unit runs it (user, group) against the
    installed store, with a certificate that expires in 3 days: check-expiry says CRITICAL and
    the report goes to sendmail (a stand-in that keeps the message)."""
    assert "/usr/lib/smimea/smimea-expiry-report" in dpkg_files("smimea")
    timer = unit_path(EXPIRY_TIMER).read_text()
    assert "OnCalendar=" in timer and "WantedBy=timers.target" in timer
    service = unit_service_section(EXPIRY_UNIT)
    assert service["User"] == "smimea" and service["Type"] == "oneshot"
    cert, _ = make_cert(tmp_path, "soon@pkg.example", days=3)
    run(["smimea-ctl", "--config", CONFIG, "cert", "add", "soon@pkg.example", cert])
    # Where the service user runs the stand-in and writes the message: pytest's own temporary
    # directories are root's alone.
    spool = pathlib.Path(tempfile.mkdtemp(prefix="smimea-mail-", dir="/tmp"))
    spool.chmod(0o777)
    mail = spool / "mail.txt"
    sendmail = spool / "sendmail"
    sendmail.write_text(f"#!/bin/sh\n[ \"$1\" = -t ] || exit 64\ncat > {mail}\n")
    sendmail.chmod(0o755)
    argv = ["env", f"SENDMAIL={sendmail}", "MAILTO=dns-team@pkg.example",
            *shlex.split(service["ExecStart"])]
    try:
        r = run(as_service_user(argv, EXPIRY_UNIT), check=False)
        assert r.returncode == 2, (r.stdout, r.stderr)
        assert "2" in service["SuccessExitStatus"].split()  # CRITICAL does not fail the unit
        message = mail.read_text()
        head, body = message.split("\n\n", 1)
        assert "To: dns-team@pkg.example" in head.splitlines()
        subject = [line for line in head.splitlines() if line.startswith("Subject: ")]
        assert subject and "SMIMEA CRITICAL - " in subject[0], head
        assert "soon@pkg.example pkg.example notAfter " in body, body
    finally:
        run(["smimea-ctl", "--config", CONFIG, "cert", "remove", "soon@pkg.example"],
            check=False)
        shutil.rmtree(spool, ignore_errors=True)
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    for unit in (EXPIRY_UNIT, EXPIRY_TIMER):
        r = run(["systemd-analyze", "verify", str(unit_path(unit))], check=False)
        ours = [line for line in (r.stdout + r.stderr).splitlines()
                if unit in line and "man " not in line]
        assert not ours, "\n".join(ours)


def test_api_through_its_unit_publishes_what_pdns_serves(alice, tmp_path):
    """smimea-api as its unit runs it (user, group, command line, the shipped configuration),
    a token made by root with smimea-ctl, a certificate published over HTTP, and pdns with the
    installed module (or the backend's unit, where the module was not built) answering it."""
    service = unit_service_section(API_UNIT)
    run(as_service_user(shlex.split(service["ExecStartPre"]), API_UNIT))
    run(["smimea-ctl", "--config", CONFIG, "token", "remove", "pkg-panel"], check=False)
    added = run(["smimea-ctl", "--config", CONFIG, "token", "add", "pkg-panel",
                 "--zone", "pkg.example"])
    secret = added.stdout.strip().splitlines()[-1]
    port = free_port()
    argv = shlex.split(service["ExecStart"]) + ["--listen", f"127.0.0.1:{port}"]
    log = open(tmp_path / "api.log", "wb")
    proc = subprocess.Popen(as_service_user(argv, API_UNIT), stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        cert, _ = make_cert(tmp_path, "bob@pkg.example")
        body = json.dumps({"address": "bob@pkg.example",
                           "certificate": pathlib.Path(cert).read_text()}).encode()
        deadline = time.monotonic() + 10
        while True:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/v1/certificates", data=body, method="POST",
                    headers={"Authorization": f"Bearer {secret}",
                             "Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=5) as response:
                    assert response.status == 201
                break
            except urllib.error.URLError as e:
                if isinstance(e, urllib.error.HTTPError) or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "api.log").read_text()) from e
                time.sleep(0.1)
        digest = run(["sh", "-c", "printf %s bob | openssl dgst -sha256 -r"]).stdout.split()[0]
        der = subprocess.run(["openssl", "x509", "-in", str(cert), "-outform", "DER"],
                             capture_output=True, check=True).stdout
        # The installed module where there is one, else the backend's unit.
        backend = InstalledModule() if module_debs() else UnitService()
        with pdns_as_pdns_user(backend, tmp_path / "pdns") as server:
            name = f"{digest[:56]}._smimecert.pkg.example."
            assert rdata_hex(smimea_answer(server, name)) == der.hex().upper()
        changed = json.loads(run(["smimea-ctl", "--config", CONFIG, "--json", "cert", "list",
                                  "bob@pkg.example"]).stdout)
        assert changed[0]["changed_by"] == "token:pkg-panel"
        # The secret is in neither the store nor the log.
        assert secret.encode() not in STORE.read_bytes()
        assert secret.encode() not in (tmp_path / "api.log").read_bytes()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
        run(["smimea-ctl", "--config", CONFIG, "token", "remove", "pkg-panel"], check=False)


def reinstall():
    return subprocess.run(["apt-get", "install", "-y", "-q", "--reinstall", *debs()],
                          capture_output=True, text=True,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def test_upgrade_migrates_a_store_of_the_previous_schema():
    previous = FIXTURES / f"store-v{CURRENT_SCHEMA - 1}.db"
    # Mailboxes (case-folded addresses, README "Mailbox case") and certificates survive; the
    # version-4 migration may merge spellings of one mailbox.
    mailboxes = "SELECT DISTINCT lower(address), hex(fingerprint) FROM certificates ORDER BY 1, 2"
    before = sqlite3.connect(previous).execute(mailboxes).fetchall()
    assert before, f"{previous} holds no certificates"
    remove_store()
    shutil.copyfile(previous, STORE)
    shutil.chown(STORE, "smimea", "pdns")
    STORE.chmod(0o660)
    # The backend refuses it until it is migrated.
    r = run(["smimea-backend", "--config", CONFIG, "--pipe"], check=False, input="")
    assert r.returncode != 0 and "smimea-ctl init" in r.stderr, r.stderr
    r = reinstall()
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"from schema version {CURRENT_SCHEMA - 1} to {CURRENT_SCHEMA}" in r.stdout + r.stderr
    assert schema_version(STORE) == CURRENT_SCHEMA
    con = sqlite3.connect(f"file:{STORE}?mode=ro", uri=True)
    after = con.execute(mailboxes).fetchall()
    con.close()
    assert after == before
    assert owner(STORE) == ("smimea", "pdns", 0o660), owner(STORE)
    listed = run(["smimea-ctl", "--config", CONFIG, "cert", "list"]).stdout.lower()
    for (address, _) in before:
        assert address in listed


def test_a_newer_store_is_refused_clearly():
    con = sqlite3.connect(STORE)
    con.execute(f"PRAGMA user_version = {CURRENT_SCHEMA + 1}")
    con.commit()
    con.close()
    try:
        for argv in (["smimea-ctl", "--config", CONFIG, "cert", "list"],
                     ["smimea-backend", "--config", CONFIG, "--pipe"]):
            r = run(argv, check=False, input="")
            assert r.returncode != 0
            assert f"schema version {CURRENT_SCHEMA + 1}" in r.stderr, r.stderr
        # A package that is older than the store does not configure over it (a downgrade).
        r = reinstall()
        assert r.returncode != 0
        assert f"schema version {CURRENT_SCHEMA + 1}" in r.stdout + r.stderr
    finally:
        con = sqlite3.connect(STORE)
        con.execute(f"PRAGMA user_version = {CURRENT_SCHEMA}")
        con.commit()
        con.close()
        run(["dpkg", "--configure", "-a"])
    assert dpkg_field("smimea", "Status") == "install ok installed"


def test_purge_keeps_the_store():
    run(["apt-get", "purge", "-y", "-q", *(["pdns-backend-smimea"] if module_debs() else []),
         "smimea"])
    assert not pathlib.Path("/usr/bin/smimea-ctl").exists()
    assert not CONFIG.exists() and not PDNS_SNIPPET.exists()
    assert STORE.exists(), "purge removed the operator's store"
    assert schema_version(STORE) == CURRENT_SCHEMA

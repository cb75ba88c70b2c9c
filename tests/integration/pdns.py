"""Runs Debian's real pdns_server (4.7.3 on Debian 12, 4.9 on Debian 13) on 127.0.0.1 against our backend, for the
integration tests in test_pdns.py.

A Connector says how pdns reaches the backend: the lines it adds to pdns.conf, and any
process it needs running beside pdns (smimea-backend --listen for the unix connector).
CONNECTORS maps the parameter names used by the tests to these classes: the remote backend
over the unix and pipe connectors, and the native module.

PdnsServer writes pdns.conf into its own directory, starts pdns_server --config-dir with the
control socket in that directory and every cache off, waits until it answers, keeps its log
(for failure messages) and stops it with SIGTERM.
"""
import os
import pathlib
import signal
import socket
import subprocess
import time

import dns.exception
import dns.message
import dns.query
import dns.rcode
import pytest

from smimea_test import BACKEND, NATIVE_MODULE, free_port, run

PDNS_SERVER = "/usr/sbin/pdns_server"
PDNS_CONTROL = "/usr/bin/pdns_control"
PDNSUTIL = "/usr/bin/pdnsutil"
ADDRESS = "127.0.0.1"


def _pdns_version():
    """(major, minor) of the installed pdns-server, from dpkg (e.g. 4.9.20-0+deb13u1)."""
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "pdns-server"],
                         capture_output=True, text=True, check=False).stdout
    parts = out.split(":")[-1].split(".")
    return (int(parts[0]), int(parts[1])) if len(parts) > 1 else (0, 0)


PDNS_VERSION = _pdns_version()
# pdns 4.8 added workaround-11804: an AXFR sends one record per message instead of 100, so
# 100 large records (full RSA certificates) no longer overflow a 64 KB message. The README
# tells operators to set it; every pdns here runs with it where pdns has it.
HAS_WORKAROUND_11804 = PDNS_VERSION >= (4, 8)


def _tail(path, limit=4000):
    try:
        text = pathlib.Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return text if len(text) <= limit else "..." + text[-limit:]


def stop_process(proc, timeout=10):
    """SIGTERM, then SIGKILL if it has not exited after timeout. Returns the exit code."""
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=timeout)


class LoggedProcess:
    """A server a test runs in the foreground, its output in self.logfile: what the
    secondaries and ixfrdist share. A subclass sets name and logfile, and starts with launch()."""

    name = "server"
    logfile = None
    proc = None
    _log = None

    def launch(self, argv):
        self._log = open(self.logfile, "ab")
        self.proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def stop(self):
        stop_process(self.proc)
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None

    def log(self):
        try:
            text = self.logfile.read_text(errors="replace")
        except OSError:
            return f"(no {self.name} log)"
        return f"{self.name} log ({self.logfile}):\n" + text[-4000:]


def wait_for_socket(path, proc, timeout=10):
    """Waits until a unix socket accepts connections; fails early if proc exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before {path} was ready")
        if os.path.exists(path):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                try:
                    s.connect(str(path))
                    return
                except OSError:
                    pass
        time.sleep(0.05)
    raise AssertionError(f"{path}: nobody listening after {timeout} s")


class Connector:
    """How pdns reaches our backend. Subclasses fill in name, launch and config_lines()."""

    name = "?"
    launch = "remote"  # the name in pdns's launch= list

    @classmethod
    def unavailable(cls):
        """Why this connector cannot run here (a reason to skip), or None."""
        return None

    def __init__(self, store, directory):
        self.store = store
        self.dir = pathlib.Path(directory)

    def start(self):
        """Starts whatever must run before pdns_server."""

    def stop(self):
        """Stops it again; must be safe to call twice and after a failed start()."""

    def config_lines(self):
        raise NotImplementedError

    def logs(self):
        """Extra text for failure messages."""
        return ""


class UnixConnector(Connector):
    """pdns's unix connector talking to `smimea-backend --listen SOCKET`."""

    name = "unix"

    def __init__(self, store, directory):
        super().__init__(store, directory)
        self.socket = self.dir / "backend.sock"
        self.log = self.dir / "backend.log"
        self.proc = None
        self._logfile = None

    def start(self):
        self._logfile = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [str(BACKEND), "--config", str(self.store.config), "--listen", str(self.socket)],
            stdin=subprocess.DEVNULL, stdout=self._logfile, stderr=subprocess.STDOUT)
        try:
            wait_for_socket(self.socket, self.proc)
        except AssertionError as e:
            self.stop()
            raise AssertionError(f"{e}\nbackend log:\n{_tail(self.log)}") from None

    def stop(self):
        code = stop_process(self.proc)
        self.proc = None
        if self._logfile:
            self._logfile.close()
            self._logfile = None
        return code

    def config_lines(self):
        return ["remote-connection-string=unix:path=" + str(self.socket)]

    def logs(self):
        return "smimea-backend log:\n" + _tail(self.log)


class PipeConnector(Connector):
    """pdns's pipe connector: pdns starts `smimea-backend --pipe` itself, per instance.

    timeout=0: pdns waits for each reply without a deadline, so a slow reply is noticed by the
    tests' own timing rather than turned into SERVFAIL. The backend's stderr goes to pdns's log.
    """

    name = "pipe"

    def config_lines(self):
        command = f"{BACKEND} --config {self.store.config} --pipe"
        # pdns splits the command on single spaces and the option list on commas.
        assert "," not in command and "  " not in command, command
        return [f"remote-connection-string=pipe:command={command},timeout=0"]


class NativeConnector(Connector):
    """The native module libsmimeabackend.so, loaded into pdns_server (launch=smimea)."""

    name = "native"
    launch = "smimea"

    @classmethod
    def unavailable(cls):
        # CTest says whether the build has the module: when it should, a missing file fails.
        if os.environ.get("SMIMEA_PDNS_MODULE", "").upper() in ("OFF", "0", "NO", "FALSE"):
            return "the native module is not part of this build (SMIMEA_PDNS_MODULE=OFF)"
        assert NATIVE_MODULE.exists(), f"{NATIVE_MODULE} was not built"
        return None

    def config_lines(self):
        return [f"load-modules={NATIVE_MODULE}", f"smimea-config={self.store.config}"]


CONNECTORS = {"unix": UnixConnector, "pipe": PipeConnector, "native": NativeConnector}


@pytest.fixture(params=list(CONNECTORS))
def connector_name(request):
    """Each connector in turn, skipped where this build lacks it (a fixture: import it)."""
    reason = CONNECTORS[request.param].unavailable()
    if reason:
        pytest.skip(reason)
    return request.param


class PdnsServer:
    """One pdns_server with `launch=<before...>,<ours>` and the given connector.

    before: backends launched ahead of ours (for the overlay mode: ["gsqlite3"]), whose
    settings go in extra_config.
    """

    def __init__(self, connector, directory, *, before=(), extra_config=()):
        self.connector = connector
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log = self.dir / "pdns.log"
        self.proc = None
        self._logfile = None
        self._launch = list(before) + [connector.launch]
        self._extra = list(extra_config)

    # --- life cycle ---

    def config_text(self):
        lines = [
            "launch=" + ",".join(self._launch),
            f"local-address={ADDRESS}",
            f"local-port={self.port}",
            f"socket-dir={self.dir}",
            "daemon=no",
            "guardian=no",
            "write-pid=no",
            "disable-syslog=yes",
            "security-poll-suffix=",
            "cache-ttl=0",
            "query-cache-ttl=0",
            "negquery-cache-ttl=0",
            "loglevel=6",
        ]
        if HAS_WORKAROUND_11804:
            lines.append("workaround-11804=yes")
        lines += self.connector.config_lines()
        lines += self._extra
        return "\n".join(lines) + "\n"

    def start(self, timeout=15, attempts=3):
        self.connector.start()
        for attempt in range(attempts):
            (self.dir / "pdns.conf").write_text(self.config_text())
            log_start = self.log.stat().st_size if self.log.exists() else 0
            self._logfile = open(self.log, "ab")
            self.proc = subprocess.Popen([PDNS_SERVER, f"--config-dir={self.dir}"],
                                         stdin=subprocess.DEVNULL, stdout=self._logfile,
                                         stderr=subprocess.STDOUT)
            try:
                self._wait_ready(timeout)
                return self
            except BaseException:
                message = self.explain("pdns_server did not come up")
                self.stop()
                # free_port() only promises a port that was free a moment ago: someone else on
                # the machine may have taken it since. Try another one.
                new_log = self.log.read_bytes()[log_start:].decode(errors="replace")
                if attempt + 1 < attempts and "Unable to bind" in new_log:
                    self.port = free_port()
                    self.connector.start()
                    continue
                raise AssertionError(message) from None
        raise AssertionError("unreachable")

    def _wait_ready(self, timeout):
        # Any answer, even REFUSED for the root, means the listeners and the zone cache are up.
        deadline = time.monotonic() + timeout
        probe = dns.message.make_query(".", "SOA")
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"pdns_server exited with {self.proc.returncode}")
            try:
                dns.query.udp(probe, ADDRESS, port=self.port, timeout=0.3)
                return
            except (dns.exception.Timeout, OSError):
                time.sleep(0.1)
        raise AssertionError(f"no answer on port {self.port} within {timeout} s")

    def stop(self):
        code = stop_process(self.proc)
        self.proc = None
        if self._logfile:
            self._logfile.close()
            self._logfile = None
        self.connector.stop()
        return code

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- talking to it ---

    def query(self, name, rdtype, *, tcp=False, payload=1232, use_edns=True, timeout=3.0):
        """One question; returns the dns.message.Message (truncated UDP answers included)."""
        q = dns.message.make_query(name, rdtype, use_edns=0 if use_edns else False,
                                   payload=payload)
        # The 0x20 tests need the name sent exactly as given: make_query keeps its case.
        if tcp:
            return dns.query.tcp(q, ADDRESS, port=self.port, timeout=timeout)
        return dns.query.udp(q, ADDRESS, port=self.port, timeout=timeout)

    def axfr(self, zone, timeout=10.0):
        """All records of an AXFR as a list of (name, ttl, rdata) in the order received."""
        records = []
        for message in dns.query.xfr(ADDRESS, zone, port=self.port, timeout=timeout,
                                     lifetime=timeout, relativize=False):
            if message.rcode() != dns.rcode.NOERROR:
                rcode = dns.rcode.to_text(message.rcode())
                raise AssertionError(self.explain(f"AXFR {zone}: {rcode}"))
            for rrset in message.answer:
                for rdata in rrset:
                    records.append((rrset.name, rrset.ttl, rdata))
        return records

    def control(self, *args, check=True):
        """pdns_control against this server's control socket."""
        return run([PDNS_CONTROL, f"--socket-dir={self.dir}", "--no-config", *args], check=check,
                   timeout=30)

    def pdnsutil(self, *args, check=True):
        """pdnsutil with this server's configuration (it makes its own backend instances)."""
        return run([PDNSUTIL, f"--config-dir={self.dir}", *args], check=check, timeout=60)

    def explain(self, what, response=None):
        """A failure message: what went wrong, the response, and the tails of the logs."""
        parts = [what]
        if response is not None:
            parts.append(f"response:\n{response}")
        parts.append(f"pdns_server log ({self.log}):\n{_tail(self.log)}")
        extra = self.connector.logs()
        if extra:
            parts.append(extra)
        return "\n\n".join(parts)


def sqlite_schema_file():
    """The gsqlite3 schema shipped by pdns-backend-sqlite3, found through dpkg -L."""
    listing = run(["dpkg", "-L", "pdns-backend-sqlite3"]).stdout.split()
    for path in listing:
        if path.endswith("/schema.sqlite3.sql") and os.path.isfile(path):
            return pathlib.Path(path)
    raise AssertionError("pdns-backend-sqlite3 ships no schema.sqlite3.sql")

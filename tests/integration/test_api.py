"""smimea-api end to end: the daemon started as a user starts it (--config, --listen on
127.0.0.1), asked by Python's http.client, raw sockets and curl; what it publishes served by
a real pdns_server over every connector; its store read with the sqlite3 and smimea-ctl
command lines.

The contract is the provisioning API's (README, DESIGN.md "Provisioning API"): endpoints and
status codes, token scopes, limits, hostile input, the OpenAPI document's schemas (every JSON
response is validated against backend/src/api/openapi.json, with jsonschema's Draft 2020-12
validator). Expected record data is computed here with the openssl command line and hashlib,
never taken from our programs. After every refused request the store is compared with a
sqlite3 dump taken before it.

Run: SMIMEA_BUILD_DIR=build /usr/bin/python3 -m pytest -q tests/integration/test_api.py
"""
import base64
import contextlib
import datetime
import difflib
import hashlib
import http.client
import json
import os
import pathlib
import random
import re
import resource
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402

from api_client import (API, HOST, OPENAPI_FILE, ApiServer, OpenApi,  # noqa: E402
                        add_token, http_request, many_connections, parse_raw_response,
                        raw_exchange, sqlite_dump)
from pdns import CONNECTORS, PdnsServer, connector_name  # noqa: E402,F401 (a fixture)
from smimea_test import BACKEND, CTL, Cert, Store, openssl, owner_name, require, run  # noqa: E402

require(CTL, BACKEND, API, "/usr/sbin/pdns_server", "/usr/bin/curl", "/usr/bin/sqlite3")

SMIMEA = dns.rdatatype.SMIMEA
DEFAULT_TTL = 900
CONFIG_YAML = f"default-ttl: {DEFAULT_TTL}\nnameservers: [ns1.example.net.]\n"
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

# Every operation the contract names: each must be in the OpenAPI document and served.
CONTRACT_OPERATIONS = {
    ("/api/v1/zones", "GET"), ("/api/v1/zones", "POST"), ("/api/v1/zones/{name}", "DELETE"),
    ("/api/v1/certificates", "POST"), ("/api/v1/certificates", "GET"),
    ("/api/v1/certificates/{sha256}", "DELETE"), ("/api/v1/preview", "POST"),
    ("/api/v1/certificates/bulk", "POST"), ("/api/v1/openapi.json", "GET"), ("/metrics", "GET"),
}

ZONES = {  # zone -> smimea-ctl zone add options
    "example.com": [],
    "other.example": [],
    "cs.example": ["--case-sensitive"],
    "_smimecert.example.org": [],
}

TOKENS = {  # name -> smimea-ctl token add options
    "admin": ["--admin"],
    "zone": ["--zone", "example.com"],
    "ro": ["--zone", "example.com", "--read-only"],
    "alice": ["--address", "alice@example.com"],
    "x1": ["--address", "x1@example.com"],
    "erin": ["--address", "Erin@cs.example"],
    "net10": ["--admin", "--network", "10.0.0.0/8"],
    "net127": ["--admin", "--network", "127.0.0.0/8"],
    "soon": ["--zone", "example.com"],
    "gone": ["--zone", "example.com"],
}


# --------------------------------------------------------------------------------------------
# Helpers


def pem_text(cert):
    return pathlib.Path(cert.pem).read_text()


def body_for(cert, address=None, **extra):
    body = {"address": address or cert.address, "certificate": pem_text(cert)}
    body.update(extra)
    return body


def norm_owner(name):
    return name.rstrip(".").lower()


def cert_times(cert):
    """(not_before, not_after) in the CLI's format, read by python3-cryptography."""
    from cryptography import x509
    c = x509.load_der_x509_certificate(cert.der)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return c.not_valid_before.strftime(fmt), c.not_valid_after.strftime(fmt)


def expected_records(cert, *params, owner=None, ttl=DEFAULT_TTL):
    """{(owner, ttl, u, s, m, hex)} computed with openssl's DER/SPKI and hashlib."""
    owner = norm_owner(owner or cert.owner)
    return {(owner, ttl, u, s, m, cert.data(s, m).hex()) for (u, s, m) in params}


def api_records(records):
    return {(norm_owner(r["owner"]), r["ttl"], r["usage"], r["selector"], r["matching_type"],
             r["data"]) for r in records}


@contextlib.contextmanager
def unchanged(store):
    """The store byte for byte as it was (a sqlite3 dump before and after)."""
    before = sqlite_dump(store.db)
    yield
    after = sqlite_dump(store.db)
    if after != before:
        diff = "\n".join(list(difflib.unified_diff(before.splitlines(), after.splitlines(),
                                                   "before", "after", lineterm=""))[:40])
        raise AssertionError(f"a refused request changed the store:\n{diff}")


def ctl_json(store, *args):
    return json.loads(store.ctl("--json", *args).stdout)


def ctl_certs(store, *args):
    """{(address, sha256)} of `smimea-ctl --json cert list ARGS`."""
    return {(c["address"], c["fingerprint"]) for c in ctl_json(store, "cert", "list", *args)}


def zone_serial(store, zone):
    return {z["zone"]: z["serial"] for z in ctl_json(store, "zone", "list")}[zone]


def cli_words(store, address, content, tmp_path):
    """The reason `smimea-ctl cert add` gives for refusing content (without the file name
    it puts in front and the option it suggests after a ';')."""
    f = tmp_path / f"cli-input-{random.getrandbits(32):08x}"
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    r = store.ctl("cert", "add", address, f, check=False)
    assert r.returncode != 0, r.stdout
    line = r.stderr.strip().splitlines()[-1]
    line = re.sub(r"^smimea-ctl: ", "", line)
    line = re.sub(r"^\S+(?: \([^)]*\))?: ", "", line)
    return line.split("; ")[0]


def key_lines(keyfile):
    """The base64 lines of a PEM private key: none may be echoed anywhere."""
    return [line for line in pathlib.Path(keyfile).read_text().splitlines()
            if line and not line.startswith("-----")]


class Api:
    """A client of one daemon: every response is checked for the headers every response must
    carry and validated against the OpenAPI document."""

    def __init__(self, server, openapi):
        self.server = server
        self.openapi = openapi

    def call(self, method, path, *, token=None, expect=None, validate=True, **kw):
        r = http_request(self.server.target, method, path, token=token, **kw)
        where = f"{method} {path} -> {r!r}\n{self.server.logs()}"
        if expect is not None:
            expected = expect if isinstance(expect, (set, tuple, list)) else {expect}
            assert r.status in expected, f"expected {expect}: {where}"
        check_common_headers(r, path, where)
        if validate and self.openapi is not None and path.split("?")[0] != "/metrics":
            self.openapi.validate(method, path, r)
        return r

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.call("POST", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)


def check_common_headers(r, path, where=""):
    assert r.header("Cache-Control", "").lower() == "no-store", where
    assert r.header("X-Content-Type-Options", "").lower() == "nosniff", where
    ctype = r.header("Content-Type", "")
    if path.split("?")[0] == "/metrics" and r.status == 200:
        assert ctype.startswith("text/plain") and "version=0.0.4" in ctype, where
    elif r.status != 204:
        assert ctype.split(";")[0].strip() == "application/json", where
        body = r.json()  # every body but metrics' is JSON
        if r.status >= 400 and not path.startswith("/api/v1/certificates/bulk"):
            assert isinstance(body, dict) and isinstance(body.get("error"), str) \
                and body["error"], where
    if r.status == 401:
        assert r.header("WWW-Authenticate", "").startswith("Bearer"), where
    if r.status == 405:
        assert r.header("Allow"), where
    if r.status == 429:
        assert re.fullmatch(r"\d+", r.header("Retry-After", "")), where
        assert int(r.header("Retry-After")) >= 1, where


def names_token(r, name):
    """A 403 says which token may not do it: "token NAME may not ..." (contract)."""
    assert re.match(rf"token {re.escape(name)}\b", r.error()), r
    return True


def unknown_token_words(env):  # noqa: N802 - a constant, computed once per daemon
    """The one answer for every token that does not work, whatever the reason (unknown,
    expired, removed, wrong network): the reasons must not be told apart. It contains the
    contract's words; checked against an unknown token's answer once."""
    if not hasattr(env, "unknown_words"):
        r = env.api.get("/api/v1/zones", token="smimea_" + "Q" * 43, expect=401)
        assert "unknown or expired token" in r.error(), r
        env.unknown_words = r.error()
    return env.unknown_words


def metrics(target):
    """{name{labels}: value} of GET /metrics."""
    r = http_request(target, "GET", "/metrics")
    assert r.status == 200, r
    out = {}
    for line in r.body.decode().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def metric_sum(values, name, **labels):
    total = 0.0
    for key, value in values.items():
        metric, _, rest = key.partition("{")
        if metric != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += value
    return total


# --------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def openapi():
    assert OPENAPI_FILE.exists(), f"{OPENAPI_FILE} is missing"
    return OpenApi.load()


class Env:
    def __init__(self, directory, store, server, tokens, openapi):
        self.dir = directory
        self.store = store
        self.server = server
        self.tokens = tokens
        self.api = Api(server, openapi)
        self.openapi = openapi
        self._certs = {}

    def cert(self, address, **kw):
        """A certificate made with the openssl CLI for address (cached by address and kw)."""
        key = (address, repr(sorted(kw.items())))
        if key not in self._certs:
            name = f"c{len(self._certs):03d}"
            self._certs[key] = Cert(self.dir / "certs", address, name=name, **kw)
        return self._certs[key]

    def publish(self, cert, address=None, token="admin", **extra):
        r = self.api.post("/api/v1/certificates", body_for(cert, address, **extra),
                          token=self.tokens[token], expect=201)
        return r.json()


@pytest.fixture(scope="module")
def env(tmp_path_factory, openapi):
    d = tmp_path_factory.mktemp("api")
    (d / "certs").mkdir()
    store = Store(d, extra_config=CONFIG_YAML)
    for zone, opts in ZONES.items():
        store.ctl("zone", "add", zone, *opts)
    tokens = {name: add_token(store, name, *opts) for name, opts in TOKENS.items()}
    server = ApiServer(store, d / "daemon", extra_yaml=CONFIG_YAML).start()
    try:
        yield Env(d, store, server, tokens, openapi)
    finally:
        code = server.stop()
        assert code == 0, f"smimea-api exited {code} after SIGTERM\n{server.logs()}"


@pytest.fixture
def daemon(env, tmp_path):
    """Starts extra daemons on the module's store with other api: settings."""
    started = []

    def start(name="extra", **api_config):
        s = ApiServer(env.store, tmp_path / name, api_config=api_config, extra_yaml=CONFIG_YAML,
                      name=name)
        started.append(s)
        return s.start()

    yield start
    codes = {s.name: s.stop() for s in started}
    # A daemon that died during the test (a crash) shows here, not only as refused connections.
    assert all(code == 0 for code in codes.values()), \
        f"exit codes after SIGTERM: {codes}\n" + "\n".join(s.logs() for s in started)


# --------------------------------------------------------------------------------------------
# The daemon as a program


def test_version_and_help():
    r = run([API, "--version"])
    assert re.search(r"\d+\.\d+", r.stdout + r.stderr), r
    r = run([API, "--help"])
    assert "--listen" in r.stdout and "--config" in r.stdout, r.stdout


@pytest.mark.parametrize("api_yaml, words", [
    ("  colour: blue\n", "colour"),
    ("  listen: [\"0.0.0.0:{port}\"]\n", "allow-plain-http"),
    ("  max-body-bytes: 100\n", "max-body-bytes"),
    ("  listen: [\"nowhere\"]\n", "nowhere"),
])
def test_config_errors_exit_2(env, tmp_path, api_yaml, words):
    from smimea_test import free_port
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"database: {env.store.db}\napi:\n" + api_yaml.format(port=free_port()))
    r = run([API, "--config", cfg], check=False, timeout=10)
    assert r.returncode == 2, r
    assert r.stderr.startswith("smimea-api: ") and words in r.stderr, r.stderr


def test_plain_http_on_other_addresses_when_allowed(env, tmp_path):
    """The other side of the rule above: allow-plain-http: true lets it listen on 0.0.0.0."""
    from smimea_test import free_port
    port = free_port()
    s = ApiServer(env.store, tmp_path, api_config={"allow-plain-http": True},
                  listen=[f"0.0.0.0:{port}"], extra_yaml=CONFIG_YAML)
    s.port = port  # probed on 127.0.0.1, which 0.0.0.0 covers
    s.start()
    assert s.stop() == 0, s.logs()


@pytest.mark.parametrize("what", ["garbage", "missing", "no-directory"])
def test_store_error_exits_3(tmp_path, what):
    """A store that is not one, or not there: exit 3 with a message, and no store made."""
    bad = {"garbage": tmp_path / "not-a-store.db", "missing": tmp_path / "none.db",
           "no-directory": tmp_path / "no-such-dir" / "x.db"}[what]
    if what == "garbage":
        bad.write_bytes(b"this is not an SQLite database" * 100)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"database: {bad}\n")
    r = run([API, "--config", cfg, "--listen", "127.0.0.1:1"], check=False, timeout=10)
    assert r.returncode == 3, r
    assert r.stderr.startswith("smimea-api: ") and str(bad) in r.stderr, r.stderr
    assert bad.exists() == (what == "garbage")


def test_notify_ready_signals_and_exit_codes(env, tmp_path):
    """READY=1 reaches NOTIFY_SOCKET once it listens; SIGHUP logs "reloaded" and it serves
    on; SIGTERM and SIGINT exit 0."""
    notify_path = tmp_path / "notify"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(10)
    environ = dict(os.environ, NOTIFY_SOCKET=str(notify_path))
    s = ApiServer(env.store, tmp_path, extra_yaml=CONFIG_YAML, env=environ)
    from smimea_test import free_port
    s.port = free_port()
    with open(s.log, "wb") as err:
        s.proc = subprocess.Popen(s.command(), stderr=err, stdout=subprocess.DEVNULL, env=environ)
    try:
        messages = b""
        while b"READY=1" not in messages:
            messages += notify.recv(4096) + b"\n"
        # Listening by the time it says so: no retry here.
        r = http_request(s.target, "GET", "/api/v1/openapi.json")
        assert r.status == 200
        s.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "reloaded" not in s.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "reloaded" in s.log.read_text(), s.logs()
        assert s.alive()
        assert http_request(s.target, "GET", "/api/v1/openapi.json").status == 200
        assert s.stop(signal.SIGTERM) == 0, s.logs()
    finally:
        s.stop()
        notify.close()
    s2 = ApiServer(env.store, tmp_path / "int", extra_yaml=CONFIG_YAML).start()
    assert s2.stop(signal.SIGINT) == 0, s2.logs()


# --------------------------------------------------------------------------------------------
# HTTP basics and the OpenAPI document


def test_unknown_path_404_and_wrong_method_405(env):
    api, admin = env.api, env.tokens["admin"]
    r = api.get("/api/v1/nothing-here", token=admin, expect=404, validate=False)
    r = api.get("/nothing", token=admin, expect=404, validate=False)
    r = api.call("PUT", "/api/v1/zones", token=admin, body={}, expect=405, validate=False)
    allow = {m.strip().upper() for m in r.header("Allow").split(",")}
    assert {"GET", "POST"} <= allow and "PUT" not in allow, r
    r = api.call("PATCH", "/api/v1/certificates", token=admin, body={}, expect=405,
                 validate=False)
    assert {"GET", "POST"} <= {m.strip().upper() for m in r.header("Allow").split(",")}
    # The other side: the same paths with their own methods are served.
    api.get("/api/v1/zones", token=admin, expect=200)
    api.get("/api/v1/certificates", token=admin, expect=200)


def test_openapi_document_served_and_valid(env, openapi):
    r = env.api.get("/api/v1/openapi.json", expect=200)  # no token
    served = r.json()
    assert served == openapi.doc, "the served document differs from " + str(OPENAPI_FILE)
    assert str(served.get("openapi", "")).startswith("3.1"), served.get("openapi")
    openapi.check_schemas()
    documented = openapi.operations()
    missing = CONTRACT_OPERATIONS - documented
    assert not missing, f"served but not in the document: {sorted(missing)}"


@pytest.mark.parametrize("path", ["/api", "/api/v1", "/api/v1/", "/api/v2/zones",
                                  "/api/v1/zones/", "/api/v1/certificate", "/api/v1/tokens",
                                  "/api/v1/health", "/api/v1/config", "/api/v1/store",
                                  "/api/v1/zones/example.com/certificates", "/metrics/",
                                  "/api/v1/openapi.yaml", "/api/v1/certificates/bulk/x"])
def test_nothing_served_outside_the_document(env, openapi, path):
    """Paths under /api and /metrics that the document does not name: 404 (or 405 for a
    document path with another method), for any method."""
    template, _ = openapi.template_of(path)
    for method in ("GET", "POST", "DELETE"):
        kw = {"raw": b"{}"} if method == "POST" else {}
        r = http_request(env.server.target, method, path, token=env.tokens["admin"], **kw)
        if template is None:
            assert r.status == 404, f"{method} {path} is not in the document: {r}"
        else:
            assert r.status in (400, 404, 405), f"{method} {path}: {r}"


def test_every_documented_operation_is_served(env, openapi):
    """Each path and method of the document answers something else than 404/405 with real
    objects in its path parameters; the Allow header of a 405 on each documented path lists
    exactly the document's methods (so nothing served is left out of it)."""
    api, admin = env.api, env.tokens["admin"]
    api.post("/api/v1/zones", {"name": "served.example"}, token=admin, expect=201)
    cert = env.cert("served@example.com")
    published = env.publish(cert)
    values = {"name": "served.example", "sha256": published["sha256"]}
    bodies = {
        "/api/v1/zones": {"name": "served2.example"},
        "/api/v1/certificates": body_for(cert),
        "/api/v1/preview": body_for(cert),
        "/api/v1/certificates/bulk": {"certificates": [body_for(cert)]},
    }
    ops = sorted(documented for documented in openapi.operations())
    ops.sort(key=lambda op: op[1] == "DELETE")  # the deletions last
    for full, method in ops:
        path = re.sub(r"\{([^}]+)\}", lambda m: values.get(m.group(1), "x"), full)
        kw = {}
        if method in ("POST", "PUT", "PATCH"):
            kw["body"] = bodies.get(full, {})
        r = api.call(method, path, token=admin, **kw)
        assert r.status not in (404, 405), f"{method} {full} is documented but not served: {r}"
    by_path = {}
    for full, method in openapi.operations():
        by_path.setdefault(full, set()).add(method)
    for full, methods in by_path.items():
        path = re.sub(r"\{([^}]+)\}", "x", full)
        unused = next(m for m in ("PATCH", "PUT", "TRACE", "POST", "DELETE") if m not in methods)
        r = http_request(env.server.target, unused, path, token=admin, raw=b"{}")
        assert r.status == 405, f"{unused} {full}: {r}"
        allow = {m.strip().upper() for m in r.header("Allow", "").split(",") if m.strip()}
        assert allow - {"HEAD", "OPTIONS"} == methods, \
            f"{full}: Allow {allow}, documented {methods}"


def test_request_log_lines_and_no_bodies(env):
    api, admin = env.api, env.tokens["admin"]
    api.get("/api/v1/zones", token=admin, expect=200)
    api.get("/api/v1/zones", token="smimea_" + "A" * 43, expect=401)
    cert = env.cert("logged@example.com")
    api.post("/api/v1/preview", body_for(cert), token=admin, expect=200)
    time.sleep(0.2)
    log = env.server.log.read_text()
    assert re.search(r"POST /api/v1/preview 200 [0-9.]+ ?ms token=admin peer=127\.0\.0\.1", log)
    # Never a body: no line of the certificate, not the address it was sent for.
    for line in pem_text(cert).splitlines()[1:-1]:
        assert line not in log
    assert "logged@example.com" not in log
    assert re.search(r"GET /api/v1/zones 200 [0-9.]+ ?ms token=admin peer=127\.0\.0\.1", log), \
        env.server.logs()
    assert re.search(r"GET /api/v1/zones 401 [0-9.]+ ?ms token=\S* peer=127\.0\.0\.1", log), \
        env.server.logs()
    assert "Authorization" not in log and "Bearer" not in log


def test_one_log_line_per_request(env, daemon):
    s = daemon("lines")
    admin = env.tokens["admin"]
    for _ in range(3):
        http_request(s.target, "GET", "/api/v1/zones", token=admin)
    http_request(s.target, "DELETE", "/api/v1/zones/nothing.example", token=admin)
    http_request(s.target, "GET", "/api/v1/zones")
    time.sleep(0.2)
    log = s.log.read_text()
    assert len(re.findall(r"GET /api/v1/zones 200 .*token=admin peer=127\.0\.0\.1", log)) == 3, log
    assert len(re.findall(r"DELETE /api/v1/zones/nothing\.example 404 ", log)) == 1, log
    assert len(re.findall(r"GET /api/v1/zones 401 ", log)) == 1, log


# --------------------------------------------------------------------------------------------
# Authentication


def test_missing_token_401(env):
    with unchanged(env.store):
        r = env.api.get("/api/v1/zones", expect=401)
        assert "missing bearer token" in r.error(), r
        r = env.api.post("/api/v1/certificates", body_for(env.cert("noauth@example.com")),
                         expect=401)
    assert env.api.get("/api/v1/zones", token=env.tokens["admin"], expect=200)


@pytest.mark.parametrize("value", [
    "Bearer smimea_" + "A" * 43,              # unknown
    "Bearer " + "smimea_" + "B" * 10,         # malformed
    "Basic YWRtaW46YWRtaW4=",                 # another scheme
    "Bearer",                                 # no secret
    "bearer  ",
])
def test_malformed_and_unknown_tokens_401(env, value):
    with unchanged(env.store):
        r = env.api.get("/api/v1/zones", headers={"Authorization": value}, expect=401)
        assert "unknown or expired token" in r.error() or "missing bearer token" in r.error(), r
        body = body_for(env.cert("noauth@example.com"))
        env.api.post("/api/v1/certificates", body, headers={"Authorization": value}, expect=401)


def test_a_secret_elsewhere_than_the_authorization_header_does_not_count(env):
    """Only `Authorization: Bearer`: a secret in the query, in another header or as a
    cookie authenticates nothing (and a query is never logged with its secret)."""
    secret = env.tokens["admin"]
    with unchanged(env.store):
        for path, headers in (
                (f"/api/v1/zones?access_token={secret}", {}),
                ("/api/v1/zones", {"X-Api-Key": secret}),
                ("/api/v1/zones", {"Cookie": f"token={secret}"}),
                ("/api/v1/zones", {"Proxy-Authorization": f"Bearer {secret}"})):
            r = env.api.call("GET", path, headers=headers, expect={400, 401}, validate=False)
            assert r.status == 400 or "missing bearer token" in r.error(), r
    time.sleep(0.1)
    assert secret not in env.server.log.read_text()


def test_admin_secret_with_one_character_changed_401(env):
    secret = env.tokens["admin"]
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    env.api.get("/api/v1/zones", token=wrong, expect=401)
    env.api.get("/api/v1/zones", token=secret, expect=200)


def test_expired_token_401(env):
    token = env.tokens["soon"]
    env.api.get("/api/v1/zones", token=token, expect=200)
    with sqlite3.connect(env.store.db, timeout=10) as db:
        db.execute("UPDATE tokens SET expires_at = ? WHERE name = 'soon'", (int(time.time()) - 60,))
    db.close()
    r = env.api.get("/api/v1/zones", token=token, expect=401)
    assert r.error() == unknown_token_words(env), r
    with unchanged(env.store):
        env.api.post("/api/v1/certificates", body_for(env.cert("soon@example.com")), token=token,
                     expect=401)


def test_removed_token_401(env):
    token = env.tokens["gone"]
    env.api.get("/api/v1/zones", token=token, expect=200)
    env.store.ctl("token", "remove", "gone")
    r = env.api.get("/api/v1/zones", token=token, expect=401)
    assert r.error() == unknown_token_words(env), r


def test_token_networks(env):
    with unchanged(env.store):
        r = env.api.get("/api/v1/zones", token=env.tokens["net10"], expect=401)
        assert r.error() == unknown_token_words(env), r
        env.api.post("/api/v1/certificates", body_for(env.cert("net10@example.com")),
                     token=env.tokens["net10"], expect=401)
    env.api.get("/api/v1/zones", token=env.tokens["net127"], expect=200)
    body = env.publish(env.cert("net127@example.com"), token="net127")
    assert body["address"] == "net127@example.com"


# --------------------------------------------------------------------------------------------
# Zones


def test_zones_listed_by_scope(env):
    api, t = env.api, env.tokens
    cli = {z["zone"]: z for z in ctl_json(env.store, "zone", "list")}
    listed = api.get("/api/v1/zones", token=t["admin"], expect=200).json()
    assert {z["name"] for z in listed} == set(cli), listed
    for z in listed:
        c = cli[z["name"]]
        assert (z["kind"], z["mode"], z["serial"], z["case_sensitive"]) == \
            (c["kind"], c["mode"], c["serial"], c["case_sensitive"]), (z, c)
    assert {z["name"]: z["case_sensitive"] for z in listed}["cs.example"] is True
    assert {z["name"]: z["case_sensitive"] for z in listed}["example.com"] is False

    def names(token):
        return sorted(z["name"] for z in api.get("/api/v1/zones", token=t[token],
                                                   expect=200).json())

    assert names("zone") == ["example.com"]
    assert names("ro") == ["example.com"]
    assert names("alice") == ["example.com"]
    assert names("erin") == ["cs.example"]


def test_zone_create_admin_only(env):
    api, t = env.api, env.tokens
    for token in ("zone", "ro", "alice"):
        with unchanged(env.store):
            r = api.post("/api/v1/zones", {"name": "nope.example"}, token=t[token], expect=403)
            assert names_token(r, token)
    r = api.post("/api/v1/zones", {"name": "new1.example"}, token=t["admin"], expect=201)
    z = r.json()
    assert (z["name"], z["kind"], z["mode"], z["case_sensitive"]) == \
        ("new1.example", "master", "authoritative", False), z
    r = api.post("/api/v1/zones", {"name": "new2.example", "kind": "native", "mode": "overlay",
                                   "case_sensitive": True}, token=t["admin"], expect=201)
    z = r.json()
    assert (z["kind"], z["mode"], z["case_sensitive"]) == ("native", "overlay", True), z
    cli = {z["zone"]: z for z in ctl_json(env.store, "zone", "list")}
    assert (cli["new1.example"]["kind"], cli["new1.example"]["mode"],
            cli["new1.example"]["case_sensitive"]) == ("master", "authoritative", False)
    assert (cli["new2.example"]["kind"], cli["new2.example"]["mode"],
            cli["new2.example"]["case_sensitive"]) == ("native", "overlay", True)
    assert cli["new2.example"]["serial"] == z["serial"]
    # A zone that exists: 409, nothing changed.
    with unchanged(env.store):
        for name in ("new1.example", "example.com", "EXAMPLE.COM"):
            r = api.post("/api/v1/zones", {"name": name}, token=t["admin"], expect=409)
            assert r.error(), r


@pytest.mark.parametrize("body", [
    {},
    {"name": 5},
    {"name": "bad1.example", "kind": "slave"},
    {"name": "bad2.example", "mode": "sideways"},
    {"name": "bad3.example", "case_sensitive": "yes"},
    {"name": "bad4.example", "colour": "blue"},
    {"name": "not a domain!"},
    {"name": ""},
    ["bad5.example"],
])
def test_zone_create_malformed_400(env, body):
    with unchanged(env.store):
        env.api.post("/api/v1/zones", body, token=env.tokens["admin"], expect=400)


def test_zone_delete(env):
    api, t = env.api, env.tokens
    api.post("/api/v1/zones", {"name": "del1.example"}, token=t["admin"], expect=201)
    api.post("/api/v1/zones", {"name": "del2.example"}, token=t["admin"], expect=201)
    env.publish(env.cert("someone@del2.example"))
    with unchanged(env.store):
        api.delete("/api/v1/zones/del1.example", token=t["zone"], expect=403)
        api.delete("/api/v1/zones/example.com", token=t["zone"], expect=403)  # its own zone
        api.delete("/api/v1/zones/del1.example", token=t["ro"], expect=403)
        api.delete("/api/v1/zones/nothing.example", token=t["admin"], expect=404)
        r = api.delete("/api/v1/zones/del2.example", token=t["admin"], expect=409)
        assert r.error(), r
    api.delete("/api/v1/zones/del1.example", token=t["admin"], expect=204)
    api.delete("/api/v1/zones/del2.example?force=true", token=t["admin"], expect=204)
    zones = {z["zone"] for z in ctl_json(env.store, "zone", "list")}
    assert "del1.example" not in zones and "del2.example" not in zones
    assert not [c for c in ctl_json(env.store, "cert", "list") if c["zone"] == "del2.example"]
    api.delete("/api/v1/zones/del1.example", token=t["admin"], expect=404)


# --------------------------------------------------------------------------------------------
# Publishing


def test_publish_record_data_from_openssl(env):
    cert = env.cert("pub1@example.com")
    serial_before = zone_serial(env.store, "example.com")
    r = env.publish(cert)
    sha = hashlib.sha256(cert.der).hexdigest()
    assert r["address"] == "pub1@example.com" and r["zone"] == "example.com", r
    assert r["sha256"] == sha and r["changed"] is True, r
    assert api_records(r["records"]) == expected_records(cert, (3, 0, 0)), r["records"]
    [c] = r["certificates"]
    assert c["sha256"] == sha
    assert (c["not_before"], c["not_after"]) == cert_times(cert)
    subject = openssl("x509", "-in", cert.pem, "-noout", "-subject", "-nameopt",
                      "RFC2253").decode().strip().removeprefix("subject=")
    assert c["subject"] == subject and c["issuer"] == subject, c
    assert api_records(c["records"]) == api_records(r["records"])
    assert r["serial"] == zone_serial(env.store, "example.com") and r["serial"] != serial_before
    assert ("pub1@example.com", sha) in ctl_certs(env.store)
    # export: the record a zone transfer would carry.
    line = f"{cert.owner}\t{DEFAULT_TTL}\tIN\tSMIMEA\t3 0 0 {cert.der.hex()}"
    assert line in env.store.ctl("export", "example.com").stdout.splitlines()


def test_publish_records_and_ttl(env):
    cert = env.cert("pub2@example.com", key="rsa")
    r = env.publish(cert, records=["3 1 1", "3 0 2"], ttl=1234)
    assert api_records(r["records"]) == \
        expected_records(cert, (3, 1, 1), (3, 0, 2), ttl=1234), r["records"]


def test_publish_again_is_unchanged(env):
    cert = env.cert("pub3@example.com")
    first = env.publish(cert)
    with unchanged(env.store):
        again = env.publish(cert)
    assert first["changed"] is True and again["changed"] is False, again
    assert again["serial"] == first["serial"] == zone_serial(env.store, "example.com")


def test_preview_stores_nothing(env):
    cert = env.cert("prev@example.com")
    serial = zone_serial(env.store, "example.com")
    with unchanged(env.store):
        r = env.api.post("/api/v1/preview", body_for(cert, records=["3 1 1"]),
                         token=env.tokens["admin"], expect=200).json()
    assert api_records(r["records"]) == expected_records(cert, (3, 1, 1)), r
    assert r["sha256"] == hashlib.sha256(cert.der).hexdigest()
    assert r["serial"] == serial == zone_serial(env.store, "example.com")
    # Read-only tokens may preview.
    with unchanged(env.store):
        env.api.post("/api/v1/preview", body_for(cert), token=env.tokens["ro"], expect=200)
    # The other side: the same body POSTed to /certificates is stored.
    env.publish(cert, records=["3 1 1"])
    assert ("prev@example.com", r["sha256"]) in ctl_certs(env.store)


def test_certificate_formats(env, tmp_path):
    """Base64 DER, PKCS#7 (PEM and base64 DER), a signed mail and a chain: the same
    certificate found in each (its SHA-256 from openssl)."""
    cert = env.cert("formats@example.com")
    sha = hashlib.sha256(cert.der).hexdigest()
    p7_pem = openssl("crl2pkcs7", "-nocrl", "-certfile", cert.pem).decode()
    p7_der = openssl("crl2pkcs7", "-nocrl", "-certfile", cert.pem, "-outform", "DER")
    msg = tmp_path / "msg.txt"
    msg.write_text("Subject: hello\r\n\r\nhello\r\n")
    mail = openssl("smime", "-sign", "-in", msg, "-signer", cert.pem, "-inkey", cert.key,
                   "-nodetach", "-from", cert.address).decode()
    for text in (base64.b64encode(cert.der).decode(), p7_pem,
                 base64.b64encode(p7_der).decode(), mail):
        with unchanged(env.store):
            r = env.api.post("/api/v1/preview", {"address": cert.address, "certificate": text},
                             token=env.tokens["admin"], expect=200).json()
        assert r["sha256"] == sha, text[:80]
        assert api_records(r["records"]) == expected_records(cert, (3, 0, 0))
    # A chain: an end-entity certificate signed by a CA, both in one PEM.
    ca_key, ca_pem = tmp_path / "ca.key", tmp_path / "ca.pem"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", ca_key, "-out", ca_pem, "-subj", "/CN=Test CA", "-days", "30",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ee_key, csr, ee_pem, ext = (tmp_path / n for n in ("ee.key", "ee.csr", "ee.pem", "ext"))
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", ee_key, "-out", csr, "-subj", "/CN=chain@example.com")
    ext.write_text("subjectAltName=email:chain@example.com\nbasicConstraints=critical,CA:FALSE\n"
                   "extendedKeyUsage=emailProtection\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key, "-CAcreateserial",
            "-out", ee_pem, "-days", "30", "-extfile", ext)
    ee_der = openssl("x509", "-in", ee_pem, "-outform", "DER")
    ca_der = openssl("x509", "-in", ca_pem, "-outform", "DER")
    chain = ee_pem.read_text() + ca_pem.read_text()
    with unchanged(env.store):
        r = env.api.post("/api/v1/preview", {"address": "chain@example.com",
                                             "certificate": chain, "records": ["3 0 0", "2 0 1"]},
                         token=env.tokens["admin"], expect=200).json()
    ee_sha, ca_sha = hashlib.sha256(ee_der).hexdigest(), hashlib.sha256(ca_der).hexdigest()
    assert r["sha256"] == ee_sha, r
    assert r["certificates"][0]["sha256"] == ee_sha, r
    assert {c["sha256"] for c in r["certificates"]} == {ee_sha, ca_sha}, r
    # DANE-EE with the end entity's DER; DANE-TA with the SHA-256 of the CA's.
    owner = norm_owner(owner_name("chain@example.com"))
    assert api_records(r["records"]) == {(owner, DEFAULT_TTL, 3, 0, 0, ee_der.hex()),
                                         (owner, DEFAULT_TTL, 2, 0, 1, ca_sha)}, r["records"]


def expired_cert_pem(address):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=10))
            .not_valid_after(now - datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(address)]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_refused_certificates_422_with_the_cli_words(env, tmp_path):
    api, admin = env.api, env.tokens["admin"]
    other = env.cert("someone-else@example.com")
    expired = expired_cert_pem("old@example.com")
    cases = [
        ("ref1@example.com", pem_text(other)),     # does not name the address
        ("old@example.com", expired),               # expired
        ("ref2@example.com", "hello, world"),      # not a certificate
        ("ref3@example.com", pem_text(other)[:300] + "\n-----END CERTIFICATE-----\n"),
    ]
    for address, text in cases:
        words = cli_words(env.store, address, text, tmp_path)
        with unchanged(env.store):
            r = api.post("/api/v1/certificates", {"address": address, "certificate": text},
                         token=admin, expect=422)
        assert words in r.error(), (words, r)
        with unchanged(env.store):
            api.post("/api/v1/preview", {"address": address, "certificate": text}, token=admin,
                     expect=422)
    # The other sides: allow_expired and force publish, with a warning.
    r = env.api.post("/api/v1/certificates", {"address": "old@example.com",
                                              "certificate": expired, "allow_expired": True},
                     token=admin, expect=201).json()
    assert r["warnings"] and any("expire" in w for w in r["warnings"]), r
    r = env.publish(other, "ref1@example.com", force=True)
    assert r["warnings"], r
    assert ("ref1@example.com", hashlib.sha256(other.der).hexdigest()) in ctl_certs(env.store)


def test_private_keys_refused_and_never_echoed(env, tmp_path):
    api, admin = env.api, env.tokens["admin"]
    cert = env.cert("keyed@example.com")
    key_pem = pathlib.Path(cert.key).read_text()
    key_der = openssl("pkey", "-in", cert.key, "-outform", "DER")
    secret_lines = key_lines(cert.key)
    for text in (key_pem, pem_text(cert) + key_pem, key_pem + pem_text(cert),
                 base64.b64encode(key_der).decode()):
        for path in ("/api/v1/certificates", "/api/v1/preview"):
            with unchanged(env.store):
                r = api.post(path, {"address": cert.address, "certificate": text}, token=admin,
                             expect=422)
            assert "private key" in r.error(), r
            for line in secret_lines:
                assert line not in r.body.decode(), r
            assert base64.b64encode(key_der).decode()[:40] not in r.body.decode()
    words = cli_words(env.store, cert.address, key_pem, tmp_path)
    r = api.post("/api/v1/certificates", {"address": cert.address, "certificate": key_pem},
                 token=admin, expect=422)
    assert words in r.error(), (words, r)
    time.sleep(0.1)
    log = env.server.log.read_text()
    for line in secret_lines:
        assert line not in log


@pytest.mark.parametrize("mutate", [
    lambda b: {k: v for k, v in b.items() if k != "address"},
    lambda b: {k: v for k, v in b.items() if k != "certificate"},
    lambda b: dict(b, address=42),
    lambda b: dict(b, certificate=["x"]),
    lambda b: dict(b, records="3 0 0"),
    lambda b: dict(b, records=[3, 0, 0]),
    lambda b: dict(b, ttl="900"),
    lambda b: dict(b, force="yes"),
    lambda b: dict(b, allow_expired=1),
    lambda b: dict(b, colour="blue"),
    lambda b: [b],
    lambda b: "a string",
], ids=["no-address", "no-certificate", "address-number", "certificate-list", "records-string",
        "records-numbers", "ttl-string", "force-string", "allow-expired-number", "unknown-field",
        "array", "string"])
def test_malformed_publish_400(env, mutate):
    body = mutate(body_for(env.cert("malformed@example.com")))
    for path in ("/api/v1/certificates", "/api/v1/preview"):
        with unchanged(env.store):
            env.api.post(path, body, token=env.tokens["admin"], expect=400)
    # The unmutated body is fine.
    env.api.post("/api/v1/preview", body_for(env.cert("malformed@example.com")),
                 token=env.tokens["admin"], expect=200)


@pytest.mark.parametrize("extra", [{"records": ["9 9 9"]}, {"records": ["3 0"]},
                                   {"ttl": -1}, {"ttl": 10 ** 12}])
def test_out_of_range_values_refused(env, extra):
    with unchanged(env.store):
        env.api.post("/api/v1/certificates", body_for(env.cert("range@example.com"), **extra),
                     token=env.tokens["admin"], expect={400, 422})
    env.api.post("/api/v1/preview", body_for(env.cert("range@example.com")),
                 token=env.tokens["admin"], expect=200)


def test_no_zone_for_the_address(env):
    cert = env.cert("nobody@nozone.example")
    with unchanged(env.store):
        r = env.api.post("/api/v1/certificates", body_for(cert), token=env.tokens["admin"],
                         expect={404, 422})
    assert "nozone.example" in r.error(), r


# --------------------------------------------------------------------------------------------
# Scopes


def test_zone_token_scope(env):
    t = env.tokens
    inside = env.cert("zt@example.com")
    outside = env.cert("zt@other.example")
    r = env.publish(inside, token="zone")
    assert r["zone"] == "example.com"
    with unchanged(env.store):
        r = env.api.post("/api/v1/certificates", body_for(outside), token=t["zone"], expect=403)
        assert names_token(r, "zone")
        env.api.post("/api/v1/certificates/bulk", {"certificates": [body_for(outside)],
                                                   "atomic": True}, token=t["zone"],
                     expect={403, 422})
    # force: a zone token may.
    env.publish(env.cert("zt-other-name@example.com"), "zt-forced@example.com", token="zone",
                force=True)
    listed = env.api.get("/api/v1/certificates", token=t["zone"], expect=200).json()
    assert listed and all(c["zone"] == "example.com" for c in listed), listed


def test_address_token_case_folded(env):
    t = env.tokens
    env.publish(env.cert("alice@example.com"), token="alice")
    env.publish(env.cert("ALICE@example.com"), token="alice")  # the same mailbox, folded
    env.publish(env.cert("alice@EXAMPLE.COM"), token="alice")  # domains never have case
    with unchanged(env.store):
        r = env.api.post("/api/v1/certificates", body_for(env.cert("bob@example.com")),
                         token=t["alice"], expect=403)
        assert names_token(r, "alice")
        # force: never for an address token, even for its own mailbox.
        env.api.post("/api/v1/certificates",
                      body_for(env.cert("alice@example.com"), force=True),
                      token=t["alice"], expect=403)
        env.api.post("/api/v1/certificates",
                      body_for(env.cert("not-alice@example.com"), "alice@example.com",
                               force=True), token=t["alice"], expect=403)
    listed = env.api.get("/api/v1/certificates", token=t["alice"], expect=200).json()
    assert listed and {c["address"].lower() for c in listed} == {"alice@example.com"}, listed
    # Listing and removal compare the same way: any case finds the one mailbox.
    folded = env.api.get("/api/v1/certificates?address=ALICE@Example.COM", token=t["admin"],
                         expect=200).json()
    assert {(c["address"].lower(), c["sha256"]) for c in folded} == \
        {(c["address"].lower(), c["sha256"]) for c in listed}, folded


def test_address_token_in_a_case_sensitive_zone(env):
    t = env.tokens
    env.publish(env.cert("Erin@cs.example"), token="erin")
    env.publish(env.cert("Erin@CS.EXAMPLE"), token="erin")
    with unchanged(env.store):
        r = env.api.post("/api/v1/certificates", body_for(env.cert("erin@cs.example")),
                         token=t["erin"], expect=403)
        assert names_token(r, "erin")
        env.api.post("/api/v1/certificates", body_for(env.cert("ERIN@cs.example")),
                     token=t["erin"], expect=403)
    listed = env.api.get("/api/v1/certificates?address=erin@cs.example", token=t["admin"],
                         expect=200).json()
    assert listed == [], listed  # another mailbox in a case-sensitive zone
    # Exactly one owner name, the exact local-part's: no lower-cased variant.
    r = env.api.get("/api/v1/certificates?address=Erin@cs.example", token=t["erin"],
                    expect=200).json()
    owners = {norm_owner(rec["owner"]) for c in r for rec in c["records"]}
    assert owners == {norm_owner(owner_name("Erin@cs.example"))}, owners


def test_read_only_token(env):
    t = env.tokens
    cert = env.cert("rotest@example.com")
    sha = env.publish(cert)["sha256"]
    env.api.get("/api/v1/zones", token=t["ro"], expect=200)
    env.api.get("/api/v1/certificates?zone=example.com", token=t["ro"], expect=200)
    env.api.post("/api/v1/preview", body_for(cert), token=t["ro"], expect=200)
    with unchanged(env.store):
        for method, path, body in [
            ("POST", "/api/v1/certificates", body_for(env.cert("rotest2@example.com"))),
            ("POST", "/api/v1/certificates/bulk", {"certificates": [body_for(cert)]}),
            ("DELETE", f"/api/v1/certificates/{sha}", None),
            ("POST", "/api/v1/zones", {"name": "ro.example"}),
            ("DELETE", "/api/v1/zones/example.com", None),
        ]:
            kw = {} if body is None else {"body": body}
            if path.endswith("/bulk"):
                # Refused whole, or item by item.
                r = env.api.call(method, path, token=t["ro"], expect={200, 403, 422}, **kw)
                if r.status != 403:
                    assert [x["status"] for x in r.json()["results"]] == [403], r
                    continue
            else:
                r = env.api.call(method, path, token=t["ro"], expect=403, **kw)
            assert names_token(r, "ro")


def test_changed_by_names_the_token(env):
    cert = env.cert("audit@example.com")
    env.publish(cert, token="zone")
    [c] = ctl_json(env.store, "cert", "list", "audit@example.com")
    assert c["changed_by"] == "token:zone", c
    listed = env.api.get("/api/v1/certificates?address=audit@example.com",
                         token=env.tokens["admin"], expect=200).json()
    assert [x["changed_by"] for x in listed] == ["token:zone"]
    env.publish(cert, token="admin", records=["3 1 1"])
    [c] = ctl_json(env.store, "cert", "list", "audit@example.com")
    assert c["changed_by"] == "token:admin", c


# --------------------------------------------------------------------------------------------
# Listing and removing


def test_list_certificates(env):
    t = env.tokens
    a = env.cert("list1@example.com")
    b = env.cert("list2@other.example")
    env.publish(a, records=["3 0 0", "3 1 1"])
    env.publish(b)
    everything = env.api.get("/api/v1/certificates", token=t["admin"], expect=200).json()
    cli = {(c["address"], c["fingerprint"]): c for c in ctl_json(env.store, "cert", "list")}
    assert {(c["address"], c["sha256"]) for c in everything} == set(cli)
    for c in everything:
        k = cli[(c["address"], c["sha256"])]
        for field in ("zone", "subject", "issuer", "serial", "not_before", "not_after",
                      "added", "changed_by"):
            assert c[field] == k[field], (field, c, k)
        for field in ("not_before", "not_after", "added"):
            assert TIME_RE.match(c[field]), c
    by_addr = env.api.get("/api/v1/certificates?address=list1@example.com", token=t["admin"],
                          expect=200).json()
    assert [c["sha256"] for c in by_addr] == [hashlib.sha256(a.der).hexdigest()]
    assert api_records(by_addr[0]["records"]) == expected_records(a, (3, 0, 0), (3, 1, 1))
    by_zone = env.api.get("/api/v1/certificates?zone=other.example", token=t["admin"],
                          expect=200).json()
    assert by_zone and {c["zone"] for c in by_zone} == {"other.example"}
    assert ("list2@other.example", hashlib.sha256(b.der).hexdigest()) in \
        {(c["address"], c["sha256"]) for c in by_zone}
    # Scope: the zone token never sees other.example's certificates.
    seen = env.api.get("/api/v1/certificates", token=t["zone"], expect=200).json()
    assert seen and {c["zone"] for c in seen} == {"example.com"}
    r = env.api.get("/api/v1/certificates?zone=other.example", token=t["zone"],
                    expect={200, 403})
    if r.status == 200:
        assert r.json() == []
    # Bad queries.
    env.api.get("/api/v1/certificates?colour=red", token=t["admin"], expect=400)
    env.api.get("/api/v1/certificates?zone=example.com&address=list1@example.com",
                token=t["admin"], expect={200, 400})


def test_delete_certificate(env):
    t = env.tokens
    both = env.cert("x1@example.com", extra_san=["email:x2@example.com"])
    sha = hashlib.sha256(both.der).hexdigest()
    env.publish(both, "x1@example.com")
    env.publish(both, "x2@example.com")
    env.publish(both, "x3@example.com", force=True)  # names x1 and x2 only
    # ?address: only that mailbox's.
    env.api.delete(f"/api/v1/certificates/{sha}?address=x3@example.com", token=t["admin"],
                   expect=204)
    assert {a for a, s in ctl_certs(env.store) if s == sha} == {"x1@example.com",
                                                                "x2@example.com"}
    # An address token: only the mailboxes it may write.
    env.api.delete(f"/api/v1/certificates/{sha}", token=t["x1"], expect=204)
    assert {a for a, s in ctl_certs(env.store) if s == sha} == {"x2@example.com"}
    with unchanged(env.store):
        r = env.api.delete(f"/api/v1/certificates/{sha}", token=t["x1"], expect=403)
        assert names_token(r, "x1")
        env.api.delete(f"/api/v1/certificates/{sha}", token=t["ro"], expect=403)
        env.api.delete("/api/v1/certificates/" + "0" * 64, token=t["admin"], expect=404)
    env.api.delete(f"/api/v1/certificates/{sha}", token=t["admin"], expect=204)
    assert not {a for a, s in ctl_certs(env.store) if s == sha}
    env.api.delete(f"/api/v1/certificates/{sha}", token=t["admin"], expect=404)


def test_delete_outside_zone_scope_403(env):
    cert = env.cert("far@other.example")
    sha = env.publish(cert)["sha256"]
    with unchanged(env.store):
        env.api.delete(f"/api/v1/certificates/{sha}", token=env.tokens["zone"], expect=403)
        env.api.delete(f"/api/v1/certificates/{sha}", token=env.tokens["alice"], expect=403)
    assert ("far@other.example", sha) in ctl_certs(env.store)


# --------------------------------------------------------------------------------------------
# Bulk


def test_bulk_mixed_results(env):
    t = env.tokens
    good = env.cert("bulk1@example.com")
    good2 = env.cert("bulk2@example.com")
    items = [body_for(good), {"address": "bulk-bad@example.com", "certificate": "garbage"},
             body_for(env.cert("bulk@other.example")), {"certificate": pem_text(good2)},
             body_for(good2)]
    r = env.api.post("/api/v1/certificates/bulk", {"certificates": items}, token=t["zone"],
                     expect=200).json()
    assert (r["published"], r["refused"]) == (2, 3), r
    statuses = {x["index"]: x["status"] for x in r["results"]}
    assert statuses == {0: 201, 1: 422, 2: 403, 3: 400, 4: 201}, r
    # Each item: {"index", "status"} and a summary of what was published (its records are in
    # GET /api/v1/certificates), or an "error".
    for x in r["results"]:
        assert ("sha256" in x) == (x["status"] == 201) and ("error" in x) != \
            (x["status"] == 201), x
    published = r["results"][0]
    assert published["sha256"] == hashlib.sha256(good.der).hexdigest(), published
    assert published["address"] == "bulk1@example.com" and published["changed"], published
    assert published["zone"] == "example.com" and published["warnings"] == [], published
    stored = ctl_certs(env.store)
    assert ("bulk1@example.com", hashlib.sha256(good.der).hexdigest()) in stored
    assert ("bulk2@example.com", hashlib.sha256(good2.der).hexdigest()) in stored
    assert not [a for a, _ in stored if a in ("bulk-bad@example.com", "bulk@other.example")]


def test_bulk_atomic(env):
    t = env.tokens
    a, b = env.cert("atomic1@example.com"), env.cert("atomic2@example.com")
    items = [body_for(a), {"address": "atomic-bad@example.com", "certificate": "garbage"},
             body_for(b)]
    with unchanged(env.store):
        r = env.api.post("/api/v1/certificates/bulk", {"certificates": items, "atomic": True},
                         token=t["admin"], expect=422).json()
    assert r["refused"] >= 1 and [x["status"] for x in r["results"]][1] == 422, r
    r = env.api.post("/api/v1/certificates/bulk", {"certificates": [items[0], items[2]],
                                                   "atomic": True},
                     token=t["admin"], expect=200).json()
    assert (r["published"], r["refused"]) == (2, 0), r
    stored = ctl_certs(env.store)
    assert ("atomic1@example.com", hashlib.sha256(a.der).hexdigest()) in stored
    assert ("atomic2@example.com", hashlib.sha256(b.der).hexdigest()) in stored


@pytest.mark.parametrize("body", [{}, {"certificates": "x"}, {"certificates": [], "colour": 1},
                                  {"certificates": [], "atomic": "yes"}])
def test_bulk_malformed_400(env, body):
    with unchanged(env.store):
        env.api.post("/api/v1/certificates/bulk", body, token=env.tokens["admin"], expect=400)


def test_body_limits(env, daemon, tmp_path):
    """max-body-bytes to the byte, bulk's own limits, 413 on a raw socket and from curl."""
    s = daemon("limits", **{"max-body-bytes": 4096, "max-bulk-bytes": 65536,
                            "max-bulk-items": 3, "rate-limit": 0})
    api = Api(s, env.openapi)
    admin = env.tokens["admin"]
    cert = env.cert("limit@example.com")

    def padded(size, body):
        text = json.dumps(body)
        return (text[:-1] + " " * (size - len(text)) + "}").encode()

    with unchanged(env.store):
        api.call("POST", "/api/v1/certificates", raw=padded(4097, body_for(cert)), token=admin,
                 expect=413)
        head = (f"POST /api/v1/certificates HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}"
                f"\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n")
        r = raw_exchange(HOST, s.port, head.encode(), b"{" + b" " * (4 << 20))
        assert r is not None and r.status == 413, r
        big = tmp_path / "big.json"
        big.write_bytes(padded(10 << 20, body_for(cert)))
        out = run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                   "-H", "Content-Type: application/json", "-H", f"Authorization: Bearer {admin}",
                   "--data-binary", f"@{big}", f"http://{HOST}:{s.port}/api/v1/certificates"],
                  check=False).stdout
        assert out == "413", out
        # Bulk: more items than max-bulk-items, a body over max-bulk-bytes.
        items = [body_for(env.cert(f"limit{i}@example.com")) for i in range(4)]
        api.post("/api/v1/certificates/bulk", {"certificates": items}, token=admin,
                 expect={400, 413, 422})
        api.call("POST", "/api/v1/certificates/bulk",
                 raw=padded(65537, {"certificates": items[:1]}), token=admin, expect=413)
    assert s.alive()
    # The other side: exactly max-body-bytes is accepted; a bulk body over max-body-bytes
    # but within max-bulk-bytes too.
    r = api.call("POST", "/api/v1/certificates", raw=padded(4096, body_for(cert)), token=admin,
                 expect=201)
    bulk = padded(6000, {"certificates": items[:3]})
    r = api.call("POST", "/api/v1/certificates/bulk", raw=bulk, token=admin, expect=200)
    assert r.json()["published"] == 3


# --------------------------------------------------------------------------------------------
# Hostile input


def post_raw(env, path, data, **kw):
    return env.api.call("POST", path, raw=data, token=env.tokens["admin"], **kw)


def test_truncated_json_400(env):
    text = json.dumps(body_for(env.cert("trunc@example.com")))
    with unchanged(env.store):
        for cut in (1, 10, len(text) // 2, len(text) - 1):
            post_raw(env, "/api/v1/certificates", text[:cut].encode(), expect=400)
        post_raw(env, "/api/v1/certificates", b"", expect=400)
        # Content-Length promises more than comes: the client gives up half way.
        head = (f"POST /api/v1/certificates HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                f"{env.tokens['admin']}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(text)}\r\n\r\n").encode()
        s = socket.create_connection((HOST, env.server.port), timeout=15)
        s.sendall(head + text[:len(text) // 2].encode())
        s.shutdown(socket.SHUT_WR)
        data = b""
        with contextlib.suppress(OSError):
            while chunk := s.recv(65536):
                data += chunk
        s.close()
        assert not data.startswith(b"HTTP/1.1 2"), data
    post_raw(env, "/api/v1/preview", text.encode(), expect=200)


@pytest.mark.parametrize("data", [
    b"[" * 100000,
    b"{\"address\": " + b"[" * 100000,
    b"{\"a\":" * 50000 + b"1" + b"}" * 50000,
    b"[" * 100000 + b"]" * 100000,
], ids=["open-arrays", "nested-in-field", "nested-objects", "balanced-arrays"])
def test_deeply_nested_json_400(env, data):
    with unchanged(env.store):
        post_raw(env, "/api/v1/certificates", data, expect=400)
        post_raw(env, "/api/v1/certificates/bulk", b"{\"certificates\": " + data, expect=400)
    assert env.server.alive()
    env.api.get("/api/v1/zones", token=env.tokens["admin"], expect=200)


def test_non_utf8_json_400(env):
    cert = env.cert("utf8@example.com")
    pem = pem_text(cert)
    for data in (b'{"address": "\xff\xfe@example.com", "certificate": ' + json.dumps(pem).encode()
                 + b"}",
                 b'{"address": "utf8@example.com", "certificate": "\xc0\xaf' + b'"}',
                 b'\xef\xbb\xbf' + json.dumps(body_for(cert)).encode().replace(b"utf8", b"ut\xe9"),
                 json.dumps(body_for(cert)).encode("utf-16")):
        with unchanged(env.store):
            post_raw(env, "/api/v1/certificates", data, expect=400)
    # The other side: the same body in UTF-8, non-ASCII included.
    body = dict(body_for(cert), address="utf8@example.com")
    data = json.dumps(body, ensure_ascii=False).replace("utf8@", "utf8\u00e9@").encode()
    r = post_raw(env, "/api/v1/preview", data, expect={200, 422})
    assert r.status == 200 or "utf8\u00e9@example.com" in r.error(), r
    post_raw(env, "/api/v1/preview", json.dumps(body).encode(), expect=200)


def test_wrong_content_type_415(env):
    cert = env.cert("ctype@example.com")
    data = json.dumps(body_for(cert)).encode()
    with unchanged(env.store):
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/jsonx",
                      "multipart/form-data; boundary=x", None):
            post_raw(env, "/api/v1/certificates", data, content_type=ctype, expect=415)
    post_raw(env, "/api/v1/preview", data, content_type="application/json; charset=utf-8",
             expect=200)
    post_raw(env, "/api/v1/certificates", data, content_type="application/json", expect=201)


def test_chunked_body_411(env):
    cert = env.cert("chunked@example.com")
    data = json.dumps(body_for(cert)).encode()
    admin = env.tokens["admin"]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + 100]), data[i:i + 100])
                       for i in range(0, len(data), 100)) + b"0\r\n\r\n"
    head = (f"POST /api/v1/certificates HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\n"
            f"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    body_file = env.dir / "chunked.json"
    body_file.write_bytes(data)
    with unchanged(env.store):
        r = raw_exchange(HOST, env.server.port, head + chunked)
        assert r is not None and r.status == 411, r
        check_common_headers(r, "/api/v1/certificates")
        out = run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                   "-H", "Transfer-Encoding: chunked", "-H", "Content-Type: application/json",
                   "-H", f"Authorization: Bearer {admin}", "--data-binary", f"@{body_file}",
                   f"http://{HOST}:{env.server.port}/api/v1/certificates"], check=False).stdout
        assert out == "411", out
    # The same body with a Content-Length, from curl.
    out = run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
               "-H", "Content-Type: application/json", "-H", f"Authorization: Bearer {admin}",
               "--data-binary", f"@{body_file}",
               f"http://{HOST}:{env.server.port}/api/v1/certificates"], check=False).stdout
    assert out == "201", out
    assert ("chunked@example.com", hashlib.sha256(cert.der).hexdigest()) in ctl_certs(env.store)


def test_post_without_content_length_411(env):
    """A POST with neither Content-Length nor Transfer-Encoding (HTTP/1.1 and 1.0)."""
    admin = env.tokens["admin"]
    data = json.dumps(body_for(env.cert("nolength@example.com"))).encode()
    with unchanged(env.store):
        for version in ("1.1", "1.0"):
            head = (f"POST /api/v1/certificates HTTP/{version}\r\nHost: x\r\n"
                    f"Authorization: Bearer {admin}\r\nContent-Type: application/json\r\n"
                    f"Connection: close\r\n\r\n").encode()
            r = raw_exchange(HOST, env.server.port, head + (data if version == "1.0" else b""),
                             timeout=5)
            assert r is not None and r.status == 411, (version, r)
            check_common_headers(r, "/api/v1/certificates")


def test_duplicate_keys_never_widen_a_scope(env):
    """{"address": mine, "address": another's}: refused, or acted on for the token's own
    mailbox only; never stored for the other mailbox."""
    mine = env.cert("alice@example.com")
    pem = json.dumps(pem_text(mine))
    for first, second in (("alice@example.com", "bob@example.com"),
                          ("bob@example.com", "alice@example.com")):
        data = (f'{{"address": "{first}", "certificate": {pem}, "address": "{second}", '
                f'"force": true}}').encode()
        r = env.api.call("POST", "/api/v1/certificates", raw=data, token=env.tokens["alice"],
                         expect={201, 400, 403, 422})
        if r.status == 201:
            assert r.json()["address"].lower() == "alice@example.com", r
        assert not [a for a, _ in ctl_certs(env.store) if a.lower() == "bob@example.com"]


@pytest.mark.parametrize("address", [
    "nul\u0000@example.com", "x" * 200000 + "@example.com", "@example.com", "alice@",
    "no-at-sign", "a@b@example.com", "line\nbreak@example.com", "alice@example.com\r\nX: y",
    "alice@exa mple.com", "\u202ealice@example.com",
], ids=["nul", "huge", "no-local-part", "no-domain", "no-at", "two-ats", "newline", "crlf",
        "space-in-domain", "bidi"])
def test_strange_addresses_refused(env, address):
    with unchanged(env.store):
        r = env.api.post("/api/v1/certificates",
                         body_for(env.cert("alice@example.com"), address=address),
                         token=env.tokens["admin"], expect={400, 403, 404, 422})
    assert r.header("X") is None, r  # no header injected by the CR LF
    assert env.server.alive()


@pytest.mark.parametrize("query", ["?zone=", "?address=", "?address=%ZZ", "?zone=%00",
                                   "?address=%00", "?zone=example.com%00.evil",
                                   "?zone=example.com&zone=other.example"])
def test_bad_queries(env, query):
    """A filter that is empty, badly encoded or holds a NUL is a bad query (400), or finds
    nothing; a value cut at its NUL must never turn into another filter, or into none."""
    env.publish(env.cert("query@example.com"))  # something for a wrong filter to find
    everything = env.api.get("/api/v1/certificates", token=env.tokens["admin"],
                             expect=200).json()
    r = env.api.get("/api/v1/certificates" + query, token=env.tokens["admin"],
                    expect={200, 400, 404})
    if r.status == 200:
        got = r.json()
        if query in ("?zone=", "?address="):
            assert got in ([], everything), r  # an empty filter: nothing, or no filter
        elif query.startswith("?zone=example.com&"):
            assert {c["zone"] for c in got} <= {"example.com", "other.example"}, r
        else:
            assert got == [], f"{query} was read as another filter: {len(got)} certificates"


@pytest.mark.parametrize("query", ["?address=", "?address=%00", "?address=x2@example.com%00",
                                   "?address=%ZZ"])
def test_delete_with_a_bad_address_filter_removes_nothing(env, query):
    """DELETE ...?address=A narrows the removal to A's mailbox: an empty, NUL-cut or badly
    encoded A must not widen it to every mailbox."""
    both = env.cert("x1@example.com", extra_san=["email:x2@example.com"])
    sha = hashlib.sha256(both.der).hexdigest()
    env.publish(both, "x1@example.com")
    env.publish(both, "x2@example.com")
    with unchanged(env.store):
        env.api.delete(f"/api/v1/certificates/{sha}{query}", token=env.tokens["admin"],
                       expect={400, 404})
    env.api.delete(f"/api/v1/certificates/{sha}", token=env.tokens["admin"], expect=204)


def test_huge_headers_and_garbage_requests(env):
    """Oversized request lines and headers, binary garbage, a lone header line: never a 2xx,
    the daemon lives on and answers the next client, the store is unchanged."""
    admin = env.tokens["admin"]
    cases = [
        b"GET /api/v1/zones?" + b"a" * 200000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /api/v1/zones HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 200000 + b"\r\n\r\n",
        b"GET /api/v1/zones HTTP/1.1\r\nHost: x\r\n" + b"X-Many: c\r\n" * 20000 + b"\r\n",
        bytes(range(256)) * 64,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 500,  # a TLS ClientHello
        b"GET /api/v1/zones HTTP/9.9\r\nHost: x\r\n\r\n",
        b"POST /api/v1/certificates HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n"
        b"Authorization: Bearer " + admin.encode() + b"\r\nContent-Type: application/json\r\n\r\n",
        b"POST /api/v1/certificates HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Content-Length: 500\r\nAuthorization: Bearer " + admin.encode() +
        b"\r\nContent-Type: application/json\r\n\r\n{}{}{",
    ]
    with unchanged(env.store):
        for data in cases:
            r = raw_exchange(HOST, env.server.port, data, timeout=2)
            assert r is None or r.status >= 400, (data[:60], r)
            assert env.server.alive(), env.server.logs()
            env.api.get("/api/v1/zones", token=admin, expect=200)


@pytest.mark.parametrize("data", [
    b"GET /api/v1/zones?" + b"a" * 200000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/v1/zones HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 200000 + b"\r\n\r\n",
    bytes(range(256)) * 64,
    b"GET /api/v1/zones HTTP/9.9\r\nHost: x\r\n\r\n",
], ids=["long-url", "big-header", "binary", "http-9.9"])
def test_protocol_errors_are_refused_and_the_connection_closed(env, data):
    """Requests HTTP itself refuses get an error status and a closed connection. libmicrohttpd
    0.9.75 answers them itself, before smimea-api sees a request: an HTML body without the
    headers of smimea-api's own answers (it has no hook for these), and for a negative
    Content-Length the same 400 twice (README, "Errors and status codes")."""
    s = socket.create_connection((HOST, env.server.port), timeout=3)
    received = b""
    try:
        with contextlib.suppress(OSError):
            s.sendall(data)
        with contextlib.suppress(OSError):
            while chunk := s.recv(65536):
                received += chunk
    finally:
        s.close()
    if not received:
        return  # closing without an answer is fine
    r = parse_raw_response(received)
    assert r is not None and r.status >= 400, received[:300]
    assert r.header("Connection").lower() == "close", received[:300]
    first = received[:received.index(b"\r\n\r\n") + 4 + int(r.header("Content-Length"))]
    assert received == first * received.count(b"HTTP/1."), f"different answers: {received[:400]!r}"
    assert env.server.alive(), env.server.logs()


TRICKLING, SILENT = 40, 10


@pytest.fixture(scope="module")
def slowloris(env, tmp_path_factory):
    """Slowloris against a daemon with idle-timeout: 2: forty clients (from ten addresses)
    trickle a header one byte a second, ten connect and stay silent, while a client from
    127.0.0.1 asks every 0.2 s on new connections and every ~1 s on one keep-alive connection.
    Returns what happened, for the tests below."""
    s = ApiServer(env.store, tmp_path_factory.mktemp("slow"),
                  api_config={"idle-timeout": 2, "rate-limit": 0}, extra_yaml=CONFIG_YAML)
    s.start()
    before = sqlite_dump(env.store.db)
    admin = env.tokens["admin"]
    cut_after = {}
    start = time.monotonic()
    limit = 7.0

    def slow(i, trickle):
        c = socket.socket()
        c.bind((f"127.0.1.{2 + i % 10}", 0))  # ten client addresses, five from each
        c.connect((HOST, s.port))
        c.settimeout(0.05)
        try:
            if trickle:
                c.sendall(b"GET /api/v1/zones HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            while time.monotonic() - start < limit:
                try:
                    if c.recv(4096) == b"":
                        break
                except socket.timeout:
                    pass
                except OSError:
                    break
                if trickle:
                    try:
                        c.send(b"a")
                    except OSError:
                        break
                time.sleep(0.95)
            else:
                return
            cut_after[i] = time.monotonic() - start
        finally:
            c.close()

    threads = [threading.Thread(target=slow, args=(i, i < TRICKLING))
               for i in range(TRICKLING + SILENT)]
    for th in threads:
        th.start()
    keepalive = http.client.HTTPConnection(HOST, s.port, timeout=5)
    latencies, statuses, kept = [], [], []
    try:
        while (any(th.is_alive() for th in threads) or time.monotonic() - start < 5.5) \
                and time.monotonic() - start < limit + 1:
            t0 = time.monotonic()
            try:
                r = http_request(s.target, "GET", "/api/v1/zones", token=admin, timeout=3)
                statuses.append(r.status)
            except OSError as e:
                statuses.append(repr(e))
            latencies.append(time.monotonic() - t0)
            if len(latencies) % 5 == 0:  # every ~1 s on the keep-alive connection
                try:
                    keepalive.request("GET", "/api/v1/zones",
                                      headers={"Authorization": "Bearer " + admin})
                    resp = keepalive.getresponse()
                    resp.read()
                    kept.append(resp.status)
                except (OSError, http.client.HTTPException) as e:
                    kept.append(repr(e))
            time.sleep(0.2)
    finally:
        keepalive.close()
        for th in threads:
            th.join()
    result = {"cut_after": cut_after, "latencies": latencies, "statuses": statuses,
              "kept": kept, "alive": s.alive(), "store_same": sqlite_dump(env.store.db) == before}
    s.stop()
    return result


def test_slow_clients_do_not_stop_the_others(slowloris):
    """Others are answered at once all along, on new connections and on a keep-alive one
    that pauses 1 s (under idle-timeout) between requests; silent connections are cut after
    idle-timeout, not before; the daemon lives on and the store is unchanged."""
    assert set(slowloris["statuses"]) == {200}, slowloris["statuses"]
    assert max(slowloris["latencies"]) < 1.0, slowloris["latencies"]
    assert len(slowloris["kept"]) >= 4 and set(slowloris["kept"]) == {200}, slowloris["kept"]
    silent = {i: slowloris["cut_after"].get(i) for i in range(TRICKLING, TRICKLING + SILENT)}
    assert all(v is not None for v in silent.values()), f"silent connections never cut: {silent}"
    assert all(1.5 < v < 2 + 3 for v in silent.values()), silent
    assert slowloris["alive"] and slowloris["store_same"]


def test_trickled_headers_cut_after_idle_timeout(slowloris):
    """A client sending its header one byte a second never completes it: it is cut after
    about idle-timeout (2 s) like a silent one ("also slow headers"), not kept forever."""
    cut = slowloris["cut_after"]
    never = sorted(set(range(TRICKLING)) - set(cut))
    assert not never, f"clients trickling a header 1 byte/s never cut within 7 s: {never}"
    assert all(1.5 < cut[i] < 2 + 3 for i in range(TRICKLING)), cut


def test_connection_limits(env, daemon):
    """max-connections-per-address and max-connections refuse the extra connections; others
    are served; once connections close, new ones are served again."""
    s = daemon("conns", **{"max-connections": 6, "max-connections-per-address": 4,
                           "idle-timeout": 10, "rate-limit": 0})
    before = sqlite_dump(env.store.db)
    admin = env.tokens["admin"]
    head = (f"GET /api/v1/zones HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\n"
            f"Connection: close\r\n\r\n").encode()

    def hold(source):
        c = socket.socket()
        c.bind((source, 0))
        c.connect((HOST, s.port))
        return c

    held = [hold("127.0.0.2") for _ in range(4)]
    time.sleep(0.3)
    r = raw_exchange(HOST, s.port, head, source="127.0.0.2", timeout=1.5)
    assert r is None or r.status in (429, 503), r
    r = raw_exchange(HOST, s.port, head, source="127.0.0.3", timeout=3)
    assert r is not None and r.status == 200, r
    held += [hold("127.0.0.3") for _ in range(2)]  # 6 in all: the limit
    time.sleep(0.3)
    r = raw_exchange(HOST, s.port, head, source="127.0.0.4", timeout=1.5)
    assert r is None or r.status in (429, 503), r
    for c in held:
        c.close()
    deadline = time.monotonic() + 3
    while True:
        r = raw_exchange(HOST, s.port, head, source="127.0.0.2", timeout=3)
        if (r is not None and r.status == 200) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r is not None and r.status == 200, r
    assert sqlite_dump(env.store.db) == before


def test_thousand_connections_at_once(env, daemon):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 8192) if hard != resource.RLIM_INFINITY else 8192
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    s = daemon("many", **{"max-connections": 2000, "max-connections-per-address": 0,
                          "rate-limit": 0})
    before = sqlite_dump(env.store.db)
    admin = env.tokens["admin"]
    request = (f"GET /api/v1/zones HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\n"
               f"Connection: close\r\n\r\n").encode()
    statuses = many_connections(HOST, s.port, request, 1000, timeout=30)
    counts = {}
    for v in statuses.values():
        counts[v] = counts.get(v, 0) + 1
    assert s.alive(), s.logs()
    assert counts.get(200, 0) == 1000, counts
    r = http_request(s.target, "GET", "/api/v1/zones", token=admin)
    assert r.status == 200
    deadline = time.monotonic() + 5
    while metric_sum(metrics(s.target), "smimea_api_connections") > 2 and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    assert metric_sum(metrics(s.target), "smimea_api_connections") <= 2
    assert sqlite_dump(env.store.db) == before


# --------------------------------------------------------------------------------------------
# Rate limit, metrics, unix sockets


def test_rate_limit_429(env, daemon):
    # 2 a second, in bursts of 2: a token comes back every 500 ms, far slower than the burst
    # below even under a sanitizer (the burst skips the schema validation).
    s = daemon("rate", **{"rate-limit": 2})
    api = Api(s, env.openapi)
    admin, zone = env.tokens["admin"], env.tokens["zone"]
    body = body_for(env.cert("rate@example.com"))  # made before the burst, not during it
    statuses = []
    with unchanged(env.store):
        for _ in range(50):
            statuses.append(api.get("/api/v1/zones", token=admin, validate=False).status)
            if statuses[-1] == 429:
                break
        assert statuses[:2] == [200] * 2 and statuses[-1] == 429, statuses
        r = api.post("/api/v1/certificates", body, token=admin, expect=429, validate=False)
        retry = int(r.header("Retry-After"))
        assert 1 <= retry <= 5, r
        # Per token: another token is not limited by admin's burst.
        api.get("/api/v1/zones", token=zone, expect=200)
    time.sleep(retry)
    api.get("/api/v1/zones", token=admin, expect=200)
    assert metric_sum(metrics(s.target), "smimea_api_rate_limited_total") >= 2


def test_metrics(env, daemon):
    api, admin = env.api, env.tokens["admin"]
    before = metrics(env.server.target)
    for name in ("smimea_api_requests_total", "smimea_api_certificates_published_total",
                 "smimea_api_certificates_removed_total", "smimea_api_auth_failures_total",
                 "smimea_api_rate_limited_total", "smimea_api_connections",
                 "smimea_api_request_duration_seconds_bucket",
                 "smimea_api_request_duration_seconds_count"):
        assert any(k.partition("{")[0] == name for k in before), name
    cert = env.cert("metrics@example.com")
    sha = env.publish(cert)["sha256"]
    api.get("/api/v1/zones", token="smimea_" + "Z" * 43, expect=401)
    api.delete(f"/api/v1/certificates/{sha}", token=admin, expect=204)
    after = metrics(env.server.target)
    for name, delta in (("smimea_api_certificates_published_total", 1),
                        ("smimea_api_certificates_removed_total", 1),
                        ("smimea_api_auth_failures_total", 1)):
        assert metric_sum(after, name) - metric_sum(before, name) == delta, name
    assert metric_sum(after, "smimea_api_requests_total", code="401") > \
        metric_sum(before, "smimea_api_requests_total", code="401")
    assert metric_sum(after, "smimea_api_requests_total", code="201") > \
        metric_sum(before, "smimea_api_requests_total", code="201")
    assert any('le="+Inf"' in k for k in after
               if k.startswith("smimea_api_request_duration_seconds_bucket"))
    # Labels name endpoints, never paths: unknown paths, zone names and fingerprints from
    # clients do not make new series.
    for i in range(5):
        http_request(env.server.target, "GET", f"/no/such/path-{i}-label", token=admin)
        http_request(env.server.target, "DELETE", f"/api/v1/certificates/{i:064x}", token=admin)
        http_request(env.server.target, "DELETE", f"/api/v1/zones/z{i}-label.example",
                     token=admin)
    labels = " ".join(metrics(env.server.target))
    assert "-label" not in labels and f"{1:064x}" not in labels, labels[:2000]
    # Outside metrics-from: 403, token or not.
    s = daemon("nometrics", **{"metrics-from": ["10.0.0.0/8"]})
    Api(s, env.openapi).get("/metrics", expect=403)
    Api(s, env.openapi).get("/metrics", token=admin, expect=403)


def test_listen_option_replaces_the_config(env, tmp_path):
    """--listen replaces api.listen from the config; without it, the config's address."""
    from smimea_test import free_port
    configured, given = free_port(), free_port()
    s = ApiServer(env.store, tmp_path / "a", api_config={"listen": [f"127.0.0.1:{configured}"]},
                  listen=[f"127.0.0.1:{given}"], extra_yaml=CONFIG_YAML)
    s.port = given
    with s:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((HOST, configured), timeout=2).close()
    s = ApiServer(env.store, tmp_path / "b", api_config={"listen": [f"127.0.0.1:{configured}"]},
                  listen=[], extra_yaml=CONFIG_YAML)
    s.port = configured
    with s:
        assert s.alive()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((HOST, given), timeout=2).close()


def test_ipv6_loopback_and_token_networks(env, tmp_path):
    """[::1]:PORT: metrics-from's default takes ::1/128; a token from 127.0.0.0/8 is refused
    over IPv6, one from ::1/128 accepted (and refused over IPv4)."""
    from smimea_test import free_port
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError as e:
        pytest.skip(f"this machine has no IPv6 loopback: {e}")
    v6 = add_token(env.store, "v6", "--admin", "--network", "::1/128")
    port6, port4 = free_port(), free_port()
    s = ApiServer(env.store, tmp_path, listen=[f"[::1]:{port6}", f"127.0.0.1:{port4}"],
                  extra_yaml=CONFIG_YAML)
    s.port = port4
    with s:
        def get6(path, token=None):
            conn = http.client.HTTPConnection("::1", port6, timeout=10)
            try:
                conn.request("GET", path, headers={"Authorization": "Bearer " + token}
                             if token else {})
                r = conn.getresponse()
                return r.status, r.read()
            finally:
                conn.close()

        assert get6("/metrics")[0] == 200
        assert get6("/api/v1/zones", v6)[0] == 200
        assert get6("/api/v1/zones", env.tokens["net127"])[0] == 401
        assert get6("/api/v1/zones", env.tokens["admin"])[0] == 200
        assert http_request((HOST, port4), "GET", "/api/v1/zones", token=v6).status == 401
    log = s.log.read_text()
    assert re.search(r"token=v6 peer=::1\b", log), s.logs()
    assert v6 not in log


def test_store_busy(env):
    """While another process holds the store's write lock: reads go on (WAL), a write either
    waits for the lock or is refused with 503 and the store's words, and changes nothing."""
    cert = env.cert("busy@example.com")
    hold = 6.5
    locked = threading.Event()
    done = threading.Event()

    def locker():
        db = sqlite3.connect(env.store.db, timeout=10, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        locked.set()
        done.wait(hold)
        db.execute("ROLLBACK")
        db.close()

    before = sqlite_dump(env.store.db)
    th = threading.Thread(target=locker)
    th.start()
    try:
        assert locked.wait(10)
        start = time.monotonic()
        env.api.get("/api/v1/zones", token=env.tokens["admin"], expect=200)
        assert time.monotonic() - start < 1
        r = env.api.post("/api/v1/certificates", body_for(cert), token=env.tokens["admin"],
                         expect={201, 503})
        took = time.monotonic() - start
    finally:
        done.set()
        th.join()
    if r.status == 503:
        assert took < hold, "a 503 after the lock was gone"
        assert r.error(), r
        assert sqlite_dump(env.store.db) == before
    else:
        assert took >= hold - 0.5, "published while the store was locked"
        assert ("busy@example.com", hashlib.sha256(cert.der).hexdigest()) in ctl_certs(env.store)
    print(f"\nwrite under a held lock: {r.status} after {took:.1f} s: {r.error()}")


def test_unix_socket_listener(env, tmp_path):
    """--listen unix:PATH (twice, with a TCP listener beside): the socket's mode from
    socket-mode, and a unix client counted as 127.0.0.1 for networks and metrics-from."""
    from smimea_test import free_port
    path = tmp_path / "api.sock"
    port = free_port()
    s = ApiServer(env.store, tmp_path, api_config={"socket-mode": "0600"},
                  listen=[f"unix:{path}", f"127.0.0.1:{port}"], extra_yaml=CONFIG_YAML)
    s.start()
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        api = Api(s, env.openapi)
        api.get("/api/v1/zones", token=env.tokens["admin"], expect=200)
        api.get("/api/v1/zones", token=env.tokens["net127"], expect=200)
        api.get("/api/v1/zones", token=env.tokens["net10"], expect=401)
        assert http_request(f"unix:{path}", "GET", "/metrics").status == 200
        assert http_request((HOST, port), "GET", "/api/v1/zones",
                            token=env.tokens["admin"]).status == 200
    finally:
        assert s.stop() == 0
    path2 = tmp_path / "api2.sock"
    s = ApiServer(env.store, tmp_path / "b", api_config={"socket-mode": "0660"},
                  listen=[f"unix:{path2}"], extra_yaml=CONFIG_YAML)
    with s:
        assert stat.S_IMODE(os.stat(path2).st_mode) == 0o660


# --------------------------------------------------------------------------------------------
# pdns serves what the API publishes


def answer_set(server, name):
    r = server.query(name, SMIMEA, timeout=1)
    return r.rcode(), {(rr.usage, rr.selector, rr.mtype, bytes(rr.cert))
                       for rrset in r.answer if rrset.rdtype == SMIMEA for rr in rrset}


def wait_for_answer(server, name, expected, limit=1.0):
    """Seconds until pdns answers name with exactly expected (a set of rdata tuples)."""
    start = time.monotonic()
    got = None
    while time.monotonic() - start < limit:
        got = answer_set(server, name)
        if got[1] == expected:
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError(server.explain(f"{name}: not {expected} within {limit} s; last {got}"))


def test_pdns_serves_published_within_a_second(env, connector_name, tmp_path):
    cert = env.cert(f"dns-{connector_name}@example.com")
    (tmp_path / "backend").mkdir()
    connector = CONNECTORS[connector_name](env.store, tmp_path / "backend")
    with PdnsServer(connector, tmp_path / "pdns") as server:
        assert answer_set(server, cert.owner)[1] == set()
        r = env.publish(cert, records=["3 0 0", "3 1 1"])
        want = {(u, s, m, cert.data(s, m)) for (u, s, m) in ((3, 0, 0), (3, 1, 1))}
        wait_for_answer(server, cert.owner, want)
        # kdig too, with its own parser: the full DER of the certificate.
        out = run(["kdig", f"@{HOST}", "-p", str(server.port), cert.owner, "SMIMEA",
                   "+short"]).stdout
        rdatas = {"".join(line.split()[3:]).lower() for line in out.splitlines() if line}
        assert cert.der.hex() in rdatas and hashlib.sha256(cert.spki).hexdigest() in rdatas, out
        env.api.delete(f"/api/v1/certificates/{r['sha256']}", token=env.tokens["admin"],
                       expect=204)
        wait_for_answer(server, cert.owner, set())
        rcode, _ = answer_set(server, cert.owner)
        assert rcode == dns.rcode.NXDOMAIN
        # A zone added through the API, a bulk publish into it: served within a second too
        # (once pdns has rediscovered its zones, as for `smimea-ctl zone add`).
        zone = f"dns-{connector_name}.example"
        env.api.post("/api/v1/zones", {"name": zone}, token=env.tokens["admin"], expect=201)
        server.control("rediscover")  # pdns learns of a new zone so (README)
        new = [env.cert(f"bulk{i}@{zone}") for i in range(3)]
        r = env.api.post("/api/v1/certificates/bulk",
                         {"certificates": [body_for(c, records=["3 1 1"]) for c in new]},
                         token=env.tokens["admin"], expect=200).json()
        assert r["published"] == 3, r
        for c in new:
            wait_for_answer(server, c.owner, {(3, 1, 1, hashlib.sha256(c.spki).digest())})
        soa = server.query(zone, dns.rdatatype.SOA)
        assert soa.rcode() == dns.rcode.NOERROR and soa.answer, server.explain("SOA", soa)


# --------------------------------------------------------------------------------------------
# Concurrency


def test_concurrent_clients_import_and_dnsperf(tmp_path, openapi):
    """Four API clients publish and delete while `smimea-ctl cert import` runs and pdns
    answers dnsperf: every acknowledged change is in the store at the end, and dnsperf sees
    no SERVFAIL."""
    from test_ctl import bulk_certs
    (tmp_path / "s").mkdir()
    store = Store(tmp_path / "s", extra_config=CONFIG_YAML)
    store.ctl("zone", "add", "conc.example")
    nthreads, per_thread, nimport = 4, 25, 300
    tokens = [add_token(store, f"w{t}", "--zone", "conc.example") for t in range(nthreads)]
    api_dir = tmp_path / "api"
    server = ApiServer(store, api_dir, api_config={"rate-limit": 0},
                       extra_yaml=CONFIG_YAML).start()
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    certs = []
    der_of = {}  # address -> DER, by python3-cryptography
    for t in range(nthreads):
        bulk_certs(tmp_path / f"t{t}", per_thread, "conc.example", prefix=f"t{t}u")
        certs.append([])
        for f in sorted((tmp_path / f"t{t}").iterdir()):
            pem = f.read_bytes()
            der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
            address = x509.load_pem_x509_certificate(pem).extensions.get_extension_for_class(
                x509.SubjectAlternativeName).value.get_values_for_type(x509.RFC822Name)[0]
            certs[t].append((address, pem.decode(), hashlib.sha256(der).hexdigest()))
            der_of[address] = der
    bulk_certs(tmp_path / "import", nimport, "conc.example", prefix="imp")
    queries = tmp_path / "queries"
    names = [owner_name(a) for t in certs for a, _, _ in t] + \
        [owner_name(f"imp{i}@conc.example") for i in range(nimport)]
    queries.write_text("".join(f"{n} SMIMEA\n" for n in names))

    expected = [{} for _ in range(nthreads)]  # address -> sha256 or None
    done = [0] * nthreads
    busy = [0]
    problems = []
    duration = 5.0

    def worker(t):
        rnd = random.Random(t)
        start = time.monotonic()
        try:
            while time.monotonic() - start < duration:
                address, pem, sha = rnd.choice(certs[t])
                if expected[t].get(address) and rnd.random() < 0.5:
                    r = http_request(server.target, "DELETE", f"/api/v1/certificates/{sha}",
                                     token=tokens[t])
                    if r.status == 204:
                        expected[t][address] = None
                        done[t] += 1
                    elif r.status == 503:
                        busy[0] += 1
                    else:
                        problems.append(f"DELETE {address}: {r}")
                else:
                    r = http_request(server.target, "POST", "/api/v1/certificates",
                                     token=tokens[t], body={"address": address,
                                                            "certificate": pem})
                    if r.status == 201:
                        expected[t][address] = sha
                        done[t] += 1
                    elif r.status == 503:
                        busy[0] += 1
                    else:
                        problems.append(f"POST {address}: {r}")
        except Exception as e:  # noqa: BLE001 - reported below
            problems.append(f"thread {t}: {e!r}")

    (tmp_path / "backend").mkdir()
    connector = CONNECTORS["unix"](store, tmp_path / "backend")
    try:
        with PdnsServer(connector, tmp_path / "pdns") as pdns:
            perf = subprocess.Popen(["dnsperf", "-s", HOST, "-p", str(pdns.port), "-d",
                                     str(queries), "-l", str(duration), "-Q", "400", "-t", "2"],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            imp = subprocess.Popen([str(CTL), "--config", str(store.config), "cert", "import",
                                    str(tmp_path / "import")], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
            threads = [threading.Thread(target=worker, args=(t,)) for t in range(nthreads)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            imp_out, imp_err = imp.communicate(timeout=60)
            perf_out, _ = perf.communicate(timeout=60)
            # What pdns answers now, mailbox by mailbox: the last acknowledged state.
            wrong = []
            for t in range(nthreads):
                for address, _, _ in certs[t]:
                    want = {(3, 0, 0, der_of[address])} if expected[t].get(address) else set()
                    got = answer_set(pdns, owner_name(address))[1]
                    if got != want:
                        wrong.append(f"{address}: {len(got)} records, expected {len(want)}")
            assert not wrong, wrong[:10]
    finally:
        assert server.stop() == 0, server.logs()
    assert not problems, problems[:10]
    assert imp.returncode == 0, imp_err
    stored = ctl_certs(store, "--zone", "conc.example")
    for t in range(nthreads):
        for address, sha in expected[t].items():
            if sha:
                assert (address, sha) in stored, f"acknowledged {address} missing"
            else:
                assert not [s for a, s in stored if a == address], f"deleted {address} stays"
    for i in range(nimport):
        assert any(a == f"imp{i}@conc.example" for a, _ in stored), f"imp{i} missing"
    acknowledged = sum(1 for e in expected for v in e.values() if v is not None)
    assert acknowledged > 0
    print(f"\nconcurrency: {sum(done)} API changes acknowledged ({busy[0]} 503), "
          f"{acknowledged} mailboxes published at the end, {nimport} imported")
    codes = re.search(r"Response codes:\s*(.*)", perf_out)
    assert codes, perf_out
    assert "SERVFAIL" not in codes.group(1), perf_out
    sent = int(re.search(r"Queries sent:\s+(\d+)", perf_out).group(1))
    completed = int(re.search(r"Queries completed:\s+(\d+)", perf_out).group(1))
    assert sent > 100 and completed >= sent * 0.99, perf_out
    log = server.log.read_text()
    for secret in tokens:
        assert secret not in log


# --------------------------------------------------------------------------------------------
# Secrets (last: after every request above)


def test_secrets_absent_from_store_and_log(env):
    """No token's secret (nor its part after "smimea_") in the store, its WAL, or the
    daemon's log, after every test above and after each token was used here once more, in
    good and refused requests."""
    for secret in env.tokens.values():
        http_request(env.server.target, "GET", "/api/v1/zones", token=secret)
        http_request(env.server.target, "POST", "/api/v1/preview", token=secret,
                     body=body_for(env.cert("secret@example.com")))
        http_request(env.server.target, "GET", "/api/v1/zones", token=secret[:-1])
        http_request(env.server.target, "GET", "/api/v1/zones",
                     headers={"Authorization": "Basic " + secret})
    time.sleep(0.2)
    files = [env.store.db] + [pathlib.Path(str(env.store.db) + s) for s in ("-wal", "-shm")]
    blobs = {f: f.read_bytes() for f in files if f.exists()}
    assert env.store.db in blobs
    log = env.server.log.read_bytes()
    assert log, "the daemon logged nothing"
    for name, secret in env.tokens.items():
        for f, data in blobs.items():
            assert secret.encode() not in data, f"{name}'s secret in {f}"
            assert secret[7:].encode() not in data, f"{name}'s secret in {f}"
        assert secret.encode() not in log, f"{name}'s secret in the log"
        assert secret[7:].encode() not in log
    # The store keeps SHA2-256 of each secret.
    with sqlite3.connect(env.store.db, timeout=10) as db:
        hashes = {bytes(h) for (h,) in db.execute("SELECT secret_sha256 FROM tokens")}
    db.close()
    assert hashlib.sha256(env.tokens["admin"].encode()).digest() in hashes

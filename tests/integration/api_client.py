"""Helpers for test_api.py: smimea-api started as a user starts it, HTTP clients built on the
standard library only (http.client and plain sockets), tokens made with smimea-ctl, and the
schemas of the OpenAPI document (backend/src/api/openapi.json) checked with jsonschema.

Nothing here uses our own code to compute an expected value: the daemon is a black box on
the other side of a socket.
"""
import http.client
import json
import os
import pathlib
import re
import selectors
import signal
import socket
import subprocess
import time

from smimea_test import INSTALLED, ROOT, free_port, run

if INSTALLED:
    API = pathlib.Path("/usr/bin/smimea-api")
else:
    API = pathlib.Path(os.environ.get("SMIMEA_BUILD_DIR", ROOT / "build")).resolve() / "smimea-api"
OPENAPI_FILE = ROOT / "backend" / "src" / "api" / "openapi.json"
HOST = "127.0.0.1"


def tail(path, limit=4000):
    try:
        text = pathlib.Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return text if len(text) <= limit else "..." + text[-limit:]


def add_token(store, name, *args):
    """`smimea-ctl token add NAME ARGS...`; returns the secret (alone on the last line)."""
    out = store.ctl("token", "add", name, *args).stdout
    secret = out.strip().splitlines()[-1].strip()
    assert re.fullmatch(r"smimea_[A-Za-z0-9_-]{43}", secret), out
    return secret


def yaml_scalar(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value))
    return str(value)  # ints, and strings written verbatim (e.g. socket-mode: 0600)


# --------------------------------------------------------------------------------------------
# Responses


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value)
        self.body = body

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def error(self):
        try:
            return self.json().get("error", "")
        except (ValueError, AttributeError):
            return ""

    def __repr__(self):
        text = self.body[:600].decode(errors="replace")
        return f"<HTTP {self.status} {self.reason} {self.headers} {text!r}>"


def parse_raw_response(data):
    """Parses one HTTP/1.x response from bytes (None if there is no complete head)."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3}) ?(.*)", lines[0])
    if not m:
        raise AssertionError(f"not an HTTP response: {data[:200]!r}")
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.append((k.strip(), v.strip()))
    r = Response(int(m.group(1)), m.group(2), headers, rest)
    length = r.header("Content-Length")
    if length is not None:
        r.body = rest[:int(length)]
    return r


def raw_exchange(host, port, head, body=b"", *, timeout=10, source=None, family=socket.AF_INET):
    """Sends head, then body in pieces while watching for an early answer (a server may
    answer 411/413 before reading a body); returns the Response, or None if the connection
    was closed or reset with no answer. host is a unix path when family is AF_UNIX."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        if source:
            s.bind((source, 0))
        s.connect(host if family == socket.AF_UNIX else (host, port))
        received = b""
        try:
            s.sendall(head)
            sent = 0
            while sent < len(body):
                s.settimeout(0.0)
                try:
                    chunk = s.recv(65536)
                    if chunk == b"":
                        break
                    received += chunk
                    break  # an early answer: stop sending
                except BlockingIOError:
                    pass
                finally:
                    s.settimeout(timeout)
                n = s.send(body[sent:sent + 65536])
                sent += n
        except (BrokenPipeError, ConnectionResetError):
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = parse_raw_response(received) if received else None
            if r is not None:
                length = r.header("Content-Length")
                if length is not None and len(r.body) >= int(length):
                    return r
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            received += chunk
        return parse_raw_response(received) if received else None
    finally:
        s.close()


def many_connections(host, port, request, n, *, timeout=30):
    """Opens n connections at once (non-blocking), sends request on each once connected and
    reads each answer until the server closes. Returns {index: status, or a short reason}."""
    sel = selectors.DefaultSelector()
    socks = []
    statuses = {}
    try:
        for i in range(n):
            c = socket.socket()
            c.setblocking(False)
            socks.append(c)
            c.connect_ex((host, port))
            sel.register(c, selectors.EVENT_WRITE, [i, b""])
        deadline = time.monotonic() + timeout
        while len(statuses) < n and time.monotonic() < deadline:
            for key, events in sel.select(timeout=1):
                c, data = key.fileobj, key.data
                if events & selectors.EVENT_WRITE:
                    error = c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if error:
                        statuses[data[0]] = f"connect: {os.strerror(error)}"
                        sel.unregister(c)
                        continue
                    c.sendall(request)
                    sel.modify(c, selectors.EVENT_READ, data)
                    continue
                try:
                    chunk = c.recv(65536)
                except OSError as e:
                    chunk = b""
                    data[1] += f"[{e}]".encode()
                if chunk:
                    data[1] += chunk
                    continue
                sel.unregister(c)
                try:
                    r = parse_raw_response(data[1])
                except AssertionError:
                    r = None
                statuses[data[0]] = r.status if r else repr(data[1][:60])
        for i in range(n):
            statuses.setdefault(i, "no answer in time")
        return statuses
    finally:
        for c in socks:
            c.close()
        sel.close()


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


_NO_BODY = object()


def http_request(target, method, path, *, token=None, body=_NO_BODY, raw=None,
                 content_type="application/json", headers=None, timeout=15):
    """One request on a new connection. target: (host, port) or "unix:PATH". body is sent as
    JSON; raw as bytes. Returns a Response."""
    if isinstance(target, str) and target.startswith("unix:"):
        conn = _UnixHTTPConnection(target[5:], timeout)
    else:
        conn = http.client.HTTPConnection(target[0], target[1], timeout=timeout)
    hdrs = {}
    data = None
    if body is not _NO_BODY:
        data = json.dumps(body).encode()
    elif raw is not None:
        data = raw
    if data is not None and content_type is not None:
        hdrs["Content-Type"] = content_type
    if token is not None:
        hdrs["Authorization"] = "Bearer " + token
    hdrs.update(headers or {})
    try:
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        return Response(r.status, r.reason, r.getheaders(), r.read())
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# The daemon


class ApiServer:
    """smimea-api with a config file of its own: the store's `database:` (and extra top-level
    YAML) plus an `api:` section from api_config. Listens on 127.0.0.1:free_port() unless
    listen names other --listen values (an empty list: no --listen, the config's api.listen;
    the caller sets port then). stderr (the request log) goes to log."""

    def __init__(self, store, directory, *, api_config=None, listen=None, extra_yaml="",
                 name="api", env=None):
        self.store = store
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.config = self.dir / f"{name}.yaml"
        self.log = self.dir / f"{name}.stderr"
        self.out = self.dir / f"{name}.stdout"
        self.api_config = dict(api_config or {})
        self.extra_yaml = extra_yaml
        self.listen = listen
        self.env = env
        self.port = None
        self.proc = None
        self.write_config()

    def write_config(self):
        text = f"database: {self.store.db}\n" + self.extra_yaml
        if self.api_config:
            text += "api:\n" + "".join(f"  {k}: {yaml_scalar(v)}\n"
                                       for k, v in self.api_config.items())
        self.config.write_text(text)

    def command(self):
        cmd = [str(API), "--config", str(self.config)]
        if self.listen is None:
            cmd += ["--listen", f"{HOST}:{self.port}"]
        else:
            for value in self.listen:
                cmd += ["--listen", value]
        return cmd

    @property
    def target(self):
        if self.listen and self.listen[0].startswith("unix:"):
            return self.listen[0]
        return (HOST, self.port)

    def start(self, timeout=10, attempts=3):
        for _ in range(attempts):
            if self.listen is None:
                self.port = free_port()
            start = self.log.stat().st_size if self.log.exists() else 0
            with open(self.log, "ab") as err, open(self.out, "ab") as out:
                self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                             stdout=out, stderr=err, env=self.env)
            try:
                self.wait_ready(timeout)
                return self
            except AssertionError:
                self.stop()
                new = self.log.read_bytes()[start:].decode(errors="replace").lower()
                if self.listen is None and ("in use" in new or "bind" in new):
                    continue
                raise
        raise AssertionError("smimea-api: no free port after several attempts")

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"smimea-api exited with {self.proc.returncode} before "
                                     f"answering\n{self.logs()}")
            try:
                http_request(self.target, "GET", "/api/v1/openapi.json", timeout=1)
                return
            except (OSError, http.client.HTTPException):
                time.sleep(0.05)
        raise AssertionError(f"smimea-api did not answer within {timeout} s\n{self.logs()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Stops it with sig; returns its exit code (None if it was not running)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"smimea-api ignored signal {sig} for {timeout} s")
        return self.proc.returncode

    def logs(self):
        return f"smimea-api stderr ({self.log}):\n{tail(self.log, 1500)}"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# --------------------------------------------------------------------------------------------
# The OpenAPI document


class OpenApi:
    """The OpenAPI 3.1 document: its operations, and the JSON schema of each response."""

    METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

    def __init__(self, doc):
        import jsonschema
        self.doc = doc
        self._jsonschema = jsonschema
        self.resolver = jsonschema.RefResolver.from_schema(doc)
        prefix = ""
        servers = doc.get("servers") or []
        if servers:
            m = re.match(r"(?:[a-z]+://[^/]+)?(/.*)?$", servers[0].get("url", ""))
            prefix = (m.group(1) or "").rstrip("/") if m else ""
        self.prefix = prefix
        self.templates = []  # (regex, template, full path)
        for template in doc.get("paths", {}):
            full = template if template.startswith("/api/") or template == "/metrics" \
                else prefix + template
            regex = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(full)) + "$"
            self.templates.append((re.compile(regex), template, full))
        # A literal path before a template that would also match it (/certificates/bulk
        # before /certificates/{sha256}).
        self.templates.sort(key=lambda entry: entry[1].count("{"))

    @classmethod
    def load(cls, path=OPENAPI_FILE):
        return cls(json.loads(pathlib.Path(path).read_text()))

    def deref(self, obj):
        seen = 0
        while isinstance(obj, dict) and "$ref" in obj:
            _, obj = self.resolver.resolve(obj["$ref"])
            seen += 1
            assert seen < 20, "a $ref loop"
        return obj

    def operations(self):
        """{(full path template, METHOD)} the document declares."""
        ops = set()
        for _, template, full in self.templates:
            for method in self.doc["paths"][template]:
                if method in self.METHODS:
                    ops.add((full, method.upper()))
        return ops

    def template_of(self, path):
        path = path.split("?", 1)[0]
        for regex, template, full in self.templates:
            if regex.match(path):
                return template, full
        return None, None

    def check_schemas(self):
        """Every schema under components is itself valid JSON Schema 2020-12."""
        validator = self._jsonschema.Draft202012Validator
        for name, schema in self.doc.get("components", {}).get("schemas", {}).items():
            validator.check_schema(schema)

    def response_schema(self, method, path, status):
        """(schema or None, description) for the response; AssertionError if the document
        does not describe that status for that operation."""
        template, _ = self.template_of(path)
        assert template is not None, f"{path} is not in the OpenAPI document"
        operation = self.deref(self.doc["paths"][template]).get(method.lower())
        assert operation is not None, f"{method} {template} is not in the OpenAPI document"
        responses = operation.get("responses", {})
        response = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") \
            or responses.get("default")
        assert response is not None, \
            f"{method} {template}: status {status} is not documented ({sorted(responses)})"
        response = self.deref(response)
        content = response.get("content") or {}
        for media, value in content.items():
            if media.split(";")[0].strip() == "application/json":
                return self.deref(value).get("schema"), media
        return None, next(iter(content), None)

    def validate(self, method, path, response):
        """Validates response (a Response) against the document's schema of its status."""
        schema, media = self.response_schema(method, path, response.status)
        if schema is None:
            if media is None:
                assert response.body == b"", \
                    f"{method} {path} {response.status}: documented without a body, got {response}"
            return
        validator = self._jsonschema.Draft202012Validator(
            schema, resolver=self.resolver, format_checker=self._jsonschema.FormatChecker())
        errors = sorted(validator.iter_errors(response.json()), key=lambda e: list(e.path))
        assert not errors, (f"{method} {path} {response.status}: the response does not match "
                            f"the OpenAPI schema:\n" +
                            "\n".join(f"  at {list(e.path)}: {e.message}" for e in errors[:10]) +
                            f"\nresponse: {response.body[:2000]!r}")


def sqlite_dump(db):
    """The whole store as SQL text (sqlite3's CLI, reading the WAL too)."""
    return run(["sqlite3", "-bail", "-cmd", ".timeout 5000", str(db), ".dump"]).stdout

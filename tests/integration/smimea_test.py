"""Shared helpers for the integration tests: where the binaries are, running smimea-ctl,
making certificates with the openssl command line (an implementation independent of ours),
and a throwaway store.

The build directory comes from SMIMEA_BUILD_DIR (set by CTest), else ../../build. With
SMIMEA_INSTALLED=1 the tests run the installed packages instead: /usr/bin/smimea-ctl,
/usr/bin/smimea-backend and the native module in pdns's module directory.
"""
import datetime
import hashlib
import os
import pathlib
import random
import socket
import subprocess
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
INSTALLED = os.environ.get("SMIMEA_INSTALLED") == "1"
if INSTALLED:
    CTL = pathlib.Path("/usr/bin/smimea-ctl")
    BACKEND = pathlib.Path("/usr/bin/smimea-backend")
    _modules = sorted(pathlib.Path("/usr/lib").glob("*/pdns/libsmimeabackend.so"))
    NATIVE_MODULE = _modules[0] if _modules else pathlib.Path("/usr/lib/pdns/libsmimeabackend.so")
    # SMIMEA_PDNS_MODULE=OFF: pdns-backend-smimea was not built (scripts/test-package).
    _module_off = os.environ.get("SMIMEA_PDNS_MODULE", "").upper() in ("OFF", "0", "NO", "FALSE")
    for _installed in (CTL, BACKEND) + (() if _module_off else (NATIVE_MODULE,)):
        assert _installed.exists(), f"SMIMEA_INSTALLED=1 but {_installed} is not installed"
else:
    BUILD = pathlib.Path(os.environ.get("SMIMEA_BUILD_DIR", ROOT / "build")).resolve()
    CTL = BUILD / "smimea-ctl"
    BACKEND = BUILD / "smimea-backend"
    NATIVE_MODULE = BUILD / "libsmimeabackend.so"


def require(*programs):
    """Stops the collection of a test module, as an error, when a program it needs is missing:
    a module that skipped itself would pass without running a test. scripts/install-deps
    installs them all; SMIMEA_BUILD_DIR names the build."""
    import pytest
    for program in programs:
        if not os.access(program, os.X_OK):
            pytest.fail(f"{program} is missing: build the project (SMIMEA_BUILD_DIR names the "
                        "build directory) or run scripts/install-deps", pytrace=False)


def run(cmd, *, input=None, check=True, env=None, timeout=120):
    """Runs cmd, returns CompletedProcess with text stdout/stderr."""
    r = subprocess.run([str(c) for c in cmd], input=input, capture_output=True, env=env,
                       timeout=timeout, text=not isinstance(input, bytes))
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd} exited {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}")
    return r


def free_port():
    """A TCP and UDP port free on 127.0.0.1 right now, below the kernel's ephemeral range
    (ip_local_port_range, 32768-60999 by default): a port from that range may be taken by
    any process's next outgoing connection (pdns's NOTIFY and AXFR sockets, a client) between
    now and the moment a server binds it, which made Knot fail to start now and then."""
    while True:
        port = random.randrange(20000, 32768)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                    socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                u.bind(("127.0.0.1", port))
                t.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port


def make_cert(directory, email, *, key="ec", days=365, ca=False, name=None, san=True,
              subject_email=False, extra_san=None, not_before_days=None):
    """Makes a self-signed certificate for `email` with the openssl CLI.

    key: "ec" (P-256), "rsa" (2048) or "ed25519". Returns (cert_pem_path, key_path).
    `email` may be None for a certificate that names no address.
    """
    directory = pathlib.Path(directory)
    name = name or (email or "noaddr").replace("@", "_at_").replace('"', "").replace(" ", "_")
    keyfile = directory / f"{name}.key"
    certfile = directory / f"{name}.pem"
    if key == "ec":
        run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", keyfile])
    elif key == "rsa":
        run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
             "-out", keyfile])
    elif key == "ed25519":
        run(["openssl", "genpkey", "-algorithm", "ED25519", "-out", keyfile])
    else:
        raise ValueError(key)
    subj = "/CN=" + (email or "no address")
    if subject_email and email:
        subj += "/emailAddress=" + email
    cmd = ["openssl", "req", "-x509", "-new", "-key", keyfile, "-out", certfile, "-subj", subj,
           "-days", str(days), "-utf8"]
    exts = []
    sans = []
    if san and email:
        sans.append("email:" + email)
    if extra_san:
        sans.extend(extra_san)
    if sans:
        exts.append("subjectAltName=" + ",".join(sans))
    if ca:
        exts.append("basicConstraints=critical,CA:TRUE")
        exts.append("keyUsage=critical,keyCertSign,cRLSign")
    else:
        exts.append("basicConstraints=critical,CA:FALSE")
        exts.append("keyUsage=critical,digitalSignature,keyEncipherment")
        exts.append("extendedKeyUsage=emailProtection")
    for e in exts:
        cmd += ["-addext", e]
    if not_before_days is not None:
        # openssl req has no -not_before in 3.0; use x509 -days with a backdated signing
        raise NotImplementedError
    run(cmd)
    return certfile, keyfile


class Store:
    """A config file and an initialised store in a temporary directory."""

    def __init__(self, directory=None, extra_config=""):
        self._tmp = None
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="smimea-test-")
            directory = self._tmp.name
        self.dir = pathlib.Path(directory)
        self.db = self.dir / "store.db"
        self.config = self.dir / "smimea.yaml"
        self.config.write_text(f"database: {self.db}\n" + extra_config)
        self.ctl("init")

    def ctl(self, *args, check=True, input=None):
        return run([CTL, "--config", self.config, *args], check=check, input=input)

    def cleanup(self):
        if self._tmp:
            self._tmp.cleanup()


# --------------------------------------------------------------------------------------------
# Expected values, computed without our code


def owner_name(address):
    """RFC 8162 section 3: SHA2-256 of the local-part, first 28 octets in hex, + _smimecert."""
    local, domain = address.rsplit("@", 1)
    return hashlib.sha256(local.encode()).hexdigest()[:56] + "._smimecert." + domain + "."


def openssl(*args, input=None):
    r = subprocess.run(["openssl", *map(str, args)], input=input, capture_output=True,
                       timeout=60)
    assert r.returncode == 0, f"openssl {args}: {r.stderr.decode(errors='replace')}"
    return r.stdout


class Cert:
    """A certificate made with the openssl CLI, with its association data from openssl."""

    def __init__(self, directory, address, **kwargs):
        self.address = address
        self.pem, self.key = make_cert(directory, address, **kwargs)
        self.der = openssl("x509", "-in", self.pem, "-outform", "DER")
        pubkey_pem = openssl("x509", "-in", self.pem, "-pubkey", "-noout")
        self.spki = openssl("pkey", "-pubin", "-outform", "DER", input=pubkey_pem)
        self.owner = owner_name(address)

    def data(self, selector, matching_type):
        content = self.der if selector == 0 else self.spki
        if matching_type == 0:
            return content
        return (hashlib.sha256 if matching_type == 1 else hashlib.sha512)(content).digest()

    def rdatas(self, *params):
        """{(usage, selector, matching_type, data)} for the given (u, s, m) sets."""
        return {(u, s, m, self.data(s, m)) for (u, s, m) in params}


def self_signed_certificates(key, addresses):
    """A self-signed S/MIME certificate per address, all with one key (python3-cryptography
    objects), valid from yesterday for a year: subjectAltName email, not a CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    out = []
    for address in addresses:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)])
        out.append(x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=365))
                   .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(address)]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                  critical=True)
                   .sign(key, hashes.SHA256()))
    return out

"""Publishing from a signed mail, end to end: `smimea-ctl cert add ADDRESS message.eml`,
`cert import` of .eml files and smimea-api's publish body.

Every mail is made here with the openssl command line (`openssl cms -sign`, detached and
-nodetach, with a chain; `openssl cms -encrypt`), and openssl's own verdict on each is checked
beside ours: what `openssl cms -verify` refuses we refuse, and the certificate it names as the
signer is the one we publish. Expected records come from the openssl CLI and hashlib; after
every refusal the store is compared with a sqlite3 dump taken before it.

Run: SMIMEA_BUILD_DIR=build /usr/bin/python3 -m pytest -q tests/integration/test_signed_mail.py
"""
import hashlib
import json
import pathlib
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from api_client import API, ApiServer, add_token, sqlite_dump  # noqa: E402
from smimea_test import CTL, Cert, Store, openssl, owner_name, require, run  # noqa: E402

require(CTL, API, "/usr/bin/sqlite3", "/usr/bin/curl", "/usr/bin/jq")

CONFIG_YAML = "default-ttl: 900\nnameservers: [ns1.example.net.]\n"
BODY = "Content-Type: text/plain\r\n\r\nPlease publish my certificate.\r\n"


class Pki:
    """A CA, Alice's certificate issued by it, a second certificate of Alice's (another key,
    self-signed), Bob's and Erin's (self-signed), all made with the openssl CLI."""

    def __init__(self, d):
        self.dir = d
        self.ca_key, self.ca = d / "ca.key", d / "ca.pem"
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", self.ca_key, "-out", self.ca, "-subj", "/CN=Mail CA", "-days", "3650",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.alice_key, self.alice = d / "alice.key", d / "alice.pem"
        csr, ext = d / "alice.csr", d / "alice.ext"
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", self.alice_key, "-out", csr, "-subj", "/CN=Alice")
        ext.write_text("subjectAltName=email:alice@example.com\n"
                       "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=emailProtection\n")
        openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                "-CAcreateserial", "-out", self.alice, "-days", "3650", "-extfile", ext)
        self.alice2 = Cert(d, "alice@example.com", name="alice-encryption")
        self.bob = Cert(d, "bob@example.com", name="bob")
        self.erin = Cert(d, "Erin@cs.example", name="erin")
        self.body = d / "body.txt"
        self.body.write_bytes(BODY.encode())

    def sign(self, name, *, signer=None, key=None, sender="alice@example.com", detach=True,
             certfile=None):
        """A mail signed with `openssl cms -sign` (Alice's CA-issued certificate by default);
        sender None: no From."""
        out = self.dir / name
        cmd = ["cms", "-sign", "-in", self.body, "-signer", signer or self.alice,
               "-inkey", key or self.alice_key, "-to", "provider@example.net",
               "-subject", "My certificate", "-out", out]
        if sender is not None:
            cmd += ["-from", sender]
        if not detach:
            cmd.append("-nodetach")
        if certfile:  # one -certfile only (openssl keeps the last): the files concatenated
            extra = self.dir / (name + ".certs.pem")
            extra.write_text("".join(pathlib.Path(f).read_text() for f in certfile))
            cmd += ["-certfile", extra]
        openssl(*cmd)
        return out


def der(pem):
    return openssl("x509", "-in", pem, "-outform", "DER")


def openssl_verifies(mail):
    """openssl's verdict on the signature (the signer's issuer not checked, as ours)."""
    r = subprocess.run(["openssl", "cms", "-verify", "-noverify", "-in", str(mail),
                        "-out", "/dev/null"], capture_output=True, timeout=60)
    return r.returncode == 0


def openssl_signer_der(mail, directory):
    """The signer's certificate as openssl cms -verify finds it."""
    out = directory / (mail.name + ".signer.pem")
    openssl("cms", "-verify", "-noverify", "-in", mail, "-out", "/dev/null", "-signer", out)
    return der(out)


def exported(store, zone="example.com"):
    """{(owner, 'u s m', hex)} of `smimea-ctl export`."""
    out = set()
    for line in store.ctl("export", zone).stdout.splitlines():
        f = line.split()
        if len(f) >= 8 and f[3] == "SMIMEA":
            out.add((f[0].lower(), " ".join(f[4:7]), f[7].lower()))
    return out


def refused(store, *args, input=None):
    """smimea-ctl exits 1 with one line on stderr, the store byte for byte as it was."""
    before = sqlite_dump(store.db)
    r = store.ctl(*args, check=False, input=input)
    assert r.returncode == 1, (args, r.returncode, r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("smimea-ctl: "), r.stderr
    assert sqlite_dump(store.db) == before, f"{args} changed the store"
    return lines[0]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def store(tmp_path, pki):
    s = Store(tmp_path, extra_config=CONFIG_YAML)
    s.ctl("zone", "add", "example.com")
    s.ctl("zone", "add", "cs.example", "--case-sensitive")
    s.ctl("cert", "add", "bob@example.com", pki.bob.pem)  # something a refusal must keep
    return s


# --- accepted ------------------------------------------------------------------------------

@pytest.mark.parametrize("detach", [True, False], ids=["detached", "opaque"])
def test_signed_mail_publishes_the_signers_certificate(store, pki, tmp_path, detach):
    mail = pki.sign(f"ok-{detach}.eml", detach=detach)
    assert openssl_verifies(mail)
    r = store.ctl("--json", "cert", "add", "alice@example.com", mail)
    added = json.loads(r.stdout)["added"]
    want = openssl_signer_der(mail, tmp_path)
    assert want == der(pki.alice)
    assert [a["fingerprint"] for a in added] == [hashlib.sha256(want).hexdigest()]
    owner = owner_name("alice@example.com").lower()
    assert (owner, "3 0 0", want.hex()) in exported(store)


def test_signed_mail_chain_gives_the_ca_records(store, pki):
    # The CA's certificate and Alice's second one (as Outlook sends an encryption
    # certificate beside the signing one) come before the signer's in the bag.
    mail = pki.sign("chain.eml", certfile=[pki.ca, pki.alice2.pem])
    store.ctl("cert", "add", "alice@example.com", mail, "--record", "3 0 0", "--record", "2 0 1",
              "--record", "0 1 1")
    owner = owner_name("alice@example.com").lower()
    ca_der = der(pki.ca)
    ca_spki = openssl("pkey", "-pubin", "-outform", "DER",
                      input=openssl("x509", "-in", pki.ca, "-pubkey", "-noout"))
    alice_rows = {row for row in exported(store) if row[0] == owner}
    assert alice_rows == {(owner, "3 0 0", der(pki.alice).hex()),
                          (owner, "2 0 1", hashlib.sha256(ca_der).hexdigest()),
                          (owner, "0 1 1", hashlib.sha256(ca_spki).hexdigest())}, alice_rows


def test_signed_mail_from_with_a_display_name_and_other_case(store, pki):
    mail = pki.sign("display.eml", sender='"Alice Example" <Alice@EXAMPLE.com>')
    r = store.ctl("cert", "add", "alice@example.com", mail)
    assert r.stdout.startswith("added alice@example.com"), r.stdout


def test_signed_mail_on_stdin(store, pki):
    mail = pki.sign("stdin.eml", detach=False)
    store.ctl("cert", "add", "alice@example.com", "-", input=mail.read_text())
    assert (owner_name("alice@example.com").lower(), "3 0 0", der(pki.alice).hex()) \
        in exported(store)


# --- refused -------------------------------------------------------------------------------

def test_signed_mail_tampered_body_is_refused(store, pki):
    mail = pki.sign("tampered.eml")
    text = mail.read_text()
    assert "Please publish my certificate." in text
    mail.write_text(text.replace("Please publish", "Please remove"))
    assert not openssl_verifies(mail)
    line = refused(store, "cert", "add", "alice@example.com", mail)
    assert "the signed mail's signature does not verify" in line, line


def test_signed_mail_foreign_signer_is_refused(store, pki):
    # Bob signs a mail claiming to be from Alice, with Alice's certificate in the bag too.
    mail = pki.sign("foreign.eml", signer=pki.bob.pem, key=pki.bob.key, certfile=[pki.alice])
    assert openssl_verifies(mail)
    line = refused(store, "cert", "add", "alice@example.com", mail)
    assert line.endswith(": the mail is signed by a certificate for bob@example.com, not "
                         "alice@example.com"), line


def test_signed_mail_wrong_from_is_refused(store, pki):
    mail = pki.sign("wrong-from.eml", sender="Carol <carol@example.com>")
    assert openssl_verifies(mail)
    line = refused(store, "cert", "add", "alice@example.com", mail)
    assert line.endswith(": the mail's From is carol@example.com, not alice@example.com"), line


def test_signed_mail_from_in_another_case_is_refused_in_a_case_sensitive_zone(store, pki):
    mail = pki.sign("erin.eml", signer=pki.erin.pem, key=pki.erin.key, sender="erin@cs.example")
    line = refused(store, "cert", "add", "Erin@cs.example", mail)
    assert line.endswith(": the mail's From is erin@cs.example, not Erin@cs.example"), line
    good = pki.sign("erin-ok.eml", signer=pki.erin.pem, key=pki.erin.key, sender="Erin@cs.example")
    store.ctl("cert", "add", "Erin@cs.example", good)


def test_signed_mail_without_from_is_refused(store, pki):
    mail = pki.sign("nofrom.eml", sender=None)
    line = refused(store, "cert", "add", "alice@example.com", mail)
    assert "the mail has no From address" in line, line


def test_signed_mail_with_several_from_addresses_is_refused(store, pki):
    mail = pki.sign("two-from.eml", sender="alice@example.com, carol@example.com")
    line = refused(store, "cert", "add", "alice@example.com", mail)
    assert "From names 2 addresses (alice@example.com, carol@example.com)" in line, line


def test_encrypted_mail_is_refused(store, pki, tmp_path):
    mail = tmp_path / "encrypted.eml"
    openssl("cms", "-encrypt", "-in", pki.body, "-from", "alice@example.com",
            "-to", "provider@example.net", "-subject", "Encrypted", "-out", mail, pki.alice)
    assert "enveloped-data" in mail.read_text()
    line = refused(store, "cert", "add", "alice@example.com", mail)
    assert line.endswith("an encrypted mail carries no certificate to publish; send a signed "
                         "mail"), line


def test_unsigned_mail_is_refused(store, tmp_path):
    mail = tmp_path / "unsigned.eml"
    mail.write_text("From: alice@example.com\r\nSubject: my certificate\r\n\r\nHello\r\n")
    line = refused(store, "cert", "add", "alice@example.com", mail)
    assert line.endswith("a mail without an S/MIME signature carries no certificate; send a "
                         "signed mail"), line


def test_force_does_not_override_a_signed_mails_checks(store, pki):
    mail = pki.sign("forced.eml", signer=pki.bob.pem, key=pki.bob.key)
    line = refused(store, "cert", "add", "alice@example.com", mail, "--force")
    assert "signed by a certificate for bob@example.com" in line, line


# --- cert import ---------------------------------------------------------------------------

def test_signed_mail_import_takes_the_signer_for_the_from_address(store, pki, tmp_path):
    d = tmp_path / "inbox"
    d.mkdir()
    shutil.copy(pki.sign("import.eml", certfile=[pki.ca, pki.alice2.pem]), d / "1-alice.eml")
    # Alice's certificate, but the mail says it is from Bob.
    shutil.copy(pki.sign("forged.eml", sender="bob@example.com"), d / "2-forged.eml")
    (d / "3-garbage.eml").write_text("From: x@example.com\r\nContent-Type: application/pkcs7-mime"
                                     "\r\n\r\nnot base64\r\n")
    r = store.ctl("--json", "cert", "import", d)
    doc = json.loads(r.stdout)
    assert doc["added"] == 1, doc
    skipped = doc["skipped"]
    assert len(skipped) == 2, skipped
    assert any("2-forged.eml (CN=Alice): the mail is signed by a certificate for "
               "alice@example.com, not bob@example.com" in s for s in skipped), skipped
    assert any("3-garbage.eml" in s for s in skipped), skipped
    owner = owner_name("alice@example.com").lower()
    # The signer alone, not Alice's second certificate from the bag (nor the CA).
    assert {row for row in exported(store) if row[0] == owner} == \
        {(owner, "3 0 0", der(pki.alice).hex())}


# --- the HTTP API --------------------------------------------------------------------------

@pytest.fixture
def api(store, tmp_path):
    token = add_token(store, "panel", "--zone", "example.com")
    server = ApiServer(store, tmp_path / "daemon", extra_yaml=CONFIG_YAML).start()
    try:
        yield server, token
    finally:
        assert server.stop() == 0, server.logs()


def post_mail(server, token, address, mail):
    """The README's example: jq builds the body, curl posts it."""
    cmd = (f"jq -Rs --arg a {address} '{{address: $a, certificate: .}}' {mail} | "
           f"curl -sS -w '\\n%{{http_code}}' -H 'Authorization: Bearer {token}' "
           f"-H 'Content-Type: application/json' --data-binary @- "
           f"http://{server.target[0]}:{server.target[1]}/api/v1/certificates")
    r = run(["bash", "-o", "pipefail", "-c", cmd])
    body, status = r.stdout.rsplit("\n", 1)
    return int(status), json.loads(body)


def test_signed_mail_posted_to_the_api(store, pki, api):
    server, token = api
    mail = pki.sign("api.eml", certfile=[pki.ca])
    status, doc = post_mail(server, token, "alice@example.com", mail)
    assert status == 201, doc
    assert doc["sha256"] == hashlib.sha256(der(pki.alice)).hexdigest(), doc
    assert [c["sha256"] for c in doc["certificates"]] == [doc["sha256"]], doc


def test_signed_mail_with_the_wrong_from_posted_to_the_api_is_422(store, pki, api):
    server, token = api
    mail = pki.sign("api-wrong.eml", sender="carol@example.com")
    before = sqlite_dump(store.db)
    status, doc = post_mail(server, token, "alice@example.com", mail)
    assert status == 422, doc
    assert doc["error"] == ("certificate: the mail's From is carol@example.com, not "
                            "alice@example.com"), doc
    assert sqlite_dump(store.db) == before

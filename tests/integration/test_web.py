"""The web page of smimea-api (GET /) in a real headless browser: Debian's chromium driven by
chromium-driver through python3-selenium, nothing downloaded at test time.

The daemon, its store, tokens and certificates come from test_api.py's fixtures (smimea-api
started as a user starts it on 127.0.0.1 with a fresh store); a real pdns_server reads the
same store through the remote backend over a unix socket. What the page shows is checked
against values computed here: owner names with hashlib, certificate DER with the openssl
command line, the store with the sqlite3 and smimea-ctl command lines, and what is published
with dnspython and kdig queries to pdns.

After every test the browser's console must hold no error (except the HTTP error statuses a
test provokes on purpose) and every request the page made must have gone to the daemon's own
origin (Chrome's performance log).

SMIMEA_SCREENSHOTS=1 also saves screenshots of the main states into docs/screenshots/.

Run: SMIMEA_BUILD_DIR=build /usr/bin/python3 -m pytest -q tests/integration/test_web.py
"""
import base64
import datetime
import hashlib
import html.parser
import json
import os
import pathlib
import re
import sys
import urllib.request

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from api_client import HOST, add_token  # noqa: E402
from pdns import CONNECTORS, PdnsServer  # noqa: E402
from smimea_test import ROOT, openssl, require, run  # noqa: E402
# The daemon with a fresh store, its tokens and certificates: test_api.py's fixtures.
from test_api import (answer_set, ctl_certs, env, expired_cert_pem, openapi,  # noqa: E402,F401
                      unchanged, wait_for_answer)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
require(CHROMIUM, CHROMEDRIVER, "/usr/bin/kdig")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import NoAlertPresentException, TimeoutException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SCREENSHOTS = ROOT / "docs" / "screenshots"
WINDOW = (900, 1100)


def expected_owner(address):
    """RFC 8162: SHA2-256 of the local-part, its first 28 octets in hex, + ._smimecert."""
    local, domain = address.rsplit("@", 1)
    return hashlib.sha256(local.encode()).hexdigest()[:56] + "._smimecert." + domain + "."


def der_of(pem_text, tmp_path):
    """The DER of a PEM certificate, by the openssl command line."""
    f = tmp_path / f"in-{hashlib.sha256(pem_text.encode()).hexdigest()[:12]}.pem"
    f.write_text(pem_text)
    return openssl("x509", "-in", f, "-outform", "DER")


def html_subject_cert(address, common_name):
    """A self-signed certificate for address whose subject CN is common_name (any text)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=100))
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(address)]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def kdig_rdatas(server, owner):
    """The SMIMEA record data pdns answers for owner, as kdig (its own parser) prints them."""
    out = run(["kdig", f"@{HOST}", "-p", str(server.port), owner, "SMIMEA", "+short"]).stdout
    return {tuple(line.split()[:3]) + ("".join(line.split()[3:]).lower(),)
            for line in out.splitlines() if line.strip()}


# --------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def pdns(env, tmp_path_factory):
    """pdns_server reading the daemon's store through smimea-backend on a unix socket."""
    d = tmp_path_factory.mktemp("pdns")
    (d / "backend").mkdir()
    with PdnsServer(CONNECTORS["unix"](env.store, d / "backend"), d / "pdns") as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={WINDOW[0]},{WINDOW[1]}", "--no-proxy-server",
                "--no-first-run", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--disable-default-apps", "--lang=en-US"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_window_size(*WINDOW)
    try:
        yield driver
    finally:
        driver.quit()


class Page:
    """The page in the browser, with the few gestures a person makes on it."""

    def __init__(self, driver, origin):
        self.driver = driver
        self.origin = origin
        self.allowed_statuses = set()  # HTTP errors a test provokes on purpose

    def open(self):
        # A new tab: its own, empty session storage (where the page keeps the token).
        old = self.driver.current_window_handle
        self.driver.switch_to.new_window("tab")
        new = self.driver.current_window_handle
        self.driver.switch_to.window(old)
        self.driver.close()
        self.driver.switch_to.window(new)
        self.driver.get(self.origin + "/")
        self.wait(lambda d: self.by_id("token").is_displayed(), what="the sign-in form")

    def wait(self, condition, timeout=5, what="the condition"):
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(condition)
        except TimeoutException:
            raise AssertionError(f"{what} not met within {timeout} s; page text:\n"
                                 f"{self.by_tag('body').text}") from None

    def by_id(self, element_id):
        return self.driver.find_element(By.ID, element_id)

    def by_tag(self, tag):
        return self.driver.find_element(By.TAG_NAME, tag)

    def hook(self, testid):
        return self.driver.find_element(By.CSS_SELECTOR, f"[data-testid={testid}]")

    def text(self, element_id):
        return self.by_id(element_id).text.strip()

    def error_next_to(self, element_id):
        """The error shown right after a field and tied to it by aria-describedby ("" if
        none is shown)."""
        field = self.by_id(element_id)
        found = self.driver.execute_script(
            "const f = arguments[0], e = f.nextElementSibling;"
            "return e && e.classList.contains('field-error') && "
            "f.getAttribute('aria-describedby') === e.id ? e : null;", field)
        if found is None or not found.is_displayed():
            return ""
        return found.text.strip()

    def sign_in(self, token, expect_ok=True):
        field = self.hook("token")
        field.clear()
        field.send_keys(token + Keys.ENTER)
        if expect_ok:
            self.wait(lambda d: self.by_id("whoami").is_displayed()
                      and self.by_id("published").is_displayed(), what="signed in")
        else:
            self.wait(lambda d: self.error_next_to("token"), what="an error next to the token")

    def paste(self, text):
        """Puts text into the certificate box as a paste does: one insertion, one input
        event."""
        box = self.hook("certificate")
        box.click()
        self.driver.execute_script("arguments[0].select();", box)
        self.driver.execute_cdp_cmd("Input.insertText", {"text": text})

    def wait_preview(self):
        self.wait(lambda d: self.by_id("check").is_displayed() and self.text("owner-name"),
                  what="the preview")
        return self.text("owner-name"), self.text("records")

    def wait_status(self, pattern):
        self.wait(lambda d: re.search(pattern, self.hook("status").text),
                  what=f"status matching {pattern!r}")
        return self.hook("status").text

    def published_rows(self):
        return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                for tr in self.driver.find_elements(By.CSS_SELECTOR, "#published-list tr")]

    def screenshot(self, name, show=None):
        """docs/screenshots/NAME.png when SMIMEA_SCREENSHOTS=1, scrolled so that the element
        with id show is in view."""
        if os.environ.get("SMIMEA_SCREENSHOTS") == "1":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            if show:
                self.driver.execute_script(
                    "arguments[0].scrollIntoView({block: 'center'});", self.by_id(show))
            self.driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))

    # --- what the browser saw ---

    def console_errors(self):
        errors = []
        for entry in self.driver.get_log("browser"):
            if entry["level"] not in ("SEVERE", "ERROR"):
                continue
            m = re.search(r"the server responded with a status of (\d{3})", entry["message"])
            if entry.get("source") == "network" and m and \
                    int(m.group(1)) in self.allowed_statuses and \
                    entry["message"].startswith(self.origin + "/api/v1/"):
                continue
            errors.append(entry)
        return errors

    def requested_urls(self):
        urls = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                urls.append(message["params"]["request"]["url"])
        return urls

    def drain_logs(self):
        self.driver.get_log("browser")
        self.driver.get_log("performance")


@pytest.fixture
def page(browser, env):
    p = Page(browser, f"http://{HOST}:{env.server.port}")
    p.drain_logs()
    p.open()
    yield p
    # 7: no console error and no request to another host, after every flow.
    try:
        alert = browser.switch_to.alert
    except NoAlertPresentException:
        alert = None
    if alert is not None:
        text = alert.text
        alert.dismiss()
        raise AssertionError(f"a dialog was left open: {text!r}")
    errors = p.console_errors()
    assert not errors, f"errors in the browser console: {errors}"
    urls = p.requested_urls()
    assert p.origin + "/static/app.js" in urls, urls  # the log did record the page's requests
    elsewhere = [u for u in urls if not (u.startswith(p.origin + "/") or u.startswith("data:"))]
    assert not elsewhere, f"the page made requests to other hosts: {elsewhere}"


# --------------------------------------------------------------------------------------------
# 1. Signing in


def test_wrong_token_error_then_sign_in_shows_scope(page, env):
    page.allowed_statuses = {401}
    with unchanged(env.store):
        page.sign_in("smimea_" + "Q" * 43, expect_ok=False)
        error = page.error_next_to("token")
        assert "not valid" in error and "401" not in error, error
        for hidden in ("whoami", "give", "check", "published"):
            assert not page.by_id(hidden).is_displayed(), hidden
        assert page.hook("status").text == ""
        assert page.driver.execute_script("return sessionStorage.length") == 0

        page.sign_in(env.tokens["zone"])
    scope = page.text("scope")
    assert "token zone" in scope and "example.com" in scope, scope
    assert "other.example" not in scope and "every zone" not in scope, scope
    assert page.error_next_to("token") == ""
    assert page.hook("certificate").is_displayed()
    assert not page.by_id("check").is_displayed()  # nothing to publish yet
    # The token: in this tab's session storage, not in the URL, not in the field.
    assert env.tokens["zone"] not in page.driver.current_url
    assert page.hook("token").get_attribute("value") == ""
    assert page.driver.execute_script("return sessionStorage.getItem('smimea-token')") == \
        env.tokens["zone"]
    assert page.driver.execute_script("return localStorage.length") == 0
    page.screenshot("signed-in")


def test_admin_and_read_only_scopes_in_words(page, env):
    page.sign_in(env.tokens["ro"])
    scope = page.text("scope")
    assert "read-only" in scope and "example.com" in scope, scope
    page.by_id("signout").click()
    page.wait(lambda d: page.hook("token").is_displayed(), what="signed out")
    page.sign_in(env.tokens["admin"])
    assert "every zone" in page.text("scope"), page.text("scope")


# --------------------------------------------------------------------------------------------
# 2. Paste, preview, publish, served by pdns


def test_paste_preview_publish_served_by_pdns(page, env, pdns, tmp_path):
    address = "web-paste@example.com"
    cert = env.cert(address)
    pem = pathlib.Path(cert.pem).read_text()
    der = der_of(pem, tmp_path)
    owner = expected_owner(address)
    assert answer_set(pdns, owner)[1] == set()

    with unchanged(env.store):
        page.sign_in(env.tokens["zone"])
        page.paste(pem)
        shown_owner, records = page.wait_preview()
        assert page.hook("address").get_attribute("value") == address
        assert shown_owner == owner, (shown_owner, owner)
        lines = records.splitlines()
        assert len(lines) == 1, records
        fields = lines[0].split()
        assert fields[0] == owner and fields[2:4] == ["IN", "SMIMEA"], fields
        assert fields[4:7] == ["3", "0", "0"], fields
        assert fields[7] == der.hex(), "the record data is not the certificate's DER"
        facts = page.text("facts")
        assert address in facts and "Valid until" in facts, facts
        assert page.hook("publish").is_enabled()
        assert page.hook("status").text == ""
        page.screenshot("preview", "check")
    # Nothing stored by the preview: no certificate, nothing served.
    assert not any(a == address for a, _ in ctl_certs(env.store))
    assert answer_set(pdns, owner)[1] == set()

    page.hook("publish").click()
    status = page.wait_status(r"Published")
    assert address in status and "example.com" in status, status
    wait_for_answer(pdns, owner, {(3, 0, 0, der)}, limit=1.0)
    assert ("3", "0", "0", der.hex()) in kdig_rdatas(pdns, owner)
    assert (address, hashlib.sha256(der).hexdigest()) in ctl_certs(env.store)
    page.wait(lambda d: any(r and r[0] == address for r in page.published_rows()),
              what="the certificate in the published list")
    page.screenshot("published", "status")
    # The next certificate: its own preview, and no confirmation left over from the last one.
    other = env.cert("web-paste2@example.com")
    page.paste(pathlib.Path(other.pem).read_text())
    page.wait(lambda d: page.text("owner-name") == expected_owner("web-paste2@example.com"),
              what="the second preview")
    assert page.hook("status").text == "", page.hook("status").text
    assert page.hook("publish").is_enabled()


# --------------------------------------------------------------------------------------------
# 3. A DER file


def test_der_file_same_owner_name(page, env, tmp_path):
    address = "web-der@example.com"
    cert = env.cert(address, key="rsa")
    der_file = tmp_path / "my-certificate.der"
    der_file.write_bytes(cert.der)  # openssl's DER
    with unchanged(env.store):
        page.sign_in(env.tokens["zone"])
        page.by_id("file").send_keys(str(der_file))
        shown_owner, records = page.wait_preview()
    assert shown_owner == expected_owner(address)
    assert page.hook("address").get_attribute("value") == address
    assert records.split()[4:] == ["3", "0", "0", cert.der.hex()], records
    assert base64.b64decode(page.hook("certificate").get_attribute("value")) == cert.der


# --------------------------------------------------------------------------------------------
# 4. An expired certificate


def test_expired_certificate_needs_confirmation(page, env, pdns, tmp_path):
    address = "web-old@example.com"
    pem = expired_cert_pem(address)
    der = der_of(pem, tmp_path)
    owner = expected_owner(address)
    with unchanged(env.store):
        page.sign_in(env.tokens["zone"])
        page.paste(pem)
        shown_owner, records = page.wait_preview()
        assert shown_owner == owner
        assert records.split()[4:] == ["3", "0", "0", der.hex()], records
        warnings = page.text("warnings")
        assert "expired" in warnings.lower(), warnings
        assert "(expired)" in page.text("facts")
        publish, anyway = page.hook("publish"), page.by_id("anyway")
        assert not publish.is_enabled()
        assert anyway.is_displayed() and not anyway.is_selected()
        anyway.click()
        assert publish.is_enabled()
        anyway.click()
        assert not publish.is_enabled()
    anyway.click()
    publish.click()
    status = page.wait_status(r"Published")
    assert address in status, status
    assert (address, hashlib.sha256(der).hexdigest()) in ctl_certs(env.store)
    wait_for_answer(pdns, owner, {(3, 0, 0, der)}, limit=1.0)


def test_fresh_certificate_has_no_expiry_confirmation(page, env):
    """The other side of the test above."""
    page.sign_in(env.tokens["zone"])
    page.paste(pathlib.Path(env.cert("web-fresh@example.com").pem).read_text())
    page.wait_preview()
    assert not page.by_id("anyway").is_displayed()
    assert page.text("warnings") == ""
    assert page.hook("publish").is_enabled()


# --------------------------------------------------------------------------------------------
# 5. An address token and another mailbox


def test_address_token_cannot_publish_another_mailbox(page, env):
    page.allowed_statuses = {403}
    if "bob" not in env.tokens:
        env.tokens["bob"] = add_token(env.store, "bob", "--address", "bob@example.com")
    carol = env.cert("carol@example.com")
    with unchanged(env.store):
        page.sign_in(env.tokens["bob"])
        scope = page.text("scope")
        assert "bob@example.com" in scope, scope
        assert page.hook("address").get_attribute("value") == "bob@example.com"
        page.paste(pathlib.Path(carol.pem).read_text())
        page.wait(lambda d: page.error_next_to("address"), what="an error next to the address")
        assert page.hook("address").get_attribute("value") == "carol@example.com"
        error = page.error_next_to("address")
        assert "may not" in error and "403" not in error, error
        assert not page.by_id("check").is_displayed()
        assert not page.hook("publish").is_displayed()
        assert page.text("owner-name") == ""
        # Typing bob's address instead: this certificate does not name bob, refused too.
        page.allowed_statuses = {403, 422}
        field = page.hook("address")
        field.clear()
        field.send_keys("bob@example.com")
        page.wait(lambda d: page.error_next_to("certificate"), what="an error at the certificate")
        assert "refused" in page.error_next_to("certificate")
        assert not page.hook("publish").is_displayed()
    assert not any(a == "carol@example.com" for a, _ in ctl_certs(env.store))
    # The other side: bob's own certificate is published with the same token.
    bob = env.cert("bob@example.com")
    page.hook("certificate").clear()
    page.paste(pathlib.Path(bob.pem).read_text())
    shown_owner, _ = page.wait_preview()
    assert shown_owner == expected_owner("bob@example.com")
    assert page.error_next_to("address") == "" and page.error_next_to("certificate") == ""
    page.hook("publish").click()
    page.wait_status(r"Published")
    assert ("bob@example.com", hashlib.sha256(bob.der).hexdigest()) in ctl_certs(env.store)


# --------------------------------------------------------------------------------------------
# 6. Remove


def test_remove_from_the_list(page, env, pdns):
    address = "web-remove@example.com"
    cert = env.cert(address)
    env.publish(cert, token="zone")
    owner = expected_owner(address)
    wait_for_answer(pdns, owner, {(3, 0, 0, cert.der)}, limit=1.0)
    page.sign_in(env.tokens["zone"])
    page.wait(lambda d: any(r and r[0] == address for r in page.published_rows()),
              what="the certificate in the list")

    def remove_button():
        for tr in page.driver.find_elements(By.CSS_SELECTOR, "#published-list tr"):
            if tr.find_element(By.TAG_NAME, "td").text == address:
                return tr.find_element(By.TAG_NAME, "button")
        raise AssertionError(f"{address} is not listed")

    # Cancelling the confirmation removes nothing.
    with unchanged(env.store):
        remove_button().click()
        alert = page.wait(EC.alert_is_present(), what="the confirmation")
        assert address in alert.text, alert.text
        alert.dismiss()
        assert any(r and r[0] == address for r in page.published_rows())
    assert answer_set(pdns, owner)[1] == {(3, 0, 0, cert.der)}

    remove_button().click()
    page.wait(EC.alert_is_present(), what="the confirmation").accept()
    status = page.wait_status(r"Removed")
    assert address in status, status
    page.wait(lambda d: not any(r and r[0] == address for r in page.published_rows()),
              what="the row gone")
    wait_for_answer(pdns, owner, set(), limit=1.0)
    assert not any(a == address for a, _ in ctl_certs(env.store))


# --------------------------------------------------------------------------------------------
# 7. Content-Security-Policy (console and requests are checked after every test)


class _InlineFinder(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.inline = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and not attrs.get("src"):
            self.inline.append("<script> without src")
        if tag == "style":
            self.inline.append("<style>")
        for name in attrs:
            if name.startswith("on") or name == "style":
                self.inline.append(f"{tag} {name}=")


def test_content_security_policy(env):
    origin = f"http://{HOST}:{env.server.port}"
    with urllib.request.urlopen(origin + "/", timeout=10) as r:
        csp = r.headers.get("Content-Security-Policy", "")
        body = r.read().decode()
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives.get("script-src") == ["'self'"], csp
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, csp
    assert directives.get("default-src") == ["'none'"], csp
    assert directives.get("connect-src") == ["'self'"], csp
    finder = _InlineFinder()
    finder.feed(body)
    assert not finder.inline, f"inline code the policy would block: {finder.inline}"
    for path in ("/static/app.js", "/static/app.css"):
        with urllib.request.urlopen(origin + path, timeout=10) as r:
            assert r.status == 200 and r.read()


# --------------------------------------------------------------------------------------------
# 8. Attacker-controlled text


def test_html_in_a_subject_is_shown_as_text(page, env, pdns, tmp_path):
    address = "web-xss@example.com"
    markup = "<img src=x onerror=alert(1)>"
    pem = html_subject_cert(address, markup)
    der = der_of(pem, tmp_path)
    page.sign_in(env.tokens["zone"])
    page.paste(pem)
    shown_owner, _ = page.wait_preview()
    assert shown_owner == expected_owner(address)
    # The subject as openssl prints it in RFC 2253 form (which escapes < and > with a
    # backslash), shown literally.
    pem_file = tmp_path / "xss.pem"
    pem_file.write_text(pem)
    subject = openssl("x509", "-in", pem_file, "-noout", "-subject", "-nameopt",
                      "RFC2253").decode().strip().removeprefix("subject=")
    assert "<img src=x onerror=alert(1)" in subject.replace("\\", ""), subject
    facts = page.driver.find_elements(By.CSS_SELECTOR, "#facts dd")
    assert facts[0].text == subject, (facts[0].text, subject)

    def injected():
        with pytest.raises(NoAlertPresentException):
            page.driver.switch_to.alert.text
        return page.driver.find_elements(By.TAG_NAME, "img")

    assert injected() == []
    page.hook("publish").click()
    page.wait_status(r"Published")
    wait_for_answer(pdns, expected_owner(address), {(3, 0, 0, der)}, limit=1.0)
    page.wait(lambda d: any(r and r[0] == address and r[1] == subject
                            for r in page.published_rows()),
              what="the subject as text in the list")
    assert injected() == []

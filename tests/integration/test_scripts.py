"""Tests of the shell scripts in scripts/ that can run without root or the network.

scripts/fetch-pdns-source derives deb-src entries from the machine's deb entries; here its
--print-sources mode reads sample apt directories (SMIMEA_APT_DIR) and its output is parsed
with a deb822 reader of our own and, where the sample allows, by apt-get itself.

Run: /usr/bin/python3 -m pytest -q tests/integration/test_scripts.py
"""
import os
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from smimea_test import ROOT  # noqa: E402

FETCH = ROOT / "scripts" / "fetch-pdns-source"
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def print_sources(apt_dir):
    return subprocess.run([FETCH, "--print-sources"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "SMIMEA_APT_DIR": str(apt_dir)})


def stanzas(text):
    """deb822 paragraphs as lists of (lower-case field name, value) in order; comment lines
    dropped, continuation lines joined to their field with a newline."""
    out, current = [], []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                out.append(current)
            current = []
        elif line[0] in " \t":
            name, value = current[-1]
            current[-1] = (name, value + "\n" + line)
        else:
            name, value = line.split(":", 1)
            current.append((name.strip().lower(), value.strip()))
    if current:
        out.append(current)
    return out


def derived(apt_dir):
    r = print_sources(apt_dir)
    assert r.returncode == 0, r.stderr
    return [dict(s) for s in stanzas(r.stdout)]


def apt_dir(tmp_path, sources_list=None, **parts):
    """A sample apt directory: sources.list and sources.list.d/<name> files."""
    d = tmp_path / "apt"
    (d / "sources.list.d").mkdir(parents=True)
    if sources_list is not None:
        (d / "sources.list").write_text(sources_list)
    for name, text in parts.items():
        (d / "sources.list.d" / name.replace("__", ".")).write_text(text)
    return d


def apt_source_targets(sources_file, tmp_path):
    """(repository URI, suite, component) of each Sources index apt itself would fetch for
    sources_file, read with apt-get indextargets (no root, no network)."""
    parts = tmp_path / "apt-parts"
    parts.mkdir()
    (parts / "derived.sources").write_text(sources_file)
    r = subprocess.run(
        ["apt-get", "-o", "Dir::Etc::sourcelist=/dev/null", "-o", f"Dir::Etc::sourceparts={parts}",
         "-o", f"Dir::State::lists={tmp_path / 'lists'}", "indextargets", "--no-release-info",
         "--format", "$(CREATED_BY) $(REPO_URI) $(RELEASE) $(COMPONENT)"],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    return sorted(tuple(line.split()[1:]) for line in r.stdout.splitlines()
                  if line.startswith("Sources "))


def test_one_line_sources_list_with_a_local_mirror(tmp_path):
    d = apt_dir(tmp_path, sources_list=(
        "# a local mirror\n"
        f"deb [arch=amd64 signed-by={DEBIAN_KEYRING}] http://mirror.internal:3142/debian "
        "trixie main contrib non-free-firmware\n"
        "deb http://mirror.internal:3142/debian trixie-updates main  # comment\n"
        "deb [ signed-by=/etc/apt/keyrings/sec.gpg ] http://mirror.internal:3142/debian-security/ "
        "trixie-security main\n"
        "# deb-src http://mirror.internal:3142/debian trixie-updates main\n"
        "deb cdrom:[Debian GNU/Linux 13]/ trixie main\n"))
    assert derived(d) == [
        {"types": "deb-src", "uris": "http://mirror.internal:3142/debian", "suites": "trixie",
         "components": "main contrib non-free-firmware", "signed-by": DEBIAN_KEYRING},
        {"types": "deb-src", "uris": "http://mirror.internal:3142/debian",
         "suites": "trixie-updates", "components": "main"},
        {"types": "deb-src", "uris": "http://mirror.internal:3142/debian-security/",
         "suites": "trixie-security", "components": "main",
         "signed-by": "/etc/apt/keyrings/sec.gpg"},
    ]
    assert apt_source_targets(print_sources(d).stdout, tmp_path) == [
        ("http://mirror.internal:3142/debian-security/", "trixie-security", "main"),
        ("http://mirror.internal:3142/debian/", "trixie", "contrib"),
        ("http://mirror.internal:3142/debian/", "trixie", "main"),
        ("http://mirror.internal:3142/debian/", "trixie", "non-free-firmware"),
        ("http://mirror.internal:3142/debian/", "trixie-updates", "main"),
    ]


def test_one_line_deb_src_already_there_is_not_repeated(tmp_path):
    d = apt_dir(tmp_path, sources_list=(
        "deb http://mirror.internal/debian bookworm main\n"
        "deb-src http://mirror.internal/debian/ bookworm main\n"
        "deb http://mirror.internal/debian bookworm-updates main\n"),
        extra__list="deb [signed-by=/k.gpg] http://mirror.internal/debian-security "
                    "bookworm-security main\n")
    assert derived(d) == [
        {"types": "deb-src", "uris": "http://mirror.internal/debian", "suites": "bookworm-updates",
         "components": "main"},
        {"types": "deb-src", "uris": "http://mirror.internal/debian-security",
         "suites": "bookworm-security", "components": "main", "signed-by": "/k.gpg"},
    ]


DEB822 = f"""\
Types: deb deb-src
URIs: http://mirror.internal/debian
Suites: trixie
Components: main
Signed-By: {DEBIAN_KEYRING}

Types: deb
# a comment inside a stanza
URIs: http://mirror.internal/debian
Suites: trixie trixie-updates
Components: main
Architectures: amd64
Signed-By: {DEBIAN_KEYRING}

Types: deb
URIs: http://mirror.internal/debian-security
Suites: trixie-security
Components: main contrib
Signed-By: {DEBIAN_KEYRING}
Check-Valid-Until: no

types: deb
uris: http://disabled.internal/debian
suites: trixie-backports
components: main
enabled: no

Types: deb
URIs: http://mirror.internal/debian
Suites: trixie-proposed-updates
Components: main

Types: deb-src
URIs: http://mirror.internal/debian/
Suites: trixie-proposed-updates
Components: main
"""


def test_deb822_stanzas_some_with_deb_src(tmp_path):
    d = apt_dir(tmp_path, debian__sources=DEB822)
    assert derived(d) == [
        {"types": "deb-src", "uris": "http://mirror.internal/debian", "suites": "trixie-updates",
         "components": "main", "signed-by": DEBIAN_KEYRING},
        {"types": "deb-src", "uris": "http://mirror.internal/debian-security",
         "suites": "trixie-security", "components": "main contrib", "signed-by": DEBIAN_KEYRING,
         "check-valid-until": "no"},
    ]
    assert apt_source_targets(print_sources(d).stdout, tmp_path) == [
        ("http://mirror.internal/debian-security/", "trixie-security", "contrib"),
        ("http://mirror.internal/debian-security/", "trixie-security", "main"),
        ("http://mirror.internal/debian/", "trixie-updates", "main"),
    ]


def test_debian_12_default_sources(tmp_path):
    """The debian.sources of a Debian 12 installation: one deb-src stanza per deb stanza."""
    text = (f"Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n"
            f"Components: main\nSigned-By: {DEBIAN_KEYRING}\n\n"
            f"Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n"
            f"Components: main\nSigned-By: {DEBIAN_KEYRING}\n")
    d = apt_dir(tmp_path, debian__sources=text)
    assert derived(d) == [
        {"types": "deb-src", "uris": "http://deb.debian.org/debian",
         "suites": "bookworm bookworm-updates", "components": "main", "signed-by": DEBIAN_KEYRING},
        {"types": "deb-src", "uris": "http://deb.debian.org/debian-security",
         "suites": "bookworm-security", "components": "main", "signed-by": DEBIAN_KEYRING},
    ]


def test_embedded_signed_by_key_is_kept_whole(tmp_path):
    key = ("-----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mQINBGTestKeyLine1\n mQINBGTestKeyLine2\n"
           " -----END PGP PUBLIC KEY BLOCK-----")
    d = apt_dir(tmp_path, vendor__sources=(
        "Types: deb\nURIs: https://repo.example.net/apt\nSuites: stable\nComponents: main\n"
        f"Signed-By:\n {key}\n"))
    assert derived(d) == [
        {"types": "deb-src", "uris": "https://repo.example.net/apt", "suites": "stable",
         "components": "main", "signed-by": "\n " + key}]


def test_both_formats_and_files_apt_ignores(tmp_path):
    d = apt_dir(
        tmp_path, sources_list="deb http://a.internal/debian trixie main\n",
        b__list="deb http://b.internal/debian ./\n",
        c__sources="Types: deb\nURIs: http://c.internal/debian\nSuites: trixie\nComponents: main\n",
        # Files apt does not read, and our own output, which must not count as configured.
        old__list__disabled="deb http://disabled.internal/debian trixie main\n",
        **{"with space.list": "deb http://space.internal/debian trixie main\n"},
        **{"smimea-deb-src.sources": "Types: deb-src\nURIs: http://a.internal/debian\n"
                                     "Suites: trixie\nComponents: main\n"})
    assert derived(d) == [
        {"types": "deb-src", "uris": "http://a.internal/debian", "suites": "trixie",
         "components": "main"},
        {"types": "deb-src", "uris": "http://b.internal/debian", "suites": "./"},
        {"types": "deb-src", "uris": "http://c.internal/debian", "suites": "trixie",
         "components": "main"},
    ]


def test_several_uris_and_an_entry_configured_twice(tmp_path):
    d = apt_dir(tmp_path, sources_list="deb http://a.internal/debian trixie main\n",
                two__sources=("Types: deb\nURIs: http://a.internal/debian http://b.internal/debian\n"
                              "Suites: trixie trixie-updates\nComponents: main\n"))
    assert derived(d) == [
        {"types": "deb-src", "uris": "http://a.internal/debian", "suites": "trixie",
         "components": "main"},
        {"types": "deb-src", "uris": "http://a.internal/debian", "suites": "trixie-updates",
         "components": "main"},
        {"types": "deb-src", "uris": "http://b.internal/debian", "suites": "trixie trixie-updates",
         "components": "main"},
    ]


def test_nothing_to_add_prints_nothing(tmp_path):
    d = apt_dir(tmp_path, sources_list=(
        "deb http://mirror.internal/debian bookworm main\n"
        "deb-src http://mirror.internal/debian bookworm main\n"))
    r = print_sources(d)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


@pytest.mark.parametrize("sources_list", [None, "# deb http://mirror.internal/debian trixie main\n",
                                          "deb-src http://mirror.internal/debian trixie main\n"])
def test_no_deb_entry_is_an_error(tmp_path, sources_list):
    d = apt_dir(tmp_path, sources_list=sources_list,
                disabled__sources="Types: deb\nURIs: http://x.internal/debian\nSuites: trixie\n"
                                  "Components: main\nEnabled: no\n")
    r = print_sources(d)
    assert r.returncode == 2 and r.stdout == ""
    assert "no deb entry" in r.stderr and str(d) in r.stderr


def test_apt_dir_other_than_etc_apt_only_for_printing(tmp_path):
    r = subprocess.run([FETCH, str(tmp_path / "src")], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "SMIMEA_APT_DIR": str(tmp_path)})
    assert r.returncode == 2 and "--print-sources" in r.stderr
    assert not (tmp_path / "src").exists()


@pytest.mark.parametrize("argv", [[], ["trixie"], ["--keep"], ["", "true"], ["trixie", "a", "b"]])
def test_debian_chroot_usage_errors_change_nothing(argv, tmp_path):
    """scripts/debian-chroot refuses a wrong command line with status 2 and its usage, before
    it needs root, the network or its cache (CI runs it for real: the Debian 13 leg)."""
    cache = tmp_path / "cache"
    r = subprocess.run([ROOT / "scripts" / "debian-chroot", *argv], capture_output=True,
                       text=True, timeout=30, env={**os.environ, "SMIMEA_CHROOT_CACHE": str(cache)})
    assert r.returncode == 2, r
    assert "usage: debian-chroot [--keep] RELEASE COMMAND" in r.stderr
    assert not cache.exists()

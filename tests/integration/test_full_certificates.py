"""A zone of full RSA certificates reaches real secondaries by AXFR.

300 mailboxes with RSA-2048 certificates, one `3 0 0` record each (the whole certificate,
about 1.2 KB of RDATA): any 100 consecutive records exceed the 64 KB of one DNS message.
pdns 4.7 packs 100 records per AXFR message and aborts the transfer (PowerDNS issue 11804);
pdns 4.8 and later, with `workaround-11804=yes` (which every pdns of this suite sets where pdns
has it, as the README tells operators to), send it.

Our pdns primary (pipe connector and native module) NOTIFYs a Knot secondary and a pdns
gsqlite3 secondary; both must load the zone, and their own AXFR must hold every record, with
the RDATA the certificate's DER as python3-cryptography writes it. On pdns 4.7 the test pins
the failure: the primary's AXFR aborts.

Run: SMIMEA_BUILD_DIR=build /usr/bin/python3 -m pytest -q tests/integration/test_full_certificates.py
"""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from pdns import (CONNECTORS, HAS_WORKAROUND_11804, PdnsServer,  # noqa: E402
                  connector_name)  # noqa: F401 (a fixture)
from smimea_test import Store, free_port, owner_name, self_signed_certificates  # noqa: E402
from test_transfer import (CONFIG_YAML, LOAD_BOUND, KnotSecondary, PdnsSecondary,  # noqa: E402
                           axfr, primary_config, soa_serial, wait_for)

ZONE = "rsa.example"
MAILBOXES = 300


def rsa_certificates(directory, count):
    """count self-signed RSA-2048 S/MIME certificates for user<i>@ZONE, one key for all (the
    key does not matter to the transfer, the record size does): {address: (pem path, der)}."""
    addresses = [f"user{i:03d}@{ZONE}" for i in range(count)]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certs = {}
    for i, (address, cert) in enumerate(zip(addresses, self_signed_certificates(key, addresses))):
        path = pathlib.Path(directory) / f"user{i:03d}.pem"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        certs[address] = (path, cert.public_bytes(serialization.Encoding.DER))
    return certs


def smimea_records(records):
    return {(name.to_text(), rd.usage, rd.selector, rd.mtype, bytes(rd.cert))
            for name, _ttl, rd in records if rd.rdtype == 53}


@pytest.mark.xfail(not HAS_WORKAROUND_11804, strict=True, raises=EOFError,
                   reason="pdns 4.7 limitation (PowerDNS issue 11804): 100 records per AXFR "
                          "message overflow 64 KB ('attempt to write an oversized chunk'); "
                          "pdns 4.8+ has workaround-11804")
def test_full_rsa_certificates_reach_knot_and_pdns_secondaries(connector_name, tmp_path):
    if connector_name == "unix":
        pytest.skip("the unix connector cannot list a zone this large in time (README: Limits "
                    "of pdns 4.7.3's AXFR, item 2); large zones use pipe or the native module")
    (tmp_path / "store").mkdir()
    store = Store(tmp_path / "store", extra_config=CONFIG_YAML)
    store.ctl("zone", "add", ZONE)
    certs = rsa_certificates(tmp_path, MAILBOXES)
    for address, (pem, _der) in certs.items():
        store.ctl("cert", "add", address, pem, "--record", "3 0 0")
    want = {(owner_name(a), 3, 0, 0, der) for a, (_pem, der) in certs.items()}
    assert min(len(der) for _p, der in certs.values()) > 700  # 100 of them exceed 64 KB

    knot = KnotSecondary(tmp_path / "knot", free_port())
    pdns2 = PdnsSecondary(tmp_path / "pdns2", free_port())
    (tmp_path / "backend").mkdir()
    connector = CONNECTORS[connector_name](store, tmp_path / "backend")
    primary = PdnsServer(connector, tmp_path / "primary",
                         extra_config=primary_config(connector, [knot.port, pdns2.port],
                                                     "127.0.0.0/8"))
    primary.start()
    try:
        soa, records = axfr(primary.port, ZONE, timeout=30)  # EOFError on pdns 4.7
        assert smimea_records(records) == want
        for secondary in (knot, pdns2):
            secondary.add_zone(ZONE, primary.port)
            secondary.start()
        for secondary in (knot, pdns2):
            wait_for(f"{ZONE} on {secondary.port}",
                     lambda s=secondary: soa_serial(s.port, ZONE) == soa.serial, LOAD_BOUND,
                     secondary.log)
            _soa, copy = axfr(secondary.port, ZONE, timeout=30)
            got = smimea_records(copy)
            assert got == want, (f"{secondary.port}: {len(got)} of {len(want)} records, "
                                 f"{len(got ^ want)} differ")
    finally:
        for process in (knot, pdns2, primary):
            process.stop()
        store.cleanup()

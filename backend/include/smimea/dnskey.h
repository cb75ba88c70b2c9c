// DNSKEY and DS records from PowerDNS's private keys: what a parent zone in the store must
// publish so that a child zone in the same store, signed by PowerDNS with the keys in our
// domain_keys table, validates (a secure delegation, RFC 4035 section 2.4).
//
// The input is the key text as PowerDNS stores it (its ISC "Private-key-format: v1.2" form):
// one "Key: value" per line, keys case-insensitive, binary values in base64. The public key is
// derived from it the way PowerDNS does (pdns/dnssecinfra.cc makeFromISCString,
// pdns/opensslsigners.cc getPublicKeyString), so the DNSKEY and DS match what PowerDNS serves.
// Supported algorithms (RFC 8624 names): RSASHA1 (5), RSASHA1-NSEC3-SHA1 (7), RSASHA256 (8),
// RSASHA512 (10), ECDSAP256SHA256 (13), ECDSAP384SHA384 (14), ED25519 (15), ED448 (16).
//
// Key text is secret: no Status message or note carries any part of it, and decoded secret
// values are wiped before their memory is released. The caller owns the text.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "smimea/key_store.h"
#include "smimea/status.h"
#include "smimea/types.h"

namespace smimea {

// The DNSKEY RDATA (RFC 4034 section 2.1) of the key in private_key_text:
// flags (2 octets) | protocol 3 | algorithm | public key in the algorithm's DNSKEY format
// (RFC 3110 for RSA, RFC 6605 for ECDSA, RFC 8080 for EdDSA).
// InvalidArgument, naming the field but never its value, if the text has no algorithm, an
// unsupported one, a PKCS#11 reference (an Engine line: the key is in a token, not the text),
// a missing field, a value that is not base64, or a key that does not fit its algorithm.
Result<Bytes> dnskey_rdata(std::uint16_t flags, std::string_view private_key_text);

// The key tag of a DNSKEY RDATA (RFC 4034 Appendix B; the algorithm 1 special case is not
// needed: RSAMD5 is not supported above).
std::uint16_t key_tag(const Bytes& dnskey_rdata);

// The DS RDATA in presentation format, "<key tag> <algorithm> 2 <lower-case hex>", for the
// DNSKEY dnskey_rdata at zone_apex: digest type 2, SHA-256 over the apex in canonical wire
// form (lower-cased, RFC 4034 section 6.2) followed by the RDATA (RFC 4034 section 5.1.4,
// RFC 4509). zone_apex is in presentation format, any case, trailing dot optional.
// InvalidArgument if zone_apex is not a valid name or dnskey_rdata is shorter than 4 octets.
Result<std::string> ds_content(std::string_view zone_apex, const Bytes& dnskey_rdata);

// The DS set (ds_content strings) a parent publishes for child_apex, whose keys are keys,
// following PowerDNS's DNSSECKeeper (getKeys, isSecuredZone) and the CDS it publishes:
//  - no DS unless at least one usable key is active (the child is then served unsigned, so
//    the delegation must be insecure);
//  - per algorithm, active keys with flags 257 form the SEP set and other active keys the
//    non-SEP set; a key whose algorithm is not in both sets is a CSK, otherwise flags 257
//    make it a KSK and anything else a ZSK;
//  - one DS for every published KSK and CSK, active or not (an inactive published key is
//    still in the DNSKEY set: a rollover in progress). Unpublished keys get none: there is no
//    DNSKEY for their DS to match. (pdnsutil export-zone-ds lists them too; the CDS does not.)
// The DS come in the order of keys, each once. Keys that cannot be used (unsupported algorithm,
// PKCS#11, malformed text, flags over 65535) are left out, from the sets too, and if notes is
// not null one line per such key is appended to it: "key <id>: <reason>", without key
// material. InvalidArgument only if child_apex is not a valid name.
// A presigned child (PRESIGNED metadata) serves its own DNSKEYs; that is the caller's case.
Result<std::vector<std::string>> delegation_ds(std::string_view child_apex,
                                               const std::vector<DomainKey>& keys,
                                               std::vector<std::string>* notes);

}  // namespace smimea

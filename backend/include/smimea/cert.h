// Certificates in: parsing PEM, DER and PKCS#7 input, the checks made before a certificate is
// published, and the association data of RFC 6698 section 2.1.
//
// A Certificate is plain data extracted once at parse time; nothing here keeps OpenSSL objects
// alive, so the rest of the program never sees OpenSSL. Functions are thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "smimea/owner_name.h"
#include "smimea/status.h"
#include "smimea/types.h"

namespace smimea {

struct Certificate {
  Bytes der;                                 // the certificate as received (selector 0)
  Bytes spki;                                // DER SubjectPublicKeyInfo (selector 1)
  std::array<std::uint8_t, 32> fingerprint;  // SHA2-256 over der
  std::string subject;                       // RFC 2253 one-line form
  std::string issuer;
  std::string serial;           // hex
  std::int64_t not_before = 0;  // seconds since the epoch
  std::int64_t not_after = 0;
  bool is_ca = false;  // basicConstraints CA, or a v1 self-signed root
  // Its extended key usage allows S/MIME (emailProtection or anyExtendedKeyUsage), or it has
  // none (then any use is allowed, RFC 5280 section 4.2.1.12).
  bool for_email = true;
  // Addresses the certificate names, in order: SAN rfc822Name, SAN SmtpUTF8Mailbox
  // (RFC 8398), then the subject's legacy emailAddress attributes. As written in the
  // certificate; compare with certificate_names().
  std::vector<std::string> emails;
  // Input that was an S/MIME signed mail (RFC 8551): on the certificate whose key made the
  // mail's verified signature, the mail's From address as written there (an addr-spec); empty
  // on every other certificate. See mail_signer().
  std::string signed_mail_from;
};

// Default cap on one input (file or stdin): far above any real certificate bundle.
inline constexpr std::size_t kDefaultMaxInputBytes = 1024 * 1024;

// Parses every certificate in input: PEM (one or several CERTIFICATE or PKCS7 blocks), DER
// certificate, DER PKCS#7 (SignedData certificates), or an S/MIME signed mail (multipart/signed
// or application/pkcs7-mime signed-data, CMS or PKCS#7). source names the input in messages.
// Refuses, with one line, private keys, certificate requests, empty input, input larger than
// max_bytes and anything that is not a certificate. Returns at least one certificate on success.
//
// A signed mail must have one signature, good over the message as it came (the signer's
// issuer is not checked), the signer's certificate among its certificates, and one From
// address. The signer's certificate comes first, with signed_mail_from set; the mail's other
// certificates follow, as its chain. An encrypted mail is refused: it carries no certificate.
Result<std::vector<Certificate>> parse_certificates(std::string_view input, std::string_view source,
                                                    std::size_t max_bytes = kDefaultMaxInputBytes);

// RFC 6698 section 2.1: the certificate or its SPKI (selector), as is or hashed (matching type).
Bytes compute_association(const Certificate& cert, Selector selector, MatchingType matching_type);

// True if the certificate names addr: domains compared in A-label form, local-parts ignoring
// ASCII letter case (a mailbox, README "Mailbox case") or, with case_sensitive, exactly.
bool certificate_names(const Certificate& cert, const MailAddress& addr,
                       bool case_sensitive = false);

// Validates association data as it would be published: digest lengths (32 / 64 octets) and,
// for matching type 0, that selector 0 data is a certificate and selector 1 data an SPKI.
Status check_association_data(const RecordParams& params, const Bytes& data);

// A time as ISO 8601 UTC, e.g. "2027-01-31T12:00:00Z" (validity dates in messages).
std::string format_time(std::int64_t epoch_seconds);

// The certificate that signed the mail certs were parsed from (the one with signed_mail_from
// set), or nullptr if they did not come from a signed mail.
const Certificate* mail_signer(const std::vector<Certificate>& certs);

// Why a signed mail may not publish certificates for addr, or "" if it may: its signer's
// certificate must name addr and its From must be addr, local-parts compared as in
// certificate_names(). E.g. "the mail is signed by a certificate for bob@example.com, not
// alice@example.com", "the mail's From is bob@example.com, not alice@example.com".
std::string signed_mail_refusal(const Certificate& signer, const MailAddress& addr,
                                bool case_sensitive = false);

// The addresses of a mail's From fields (RFC 5322 section 3.6.2), in order, as addr-specs:
// display names, comments and angle brackets removed, groups opened, white space outside
// quotes dropped ("\"Alice Example\" <alice@example.com>" gives "alice@example.com"). mail is
// the message or its header section, which ends at the first empty line; folded lines are
// unfolded. Nothing is validated: an element that is not an address is returned as it is.
std::vector<std::string> mail_from_addresses(std::string_view mail);

// Parses a DER certificate (as published in a 3 0 0 record).
Result<Certificate> parse_der_certificate(const Bytes& der);

}  // namespace smimea

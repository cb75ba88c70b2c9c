// What the certificate parsers share inside the core: cert_parse.cc reads certificates and
// their encodings, signed_mail.cc reads S/MIME mails. Not part of the public API.
#pragma once

#include <openssl/x509.h>

#include <string_view>
#include <vector>

#include "smimea/cert.h"

namespace smimea::detail {

// The plain Certificate of x (cert_parse.cc). source names the input in messages.
Result<Certificate> certificate_from_x509(X509* x, std::string_view source);

// Whether input starts like a mail (a header field) and names PKCS#7 / CMS content: an S/MIME
// message, signed or encrypted (signed_mail.cc).
bool looks_like_smime_mail(std::string_view input);

// Whether input starts like a mail (a header field) and has a From field: a mail, which, if
// it is not an S/MIME one, carries no certificate (signed_mail.cc).
bool looks_like_mail(std::string_view input);

// The certificates of an S/MIME signed mail, signer first (see parse_certificates()), appended
// to *out; nothing is appended on failure (signed_mail.cc).
Status parse_signed_mail(std::string_view input, std::string_view source,
                         std::vector<Certificate>* out);

}  // namespace smimea::detail

// Certificates out: the association data of RFC 6698 section 2.1, whether a certificate
// names an address, and the check of association data as it would be published.
#include "smimea/cert.h"

#include <openssl/sha.h>
#include <openssl/x509.h>

#include <ctime>

#include "openssl_util.h"

namespace smimea {

using detail::drain_openssl_errors;
using detail::EvpPkeyPtr;
using detail::X509Ptr;

Bytes compute_association(const Certificate& cert, Selector selector, MatchingType matching_type) {
  const Bytes& input = selector == Selector::kFullCert ? cert.der : cert.spki;
  switch (matching_type) {
    case MatchingType::kExact:
      return input;
    case MatchingType::kSha256: {
      Bytes out(SHA256_DIGEST_LENGTH);
      detail::sha2(detail::Sha2::k256, input.data(), input.size(), out.data());
      return out;
    }
    case MatchingType::kSha512: {
      Bytes out(SHA512_DIGEST_LENGTH);
      detail::sha2(detail::Sha2::k512, input.data(), input.size(), out.data());
      return out;
    }
  }
  return {};
}

bool certificate_names(const Certificate& cert, const MailAddress& addr, bool case_sensitive) {
  for (const std::string& email : cert.emails) {
    auto parsed = parse_address(email);
    if (!parsed.ok() || parsed->domain != addr.domain) continue;
    if (case_sensitive ? parsed->local_part == addr.local_part
                       : iequals(parsed->local_part, addr.local_part)) {
      return true;
    }
  }
  return false;
}

Status check_association_data(const RecordParams& params, const Bytes& data) {
  switch (params.matching_type) {
    case MatchingType::kSha256:
      if (data.size() != SHA256_DIGEST_LENGTH) {
        return Status::invalid_argument("association data", "SHA2-256 digest must be 32 octets");
      }
      return Status();
    case MatchingType::kSha512:
      if (data.size() != SHA512_DIGEST_LENGTH) {
        return Status::invalid_argument("association data", "SHA2-512 digest must be 64 octets");
      }
      return Status();
    case MatchingType::kExact:
      break;
  }
  if (params.selector == Selector::kFullCert) {
    const unsigned char* c = data.data();
    X509Ptr x(d2i_X509(nullptr, &c, static_cast<long>(data.size())));  // NOLINT
    drain_openssl_errors();
    if (!x || c != data.data() + data.size()) {
      return Status::invalid_argument("association data", "not a DER certificate");
    }
    return Status();
  }
  const unsigned char* p = data.data();
  EvpPkeyPtr key(d2i_PUBKEY(nullptr, &p, static_cast<long>(data.size())));  // NOLINT
  drain_openssl_errors();
  if (!key || p != data.data() + data.size()) {
    return Status::invalid_argument("association data", "not a DER SubjectPublicKeyInfo");
  }
  return Status();
}

std::string format_time(std::int64_t epoch_seconds) {
  const auto t = static_cast<std::time_t>(epoch_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace smimea

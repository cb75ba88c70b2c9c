// Fuzzes certificate input (PEM, DER, PKCS#7, signed mails): any bytes give certificates or one
// error, and every parsed certificate yields association data for all selector/matching
// combinations. A mail's From field is read from any bytes without failing.
#include <cassert>
#include <cstdint>
#include <string>
#include <string_view>

#include "smimea/cert.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  for ([[maybe_unused]] const std::string& from : smimea::mail_from_addresses(input)) {
    assert(!from.empty());
  }
  auto certs = smimea::parse_certificates(input, "fuzz", 1 << 20);
  if (!certs.ok()) {
    assert(!certs.status().message().empty());
    return 0;
  }
  for (const smimea::Certificate& c : *certs) {
    for (auto s : {smimea::Selector::kFullCert, smimea::Selector::kSpki}) {
      for (auto m : {smimea::MatchingType::kExact, smimea::MatchingType::kSha256,
                     smimea::MatchingType::kSha512}) {
        const smimea::Bytes d = smimea::compute_association(c, s, m);
        assert(smimea::check_association_data({smimea::Usage::kDaneEe, s, m}, d).ok());
      }
    }
  }
  return 0;
}

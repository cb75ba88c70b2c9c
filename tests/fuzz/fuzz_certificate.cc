// Fuzzes certificate input (PEM, DER, PKCS#7): any bytes give certificates or one error, and
// every parsed certificate yields association data for all selector/matching combinations.
#include <cassert>
#include <cstdint>
#include <string_view>

#include "smimea/cert.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
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

// Fuzzes the query hot path's name parsing: parse_owner_qname and the Answerer-independent
// helpers must accept any bytes without crashing, and agree with each other.
#include <cassert>
#include <cstdint>
#include <string_view>

#include "smimea/hex.h"
#include "smimea/owner_name.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view qname(reinterpret_cast<const char*>(data), size);
  smimea::OwnerHash hash{};
  std::string_view rest;
  if (smimea::parse_owner_qname(qname, &hash, &rest)) {
    // What was parsed must round-trip: the hash's hex is the first label, in any case.
    const std::string hex = smimea::to_hex(hash);
    assert(smimea::iequals(std::string_view(hex), qname.substr(0, hex.size())));
    assert(
        smimea::iequals(rest.substr(0, smimea::kSmimecertLabel.size()), smimea::kSmimecertLabel));
  }
  (void)smimea::normalize_domain(qname, /*allow_underscore=*/true);
  return 0;
}

// Fuzzes email address parsing (quoted local-parts, UTF-8, NFC, IDNA). A parsed address must
// print back to something that parses to the same address.
#include <cassert>
#include <cstdint>
#include <string_view>

#include "smimea/owner_name.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto addr = smimea::parse_address(text);
  if (!addr.ok()) return 0;
  auto again = smimea::parse_address(addr->to_string());
  assert(again.ok());
  assert(again->local_part == addr->local_part && again->domain == addr->domain);
  (void)smimea::owner_hashes_for(*addr, true);
  return 0;
}

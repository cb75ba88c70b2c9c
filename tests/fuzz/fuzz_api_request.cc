// Fuzzes smimea-api's request bodies: any bytes give a publish or zone request or one error,
// never an exception, a crash or unbounded recursion (deep nesting is refused as it is read).
#include <cstdint>
#include <string_view>

#include "api_json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto json = smimea::api::parse_body(body);
  if (!json.ok()) return 0;
  auto publish = smimea::api::parse_publish(*json, "fuzz");
  if (publish.ok() && publish->options.ttl && *publish->options.ttl > smimea::kMaxTtl) {
    __builtin_trap();
  }
  (void)smimea::api::parse_zone(*json);
  (void)smimea::api::dump(*json);
  return 0;
}

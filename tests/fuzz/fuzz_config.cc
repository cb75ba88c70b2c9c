// Fuzzes the YAML configuration: any text gives a Config or one error, never an exception.
#include <cstdint>
#include <string>

#include "smimea/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = smimea::parse_config(text, "fuzz.yaml");
  if (config.ok() && config->database.empty()) __builtin_trap();
  return 0;
}

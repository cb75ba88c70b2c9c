// Lower-case hexadecimal encoding and decoding. Stateless, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "smimea/types.h"

namespace smimea {

// Appends the lower-case hex form of data[0..size) to out.
void append_hex(std::string& out, const std::uint8_t* data, std::size_t size);

inline std::string to_hex(const std::uint8_t* data, std::size_t size) {
  std::string out;
  append_hex(out, data, size);
  return out;
}
template <class Container>
std::string to_hex(const Container& c) {
  return to_hex(c.data(), c.size());
}

// Value of one hex digit (either case), or -1.
inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes exactly 2*size hex digits (either case) into out[0..size). Returns false, leaving
// out unspecified, if text has another length or a non-hex character.
bool decode_hex(std::string_view text, std::uint8_t* out, std::size_t size);

// Decodes any even-length hex string; nullopt-like empty result is signalled by returning false.
bool decode_hex(std::string_view text, Bytes* out);

}  // namespace smimea

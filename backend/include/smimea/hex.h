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

namespace detail {
// kHexValue[c]: the value of hex digit c (either case), or -1. A table: owner names are
// decoded on every query.
struct HexTable {
  signed char value[256];
  constexpr HexTable() : value() {
    for (int c = 0; c < 256; ++c) {
      value[c] = c >= '0' && c <= '9'   ? static_cast<signed char>(c - '0')
                 : c >= 'a' && c <= 'f' ? static_cast<signed char>(c - 'a' + 10)
                 : c >= 'A' && c <= 'F' ? static_cast<signed char>(c - 'A' + 10)
                                        : -1;
    }
  }
};
inline constexpr HexTable kHexValue{};
}  // namespace detail

// Value of one hex digit (either case), or -1.
inline int hex_value(char c) { return detail::kHexValue.value[static_cast<unsigned char>(c)]; }

// Decodes exactly 2*size hex digits (either case) into out[0..size). Returns false, leaving
// out unspecified, if text has another length or a non-hex character.
bool decode_hex(std::string_view text, std::uint8_t* out, std::size_t size);

// Decodes any even-length hex string; nullopt-like empty result is signalled by returning false.
bool decode_hex(std::string_view text, Bytes* out);

}  // namespace smimea

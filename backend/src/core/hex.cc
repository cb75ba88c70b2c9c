#include "smimea/hex.h"

#include <cstring>

namespace smimea {

namespace {

// The two digits of every byte value: one copy per byte (every answer of the remote backend
// carries its records' data in hex).
struct HexPairs {
  char digits[256][2];
  constexpr HexPairs() : digits() {
    constexpr char kDigits[] = "0123456789abcdef";
    for (int b = 0; b < 256; ++b) {
      digits[b][0] = kDigits[b >> 4];
      digits[b][1] = kDigits[b & 0x0f];
    }
  }
};
constexpr HexPairs kHexPairs{};

}  // namespace

void append_hex(std::string& out, const std::uint8_t* data, std::size_t size) {
  const std::size_t start = out.size();
  out.resize(start + 2 * size);
  char* p = &out[start];
  for (std::size_t i = 0; i < size; ++i, p += 2) std::memcpy(p, kHexPairs.digits[data[i]], 2);
}

bool decode_hex(std::string_view text, std::uint8_t* out, std::size_t size) {
  if (text.size() != 2 * size) return false;
  int bad = 0;  // one test at the end: a lookup decodes 56 digits per question
  for (std::size_t i = 0; i < size; ++i) {
    const int hi = hex_value(text[2 * i]);
    const int lo = hex_value(text[2 * i + 1]);
    bad |= hi | lo;
    out[i] =
        static_cast<std::uint8_t>((static_cast<unsigned>(hi) << 4) | static_cast<unsigned>(lo));
  }
  return bad >= 0;
}

bool decode_hex(std::string_view text, Bytes* out) {
  if (text.size() % 2 != 0) return false;
  Bytes bytes(text.size() / 2);
  if (!decode_hex(text, bytes.data(), bytes.size())) return false;
  *out = std::move(bytes);
  return true;
}

}  // namespace smimea

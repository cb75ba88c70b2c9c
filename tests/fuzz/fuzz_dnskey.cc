// Fuzzes the PowerDNS private key text (the ISC "Private-key-format" lines of domain_keys.content):
// the first 2 bytes are the DNSKEY flags, the rest is the text. Any input gives a DNSKEY RDATA
// or one error whose message carries no key material; a DNSKEY RDATA has the flags, protocol 3,
// a supported algorithm and a public key of that algorithm's size, and gives a key tag and a
// DS whose fields agree with it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "smimea/dnskey.h"

namespace {

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// The longest run of base64 characters in s. The parser's own messages have none longer than
// 15 ("PrivateExponent"): a longer one would be a value copied from the key text.
std::size_t longest_base64_run(std::string_view s) {
  std::size_t longest = 0;
  std::size_t run = 0;
  for (char c : s) {
    run = is_base64_char(c) ? run + 1 : 0;
    if (run > longest) longest = run;
  }
  return longest;
}

bool is_lower_hex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// The size of the public key in a DNSKEY of algorithm, or 0 for RSA (variable).
std::size_t public_key_size(std::uint8_t algorithm) {
  switch (algorithm) {
    case 13:
      return 64;  // ECDSAP256SHA256: X | Y (RFC 6605)
    case 14:
      return 96;  // ECDSAP384SHA384
    case 15:
      return 32;  // ED25519 (RFC 8080)
    case 16:
      return 57;  // ED448
    default:
      return 0;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const auto flags = static_cast<std::uint16_t>((data[0] << 8) | data[1]);
  const std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);
  auto rdata = smimea::dnskey_rdata(flags, text);
  if (!rdata.ok()) {
    const std::string& message = rdata.status().message();
    if (message.empty() || longest_base64_run(message) > 15) __builtin_trap();
    return 0;
  }
  const smimea::Bytes& r = *rdata;
  if (r.size() < 4 || r.size() > 65535) __builtin_trap();
  if (r[0] != (flags >> 8) || r[1] != (flags & 0xff) || r[2] != 3) __builtin_trap();
  const std::uint8_t algorithm = r[3];
  switch (algorithm) {
    case 5:
    case 7:
    case 8:
    case 10:
      // RSA (RFC 3110): an exponent length, a non-empty exponent and a non-empty modulus.
      if (r.size() < 4 + 1 + 1 + 1) __builtin_trap();
      break;
    case 13:
    case 14:
    case 15:
    case 16:
      if (r.size() != 4 + public_key_size(algorithm)) __builtin_trap();
      break;
    default:
      __builtin_trap();
  }

  const std::uint16_t tag = smimea::key_tag(r);
  auto ds = smimea::ds_content("example.com", r);
  if (!ds.ok()) __builtin_trap();
  // "<key tag> <algorithm> 2 <64 lower-case hex digits>"
  const std::string prefix =
      std::to_string(tag) + " " + std::to_string(static_cast<unsigned>(algorithm)) + " 2 ";
  const std::string_view d(*ds);
  if (d.size() != prefix.size() + 64 || d.substr(0, prefix.size()) != prefix ||
      !is_lower_hex(d.substr(prefix.size()))) {
    __builtin_trap();
  }
  return 0;
}

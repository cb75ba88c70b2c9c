#include "smimea/dnskey.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <limits>
#include <optional>
#include <utility>

#include "openssl_util.h"
#include "smimea/hex.h"
#include "smimea/nsec.h"

namespace smimea {
namespace {

using detail::drain_openssl_errors;
using detail::EvpPkeyPtr;
using detail::OsslPtr;
using BnPtr = OsslPtr<BIGNUM, BN_clear_free>;
using BnCtxPtr = OsslPtr<BN_CTX, BN_CTX_free>;
using EcGroupPtr = OsslPtr<EC_GROUP, EC_GROUP_free>;
using EcPointPtr = OsslPtr<EC_POINT, EC_POINT_free>;

constexpr std::string_view kWhat = "private key";
constexpr std::uint8_t kProtocol = 3;         // RFC 4034 section 2.1.2
constexpr std::size_t kMaxRdataLen = 65535;   // RDLENGTH is 16 bits
constexpr std::size_t kMaxWireNameLen = 255;  // RFC 1035 section 3.1
constexpr std::uint32_t kSepFlags = 257;      // pdns: hasSEPBit = (flags == 257)

// The fields of the key text that matter here (names as pdns's makeFromISCString knows them).
enum Field : std::size_t {
  kAlgorithm,
  kModulus,
  kPublicExponent,
  kPrivateExponent,
  kPrime1,
  kPrime2,
  kExponent1,
  kExponent2,
  kCoefficient,
  kPrivateKey,
  kEngine,
  kFieldCount,
};
constexpr std::array<std::string_view, kFieldCount> kFieldNames = {
    "Algorithm", "Modulus",   "PublicExponent", "PrivateExponent", "Prime1", "Prime2",
    "Exponent1", "Exponent2", "Coefficient",    "PrivateKey",      "Engine",
};

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto x = static_cast<unsigned char>(a[i]);
    auto y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x = static_cast<unsigned char>(x + ('a' - 'A'));
    if (y >= 'A' && y <= 'Z') y = static_cast<unsigned char>(y + ('a' - 'A'));
    if (x != y) return false;
  }
  return true;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// The key text split into fields, viewing the caller's text (nothing secret is copied).
// Like pdns: the key is everything before the first ':' (not trimmed), the value is trimmed,
// a later line wins over an earlier one, and unknown keys are ignored.
struct IscKey {
  std::array<std::optional<std::string_view>, kFieldCount> fields;

  explicit IscKey(std::string_view text) {
    while (!text.empty()) {
      const std::size_t eol = text.find('\n');
      const std::string_view line = text.substr(0, eol);
      text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
      const std::size_t colon = line.find(':');
      const std::string_view key = line.substr(0, colon);
      const std::string_view value =
          colon == std::string_view::npos ? std::string_view() : trim(line.substr(colon + 1));
      for (std::size_t f = 0; f < kFieldCount; ++f) {
        if (equals_ignoring_case(key, kFieldNames[f])) fields[f] = value;
      }
    }
  }
  bool has(Field f) const { return fields[f].has_value(); }
};

// Decoded bytes that are wiped when they go away. The buffer is sized once, before decoding,
// so no copy of the secret is left behind by a reallocation.
class SecretBytes {
 public:
  SecretBytes() = default;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes() { OPENSSL_cleanse(buf_.data(), buf_.size()); }

  // Wipes the old contents and makes room for capacity bytes.
  unsigned char* reset(std::size_t capacity) {
    OPENSSL_cleanse(buf_.data(), buf_.size());
    buf_.assign(capacity, 0);
    size_ = 0;
    return buf_.data();
  }
  void set_size(std::size_t size) { size_ = std::min(size, buf_.size()); }
  const unsigned char* data() const { return buf_.data(); }
  std::size_t size() const { return size_; }

 private:
  std::vector<unsigned char> buf_;
  std::size_t size_ = 0;
};

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// Decodes field f: RFC 4648 base64 with padding, as pdns writes it. Messages name the field,
// never its value.
Status decode_field(const IscKey& key, Field f, SecretBytes* out) {
  if (!key.has(f)) return Status::invalid_argument(kWhat, "no " + std::string(kFieldNames[f]));
  const std::string_view text = *key.fields[f];
  const auto bad = [f] {
    return Status::invalid_argument(kWhat, std::string(kFieldNames[f]) + " is not valid base64");
  };
  if (text.empty() || text.size() % 4 != 0) return bad();
  std::size_t padding = 0;
  while (padding < 2 && text[text.size() - 1 - padding] == '=') ++padding;
  if (!std::all_of(text.begin(), text.end() - static_cast<std::ptrdiff_t>(padding),
                   is_base64_char)) {
    return bad();
  }
  if (text.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) return bad();
  unsigned char* buf = out->reset(text.size() / 4 * 3);
  // EVP_DecodeBlock decodes the padding as zero octets and counts them: drop them.
  const int n = EVP_DecodeBlock(buf, reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0 || static_cast<std::size_t>(n) < padding) {
    drain_openssl_errors();
    return bad();
  }
  out->set_size(static_cast<std::size_t>(n) - padding);
  return Status();
}

// The algorithm number at the start of the Algorithm value ("13 (ECDSAP256SHA256)"), as pdns
// reads it with stoi.
Result<std::uint8_t> parse_algorithm(const IscKey& key) {
  if (!key.has(kAlgorithm)) return Status::invalid_argument(kWhat, "no Algorithm");
  const std::string_view text = *key.fields[kAlgorithm];
  unsigned value = 0;
  std::size_t digits = 0;
  for (; digits < text.size() && text[digits] >= '0' && text[digits] <= '9'; ++digits) {
    value = value * 10 + static_cast<unsigned>(text[digits] - '0');
    if (value > 255) return Status::invalid_argument(kWhat, "Algorithm is not a number 0-255");
  }
  if (digits == 0) return Status::invalid_argument(kWhat, "Algorithm is not a number 0-255");
  return static_cast<std::uint8_t>(value);
}

// BN_bn2bin's form of a big-endian number: no leading zero octets.
std::pair<const unsigned char*, std::size_t> strip_leading_zeros(const SecretBytes& b) {
  std::size_t skip = 0;
  while (skip < b.size() && b.data()[skip] == 0) ++skip;
  return {b.data() + skip, b.size() - skip};
}

// RFC 3110 section 2: exponent length, exponent, modulus. pdns (getPublicKeyString) writes the
// one-octet length only below 255, where the RFC allows 255 too; its DNSKEY is the one our DS
// must match, so its cut-off is used.
Status append_rsa_public_key(const IscKey& key, Bytes* rdata) {
  // pdns's RSA engine reads all eight fields and cannot load a key without one of them. The
  // private ones are only checked, then wiped.
  SecretBytes scratch;
  for (Field f : {kPrivateExponent, kPrime1, kPrime2, kExponent1, kExponent2, kCoefficient}) {
    SMIMEA_RETURN_IF_ERROR(decode_field(key, f, &scratch));
  }
  SecretBytes modulus_field;
  SecretBytes exponent_field;
  SMIMEA_RETURN_IF_ERROR(decode_field(key, kModulus, &modulus_field));
  SMIMEA_RETURN_IF_ERROR(decode_field(key, kPublicExponent, &exponent_field));
  const auto [modulus, modulus_len] = strip_leading_zeros(modulus_field);
  const auto [exponent, exponent_len] = strip_leading_zeros(exponent_field);
  if (modulus_len == 0) return Status::invalid_argument(kWhat, "Modulus is zero");
  if (exponent_len == 0) return Status::invalid_argument(kWhat, "PublicExponent is zero");
  if (exponent_len > 0xffff || rdata->size() + 3 + exponent_len + modulus_len > kMaxRdataLen) {
    return Status::invalid_argument(kWhat, "RSA key too large for a DNSKEY");
  }
  if (exponent_len < 255) {
    rdata->push_back(static_cast<std::uint8_t>(exponent_len));
  } else {
    rdata->push_back(0);
    rdata->push_back(static_cast<std::uint8_t>(exponent_len >> 8));
    rdata->push_back(static_cast<std::uint8_t>(exponent_len & 0xff));
  }
  rdata->insert(rdata->end(), exponent, exponent + exponent_len);
  rdata->insert(rdata->end(), modulus, modulus + modulus_len);
  return Status();
}

// RFC 6605 section 4: the public point Q = d*G as X | Y, each coordinate field_len octets
// (SEC1's uncompressed form without its leading 0x04).
Status append_ecdsa_public_key(const IscKey& key, int curve_nid, std::size_t field_len,
                               Bytes* rdata) {
  SecretBytes scalar;
  SMIMEA_RETURN_IF_ERROR(decode_field(key, kPrivateKey, &scalar));
  const auto failed = [](std::string_view why) {
    drain_openssl_errors();
    return Status::invalid_argument(kWhat, why);
  };
  const EcGroupPtr group(EC_GROUP_new_by_curve_name(curve_nid));
  const BnCtxPtr ctx(BN_CTX_new());
  const BnPtr d(BN_secure_new());  // cleared on free; the secure heap when one is set up
  const EcPointPtr q(group ? EC_POINT_new(group.get()) : nullptr);
  if (!group || !ctx || !d || !q) return failed("out of memory");
  if (BN_bin2bn(scalar.data(), static_cast<int>(scalar.size()), d.get()) == nullptr) {
    return failed("PrivateKey is not a number");
  }
  // pdns accepts any length and lets OpenSSL judge the scalar; a valid one is in [1, n-1].
  if (BN_is_zero(d.get()) || BN_cmp(d.get(), EC_GROUP_get0_order(group.get())) >= 0) {
    return failed("PrivateKey is out of range for the curve");
  }
  BN_set_flags(d.get(), BN_FLG_CONSTTIME);
  if (EC_POINT_mul(group.get(), q.get(), d.get(), nullptr, nullptr, ctx.get()) != 1) {
    return failed("cannot derive the public key");
  }
  std::array<unsigned char, 1 + 2 * 66> point{};
  const std::size_t len = EC_POINT_point2oct(group.get(), q.get(), POINT_CONVERSION_UNCOMPRESSED,
                                             point.data(), point.size(), ctx.get());
  if (len != 1 + 2 * field_len || point[0] != POINT_CONVERSION_UNCOMPRESSED) {
    return failed("cannot encode the public key");
  }
  rdata->insert(rdata->end(), point.begin() + 1, point.begin() + static_cast<std::ptrdiff_t>(len));
  return Status();
}

// RFC 8080 section 3: the raw public key of the private key (a seed of key_len octets).
Status append_eddsa_public_key(const IscKey& key, int pkey_type, std::size_t key_len,
                               Bytes* rdata) {
  SecretBytes seed;
  SMIMEA_RETURN_IF_ERROR(decode_field(key, kPrivateKey, &seed));
  if (seed.size() != key_len) {
    return Status::invalid_argument(kWhat, "PrivateKey has " + std::to_string(seed.size()) +
                                               " octets, not " + std::to_string(key_len));
  }
  const EvpPkeyPtr pkey(EVP_PKEY_new_raw_private_key(pkey_type, nullptr, seed.data(), seed.size()));
  std::array<unsigned char, 57> pub{};
  std::size_t len = pub.size();
  if (!pkey || EVP_PKEY_get_raw_public_key(pkey.get(), pub.data(), &len) != 1 || len != key_len) {
    drain_openssl_errors();
    return Status::invalid_argument(kWhat, "cannot derive the public key");
  }
  rdata->insert(rdata->end(), pub.begin(), pub.begin() + static_cast<std::ptrdiff_t>(len));
  return Status();
}

// The apex in canonical wire form (RFC 4034 section 6.2): length-prefixed labels, ASCII
// letters lower-cased, the root label last.
Result<Bytes> canonical_wire_name(std::string_view name) {
  auto labels = split_name(name);
  if (!labels.ok()) return labels.status();
  Bytes wire;
  for (const std::string& label : *labels) {
    wire.push_back(static_cast<std::uint8_t>(label.size()));
    for (char c : label) {
      auto b = static_cast<std::uint8_t>(c);
      if (b >= 'A' && b <= 'Z') b = static_cast<std::uint8_t>(b + ('a' - 'A'));
      wire.push_back(b);
    }
  }
  wire.push_back(0);
  if (wire.size() > kMaxWireNameLen) return Status::invalid_argument(name, "name over 255 octets");
  return wire;
}

Result<std::string> ds_for_wire_name(const Bytes& owner, const Bytes& rdata) {
  if (rdata.size() < 4) return Status::invalid_argument("dnskey", "RDATA shorter than 4 octets");
  Bytes data;
  data.reserve(owner.size() + rdata.size());
  data.insert(data.end(), owner.begin(), owner.end());
  data.insert(data.end(), rdata.begin(), rdata.end());
  std::array<std::uint8_t, 32> digest{};
  detail::sha2(detail::Sha2::k256, data.data(), data.size(), digest.data());
  std::string out = std::to_string(key_tag(rdata));
  out += ' ';
  out += std::to_string(rdata[3]);
  out += " 2 ";
  append_hex(out, digest.data(), digest.size());
  return out;
}

}  // namespace

Result<Bytes> dnskey_rdata(std::uint16_t flags, std::string_view private_key_text) {
  const IscKey key(private_key_text);
  // pdns hands a key with an Engine line to its PKCS#11 engine: the key lives in a token.
  if (key.has(kEngine)) {
    return Status::invalid_argument(kWhat, "PKCS#11 key (Engine): the public key is in the token");
  }
  auto algorithm = parse_algorithm(key);
  if (!algorithm.ok()) return algorithm.status();
  Bytes rdata = {static_cast<std::uint8_t>(flags >> 8), static_cast<std::uint8_t>(flags & 0xff),
                 kProtocol, *algorithm};
  Status status;
  switch (*algorithm) {
    case 5:   // RSASHA1
    case 7:   // RSASHA1-NSEC3-SHA1
    case 8:   // RSASHA256
    case 10:  // RSASHA512
      status = append_rsa_public_key(key, &rdata);
      break;
    case 13:  // ECDSAP256SHA256
      status = append_ecdsa_public_key(key, NID_X9_62_prime256v1, 32, &rdata);
      break;
    case 14:  // ECDSAP384SHA384
      status = append_ecdsa_public_key(key, NID_secp384r1, 48, &rdata);
      break;
    case 15:  // ED25519
      status = append_eddsa_public_key(key, EVP_PKEY_ED25519, 32, &rdata);
      break;
    case 16:  // ED448
      status = append_eddsa_public_key(key, EVP_PKEY_ED448, 57, &rdata);
      break;
    default:
      return Status::invalid_argument(
          kWhat, "algorithm " + std::to_string(*algorithm) + " is not supported");
  }
  if (!status.ok()) return status;
  return rdata;
}

std::uint16_t key_tag(const Bytes& dnskey_rdata) {
  // RFC 4034 Appendix B, with a 64-bit accumulator so that no input can overflow it.
  std::uint64_t ac = 0;
  for (std::size_t i = 0; i < dnskey_rdata.size(); ++i) {
    ac += (i & 1) != 0 ? dnskey_rdata[i] : static_cast<std::uint64_t>(dnskey_rdata[i]) << 8;
  }
  ac += (ac >> 16) & 0xffff;
  return static_cast<std::uint16_t>(ac & 0xffff);
}

Result<std::string> ds_content(std::string_view zone_apex, const Bytes& dnskey_rdata) {
  auto owner = canonical_wire_name(zone_apex);
  if (!owner.ok()) return owner.status();
  return ds_for_wire_name(*owner, dnskey_rdata);
}

Result<std::vector<std::string>> delegation_ds(std::string_view child_apex,
                                               const std::vector<DomainKey>& keys,
                                               std::vector<std::string>* notes) {
  auto owner = canonical_wire_name(child_apex);
  if (!owner.ok()) return owner.status();

  struct Usable {
    const DomainKey* key;
    Bytes rdata;
  };
  std::vector<Usable> usable;
  usable.reserve(keys.size());
  const auto skip = [notes](const DomainKey& key, std::string_view why) {
    if (notes != nullptr)
      notes->push_back("key " + std::to_string(key.id) + ": " + std::string(why));
  };
  for (const DomainKey& key : keys) {
    if (key.flags > 0xffff) {
      skip(key, "flags " + std::to_string(key.flags) + " do not fit a DNSKEY");
      continue;
    }
    auto rdata = dnskey_rdata(static_cast<std::uint16_t>(key.flags), key.content);
    if (!rdata.ok()) {
      skip(key, rdata.status().message());
      continue;
    }
    usable.push_back({&key, std::move(rdata).value()});
  }

  // DNSSECKeeper::isSecuredZone: pdns signs the child only if some key is active.
  const bool secured =
      std::any_of(usable.begin(), usable.end(), [](const Usable& u) { return u.key->active; });
  if (!secured) return std::vector<std::string>();

  // DNSSECKeeper::getKeys: an algorithm has a KSK/ZSK split when it has both an active SEP
  // key and an active non-SEP key; every key of any other algorithm is a CSK.
  std::array<bool, 256> has_sep{};
  std::array<bool, 256> has_non_sep{};
  for (const Usable& u : usable) {
    if (!u.key->active) continue;
    (u.key->flags == kSepFlags ? has_sep : has_non_sep)[u.rdata[3]] = true;
  }
  std::vector<std::string> ds_set;
  for (const Usable& u : usable) {
    const std::uint8_t algorithm = u.rdata[3];
    const bool csk = !(has_sep[algorithm] && has_non_sep[algorithm]);
    const bool ksk = u.key->flags == kSepFlags;
    // PacketHandler::addCDS: entry points (KSK, CSK) that are published.
    if (!u.key->published || !(csk || ksk)) continue;
    auto ds = ds_for_wire_name(*owner, u.rdata);
    if (!ds.ok()) return ds.status();
    if (std::find(ds_set.begin(), ds_set.end(), *ds) == ds_set.end()) {
      ds_set.push_back(std::move(ds).value());
    }
  }
  return ds_set;
}

}  // namespace smimea

// The provisioning service's API tokens: created with a secret from the CSPRNG that only the
// caller sees, stored as its SHA2-256, checked in constant time.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <ctime>

#include "openssl_util.h"
#include "smimea/network.h"
#include "smimea/owner_name.h"
#include "smimea/provision.h"

namespace smimea {
namespace {

constexpr std::string_view kSecretPrefix = "smimea_";
constexpr std::size_t kSecretBytes = 32;  // 256 bits
constexpr std::size_t kMaxNameLength = 64;

std::array<std::uint8_t, 32> sha256(std::string_view text) {
  std::array<std::uint8_t, 32> out{};
  detail::sha2(detail::Sha2::k256, text.data(), text.size(), out.data());
  return out;
}

// base64url without padding (RFC 4648 section 5): a secret that fits in a header, a URL or a
// shell argument without quoting.
std::string base64url(const std::uint8_t* data, std::size_t size) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::uint32_t bits = 0;
  int count = 0;
  for (std::size_t i = 0; i < size; ++i) {
    bits = (bits << 8) | data[i];
    count += 8;
    while (count >= 6) {
      count -= 6;
      out.push_back(kAlphabet[(bits >> count) & 0x3f]);
    }
  }
  if (count > 0) out.push_back(kAlphabet[(bits << (6 - count)) & 0x3f]);
  return out;
}

bool valid_name(std::string_view name) {
  return !name.empty() && name.size() <= kMaxNameLength &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
         });
}

}  // namespace

Result<NewToken> Provisioner::add_token(const TokenRequest& request) {
  if (!valid_name(request.name)) {
    return Status::invalid_argument(request.name,
                                    "a token name is 1 to 64 letters, digits, '.', '_' or '-'");
  }
  if (request.admin && (!request.zones.empty() || !request.addresses.empty())) {
    return Status::invalid_argument(request.name,
                                    "an admin token acts in every zone: give no --zone or "
                                    "--address with --admin");
  }
  if (!request.admin && request.zones.empty() && request.addresses.empty()) {
    return Status::invalid_argument(request.name,
                                    "a token needs a scope: --zone, --address or --admin");
  }
  if (request.expires_days && *request.expires_days <= 0) {
    return Status::invalid_argument(request.name, "--expires-days must be at least 1");
  }
  Token token;
  token.name = request.name;
  token.read_only = request.read_only;
  token.admin = request.admin;
  token.created_by = actor_;
  if (request.expires_days) {
    token.expires_at =
        static_cast<std::int64_t>(std::time(nullptr)) + *request.expires_days * 86400;
  }
  for (const std::string& a : request.addresses) {
    auto addr = parse_address(a);
    if (!addr.ok()) return addr.status();
    token.addresses.push_back(addr->to_string());
  }
  for (const std::string& n : request.networks) {
    auto net = parse_network(n);
    if (!net.ok()) return net.status();
    token.networks.push_back(*net);
  }
  std::uint8_t random[kSecretBytes];
  if (RAND_bytes(random, sizeof random) != 1) {
    return Status::store_error("token", "the random number generator failed");
  }
  NewToken result;
  result.secret = std::string(kSecretPrefix) + base64url(random, sizeof random);
  OPENSSL_cleanse(random, sizeof random);
  token.secret_sha256 = sha256(result.secret);
  const Status s = in_transaction([&]() -> Status {
    for (const std::string& z : request.zones) {
      auto name = normalize_domain(z, /*allow_underscore=*/true);
      if (!name.ok()) return name.status();
      auto zone = store_.find_zone(*name);
      if (!zone.ok()) return zone.status();
      token.zones.push_back(zone->name);
    }
    auto stored = store_.add_token(token);
    if (!stored.ok()) return stored.status();
    result.token = std::move(stored).value();
    return Status();
  });
  if (!s.ok()) {
    OPENSSL_cleanse(result.secret.data(), result.secret.size());
    return s;
  }
  return result;
}

Result<std::vector<Token>> Provisioner::tokens() { return store_.list_tokens(); }

Status Provisioner::remove_token(std::string_view name) {
  return in_transaction([&] { return store_.remove_token(name); });
}

Result<Token> Provisioner::authenticate(std::string_view secret, std::int64_t now,
                                        std::string_view peer) {
  const Status unknown = Status::not_found("token", "unknown or expired token");
  if (secret.substr(0, kSecretPrefix.size()) != kSecretPrefix) return unknown;
  const std::array<std::uint8_t, 32> hash = sha256(secret);
  auto token = store_.find_token(hash);
  if (!token.ok()) return token.status().is_not_found() ? unknown : token.status();
  if (CRYPTO_memcmp(hash.data(), token->secret_sha256.data(), hash.size()) != 0) return unknown;
  if (token->expires_at && *token->expires_at <= now) return unknown;
  if (!token->networks.empty() &&
      std::none_of(token->networks.begin(), token->networks.end(),
                   [&](const std::string& n) { return in_network(peer, n); })) {
    return unknown;
  }
  return token;
}

}  // namespace smimea

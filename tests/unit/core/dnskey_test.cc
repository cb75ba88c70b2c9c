// DNSKEY and DS from PowerDNS's private keys. The known answers in tests/data/keys/ were made
// by pdnsutil (see the README there); the base64 of the DNSKEY lines is decoded by a decoder
// written out below, not by the code under test.
#include "smimea/dnskey.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace smimea {
namespace {

std::string read_key_file(const std::string& name) {
  std::ifstream in(std::string(SMIMEA_TEST_DATA) + "/keys/" + name, std::ios::binary);
  EXPECT_TRUE(in) << name;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Bytes base64_decode(const std::string& text) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  Bytes out;
  unsigned bits = 0;
  int count = 0;
  for (char c : text) {
    if (c == '=') break;
    const std::size_t v = kAlphabet.find(c);
    EXPECT_NE(v, std::string::npos) << text;
    bits = (bits << 6) | static_cast<unsigned>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<std::uint8_t>((bits >> count) & 0xff));
    }
  }
  return out;
}

struct DnskeyLine {
  std::string owner;
  Bytes rdata;
};

// "owner IN DNSKEY flags protocol algorithm base64" as pdnsutil export-zone-dnskey prints it.
DnskeyLine read_dnskey(const std::string& name) {
  const std::vector<std::string> w = words(read_key_file(name + ".dnskey"));
  EXPECT_EQ(w.size(), 7u) << name;
  if (w.size() != 7) return {};
  const auto flags = static_cast<std::uint16_t>(std::stoul(w[3]));
  Bytes rdata = {static_cast<std::uint8_t>(flags >> 8), static_cast<std::uint8_t>(flags & 0xff),
                 static_cast<std::uint8_t>(std::stoul(w[4])),
                 static_cast<std::uint8_t>(std::stoul(w[5]))};
  const Bytes key = base64_decode(w[6]);
  rdata.insert(rdata.end(), key.begin(), key.end());
  return {w[0], rdata};
}

// The "tag algorithm 2 digest" parts of the SHA-256 lines of a pdnsutil export-zone-ds file
// ("owner. IN DS tag algorithm digest-type digest ; ( SHA256 digest )").
std::vector<std::string> read_sha256_ds(const std::string& file) {
  std::istringstream in(read_key_file(file));
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    const std::vector<std::string> w = words(line);
    if (w.size() < 7 || w[2] != "DS" || w[5] != "2") continue;
    out.push_back(w[3] + " " + w[4] + " 2 " + lower(w[6]));
  }
  return out;
}

std::string ds_file_of(const std::string& name) {
  if (name.rfind("rules-", 0) == 0) return "rules.ds";
  return name + ".ds";
}

// The tag pdnsutil show-zone gives the rules.example ZSK ("ID = 10 (ZSK), flags = 256, tag = T,").
std::string pdns_zsk_tag() {
  std::istringstream in(read_key_file("rules.show-zone"));
  const std::string marker = "(ZSK), flags = 256, tag = ";
  for (std::string line; std::getline(in, line);) {
    const std::size_t at = line.find(marker);
    if (at == std::string::npos) continue;
    const std::size_t start = at + marker.size();
    return line.substr(start, line.find(',', start) - start);
  }
  ADD_FAILURE() << "no ZSK in rules.show-zone";
  return "";
}

std::uint16_t flags_of(const Bytes& rdata) {
  return static_cast<std::uint16_t>(rdata[0] << 8 | rdata[1]);
}

// --- known answers, one per algorithm and per key of the rules zone ---

class DnskeyKnownAnswer : public testing::TestWithParam<const char*> {};

TEST_P(DnskeyKnownAnswer, RdataEqualsPdnsDnskey) {
  const std::string name = GetParam();
  const DnskeyLine expected = read_dnskey(name);
  ASSERT_GT(expected.rdata.size(), 4u);
  auto rdata = dnskey_rdata(flags_of(expected.rdata), read_key_file(name + ".private"));
  ASSERT_TRUE(rdata.ok()) << rdata.status().message();
  EXPECT_EQ(*rdata, expected.rdata);
}

TEST_P(DnskeyKnownAnswer, DsEqualsPdnsSha256Ds) {
  const std::string name = GetParam();
  const DnskeyLine dnskey = read_dnskey(name);
  const std::vector<std::string> listed = read_sha256_ds(ds_file_of(name));
  ASSERT_FALSE(listed.empty());
  auto ds = ds_content(dnskey.owner, dnskey.rdata);
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  const std::string ours = lower(*ds);
  // pdnsutil lists no DS for a ZSK next to a KSK of its algorithm.
  if (name == "rules-zsk") {
    EXPECT_EQ(std::count(listed.begin(), listed.end(), ours), 0);
    EXPECT_EQ(ours.substr(0, ours.find(' ')), pdns_zsk_tag());
    return;
  }
  EXPECT_EQ(std::count(listed.begin(), listed.end(), ours), 1) << ours;
}

TEST_P(DnskeyKnownAnswer, KeyTagEqualsPdnsTag) {
  const std::string name = GetParam();
  const DnskeyLine dnskey = read_dnskey(name);
  if (name == "rules-zsk") {
    EXPECT_EQ(std::to_string(key_tag(dnskey.rdata)), pdns_zsk_tag());
    return;
  }
  const std::vector<std::string> listed = read_sha256_ds(ds_file_of(name));
  auto ds = ds_content(dnskey.owner, dnskey.rdata);
  ASSERT_TRUE(ds.ok());
  const auto it = std::find(listed.begin(), listed.end(), lower(*ds));
  ASSERT_NE(it, listed.end());
  EXPECT_EQ(std::to_string(key_tag(dnskey.rdata)), it->substr(0, it->find(' ')));
}

INSTANTIATE_TEST_SUITE_P(DnskeyPdnsutil, DnskeyKnownAnswer,
                         testing::Values("rsasha1", "rsasha1-nsec3-sha1", "rsasha256", "rsasha512",
                                         "ecdsa256", "ecdsa384", "ed25519", "ed448", "rules-ksk",
                                         "rules-zsk", "rules-ksk-inactive", "rules-ksk-unpublished",
                                         "zsk-only"),
                         [](const testing::TestParamInfo<const char*>& param_info) {
                           std::string n = param_info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// --- key text parsing ---

TEST(DnskeyParse, KeysAreCaseInsensitiveAndCrLfIsAccepted) {
  const DnskeyLine expected = read_dnskey("ed25519");
  std::string text = read_key_file("ed25519.private");
  std::string changed;
  for (char c : text) {
    if (c == '\n')
      changed += "\r\n";
    else
      changed += c;
  }
  changed.replace(changed.find("Algorithm"), 9, "aLGORITHM");
  changed.replace(changed.find("PrivateKey"), 10, "privatekey");
  auto rdata = dnskey_rdata(257, changed);
  ASSERT_TRUE(rdata.ok()) << rdata.status().message();
  EXPECT_EQ(*rdata, expected.rdata);
}

TEST(DnskeyParse, FlagsAreTheCallers) {
  const DnskeyLine ksk = read_dnskey("ecdsa256");
  auto rdata = dnskey_rdata(256, read_key_file("ecdsa256.private"));
  ASSERT_TRUE(rdata.ok());
  Bytes expected = ksk.rdata;
  expected[1] = 0;  // 257 -> 256
  EXPECT_EQ(*rdata, expected);
}

// RFC 3110 section 2 with pdns's cut-off (getPublicKeyString): a one-octet exponent length
// below 255, else a zero octet and two length octets. Leading zero octets are not part of
// either number. The private fields only have to be present and base64.
std::string rsa_text(const std::string& exponent_b64, const std::string& modulus_b64) {
  return "Private-key-format: v1.2\nAlgorithm: 8 (RSASHA256)\nModulus: " + modulus_b64 +
         "\nPublicExponent: " + exponent_b64 +
         "\nPrivateExponent: AQ==\nPrime1: AQ==\nPrime2: AQ==\nExponent1: AQ==\n"
         "Exponent2: AQ==\nCoefficient: AQ==\n";
}

std::string base64_of_repeated(std::size_t n, char octet) {
  // n octets of value octet, encoded by hand: every full group of 3 equal octets is 4 chars.
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  const unsigned b = static_cast<unsigned char>(octet);
  for (std::size_t i = 0; i < n; i += 3) {
    const std::size_t left = std::min<std::size_t>(3, n - i);
    const unsigned v = b << 16 | (left > 1 ? b : 0u) << 8 | (left > 2 ? b : 0u);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += left > 1 ? kAlphabet[v >> 6 & 63] : '=';
    out += left > 2 ? kAlphabet[v & 63] : '=';
  }
  return out;
}

TEST(DnskeyRsa, LeadingZerosAreStripped) {
  // exponent 00 01 00 01, modulus 00 00 c5
  auto rdata = dnskey_rdata(257, rsa_text("AAEAAQ==", "AADF"));
  ASSERT_TRUE(rdata.ok()) << rdata.status().message();
  EXPECT_EQ(*rdata, (Bytes{0x01, 0x01, 3, 8, 3, 0x01, 0x00, 0x01, 0xc5}));
}

TEST(DnskeyRsa, ExponentLengthEncoding) {
  struct Case {
    std::size_t exponent_len;
    Bytes prefix;
  };
  for (const Case& c : {Case{254, {254}}, Case{255, {0, 0, 255}}, Case{256, {0, 1, 0}}}) {
    auto rdata = dnskey_rdata(
        257, rsa_text(base64_of_repeated(c.exponent_len, '\x03'), base64_of_repeated(3, '\x07')));
    ASSERT_TRUE(rdata.ok()) << rdata.status().message();
    Bytes expected = {0x01, 0x01, 3, 8};
    expected.insert(expected.end(), c.prefix.begin(), c.prefix.end());
    expected.insert(expected.end(), c.exponent_len, 0x03);
    expected.insert(expected.end(), 3, 0x07);
    EXPECT_EQ(*rdata, expected) << c.exponent_len;
  }
}

// --- errors: never any key material in a message ---

// True if message contains no 6-character piece of any base64 value or PIN of text.
bool free_of_secrets(const std::string& message, const std::string& text) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = lower(line.substr(0, colon));
    if (key == "algorithm" || key == "private-key-format" || key == "engine") continue;
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    for (std::size_t i = 0; i + 6 <= value.size(); ++i) {
      if (message.find(value.substr(i, 6)) != std::string::npos) return false;
    }
  }
  return true;
}

TEST(DnskeyErrors, MalformedBase64NamesTheFieldNotTheValue) {
  std::string text = read_key_file("ecdsa256.private");
  // One character outside the alphabet in the middle of the secret.
  const std::size_t at = text.find("PrivateKey: ") + 20;
  text[at] = '!';
  auto rdata = dnskey_rdata(257, text);
  ASSERT_FALSE(rdata.ok());
  EXPECT_EQ(rdata.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(rdata.status().message(), "private key: PrivateKey is not valid base64");
  EXPECT_TRUE(free_of_secrets(rdata.status().message(), text));
}

TEST(DnskeyErrors, MalformedShapesOfBase64) {
  const std::string good = read_key_file("ed25519.private");
  const std::size_t start = good.find("PrivateKey: ") + 12;
  const std::size_t end = good.find('\n', start);
  const std::string value = good.substr(start, end - start);  // 44 chars, one '='
  for (const std::string& bad : {value.substr(0, 43), value.substr(0, 42) + "==" + "AAAA",
                                 value.substr(0, 20) + " " + value.substr(21),
                                 std::string("===") + value.substr(3), std::string()}) {
    const std::string text = good.substr(0, start) + bad + good.substr(end);
    auto rdata = dnskey_rdata(257, text);
    ASSERT_FALSE(rdata.ok()) << bad;
    EXPECT_EQ(rdata.status().message(), "private key: PrivateKey is not valid base64") << bad;
    EXPECT_TRUE(free_of_secrets(rdata.status().message(), good));
  }
}

TEST(DnskeyErrors, MissingFields) {
  const std::string rsa = read_key_file("rsasha256.private");
  for (const std::string field : {"Modulus", "PublicExponent", "Prime2", "Coefficient"}) {
    const std::size_t begin = rsa.find(field + ":");
    const std::string text = rsa.substr(0, begin) + rsa.substr(rsa.find('\n', begin) + 1);
    auto rdata = dnskey_rdata(257, text);
    ASSERT_FALSE(rdata.ok()) << field;
    EXPECT_EQ(rdata.status().message(), "private key: no " + field);
  }
  auto no_algorithm = dnskey_rdata(257, "Private-key-format: v1.2\nPrivateKey: AQ==\n");
  ASSERT_FALSE(no_algorithm.ok());
  EXPECT_EQ(no_algorithm.status().message(), "private key: no Algorithm");
  auto bad_algorithm = dnskey_rdata(257, "Algorithm: ECDSAP256SHA256\nPrivateKey: AQ==\n");
  ASSERT_FALSE(bad_algorithm.ok());
  EXPECT_EQ(bad_algorithm.status().message(), "private key: Algorithm is not a number 0-255");
}

TEST(DnskeyErrors, UnsupportedAlgorithms) {
  // Made-up material in the shapes BIND and pdns use for GOST and DSA keys.
  const std::string gost =
      "Private-key-format: v1.2\nAlgorithm: 12 (ECC-GOST)\n"
      "GostAsn1: MEUCAQAwHAYGKoUDAgITMBIGByqFAwICIwEGByqFAwICHgEEIgIgN2CMRL538CvC\n";
  const std::string dsa =
      "Private-key-format: v1.2\nAlgorithm: 3 (DSA)\nPrime(p): x4HUn9ZB3KkPGL3lUmvLTTqcPpmx\n"
      "Subprime(q): uL0ikcqMP6wLnGg0YF7bVmEvwPGD\nBase(g): ZpfWqqGMBp93bRkSw8Wa5FoZCxJf\n"
      "Private_value(x): VW1yONfGC1pXTfU2uNSPzEp8zbcf\nPublic_value(y): aVQ4DRmn4eUOvsQ0Gk8h\n";
  for (const auto& [text, number] : {std::pair{gost, 12}, std::pair{dsa, 3}}) {
    auto rdata = dnskey_rdata(257, text);
    ASSERT_FALSE(rdata.ok());
    EXPECT_EQ(rdata.status().message(),
              "private key: algorithm " + std::to_string(number) + " is not supported");
    EXPECT_TRUE(free_of_secrets(rdata.status().message(), text));
  }
}

const std::string kEngineKey =
    "Private-key-format: v1.2\nAlgorithm: 13 (ECDSAP256SHA256)\nEngine: p11-kit-proxy\n"
    "Slot: Token-7f3a\nPIN: pin-8c41d2e9\nLabel: child-ksk-label\n";

TEST(DnskeyErrors, Pkcs11KeyIsRefused) {
  auto rdata = dnskey_rdata(257, kEngineKey);
  ASSERT_FALSE(rdata.ok());
  EXPECT_EQ(rdata.status().message(),
            "private key: PKCS#11 key (Engine): the public key is in the token");
  EXPECT_TRUE(free_of_secrets(rdata.status().message(), kEngineKey));
}

TEST(DnskeyErrors, KeysThatDoNotFitTheirAlgorithm) {
  const std::string head13 = "Private-key-format: v1.2\nAlgorithm: 13 (ECDSAP256SHA256)\n";
  // Zero, and the order n of P-256 (FIPS 186-4 D.1.2.3): neither is a private scalar.
  const std::string zero = head13 + "PrivateKey: AAAA\n";
  const std::string order = head13 + "PrivateKey: /////wAAAAD//////////7zm+q2nF56E87nKwvxjJVE=\n";
  for (const std::string& text : {zero, order}) {
    auto rdata = dnskey_rdata(257, text);
    ASSERT_FALSE(rdata.ok());
    EXPECT_EQ(rdata.status().message(), "private key: PrivateKey is out of range for the curve");
  }
  // n - 1 is the largest valid scalar.
  auto largest =
      dnskey_rdata(257, head13 + "PrivateKey: /////wAAAAD//////////7zm+q2nF56E87nKwvxjJVA=\n");
  EXPECT_TRUE(largest.ok());
  // An Ed25519 seed must have 32 octets.
  auto short_seed = dnskey_rdata(257, "Algorithm: 15 (ED25519)\nPrivateKey: AQID\n");
  ASSERT_FALSE(short_seed.ok());
  EXPECT_EQ(short_seed.status().message(), "private key: PrivateKey has 3 octets, not 32");
}

// --- DS ---

TEST(DnskeyDs, OwnerIsCanonical) {
  const DnskeyLine dnskey = read_dnskey("ecdsa256");
  auto reference = ds_content("ecdsa256.example", dnskey.rdata);
  ASSERT_TRUE(reference.ok());
  for (const char* apex : {"ecdsa256.example.", "ECDSA256.Example", "ecdsa256\\.example"}) {
    auto ds = ds_content(apex, dnskey.rdata);
    ASSERT_TRUE(ds.ok()) << apex;
    if (std::string(apex) == "ecdsa256\\.example") {
      EXPECT_NE(*ds, *reference) << "one label, not two";
    } else {
      EXPECT_EQ(*ds, *reference) << apex;
    }
  }
}

TEST(DnskeyDs, InvalidInput) {
  const DnskeyLine dnskey = read_dnskey("ecdsa256");
  EXPECT_FALSE(ds_content("a..example", dnskey.rdata).ok());
  EXPECT_FALSE(ds_content(std::string(64, 'a') + ".example", dnskey.rdata).ok());
  std::string long_name;
  for (int i = 0; i < 5; ++i) long_name += std::string(60, 'a') + ".";
  EXPECT_FALSE(ds_content(long_name, dnskey.rdata).ok());
  EXPECT_FALSE(ds_content("example", Bytes{1, 1, 3}).ok());
}

TEST(DnskeyKeyTag, Rfc4034AppendixB) {
  // Sums the RDATA as big-endian 16-bit words, folds the carry once.
  EXPECT_EQ(key_tag(Bytes{}), 0);
  EXPECT_EQ(key_tag(Bytes{0x01, 0x02, 0x03}), 0x0102 + 0x0300);
  EXPECT_EQ(key_tag(Bytes{0xff, 0xff, 0x00, 0x01}), 0x0001);  // 0x10000 folds to 0x0001
}

// --- the delegation's DS set ---

DomainKey zone_key(std::int64_t id, const std::string& name, bool active, bool published) {
  const DnskeyLine dnskey = read_dnskey(name);
  DomainKey key;
  key.id = id;
  key.flags = flags_of(dnskey.rdata);
  key.active = active;
  key.published = published;
  key.content = read_key_file(name + ".private");
  return key;
}

// pdnsutil's SHA-256 DS of a rules.example key, found by the key's tag.
std::string rules_ds(const std::string& name) {
  const std::string tag = std::to_string(key_tag(read_dnskey(name).rdata));
  for (const std::string& ds : read_sha256_ds("rules.ds")) {
    if (ds.compare(0, tag.size() + 1, tag + " ") == 0) return ds;
  }
  ADD_FAILURE() << "no DS for " << name;
  return "";
}

std::vector<std::string> lower_all(std::vector<std::string> v) {
  for (std::string& s : v) s = lower(s);
  return v;
}

std::vector<std::string> ds_set(std::string_view apex, const std::vector<DomainKey>& keys,
                                std::vector<std::string>* notes = nullptr) {
  auto set = delegation_ds(apex, keys, notes);
  EXPECT_TRUE(set.ok()) << set.status().message();
  return set.ok() ? lower_all(*set) : std::vector<std::string>{};
}

TEST(DnskeyDelegation, CskAloneGetsItsDs) {
  EXPECT_EQ(ds_set("ed25519.example", {zone_key(1, "ed25519", true, true)}),
            read_sha256_ds("ed25519.ds"));
}

TEST(DnskeyDelegation, ZskAloneIsACskAndGetsItsDs) {
  EXPECT_EQ(ds_set("zsk-only.example", {zone_key(1, "zsk-only", true, true)}),
            read_sha256_ds("zsk-only.ds"));
}

TEST(DnskeyDelegation, KskAndZskOfOneAlgorithmGiveOnlyTheKsksDs) {
  EXPECT_EQ(ds_set("rules.example",
                   {zone_key(1, "rules-zsk", true, true), zone_key(2, "rules-ksk", true, true)}),
            std::vector<std::string>{rules_ds("rules-ksk")});
}

TEST(DnskeyDelegation, InactivePublishedKskBesideActiveOneGivesTwoDs) {
  EXPECT_EQ(ds_set("rules.example",
                   {zone_key(1, "rules-ksk", true, true), zone_key(2, "rules-zsk", true, true),
                    zone_key(3, "rules-ksk-inactive", false, true)}),
            (std::vector<std::string>{rules_ds("rules-ksk"), rules_ds("rules-ksk-inactive")}));
}

TEST(DnskeyDelegation, NoActiveKeyMeansNoDs) {
  EXPECT_TRUE(ds_set("rules.example",
                     {zone_key(1, "rules-ksk", false, true), zone_key(2, "rules-zsk", false, true),
                      zone_key(3, "rules-ksk-inactive", false, true)})
                  .empty());
  EXPECT_TRUE(ds_set("rules.example", {}).empty());
}

TEST(DnskeyDelegation, UnpublishedKskIsExcluded) {
  EXPECT_EQ(ds_set("rules.example", {zone_key(1, "rules-ksk", true, true),
                                     zone_key(2, "rules-ksk-unpublished", true, false)}),
            std::vector<std::string>{rules_ds("rules-ksk")});
}

TEST(DnskeyDelegation, AlgorithmsAreClassifiedSeparately) {
  // The ZSK splits algorithm 13; the Ed25519 key (flags 257) is its algorithm's CSK.
  EXPECT_EQ(ds_set("rules.example",
                   {zone_key(1, "rules-ksk", true, true), zone_key(2, "rules-zsk", true, true),
                    zone_key(3, "ed25519", true, true)}),
            (std::vector<std::string>{
                rules_ds("rules-ksk"),
                lower(*ds_content("rules.example", read_dnskey("ed25519").rdata))}));
}

TEST(DnskeyDelegation, AZskIsACskWhenOnlyAnotherAlgorithmHasAKsk) {
  // Algorithm 13 has no active SEP key, so its flags-256 key is a CSK; pdns exports its DS.
  const std::vector<std::string> expected = {
      read_sha256_ds("zsk-only.ds").at(0),
      lower(*ds_content("zsk-only.example", read_dnskey("ed25519").rdata))};
  EXPECT_EQ(ds_set("zsk-only.example",
                   {zone_key(1, "zsk-only", true, true), zone_key(2, "ed25519", true, true)}),
            expected);
}

TEST(DnskeyDelegation, InactiveKeysDoNotSplitAnAlgorithm) {
  // Only active keys form the SEP and non-SEP sets: beside an inactive KSK, the active ZSK is
  // still a CSK, and both are entry points. (pdnsutil exports no DS for this ZSK: in its own
  // zone it had an active KSK beside it; its DS here is the one checked against the pdns tag.)
  const DnskeyLine zsk = read_dnskey("rules-zsk");
  auto zsk_ds = ds_content("rules.example", zsk.rdata);
  ASSERT_TRUE(zsk_ds.ok());
  EXPECT_EQ(ds_set("rules.example", {zone_key(1, "rules-zsk", true, true),
                                     zone_key(2, "rules-ksk-inactive", false, true)}),
            (std::vector<std::string>{lower(*zsk_ds), rules_ds("rules-ksk-inactive")}));
}

TEST(DnskeyDelegation, TheSameKeyTwiceGivesOneDs) {
  EXPECT_EQ(ds_set("rules.example",
                   {zone_key(1, "rules-ksk", true, true), zone_key(2, "rules-ksk", true, true)}),
            std::vector<std::string>{rules_ds("rules-ksk")});
}

TEST(DnskeyDelegation, UnusableKeysAreSkippedWithANoteWithoutKeyMaterial) {
  DomainKey engine = zone_key(7, "rules-ksk", true, true);
  engine.content = kEngineKey;
  DomainKey gost = zone_key(8, "rules-ksk", true, true);
  gost.content =
      "Private-key-format: v1.2\nAlgorithm: 12 (ECC-GOST)\n"
      "GostAsn1: MEUCAQAwHAYGKoUDAgITMBIGByqFAwICIwEGByqFAwICHgEEIgIgN2CMRL538CvC\n";
  DomainKey broken = zone_key(9, "rules-ksk-inactive", true, true);
  broken.content[broken.content.find("PrivateKey: ") + 15] = '*';
  DomainKey wide = zone_key(10, "ed448", true, true);
  wide.flags = 65536 + 257;
  std::vector<std::string> notes = {"earlier note"};
  EXPECT_EQ(ds_set("rules.example",
                   {engine, gost, zone_key(1, "rules-ksk", true, true), broken, wide}, &notes),
            std::vector<std::string>{rules_ds("rules-ksk")});
  EXPECT_EQ(notes, (std::vector<std::string>{
                       "earlier note",
                       "key 7: private key: PKCS#11 key (Engine): the public key is in the token",
                       "key 8: private key: algorithm 12 is not supported",
                       "key 9: private key: PrivateKey is not valid base64",
                       "key 10: flags 65793 do not fit a DNSKEY",
                   }));
  for (const std::string& note : notes) {
    for (const DomainKey& key : {engine, gost, broken, wide}) {
      EXPECT_TRUE(free_of_secrets(note, key.content)) << note;
    }
  }
  // Without a notes vector the same keys are skipped silently.
  EXPECT_EQ(ds_set("rules.example", {engine, zone_key(1, "rules-ksk", true, true)}),
            std::vector<std::string>{rules_ds("rules-ksk")});
}

TEST(DnskeyDelegation, OnlyUnusableActiveKeysMeanNoDs) {
  // pdns could not sign with the broken key: the child is not secured, the delegation stays
  // insecure rather than pointing at a key that signs nothing.
  DomainKey broken = zone_key(1, "rules-ksk", true, true);
  broken.content = kEngineKey;
  std::vector<std::string> notes;
  EXPECT_TRUE(
      ds_set("rules.example", {broken, zone_key(2, "rules-ksk-inactive", false, true)}, &notes)
          .empty());
  EXPECT_EQ(notes.size(), 1u);
}

TEST(DnskeyDelegation, InvalidApexIsAnError) {
  auto set = delegation_ds("a..example", {zone_key(1, "rules-ksk", true, true)}, nullptr);
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace smimea

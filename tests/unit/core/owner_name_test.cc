// Email addresses and SMIMEA owner names. Hashes are known answers from RFC 8162 section 3 and
// from coreutils: printf '%s' 'LOCAL-PART' | sha256sum | cut -c1-56.
#include "smimea/owner_name.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <string>

#include "smimea/hex.h"

namespace smimea {
namespace {

// hex(first 28 octets of SHA2-256(local_part)).
std::string hash_hex(std::string_view local_part) { return to_hex(owner_hash(local_part)); }

MailAddress parse_ok(std::string_view text) {
  auto addr = parse_address(text);
  EXPECT_TRUE(addr.ok()) << text << ": " << addr.status().message();
  return addr.ok() ? *addr : MailAddress{};
}

std::vector<std::string> owner_names(std::string_view text, bool lowercase_variant) {
  const MailAddress addr = parse_ok(text);
  std::vector<std::string> out;
  for (const OwnerHash& h : owner_hashes_for(addr, lowercase_variant)) {
    out.push_back(owner_name(h, addr.domain));
  }
  return out;
}

// Owner names are decoded from the query on every lookup: every non-hex digit, in either place
// of a pair, must be refused (and never shifted as a negative value).
TEST(Hex, DecodesEitherCaseAndRefusesEveryNonDigit) {
  std::uint8_t out[2];
  ASSERT_TRUE(decode_hex("0aFf", out, 2));
  EXPECT_EQ(out[0], 0x0a);
  EXPECT_EQ(out[1], 0xff);
  for (const char* bad : {"g0ff", "0gff", "00g0", "000g", "0a f", "0a-f",
                          "\xff"
                          "0a0"}) {
    EXPECT_FALSE(decode_hex(bad, out, 2)) << bad;
  }
  EXPECT_FALSE(decode_hex("0aff0", out, 2));
  EXPECT_FALSE(decode_hex("0af", out, 2));
  for (int c = 0; c < 256; ++c) {
    const bool digit = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    const char text[3] = {static_cast<char>(c), '0', 0};
    EXPECT_EQ(decode_hex(std::string_view(text, 2), out, 1), digit) << c;
    const char swapped[3] = {'0', static_cast<char>(c), 0};
    EXPECT_EQ(decode_hex(std::string_view(swapped, 2), out, 1), digit) << c;
  }
}

TEST(Hex, EncodesEveryByteAsPrintfDoes) {
  std::uint8_t all[256];
  std::string expected = "prefix:";
  for (int b = 0; b < 256; ++b) {
    all[b] = static_cast<std::uint8_t>(b);
    char two[3];
    std::snprintf(two, sizeof two, "%02x", b);
    expected += two;
  }
  std::string out = "prefix:";
  append_hex(out, all, sizeof all);
  EXPECT_EQ(out, expected);
  std::uint8_t back[256];
  ASSERT_TRUE(decode_hex(std::string_view(out).substr(7), back, sizeof back));
  EXPECT_EQ(std::memcmp(back, all, sizeof all), 0);
}

TEST(OwnerName, LowerCasesAsciiLettersOnlyAtEveryPosition) {
  // Every byte value at every position of a 19-byte name (two 8-byte steps and a tail),
  // against the C library's tolower in the "C" locale.
  for (int b = 0; b < 256; ++b) {
    for (std::size_t pos = 0; pos < 19; ++pos) {
      char in[19];
      for (std::size_t i = 0; i < sizeof in; ++i) in[i] = "MiXeD.CaSe-Name_@Z"[i % 18];
      in[pos] = static_cast<char>(b);
      char out[19];
      ascii_lower_copy(in, sizeof in, out);
      for (std::size_t i = 0; i < sizeof in; ++i) {
        const auto c = static_cast<unsigned char>(in[i]);
        const char want = c < 0x80 ? static_cast<char>(std::tolower(c)) : in[i];
        ASSERT_EQ(out[i], want) << "byte " << b << " at " << pos << ", position " << i;
      }
    }
  }
}

TEST(OwnerName, Rfc8162Vector) {
  EXPECT_EQ(
      owner_names("hugh@example.com", true),
      std::vector<std::string>{
          "c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6._smimecert.example.com."});
}

TEST(OwnerName, HashesTheLocalPartOnly) {
  EXPECT_EQ(hash_hex("hugh"), "c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6");
  EXPECT_EQ(owner_hash("hugh").size(), kOwnerHashLen);
}

TEST(OwnerName, OwnerNameAcceptsATrailingDot) {
  EXPECT_EQ(owner_name(owner_hash("hugh"), "example.com."),
            "c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6._smimecert.example.com.");
}

TEST(OwnerName, UpperCaseGivesExactAndLowerCasedOwners) {
  // Hugh: 7063a398..., hugh: c93f1e40... (the exact one first).
  EXPECT_EQ(
      owner_names("Hugh@Example.COM", true),
      (std::vector<std::string>{
          "7063a398942ba5c6125429518d0608563f3974bb48013ddf58fb01d4._smimecert.example.com.",
          "c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6._smimecert.example.com."}));
}

TEST(OwnerName, LowercaseVariantOffGivesOnlyTheExactOwner) {
  EXPECT_EQ(
      owner_names("Hugh@example.com", false),
      std::vector<std::string>{
          "7063a398942ba5c6125429518d0608563f3974bb48013ddf58fb01d4._smimecert.example.com."});
}

TEST(OwnerName, NoVariantWhenAlreadyLowerCase) {
  EXPECT_EQ(owner_names("hugh@EXAMPLE.com", true).size(), 1u);
  EXPECT_EQ(owner_names("hugh@EXAMPLE.com", false).size(), 1u);
}

TEST(OwnerName, MixedCaseDotAtom) {
  const MailAddress addr = parse_ok("Bob.Smith@Example.COM");
  EXPECT_EQ(addr.local_part, "Bob.Smith");
  EXPECT_EQ(addr.domain, "example.com");
  const auto hashes = owner_hashes_for(addr, true);
  ASSERT_EQ(hashes.size(), 2u);
  EXPECT_EQ(to_hex(hashes[0]), "274c9d19d98772457ec3e83af4fc93090845450055fa0f6e8542a5b2");
  EXPECT_EQ(to_hex(hashes[1]), "365b77fb7cc563593e66aba9d9616834f73a2033cded0f6eb106c168");
}

TEST(OwnerName, NonAsciiLettersAreNotLowerCased) {
  // Only ASCII letters get a lower-cased variant: "JÜRGEN" -> "jÜrgen".
  const auto hashes = owner_hashes_for(parse_ok("J\xc3\x9cRGEN@example.com"), true);
  ASSERT_EQ(hashes.size(), 2u);
  EXPECT_EQ(hashes[1], owner_hash("j\xc3\x9crgen"));
}

TEST(ParseAddress, QuotedLocalPartIsHashedUnquoted) {
  const MailAddress addr = parse_ok("\"john doe\"@example.com");
  EXPECT_EQ(addr.local_part, "john doe");
  EXPECT_EQ(hash_hex(addr.local_part), "94890005f3b2117a353da7260259531878cae4f541bf59998511887d");
  EXPECT_EQ(addr.to_string(), "\"john doe\"@example.com");
}

TEST(ParseAddress, QuotedPairsLoseTheirBackslash) {
  const MailAddress quote = parse_ok(R"("a\"b"@example.com)");
  EXPECT_EQ(quote.local_part, "a\"b");
  EXPECT_EQ(hash_hex(quote.local_part), "39a012772dd5c3accbc56923093422896d41ac882e3cd66914bc584c");
  EXPECT_EQ(quote.to_string(), R"("a\"b"@example.com)");

  const MailAddress backslash = parse_ok(R"("a\\b"@example.com)");
  EXPECT_EQ(backslash.local_part, "a\\b");
  EXPECT_EQ(hash_hex(backslash.local_part),
            "c62016d0f8ee333350283fd879b50b692932e932794e5d686f7d37d6");
  EXPECT_EQ(backslash.to_string(), R"("a\\b"@example.com)");

  // A quoted-pair of an ordinary character is that character.
  EXPECT_EQ(parse_ok(R"("\h\u\g\h"@example.com)").local_part, "hugh");
}

TEST(ParseAddress, NeedlesslyQuotedLocalPartEqualsTheAtom) {
  const MailAddress addr = parse_ok("\"hugh\"@example.com");
  EXPECT_EQ(addr.local_part, "hugh");
  EXPECT_EQ(addr.to_string(), "hugh@example.com");
}

TEST(ParseAddress, QuotedAtSign) {
  const MailAddress addr = parse_ok("\"a@b\"@example.com");
  EXPECT_EQ(addr.local_part, "a@b");
  EXPECT_EQ(hash_hex(addr.local_part), "7508d8b5018ea640b85269861a101203f0c26900555268e930025dac");
}

TEST(ParseAddress, NfcAndNfdGiveTheSameOwner) {
  // "josé" precomposed (U+00E9) and decomposed (e + U+0301).
  const MailAddress nfc = parse_ok("jos\xc3\xa9@example.com");
  const MailAddress nfd = parse_ok("jose\xcc\x81@example.com");
  EXPECT_EQ(nfc.local_part, "jos\xc3\xa9");
  EXPECT_EQ(nfd.local_part, "jos\xc3\xa9");
  // printf 'jos\xc3\xa9' | sha256sum | cut -c1-56
  EXPECT_EQ(hash_hex(nfd.local_part), "d994e1d001886fe5b45b1267bd1fa2b752ac50742579bd3dad7b2a2a");
  // The NFD octets would have hashed to 0c06649e...; make sure that is not what we publish.
  EXPECT_NE(hash_hex(nfd.local_part), "0c06649e61569bf7f121faa2a2cf294afb57f9e5f1b0a72424b80ca9");
}

TEST(ParseAddress, QuotedNfdIsNormalisedToo) {
  EXPECT_EQ(parse_ok("\"jose\xcc\x81\"@example.com").local_part, "jos\xc3\xa9");
}

TEST(ParseAddress, CyrillicLocalPart) {
  const MailAddress addr = parse_ok("пример@example.com");
  EXPECT_EQ(hash_hex(addr.local_part), "266f263f0211048cf09ae16aaa8faddd1dfaaa88f1624d7cc96f2458");
}

TEST(ParseAddress, IdnDomainGoesToALabels) {
  // python3 -c 'print("bücher".encode("idna"))' -> b'xn--bcher-kva'
  EXPECT_EQ(parse_ok("hugh@bücher.example").domain, "xn--bcher-kva.example");
  EXPECT_EQ(parse_ok("hugh@BÜCHER.Example").domain, "xn--bcher-kva.example");
  EXPECT_EQ(parse_ok("hugh@xn--bcher-kva.example").domain, "xn--bcher-kva.example");
  EXPECT_EQ(parse_ok("hugh@XN--BCHER-KVA.example").domain, "xn--bcher-kva.example");
  EXPECT_EQ(owner_names("hugh@bücher.example", true),
            std::vector<std::string>{"c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6."
                                     "_smimecert.xn--bcher-kva.example."});
}

TEST(ParseAddress, TrailingDotInDomainIsDropped) {
  EXPECT_EQ(parse_ok("hugh@example.com.").domain, "example.com");
}

TEST(ParseAddress, LongestDomainThatFitsAnOwnerName) {
  // 68 octets of "<56 hex>._smimecert." + 185 = 253.
  const std::string l61(61, 'a');
  const std::string domain = l61 + "." + l61 + "." + l61;
  ASSERT_EQ(domain.size(), 185u);
  const MailAddress addr = parse_ok("hugh@" + domain);
  const std::string owner = owner_name(owner_hash(addr.local_part), addr.domain);
  EXPECT_EQ(owner.size(), 254u);  // 253 plus the trailing dot
  EXPECT_FALSE(parse_address("hugh@b" + domain).ok());
}

TEST(ParseAddress, LongestLocalPart) {
  EXPECT_TRUE(parse_address(std::string(64, 'a') + "@example.com").ok());
  EXPECT_FALSE(parse_address(std::string(65, 'a') + "@example.com").ok());
  // The limit is on octets after unquoting.
  EXPECT_TRUE(parse_address("\"" + std::string(64, ' ') + "\"@example.com").ok());
}

struct Rejected {
  const char* text;
  const char* why;
};

class ParseAddressRejects : public ::testing::TestWithParam<Rejected> {};

TEST_P(ParseAddressRejects, WithOneLineMessage) {
  const std::string text = GetParam().text;
  auto addr = parse_address(text);
  ASSERT_FALSE(addr.ok()) << GetParam().why << ": " << text;
  EXPECT_EQ(addr.status().code(), Status::Code::kInvalidArgument);
  EXPECT_FALSE(addr.status().message().empty());
  EXPECT_EQ(addr.status().message().find('\n'), std::string::npos);
}

const std::string kLabel64(64, 'x');
const std::string kLabel64Address = "hugh@" + kLabel64 + ".example";
const std::string kLongDomainAddress = "hugh@" + std::string(60, 'a') + "." + std::string(60, 'b') +
                                       "." + std::string(60, 'c') + "." + std::string(10, 'd');
const std::string kName254Address = "hugh@" + std::string(63, 'a') + "." + std::string(63, 'b') +
                                    "." + std::string(63, 'c') + "." + std::string(63, 'd');

INSTANTIATE_TEST_SUITE_P(
    Bad, ParseAddressRejects,
    ::testing::Values(
        Rejected{"", "empty"}, Rejected{"hugh", "no @"}, Rejected{"hugh.example.com", "no @"},
        Rejected{"@example.com", "empty local-part"}, Rejected{"hugh@", "empty domain"},
        Rejected{"\"\"@example.com", "empty quoted local-part"},
        Rejected{"hu gh@example.com", "space in atom"},
        Rejected{"hugh(x)@example.com", "comment characters"},
        Rejected{"a..b@example.com", "consecutive dots"}, Rejected{".a@example.com", "leading dot"},
        Rejected{"a.@example.com", "trailing dot"}, Rejected{"a@b@example.com", "two @"},
        Rejected{"\"a\"@b@example.com", "two @ after quotes"},
        Rejected{"\"hugh@example.com", "unterminated quote"},
        Rejected{"\"hu\"gh@example.com", "text after the quote"},
        Rejected{"\"a\x01\"@example.com", "control character"},
        Rejected{"\"a\\\x01\"@example.com", "quoted control character"},
        Rejected{"hugh@exa mple.com", "space in domain"},
        Rejected{"hugh@exa_mple.com", "underscore in a mail domain"},
        Rejected{"hugh@-example.com", "label starts with -"},
        Rejected{"hugh@example-.com", "label ends with -"},
        Rejected{"hugh@example..com", "empty label"}, Rejected{"hugh@.example.com", "empty label"},
        Rejected{"hugh@example", "single label"}, Rejected{"hugh@[192.0.2.1]", "address literal"},
        Rejected{kLabel64Address.c_str(), "label of 64 octets"},
        Rejected{kLongDomainAddress.c_str(), "domain over 185 octets"},
        Rejected{kName254Address.c_str(), "domain over 253 octets"},
        Rejected{"\xff@example.com", "invalid UTF-8 in local-part"},
        Rejected{"a\xc3@example.com", "truncated UTF-8 in local-part"},
        Rejected{"\"\xc0\xaf\"@example.com", "overlong UTF-8 in quoted local-part"},
        Rejected{"hugh@b\xfc"
                 "cher.example",
                 "Latin-1 domain"},
        Rejected{"hugh@xn--zz.example", "invalid A-label"}));

TEST(NormalizeDomain, LowerCaseNoTrailingDot) {
  auto d = normalize_domain("Example.COM.");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, "example.com");
}

TEST(NormalizeDomain, UnderscoreOnlyWhenAllowed) {
  EXPECT_FALSE(normalize_domain("_smimecert.example.com").ok());
  auto d = normalize_domain("_SMIMECERT.example.com", /*allow_underscore=*/true);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, "_smimecert.example.com");
}

TEST(NormalizeDomain, Idn) {
  auto d = normalize_domain("bücher.example");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(*d, "xn--bcher-kva.example");
}

TEST(ParseOwnerQname, DecodesTheHashInEitherCase) {
  for (const char* qname :
       {"c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6._smimecert.example.com.",
        "C93F1E400F26708F98CB19D936620DA35EEC8F72E57F9EEC01C1AFD6._SMIMECERT.Example.com"}) {
    OwnerHash hash{};
    std::string_view rest;
    ASSERT_TRUE(parse_owner_qname(qname, &hash, &rest)) << qname;
    EXPECT_EQ(hash, owner_hash("hugh"));
    EXPECT_TRUE(iequals(rest, "_smimecert.example.com")) << rest;
  }
}

TEST(ParseOwnerQname, RejectsOtherNames) {
  const std::string hex = "c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6";
  for (const std::string& qname : {
           std::string("example.com."), std::string("_smimecert.example.com."),
           hex.substr(1) + "._smimecert.example.com.",       // 55 digits
           hex + "0._smimecert.example.com.",                // 57 digits
           hex.substr(0, 55) + "g._smimecert.example.com.",  // not hex
           hex + "._smimecerts.example.com.",                // other second label
           hex + "._openpgpkey.example.com.",                // other second label
           hex + ".x._smimecert.example.com.",               // extra label
           hex + "_smimecert.example.com.",                  // no dot
       }) {
    OwnerHash hash{};
    std::string_view rest;
    EXPECT_FALSE(parse_owner_qname(qname, &hash, &rest)) << qname;
  }
}

TEST(Iequals, AsciiOnly) {
  EXPECT_TRUE(iequals("Example.COM", "example.com"));
  EXPECT_FALSE(iequals("example.com", "example.co"));
  EXPECT_FALSE(iequals("\xc3\x9c", "\xc3\xbc"));  // Ü and ü are different octets
}

}  // namespace
}  // namespace smimea

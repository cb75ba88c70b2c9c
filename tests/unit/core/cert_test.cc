// Certificate parsing and association data. Inputs and known answers are in tests/data/certs,
// made with the openssl CLI (tests/data/README.md).
#include "smimea/cert.h"

#include <gtest/gtest.h>

#include <string>

#include "../test_util.h"
#include "smimea/hex.h"

namespace smimea {
namespace {

using test::expected_hex;
using test::read_data;

std::vector<Certificate> parse_ok(const std::string& file) {
  const std::string input = read_data("certs/" + file);
  auto certs = parse_certificates(input, file);
  EXPECT_TRUE(certs.ok()) << file << ": " << certs.status().message();
  return certs.ok() ? *certs : std::vector<Certificate>{};
}

Certificate parse_one(const std::string& file) {
  auto certs = parse_ok(file);
  EXPECT_EQ(certs.size(), 1u) << file;
  return certs.empty() ? Certificate{} : certs.front();
}

Status parse_error(std::string_view input, std::string_view source = "input",
                   std::size_t max_bytes = kDefaultMaxInputBytes) {
  auto certs = parse_certificates(input, source, max_bytes);
  EXPECT_FALSE(certs.ok()) << source << " was accepted";
  return certs.ok() ? Status() : certs.status();
}

MailAddress address(std::string_view text) {
  auto addr = parse_address(text);
  EXPECT_TRUE(addr.ok()) << text;
  return addr.ok() ? *addr : MailAddress{};
}

Bytes from_hex(const std::string& hex) {
  Bytes out;
  EXPECT_TRUE(decode_hex(hex, &out)) << hex.substr(0, 20);
  return out;
}

// --- association data for every key type and every selector / matching type ---

class Association : public ::testing::TestWithParam<const char*> {};

TEST_P(Association, MatchesOpensslForAllSixCombinations) {
  const std::string name = GetParam();
  const Certificate cert = parse_one(name + ".pem");
  ASSERT_EQ(test::read_expectations(name).size(), 6u);
  for (int s = 0; s <= 1; ++s) {
    for (int m = 0; m <= 2; ++m) {
      const Bytes data =
          compute_association(cert, static_cast<Selector>(s), static_cast<MatchingType>(m));
      EXPECT_EQ(to_hex(data), expected_hex(name, s, m))
          << name << " selector " << s << " matching type " << m;
      auto params = make_record_params(3, s, m);
      ASSERT_TRUE(params.has_value());
      EXPECT_TRUE(check_association_data(*params, data).ok()) << name << " " << s << " " << m;
    }
  }
}

TEST_P(Association, FingerprintIsSha256OfTheDer) {
  const std::string name = GetParam();
  const Certificate cert = parse_one(name + ".pem");
  EXPECT_EQ(to_hex(cert.fingerprint), expected_hex(name, 0, 1));
  EXPECT_EQ(to_hex(cert.der), expected_hex(name, 0, 0));
  EXPECT_EQ(to_hex(cert.spki), expected_hex(name, 1, 0));
}

TEST_P(Association, ParseDerCertificateRoundTrips) {
  const std::string name = GetParam();
  auto cert = parse_der_certificate(from_hex(expected_hex(name, 0, 0)));
  ASSERT_TRUE(cert.ok()) << cert.status().message();
  EXPECT_EQ(to_hex(cert->spki), expected_hex(name, 1, 0));
}

INSTANTIATE_TEST_SUITE_P(KeyTypes, Association, ::testing::Values("rsa", "ec", "ed25519"));

// --- input formats ---

TEST(ParseCertificates, PemSingle) {
  const Certificate c = parse_one("rsa.pem");
  EXPECT_EQ(c.subject, "CN=Alice");
  EXPECT_EQ(c.issuer, "CN=Alice");
  EXPECT_FALSE(c.is_ca);
  EXPECT_EQ(c.emails, std::vector<std::string>{"alice@example.com"});
  // -days 36500
  EXPECT_GE(c.not_after - c.not_before, std::int64_t{36500} * 86400 - 1);
  EXPECT_LE(c.not_after - c.not_before, std::int64_t{36500} * 86400 + 1);
  EXPECT_FALSE(c.serial.empty());
  EXPECT_EQ(c.serial.find_first_not_of("0123456789abcdef"), std::string::npos) << c.serial;
}

TEST(ParseCertificates, Der) {
  const Certificate c = parse_one("rsa.der");
  EXPECT_EQ(to_hex(c.der), expected_hex("rsa", 0, 0));
}

TEST(ParseCertificates, PemMultipleInOrder) {
  const auto certs = parse_ok("multi.pem");
  ASSERT_EQ(certs.size(), 2u);
  EXPECT_EQ(to_hex(certs[0].fingerprint), expected_hex("rsa", 0, 1));
  EXPECT_EQ(to_hex(certs[1].fingerprint), expected_hex("ec", 0, 1));
}

TEST(ParseCertificates, Pkcs7Pem) {
  const auto certs = parse_ok("bundle.p7b");
  ASSERT_EQ(certs.size(), 2u);
  EXPECT_EQ(to_hex(certs[0].fingerprint), expected_hex("rsa", 0, 1));
  EXPECT_EQ(to_hex(certs[1].fingerprint), expected_hex("ec", 0, 1));
}

TEST(ParseCertificates, Pkcs7Der) {
  const auto certs = parse_ok("bundle.p7b.der");
  ASSERT_EQ(certs.size(), 2u);
  EXPECT_EQ(to_hex(certs[0].fingerprint), expected_hex("rsa", 0, 1));
  EXPECT_EQ(to_hex(certs[1].fingerprint), expected_hex("ec", 0, 1));
}

TEST(ParseCertificates, ExtendedKeyUsageSaysWhetherItIsForEmail) {
  EXPECT_TRUE(parse_one("rsa.pem").for_email);        // emailProtection
  EXPECT_TRUE(parse_one("v1.pem").for_email);         // no extended key usage at all
  EXPECT_FALSE(parse_one("tls_only.pem").for_email);  // serverAuth only
}

TEST(ParseCertificates, BareBase64Der) {
  const Certificate c = parse_one("rsa.der.b64");
  EXPECT_EQ(to_hex(c.der), expected_hex("rsa", 0, 0));
}

TEST(ParseCertificates, BareBase64PrivateKeyIsRefused) {
  auto r = parse_certificates(read_data("certs/ec.key.der.b64"), "key");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("private key"), std::string::npos) << r.status().message();
}

TEST(ParseCertificates, SignedMailGivesTheSignersCertificates) {
  for (const char* file : {"signed.eml", "signed-opaque.eml"}) {
    const auto certs = parse_ok(file);
    ASSERT_FALSE(certs.empty()) << file;
    bool signer = false;
    for (const Certificate& c : certs) signer |= to_hex(c.fingerprint) == expected_hex("rsa", 0, 1);
    EXPECT_TRUE(signer) << file;
  }
  EXPECT_EQ(parse_ok("signed.eml").size(), 2u);  // the signer's and ca.pem
}

TEST(ParseCertificates, TamperedSignedMailIsRefused) {
  auto r = parse_certificates(read_data("certs/signed-tampered.eml"), "mail");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("does not verify"), std::string::npos)
      << r.status().message();
}

TEST(ParseCertificates, MailWithoutASignatureIsRefused) {
  auto r = parse_certificates(
      "From: a@example.com\r\nContent-Type: application/pkcs7-mime\r\n\r\nxx", "mail");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("signed mail"), std::string::npos) << r.status().message();
}

TEST(ParseCertificates, PemWithCrlfLineEndings) {
  std::string pem;
  for (char c : read_data("certs/ec.pem")) {
    if (c == '\n') pem += '\r';
    pem += c;
  }
  auto certs = parse_certificates(pem, "crlf");
  ASSERT_TRUE(certs.ok()) << certs.status().message();
  EXPECT_EQ(to_hex(certs->front().fingerprint), expected_hex("ec", 0, 1));
}

// Strips the PEM armour of the first block: its base64 body without line breaks.
std::string pem_body(const std::string& pem) {
  const std::size_t start = pem.find('\n') + 1;
  const std::size_t end = pem.find("-----END");
  std::string body;
  for (std::size_t i = start; i < end; ++i) {
    if (pem[i] != '\n') body += pem[i];
  }
  return body;
}

TEST(ParseCertificates, PemLineLengthsDoNotMatter) {
  const std::string body = pem_body(read_data("certs/rsa.pem"));
  std::string one_line = "-----BEGIN CERTIFICATE-----\n" + body + "\n-----END CERTIFICATE-----\n";
  std::string short_lines = "-----BEGIN CERTIFICATE-----\n";
  for (std::size_t i = 0; i < body.size(); i += 10) short_lines += body.substr(i, 10) + "\n";
  short_lines += "-----END CERTIFICATE-----";  // and no final newline
  for (const std::string& pem : {one_line, short_lines}) {
    auto certs = parse_certificates(pem, "rewrapped");
    ASSERT_TRUE(certs.ok()) << certs.status().message();
    EXPECT_EQ(to_hex(certs->front().fingerprint), expected_hex("rsa", 0, 1));
  }
}

TEST(ParseCertificates, PemHeadersAreIgnored) {
  const std::string pem = read_data("certs/ec.pem");
  const std::string with_header =
      "-----BEGIN CERTIFICATE-----\nComment: test\n\n" + pem.substr(pem.find('\n') + 1);
  auto certs = parse_certificates(with_header, "header");
  ASSERT_TRUE(certs.ok()) << certs.status().message();
  EXPECT_EQ(to_hex(certs->front().fingerprint), expected_hex("ec", 0, 1));
}

TEST(ParseCertificates, RefusesBadBase64InAPemBlock) {
  const std::string body = pem_body(read_data("certs/ec.pem"));
  for (const std::string& bad : {body.substr(0, 10) + "*" + body.substr(11),
                                 body.substr(0, body.size() - 4),  // a quantum short
                                 "====" + body, body + "AAAA"}) {
    EXPECT_FALSE(parse_certificates(
                     "-----BEGIN CERTIFICATE-----\n" + bad + "\n-----END CERTIFICATE-----\n", "bad")
                     .ok())
        << bad.substr(0, 12);
  }
}

TEST(ParseCertificates, TextAroundPemBlocksIsIgnored) {
  const std::string input = "Subject: alice\n\n" + read_data("certs/rsa.pem") + "\ntrailer\n";
  auto certs = parse_certificates(input, "mail");
  ASSERT_TRUE(certs.ok()) << certs.status().message();
  EXPECT_EQ(certs->size(), 1u);
}

// --- refused inputs ---

TEST(ParseCertificates, RefusesPemPrivateKey) {
  const Status s = parse_error(read_data("certs/rsa.key"), "rsa.key");
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("private key"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().rfind("rsa.key", 0), 0u) << s.message();
}

TEST(ParseCertificates, RefusesPrivateKeysOfEveryType) {
  for (const char* file : {"certs/ec.key", "certs/ed25519.key", "certs/ec.key.der"}) {
    const Status s = parse_error(read_data(file), file);
    EXPECT_NE(s.message().find("private key"), std::string::npos) << file << ": " << s.message();
  }
}

TEST(ParseCertificates, RefusesAPrivateKeyNextToACertificate) {
  const Status s =
      parse_error(read_data("certs/ec.pem") + read_data("certs/ec.key"), "cert-and-key.pem");
  EXPECT_NE(s.message().find("private key"), std::string::npos) << s.message();
  const Status s2 =
      parse_error(read_data("certs/ec.key") + read_data("certs/ec.pem"), "key-and-cert.pem");
  EXPECT_NE(s2.message().find("private key"), std::string::npos) << s2.message();
}

TEST(ParseCertificates, RefusesCsr) {
  for (const char* file : {"certs/csr.pem", "certs/csr.der"}) {
    const Status s = parse_error(read_data(file), file);
    EXPECT_NE(s.message().find("request"), std::string::npos) << file << ": " << s.message();
  }
}

TEST(ParseCertificates, RefusesEmpty) {
  const Status s = parse_error("", "empty.pem");
  EXPECT_NE(s.message().find("empty"), std::string::npos) << s.message();
}

TEST(ParseCertificates, RefusesGarbage) {
  for (const std::string& input :
       {std::string("hello world\n"), std::string("\x30\x03\x02\x01\x01", 5),
        std::string("\x00\x01\x02\x03", 4), std::string("-----BEGIN GARBAGE-----\nAAAA\n"),
        std::string("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"),
        std::string("-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n")}) {
    const Status s = parse_error(input, "garbage");
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(s.message().find('\n'), std::string::npos) << s.message();
  }
}

TEST(ParseCertificates, RefusesTruncatedInput) {
  const std::string pem = read_data("certs/rsa.pem");
  EXPECT_FALSE(parse_error(pem.substr(0, pem.size() / 2), "half.pem").ok());
  const std::string der = read_data("certs/rsa.der");
  EXPECT_FALSE(parse_error(der.substr(0, der.size() - 1), "short.der").ok());
  EXPECT_FALSE(parse_error(der + std::string(1, '\0'), "long.der").ok());
}

TEST(ParseCertificates, RefusesOversize) {
  const std::string pem = read_data("certs/ec.pem");
  const Status s = parse_error(pem, "big.pem", pem.size() - 1);
  EXPECT_NE(s.message().find("larger than"), std::string::npos) << s.message();
  EXPECT_TRUE(parse_certificates(pem, "exact.pem", pem.size()).ok());
  // The default cap: 1 MiB.
  std::string big = pem;
  big.resize(kDefaultMaxInputBytes + 1, '\n');
  EXPECT_FALSE(parse_error(big, "huge.pem").ok());
}

TEST(ParseCertificates, MessagesNameTheSource) {
  const Status s = parse_error("nothing", "/tmp/x/alice.pem");
  EXPECT_EQ(s.message().rfind("/tmp/x/alice.pem: ", 0), 0u) << s.message();
}

// --- addresses ---

TEST(CertificateNames, SanRfc822Name) {
  const Certificate c = parse_one("rsa.pem");
  EXPECT_TRUE(certificate_names(c, address("alice@example.com")));
  EXPECT_TRUE(certificate_names(c, address("ALICE@EXAMPLE.COM")));
  EXPECT_FALSE(certificate_names(c, address("alice@example.org")));
  EXPECT_FALSE(certificate_names(c, address("bob@example.com")));
  EXPECT_FALSE(certificate_names(c, address("alic@example.com")));
}

TEST(CertificateNames, SeveralSanEntriesAsWritten) {
  const Certificate c = parse_one("ec.pem");
  EXPECT_EQ(c.emails, (std::vector<std::string>{"Bob.Smith@Example.COM", "bob@example.net"}));
  EXPECT_TRUE(certificate_names(c, address("bob.smith@example.com")));
  EXPECT_TRUE(certificate_names(c, address("Bob.Smith@Example.COM")));
  EXPECT_TRUE(certificate_names(c, address("bob@example.net")));
  EXPECT_FALSE(certificate_names(c, address("bob@example.com")));
}

TEST(CertificateNames, SmtpUtf8Mailbox) {
  const Certificate c = parse_one("utf8.pem");
  EXPECT_EQ(c.emails, (std::vector<std::string>{"пример@example.com", "jürgen@bücher.example"}));
  EXPECT_TRUE(certificate_names(c, address("пример@example.com")));
  EXPECT_TRUE(certificate_names(c, address("jürgen@xn--bcher-kva.example")));
  EXPECT_TRUE(certificate_names(c, address("jürgen@BÜCHER.example")));
  // NFD in the query, NFC in the certificate.
  EXPECT_TRUE(certificate_names(c, address("ju\xcc\x88rgen@bücher.example")));
  EXPECT_FALSE(certificate_names(c, address("juergen@bücher.example")));
}

TEST(CertificateNames, SubjectEmailAddressFallback) {
  const Certificate c = parse_one("subject_email.pem");
  EXPECT_EQ(c.emails, std::vector<std::string>{"dave@example.com"});
  EXPECT_TRUE(certificate_names(c, address("dave@example.com")));
}

TEST(CertificateNames, NoAddress) {
  const Certificate c = parse_one("noaddr.pem");
  EXPECT_TRUE(c.emails.empty());
  EXPECT_FALSE(certificate_names(c, address("nobody@example.com")));
}

// As `openssl x509 -noout -purpose` says ("S/MIME signing CA : Yes/No").
TEST(IsCa, FromBasicConstraints) {
  EXPECT_TRUE(parse_one("ca.pem").is_ca);
  EXPECT_FALSE(parse_one("rsa.pem").is_ca);
  EXPECT_FALSE(parse_one("ec.pem").is_ca);
  EXPECT_FALSE(parse_one("ed25519.pem").is_ca);
}

TEST(IsCa, WithoutBasicConstraints) {
  EXPECT_TRUE(parse_one("v1.pem").is_ca);     // version 1, self-signed
  EXPECT_TRUE(parse_one("ku_ca.pem").is_ca);  // keyUsage keyCertSign
  EXPECT_FALSE(parse_one("subject_email.pem").is_ca);
}

TEST(ParseCertificates, RefusesAnUndecodablePublicKey) {
  // Found by fuzz_certificate: a certificate whose EC point is not on its curve.
  const std::string der =
      read_data("../fuzz/corpus/certificate/regress_undecodable_public_key.der");
  const Status s = parse_error(der, "bad-key.der");
  EXPECT_NE(s.message().find("public key"), std::string::npos) << s.message();
}

TEST(ParseCertificates, PublicKeysOfAllTypesDecode) {
  // Every key type goes through the checks that refuse undecodable keys, more than once (the
  // decoders are reused).
  for (int round = 0; round < 3; ++round) {
    for (const char* file : {"rsa.pem", "ec.pem", "ed25519.pem", "utf8.pem", "bundle.p7b"}) {
      EXPECT_TRUE(parse_certificates(read_data(std::string("certs/") + file), file).ok()) << file;
    }
  }
}

TEST(ParseCertificates, CorruptEcPointIsRefused) {
  // The last octet of an uncompressed P-256 point changed: almost surely off the curve. The
  // certificate's signature is not checked, so only the key check can refuse it.
  const std::string ec_der = [] {
    Bytes b;
    decode_hex(expected_hex("ec", 0, 0), &b);
    return std::string(b.begin(), b.end());
  }();
  const std::string spki = [] {
    Bytes b;
    decode_hex(expected_hex("ec", 1, 0), &b);
    return std::string(b.begin(), b.end());
  }();
  const std::size_t at = ec_der.find(spki);
  ASSERT_NE(at, std::string::npos);
  for (const int flip : {0x01, 0x40}) {
    std::string bad = ec_der;
    bad[at + spki.size() - 1] = static_cast<char>(bad[at + spki.size() - 1] ^ flip);
    const Status st = parse_error(bad, "corrupt-point.der");
    EXPECT_NE(st.message().find("public key"), std::string::npos) << st.message();
  }
}

// --- check_association_data ---

Status check(int s, int m, const Bytes& data) {
  auto params = make_record_params(3, s, m);
  EXPECT_TRUE(params.has_value());
  return check_association_data(*params, data);
}

TEST(CheckAssociationData, DigestLengths) {
  EXPECT_TRUE(check(0, 1, Bytes(32, 0xab)).ok());
  EXPECT_TRUE(check(1, 1, Bytes(32, 0xab)).ok());
  EXPECT_TRUE(check(0, 2, Bytes(64, 0xab)).ok());
  EXPECT_TRUE(check(1, 2, Bytes(64, 0xab)).ok());
  for (std::size_t n : {0u, 1u, 31u, 33u, 64u}) EXPECT_FALSE(check(0, 1, Bytes(n, 1)).ok()) << n;
  for (std::size_t n : {0u, 32u, 63u, 65u}) EXPECT_FALSE(check(1, 2, Bytes(n, 1)).ok()) << n;
}

TEST(CheckAssociationData, FullCertificateMustBeACertificate) {
  const Bytes cert = from_hex(expected_hex("ec", 0, 0));
  const Bytes spki = from_hex(expected_hex("ec", 1, 0));
  EXPECT_TRUE(check(0, 0, cert).ok());
  EXPECT_FALSE(check(0, 0, spki).ok());
  EXPECT_FALSE(check(0, 0, Bytes{}).ok());
  Bytes longer = cert;
  longer.push_back(0);
  EXPECT_FALSE(check(0, 0, longer).ok());
  EXPECT_FALSE(check(0, 0, Bytes(cert.begin(), cert.end() - 1)).ok());
}

TEST(CheckAssociationData, SpkiMustBeAnSpki) {
  for (const char* name : {"rsa", "ec", "ed25519"}) {
    const Bytes cert = from_hex(expected_hex(name, 0, 0));
    const Bytes spki = from_hex(expected_hex(name, 1, 0));
    EXPECT_TRUE(check(1, 0, spki).ok()) << name;
    EXPECT_FALSE(check(1, 0, cert).ok()) << name;
    Bytes longer = spki;
    longer.push_back(0);
    EXPECT_FALSE(check(1, 0, longer).ok()) << name;
  }
  EXPECT_FALSE(check(1, 0, Bytes{}).ok());
  EXPECT_FALSE(check(1, 0, Bytes(32, 0x30)).ok());
}

TEST(MakeRecordParams, Ranges) {
  EXPECT_TRUE(make_record_params(0, 0, 0).has_value());
  EXPECT_TRUE(make_record_params(3, 1, 2).has_value());
  EXPECT_FALSE(make_record_params(4, 0, 0).has_value());
  EXPECT_FALSE(make_record_params(3, 2, 0).has_value());
  EXPECT_FALSE(make_record_params(3, 0, 3).has_value());
  EXPECT_FALSE(make_record_params(-1, 0, 0).has_value());
}

}  // namespace
}  // namespace smimea

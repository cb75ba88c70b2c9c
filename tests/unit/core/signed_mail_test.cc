// Publishing from a signed mail: the signer told apart from the other certificates of the
// mail, the From field read, and the provisioning service's refusals. The mails were made
// with `openssl smime` and `openssl cms` (tests/data/README.md).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../store_util.h"
#include "../test_util.h"
#include "smimea/cert.h"
#include "smimea/hex.h"
#include "smimea/provision.h"

namespace smimea {
namespace {

using test::expected_hex;
using test::read_data;

std::vector<Certificate> mail(const std::string& file) { return test::data_certs(file); }

std::string fingerprint(const Certificate& c) { return to_hex(c.fingerprint); }

Status refused(std::string_view input, std::string_view source = "mail") {
  auto r = parse_certificates(input, source);
  EXPECT_FALSE(r.ok()) << source << " was accepted";
  return r.ok() ? Status() : r.status();
}

// signed.eml with its From field replaced (the headers of a detached signature's mail are
// outside what it signs, so the signature still verifies).
std::string with_from(const std::string& from_field) {
  std::string text = read_data("certs/signed.eml");
  const std::string field = "From: alice@example.com\n";
  const std::size_t at = text.find(field);
  EXPECT_NE(at, std::string::npos);
  if (at != std::string::npos) text.replace(at, field.size(), from_field);
  return text;
}

MailAddress address(std::string_view text) {
  auto addr = parse_address(text);
  EXPECT_TRUE(addr.ok()) << text;
  return addr.ok() ? *addr : MailAddress{};
}

// --- which certificate signed ---

TEST(SignedMail, TheSignerComesFirstWhereverItIsInTheBag) {
  // openssl puts -certfile's certificates before the signer's: Bob's, then Alice's.
  const auto certs = mail("signed-cms.eml");
  ASSERT_EQ(certs.size(), 2u);
  EXPECT_EQ(fingerprint(certs[0]), expected_hex("rsa", 0, 1));
  EXPECT_EQ(certs[0].signed_mail_from, "alice@example.com");
  EXPECT_EQ(fingerprint(certs[1]), expected_hex("ec", 0, 1));
  EXPECT_EQ(certs[1].signed_mail_from, "");
  EXPECT_EQ(mail_signer(certs), &certs[0]);
}

TEST(SignedMail, Pkcs7MailsStillGiveTheSignerFirst) {
  for (const char* file : {"signed.eml", "signed-opaque.eml"}) {
    const auto certs = mail(file);
    ASSERT_FALSE(certs.empty()) << file;
    EXPECT_EQ(fingerprint(certs.front()), expected_hex("rsa", 0, 1)) << file;
    EXPECT_EQ(certs.front().signed_mail_from, "alice@example.com") << file;
  }
  EXPECT_EQ(mail("signed.eml").size(), 2u);  // ca.pem came first in the bag
}

TEST(SignedMail, ASignerNamedByKeyIdentifierIsFound) {
  const auto certs = mail("signed-keyid.eml");
  ASSERT_EQ(certs.size(), 1u);
  EXPECT_EQ(fingerprint(certs[0]), expected_hex("ec", 0, 1));
  EXPECT_EQ(certs[0].signed_mail_from, "Bob.Smith@Example.COM");
}

TEST(SignedMail, OtherInputHasNoSigner) {
  EXPECT_EQ(mail_signer(mail("multi.pem")), nullptr);
  EXPECT_EQ(mail_signer(mail("bundle.p7b")), nullptr);
}

// --- mails refused as input ---

TEST(SignedMail, AnEncryptedMailIsRefusedWithItsOwnWords) {
  const Status s = refused(read_data("certs/encrypted.eml"));
  EXPECT_NE(s.message().find("an encrypted mail carries no certificate to publish; send a "
                             "signed mail"),
            std::string::npos)
      << s.message();
}

TEST(SignedMail, AMailWithoutFromIsRefused) {
  const Status s = refused(read_data("certs/signed-nofrom.eml"));
  EXPECT_NE(s.message().find("the mail has no From address"), std::string::npos) << s.message();
}

TEST(SignedMail, SeveralFromAddressesAreRefused) {
  for (const std::string& field :
       {std::string("From: alice@example.com, carol@example.com\n"),
        std::string("From: alice@example.com\nFrom: carol@example.com\n")}) {
    const Status s = refused(with_from(field));
    EXPECT_NE(s.message().find("From names 2 addresses (alice@example.com, carol@example.com)"),
              std::string::npos)
        << s.message();
  }
}

TEST(SignedMail, AFromThatIsNotAnAddressIsRefused) {
  const Status s = refused(with_from("From: Alice Example\n"));
  EXPECT_NE(s.message().find("the mail's From is not an address"), std::string::npos)
      << s.message();
}

TEST(SignedMail, AnUnsignedMailIsRefusedAsSuch) {
  const Status s = refused("From: alice@example.com\r\nSubject: my key\r\n\r\nHello\r\n");
  EXPECT_NE(s.message().find("a mail without an S/MIME signature carries no certificate"),
            std::string::npos)
      << s.message();
  // A certificate pasted into a mail is still read.
  EXPECT_EQ(
      parse_certificates("From: alice@example.com\n\n" + read_data("certs/rsa.pem"), "m")->size(),
      1u);
}

TEST(SignedMail, ATamperedMailIsRefusedBeforeItsFromIsRead) {
  const Status s = refused(read_data("certs/signed-tampered.eml"));
  EXPECT_NE(s.message().find("does not verify"), std::string::npos) << s.message();
}

// --- the From field ---

TEST(MailFrom, AddrSpecsOutOfTheFormsMailersWrite) {
  struct Case {
    std::string header;
    std::vector<std::string> want;
  };
  const std::vector<Case> cases = {
      {"From: alice@example.com\r\n\r\n", {"alice@example.com"}},
      {"From: \"Alice Example\" <alice@example.com>\r\n", {"alice@example.com"}},
      {"From: Alice (the boss) <alice@example.com> (work)\n", {"alice@example.com"}},
      {"From: alice@example.com (Alice)\n", {"alice@example.com"}},
      {"From: \"Example, Alice\"\r\n <alice@example.com>\r\n", {"alice@example.com"}},
      {"from :   \"a > b\" <alice@example.com>\n", {"alice@example.com"}},
      {"From: =?UTF-8?Q?J=C3=BCrgen?= <j\xc3\xbcrgen@b\xc3\xbc"
       "cher.example>\n",
       {"j\xc3\xbcrgen@b\xc3\xbc"
        "cher.example"}},
      {"From: \"john doe\"@example.com\n", {"\"john doe\"@example.com"}},
      {"From: <@relay.example:alice@example.com>\n", {"alice@example.com"}},
      {"From: a@example.com, \"B, b\" <b@example.com>\n", {"a@example.com", "b@example.com"}},
      {"From: Team: a@example.com, b@example.com;\n", {"a@example.com", "b@example.com"}},
      {"From: a@example.com\nSubject: x\nFrom: b@example.com\n",
       {"a@example.com", "b@example.com"}},
      {"Subject: no sender\nX-From: x@example.com\n\nFrom: body@example.com\n", {}},
      {"From: undisclosed:;\n", {}},
  };
  for (const Case& c : cases) EXPECT_EQ(mail_from_addresses(c.header), c.want) << c.header;
}

// --- who may publish what ---

TEST(SignedMailRefusal, SignerAndFromMustBeTheAddressMailboxCaseAsTheZoneHasIt) {
  Certificate alice = mail("signed.eml").front();
  EXPECT_EQ(signed_mail_refusal(alice, address("alice@example.com")), "");
  EXPECT_EQ(signed_mail_refusal(alice, address("Alice@EXAMPLE.com")), "");
  EXPECT_EQ(signed_mail_refusal(alice, address("bob@example.com")),
            "the mail is signed by a certificate for alice@example.com, not bob@example.com");
  alice.signed_mail_from = "Alice@Example.COM";
  EXPECT_EQ(signed_mail_refusal(alice, address("alice@example.com")), "");
  EXPECT_EQ(signed_mail_refusal(alice, address("alice@example.com"), /*case_sensitive=*/true),
            "the mail's From is Alice@Example.COM, not alice@example.com");
  alice.signed_mail_from = "carol@example.com";
  EXPECT_EQ(signed_mail_refusal(alice, address("alice@example.com")),
            "the mail's From is carol@example.com, not alice@example.com");
}

TEST(SignedMailRefusal, InternationalAddressesCompareInALabelForm) {
  Certificate utf8 = mail("utf8.pem").front();
  utf8.signed_mail_from = "j\xc3\xbcrgen@xn--bcher-kva.example";
  EXPECT_EQ(signed_mail_refusal(utf8, address("j\xc3\xbcrgen@b\xc3\xbc"
                                              "cher.example")),
            "");
}

// --- the provisioning service ---

class SignedMailPublish : public ::testing::Test {
 protected:
  SignedMailPublish() : provisioner_(fixture_.store(), config_) {
    fixture_.add_zones({{"example.com", ZoneMode::kAuthoritative}});
  }
  std::size_t stored() {
    auto listed = fixture_.store().list_certificates("", "");
    EXPECT_TRUE(listed.ok());
    return listed.ok() ? listed->size() : 0;
  }

  test::StoreFixture fixture_;
  Config config_;
  Provisioner provisioner_;
};

TEST_F(SignedMailPublish, OnlyTheSignersCertificateIsPublished) {
  // Bob's certificate names bob.smith@example.com and came in the same mail, unsigned.
  auto r = provisioner_.publish("alice@example.com", mail("signed-cms.eml"), "mail", {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->certificates.size(), 1u);
  EXPECT_EQ(to_hex(r->certificates[0].fingerprint), expected_hex("rsa", 0, 1));
  auto bob = provisioner_.publish("bob.smith@example.com", mail("signed-cms.eml"), "mail", {});
  ASSERT_FALSE(bob.ok());
  EXPECT_EQ(bob.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(bob.status().message(),
            "mail: the mail is signed by a certificate for alice@example.com, not "
            "bob.smith@example.com");
  EXPECT_EQ(stored(), 1u);
}

TEST_F(SignedMailPublish, ForceDoesNotOverrideTheMailsChecks) {
  PublishOptions force;
  force.force = true;
  auto signer = provisioner_.publish("bob@example.com", mail("signed.eml"), "mail", force);
  ASSERT_FALSE(signer.ok());
  EXPECT_EQ(signer.status().message(),
            "mail: the mail is signed by a certificate for alice@example.com, not "
            "bob@example.com");
  auto certs = parse_certificates(with_from("From: carol@example.com\n"), "mail");
  ASSERT_TRUE(certs.ok()) << certs.status().message();
  auto from = provisioner_.publish("alice@example.com", *certs, "mail", force);
  ASSERT_FALSE(from.ok());
  EXPECT_EQ(from.status().message(),
            "mail: the mail's From is carol@example.com, not alice@example.com");
  EXPECT_EQ(stored(), 0u);
}

TEST_F(SignedMailPublish, ImportTakesTheSignerForTheMailsFromAlone) {
  auto batch = provisioner_.begin();
  ASSERT_TRUE(batch.ok());
  ASSERT_TRUE(batch->import(mail("signed-cms.eml"), "signed-cms.eml", {}).ok());
  ASSERT_TRUE(batch->import(mail("signed-keyid.eml"), "signed-keyid.eml", {}).ok());
  auto foreign = parse_certificates(with_from("From: Bob <bob.smith@example.com>\n"), "forged");
  ASSERT_TRUE(foreign.ok()) << foreign.status().message();
  ASSERT_TRUE(batch->import(*foreign, "forged.eml", {}).ok());
  ASSERT_TRUE(batch->commit().ok());
  const ImportResult& r = batch->imported();
  EXPECT_EQ(r.added, 2u);  // Alice from signed-cms.eml (not Bob's bag copy), Bob from his own
  ASSERT_EQ(r.skipped.size(), 1u);
  EXPECT_NE(r.skipped[0].find("forged.eml (CN=Alice): the mail is signed by a certificate for "
                              "alice@example.com, not bob.smith@example.com"),
            std::string::npos)
      << r.skipped[0];
  auto bob = fixture_.store().list_certificates("Bob.Smith@example.com", "");
  ASSERT_TRUE(bob.ok());
  ASSERT_EQ(bob->size(), 1u);
  EXPECT_EQ((*bob)[0].address, "Bob.Smith@example.com");  // the From as the mail wrote it
}

}  // namespace
}  // namespace smimea

// The provisioning service over a real store in a temporary directory: what every writer
// (smimea-ctl, the HTTP API) gets. Known answers come from the openssl command line
// (tests/data/certs/*.expect) and RFC 8162's owner-name rule, not from this code.
#include "smimea/provision.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <ctime>
#include <string>
#include <vector>

#include "../store_util.h"
#include "../test_util.h"
#include "smimea/hex.h"

namespace smimea {
namespace {

using test::StoreFixture;

std::vector<Certificate> certs(const std::string& file) { return test::data_certs(file); }

// SHA2-256 of "alice", first 28 octets (RFC 8162 section 3), as `printf alice | sha256sum`.
constexpr const char* kAliceOwner =
    "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db._smimecert.example.com.";

class ProvisionTest : public ::testing::Test {
 protected:
  ProvisionTest() : provisioner_(fixture_.store(), config_) {
    config_.default_ttl = 3600;
    zone_ = fixture_.add_zones({{"example.com", ZoneMode::kAuthoritative}}).front();
  }

  // Records of the store as "owner u s m ttl", sorted: the state a refusal must not change.
  std::vector<std::string> state() {
    auto listed = fixture_.store().list_certificates("", "");
    EXPECT_TRUE(listed.ok());
    std::vector<std::string> out;
    for (const CertInfo& c : *listed) {
      for (const CertRecordInfo& r : c.records) {
        out.push_back(c.address + " " + r.owner_name + " " +
                      std::to_string(static_cast<int>(r.params.usage)) + " " +
                      std::to_string(r.ttl));
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  StoreFixture fixture_;
  Config config_;
  Provisioner provisioner_;
  Zone zone_;
};

TEST_F(ProvisionTest, PublishComputesOwnerAndAssociationDataAndMovesTheSerial) {
  auto r = provisioner_.publish("alice@example.com", certs("rsa.pem"), "rsa.pem", {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->address, "alice@example.com");
  EXPECT_EQ(r->zone, "example.com");
  EXPECT_NE(r->serial, zone_.serial);
  EXPECT_EQ(r->serial, fixture_.zone("example.com").serial);
  ASSERT_EQ(r->certificates.size(), 1u);
  const PublishedCertificate& c = r->certificates[0];
  EXPECT_EQ(c.records_added, 1);  // "alice" is already lower-case: one owner name
  ASSERT_EQ(c.records.size(), 1u);
  EXPECT_EQ(c.records[0].owner, kAliceOwner);
  EXPECT_EQ(c.records[0].ttl, 3600u);
  EXPECT_EQ(to_hex(c.records[0].data.data(), c.records[0].data.size()),
            test::expected_hex("rsa", 0, 0));
  EXPECT_TRUE(r->warnings.empty());
}

TEST_F(ProvisionTest, PreviewGivesTheSameRecordsAndStoresNothing) {
  const std::uint32_t serial = fixture_.zone("example.com").serial;
  PublishOptions o;
  o.records = {*make_record_params(3, 1, 1)};
  auto preview = provisioner_.preview("alice@example.com", certs("rsa.pem"), "rsa.pem", o);
  ASSERT_TRUE(preview.ok()) << preview.status().message();
  EXPECT_TRUE(state().empty());
  EXPECT_EQ(fixture_.zone("example.com").serial, serial);
  ASSERT_EQ(preview->certificates.size(), 1u);
  const PublishedRecord& rec = preview->certificates[0].records.at(0);
  EXPECT_EQ(to_hex(rec.data.data(), rec.data.size()), test::expected_hex("rsa", 1, 1));

  auto published = provisioner_.publish("alice@example.com", certs("rsa.pem"), "rsa.pem", o);
  ASSERT_TRUE(published.ok());
  EXPECT_EQ(published->certificates[0].records[0].owner, rec.owner);
  EXPECT_EQ(published->certificates[0].records[0].data, rec.data);
}

TEST_F(ProvisionTest, PreviewShowsTheTtlTheRrsetWouldKeep) {
  PublishOptions ttl;
  ttl.ttl = 600;
  ASSERT_TRUE(provisioner_.publish("alice@example.com", certs("rsa.pem"), "rsa.pem", ttl).ok());
  PublishOptions spki;
  spki.records = {*make_record_params(3, 1, 1)};
  auto preview = provisioner_.preview("alice@example.com", certs("rsa.pem"), "rsa.pem", spki);
  ASSERT_TRUE(preview.ok()) << preview.status().message();
  EXPECT_EQ(preview->certificates[0].records[0].ttl, 600u);  // one TTL per RRset, not 3600
}

TEST_F(ProvisionTest, RefusalsLeaveTheStoreAsItWas) {
  ASSERT_TRUE(provisioner_.publish("alice@example.com", certs("rsa.pem"), "rsa.pem", {}).ok());
  const std::vector<std::string> before = state();
  const std::uint32_t serial = fixture_.zone("example.com").serial;
  struct Case {
    std::string address;
    std::string file;
    PublishOptions options;
    std::string words;
  };
  PublishOptions anchor;
  anchor.records = {*make_record_params(2, 0, 0)};
  const std::vector<Case> cases = {
      {"bob@example.com", "rsa.pem", {}, "does not name bob@example.com"},
      {"ca@example.com", "ca.pem", {}, "is a CA certificate"},
      {"alice@example.com", "rsa.pem", anchor, "is not a CA certificate"},
      {"alice@example.org", "rsa.pem", {}, "no zone in the store"},
      {"not an address", "rsa.pem", {}, "not an address"},
  };
  for (const Case& c : cases) {
    auto r = provisioner_.publish(c.address, certs(c.file), c.file, c.options);
    ASSERT_FALSE(r.ok()) << c.address;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << r.status().message();
    EXPECT_NE(r.status().message().find(c.words), std::string::npos) << r.status().message();
  }
  EXPECT_EQ(state(), before);
  EXPECT_EQ(fixture_.zone("example.com").serial, serial);
}

TEST_F(ProvisionTest, ForcePublishesWithTheProblemAsAWarning) {
  PublishOptions force;
  force.force = true;
  auto r = provisioner_.publish("bob@example.com", certs("rsa.pem"), "rsa.pem", force);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("does not name bob@example.com"), std::string::npos);
}

TEST_F(ProvisionTest, AnotherSpellingJoinsTheMailboxWithAWarning) {
  PublishOptions force;
  force.force = true;
  ASSERT_TRUE(provisioner_.publish("Alice@example.com", certs("rsa.pem"), "rsa.pem", {}).ok());
  auto r = provisioner_.publish("ALICE@example.com", certs("ec.pem"), "ec.pem", force);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->address, "Alice@example.com");
  ASSERT_FALSE(r->warnings.empty());
  EXPECT_NE(r->warnings[0].find("is the mailbox Alice@example.com"), std::string::npos);
}

TEST_F(ProvisionTest, ABatchIsOneTransaction) {
  {
    auto batch = provisioner_.begin();
    ASSERT_TRUE(batch.ok());
    ASSERT_TRUE(batch->publish("alice@example.com", certs("rsa.pem"), "rsa.pem", {}).ok());
  }  // dropped without commit
  EXPECT_TRUE(state().empty());
  auto batch = provisioner_.begin();
  ASSERT_TRUE(batch.ok());
  ASSERT_TRUE(batch->publish("alice@example.com", certs("rsa.pem"), "rsa.pem", {}).ok());
  ASSERT_TRUE(batch->import(certs("ec.pem"), "ec.pem", {}).ok());
  ASSERT_TRUE(batch->commit().ok());
  const ImportResult& r = batch->imported();
  // Bob.Smith@Example.COM (two owner names: as written and lower-cased); bob@example.net has
  // no zone here.
  EXPECT_EQ(r.added, 1u);
  EXPECT_EQ(r.records_added, 2u);
  EXPECT_EQ(state().size(), 1u + 2u);
  ASSERT_EQ(r.skipped.size(), 1u);
  EXPECT_NE(r.skipped[0].find("bob@example.net: example.net: no zone in the store"),
            std::string::npos)
      << r.skipped[0];
}

TEST_F(ProvisionTest, ImportPublishesForTheAddressesACertificateNames) {
  auto batch = provisioner_.begin();
  ASSERT_TRUE(batch.ok());
  ASSERT_TRUE(batch->import(certs("multi.pem"), "multi.pem", {}).ok());
  ASSERT_TRUE(batch->import(certs("noaddr.pem"), "noaddr.pem", {}).ok());
  ASSERT_TRUE(batch->import(certs("ca.pem"), "ca.pem", {}).ok());
  batch->skip("broken.pem: not a certificate");
  ASSERT_TRUE(batch->commit().ok());
  const ImportResult& r = batch->imported();
  EXPECT_EQ(r.added, 2u);  // alice@ and Bob.Smith@example.com
  EXPECT_EQ(r.zones_changed, std::vector<std::string>{"example.com"});
  // bob@example.net (no zone), Nobody (no address), the CA (usage 3 refused, nothing forced),
  // the broken input.
  EXPECT_EQ(r.skipped.size(), 4u);
}

TEST_F(ProvisionTest, RemoveTakesTheWholeMailboxOrOneFingerprint) {
  ASSERT_TRUE(provisioner_.publish("alice@example.com", certs("rsa.pem"), "rsa.pem", {}).ok());
  auto fp = parse_fingerprint(std::string(64, '0'));
  ASSERT_TRUE(fp.ok());
  auto none = provisioner_.remove("ALICE@example.com", *fp);
  ASSERT_FALSE(none.ok());
  EXPECT_TRUE(none.status().is_not_found());
  std::string mailbox;
  auto removed = provisioner_.remove("ALICE@example.com", std::nullopt, &mailbox);
  ASSERT_TRUE(removed.ok()) << removed.status().message();
  EXPECT_EQ(*removed, 1);
  EXPECT_TRUE(state().empty());
}

TEST_F(ProvisionTest, ZonesThroughTheService) {
  auto added = provisioner_.add_zone("_smimecert.Example.COM.", ZoneMode::kAuthoritative,
                                     ZoneKind::kNative, false);
  ASSERT_TRUE(added.ok()) << added.status().message();
  EXPECT_EQ(added->zone.name, "_smimecert.example.com");
  EXPECT_TRUE(added->delegated_by_parent);
  auto kind = provisioner_.set_zone_kind("_smimecert.example.com", ZoneKind::kMaster);
  ASSERT_TRUE(kind.ok());
  EXPECT_EQ(kind->kind, ZoneKind::kMaster);
  EXPECT_FALSE(
      provisioner_.add_zone("bad..name", ZoneMode::kAuthoritative, ZoneKind::kMaster, false).ok());
  auto removed = provisioner_.remove_zone("_smimecert.example.com", false);
  ASSERT_TRUE(removed.ok()) << removed.status().message();
  auto zones = provisioner_.zones();
  ASSERT_TRUE(zones.ok());
  ASSERT_EQ(zones->size(), 1u);
  EXPECT_EQ(zones->front().name, "example.com");
}

TEST_F(ProvisionTest, ACertificateNotForEmailIsPublishedWithAWarning) {
  auto r = provisioner_.publish("www@example.com", certs("tls_only.pem"), "tls_only.pem", {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("email protection"), std::string::npos) << r->warnings[0];
  auto ok = provisioner_.publish("alice@example.com", certs("rsa.pem"), "rsa.pem", {});
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->warnings.empty());
}

TEST_F(ProvisionTest, ATokenSecretIsShownOnceAndStoredAsItsHash) {
  Provisioner p(fixture_.store(), config_, "cli:tester");
  TokenRequest r;
  r.name = "panel";
  r.zones = {"Example.COM."};
  r.expires_days = 30;
  auto added = p.add_token(r);
  ASSERT_TRUE(added.ok()) << added.status().message();
  // "smimea_" and 256 bits as base64url, no padding.
  ASSERT_EQ(added->secret.size(), 7u + 43u);
  EXPECT_EQ(added->secret.rfind("smimea_", 0), 0u);
  EXPECT_EQ(added->secret.find_first_not_of(
                "smimea_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);
  EXPECT_EQ(added->token.zones, std::vector<std::string>{"example.com"});
  EXPECT_EQ(added->token.created_by, "cli:tester");
  const std::int64_t now = std::time(nullptr);
  auto ok = p.authenticate(added->secret, now, "127.0.0.1");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->name, "panel");
  std::string wrong = added->secret;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  EXPECT_TRUE(p.authenticate(wrong, now, "127.0.0.1").status().is_not_found());
  EXPECT_TRUE(p.authenticate("", now, "127.0.0.1").status().is_not_found());
  EXPECT_TRUE(p.authenticate(added->secret, now + 31 * 86400, "127.0.0.1")
                  .status()
                  .is_not_found());  // expired
  auto second = p.add_token(r);
  EXPECT_EQ(second.status().code(), Status::Code::kConflict);
  ASSERT_TRUE(p.remove_token("panel").ok());
  EXPECT_TRUE(p.authenticate(added->secret, now, "127.0.0.1").status().is_not_found());  // removed
}

TEST_F(ProvisionTest, TokenScopesAreCheckedBeforeAnythingIsStored) {
  struct Case {
    TokenRequest request;
    std::string words;
  };
  auto req = [](std::string name) {
    TokenRequest r;
    r.name = std::move(name);
    return r;
  };
  std::vector<Case> cases;
  cases.push_back({req("no-scope"), "needs a scope"});
  cases.push_back({req("bad name"), "letters, digits"});
  TokenRequest unknown_zone = req("z");
  unknown_zone.zones = {"example.org"};
  cases.push_back({unknown_zone, "example.org"});
  TokenRequest admin_scoped = req("a");
  admin_scoped.admin = true;
  admin_scoped.zones = {"example.com"};
  cases.push_back({admin_scoped, "every zone"});
  TokenRequest bad_net = req("n");
  bad_net.zones = {"example.com"};
  bad_net.networks = {"192.0.2.0/33"};
  cases.push_back({bad_net, "prefix length"});
  TokenRequest bad_addr = req("m");
  bad_addr.addresses = {"not an address"};
  cases.push_back({bad_addr, "not an address"});
  for (const Case& c : cases) {
    auto r = provisioner_.add_token(c.request);
    ASSERT_FALSE(r.ok()) << c.request.name;
    EXPECT_NE(r.status().message().find(c.words), std::string::npos) << r.status().message();
  }
  EXPECT_TRUE(provisioner_.tokens()->empty());
}

TEST_F(ProvisionTest, EveryCertificateChangeRecordsWhoMadeIt) {
  Provisioner cli(fixture_.store(), config_, "cli:alice");
  ASSERT_TRUE(cli.publish("alice@example.com", certs("rsa.pem"), "rsa.pem", {}).ok());
  EXPECT_EQ(fixture_.store().list_certificates("", "")->at(0).changed_by, "cli:alice");
  Provisioner api(fixture_.store(), config_, "token:panel");
  PublishOptions ttl;
  ttl.ttl = 60;
  ASSERT_TRUE(api.publish("alice@example.com", certs("rsa.pem"), "rsa.pem", ttl).ok());
  EXPECT_EQ(fixture_.store().list_certificates("", "")->at(0).changed_by, "token:panel");
}

TEST(ParseRecordParams, TakesSpacesOrCommasInRange) {
  auto p = parse_record_params("3,1 1");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, *make_record_params(3, 1, 1));
  EXPECT_FALSE(parse_record_params("3 0 3").ok());
  EXPECT_FALSE(parse_record_params("3 0").ok());
  EXPECT_FALSE(parse_record_params("3 0 0 x").ok());
}

TEST(ParseFingerprint, TakesHexWithColons) {
  std::string hex;
  for (int i = 0; i < 32; ++i) hex += (i ? ":" : "") + std::string("ab");
  auto fp = parse_fingerprint(hex);
  ASSERT_TRUE(fp.ok());
  EXPECT_EQ((*fp)[31], 0xab);
  EXPECT_FALSE(parse_fingerprint("abcd").ok());
}

}  // namespace
}  // namespace smimea

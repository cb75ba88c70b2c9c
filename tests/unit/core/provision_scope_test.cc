// What a Provisioner acting for an API token may see and change (provision.h, "Scope"): each
// rule both ways, and a refusal leaves the store as it was.
#include <gtest/gtest.h>

#include <ctime>
#include <string>
#include <vector>

#include "../store_util.h"
#include "../test_util.h"
#include "smimea/provision.h"

namespace smimea {
namespace {

using test::StoreFixture;

std::vector<Certificate> certs(const std::string& file) { return test::data_certs(file); }

Token token(std::vector<std::string> zones, std::vector<std::string> addresses,
            bool read_only = false, bool admin = false) {
  Token t;
  t.name = "t";
  t.zones = std::move(zones);
  t.addresses = std::move(addresses);
  t.read_only = read_only;
  t.admin = admin;
  return t;
}

class ProvisionScopeTest : public ::testing::Test {
 protected:
  ProvisionScopeTest() {
    fixture_.add_zones(
        {{"example.com", ZoneMode::kAuthoritative}, {"example.net", ZoneMode::kAuthoritative}});
  }
  std::size_t count() {
    auto all = fixture_.store().list_certificates("", "");
    EXPECT_TRUE(all.ok());
    return all.ok() ? all->size() : 0;
  }
  Result<PublishResult> publish_as(const Token& t, const std::string& address,
                                   const std::string& file, bool force = false) {
    PublishOptions o;
    o.force = force;
    return Provisioner(fixture_.store(), config_, t).publish(address, certs(file), file, o);
  }

  StoreFixture fixture_;
  Config config_;
};

TEST_F(ProvisionScopeTest, AZoneTokenActsInItsZonesOnly) {
  const Token t = token({"example.com"}, {});
  auto in = publish_as(t, "alice@example.com", "rsa.pem");
  ASSERT_TRUE(in.ok()) << in.status().message();
  auto out = publish_as(t, "bob@example.net", "ec.pem");
  EXPECT_EQ(out.status().code(), Status::Code::kPermissionDenied);
  EXPECT_NE(out.status().message().find("token t: may not act for bob@example.net"),
            std::string::npos)
      << out.status().message();
  EXPECT_EQ(count(), 1u);
  // The changes are the token's.
  auto listed = fixture_.store().list_certificates("alice@example.com", "");
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->front().changed_by, "token:t");
}

TEST_F(ProvisionScopeTest, AnAddressTokenActsForItsMailboxIgnoringLetterCase) {
  const Token t = token({}, {"ALICE@example.com"});
  EXPECT_TRUE(publish_as(t, "alice@example.com", "rsa.pem").ok());
  EXPECT_EQ(publish_as(t, "bob.smith@example.com", "ec.pem").status().code(),
            Status::Code::kPermissionDenied);
  // No force for an address token, even for its own mailbox.
  EXPECT_EQ(publish_as(t, "alice@example.com", "ec.pem", true).status().code(),
            Status::Code::kPermissionDenied);
  EXPECT_EQ(count(), 1u);
}

TEST_F(ProvisionScopeTest, InACaseSensitiveZoneAnAddressTokenMatchesExactly) {
  Provisioner admin(fixture_.store(), config_);
  ASSERT_TRUE(
      admin.add_zone("example.org", ZoneMode::kAuthoritative, ZoneKind::kMaster, true).ok());
  // ec.pem names Bob.Smith@Example.COM; force publishes it at example.org for the test.
  PublishOptions force;
  force.force = true;
  ASSERT_TRUE(admin.publish("Bob.Smith@example.org", certs("ec.pem"), "ec.pem", force).ok());
  Provisioner exact(fixture_.store(), config_, token({}, {"Bob.Smith@example.org"}));
  Provisioner folded(fixture_.store(), config_, token({}, {"bob.smith@example.org"}));
  EXPECT_TRUE(exact.list("Bob.Smith@example.org", "").ok());
  EXPECT_EQ(folded.list("Bob.Smith@example.org", "").status().code(),
            Status::Code::kPermissionDenied);
  EXPECT_EQ(folded.remove("Bob.Smith@example.org", std::nullopt).status().code(),
            Status::Code::kPermissionDenied);
  EXPECT_EQ(count(), 1u);
}

TEST_F(ProvisionScopeTest, AReadOnlyTokenListsAndPreviewsButNeverWrites) {
  const Token t = token({"example.com"}, {}, /*read_only=*/true);
  Provisioner p(fixture_.store(), config_, t);
  EXPECT_TRUE(p.preview("alice@example.com", certs("rsa.pem"), "rsa.pem", {}).ok());
  EXPECT_EQ(p.publish("alice@example.com", certs("rsa.pem"), "rsa.pem", {}).status().code(),
            Status::Code::kPermissionDenied);
  ASSERT_TRUE(Provisioner(fixture_.store(), config_)
                  .publish("alice@example.com", certs("rsa.pem"), "rsa.pem", {})
                  .ok());
  auto listed = p.list("", "example.com");
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 1u);
  EXPECT_EQ(p.remove_certificate(listed->front().fingerprint).status().code(),
            Status::Code::kPermissionDenied);
  EXPECT_EQ(count(), 1u);
}

TEST_F(ProvisionScopeTest, OnlyAnAdminTokenChangesZones) {
  Provisioner zone_token(fixture_.store(), config_, token({"example.com"}, {}));
  EXPECT_EQ(zone_token.add_zone("example.org", ZoneMode::kAuthoritative, ZoneKind::kMaster, false)
                .status()
                .code(),
            Status::Code::kPermissionDenied);
  EXPECT_EQ(zone_token.remove_zone("example.com", true).status().code(),
            Status::Code::kPermissionDenied);
  EXPECT_EQ(zone_token.set_zone_kind("example.com", ZoneKind::kNative).status().code(),
            Status::Code::kPermissionDenied);
  Provisioner admin(fixture_.store(), config_, token({}, {}, false, /*admin=*/true));
  EXPECT_TRUE(
      admin.add_zone("example.org", ZoneMode::kAuthoritative, ZoneKind::kMaster, false).ok());
  EXPECT_TRUE(admin.remove_zone("example.org", false).ok());
}

TEST_F(ProvisionScopeTest, ZonesAndListsShowOnlyTheScope) {
  Provisioner all(fixture_.store(), config_);
  ASSERT_TRUE(all.publish("alice@example.com", certs("rsa.pem"), "rsa.pem", {}).ok());
  ASSERT_TRUE(all.publish("bob@example.net", certs("ec.pem"), "ec.pem", {}).ok());
  Provisioner net(fixture_.store(), config_, token({"example.net"}, {}));
  auto zones = net.zones();
  ASSERT_TRUE(zones.ok());
  ASSERT_EQ(zones->size(), 1u);
  EXPECT_EQ(zones->front().name, "example.net");
  auto listed = net.list("", "");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().address, "bob@example.net");
  EXPECT_EQ(net.list("", "example.com").status().code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(net.list("alice@example.com", "").status().code(), Status::Code::kPermissionDenied);
  Provisioner alice(fixture_.store(), config_, token({}, {"alice@example.com"}));
  auto own = alice.zones();
  ASSERT_TRUE(own.ok());
  ASSERT_EQ(own->size(), 1u);
  EXPECT_EQ(own->front().name, "example.com");
}

TEST_F(ProvisionScopeTest, RemovingByFingerprintTakesOnlyWhatTheScopeReaches) {
  Provisioner all(fixture_.store(), config_);
  PublishOptions force;
  force.force = true;
  // One certificate in two mailboxes of two zones.
  ASSERT_TRUE(all.publish("bob@example.net", certs("ec.pem"), "ec.pem", {}).ok());
  ASSERT_TRUE(all.publish("bob@example.com", certs("ec.pem"), "ec.pem", force).ok());
  auto listed = all.list("bob@example.net", "");
  ASSERT_TRUE(listed.ok());
  const auto fp = listed->front().fingerprint;
  Provisioner other(fixture_.store(), config_, token({}, {"carol@example.com"}));
  EXPECT_EQ(other.remove_certificate(fp).status().code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(count(), 2u);
  Provisioner net(fixture_.store(), config_, token({"example.net"}, {}));
  auto removed = net.remove_certificate(fp);
  ASSERT_TRUE(removed.ok()) << removed.status().message();
  EXPECT_EQ(*removed, std::vector<std::string>{"bob@example.net"});
  EXPECT_EQ(count(), 1u);
  EXPECT_TRUE(net.remove_certificate(fp).status().code() == Status::Code::kPermissionDenied);
  std::array<std::uint8_t, 32> unknown{};
  EXPECT_TRUE(all.remove_certificate(unknown).status().is_not_found());
}

TEST_F(ProvisionScopeTest, AZoneTokenReachesTheSmimecertZoneBelowItsZone) {
  Provisioner admin(fixture_.store(), config_);
  ASSERT_TRUE(
      admin.add_zone("_smimecert.example.net", ZoneMode::kAuthoritative, ZoneKind::kMaster, false)
          .ok());
  Provisioner net(fixture_.store(), config_, token({"example.net"}, {}));
  auto published = net.publish("bob@example.net", certs("ec.pem"), "ec.pem", {});
  ASSERT_TRUE(published.ok()) << published.status().message();
  EXPECT_EQ(published->zone, "_smimecert.example.net");
  auto listed = net.list("", "");
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 1u);
  auto zones = net.zones();
  ASSERT_TRUE(zones.ok());
  EXPECT_EQ(zones->size(), 2u);
  // Not the other way round, and not a sibling.
  Provisioner com(fixture_.store(), config_, token({"example.com"}, {}));
  EXPECT_EQ(com.list("", "_smimecert.example.net").status().code(),
            Status::Code::kPermissionDenied);
}

TEST_F(ProvisionScopeTest, ARemovedZoneLeavesTheTokensThatNamedIt) {
  Provisioner cli(fixture_.store(), config_, "cli:tester");
  TokenRequest r;
  r.name = "both";
  r.zones = {"example.com", "example.net"};
  ASSERT_TRUE(cli.add_token(r).ok());
  ASSERT_TRUE(cli.remove_zone("example.net", false).ok());
  ASSERT_TRUE(cli.add_zone("example.net", ZoneMode::kAuthoritative, ZoneKind::kMaster, false).ok());
  auto tokens = cli.tokens();
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(tokens->size(), 1u);
  EXPECT_EQ(tokens->front().zones, std::vector<std::string>{"example.com"});
}

TEST_F(ProvisionScopeTest, AReadOnlyAdminTokenSeesEveryZoneAndChangesNothing) {
  Provisioner all(fixture_.store(), config_);
  ASSERT_TRUE(all.publish("bob@example.net", certs("ec.pem"), "ec.pem", {}).ok());
  Provisioner monitor(fixture_.store(), config_, token({}, {}, /*read_only=*/true, /*admin=*/true));
  auto zones = monitor.zones();
  ASSERT_TRUE(zones.ok());
  EXPECT_EQ(zones->size(), 2u);
  auto listed = monitor.list("", "");
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 1u);
  EXPECT_EQ(monitor.add_zone("example.org", ZoneMode::kAuthoritative, ZoneKind::kMaster, false)
                .status()
                .code(),
            Status::Code::kPermissionDenied);
  EXPECT_EQ(monitor.publish("alice@example.com", certs("rsa.pem"), "rsa.pem", {}).status().code(),
            Status::Code::kPermissionDenied);
  EXPECT_EQ(monitor.remove_certificate(listed->front().fingerprint).status().code(),
            Status::Code::kPermissionDenied);
  EXPECT_EQ(count(), 1u);
}

TEST_F(ProvisionScopeTest, ATokenWorksOnlyFromItsNetworks) {
  Provisioner p(fixture_.store(), config_, "cli:tester");
  TokenRequest r;
  r.name = "office";
  r.zones = {"example.com"};
  r.networks = {"192.0.2.0/24", "2001:db8::/32"};
  auto added = p.add_token(r);
  ASSERT_TRUE(added.ok()) << added.status().message();
  const std::int64_t now = std::time(nullptr);
  EXPECT_TRUE(p.authenticate(added->secret, now, "192.0.2.7").ok());
  EXPECT_TRUE(p.authenticate(added->secret, now, "::ffff:192.0.2.7").ok());
  EXPECT_TRUE(p.authenticate(added->secret, now, "2001:db8:1::5").ok());
  EXPECT_TRUE(p.authenticate(added->secret, now, "192.0.3.7").status().is_not_found());
  EXPECT_TRUE(p.authenticate(added->secret, now, "127.0.0.1").status().is_not_found());
  EXPECT_TRUE(p.authenticate(added->secret, now, "2001:db9::1").status().is_not_found());
}

}  // namespace
}  // namespace smimea

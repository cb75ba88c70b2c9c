// Store::zone_stats: the figures smimea-api's /metrics gives per zone.
#include <gtest/gtest.h>

#include <string>

#include "../store_util.h"
#include "smimea/store.h"

namespace smimea {
namespace {

using test::new_certificate;
using test::StoreFixture;

constexpr std::int64_t kNow = 1800000000;
constexpr std::int64_t kDay = 86400;

// A certificate of address whose notAfter is now + seconds.
NewCertificate expiring(const std::string& address, std::int64_t seconds) {
  NewCertificate cert = new_certificate("rsa.pem", address);
  cert.not_after = kNow + seconds;
  return cert;
}

TEST(ZoneStats, CertificatesByStateSerialAndLastChangePerZone) {
  StoreFixture fixture;
  const auto zones = fixture.add_zones({{"example.com", ZoneMode::kAuthoritative},
                                        {"example.org", ZoneMode::kAuthoritative},
                                        {"example.net", ZoneMode::kOverlay}});
  ASSERT_EQ(zones.size(), 3u);
  fixture.add(zones[0], expiring("expired@example.com", -1));
  fixture.add(zones[0], expiring("now@example.com", 0));  // valid until the end of this second
  fixture.add(zones[0], expiring("three@example.com", 3 * kDay));
  fixture.add(zones[0], expiring("seven@example.com", 7 * kDay));  // the 8th day: not within 7
  fixture.add(zones[0], expiring("twenty@example.com", 20 * kDay));
  fixture.add(zones[0], expiring("year@example.com", 365 * kDay));
  fixture.add(zones[1], expiring("old@example.org", -400 * kDay));
  auto stats = fixture.store().zone_stats(kNow);
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  ASSERT_EQ(stats->size(), 3u);
  const ZoneStats& com = (*stats)[0];
  EXPECT_EQ(com.zone, "example.com");
  EXPECT_EQ(com.certificates, 6u);
  EXPECT_EQ(com.expired, 1u);
  EXPECT_EQ(com.within_7_days, 2u);   // now, three
  EXPECT_EQ(com.within_30_days, 4u);  // now, three, seven, twenty
  auto zone = fixture.store().find_zone("example.com");
  ASSERT_TRUE(zone.ok());
  EXPECT_EQ(com.serial, zone->serial);
  EXPECT_GT(com.updated_at, 0);
  EXPECT_EQ((*stats)[1].zone, "example.net");
  EXPECT_EQ((*stats)[1].mode, ZoneMode::kOverlay);
  EXPECT_EQ((*stats)[1].certificates, 0u);
  EXPECT_EQ((*stats)[2].zone, "example.org");
  EXPECT_EQ((*stats)[2].certificates, 1u);
  EXPECT_EQ((*stats)[2].expired, 1u);
  EXPECT_EQ((*stats)[2].within_30_days, 0u);
}

}  // namespace
}  // namespace smimea

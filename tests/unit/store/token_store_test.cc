// API tokens in the store, and the migration to schema version 5 (tokens, the audit column).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "../sqlite_files.h"
#include "../store_util.h"
#include "../test_util.h"
#include "smimea/store.h"

namespace smimea {
namespace {

using test::StoreFixture;
using test::TempDir;

Token sample(const std::string& name, std::uint8_t fill) {
  Token t;
  t.name = name;
  t.secret_sha256.fill(fill);
  t.zones = {"example.com"};
  t.addresses = {"Alice@example.com"};
  t.networks = {"192.0.2.0/24", "2001:db8::/32"};
  t.read_only = true;
  t.expires_at = 2000000000;
  t.created_by = "cli:root";
  return t;
}

TEST(TokenStore, AddFindListRemove) {
  StoreFixture f;
  Store& s = f.store();
  ASSERT_TRUE(s.begin().ok());
  auto added = s.add_token(sample("panel", 0xab));
  ASSERT_TRUE(added.ok()) << added.status().message();
  EXPECT_GT(added->id, 0);
  EXPECT_GT(added->created_at, 0);
  // A second token with the same name, or the same secret, is refused.
  auto same_name = s.add_token(sample("panel", 0xcd));
  ASSERT_FALSE(same_name.ok());
  EXPECT_EQ(same_name.status().code(), Status::Code::kConflict);
  EXPECT_EQ(s.add_token(sample("other", 0xab)).status().code(), Status::Code::kConflict);
  ASSERT_TRUE(s.commit().ok());

  std::array<std::uint8_t, 32> hash{};
  hash.fill(0xab);
  auto found = s.find_token(hash);
  ASSERT_TRUE(found.ok()) << found.status().message();
  EXPECT_EQ(found->name, "panel");
  EXPECT_EQ(found->zones, std::vector<std::string>{"example.com"});
  EXPECT_EQ(found->addresses, std::vector<std::string>{"Alice@example.com"});
  EXPECT_EQ(found->networks, (std::vector<std::string>{"192.0.2.0/24", "2001:db8::/32"}));
  EXPECT_TRUE(found->read_only);
  EXPECT_FALSE(found->admin);
  EXPECT_EQ(found->expires_at, std::optional<std::int64_t>(2000000000));
  hash.fill(0xcd);
  EXPECT_TRUE(s.find_token(hash).status().is_not_found());

  auto listed = s.list_tokens();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  ASSERT_TRUE(s.begin().ok());
  ASSERT_TRUE(s.remove_token("panel").ok());
  EXPECT_TRUE(s.remove_token("panel").is_not_found());
  ASSERT_TRUE(s.commit().ok());
  EXPECT_TRUE(s.list_tokens()->empty());
  // The scopes went with it (ON DELETE CASCADE).
  EXPECT_EQ(test::raw_count(f.path(), "SELECT count(*) FROM token_scopes"), 0);
}

// tests/data/db/store-v4.db (see its README): alice@example.com and carol@example.org.
TEST(TokenStoreMigration, Version4StoreGetsTokensAndTheAuditColumn) {
  TempDir dir;
  const std::string path = dir.file("store.db");
  std::filesystem::copy_file(test::data_path("db/store-v4.db"), path);
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  auto before = Store::init(path);
  ASSERT_TRUE(before.ok()) << before.status().message();
  EXPECT_EQ(*before, 4);
  auto store = Store::open(path, StoreOptions{});
  ASSERT_TRUE(store.ok()) << store.status().message();
  auto certs = (*store)->list_certificates("", "");
  ASSERT_TRUE(certs.ok());
  ASSERT_EQ(certs->size(), 2u);
  for (const CertInfo& c : *certs) {
    EXPECT_EQ(c.changed_by, "") << c.address;  // unknown before version 5
    EXPECT_EQ(c.records.size(), 1u);
  }
  auto tokens = (*store)->list_tokens();
  ASSERT_TRUE(tokens.ok()) << tokens.status().message();
  EXPECT_TRUE(tokens->empty());
}

}  // namespace
}  // namespace smimea

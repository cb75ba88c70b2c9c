// Building stores for tests: a fresh store in a temporary directory, and certificates as
// smimea-ctl would add them (parsed from tests/data, records computed by the core).
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "smimea/cert.h"
#include "smimea/owner_name.h"
#include "smimea/store.h"
#include "test_util.h"

namespace smimea::test {

inline Certificate load_certificate(const std::string& file) {
  auto certs = parse_certificates(read_data("certs/" + file), file);
  EXPECT_TRUE(certs.ok()) << file << ": " << certs.status().message();
  return certs.ok() ? certs->front() : Certificate{};
}

// The certificate `file` for `address`, with one record per params entry and owner.
inline NewCertificate new_certificate(const std::string& file, const std::string& address,
                                      const std::vector<RecordParams>& params = {RecordParams{}},
                                      std::uint32_t ttl = 3600, bool lowercase_variant = true) {
  auto addr = parse_address(address);
  EXPECT_TRUE(addr.ok()) << address;
  if (!addr.ok()) return NewCertificate{};
  return make_new_certificate(load_certificate(file), *addr, params, ttl, lowercase_variant);
}

// Store::find_records, each record handed to visitor as list_zone() does.
inline Status visit_records(Store& store, std::int64_t zone_id, const OwnerHash& owner,
                            RecordVisitor& visitor) {
  OwnerRecords rows;
  SMIMEA_RETURN_IF_ERROR(store.find_records(zone_id, owner, &rows));
  for (std::size_t i = 0; i < rows.records.size(); ++i) visitor.visit(rows.view(i, &owner));
  return Status();
}

// An initialised store in its own temporary directory.
class StoreFixture {
 public:
  explicit StoreFixture(StoreOptions options = {}) : path_(dir_.file("store.db")) {
    auto init = Store::init(path_);
    EXPECT_TRUE(init.ok()) << init.status().message();
    auto store = Store::open(path_, options);
    EXPECT_TRUE(store.ok()) << store.status().message();
    if (store.ok()) store_ = std::move(store).value();
  }

  Store& store() { return *store_; }
  const std::string& path() const { return path_; }

  // Adds zones in one transaction.
  std::vector<Zone> add_zones(const std::vector<std::pair<std::string, ZoneMode>>& zones) {
    std::vector<Zone> out;
    EXPECT_TRUE(store_->begin().ok());
    for (const auto& [name, mode] : zones) {
      auto z = store_->add_zone(name, mode);
      EXPECT_TRUE(z.ok()) << name << ": " << z.status().message();
      if (z.ok()) out.push_back(*z);
    }
    EXPECT_TRUE(store_->commit().ok());
    return out;
  }

  // Adds one certificate in its own transaction; returns records added (-1 on error).
  int add(const Zone& zone, const NewCertificate& cert) {
    EXPECT_TRUE(store_->begin().ok());
    auto added = store_->add_certificate(zone, cert);
    if (!added.ok()) {
      store_->rollback();
      ADD_FAILURE() << added.status().message();
      return -1;
    }
    const Status s = store_->commit();
    EXPECT_TRUE(s.ok()) << s.message();
    return added->records_added;
  }

  Zone zone(const std::string& name) {
    auto z = store_->find_zone(name);
    EXPECT_TRUE(z.ok()) << name << ": " << z.status().message();
    return z.ok() ? *z : Zone{};
  }

 private:
  TempDir dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

}  // namespace smimea::test

// Helpers shared by the unit tests: the committed test data (tests/data, see its README) and
// throwaway directories.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "smimea/cert.h"

namespace smimea::test {

inline std::string data_path(const std::string& relative) {
  return std::string(SMIMEA_TEST_DATA) + "/" + relative;
}

// The whole file, bytes as they are. Fails the test if it cannot be read.
inline std::string read_data(const std::string& relative) {
  std::ifstream in(data_path(relative), std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << data_path(relative);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// One line of a certs/<name>.expect file: "SELECTOR MATCHING-TYPE HEX".
struct Expectation {
  int selector = -1;
  int matching_type = -1;
  std::string hex;
};

inline std::vector<Expectation> read_expectations(const std::string& cert_name) {
  std::istringstream in(read_data("certs/" + cert_name + ".expect"));
  std::vector<Expectation> out;
  Expectation e;
  while (in >> e.selector >> e.matching_type >> e.hex) out.push_back(e);
  return out;
}

// The hex of one (selector, matching type) of a certificate, "" if the file lacks it.
inline std::string expected_hex(const std::string& cert_name, int selector, int matching_type) {
  for (const Expectation& e : read_expectations(cert_name)) {
    if (e.selector == selector && e.matching_type == matching_type) return e.hex;
  }
  ADD_FAILURE() << cert_name << ".expect has no line for " << selector << " " << matching_type;
  return {};
}

// A fresh directory, removed with its contents at the end of the scope.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "smimea-unit-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// The certificates of tests/data/certs/<file>; a parse error fails the test.
inline std::vector<Certificate> data_certs(const std::string& file) {
  auto parsed = parse_certificates(read_data("certs/" + file), file);
  EXPECT_TRUE(parsed.ok()) << file << ": " << parsed.status().message();
  return parsed.ok() ? std::move(parsed).value() : std::vector<Certificate>{};
}

}  // namespace smimea::test

// Plain NSEC neighbours: checked against a brute-force sort of every name of a zone in the
// canonical order of RFC 4034 section 6.1, written out independently below.
#include "smimea/nsec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "smimea/hex.h"

namespace smimea {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// RFC 4034 section 6.1: compare the rightmost labels first, each as a lower-cased octet
// string (std::string compares chars as unsigned); a name that runs out of labels first
// sorts first.
bool canonical_less(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  auto ia = a.rbegin();
  auto ib = b.rbegin();
  for (; ia != a.rend() && ib != b.rend(); ++ia, ++ib) {
    const std::string x = lower(*ia);
    const std::string y = lower(*ib);
    if (x != y) return x < y;
  }
  return ia == a.rend() && ib != b.rend();
}

std::vector<std::string> labels_of(const std::string& relative) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < relative.size()) {
    const auto dot = relative.find('.', start);
    out.push_back(relative.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return out;
}

class SetReader : public OwnerReader {
 public:
  explicit SetReader(const std::set<OwnerHash>& owners) : owners_(owners) {}
  Result<OwnerNeighbours> neighbours(const OwnerHash& bound) override {
    ++calls;
    OwnerNeighbours n;
    auto it = owners_.upper_bound(bound);
    if (it != owners_.end()) n.after = *it;
    if (it != owners_.begin()) n.at_or_before = *std::prev(it);
    return n;
  }
  Result<std::optional<OwnerHash>> first() override {
    ++calls;
    if (owners_.empty()) return std::optional<OwnerHash>();
    return std::optional<OwnerHash>(*owners_.begin());
  }
  int calls = 0;

 private:
  const std::set<OwnerHash>& owners_;
};

OwnerHash random_hash(std::mt19937& rng) {
  OwnerHash h{};
  for (auto& b : h) b = static_cast<std::uint8_t>(rng() & 0xff);
  return h;
}

// Every existing name of a zone, relative, sorted canonically.
std::vector<std::string> zone_names(bool subzone, const std::set<OwnerHash>& owners) {
  std::vector<std::string> names = {""};
  if (!owners.empty() && !subzone) names.push_back("_smimecert");
  for (const OwnerHash& h : owners) {
    names.push_back(to_hex(h.data(), h.size()) + (subzone ? "" : "._smimecert"));
  }
  std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
    return canonical_less(labels_of(a), labels_of(b));
  });
  return names;
}

// before: the greatest name <= q (wrapping to the last), after: the smallest name > q
// (wrapping to the apex).
NsecNeighbours brute_force(const std::vector<std::string>& names, const std::string& q) {
  const auto ql = labels_of(q);
  NsecNeighbours out;
  out.before = names.back();
  out.after = names.front();
  for (const std::string& n : names) {
    if (!canonical_less(ql, labels_of(n))) out.before = n;  // n <= q
  }
  for (auto it = names.rbegin(); it != names.rend(); ++it) {
    if (canonical_less(ql, labels_of(*it))) out.after = *it;  // n > q
  }
  return out;
}

// Names to place: the existing ones, and names just around and between them.
std::vector<std::string> probe_names(bool subzone, const std::set<OwnerHash>& owners,
                                     std::mt19937& rng) {
  const std::string parent = subzone ? "" : "._smimecert";
  std::vector<std::string> out = {"",
                                  "a",
                                  "zzz",
                                  "_smimecert",
                                  "_smimecer",
                                  "_smimecerta",
                                  "-",
                                  "*._smimecert",
                                  "0._smimecert",
                                  "g._smimecert",
                                  "x.y.z",
                                  "_SMIMECERT"};
  if (subzone) out = {"", "0", "*", "-", "g", "_", "ffff", "x.y"};
  const std::string alphabet = "0123456789abcdefghz_-*AF";
  for (const OwnerHash& h : owners) {
    const std::string hex = to_hex(h.data(), h.size());
    out.push_back(hex + parent);
    out.push_back("deeper." + hex + parent);
    out.push_back(hex + "0" + parent);  // longer than 56
    for (int k = 0; k < 4; ++k) {
      std::string variant = hex.substr(0, rng() % hex.size());
      variant.push_back(alphabet[rng() % alphabet.size()]);
      out.push_back(variant + parent);
      std::string changed = hex;
      changed[rng() % changed.size()] = alphabet[rng() % alphabet.size()];
      out.push_back(changed + parent);
    }
  }
  return out;
}

void check_zone(const std::string& zone, bool subzone, const std::set<OwnerHash>& owners,
                std::mt19937& rng) {
  const auto names = zone_names(subzone, owners);
  for (const std::string& q : probe_names(subzone, owners, rng)) {
    SetReader reader(owners);
    auto got = nsec_neighbours(zone, !owners.empty(), labels_of(q), reader);
    ASSERT_TRUE(got.ok()) << q << ": " << got.status().message();
    const NsecNeighbours want = brute_force(names, lower(q));
    EXPECT_EQ(got->before, want.before) << "zone " << zone << " name '" << q << "'";
    EXPECT_EQ(got->after, want.after) << "zone " << zone << " name '" << q << "'";
    EXPECT_LE(reader.calls, 1) << q;
  }
}

TEST(NsecNeighbours, MatchesBruteForceCanonicalOrder) {
  std::mt19937 rng(8162);
  for (const int count : {0, 1, 2, 7, 40}) {
    std::set<OwnerHash> owners;
    while (owners.size() < static_cast<std::size_t>(count)) owners.insert(random_hash(rng));
    // Owners whose hex differs only late, and the extreme values.
    if (count >= 7) {
      OwnerHash h = *owners.begin();
      h.back() ^= 1;
      owners.insert(h);
      owners.insert(OwnerHash{});
      OwnerHash max{};
      max.fill(0xff);
      owners.insert(max);
    }
    check_zone("example.com", /*subzone=*/false, owners, rng);
    check_zone("_smimecert.example.org", /*subzone=*/true, owners, rng);
  }
}

TEST(NsecNeighbours, KnownAnswersDomainForm) {
  std::set<OwnerHash> owners;
  OwnerHash a{}, b{};
  a[0] = 0x2b;
  b[0] = 0xc9;
  owners = {a, b};
  const std::string ha = to_hex(a.data(), a.size()) + "._smimecert";
  const std::string hb = to_hex(b.data(), b.size()) + "._smimecert";
  SetReader reader(owners);
  auto at = [&](const std::string& q) {
    auto r = nsec_neighbours("example.com", true, labels_of(q), reader);
    EXPECT_TRUE(r.ok());
    return std::make_pair(r->before, r->after);
  };
  EXPECT_EQ(at(""), std::make_pair(std::string(), std::string("_smimecert")));
  // Before _smimecert only sorts what starts below '_' (0x5f): digits, '-', "_a"...
  EXPECT_EQ(at("0www"), std::make_pair(std::string(), std::string("_smimecert")));
  EXPECT_EQ(at("_acme-challenge"), std::make_pair(std::string(), std::string("_smimecert")));
  EXPECT_EQ(at("www"), std::make_pair(hb, std::string()));  // 'w' sorts after '_'
  EXPECT_EQ(at("_smimecert"), std::make_pair(std::string("_smimecert"), ha));
  EXPECT_EQ(at("00._smimecert"), std::make_pair(std::string("_smimecert"), ha));
  EXPECT_EQ(at(ha), std::make_pair(ha, hb));
  EXPECT_EQ(at("x." + ha), std::make_pair(ha, hb));
  EXPECT_EQ(at(hb), std::make_pair(hb, std::string()));
  EXPECT_EQ(at("zz._smimecert"), std::make_pair(hb, std::string()));
  EXPECT_EQ(at("~"), std::make_pair(hb, std::string()));  // '~' sorts after '_'
  // No records: the apex is alone and covers everything.
  std::set<OwnerHash> none;
  SetReader empty(none);
  auto r = nsec_neighbours("example.com", false, labels_of("_smimecert"), empty);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->before, "");
  EXPECT_EQ(r->after, "");
  EXPECT_EQ(empty.calls, 0);
}

TEST(OwnerBound, KnownAnswers) {
  const std::string f55(55, 'f');
  auto hex = [](const std::optional<OwnerHash>& h) {
    return h ? to_hex(h->data(), h->size()) : std::string("none");
  };
  const std::string full = "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db";
  EXPECT_EQ(hex(owner_bound(full)), full);
  EXPECT_EQ(hex(owner_bound("2BD806C97F0E00AF1A1FC3328FA763A9269723C8DB8FAC4F93AF71DB")), full);
  EXPECT_EQ(hex(owner_bound(full + "x")), full);
  EXPECT_EQ(hex(owner_bound("0")), "none");  // every 56-digit label starting 0 is longer
  EXPECT_EQ(hex(owner_bound("-")), "none");  // '-' sorts before '0'
  EXPECT_EQ(hex(owner_bound("*")), "none");
  EXPECT_EQ(hex(owner_bound("1")), "0" + f55);
  EXPECT_EQ(hex(owner_bound("_")), "9" + f55);  // '9' < '_' < 'a'
  EXPECT_EQ(hex(owner_bound("g")), "f" + f55);
  EXPECT_EQ(hex(owner_bound("ab")), "aa" + f55.substr(1));
  EXPECT_EQ(hex(owner_bound("a0")), "9f" + f55.substr(1));
  EXPECT_EQ(hex(owner_bound("a0-")), "9f" + f55.substr(1));
  EXPECT_EQ(hex(owner_bound("a0g")), "a0" + f55.substr(1));
}

TEST(SplitName, EscapesAndEdges) {
  auto labels = [](std::string_view s) {
    auto r = split_name(s);
    EXPECT_TRUE(r.ok()) << s;
    return r.ok() ? *r : std::vector<std::string>{"<error>"};
  };
  EXPECT_EQ(labels(""), std::vector<std::string>{});
  EXPECT_EQ(labels("."), std::vector<std::string>{});
  EXPECT_EQ(labels("_smimecert."), std::vector<std::string>{"_smimecert"});
  EXPECT_EQ(labels("a.b"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(labels("a\\.b.c."), (std::vector<std::string>{"a.b", "c"}));
  EXPECT_EQ(labels("\\065\\\\"), std::vector<std::string>{"A\\"});
  EXPECT_EQ(labels("\\000x"), std::vector<std::string>{std::string("\0x", 2)});
  const std::string too_long(64, 'x');
  for (const char* bad : {"a..b", ".a", "a\\", "a\\25", "a\\256", too_long.c_str()}) {
    EXPECT_FALSE(split_name(bad).ok()) << bad;
  }
}

TEST(LooksLikeNsec3Hash, Shape) {
  EXPECT_TRUE(looks_like_nsec3_hash("0p9mhaveqvm6t7vbl5lop2u3t2rp3tom"));
  EXPECT_TRUE(looks_like_nsec3_hash("0P9MHAVEQVM6T7VBL5LOP2U3T2RP3TOM"));
  EXPECT_FALSE(looks_like_nsec3_hash("0p9mhaveqvm6t7vbl5lop2u3t2rp3to"));   // 31
  EXPECT_FALSE(looks_like_nsec3_hash("0p9mhaveqvm6t7vbl5lop2u3t2rp3tow"));  // w
  EXPECT_FALSE(looks_like_nsec3_hash("_smimecert"));
}

}  // namespace
}  // namespace smimea

// parse_lookup_request (the lookup fast path) against parse_request (nlohmann::json, the
// reference): whatever the fast path accepts, the reference accepts too, as a lookup with the
// same qname and qtype; lines outside the fast path's subset are left to the reference.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "protocol.h"

namespace smimea::remote {
namespace {

// pdns 4.7's own spelling (json11: a space after ':' and ',').
const std::string kPdnsLine =
    R"({"method": "lookup", "parameters": {"local": "127.0.0.1", "qname": "Www.Example.com.", )"
    R"("qtype": "ANY", "real-remote": "127.0.0.1/32", "remote": "127.0.0.1", "zone-id": 7}})";

// Either the fast path declines, or it reads what the reference reads.
void expect_agrees(const std::string& line) {
  SCOPED_TRACE(line);
  LookupRequest fast;
  if (!parse_lookup_request(line, &fast)) return;
  auto ref = parse_request(line);
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  EXPECT_EQ(ref->method, "lookup");
  EXPECT_EQ(fast.qname, ref->string_param("qname"));
  EXPECT_EQ(fast.qtype, ref->string_param("qtype"));
  EXPECT_EQ(fast.zone_id, ref->int_param("zone-id", -1));
}

TEST(LookupRequest, ReadsPdnsLine) {
  LookupRequest fast;
  ASSERT_TRUE(parse_lookup_request(kPdnsLine, &fast));
  EXPECT_EQ(fast.qname, "Www.Example.com.");
  EXPECT_EQ(fast.qtype, "ANY");
  EXPECT_EQ(fast.zone_id, 7);
  expect_agrees(kPdnsLine);
}

TEST(LookupRequest, ReadsPdnsLinesFromAnyAddressAndZone) {
  const std::string line =
      R"({"method": "lookup", "parameters": {"local": "::1", "qname": "a.example.", )"
      R"("qtype": "SMIMEA", "real-remote": "2001:db8::/56", "remote": "2001:db8::1", "zone-id": -1}})";
  LookupRequest fast;
  ASSERT_TRUE(parse_lookup_request(line, &fast));
  EXPECT_EQ(fast.qname, "a.example.");
  EXPECT_EQ(fast.qtype, "SMIMEA");
  EXPECT_EQ(fast.zone_id, -1);
  expect_agrees(line);
}

TEST(LookupRequest, LeavesOtherSpellingsToTheReference) {
  // Valid lookups in another layout (compact, members reordered or repeated, fewer members):
  // the reference reads them.
  const std::vector<std::string> others = {
      R"({"parameters":{"qname":"a.example.","qtype":"SOA","qname":"b.example."},"method":"lookup"})",
      R"({"method":"lookup","parameters":{"local":"127.0.0.1","qname":"a.example.","qtype":"ANY",)"
      R"("real-remote":"127.0.0.1/32","remote":"127.0.0.1","zone-id":7}})",
      R"({"method": "lookup", "parameters": {"qname": "a.example.", "qtype": "ANY"}})",
  };
  for (const std::string& line : others) {
    LookupRequest fast;
    EXPECT_FALSE(parse_lookup_request(line, &fast)) << line;
    auto ref = parse_request(line);
    ASSERT_TRUE(ref.ok()) << line;
    EXPECT_EQ(ref->method, "lookup");
  }
}

TEST(LookupRequest, LeavesEveryOtherLineToTheReference) {
  const std::vector<std::string> declined = {
      // an escape anywhere: in the name, in another member, outside a string
      R"({"method": "lookup", "parameters": {"qname": "a\u002eexample.", "qtype": "ANY"}})",
      R"({"method": "lookup", "parameters": {"qname": "a\"b.example.", "qtype": "ANY"}})",
      R"({"method": "lookup", "parameters": {"qname": "a.example.", "qtype": "ANY", "remote": "\\"}})",
      // control characters (a tab between tokens is valid JSON), non-ASCII
      "{\"method\":\t\"lookup\", \"parameters\": {\"qname\": \"a.example.\", \"qtype\": \"ANY\"}}",
      "{\"method\": \"lookup\", \"parameters\": {\"qname\": \"\xc3\xa9.example.\", \"qtype\": "
      "\"ANY\"}}",
      // not a lookup, or without qname/qtype, or nested values
      R"({"method": "list", "parameters": {"qname": "a.example.", "qtype": "ANY"}})",
      R"({"method": "lookup", "parameters": {"qtype": "ANY"}})",
      R"({"method": "lookup", "parameters": {"qname": "", "qtype": "ANY"}})",
      R"({"method": "lookup", "parameters": {"qname": "a.", "qtype": "ANY", "x": [1]}})",
      R"({"method": "lookup", "parameters": {"qname": 5, "qtype": "ANY"}})",
      // malformed
      R"({"method": "lookup", "parameters": {"qname": "a.example., "qtype": "ANY"}})",
      R"({"method": "lookup", "parameters": {"qname": "a.example.", "qtype": "ANY"}} x)",
      R"({"method": "lookup", "parameters": {"qname": "a.example.", "qtype": "ANY")",
      R"({"method": "lookup", "parameters": {"qname": "a.example.", "qtype": "ANY", "n": 1.5}})",
      R"({"method": "lookup", "parameters": {"qname": "a.example.", "qtype": "ANY", "n": 01}})",
      // pdns's layout with a bad zone-id, an empty qname, or something after it
      kPdnsLine.substr(0, kPdnsLine.size() - 3) + "07}}",
      kPdnsLine.substr(0, kPdnsLine.size() - 3) + "7.5}}",
      kPdnsLine.substr(0, kPdnsLine.size() - 3) + "-}}",
      kPdnsLine.substr(0, kPdnsLine.size() - 3) + "\"7\"}}",
      R"({"method": "lookup", "parameters": {"local": "127.0.0.1", "qname": "", "qtype": "ANY", )"
      R"("real-remote": "127.0.0.1/32", "remote": "127.0.0.1", "zone-id": 7}})",
      kPdnsLine + " ",
      kPdnsLine + "}",
  };
  for (const std::string& line : declined) {
    LookupRequest fast;
    EXPECT_FALSE(parse_lookup_request(line, &fast)) << line;
  }
}

TEST(LookupRequest, AgreesWithTheReferenceOnEveryCutAndByteChange) {
  // Every prefix of pdns's line, and every single-byte change to it at each position.
  for (std::size_t n = 0; n <= kPdnsLine.size(); ++n) expect_agrees(kPdnsLine.substr(0, n));
  const char replacements[] = {'"', '\\', ',', ':', '{', '}', '[', ' ', '\t', 'x', '0', '\x80'};
  for (std::size_t i = 0; i < kPdnsLine.size(); ++i) {
    for (const char c : replacements) {
      std::string line = kPdnsLine;
      line[i] = c;
      expect_agrees(line);
    }
  }
}

}  // namespace
}  // namespace smimea::remote

// ReplyWriter sending a long reply in pieces (the list of a zone transfer): the pieces and the
// rest make exactly the reply it would have built whole, and a failure after a piece went out
// still reads as a failure to a parser that keeps an object's last duplicate key (pdns's
// json11 does).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "protocol.h"

namespace smimea::remote {
namespace {

class Recorder : public ReplyStream {
 public:
  bool send(std::string_view bytes) override {
    pieces.emplace_back(bytes);
    return ok;
  }
  std::string joined() const {
    std::string out;
    for (const std::string& p : pieces) out += p;
    return out;
  }
  std::vector<std::string> pieces;
  bool ok = true;
};

const std::uint8_t kData[32] = {0xde, 0xad, 0xbe, 0xef, 1,  2,  3,  4,  5,  6,  7,
                                8,    9,    10,   11,   12, 13, 14, 15, 16, 17, 18,
                                19,   20,   21,   22,   23, 24, 25, 26, 27, 28};

void fill(ReplyWriter& w, int n) {
  OwnerHash owner{};
  RecordView rr;
  rr.owner = &owner;
  rr.params = RecordParams{Usage::kDaneEe, Selector::kSpki, MatchingType::kSha256};
  rr.ttl = 300;
  rr.data = kData;
  rr.size = sizeof kData;
  w.add_text("example.com.", QType::kSoa, 3600, 7, "ns1.example.net. h.example.net. 1 2 3 4 5",
             true);
  for (int i = 0; i < n; ++i) {
    w.add_smimea("r" + std::to_string(i) + "._smimecert.example.com.", 7, rr);
  }
}

// Records whose qname, TTL and zone repeat or change in every combination, names that need
// escaping and the longest one: what nlohmann::json reads back is what was written.
TEST(ReplyWriter, EveryRecordReadsBackAsWritten) {
  struct Rec {
    std::string qname;
    QType qtype;
    std::uint32_t ttl;
    std::int64_t zone_id;
  };
  const std::string longest = std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                              std::string(63, 'c') + "." + std::string(61, 'd') + ".";
  const std::vector<Rec> recs = {
      {"example.com.", QType::kSoa, 3600, 7},
      {"example.com.", QType::kNs, 3600, 7},
      {"example.com.", QType::kNs, 300, 7},
      {"example.com.", QType::kNs, 300, 8},
      {"example.com", QType::kNs, 300, 8},
      {"example.org.", QType::kNs, 300, 8},
      {"exam\"ple.org.", QType::kNs, 300, 8},
      {"exam\"ple.org.", QType::kNs, 4294967295u, 9223372036854775807},
      {std::string("t\tab\x01.\xc3\xa9.\0", 10), QType::kNs, 0, -1},  // a NUL too
      {longest, QType::kNs, 0, -1},
      {longest, QType::kNs, 1, 0},
      {"", QType::kDs, 1, 0},
  };
  std::string out;
  ReplyWriter w(out);
  w.begin();
  for (const Rec& r : recs) w.add_text(r.qname, r.qtype, r.ttl, r.zone_id, "c", true);
  w.end();
  auto parsed = nlohmann::json::parse(out);
  ASSERT_EQ(parsed["result"].size(), recs.size());
  for (std::size_t i = 0; i < recs.size(); ++i) {
    const auto& got = parsed["result"][i];
    EXPECT_EQ(got["qname"], recs[i].qname) << i;
    EXPECT_EQ(got["qtype"], qtype_name(recs[i].qtype)) << i;
    EXPECT_EQ(got["ttl"], recs[i].ttl) << i;
    EXPECT_EQ(got["domain_id"], recs[i].zone_id) << i;
    EXPECT_EQ(got["content"], "c") << i;
    EXPECT_EQ(got["auth"], 1) << i;
  }
}

TEST(ReplyWriterStream, PiecesAndRestMakeTheWholeReply) {
  std::string whole;
  ReplyWriter plain(whole);
  plain.begin();
  fill(plain, 200);
  plain.end();

  std::string rest;
  Recorder stream;
  ReplyWriter streamed(rest, &stream, 1000);
  streamed.begin();
  fill(streamed, 200);
  streamed.end();

  EXPECT_TRUE(streamed.flushed());
  EXPECT_FALSE(streamed.stream_failed());
  ASSERT_GT(stream.pieces.size(), 10u);
  for (const std::string& p : stream.pieces) {
    EXPECT_GE(p.size(), 1000u);
    EXPECT_LT(p.size(), 1000u + 200u);           // at most one record over the threshold
    EXPECT_EQ(p.find('\n'), std::string::npos);  // one line: the newline comes last
  }
  EXPECT_LT(rest.size(), 1000u + 200u);
  EXPECT_EQ(stream.joined() + rest, whole);
  auto parsed = nlohmann::json::parse(whole);
  EXPECT_EQ(parsed["result"].size(), 201u);
}

TEST(ReplyWriterStream, ShortReplyIsNotSent) {
  std::string out;
  Recorder stream;
  ReplyWriter w(out, &stream);  // the default threshold, 64 KB
  w.begin();
  fill(w, 10);
  w.end();
  EXPECT_TRUE(stream.pieces.empty());
  EXPECT_FALSE(w.flushed());
  EXPECT_EQ(nlohmann::json::parse(out)["result"].size(), 11u);
}

TEST(ReplyWriterStream, FailureAfterAPieceWentOutStillReadsAsFailure) {
  std::string rest;
  Recorder stream;
  ReplyWriter w(rest, &stream, 500);
  w.begin();
  fill(w, 50);
  ASSERT_TRUE(w.flushed());
  w.fail("list example.com: store: disk I/O error (10)");
  const std::string line = stream.joined() + rest;
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  // nlohmann, like json11, keeps the last of duplicate keys.
  auto parsed = nlohmann::json::parse(line);
  EXPECT_EQ(parsed["result"], false);
  EXPECT_EQ(parsed["log"][0], "list example.com: store: disk I/O error (10)");
  EXPECT_NE(line.find("],\"result\":false,\"log\":["), std::string::npos);
}

TEST(ReplyWriterStream, FailureBeforeAnythingWentOutIsAPlainFailure) {
  std::string out;
  Recorder stream;
  ReplyWriter w(out, &stream);
  w.begin();
  fill(w, 3);
  w.fail("list example.com: no such zone");
  EXPECT_TRUE(stream.pieces.empty());
  EXPECT_EQ(out, "{\"result\":false,\"log\":[\"list example.com: no such zone\"]}\n");
}

TEST(ReplyWriterStream, APeerThatWentAwayIsReported) {
  std::string rest;
  Recorder stream;
  stream.ok = false;
  ReplyWriter w(rest, &stream, 500);
  w.begin();
  fill(w, 50);
  EXPECT_TRUE(w.stream_failed());
  EXPECT_EQ(stream.pieces.size(), 1u);  // nothing more is tried after the failure
  EXPECT_LT(rest.size(), 500u + 200u);  // and nothing piles up
}

// The two failure replies: pdns reads {"result":false} as "no", and a reply without a
// result member as a failure of the backend (SERVFAIL). Both are one line of JSON that
// carries the message, whatever bytes it holds.
TEST(FailureReplies, FalseOrNoResultAtAll) {
  const std::string message = "lookup a\"b\\c\n\x01.example.: database disk image is malformed";
  std::string out = "stale";
  write_failure(out, message);
  ASSERT_EQ(out.back(), '\n');
  ASSERT_EQ(out.find('\n'), out.size() - 1);
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j.at("result"), false);
  EXPECT_EQ(j.at("log").at(0), message);

  write_error(out, message);
  ASSERT_EQ(out.back(), '\n');
  ASSERT_EQ(out.find('\n'), out.size() - 1);
  j = nlohmann::json::parse(out);
  EXPECT_FALSE(j.contains("result")) << out;
  EXPECT_EQ(j.at("error"), message);
}

}  // namespace
}  // namespace smimea::remote

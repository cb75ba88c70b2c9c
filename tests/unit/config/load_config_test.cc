// Configuration: every key, the defaults, and errors that name file:line and key.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "../test_util.h"
#include "smimea/config.h"

namespace smimea {
namespace {

Config parse_ok(const std::string& text) {
  auto c = parse_config(text, "test.yaml");
  EXPECT_TRUE(c.ok()) << c.status().message();
  return c.ok() ? *c : Config{};
}

// The error message; fails the test if the text was accepted.
std::string parse_error(const std::string& text) {
  auto c = parse_config(text, "test.yaml");
  EXPECT_FALSE(c.ok()) << "accepted:\n" << text;
  if (c.ok()) return {};
  EXPECT_EQ(c.status().code(), Status::Code::kConfigError);
  EXPECT_EQ(c.status().message().find('\n'), std::string::npos) << c.status().message();
  return c.status().message();
}

TEST(Config, OnlyDatabaseIsNeeded) {
  const Config c = parse_ok("database: /var/lib/smimea/store.db\n");
  EXPECT_EQ(c.database, "/var/lib/smimea/store.db");
  EXPECT_EQ(c.source, "test.yaml");
  const Config d;  // the documented defaults
  EXPECT_EQ(c.default_ttl, 3600u);
  ASSERT_EQ(c.default_records.size(), 1u);
  EXPECT_EQ(c.default_records[0],
            (RecordParams{Usage::kDaneEe, Selector::kFullCert, MatchingType::kExact}));
  EXPECT_TRUE(c.lowercase_variant);
  EXPECT_EQ(c.max_rrset_bytes, 32768u);
  EXPECT_EQ(c.max_input_bytes, 1024u * 1024u);
  EXPECT_EQ(c.nameservers, std::vector<std::string>{"localhost."});
  EXPECT_EQ(c.soa.mname, "localhost.");  // the first name server
  EXPECT_EQ(c.soa.rname, d.soa.rname);
  EXPECT_EQ(c.soa.refresh, 10800u);
  EXPECT_EQ(c.soa.retry, 3600u);
  EXPECT_EQ(c.soa.expire, 1209600u);
  EXPECT_EQ(c.soa.minimum, 300u);
  EXPECT_EQ(c.soa.ttl, 3600u);
  EXPECT_EQ(c.ns_ttl, 3600u);
  EXPECT_EQ(c.busy_timeout_ms, 200u);
  EXPECT_EQ(c.socket_mode, 0660u);
  EXPECT_EQ(c.socket_group, "");
  EXPECT_EQ(c.cache_kib, 65536u);
}

TEST(Config, EveryKeyParses) {
  const Config c = parse_ok(R"(# every key
database: /srv/smimea.db
default-ttl: 600
records:
  - {usage: 3, selector: 1, matching-type: 1}
  - usage: 1
    selector: 0
    matching-type: 2
  - {}
lowercase-variant: false
max-rrset-bytes: 16384
max-input-bytes: 65536
soa:
  mname: NS0.Example.NET
  rname: hostmaster@example.net
  refresh: 7200
  retry: 900
  expire: 604800
  minimum: 60
  ttl: 120
nameservers: [ns1.example.net, "ns2.example.net."]
ns-ttl: 86400
busy-timeout-ms: 1000
socket-mode: 0640
socket-group: pdns
cache-kib: 1024
)");
  EXPECT_EQ(c.database, "/srv/smimea.db");
  EXPECT_EQ(c.default_ttl, 600u);
  ASSERT_EQ(c.default_records.size(), 3u);
  EXPECT_EQ(c.default_records[0],
            (RecordParams{Usage::kDaneEe, Selector::kSpki, MatchingType::kSha256}));
  EXPECT_EQ(c.default_records[1],
            (RecordParams{Usage::kPkixEe, Selector::kFullCert, MatchingType::kSha512}));
  EXPECT_EQ(c.default_records[2], RecordParams{});  // every field at its default: 3 0 0
  EXPECT_FALSE(c.lowercase_variant);
  EXPECT_EQ(c.max_rrset_bytes, 16384u);
  EXPECT_EQ(c.max_input_bytes, 65536u);
  EXPECT_EQ(c.soa.mname, "ns0.example.net.");
  EXPECT_EQ(c.soa.rname, "hostmaster.example.net.");
  EXPECT_EQ(c.soa.refresh, 7200u);
  EXPECT_EQ(c.soa.retry, 900u);
  EXPECT_EQ(c.soa.expire, 604800u);
  EXPECT_EQ(c.soa.minimum, 60u);
  EXPECT_EQ(c.soa.ttl, 120u);
  EXPECT_EQ(c.nameservers, (std::vector<std::string>{"ns1.example.net.", "ns2.example.net."}));
  EXPECT_EQ(c.ns_ttl, 86400u);
  EXPECT_EQ(c.busy_timeout_ms, 1000u);
  EXPECT_EQ(c.socket_mode, 0640u);
  EXPECT_EQ(c.socket_group, "pdns");
  EXPECT_EQ(c.cache_kib, 1024u);
}

TEST(Config, MnameDefaultsToTheFirstNameServer) {
  EXPECT_EQ(parse_ok("database: x\nnameservers: [b.example, a.example]\n").soa.mname, "b.example.");
}

TEST(Config, RangeLimitsAreAccepted) {
  parse_ok(
      "database: x\ndefault-ttl: 0\nns-ttl: 604800\nmax-rrset-bytes: 1024\n"
      "max-input-bytes: 4096\nbusy-timeout-ms: 1500\nsocket-mode: 0777\ncache-kib: 256\n"
      "soa: {refresh: 1, minimum: 0, ttl: 604800, expire: 2147483647}\n");
  parse_ok("database: x\nmax-rrset-bytes: 63000\nmax-input-bytes: 67108864\n");
}

TEST(Config, UnknownKeyNamesFileLineAndKey) {
  EXPECT_EQ(parse_error("database: x\n\ndefault_ttl: 60\n"),
            "test.yaml:3: default_ttl: unknown key");
  EXPECT_EQ(parse_error("database: x\nsoa:\n  refresh: 60\n  serial: 5\n"),
            "test.yaml:4: soa.serial: unknown key");
  EXPECT_EQ(parse_error("database: x\nrecords:\n  - {usage: 3, matching: 1}\n"),
            "test.yaml:3: records[0].matching: unknown key");
}

TEST(Config, KeyGivenTwiceIsAnError) {
  EXPECT_EQ(parse_error("database: x\ndefault-ttl: 60\n\ndefault-ttl: 70\n"),
            "test.yaml:4: default-ttl: given more than once");
  EXPECT_EQ(parse_error("database: x\nsoa:\n  refresh: 60\n  refresh: 70\n"),
            "test.yaml:4: soa.refresh: given more than once");
  EXPECT_EQ(parse_error("database: x\nrecords:\n  - {usage: 3, usage: 1}\n"),
            "test.yaml:3: records[0].usage: given more than once");
  EXPECT_EQ(parse_error("database: x\ndatabase: y\n"),
            "test.yaml:2: database: given more than once");
}

TEST(Config, OutOfRangeNamesFileLineKeyAndRange) {
  EXPECT_EQ(parse_error("database: x\nsoa:\n  refresh: 0\n"),
            "test.yaml:3: soa.refresh: 0 is out of range 1..2147483647");
  EXPECT_EQ(parse_error("database: x\ndefault-ttl: 604801\n"),
            "test.yaml:2: default-ttl: 604801 is out of range 0..604800");
  EXPECT_EQ(parse_error("database: x\nmax-rrset-bytes: 65536\n"),
            "test.yaml:2: max-rrset-bytes: 65536 is out of range 1024..63000");
  EXPECT_EQ(parse_error("database: x\nrecords:\n  - usage: 4\n"),
            "test.yaml:3: records[0].usage: 4 is out of range 0..3");
}

struct BadValue {
  const char* yaml;
  const char* key;
  int line;
};

class ConfigRejects : public ::testing::TestWithParam<BadValue> {};

TEST_P(ConfigRejects, NamingLineAndKey) {
  const std::string message = parse_error(GetParam().yaml);
  const std::string where = "test.yaml:" + std::to_string(GetParam().line) + ": ";
  EXPECT_EQ(message.rfind(where, 0), 0u) << message;
  EXPECT_NE(message.find(GetParam().key), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(
    Values, ConfigRejects,
    ::testing::Values(
        BadValue{"database: x\ndefault-ttl: -1\n", "default-ttl", 2},
        BadValue{"database: x\ndefault-ttl: 1h\n", "default-ttl", 2},
        BadValue{"database: x\ndefault-ttl: [1]\n", "default-ttl", 2},
        BadValue{"database: x\ndefault-ttl: 99999999999999999999999\n", "default-ttl", 2},
        BadValue{"database: x\nns-ttl: 604801\n", "ns-ttl", 2},
        BadValue{"database: x\nlowercase-variant: maybe\n", "lowercase-variant", 2},
        BadValue{"database: x\nmax-rrset-bytes: 1023\n", "max-rrset-bytes", 2},
        BadValue{"database: x\nmax-input-bytes: 4095\n", "max-input-bytes", 2},
        BadValue{"database: x\nmax-input-bytes: 67108865\n", "max-input-bytes", 2},
        BadValue{"database: x\nbusy-timeout-ms: 1501\n", "busy-timeout-ms", 2},
        BadValue{"database: x\nsocket-mode: 01000\n", "socket-mode", 2},
        BadValue{"database: x\ncache-kib: 255\n", "cache-kib", 2},
        BadValue{"database: x\nsoa: 5\n", "soa", 2},
        BadValue{"database: x\nsoa:\n  retry: 0\n", "soa.retry", 3},
        BadValue{"database: x\nsoa:\n  expire: 2147483648\n", "soa.expire", 3},
        BadValue{"database: x\nsoa:\n  minimum: 86401\n", "soa.minimum", 3},
        BadValue{"database: x\nsoa:\n  ttl: 604801\n", "soa.ttl", 3},
        BadValue{"database: x\nsoa:\n  mname: 'bad name'\n", "soa.mname", 3},
        BadValue{"database: x\nsoa:\n  rname: a.b@example.com\n", "soa.rname", 3},
        BadValue{"database: x\nnameservers: []\n", "nameservers", 2},
        BadValue{"database: x\nnameservers: ns1.example.net\n", "nameservers", 2},
        BadValue{"database: x\nnameservers:\n  - ok.example\n  - -bad.example\n", "nameservers[1]",
                 4},
        BadValue{"database: x\nrecords: []\n", "records", 2},
        BadValue{"database: x\nrecords:\n  - 3 0 0\n", "records[0]", 3},
        BadValue{"database: x\nrecords:\n  - {selector: 2}\n", "records[0].selector", 3},
        BadValue{"database: x\nrecords:\n  - {matching-type: 3}\n", "records[0].matching-type", 3},
        BadValue{"database: ''\n", "database", 1}, BadValue{"database: [a, b]\n", "database", 1},
        BadValue{"database: x\nsocket-group: ''\n", "socket-group", 2}));

TEST(Config, DatabaseIsRequired) {
  EXPECT_NE(parse_error("default-ttl: 60\n").find("database: required key missing"),
            std::string::npos);
  EXPECT_NE(parse_error("").find("database"), std::string::npos);
  EXPECT_NE(parse_error("# only a comment\n").find("database"), std::string::npos);
}

TEST(Config, NotAMap) {
  EXPECT_EQ(parse_error("- database: x\n").rfind("test.yaml", 0), 0u);
  EXPECT_EQ(parse_error("just text\n").rfind("test.yaml", 0), 0u);
}

TEST(Config, YamlSyntaxErrorNamesTheLine) {
  const std::string message = parse_error("database: x\nsoa: {refresh: 1\n");
  EXPECT_EQ(message.rfind("test.yaml:", 0), 0u) << message;
  const std::string tab = parse_error("database: x\nsoa:\n  refresh: 1\n\t retry: 2\n");
  EXPECT_EQ(tab.rfind("test.yaml:", 0), 0u) << tab;
}

TEST(LoadConfig, FromFile) {
  test::TempDir dir;
  const std::string path = dir.file("smimea.yaml");
  std::ofstream(path) << "database: " << dir.file("store.db") << "\nns-ttl: 5\n";
  auto c = load_config(path);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->source, path);
  EXPECT_EQ(c->database, dir.file("store.db"));
  EXPECT_EQ(c->ns_ttl, 5u);

  std::ofstream(path) << "database: x\nfoo: 1\n";
  auto bad = load_config(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), path + ":2: foo: unknown key");
}

// The same file must give the same store to smimea-ctl run in any directory and to the
// backend and pdns, which run in /.
TEST(LoadConfig, RelativeDatabaseIsNextToTheConfigFile) {
  test::TempDir dir;
  const std::string path = dir.file("smimea.yaml");
  std::ofstream(path) << "database: data/store.db\n";
  auto c = load_config(path);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->database, dir.file("data/store.db"));
  std::ofstream(path) << "database: /abs/store.db\n";
  c = load_config(path);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->database, "/abs/store.db");
}

// Numbers are decimal, whatever zeros lead them (0300 is 300, not octal 192); only
// socket-mode is octal, as chmod writes it.
TEST(Config, NumbersAreDecimalAndSocketModeOctal) {
  const Config c =
      parse_ok("database: x\ndefault-ttl: 0900\nsoa:\n  minimum: 0300\nsocket-mode: 0640\n");
  EXPECT_EQ(c.default_ttl, 900u);
  EXPECT_EQ(c.soa.minimum, 300u);
  EXPECT_EQ(c.socket_mode, 0640u);
  EXPECT_EQ(parse_ok("database: x\nsocket-mode: 660\n").socket_mode, 0660u);
  EXPECT_NE(parse_error("database: x\ndefault-ttl: 0x10\n").find("default-ttl"), std::string::npos);
  EXPECT_NE(parse_error("database: x\nsocket-mode: 0x1ff\n").find("socket-mode"),
            std::string::npos);
  EXPECT_NE(parse_error("database: x\nsocket-mode: 0680\n").find("socket-mode"), std::string::npos);
}

TEST(LoadConfig, MissingFile) {
  test::TempDir dir;
  auto c = load_config(dir.file("absent.yaml"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Status::Code::kConfigError);
  EXPECT_NE(c.status().message().find("absent.yaml"), std::string::npos);
}

}  // namespace
}  // namespace smimea

namespace smimea {
namespace {

TEST(ApiConfig, DefaultsListenOnLoopbackOnly) {
  const Config c = parse_ok("database: x.db\n");
  EXPECT_EQ(c.api.listen, std::vector<std::string>{"127.0.0.1:8055"});
  EXPECT_FALSE(c.api.allow_plain_http);
  EXPECT_EQ(c.api.max_body_bytes, 1024u * 1024u);
  EXPECT_EQ(c.api.rate_limit, 100u);
  EXPECT_EQ(c.api.metrics_from, (std::vector<std::string>{"127.0.0.0/8", "::1/128"}));
}

TEST(ApiConfig, EveryKeyParses) {
  const Config c = parse_ok(
      "database: x.db\n"
      "api:\n"
      "  listen: ['[::1]:9000', 'unix:/run/smimea-api/api.sock', '192.0.2.1:443']\n"
      "  allow-plain-http: true\n"
      "  socket-mode: 0600\n"
      "  max-body-bytes: 4096\n"
      "  max-bulk-bytes: 8192\n"
      "  max-bulk-items: 10\n"
      "  max-connections: 5\n"
      "  max-connections-per-address: 0\n"
      "  idle-timeout: 3\n"
      "  threads: 2\n"
      "  rate-limit: 0\n"
      "  metrics-from: [10.0.0.0/8, 2001:db8::1]\n");
  EXPECT_EQ(c.api.listen.size(), 3u);
  EXPECT_TRUE(c.api.allow_plain_http);
  EXPECT_EQ(c.api.socket_mode, 0600u);
  EXPECT_EQ(c.api.max_body_bytes, 4096u);
  EXPECT_EQ(c.api.max_bulk_bytes, 8192u);
  EXPECT_EQ(c.api.max_bulk_items, 10u);
  EXPECT_EQ(c.api.max_connections, 5u);
  EXPECT_EQ(c.api.max_connections_per_address, 0u);
  EXPECT_EQ(c.api.idle_timeout, 3u);
  EXPECT_EQ(c.api.threads, 2u);
  EXPECT_EQ(c.api.rate_limit, 0u);
  EXPECT_EQ(c.api.metrics_from, (std::vector<std::string>{"10.0.0.0/8", "2001:db8::1/128"}));
}

TEST(ApiConfig, PlainHttpOutsideLoopbackNeedsTheSetting) {
  const std::string e = parse_error("database: x.db\napi:\n  listen: ['0.0.0.0:8055']\n");
  EXPECT_NE(e.find("api.listen"), std::string::npos) << e;
  EXPECT_NE(e.find("allow-plain-http"), std::string::npos) << e;
  parse_ok("database: x.db\napi:\n  listen: ['0.0.0.0:8055']\n  allow-plain-http: true\n");
  parse_ok("database: x.db\napi:\n  listen: ['127.0.0.2:8055', '[::1]:8055']\n");
}

TEST(ApiConfig, BadValuesNameTheKey) {
  for (const char* bad : {"  listen: ['localhost:8055']\n", "  listen: ['127.0.0.1']\n",
                          "  listen: ['127.0.0.1:0']\n", "  listen: ['unix:relative.sock']\n",
                          "  listen: []\n", "  metrics-from: [10.0.0.0/33]\n", "  threads: 0\n",
                          "  max-body-bytes: 10\n", "  colour: blue\n"}) {
    const std::string e = parse_error(std::string("database: x.db\napi:\n") + bad);
    EXPECT_NE(e.find("api."), std::string::npos) << bad << " -> " << e;
  }
  const auto a = parse_listen_address("[2001:db8::1]:8443");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "2001:db8::1");
  EXPECT_EQ(a->port, 8443);
  EXPECT_FALSE(a->loopback());
}

}  // namespace
}  // namespace smimea

namespace smimea {
namespace {

TEST(MetricsListen, OffByDefault) { EXPECT_EQ(parse_ok("database: x.db\n").metrics_listen, ""); }

TEST(MetricsListen, HostAndPort) {
  EXPECT_EQ(parse_ok("database: x.db\nmetrics-listen: 127.0.0.1:9120\n").metrics_listen,
            "127.0.0.1:9120");
  EXPECT_EQ(parse_ok("database: x.db\nmetrics-listen: '[::1]:9120'\n").metrics_listen,
            "[::1]:9120");
  EXPECT_EQ(parse_ok("database: x.db\nmetrics-listen: 192.0.2.7:9120\n").metrics_listen,
            "192.0.2.7:9120");
}

TEST(MetricsListen, BadValuesNameFileLineAndKey) {
  for (const char* bad : {"localhost:9120", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536",
                          "unix:/run/smimea/metrics.sock", "::1:9120", "[a, b]", "''"}) {
    const std::string e = parse_error(std::string("database: x.db\nmetrics-listen: ") + bad + "\n");
    EXPECT_NE(e.find("test.yaml:2: metrics-listen"), std::string::npos) << bad << " -> " << e;
  }
}

TEST(Catalog, OffByDefault) { EXPECT_EQ(parse_ok("database: x.db\n").catalog, ""); }

TEST(Catalog, StoredLowerCaseALabelsWithoutTheDot) {
  EXPECT_EQ(parse_ok("database: x.db\ncatalog: Catalog.Example.NET.\n").catalog,
            "catalog.example.net");
  EXPECT_EQ(parse_ok("database: x.db\ncatalog: katalog.bücher.example\n").catalog,
            "katalog.xn--bcher-kva.example");
}

TEST(Catalog, BadNamesNameFileLineAndKey) {
  for (const char* bad : {"''", "a..b", "under_score.example", "[a, b]", "-bad.example"}) {
    const std::string e = parse_error(std::string("database: x.db\ncatalog: ") + bad + "\n");
    EXPECT_NE(e.find("test.yaml:2: catalog"), std::string::npos) << bad << " -> " << e;
  }
}

}  // namespace
}  // namespace smimea

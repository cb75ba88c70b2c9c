// Configuration: a plain struct with documented in-class defaults, loaded from YAML.
//
// Only `database` is required. load_config() validates everything before returning, so a
// Config that exists is valid. Immutable after loading; safe to share between threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "smimea/status.h"
#include "smimea/types.h"

namespace smimea {

inline constexpr const char* kDefaultConfigPath = "/etc/smimea/smimea.yaml";

// The largest max-rrset-bytes: the rest of a 65,535-octet DNS message must hold the answer's
// header (12), question (at most 259), EDNS OPT with a cookie, client subnet and a 64-octet
// NSID (127), and two RRSIGs of RSA-4096 keys during a rollover (2 x (30 + at most 198 for
// the signer + 512)): 1,878 octets at most, so an RRset at the cap is never truncated over TCP.
inline constexpr std::size_t kMaxRrsetBytes = 63000;

struct SoaTemplate {
  std::string mname;                          // Default: the first of `nameservers`.
  std::string rname = "hostmaster.invalid.";  // Mailbox of the zone's admin, in DNS form.
  std::uint32_t refresh = 10800;              // Default: 3 hours.
  std::uint32_t retry = 3600;                 // Default: 1 hour.
  std::uint32_t expire = 1209600;             // Default: 2 weeks.
  std::uint32_t minimum = 300;  // Negative-caching TTL (RFC 2308). Default: 5 minutes.
  std::uint32_t ttl = 3600;     // TTL of the SOA record. Default: 1 hour.
};

// The provisioning API daemon, smimea-api (section `api:`).
struct ApiConfig {
  // Where it listens: "HOST:PORT", "[IPv6]:PORT" or "unix:PATH". Default: 127.0.0.1:8055.
  std::vector<std::string> listen{"127.0.0.1:8055"};
  // smimea-api speaks plain HTTP: on a non-loopback address only with this set, behind a
  // TLS-terminating proxy (README). Default: false.
  bool allow_plain_http = false;
  std::uint32_t socket_mode = 0660;  // unix: listeners. Default: 0660.
  // Largest request body, but a bulk publish's. Default: 1 MiB.
  std::size_t max_body_bytes = 1024 * 1024;
  std::size_t max_bulk_bytes = 64 * 1024 * 1024;  // A bulk publish's body. Default: 64 MiB.
  std::uint32_t max_bulk_items = 100000;          // Certificates in one bulk publish.
  std::uint32_t max_connections = 1024;           // Open at once; more are refused.
  // From one client address; 0: no limit. Default: 64.
  std::uint32_t max_connections_per_address = 64;
  // Seconds a connection may stay silent (headers, body, keep-alive). Default: 10.
  std::uint32_t idle_timeout = 10;
  std::uint32_t threads = 4;  // Worker threads. Default: 4.
  // Requests per second per token, in bursts of as many; 0: no limit. Default: 100.
  std::uint32_t rate_limit = 100;
  // Client networks that may read /metrics (no token). Default: loopback.
  std::vector<std::string> metrics_from{"127.0.0.0/8", "::1/128"};
};

struct Config {
  std::string source;                // file the config came from ("" for built-in defaults)
  std::string database;              // REQUIRED: path of the SQLite store.
  std::uint32_t default_ttl = 3600;  // TTL of SMIMEA records without --ttl. Default: 1 hour.
  // Records published for each certificate when no --usage/--selector/--matching-type is
  // given. Default: one `3 0 0` record (DANE-EE, full certificate, exact), the only form a
  // sender can encrypt to.
  std::vector<RecordParams> default_records{RecordParams{}};
  // Also publish the owner of the ASCII-lower-cased local-part when it differs. Default: true.
  bool lowercase_variant = true;
  // Cap on one owner's SMIMEA RRset as it goes on the wire: 15 octets per record (compressed
  // owner, type, class, TTL, length, usage/selector/matching type) plus its association data.
  // At most kMaxRrsetBytes. Default: 32768.
  std::size_t max_rrset_bytes = 32768;
  // Largest certificate input (file or stdin) accepted. Default: 1 MiB.
  std::size_t max_input_bytes = 1024 * 1024;
  SoaTemplate soa;
  // NS records at every authoritative zone apex. Default: ["localhost."] (set it!).
  std::vector<std::string> nameservers{"localhost."};
  std::uint32_t ns_ttl = 3600;  // TTL of NS records. Default: 1 hour.
  // How long a query waits for a locked database before it fails. Default: 200 ms; must stay
  // well under pdns's remote-backend timeout (2000 ms).
  std::uint32_t busy_timeout_ms = 200;
  // Unix socket of `smimea-backend --listen`: permission bits and group. Default: 0660, the
  // group of the process.
  std::uint32_t socket_mode = 0660;
  std::string socket_group;
  // `smimea-backend --listen` serves its lookup counters in the Prometheus text format on
  // GET /metrics at this "HOST:PORT" or "[IPv6]:PORT". Default: "" (off: the key is absent;
  // an empty value is an error). Ignored, with a warning, in pipe mode, where pdns starts one
  // process per thread.
  std::string metrics_listen;
  // SQLite page cache per connection, in KiB. Default: 65536 (64 MiB).
  std::uint32_t cache_kib = 65536;
  // expired-certificates: keep (false, the default) serves a certificate's records after its
  // notAfter, until it is removed; withdraw (true) stops serving them the second after, and
  // the zone's serial moves so that secondaries follow (README, "Expired certificates").
  bool withdraw_expired = false;
  // catalog: a catalog zone (RFC 9432, version 2) of this name, served by the pdns backends
  // and listing every authoritative zone of the store, so that secondaries configured with it
  // alone follow zones as they are added and removed (README, "Catalog zones"). Lower-case
  // A-labels, no trailing dot. Default: "" (no catalog).
  std::string catalog;
  ApiConfig api;
};

// One of api.listen: an IP address and port, or a unix socket's path.
struct ListenAddress {
  std::string host;  // IPv4 or IPv6 address text, no brackets; empty for unix
  std::uint16_t port = 0;
  std::string unix_path;  // absolute
  bool loopback() const;  // a unix socket, 127.0.0.0/8 or ::1
};
Result<ListenAddress> parse_listen_address(std::string_view text);
// Every address of listen parses, and none is outside loopback unless allow_plain_http.
Status check_listen(const std::vector<std::string>& listen, bool allow_plain_http);

// Reads and validates a YAML file. Errors name the file, the line and the key:
// "smimea.yaml:14: soa.refresh: 0 is out of range 1..2147483647".
Result<Config> load_config(const std::string& path);

// Same, from text; source is used in messages and stored in Config::source.
Result<Config> parse_config(const std::string& text, const std::string& source);

}  // namespace smimea

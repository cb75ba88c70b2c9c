// One request line in, exactly one reply line out: the remote-backend methods mapped onto the
// core's Answerer. Shared by the pipe and unix-socket transports.
//
// A Handler owns its own store connection and zone table; it is not thread-safe, so each
// pipe process or socket connection gets one. Nothing escapes handle(). A failure is logged
// (stderr) and becomes one of two replies:
// - {"result":false,"log":[...]}, which pdns reads as "no": malformed requests, refused
//   writes, and the calls pdns also makes from its communicator thread (getDomainInfo,
//   getDomainMetadata, NOTIFY bookkeeping, TSIG keys), where an error would stop pdns;
// - {"error":...} without a result, which pdns reads as a failure of the backend: SERVFAIL,
//   and it reconnects. For store errors where "no" would be a wrong answer: a lookup (an
//   NXDOMAIN for a name that exists), getAllDomains (an empty zone cache), getDomainKeys
//   and getAllDomainMetadata (the zone served unsigned), NSEC neighbours.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "protocol.h"
#include "smimea/answer.h"
#include "smimea/config.h"
#include "smimea/key_store.h"
#include "smimea/store.h"

namespace smimea::remote {

class Handler {
 public:
  // Opens its own read-only store connection. config must outlive the Handler.
  static Result<std::unique_ptr<Handler>> create(const Config& config);

  // Writes the reply to `line` into out (cleared first), ending with '\n'. With a stream, a
  // long reply (list) may send its first part through it before returning; out then holds
  // the rest, which the caller sends as usual. Memory stays bounded whatever the zone size.
  void handle(std::string_view line, std::string& out, ReplyStream* stream = nullptr);

 private:
  Handler(const Config& config, std::unique_ptr<Store> store);
  void dispatch(const Request& req, std::string& out);
  // The two failure replies described above; both count and log the failure.
  void fail(std::string& out, const std::string& message);
  void error(std::string& out, const std::string& message);
  void lookup(const Request& req, std::string& out);
  void lookup(std::string_view qname, std::string_view qtype, std::int64_t zone_id,
              std::string& out);
  void list(const Request& req, std::string& out);
  void get_all_domains(std::string& out);
  void get_domain_info(const Request& req, std::string& out);
  void direct_backend_cmd(const Request& req, std::string& out);
  nlohmann::json domain_info(const ZoneEntry& zone) const;
  // DNSSEC keys, metadata, transactions and plain-NSEC neighbours (dnssec_handler.cc).
  // Returns false if req.method is none of those.
  bool dispatch_dnssec(const Request& req, std::string& out);
  void dnssec_call(const Request& req, std::string& out);
  void get_before_and_after_names(const Request& req, std::string& out);
  KeyStore& key_store();
  // NOTIFY bookkeeping and TSIG keys (transfer_handler.cc). Returns false if req.method is
  // none of those.
  bool dispatch_transfer(const Request& req, std::string& out);
  void get_updated_masters(std::string& out);
  void set_notified(const Request& req, std::string& out);
  void tsig_call(const Request& req, std::string& out);

  const Config& config_;
  std::unique_ptr<Store> store_;
  Answerer answerer_;
  std::unique_ptr<KeyStore> key_store_;  // opened on the first DNSSEC call
  ReplyStream* stream_ = nullptr;        // the current handle() call's
  std::uint64_t requests_ = 0;
  std::uint64_t failures_ = 0;
};

}  // namespace smimea::remote

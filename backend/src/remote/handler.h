// One request line in, exactly one reply line out: the remote-backend methods converted to the
// calls of the core's pdns semantics (smimea/pdns_semantics.h), and their outcomes back to
// JSON. Shared by the pipe and unix-socket transports.
//
// A Handler owns one PdnsCalls (its own store connections; the zone table is shared); it is not
// thread-safe, so each pipe process or socket connection gets one. Nothing escapes handle().
// An outcome becomes {"result":...} (an answer), {"result":false} ("no", with its message
// in "log"; logged to stderr when it is an error) or {"error":...} ("failed": no result
// member, which pdns reads as a failure of the backend: SERVFAIL, and it reconnects).
// A malformed request is a logged "no".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "protocol.h"
#include "smimea/config.h"
#include "smimea/pdns_semantics.h"

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
  explicit Handler(std::unique_ptr<PdnsCalls> calls) : calls_(std::move(calls)) {}
  void dispatch(const Request& req, std::string& out);
  // The two logged failure replies: {"result":false,"log":[message]} and {"error":message}.
  void fail(std::string& out, const std::string& message);
  void error(std::string& out, const std::string& message);
  // Writes the reply of an outcome that is not an answer; returns whether it was one.
  template <class T>
  bool answered(const Outcome<T>& outcome, std::string& out) {
    if (outcome.answered()) return true;
    refuse(outcome.failed(), outcome.logged(), outcome.message(), out);
    return false;
  }
  void refuse(bool failed, bool logged, const std::string& message, std::string& out);
  void lookup(const Request& req, std::string& out);
  void lookup(std::string_view qname, std::string_view qtype, std::int64_t zone_id,
              std::string& out);
  void list(const Request& req, std::string& out);
  void get_all_domains(std::string& out);
  void get_domain_info(const Request& req, std::string& out);
  void direct_backend_cmd(const Request& req, std::string& out);
  // DNSSEC keys, metadata, transactions and plain-NSEC neighbours (dnssec_handler.cc).
  // Returns false if req.method is none of those.
  bool dispatch_dnssec(const Request& req, std::string& out);
  void add_domain_key(const Request& req, std::string& out);
  void set_domain_metadata(const Request& req, std::string& out);
  void get_before_and_after_names(const Request& req, std::string& out);
  // NOTIFY bookkeeping and TSIG keys (transfer_handler.cc). Returns false if req.method is
  // none of those.
  bool dispatch_transfer(const Request& req, std::string& out);
  void set_notified(const Request& req, std::string& out);
  void tsig_call(const Request& req, std::string& out);

  std::unique_ptr<PdnsCalls> calls_;
  PdnsCalls::Counters counters_;
  ReplyStream* stream_ = nullptr;  // the current handle() call's
};

// The domaininfo object pdns reads (getAllDomains, getDomainInfo, getUpdatedMasters).
nlohmann::json domain_info_json(const ZoneInfo& zone);

}  // namespace smimea::remote

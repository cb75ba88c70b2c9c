#include "handler.h"

#include <spdlog/spdlog.h>

#include <exception>

namespace smimea::remote {

Result<std::unique_ptr<Handler>> Handler::create(const Config& config) {
  auto calls = PdnsCalls::open(config);
  if (!calls.ok()) return calls.status();
  return std::unique_ptr<Handler>(new Handler(std::move(calls).value()));
}

void Handler::handle(std::string_view line, std::string& out, ReplyStream* stream) {
  ++counters_.requests;
  stream_ = stream;
  // Nearly every request is a lookup: those skip building a JSON document.
  LookupRequest fast;
  if (parse_lookup_request(line, &fast)) {
    try {
      lookup(fast.qname, fast.qtype, fast.zone_id, out);
    } catch (const std::exception& e) {
      error(out, std::string("lookup: internal error: ") + e.what());
    }
    return;
  }
  auto req = parse_request(line);
  if (!req.ok()) return fail(out, req.status().message());
  try {
    dispatch(*req, out);
  } catch (const std::exception& e) {
    // Only reachable through bugs or exhaustion (bad_alloc); the process keeps serving.
    error(out, req->method + ": internal error: " + e.what());
  }
}

void Handler::fail(std::string& out, const std::string& message) {
  ++counters_.failures;
  spdlog::error("{}", message);
  write_failure(out, message);
}

void Handler::error(std::string& out, const std::string& message) {
  ++counters_.failures;
  spdlog::error("{}", message);
  write_error(out, message);
}

void Handler::refuse(bool failed, bool logged, const std::string& message, std::string& out) {
  if (failed) return error(out, message);
  if (logged) return fail(out, message);
  if (!message.empty()) return write_failure(out, message);
  write_result(out, false);
}

void Handler::dispatch(const Request& req, std::string& out) {
  const std::string& m = req.method;
  if (m == "lookup") return lookup(req, out);
  if (m == "initialize") return write_result(out, true);
  if (m == "getAllDomains") return get_all_domains(out);
  if (m == "getDomainInfo") return get_domain_info(req, out);
  if (m == "list") return list(req, out);
  if (m == "directBackendCmd") return direct_backend_cmd(req, out);
  if (dispatch_dnssec(req, out)) return;
  if (dispatch_transfer(req, out)) return;
  // Known methods this backend does not implement: a plain false.
  static const char* const kUnsupported[] = {
      "feedRecord",           "feedEnts",           "feedEnts3",
      "replaceRRSet",         "searchRecords",      "searchComments",
      "getUnfreshSlaveInfos", "setStale",           "setFresh",
      "createSlaveDomain",    "superMasterBackend", "createDomain"};
  for (const char* known : kUnsupported) {
    if (m == known) return write_result(out, false);
  }
  fail(out, "unknown method '" + m + "'");
}

void Handler::lookup(const Request& req, std::string& out) {
  const std::string_view qname = req.string_param("qname");
  const std::string_view qtype = req.string_param("qtype");
  // string_param() reads a missing or non-string value as "": that is a malformed request,
  // not a name without records.
  if (qname.empty() || qtype.empty()) {
    return fail(out, "lookup: qname and qtype must be non-empty strings");
  }
  lookup(qname, qtype, req.int_param("zone-id", -1), out);
}

void Handler::lookup(std::string_view qname, std::string_view qtype, std::int64_t zone_id,
                     std::string& out) {
  ReplyWriter writer(out);
  writer.begin();
  const Status s = calls_->lookup(qname, parse_qtype(qtype), writer, zone_id);
  if (!s.ok()) return error(out, "lookup " + std::string(qname) + ": " + s.message());
  writer.end();
}

void Handler::list(const Request& req, std::string& out) {
  auto listing = calls_->list(req.string_param("zonename"));
  if (!answered(listing, out)) return;
  // Sent in pieces of ReplyWriter::kFlushBytes: a zone of any size in bounded memory.
  ReplyWriter writer(out, stream_);
  writer.begin();
  for (;;) {
    auto more = (*listing)->next(writer);
    if (!more.ok()) {
      const std::string message =
          "list " + (*listing)->zone().zone.name + ": " + more.status().message();
      ++counters_.failures;
      spdlog::error("{}", message);
      // Part of the reply may be gone already: only a false can follow it.
      return writer.fail(message);
    }
    if (writer.stream_failed()) {
      out.clear();  // the peer is gone: nothing more to send
      return;
    }
    if (!*more) break;
  }
  writer.end();
}

nlohmann::json domain_info_json(const ZoneInfo& zone) {
  return {{"id", zone.id},
          {"zone", zone.fqdn},
          {"kind", zone_kind_name(zone.kind)},
          {"serial", zone.serial},
          {"notified_serial", zone.notified_serial},
          {"masters", nlohmann::json::array()},
          {"last_check", 0}};
}

void Handler::get_all_domains(std::string& out) {
  auto zones = calls_->all_domains();
  if (!answered(zones, out)) return;
  auto result = nlohmann::json::array();
  for (const ZoneInfo& zone : *zones) result.push_back(domain_info_json(zone));
  write_result(out, result);
}

void Handler::get_domain_info(const Request& req, std::string& out) {
  auto zone = calls_->domain_info(req.string_param("name"));
  if (!answered(zone, out)) return;
  write_result(out, domain_info_json(*zone));
}

void Handler::direct_backend_cmd(const Request& req, std::string& out) {
  auto text = calls_->backend_command(req.string_param("query"), counters_);
  if (!answered(text, out)) return;
  write_result(out, *text);
}

}  // namespace smimea::remote

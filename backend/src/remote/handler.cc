#include "handler.h"

#include <spdlog/spdlog.h>

#include <exception>

namespace smimea::remote {

Result<std::unique_ptr<Handler>> Handler::create(const Config& config) {
  StoreOptions options;
  options.read_only = true;
  options.busy_timeout_ms = config.busy_timeout_ms;
  options.cache_kib = config.cache_kib;
  auto store = Store::open(config.database, options);
  if (!store.ok()) return store.status();
  return std::unique_ptr<Handler>(new Handler(config, std::move(store).value()));
}

Handler::Handler(const Config& config, std::unique_ptr<Store> store)
    : config_(config), store_(std::move(store)), answerer_(*store_, config) {}

void Handler::handle(std::string_view line, std::string& out, ReplyStream* stream) {
  ++requests_;
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
  ++failures_;
  spdlog::error("{}", message);
  write_failure(out, message);
}

void Handler::error(std::string& out, const std::string& message) {
  ++failures_;
  spdlog::error("{}", message);
  write_error(out, message);
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
  const Status s = answerer_.lookup(qname, parse_qtype(qtype), writer, zone_id);
  if (!s.ok()) return error(out, "lookup " + std::string(qname) + ": " + s.message());
  writer.end();
}

void Handler::list(const Request& req, std::string& out) {
  const std::string_view zonename = req.string_param("zonename");
  // One read transaction for the whole reply, records pulled one at a time and sent in
  // pieces of ReplyWriter::kFlushBytes: a zone of any size in bounded memory.
  auto listing = answerer_.open_transfer(zonename);
  if (!listing.ok()) {
    if (listing.status().is_not_found()) return write_result(out, false);
    return fail(out, "list " + std::string(zonename) + ": " + listing.status().message());
  }
  ReplyWriter writer(out, stream_);
  writer.begin();
  for (;;) {
    auto more = (*listing)->next(writer);
    if (!more.ok()) {
      const std::string message =
          "list " + (*listing)->zone().zone.name + ": " + more.status().message();
      ++failures_;
      spdlog::error("{}", message);
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

nlohmann::json Handler::domain_info(const ZoneEntry& zone) const {
  return {{"id", zone.zone.id},
          {"zone", zone.fqdn},
          {"kind", zone_kind_name(zone.zone.kind)},
          {"serial", zone.zone.serial},
          {"notified_serial", zone.zone.notified_serial < 0 ? 0 : zone.zone.notified_serial},
          {"masters", nlohmann::json::array()},
          {"last_check", 0}};
}

void Handler::get_all_domains(std::string& out) {
  // An error, not an empty list: pdns keeps its zone cache (an empty one would REFUSE every
  // zone until the next refresh); at start-up it stops with the message.
  if (Status s = answerer_.refresh(); !s.ok()) return error(out, "getAllDomains: " + s.message());
  auto result = nlohmann::json::array();
  // Overlay zones belong to another backend: listing them would hand pdns our zone id for
  // them, and every query in the zone would be REFUSED.
  for (const ZoneEntry& zone : answerer_.zones()) {
    if (zone.zone.mode == ZoneMode::kAuthoritative) result.push_back(domain_info(zone));
  }
  write_result(out, result);
}

void Handler::get_domain_info(const Request& req, std::string& out) {
  if (Status s = answerer_.refresh(); !s.ok()) return fail(out, "getDomainInfo: " + s.message());
  const ZoneEntry* zone = answerer_.find_zone(req.string_param("name"));
  if (zone == nullptr || zone->zone.mode != ZoneMode::kAuthoritative) {
    return write_result(out, false);
  }
  write_result(out, domain_info(*zone));
}

void Handler::direct_backend_cmd(const Request& req, std::string& out) {
  const std::string_view query = req.string_param("query");
  if (query == "status" || query == "stats") {
    if (Status s = answerer_.refresh(); !s.ok()) return fail(out, s.message());
    std::size_t authoritative = 0;
    for (const ZoneEntry& z : answerer_.zones()) {
      authoritative += z.zone.mode == ZoneMode::kAuthoritative ? 1 : 0;
    }
    const std::string text =
        "database " + config_.database + "; schema version " + std::to_string(kSchemaVersion) +
        "; zones " + std::to_string(answerer_.zones().size()) + " (" +
        std::to_string(authoritative) + " authoritative); this connection: requests " +
        std::to_string(requests_) + ", lookups " + std::to_string(answerer_.lookups()) +
        ", failures " + std::to_string(failures_);
    return write_result(out, text);
  }
  if (query == "help" || query.empty()) {
    return write_result(out, "commands: status (store, zones and counters of this connection)");
  }
  write_result(out, "unknown command '" + std::string(query) + "'; try: help");
}

}  // namespace smimea::remote

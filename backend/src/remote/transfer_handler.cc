// The remote-backend calls of zone transfer, converted from and to JSON: which master zones
// need a NOTIFY (getUpdatedMasters) and that one was sent (setNotified), and the TSIG keys
// that restrict transfers (getTSIGKey, getTSIGKeys, setTSIGKey, deleteTSIGKey; pdns sends
// these only with remote-dnssec=yes). What they mean is PdnsCalls's
// (smimea/pdns_semantics.h). TSIG secrets go into replies to pdns only.
#include <cmath>
#include <limits>

#include "handler.h"

namespace smimea::remote {
namespace {

// pdns writes ids and serials as JSON doubles (setNotified) that json11 prints as integers;
// either form is read. Returns false for anything that is not a whole number in 0..2^32-1.
bool uint32_param(const Request& req, const char* key, std::uint32_t* out) {
  auto it = req.parameters.find(key);
  if (it == req.parameters.end()) return false;
  double v = 0;
  if (it->is_number_integer()) {
    const std::int64_t i = it->get<std::int64_t>();
    if (i < 0 || i > std::numeric_limits<std::uint32_t>::max()) return false;
    *out = static_cast<std::uint32_t>(i);
    return true;
  }
  if (it->is_number_float()) {
    v = it->get<double>();
  } else if (it->is_string()) {
    const std::int64_t i = req.int_param(key, -1);
    if (i < 0 || i > std::numeric_limits<std::uint32_t>::max()) return false;
    *out = static_cast<std::uint32_t>(i);
    return true;
  } else {
    return false;
  }
  if (!std::isfinite(v) || v != std::floor(v) || v < 0 ||
      v > static_cast<double>(std::numeric_limits<std::uint32_t>::max())) {
    return false;
  }
  *out = static_cast<std::uint32_t>(v);
  return true;
}

// pdns names keys and algorithms as DNS names, with the trailing dot.
std::string fqdn(const std::string& name) { return name.empty() ? "." : name + "."; }

nlohmann::json tsig_key_json(const TsigKey& key) {
  return {{"name", fqdn(key.name)}, {"algorithm", fqdn(key.algorithm)}, {"content", key.secret}};
}

}  // namespace

bool Handler::dispatch_transfer(const Request& req, std::string& out) {
  const std::string& m = req.method;
  if (m == "getUpdatedMasters") {
    auto zones = calls_->updated_masters();
    if (!answered(zones, out)) return true;
    auto result = nlohmann::json::array();
    for (const ZoneInfo& zone : *zones) result.push_back(domain_info_json(zone));
    write_result(out, result);
    return true;
  }
  if (m == "setNotified") {
    set_notified(req, out);
    return true;
  }
  if (m == "getTSIGKey" || m == "getTSIGKeys" || m == "setTSIGKey" || m == "deleteTSIGKey") {
    tsig_call(req, out);
    return true;
  }
  return false;
}

void Handler::set_notified(const Request& req, std::string& out) {
  std::uint32_t id = 0;
  std::uint32_t serial = 0;
  if (!uint32_param(req, "id", &id) || !uint32_param(req, "serial", &serial)) {
    return fail(out, "setNotified: id and serial must be numbers in 0..4294967295");
  }
  auto done = calls_->set_notified(id, serial);
  if (answered(done, out)) write_result(out, true);
}

void Handler::tsig_call(const Request& req, std::string& out) {
  const std::string& m = req.method;
  const std::string_view name = req.string_param("name");
  if (m == "getTSIGKey") {
    // pdns 4.7 sends no algorithm (remotebackend.cc, getTSIGKey): any algorithm matches then.
    auto key = calls_->tsig_key(name, req.string_param("algorithm"));
    if (answered(key, out)) write_result(out, tsig_key_json(*key));
  } else if (m == "getTSIGKeys") {
    auto keys = calls_->tsig_keys();
    if (!answered(keys, out)) return;
    auto result = nlohmann::json::array();
    for (const TsigKey& k : *keys) result.push_back(tsig_key_json(k));
    write_result(out, result);
  } else if (m == "setTSIGKey") {
    TsigKey key{std::string(name), std::string(req.string_param("algorithm")),
                std::string(req.string_param("content"))};
    auto done = calls_->set_tsig_key(key);
    if (answered(done, out)) write_result(out, true);
  } else {  // deleteTSIGKey
    auto done = calls_->delete_tsig_key(name);
    if (answered(done, out)) write_result(out, true);
  }
}

}  // namespace smimea::remote

// The remote-backend calls of zone transfer: which master zones need a NOTIFY
// (getUpdatedMasters) and that one was sent (setNotified), and the TSIG keys that restrict
// transfers (getTSIGKey, getTSIGKeys, setTSIGKey, deleteTSIGKey; pdns sends these only with
// remote-dnssec=yes). Writes go through KeyStore's read-write connection.
//
// Failures are a logged false: pdns makes these calls from its communicator thread, which
// stops pdns on an exception. A zone not announced now is announced on the next cycle.
//
// TSIG secrets go into replies to pdns only, never into a log line or a failure message.
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

}  // namespace

bool Handler::dispatch_transfer(const Request& req, std::string& out) {
  const std::string& m = req.method;
  if (m == "getUpdatedMasters") {
    get_updated_masters(out);
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

void Handler::get_updated_masters(std::string& out) {
  if (Status s = answerer_.refresh(); !s.ok()) {
    return fail(out, "getUpdatedMasters: " + s.message());
  }
  // Exactly the master zones whose serial moved since the last setNotified (or that were
  // never announced). Overlay zones are the owning backend's business; native zones are not
  // announced.
  auto result = nlohmann::json::array();
  for (const ZoneEntry& zone : answerer_.zones()) {
    const Zone& z = zone.zone;
    if (z.mode != ZoneMode::kAuthoritative || z.kind != ZoneKind::kMaster) continue;
    if (z.notified_serial == static_cast<std::int64_t>(z.serial)) continue;
    result.push_back(domain_info(zone));
  }
  write_result(out, result);
}

void Handler::set_notified(const Request& req, std::string& out) {
  std::uint32_t id = 0;
  std::uint32_t serial = 0;
  if (!uint32_param(req, "id", &id) || !uint32_param(req, "serial", &serial)) {
    return fail(out, "setNotified: id and serial must be numbers in 0..4294967295");
  }
  const Status s = key_store().set_notified(id, serial);
  if (!s.ok()) {
    return fail(out, "setNotified: " + s.message());
  }
  write_result(out, true);
}

void Handler::tsig_call(const Request& req, std::string& out) {
  const std::string& m = req.method;
  const std::string_view name = req.string_param("name");
  if (m == "getTSIGKey") {
    auto key = key_store().get_tsig_key(name);
    if (!key.ok()) {
      // No such key is an ordinary answer (another backend may have it).
      if (key.status().is_not_found()) return write_result(out, false);
      return fail(out, "getTSIGKey: " + key.status().message());
    }
    return write_result(
        out,
        {{"name", fqdn(key->name)}, {"algorithm", fqdn(key->algorithm)}, {"content", key->secret}});
  }
  if (m == "getTSIGKeys") {
    auto keys = key_store().get_tsig_keys();
    if (!keys.ok()) {
      return fail(out, "getTSIGKeys: " + keys.status().message());
    }
    auto result = nlohmann::json::array();
    for (const TsigKey& k : *keys) {
      result.push_back(
          {{"name", fqdn(k.name)}, {"algorithm", fqdn(k.algorithm)}, {"content", k.secret}});
    }
    return write_result(out, result);
  }
  if (m == "setTSIGKey") {
    TsigKey key{std::string(name), std::string(req.string_param("algorithm")),
                std::string(req.string_param("content"))};
    const Status s = key_store().set_tsig_key(key);
    if (!s.ok()) {
      return fail(out, "setTSIGKey: " + s.message());
    }
    return write_result(out, true);
  }
  // deleteTSIGKey
  const Status s = key_store().delete_tsig_key(name);
  if (!s.ok()) {
    return fail(out, "deleteTSIGKey: " + s.message());
  }
  write_result(out, true);
}

}  // namespace smimea::remote

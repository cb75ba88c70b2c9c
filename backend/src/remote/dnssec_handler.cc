// The remote-backend calls that let pdns sign our zones online: keys, domain metadata,
// transactions (all in the store, through KeyStore) and the plain-NSEC neighbours.
//
// pdns sends the key calls only with remote-dnssec=yes; the metadata calls always come.
// A zone the store does not have, or an overlay zone, gets a plain false: with several
// backends that lets another backend own it (for metadata, pdns's remote backend reads any
// reply as "done", which is why an overlay must be launched after the owner; see
// README, "Overlay zones and DNSSEC"). Key material is never logged.
#include <algorithm>
#include <cmath>

#include "handler.h"
#include "smimea/nsec.h"

namespace smimea::remote {
namespace {

// pdns sends ids as JSON numbers (ids and trxid are written as doubles) or numeric strings.
std::int64_t number_param(const Request& req, const char* key, std::int64_t fallback) {
  auto it = req.parameters.find(key);
  if (it != req.parameters.end() && it->is_number_float()) {
    const double v = it->get<double>();
    if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9.0e15) {
      return static_cast<std::int64_t>(v);
    }
    return fallback;
  }
  return req.int_param(key, fallback);
}

bool bool_value(const nlohmann::json& j, bool fallback) {
  if (j.is_boolean()) return j.get<bool>();
  if (j.is_number_integer()) return j.get<std::int64_t>() != 0;
  if (j.is_string()) {
    const auto& s = j.get_ref<const std::string&>();
    if (s == "1" || s == "true") return true;
    if (s == "0" || s == "false") return false;
  }
  return fallback;
}

// "Not ours" is normal with several backends: answered with a plain false.
bool not_ours(const Status& s) {
  return s.code() == Status::Code::kNotFound || s.code() == Status::Code::kConflict;
}

}  // namespace

KeyStore& Handler::key_store() {
  if (!key_store_) {
    KeyStoreOptions options;
    // Writers (pdnsutil, smimea-ctl) hold the lock for milliseconds; stay under pdns's 2 s.
    options.busy_timeout_ms = std::max<std::uint32_t>(config_.busy_timeout_ms, 1000);
    key_store_ = std::make_unique<KeyStore>(config_.database, options);
  }
  return *key_store_;
}

bool Handler::dispatch_dnssec(const Request& req, std::string& out) {
  static const char* const kMethods[] = {"getDomainKeys",       "addDomainKey",
                                         "removeDomainKey",     "activateDomainKey",
                                         "deactivateDomainKey", "publishDomainKey",
                                         "unpublishDomainKey",  "getAllDomainMetadata",
                                         "getDomainMetadata",   "setDomainMetadata",
                                         "startTransaction",    "commitTransaction",
                                         "abortTransaction",    "getBeforeAndAfterNamesAbsolute"};
  for (const char* method : kMethods) {
    if (req.method == method) {
      dnssec_call(req, out);
      return true;
    }
  }
  return false;
}

void Handler::dnssec_call(const Request& req, std::string& out) {
  const std::string& m = req.method;
  const std::string_view name = req.string_param("name");
  // A zone that is not ours gets a plain false (with several backends, pdns then asks the
  // next one); reads of it quietly, writes with the reason. Other failures are logged: an
  // error for the reads whose "no" pdns would act on (no keys: the zone served unsigned; no
  // metadata: NSEC instead of NSEC3), false for the rest (see handler.h).
  auto refuse = [&](const Status& s, bool quiet_if_not_ours) {
    if (quiet_if_not_ours && not_ours(s)) return write_result(out, false);
    if (not_ours(s)) return write_failure(out, m + ": " + s.message());
    fail(out, m + ": " + s.message());
  };
  auto read_failed = [&](const Status& s) {
    // A zone not in our table is another backend's: "no", also when the store failed (pdns
    // may be asking from its secondary thread, where an error stops it).
    if (not_ours(s) || !answerer_.knows(name)) return write_result(out, false);
    error(out, m + ": " + s.message());
  };

  if (m == "getDomainKeys") {
    auto keys = key_store().get_domain_keys(name);
    if (!keys.ok()) return read_failed(keys.status());
    auto result = nlohmann::json::array();
    for (const DomainKey& k : *keys) {
      result.push_back({{"id", k.id},
                        {"flags", k.flags},
                        {"active", k.active},
                        {"published", k.published},
                        {"content", k.content}});
    }
    return write_result(out, result);
  }
  if (m == "addDomainKey") {
    auto key_it = req.parameters.find("key");
    if (key_it == req.parameters.end() || !key_it->is_object()) {
      return refuse(Status::invalid_argument(name, "no key object"), false);
    }
    const nlohmann::json& key = *key_it;
    DomainKey k;
    const auto flags = key.find("flags");
    if (flags == key.end() || !flags->is_number_integer() || flags->get<std::int64_t>() < 0 ||
        flags->get<std::int64_t>() > 65535) {
      return refuse(Status::invalid_argument(name, "key flags missing or out of range"), false);
    }
    k.flags = static_cast<std::uint32_t>(flags->get<std::int64_t>());
    k.active = bool_value(key.value("active", nlohmann::json()), false);
    k.published = bool_value(key.value("published", nlohmann::json()), true);
    const auto content = key.find("content");
    if (content == key.end() || !content->is_string()) {
      return refuse(Status::invalid_argument(name, "key content missing"), false);
    }
    k.content = content->get<std::string>();
    auto id = key_store().add_domain_key(name, k);
    if (!id.ok()) return refuse(id.status(), false);
    return write_result(out, *id);
  }
  if (m == "removeDomainKey" || m == "activateDomainKey" || m == "deactivateDomainKey" ||
      m == "publishDomainKey" || m == "unpublishDomainKey") {
    const std::int64_t id = number_param(req, "id", -1);
    Status s;
    if (m == "removeDomainKey") {
      s = key_store().remove_domain_key(name, id);
    } else if (m == "activateDomainKey" || m == "deactivateDomainKey") {
      s = key_store().set_key_active(name, id, m == "activateDomainKey");
    } else {
      s = key_store().set_key_published(name, id, m == "publishDomainKey");
    }
    if (!s.ok()) return refuse(s, false);
    return write_result(out, true);
  }
  if (m == "getAllDomainMetadata") {
    auto meta = key_store().get_all_domain_metadata(name);
    if (!meta.ok()) return read_failed(meta.status());
    auto result = nlohmann::json::object();
    for (const auto& [kind, values] : *meta) result[kind] = values;
    return write_result(out, result);
  }
  if (m == "getDomainMetadata") {
    // false on errors too: pdns's communicator thread asks (TSIG-ALLOW-AXFR for a NOTIFY) and
    // stops pdns on an exception.
    auto values = key_store().get_domain_metadata(name, req.string_param("kind"));
    if (!values.ok()) return refuse(values.status(), true);
    return write_result(out, *values);
  }
  if (m == "setDomainMetadata") {
    std::vector<std::string> values;
    auto value_it = req.parameters.find("value");
    if (value_it != req.parameters.end() && value_it->is_array()) {
      for (const auto& v : *value_it) {
        if (!v.is_string()) {
          return refuse(Status::invalid_argument(name, "metadata values must be strings"), false);
        }
        values.push_back(v.get<std::string>());
      }
    } else if (value_it != req.parameters.end() && value_it->is_string()) {
      values.push_back(value_it->get<std::string>());
    }
    const Status s = key_store().set_domain_metadata(name, req.string_param("kind"), values);
    if (!s.ok()) return refuse(s, false);
    return write_result(out, true);
  }
  if (m == "startTransaction") {
    const std::string_view zone = req.string_param("domain");
    if (Status s = answerer_.refresh(); !s.ok()) return refuse(s, false);
    const ZoneEntry* entry = answerer_.find_zone(zone);
    if (entry == nullptr || entry->zone.mode != ZoneMode::kAuthoritative) {
      return write_result(out, false);
    }
    // A zone id means "replace the zone's records" (AXFR-in, load-zone, clear-zone): the
    // records come from smimea-ctl, so that is refused before anything is deleted.
    if (number_param(req, "domain_id", -1) >= 0) {
      return refuse(Status::invalid_argument(entry->zone.name,
                                             "zone records are managed with smimea-ctl; pdns "
                                             "cannot replace them"),
                    false);
    }
    const Status s = key_store().begin();
    if (!s.ok()) return refuse(s, false);
    return write_result(out, true);
  }
  if (m == "commitTransaction" || m == "abortTransaction") {
    if (!key_store_ || !key_store_->in_transaction()) {
      return write_result(out, false);
    }
    const Status s = m == "commitTransaction" ? key_store_->commit() : key_store_->rollback();
    if (!s.ok()) return refuse(s, false);
    return write_result(out, true);
  }
  if (m == "getBeforeAndAfterNamesAbsolute") return get_before_and_after_names(req, out);
}

void Handler::get_before_and_after_names(const Request& req, std::string& out) {
  const std::string_view qname = req.string_param("qname");
  // Every failure here is an error: pdns ignores a false and signs an NSEC record from the
  // apex to the apex, which denies every name of the zone.
  if (Status s = answerer_.refresh(); !s.ok()) {
    return error(out, "getBeforeAndAfterNamesAbsolute: " + s.message());
  }
  const ZoneEntry* zone = answerer_.find_zone_by_id(number_param(req, "id", -1));
  if (zone == nullptr || zone->zone.mode != ZoneMode::kAuthoritative) {
    return write_result(out, false);
  }
  auto labels = split_name(qname);
  if (!labels.ok()) {
    return error(out, "getBeforeAndAfterNamesAbsolute: " + labels.status().message());
  }
  // pdns asks with a hashed name only for NSEC3 without narrow, which would need every hash
  // of the zone stored in order. Refused: narrow NSEC3 never asks.
  if (labels->size() == 1 && looks_like_nsec3_hash(labels->front())) {
    auto param = key_store().get_domain_metadata(zone->zone.name, "NSEC3PARAM");
    if (!param.ok() && !not_ours(param.status())) {
      return error(out, "getBeforeAndAfterNamesAbsolute: " + param.status().message());
    }
    if (param.ok() && !param->empty()) {
      return error(out, "zone " + zone->zone.name +
                            " uses NSEC3 without narrow, which this backend does not support: "
                            "run pdnsutil set-nsec3 " +
                            zone->zone.name + " '1 0 0 -' narrow");
    }
  }
  KeyStoreOwnerReader reader(key_store(), zone->zone.id);
  // A delegated _smimecert child is a name of the parent (the cut), records or not.
  auto n =
      nsec_neighbours(zone->zone.name, zone->zone.has_records || zone->child >= 0, *labels, reader);
  if (!n.ok()) return error(out, "getBeforeAndAfterNamesAbsolute: " + n.status().message());
  // Names relative to the zone; pdns appends the zone ("" is the apex).
  write_result(out, {{"unhashed", n->before}, {"before", n->before}, {"after", n->after}});
}

}  // namespace smimea::remote

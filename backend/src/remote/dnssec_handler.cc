// The remote-backend calls that let pdns sign our zones online: keys, domain metadata,
// transactions and the plain-NSEC neighbours, converted from and to JSON. What they mean is
// PdnsCalls's (smimea/pdns_semantics.h). pdns sends the key calls only with
// remote-dnssec=yes; the metadata calls always come. Key material is never logged.
#include <cmath>

#include "handler.h"

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

}  // namespace

bool Handler::dispatch_dnssec(const Request& req, std::string& out) {
  const std::string& m = req.method;
  const std::string_view name = req.string_param("name");
  // The replies of the calls that answer only yes.
  auto done = [&](const Outcome<Done>& outcome) {
    if (answered(outcome, out)) write_result(out, true);
  };
  if (m == "getDomainKeys") {
    auto keys = calls_->domain_keys(name);
    if (!answered(keys, out)) return true;
    auto result = nlohmann::json::array();
    for (const DomainKey& k : *keys) {
      result.push_back({{"id", k.id},
                        {"flags", k.flags},
                        {"active", k.active},
                        {"published", k.published},
                        {"content", k.content}});
    }
    write_result(out, result);
  } else if (m == "addDomainKey") {
    add_domain_key(req, out);
  } else if (m == "removeDomainKey") {
    done(calls_->remove_domain_key(name, number_param(req, "id", -1)));
  } else if (m == "activateDomainKey" || m == "deactivateDomainKey") {
    done(calls_->set_key_active(name, number_param(req, "id", -1), m == "activateDomainKey"));
  } else if (m == "publishDomainKey" || m == "unpublishDomainKey") {
    done(calls_->set_key_published(name, number_param(req, "id", -1), m == "publishDomainKey"));
  } else if (m == "getAllDomainMetadata") {
    auto meta = calls_->all_domain_metadata(name);
    if (!answered(meta, out)) return true;
    auto result = nlohmann::json::object();
    for (const auto& [kind, values] : *meta) result[kind] = values;
    write_result(out, result);
  } else if (m == "getDomainMetadata") {
    auto values = calls_->domain_metadata(name, req.string_param("kind"));
    if (answered(values, out)) write_result(out, *values);
  } else if (m == "setDomainMetadata") {
    set_domain_metadata(req, out);
  } else if (m == "startTransaction") {
    done(calls_->start_transaction(req.string_param("domain"), number_param(req, "domain_id", -1)));
  } else if (m == "commitTransaction") {
    done(calls_->commit_transaction());
  } else if (m == "abortTransaction") {
    done(calls_->abort_transaction());
  } else if (m == "getBeforeAndAfterNamesAbsolute") {
    get_before_and_after_names(req, out);
  } else {
    return false;
  }
  return true;
}

void Handler::add_domain_key(const Request& req, std::string& out) {
  const std::string name(req.string_param("name"));
  auto key_it = req.parameters.find("key");
  if (key_it == req.parameters.end() || !key_it->is_object()) {
    return fail(out, "addDomainKey: " + name + ": no key object");
  }
  const nlohmann::json& key = *key_it;
  DomainKey k;
  const auto flags = key.find("flags");
  if (flags == key.end() || !flags->is_number_integer() || flags->get<std::int64_t>() < 0 ||
      flags->get<std::int64_t>() > 65535) {
    return fail(out, "addDomainKey: " + name + ": key flags missing or out of range");
  }
  k.flags = static_cast<std::uint32_t>(flags->get<std::int64_t>());
  k.active = bool_value(key.value("active", nlohmann::json()), false);
  k.published = bool_value(key.value("published", nlohmann::json()), true);
  const auto content = key.find("content");
  if (content == key.end() || !content->is_string()) {
    return fail(out, "addDomainKey: " + name + ": key content missing");
  }
  k.content = content->get<std::string>();
  auto id = calls_->add_domain_key(name, k);
  if (answered(id, out)) write_result(out, *id);
}

void Handler::set_domain_metadata(const Request& req, std::string& out) {
  const std::string_view name = req.string_param("name");
  std::vector<std::string> values;
  auto value_it = req.parameters.find("value");
  if (value_it != req.parameters.end() && value_it->is_array()) {
    for (const auto& v : *value_it) {
      if (!v.is_string()) {
        return fail(
            out, "setDomainMetadata: " + std::string(name) + ": metadata values must be strings");
      }
      values.push_back(v.get<std::string>());
    }
  } else if (value_it != req.parameters.end() && value_it->is_string()) {
    values.push_back(value_it->get<std::string>());
  }
  auto done = calls_->set_domain_metadata(name, req.string_param("kind"), values);
  if (answered(done, out)) write_result(out, true);
}

void Handler::get_before_and_after_names(const Request& req, std::string& out) {
  auto n = calls_->before_and_after(number_param(req, "id", -1), req.string_param("qname"));
  if (!answered(n, out)) return;
  // Names relative to the zone; pdns appends the zone ("" is the apex).
  write_result(out, {{"unhashed", n->before}, {"before", n->before}, {"after", n->after}});
}

}  // namespace smimea::remote

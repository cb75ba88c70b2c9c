#include "api_json.h"

#include <algorithm>

#include "smimea/cert.h"
#include "smimea/hex.h"
#include "smimea/types.h"

namespace smimea::api {
namespace {

using nlohmann::json;

Status field_error(std::string_view where, std::string_view field, std::string_view why) {
  return Status::invalid_argument(std::string(where) + ": " + std::string(field), why);
}

// The object's fields, each known; *missing names a required one that is absent.
Status check_fields(const json& j, std::string_view where,
                    std::initializer_list<std::string_view> known,
                    std::initializer_list<std::string_view> required) {
  if (!j.is_object()) return Status::invalid_argument(where, "expected a JSON object");
  for (const auto& item : j.items()) {
    if (std::find(known.begin(), known.end(), item.key()) == known.end()) {
      return field_error(where, item.key(), "unknown field");
    }
  }
  for (std::string_view r : required) {
    if (!j.contains(std::string(r))) return field_error(where, r, "required field missing");
  }
  return Status();
}

Result<std::string> get_string(const json& j, std::string_view where, const char* field) {
  const json& v = j.at(field);
  if (!v.is_string()) return field_error(where, field, "expected a string");
  return v.get<std::string>();
}

Result<bool> get_bool(const json& j, std::string_view where, const char* field, bool fallback) {
  if (!j.contains(field)) return fallback;
  const json& v = j.at(field);
  if (!v.is_boolean()) return field_error(where, field, "expected true or false");
  return v.get<bool>();
}

json records_json(const std::vector<PublishedRecord>& records, json* all) {
  json out = json::array();
  for (const PublishedRecord& r : records) {
    json one = {{"owner", r.owner},
                {"ttl", r.ttl},
                {"usage", static_cast<int>(r.params.usage)},
                {"selector", static_cast<int>(r.params.selector)},
                {"matching_type", static_cast<int>(r.params.matching_type)},
                {"data", to_hex(r.data)}};
    all->push_back(one);
    out.push_back(std::move(one));
  }
  return out;
}

}  // namespace

// How deeply body nests arrays and objects, counted on the raw bytes (strings and their
// escapes skipped): linear, before any parsing. (nlohmann's parser callback, the other way to
// count, rescans the enclosing container at every closing brace: quadratic.)
static int nesting_depth(std::string_view body) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

Result<json> parse_body(std::string_view body) {
  if (nesting_depth(body) > kMaxJsonDepth) {
    return Status::invalid_argument(
        "request body", "JSON nested more than " + std::to_string(kMaxJsonDepth) + " levels deep");
  }
  try {
    return json::parse(body.begin(), body.end());
  } catch (const json::exception& e) {
    // nlohmann's message names the position and what was expected, then quotes the token it
    // read, which may be most of a string field (a key pasted by mistake): not sent back.
    std::string what = e.what();
    const std::size_t bracket = what.find("] ");
    if (bracket != std::string::npos) what = what.substr(bracket + 2);
    const std::size_t quoted = what.find("; last read");
    if (quoted != std::string::npos) what.erase(quoted);
    return Status::invalid_argument("request body", "not valid JSON (" + what + ")");
  }
}

Result<PublishRequest> parse_publish(const json& j, std::string_view where) {
  SMIMEA_RETURN_IF_ERROR(
      check_fields(j, where, {"address", "certificate", "records", "ttl", "force", "allow_expired"},
                   {"address", "certificate"}));
  PublishRequest out;
  auto address = get_string(j, where, "address");
  if (!address.ok()) return address.status();
  out.address = std::move(address).value();
  auto certificate = get_string(j, where, "certificate");
  if (!certificate.ok()) return certificate.status();
  out.certificate = std::move(certificate).value();
  if (j.contains("records")) {
    const json& records = j.at("records");
    if (!records.is_array() || records.empty()) {
      return field_error(where, "records", "expected a non-empty array like [\"3 0 0\"]");
    }
    for (const json& r : records) {
      if (!r.is_string()) return field_error(where, "records", "expected strings like \"3 0 0\"");
      auto params = parse_record_params(r.get<std::string>());
      if (!params.ok()) return field_error(where, "records", params.status().message());
      out.options.records.push_back(*params);
    }
  }
  if (j.contains("ttl")) {
    const json& ttl = j.at("ttl");
    if (!ttl.is_number_unsigned() || ttl.get<std::uint64_t>() > kMaxTtl) {
      return field_error(where, "ttl", "expected an integer 0.." + std::to_string(kMaxTtl));
    }
    out.options.ttl = static_cast<std::uint32_t>(ttl.get<std::uint64_t>());
  }
  auto force = get_bool(j, where, "force", false);
  if (!force.ok()) return force.status();
  out.options.force = *force;
  auto expired = get_bool(j, where, "allow_expired", false);
  if (!expired.ok()) return expired.status();
  out.options.allow_expired = *expired;
  return out;
}

Result<ZoneRequest> parse_zone(const json& j) {
  const std::string_view where = "request body";
  SMIMEA_RETURN_IF_ERROR(
      check_fields(j, where, {"name", "kind", "mode", "case_sensitive"}, {"name"}));
  ZoneRequest out;
  auto name = get_string(j, where, "name");
  if (!name.ok()) return name.status();
  out.name = std::move(name).value();
  if (j.contains("kind")) {
    auto kind = get_string(j, where, "kind");
    if (!kind.ok()) return kind.status();
    auto parsed = parse_zone_kind(*kind);
    if (!parsed) return field_error(where, "kind", "expected \"master\" or \"native\"");
    out.kind = *parsed;
  }
  if (j.contains("mode")) {
    auto mode = get_string(j, where, "mode");
    if (!mode.ok()) return mode.status();
    auto parsed = parse_zone_mode(*mode);
    if (!parsed) return field_error(where, "mode", "expected \"authoritative\" or \"overlay\"");
    out.mode = *parsed;
  }
  auto case_sensitive = get_bool(j, where, "case_sensitive", false);
  if (!case_sensitive.ok()) return case_sensitive.status();
  out.case_sensitive = *case_sensitive;
  return out;
}

Result<std::string> parse_inspect(const json& j) {
  const std::string_view where = "request body";
  SMIMEA_RETURN_IF_ERROR(check_fields(j, where, {"certificate"}, {"certificate"}));
  return get_string(j, where, "certificate");
}

json to_json(const Certificate& c, std::int64_t now) {
  return {{"sha256", to_hex(c.fingerprint)},
          {"subject", c.subject},
          {"issuer", c.issuer},
          {"serial", c.serial},
          {"not_before", format_time(c.not_before)},
          {"not_after", format_time(c.not_after)},
          {"expired", c.not_after < now},
          {"ca", c.is_ca},
          {"for_email", c.for_email},
          {"emails", c.emails}};
}

json to_json(const Token& t) {
  return {{"name", t.name},
          {"zones", t.zones},
          {"addresses", t.addresses},
          {"read_only", t.read_only},
          {"admin", t.admin},
          {"expires", t.expires_at ? json(format_time(*t.expires_at)) : json()}};
}

json to_json(const PublishResult& r) {
  json all = json::array();
  json certificates = json::array();
  for (const PublishedCertificate& c : r.certificates) {
    json records = records_json(c.records, &all);
    certificates.push_back({{"sha256", to_hex(c.fingerprint)},
                            {"subject", c.subject},
                            {"issuer", c.issuer},
                            {"not_before", format_time(c.not_before)},
                            {"not_after", format_time(c.not_after)},
                            {"anchor", c.anchor},
                            {"records", std::move(records)}});
  }
  return {{"address", r.address},
          {"zone", r.zone},
          {"serial", r.serial},
          {"changed", r.changed()},
          {"warnings", r.warnings},
          {"sha256", r.certificates.empty() ? "" : to_hex(r.certificates.front().fingerprint)},
          {"certificates", std::move(certificates)},
          {"records", std::move(all)}};
}

json to_json(const CertInfo& c) {
  json records = json::array();
  for (const CertRecordInfo& r : c.records) {
    records.push_back({{"owner", r.owner_name},
                       {"ttl", r.ttl},
                       {"usage", static_cast<int>(r.params.usage)},
                       {"selector", static_cast<int>(r.params.selector)},
                       {"matching_type", static_cast<int>(r.params.matching_type)},
                       {"data", to_hex(r.data)}});
  }
  return {{"address", c.address},
          {"zone", c.zone},
          {"sha256", to_hex(c.fingerprint)},
          {"subject", c.subject},
          {"issuer", c.issuer},
          {"serial", c.serial},
          {"not_before", format_time(c.not_before)},
          {"not_after", format_time(c.not_after)},
          {"added", format_time(c.created_at)},
          {"changed_by", c.changed_by},
          {"records", std::move(records)}};
}

json to_json(const Zone& z) {
  return {{"name", z.name},
          {"kind", std::string(zone_kind_name(z.kind))},
          {"mode", std::string(zone_mode_name(z.mode))},
          {"serial", z.serial},
          {"case_sensitive", z.case_sensitive}};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace smimea::api

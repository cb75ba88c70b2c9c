// The API's JSON: request bodies parsed strictly (an unknown field, a wrong type or a value
// out of range is a 400 with the field's name), results serialised as openapi.json says.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "smimea/provision.h"
#include "smimea/status.h"
#include "smimea/store.h"

namespace smimea::api {

// Deeper nesting than this is refused before it is built (a body of 100,000 '[' must cost
// nothing). The deepest body the API reads has 4 levels.
inline constexpr int kMaxJsonDepth = 16;

// The body as JSON: InvalidArgument ("request body: ...") for anything that is not, or is
// not UTF-8, or nests too deeply.
Result<nlohmann::json> parse_body(std::string_view body);

// A publish (or preview, or bulk item) request.
struct PublishRequest {
  std::string address;
  std::string certificate;
  PublishOptions options;
};
Result<PublishRequest> parse_publish(const nlohmann::json& j, std::string_view where);

struct ZoneRequest {
  std::string name;
  ZoneMode mode = ZoneMode::kAuthoritative;
  ZoneKind kind = ZoneKind::kMaster;
  bool case_sensitive = false;
};
Result<ZoneRequest> parse_zone(const nlohmann::json& j);

// {"certificate": "..."}: the certificate text of an inspect request.
Result<std::string> parse_inspect(const nlohmann::json& j);

nlohmann::json to_json(const PublishResult& r);
nlohmann::json to_json(const CertInfo& c);
nlohmann::json to_json(const Zone& z);
nlohmann::json to_json(const Certificate& c, std::int64_t now);  // what the certificate says
nlohmann::json to_json(const Token& t);                          // never its secret or hash

// Serialised; text that is not UTF-8 (a certificate's subject may hold anything) is replaced,
// never an error.
std::string dump(const nlohmann::json& j);

}  // namespace smimea::api

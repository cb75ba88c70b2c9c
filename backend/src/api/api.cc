#include "api.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <ctime>

#include "api_json.h"
#include "smimea/network.h"
#include "smimea/provision.h"

namespace smimea::api {

StorePool::Lease::~Lease() {
  if (!store_) return;
  std::lock_guard<std::mutex> lock(pool_->mutex_);
  pool_->idle_.push_back(std::move(store_));
}

Result<StorePool::Lease> StorePool::acquire() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!idle_.empty()) {
      std::unique_ptr<Store> store = std::move(idle_.back());
      idle_.pop_back();
      return Lease(*this, std::move(store));
    }
  }
  auto store = Store::open(config_.database, store_options(config_, StoreUse::kWriter));
  if (!store.ok()) return store.status();
  return Lease(*this, std::move(store).value());
}

unsigned RateLimiter::take(const std::string& token) {
  if (rate_ == 0) return 0;
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mutex_);
  auto [it, added] = buckets_.try_emplace(token, Bucket{static_cast<double>(rate_), now});
  Bucket& b = it->second;
  const double elapsed = std::chrono::duration<double>(now - b.last).count();
  b.tokens = std::min(static_cast<double>(rate_), b.tokens + elapsed * rate_);
  b.last = now;
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return 0;
  }
  return static_cast<unsigned>(std::ceil((1 - b.tokens) / rate_));
}

Response error(unsigned status, std::string_view message) {
  Response r;
  r.status = status;
  r.body = dump(nlohmann::json{{"error", message}});
  return r;
}

Response error(const Status& status, bool is_query) {
  switch (status.code()) {
    case Status::Code::kNotFound:
      return error(404, status.message());
    case Status::Code::kPermissionDenied:
      return error(403, status.message());
    case Status::Code::kConflict:
      return error(409, status.message());
    case Status::Code::kInvalidArgument:
      return error(is_query ? 400 : 422, status.message());
    case Status::Code::kStoreError: {
      Response r = error(503, status.message());
      r.headers.emplace_back("Retry-After", "1");
      return r;
    }
    case Status::Code::kOk:
    case Status::Code::kConfigError:
      break;
  }
  return error(500, status.message());
}

Api::Api(const Config& config, Metrics& metrics)
    : config_(config), metrics_(metrics), stores_(config), limiter_(config.api.rate_limit) {}

Status Api::check_store() { return stores_.acquire().status(); }

const std::vector<Api::Route>& Api::routes() {
  // Literal paths before the parameter routes they would otherwise match.
  static const std::vector<Route> kRoutes = {
      {"GET", "/api/v1/zones", "zones", true, Body::kNone, &Api::zones_get},
      {"POST", "/api/v1/zones", "zones", true, Body::kSmall, &Api::zones_post},
      {"DELETE", "/api/v1/zones/", "zone", true, Body::kNone, &Api::zones_delete, {"force"}},
      {"GET",
       "/api/v1/certificates",
       "certificates",
       true,
       Body::kNone,
       &Api::certificates_get,
       {"zone", "address"}},
      {"POST", "/api/v1/certificates", "certificates", true, Body::kSmall, &Api::certificates_post},
      {"POST", "/api/v1/certificates/bulk", "bulk", true, Body::kBulk, &Api::bulk},
      {"DELETE",
       "/api/v1/certificates/",
       "certificate",
       true,
       Body::kNone,
       &Api::certificates_delete,
       {"address"}},
      {"POST", "/api/v1/preview", "preview", true, Body::kSmall, &Api::preview},
      {"POST", "/api/v1/inspect", "inspect", true, Body::kSmall, &Api::inspect},
      {"GET", "/api/v1/token", "token", true, Body::kNone, &Api::token},
      {"GET", "/api/v1/openapi.json", "openapi", false, Body::kNone, &Api::openapi},
      {"GET", "/metrics", "metrics", false, Body::kNone, &Api::metrics},
      {"GET", "/", "page", false, Body::kNone, &Api::page},
      {"GET", "/static/", "page", false, Body::kNone, &Api::page},
  };
  return kRoutes;
}

std::optional<Response> Api::authenticate(Request& request) {
  constexpr std::string_view kBearer = "Bearer ";
  std::string_view auth = request.authorization;
  if (auth.size() <= kBearer.size() || auth.substr(0, kBearer.size()) != kBearer) {
    metrics_.auth_failure();
    Response r = error(401, "missing bearer token (Authorization: Bearer SECRET)");
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    return r;
  }
  auto store = stores_.acquire();
  if (!store.ok()) return error(store.status());
  auto token = Provisioner(**store, config_)
                   .authenticate(auth.substr(kBearer.size()), std::time(nullptr), request.peer);
  if (!token.ok()) {
    if (!token.status().is_not_found()) return error(token.status());
    metrics_.auth_failure();
    Response r = error(401, token.status().message());
    r.headers.emplace_back("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    return r;
  }
  request.token = std::move(token).value();
  if (const unsigned wait = limiter_.take(request.token->name); wait > 0) {
    metrics_.rate_limited();
    Response r = error(429, "token " + request.token->name + ": more than " +
                                std::to_string(config_.api.rate_limit) +
                                " requests per second (api.rate-limit)");
    r.headers.emplace_back("Retry-After", std::to_string(wait));
    return r;
  }
  return std::nullopt;
}

std::optional<Response> Api::begin(Request& request, std::size_t* max_body) {
  *max_body = 0;
  const Route* route = nullptr;
  std::string allowed;
  for (std::size_t i = 0; i < routes().size(); ++i) {
    const Route& r = routes()[i];
    std::string_view path = r.path;
    std::string param;
    if (path.size() > 1 && path.back() == '/') {
      if (request.path.size() <= path.size() || request.path.compare(0, path.size(), path) != 0) {
        continue;
      }
      param = request.path.substr(path.size());
      if (param.find('/') != std::string::npos) continue;
      // A literal route of the same path wins (certificates/bulk).
      const bool literal = std::any_of(routes().begin(), routes().end(),
                                       [&](const Route& o) { return request.path == o.path; });
      if (literal) continue;
    } else if (request.path != path) {
      continue;
    }
    if (request.method != r.method) {
      allowed += allowed.empty() ? r.method : std::string(", ") + r.method;
      continue;
    }
    route = &r;
    request.route = static_cast<int>(i);
    request.endpoint = r.endpoint;
    request.param = std::move(param);
    break;
  }
  if (route == nullptr) {
    if (allowed.empty()) return error(404, "no such path: " + request.path);
    Response r = error(405, request.method + " is not allowed here (allowed: " + allowed + ")");
    r.headers.emplace_back("Allow", allowed);
    return r;
  }
  for (const auto& [key, value] : request.query) {
    if (std::none_of(route->query.begin(), route->query.end(),
                     [&](const char* known) { return key == known; })) {
      return error(400, "unknown query parameter '" + key.substr(0, 64) + "'");
    }
    if (value.empty()) return error(400, "query parameter '" + key + "' is empty");
    if (value.find('\0') != std::string::npos) {
      return error(400, "query parameter '" + key + "' holds a NUL character");
    }
  }
  if (route->fn == &Api::metrics) {
    const bool allowed_peer =
        std::any_of(config_.api.metrics_from.begin(), config_.api.metrics_from.end(),
                    [&](const std::string& n) { return in_network(request.peer, n); });
    if (!allowed_peer) return error(403, "metrics are not served to " + request.peer);
  }
  if (route->token) {
    if (auto refused = authenticate(request)) return refused;
  }
  if (route->body == Body::kNone) {
    // Refused before a byte of it is read: a body nobody reads could be trickled in forever.
    if (request.chunked || (request.content_length && *request.content_length > 0)) {
      return error(400, "this request takes no body");
    }
    return std::nullopt;
  }
  if (route->body == Body::kBulk && request.token->read_only) {
    // Before its body, which may be large: a read-only token never publishes.
    return error(403, "token " + request.token->name + ": is read-only");
  }
  if (request.chunked || !request.content_length) {
    return error(411, "a request body needs a Content-Length (chunked bodies are refused)");
  }
  const std::string_view type =
      std::string_view(request.content_type)
          .substr(0, std::min(request.content_type.find(';'), request.content_type.size()));
  if (type != "application/json") {
    return error(415, "the request body must be application/json");
  }
  *max_body = route->body == Body::kBulk ? config_.api.max_bulk_bytes : config_.api.max_body_bytes;
  if (*request.content_length > *max_body) {
    return error(413, "request body larger than " + std::to_string(*max_body) + " bytes (api." +
                          (route->body == Body::kBulk ? "max-bulk-bytes" : "max-body-bytes") + ")");
  }
  return std::nullopt;
}

Response Api::handle(Request& request, bool body_too_large) {
  if (body_too_large) return error(413, "request body larger than the limit");
  const Route& route = routes()[static_cast<std::size_t>(request.route)];
  return (this->*route.fn)(request);
}

void Api::done(const Request& request, unsigned status) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - request.start).count();
  metrics_.request(request.endpoint, status, seconds);
  // Never the Authorization header, the query (it may name a person's address) or the body;
  // the path without control characters (it is percent-decoded: %0a would forge a line).
  std::string path = request.path.substr(0, 256);
  for (char& c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  spdlog::info("{} {} {} {:.1f}ms token={} peer={}", request.method, path, status, seconds * 1000,
               request.token ? request.token->name : "-", request.peer);
}

}  // namespace smimea::api

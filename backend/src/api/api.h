// smimea-api's handler: routes, tokens, limits, and each endpoint as a thin translation
// between JSON and the provisioning service (provision.h), which makes every decision.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "http_server.h"
#include "metrics.h"
#include "smimea/config.h"
#include "smimea/store.h"

namespace smimea::api {

// Store connections for the worker threads: one each, opened when first needed.
class StorePool {
 public:
  explicit StorePool(const Config& config) : config_(config) {}
  class Lease {
   public:
    Lease(StorePool& pool, std::unique_ptr<Store> store) : pool_(&pool), store_(std::move(store)) {}
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();
    Store& operator*() const { return *store_; }

   private:
    StorePool* pool_;
    std::unique_ptr<Store> store_;
  };
  Result<Lease> acquire();

 private:
  const Config& config_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Store>> idle_;
};

// Requests per second per token, in bursts of as many (a token bucket each).
class RateLimiter {
 public:
  explicit RateLimiter(std::uint32_t per_second) : rate_(per_second) {}
  // 0 if the request may go on, else the seconds to wait (Retry-After).
  unsigned take(const std::string& token);

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point last;
  };
  std::uint32_t rate_;
  std::mutex mutex_;
  std::map<std::string, Bucket> buckets_;
};

class Api final : public Handler {
 public:
  Api(const Config& config, Metrics& metrics);
  // Opens a first store connection: the daemon does not start on a store it cannot use.
  Status check_store();

  std::optional<Response> begin(Request& request, std::size_t* max_body) override;
  Response handle(Request& request, bool body_too_large) override;
  void done(const Request& request, unsigned status) override;
  void connection(int delta) override { metrics_.connection(delta); }

 private:
  enum class Body { kNone, kSmall, kBulk };
  struct Route {
    const char* method;
    const char* path;  // ending in '/' (but "/") when a parameter follows
    const char* endpoint;
    bool token;  // needs a bearer token
    Body body;
    Response (Api::*fn)(Request&);
    std::vector<const char*> query = {};  // the query parameters it takes
  };
  static const std::vector<Route>& routes();

  std::optional<Response> authenticate(Request& request);

  Response zones_get(Request& request);
  Response zones_post(Request& request);
  Response zones_delete(Request& request);
  Response certificates_get(Request& request);
  Response certificates_post(Request& request);
  Response certificates_delete(Request& request);
  Response preview(Request& request);
  Response inspect(Request& request);
  Response token(Request& request);
  Response bulk(Request& request);
  Response openapi(Request& request);
  Response metrics(Request& request);
  Response page(Request& request);  // the web page's static files

  Response publish(Request& request, bool preview);

  const Config& config_;
  Metrics& metrics_;
  StorePool stores_;
  RateLimiter limiter_;
  // One writer at a time within the process: API writers queue here rather than in SQLite's
  // busy handler, whose sleeps would set the latency (smimea-ctl still waits there). Waited
  // for at most kWriteWait: then 503, as the store's own busy timeout would answer.
  std::timed_mutex write_mutex_;
  static constexpr std::chrono::seconds kWriteWait{5};
  // The write lock, or the 503 to answer.
  std::optional<Response> lock_writes(std::unique_lock<std::timed_mutex>* lock);
};

// {"error": message} with this status.
Response error(unsigned status, std::string_view message);
// The status for a refusal of the provisioning service: 403, 404, 409, 422 (400 for a query
// when is_query), 503 for the store.
Response error(const Status& status, bool is_query = false);

}  // namespace smimea::api

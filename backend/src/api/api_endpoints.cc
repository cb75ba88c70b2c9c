// The endpoints: each parses its request, calls the provisioning service with the request's
// token, and serialises the answer. No decision of their own.
#include <chrono>
#include <ctime>

#include "api.h"
#include "api_json.h"
#include "openapi_json.h"
#include "smimea/hex.h"
#include "smimea/provision.h"
#include "web_kWeb_app_css.h"
#include "web_kWeb_app_js.h"
#include "web_kWeb_index_html.h"

namespace smimea::api {
namespace {

using nlohmann::json;

Response ok(unsigned status, const json& body) {
  Response r;
  r.status = status;
  r.body = dump(body);
  return r;
}

Response no_content() {
  Response r;
  r.status = 204;
  r.content_type.clear();  // no body, no type
  return r;
}

std::string query(const Request& request, const char* key) {
  auto it = request.query.find(key);
  return it == request.query.end() ? std::string() : it->second;
}

}  // namespace

std::optional<Response> Api::lock_writes(std::unique_lock<std::timed_mutex>* lock) {
  *lock = std::unique_lock<std::timed_mutex>(write_mutex_, kWriteWait);
  if (lock->owns_lock()) return std::nullopt;
  Response r = error(503, "the store is busy with other changes; try again");
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

Response Api::zones_get(Request& request) {
  auto store = stores_.acquire();
  if (!store.ok()) return error(store.status());
  auto zones = Provisioner(**store, config_, *request.token).zones();
  if (!zones.ok()) return error(zones.status(), true);
  json out = json::array();
  for (const Zone& z : *zones) out.push_back(to_json(z));
  return ok(200, out);
}

Response Api::zones_post(Request& request) {
  auto body = parse_body(request.body);
  if (!body.ok()) return error(400, body.status().message());
  auto zone = parse_zone(*body);
  if (!zone.ok()) return error(400, zone.status().message());
  auto store = stores_.acquire();
  if (!store.ok()) return error(store.status());
  std::unique_lock<std::timed_mutex> lock;
  if (auto busy = lock_writes(&lock)) return *busy;
  auto change = Provisioner(**store, config_, *request.token)
                    .add_zone(zone->name, zone->mode, zone->kind, zone->case_sensitive);
  // A name that is not a domain is a malformed request (400), not a refused certificate.
  if (!change.ok()) return error(change.status(), true);
  return ok(201, to_json(change->zone));
}

Response Api::zones_delete(Request& request) {
  const std::string force = query(request, "force");
  if (!force.empty() && force != "true" && force != "false") {
    return error(400, "force: expected true or false");
  }
  auto store = stores_.acquire();
  if (!store.ok()) return error(store.status());
  std::unique_lock<std::timed_mutex> lock;
  if (auto busy = lock_writes(&lock)) return *busy;
  auto change =
      Provisioner(**store, config_, *request.token).remove_zone(request.param, force == "true");
  if (!change.ok()) return error(change.status(), true);
  metrics_.removed(static_cast<std::uint64_t>(change->certificates_removed));
  return no_content();
}

Response Api::certificates_get(Request& request) {
  auto store = stores_.acquire();
  if (!store.ok()) return error(store.status());
  auto certs = Provisioner(**store, config_, *request.token)
                   .list(query(request, "address"), query(request, "zone"));
  if (!certs.ok()) return error(certs.status(), true);
  json out = json::array();
  for (const CertInfo& c : *certs) out.push_back(to_json(c));
  return ok(200, out);
}

Response Api::certificates_delete(Request& request) {
  auto fingerprint = parse_fingerprint(request.param);
  if (!fingerprint.ok()) return error(400, fingerprint.status().message());
  auto store = stores_.acquire();
  if (!store.ok()) return error(store.status());
  std::unique_lock<std::timed_mutex> lock;
  if (auto busy = lock_writes(&lock)) return *busy;
  auto removed = Provisioner(**store, config_, *request.token)
                     .remove_certificate(*fingerprint, query(request, "address"));
  if (!removed.ok()) return error(removed.status(), true);
  metrics_.removed(removed->size());
  return no_content();
}

Response Api::certificates_post(Request& request) { return publish(request, false); }

Response Api::preview(Request& request) { return publish(request, true); }

Response Api::publish(Request& request, bool preview) {
  auto body = parse_body(request.body);
  if (!body.ok()) return error(400, body.status().message());
  auto publish = parse_publish(*body, "request body");
  if (!publish.ok()) return error(400, publish.status().message());
  auto certs = parse_certificates(publish->certificate, "certificate", config_.max_input_bytes);
  if (!certs.ok()) return error(422, certs.status().message());
  auto store = stores_.acquire();
  if (!store.ok()) return error(store.status());
  std::unique_lock<std::timed_mutex> lock;
  if (auto busy = lock_writes(&lock)) return *busy;
  Provisioner provisioner(**store, config_, *request.token);
  auto result =
      preview ? provisioner.preview(publish->address, *certs, "certificate", publish->options)
              : provisioner.publish(publish->address, *certs, "certificate", publish->options);
  if (!result.ok()) return error(result.status());
  if (!preview && result->changed()) metrics_.published(result->certificates.size());
  return ok(preview ? 200 : 201, to_json(*result));
}

Response Api::inspect(Request& request) {
  auto body = parse_body(request.body);
  if (!body.ok()) return error(400, body.status().message());
  auto text = parse_inspect(*body);
  if (!text.ok()) return error(400, text.status().message());
  auto certs = parse_certificates(*text, "certificate", config_.max_input_bytes);
  if (!certs.ok()) return error(422, certs.status().message());
  const std::int64_t now = std::time(nullptr);
  json out = json::array();
  for (const Certificate& c : *certs) out.push_back(to_json(c, now));
  return ok(200, json{{"certificates", std::move(out)}});
}

Response Api::token(Request& request) { return ok(200, to_json(*request.token)); }

Response Api::bulk(Request& request) {
  auto body = parse_body(request.body);
  if (!body.ok()) return error(400, body.status().message());
  const json& j = *body;
  if (!j.is_object() || !j.contains("certificates") || !j.at("certificates").is_array()) {
    return error(400, "request body: expected {\"certificates\": [...], \"atomic\"?: bool}");
  }
  for (const auto& item : j.items()) {
    if (item.key() != "certificates" && item.key() != "atomic") {
      return error(400, "request body: " + item.key() + ": unknown field");
    }
  }
  if (j.contains("atomic") && !j.at("atomic").is_boolean()) {
    return error(400, "request body: atomic: expected true or false");
  }
  const bool atomic = j.value("atomic", false);
  const json& items = j.at("certificates");
  if (items.size() > config_.api.max_bulk_items) {
    return error(413, "more than " + std::to_string(config_.api.max_bulk_items) +
                          " certificates in one request (api.max-bulk-items)");
  }
  // Every item parsed first, outside the store's write lock: smimea-ctl and the other
  // writers wait only for the publishing itself.
  struct Item {
    std::string where;
    unsigned refused = 0;  // the status of a refusal, with its message
    std::string message;
    PublishRequest request;
    std::vector<Certificate> certs;
  };
  std::vector<Item> parsed(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    Item& item = parsed[i];
    item.where = "certificates[" + std::to_string(i) + "]";
    auto publish = parse_publish(items[i], item.where);
    if (!publish.ok()) {
      item.refused = 400;
      item.message = publish.status().message();
      continue;
    }
    item.request = std::move(publish).value();
    auto certs = parse_certificates(item.request.certificate, item.where + ".certificate",
                                    config_.max_input_bytes);
    if (!certs.ok()) {
      item.refused = 422;
      item.message = certs.status().message();
      continue;
    }
    item.certs = std::move(certs).value();
  }
  auto store = stores_.acquire();
  if (!store.ok()) return error(store.status());
  std::unique_lock<std::timed_mutex> lock;
  if (auto busy = lock_writes(&lock)) return *busy;
  Provisioner provisioner(**store, config_, *request.token);
  auto batch = provisioner.begin();
  if (!batch.ok()) return error(batch.status());
  json results = json::array();
  std::size_t published = 0, refused = 0, changed = 0;
  for (std::size_t i = 0; i < parsed.size(); ++i) {
    const Item& item = parsed[i];
    json result = {{"index", i}};
    auto refuse = [&](unsigned status, const std::string& message) {
      result["status"] = status;
      result["error"] = message;
      ++refused;
    };
    if (item.refused != 0) {
      refuse(item.refused, item.message);
    } else {
      auto done = batch->publish(item.request.address, item.certs, item.where + ".certificate",
                                 item.request.options);
      if (!done.ok()) {
        // A store failure ends the whole request, rolled back (the batch is dropped).
        if (done.status().code() == Status::Code::kStoreError) return error(done.status());
        refuse(error(done.status()).status, done.status().message());
      } else {
        // A summary: the records of thousands of certificates would make the answer larger
        // than the request, and a panel has them already (GET /api/v1/certificates).
        result["status"] = 201;
        result["address"] = done->address;
        result["zone"] = done->zone;
        result["sha256"] = to_hex(done->certificates.front().fingerprint);
        result["changed"] = done->changed();
        result["warnings"] = done->warnings;
        if (done->changed()) changed += done->certificates.size();
        ++published;
      }
    }
    results.push_back(std::move(result));
  }
  const json out = {{"published", published}, {"refused", refused}, {"results", results}};
  if (atomic && refused > 0) return ok(422, out);  // the batch rolls back as it goes
  if (Status s = batch->commit(); !s.ok()) return error(s);
  metrics_.published(changed);
  return ok(200, out);
}

Response Api::openapi(Request&) {
  Response r;
  r.body = kOpenApiJson;
  return r;
}

Response Api::page(Request& request) {
  struct File {
    const char* path;
    const char* type;
    const char* body;
  };
  static constexpr File kFiles[] = {
      {"/", "text/html; charset=utf-8", kWeb_index_html},
      {"/static/app.js", "text/javascript; charset=utf-8", kWeb_app_js},
      {"/static/app.css", "text/css; charset=utf-8", kWeb_app_css},
  };
  for (const File& f : kFiles) {
    if (request.path != f.path) continue;
    Response r;
    r.content_type = f.type;
    r.body = f.body;
    // Its own scripts and styles only, requests to this server only, never in a frame: a
    // certificate's subject cannot become code, and nothing leaves for another host.
    r.headers = {{"Content-Security-Policy",
                  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                  "connect-src 'self'; base-uri 'none'; form-action 'none'; "
                  "frame-ancestors 'none'"},
                 {"X-Frame-Options", "DENY"},
                 {"Referrer-Policy", "no-referrer"},
                 {"Cross-Origin-Opener-Policy", "same-origin"}};
    return r;
  }
  return error(404, "no such path: " + request.path);
}

Response Api::metrics(Request&) {
  Response r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = metrics_.render();
  // The store's figures: one grouped read per scrape.
  auto store = stores_.acquire();
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  r.body += render_zone_stats(store.ok() ? (**store).zone_stats(now)
                                         : Result<std::vector<ZoneStats>>(store.status()));
  return r;
}

}  // namespace smimea::api

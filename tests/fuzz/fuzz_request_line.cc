// Fuzzes the remote backend end to end: a request line through the Handler, against a small
// store, must give exactly one reply line that is a JSON object with a "result" member; and
// the lookup fast path, where it accepts a line, must read it as nlohmann::json does.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "handler.h"
#include "protocol.h"
#include "smimea/config.h"
#include "smimea/owner_name.h"
#include "smimea/store.h"

namespace {

smimea::remote::Handler* handler() {
  static smimea::Config config;
  static std::unique_ptr<smimea::remote::Handler> h = [] {
    char dir[] = "/tmp/smimea-fuzz-XXXXXX";
    if (mkdtemp(dir) == nullptr) std::abort();
    config.database = std::string(dir) + "/store.db";
    if (!smimea::Store::init(config.database).ok()) std::abort();
    auto store = smimea::Store::open(config.database, smimea::StoreOptions{});
    if (!store.ok() || !(*store)->begin().ok()) std::abort();
    auto zone = (*store)->add_zone("example.com", smimea::ZoneMode::kAuthoritative);
    if (!zone.ok()) std::abort();
    smimea::NewCertificate cert;
    cert.address = "hugh@example.com";
    cert.domain = "example.com";
    cert.der = {0x30, 0x00};
    cert.records.push_back(
        {smimea::owner_hash("hugh"), smimea::RecordParams{}, 300, smimea::Bytes(32, 0xab)});
    if (!(*store)->add_certificate(*zone, cert).ok() || !(*store)->commit().ok()) std::abort();
    auto created = smimea::remote::Handler::create(config);
    if (!created.ok()) std::abort();
    return std::move(created).value();
  }();
  return h.get();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  if (line.find('\n') != std::string_view::npos) return 0;  // the transport splits lines
  // The lookup fast path reads nothing that the JSON library would read differently.
  smimea::remote::LookupRequest fast;
  if (smimea::remote::parse_lookup_request(line, &fast)) {
    auto ref = smimea::remote::parse_request(line);
    if (!ref.ok() || ref->method != "lookup" || ref->string_param("qname") != fast.qname ||
        ref->string_param("qtype") != fast.qtype || ref->int_param("zone-id", -1) != fast.zone_id) {
      __builtin_trap();
    }
  }
  std::string reply;
  handler()->handle(line, reply);
  if (reply.empty() || reply.back() != '\n' || reply.find('\n') != reply.size() - 1) {
    __builtin_trap();
  }
  auto doc = nlohmann::json::parse(reply, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("result")) __builtin_trap();
  return 0;
}

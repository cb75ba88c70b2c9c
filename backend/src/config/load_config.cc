// The only user of yaml-cpp. One table declares every key (name, what it is, range); parsing
// and validation are driven by it, and yaml-cpp's exceptions stop here, turned into a Status
// naming the file, line and key.
#include <arpa/inet.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>
#include <type_traits>

#include "smimea/config.h"
#include "smimea/network.h"
#include "smimea/owner_name.h"

namespace smimea {
namespace {

// "file:line: key: why"
Status config_error(const std::string& source, const YAML::Node& node, const std::string& key,
                    const std::string& why) {
  std::string where = source.empty() ? "config" : source;
  if (node.IsDefined() && node.Mark().line >= 0)
    where += ":" + std::to_string(node.Mark().line + 1);
  return Status::config_error(where, key + ": " + why);
}

// yaml-cpp keeps both entries of a key written twice, and the later one would silently win.
Status check_once(std::set<std::string>* seen, const std::string& source, const YAML::Node& node,
                  const std::string& key) {
  if (seen->insert(key).second) return Status();
  return config_error(source, node, key, "given more than once");
}

Result<std::uint64_t> get_uint(const std::string& source, const YAML::Node& node,
                               const std::string& key, std::uint64_t min, std::uint64_t max) {
  if (!node.IsScalar()) return config_error(source, node, key, "expected a number");
  const std::string& text = node.Scalar();
  std::uint64_t value = 0;
  std::size_t pos = 0;
  try {
    if (text.empty() || text[0] == '-' || text[0] == '+') throw std::invalid_argument(text);
    // Decimal, except the socket modes, written the chmod way (0660).
    const bool octal = key == "socket-mode" || key == "api.socket-mode";
    value = std::stoull(text, &pos, octal ? 8 : 10);
  } catch (const std::exception&) {
    pos = 0;
  }
  if (pos == 0 || pos != text.size()) {
    return config_error(source, node, key, "'" + text + "' is not a non-negative integer");
  }
  if (value < min || value > max) {
    return config_error(
        source, node, key,
        text + " is out of range " + std::to_string(min) + ".." + std::to_string(max));
  }
  return value;
}

Result<bool> get_bool(const std::string& source, const YAML::Node& node, const std::string& key) {
  bool value = false;
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
    return config_error(source, node, key, "expected true or false");
  }
  return value;
}

Result<std::string> get_string(const std::string& source, const YAML::Node& node,
                               const std::string& key) {
  if (!node.IsScalar() || node.Scalar().empty()) {
    return config_error(source, node, key, "expected a non-empty string");
  }
  return node.Scalar();
}

// A DNS name in presentation form, returned fully qualified.
Result<std::string> get_dns_name(const std::string& source, const YAML::Node& node,
                                 const std::string& key) {
  auto text = get_string(source, node, key);
  if (!text.ok()) return text.status();
  auto name = normalize_domain(*text, /*allow_underscore=*/false);
  if (!name.ok()) return config_error(source, node, key, name.status().message());
  return *name + ".";
}

// SOA RNAME: a mailbox written as a DNS name (hostmaster.example.com.); "a@b" is converted.
Result<std::string> get_rname(const std::string& source, const YAML::Node& node,
                              const std::string& key) {
  auto text = get_string(source, node, key);
  if (!text.ok()) return text.status();
  std::string value = *text;
  const auto at = value.find('@');
  if (at != std::string::npos) {
    const std::string local = value.substr(0, at);
    if (local.find('.') != std::string::npos) {
      return config_error(source, node, key, "local-part with '.' cannot be written as an RNAME");
    }
    value = local + "." + value.substr(at + 1);
  }
  auto name = normalize_domain(value, /*allow_underscore=*/false);
  if (!name.ok()) return config_error(source, node, key, name.status().message());
  return *name + ".";
}

Result<std::vector<RecordParams>> get_records(const std::string& source, const YAML::Node& node,
                                              const std::string& key) {
  if (!node.IsSequence() || node.size() == 0) {
    return config_error(source, node, key,
                        "expected a non-empty list of {usage, selector, matching-type}");
  }
  std::vector<RecordParams> out;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const YAML::Node item = node[i];
    const std::string item_key = key + "[" + std::to_string(i) + "]";
    if (!item.IsMap()) return config_error(source, item, item_key, "expected a map");
    int values[3] = {3, 0, 0};
    const char* names[3] = {"usage", "selector", "matching-type"};
    const std::uint64_t maxes[3] = {3, 1, 2};
    std::set<std::string> seen;
    for (const auto& kv : item) {
      const std::string sub = kv.first.as<std::string>();
      SMIMEA_RETURN_IF_ERROR(check_once(&seen, source, kv.first, item_key + "." + sub));
      int idx = -1;
      for (int j = 0; j < 3; ++j) {
        if (sub == names[j]) idx = j;
      }
      if (idx < 0) return config_error(source, kv.first, item_key + "." + sub, "unknown key");
      auto v = get_uint(source, kv.second, item_key + "." + sub, 0, maxes[idx]);
      if (!v.ok()) return v.status();
      values[idx] = static_cast<int>(*v);
    }
    out.push_back(*make_record_params(values[0], values[1], values[2]));
  }
  return out;
}

constexpr std::uint64_t kMaxU31 = std::numeric_limits<std::int32_t>::max();

Status apply_soa(const std::string& source, const YAML::Node& node, SoaTemplate* soa) {
  if (!node.IsMap()) return config_error(source, node, "soa", "expected a map");
  std::set<std::string> seen;
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    const std::string full = "soa." + key;
    SMIMEA_RETURN_IF_ERROR(check_once(&seen, source, kv.first, full));
    std::uint32_t* field = nullptr;
    std::uint64_t min = 1;
    std::uint64_t max = kMaxU31;
    if (key == "mname") {
      auto v = get_dns_name(source, kv.second, full);
      if (!v.ok()) return v.status();
      soa->mname = *v;
      continue;
    }
    if (key == "rname") {
      auto v = get_rname(source, kv.second, full);
      if (!v.ok()) return v.status();
      soa->rname = *v;
      continue;
    }
    if (key == "refresh") field = &soa->refresh;
    if (key == "retry") field = &soa->retry;
    if (key == "expire") field = &soa->expire;
    if (key == "minimum") {
      field = &soa->minimum;
      min = 0;
      max = 86400;
    }
    if (key == "ttl") {
      field = &soa->ttl;
      min = 0;
      max = kMaxTtl;
    }
    if (field == nullptr) return config_error(source, kv.first, full, "unknown key");
    auto v = get_uint(source, kv.second, full, min, max);
    if (!v.ok()) return v.status();
    *field = static_cast<std::uint32_t>(*v);
  }
  return Status();
}

Result<std::vector<std::string>> get_list(const std::string& source, const YAML::Node& node,
                                          const std::string& key) {
  if (!node.IsSequence() || node.size() == 0) {
    return config_error(source, node, key, "expected a non-empty list");
  }
  std::vector<std::string> out;
  for (std::size_t i = 0; i < node.size(); ++i) {
    auto r = get_string(source, node[i], key + "[" + std::to_string(i) + "]");
    if (!r.ok()) return r.status();
    out.push_back(*r);
  }
  return out;
}

Status apply_api(const std::string& source, const YAML::Node& node, ApiConfig* api) {
  if (!node.IsMap()) return config_error(source, node, "api", "expected a map");
  std::set<std::string> seen;
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    const std::string full = "api." + key;
    SMIMEA_RETURN_IF_ERROR(check_once(&seen, source, kv.first, full));
    const YAML::Node& v = kv.second;
    auto set_uint = [&](auto* field, std::uint64_t min, std::uint64_t max) -> Status {
      auto r = get_uint(source, v, full, min, max);
      if (!r.ok()) return r.status();
      *field = static_cast<std::remove_pointer_t<decltype(field)>>(*r);
      return Status();
    };
    if (key == "listen" || key == "metrics-from") {
      auto r = get_list(source, v, full);
      if (!r.ok()) return r.status();
      for (std::string& item : *r) {
        Status bad =
            key == "listen" ? parse_listen_address(item).status() : parse_network(item).status();
        if (!bad.ok()) return config_error(source, v, full, bad.message());
        if (key == "metrics-from") item = *parse_network(item);
      }
      (key == "listen" ? api->listen : api->metrics_from) = std::move(r).value();
    } else if (key == "allow-plain-http") {
      auto r = get_bool(source, v, full);
      if (!r.ok()) return r.status();
      api->allow_plain_http = *r;
    } else if (key == "socket-mode") {
      SMIMEA_RETURN_IF_ERROR(set_uint(&api->socket_mode, 0, 0777));
    } else if (key == "max-body-bytes") {
      SMIMEA_RETURN_IF_ERROR(set_uint(&api->max_body_bytes, 1024, 64 * 1024 * 1024));
    } else if (key == "max-bulk-bytes") {
      SMIMEA_RETURN_IF_ERROR(set_uint(&api->max_bulk_bytes, 1024, 1024 * 1024 * 1024));
    } else if (key == "max-bulk-items") {
      SMIMEA_RETURN_IF_ERROR(set_uint(&api->max_bulk_items, 1, 10000000));
    } else if (key == "max-connections") {
      SMIMEA_RETURN_IF_ERROR(set_uint(&api->max_connections, 1, 65536));
    } else if (key == "max-connections-per-address") {
      SMIMEA_RETURN_IF_ERROR(set_uint(&api->max_connections_per_address, 0, 65536));
    } else if (key == "idle-timeout") {
      SMIMEA_RETURN_IF_ERROR(set_uint(&api->idle_timeout, 1, 3600));
    } else if (key == "threads") {
      SMIMEA_RETURN_IF_ERROR(set_uint(&api->threads, 1, 256));
    } else if (key == "rate-limit") {
      SMIMEA_RETURN_IF_ERROR(set_uint(&api->rate_limit, 0, 1000000));
    } else {
      return config_error(source, kv.first, full, "unknown key");
    }
  }
  const Status listen = check_listen(api->listen, api->allow_plain_http);
  if (!listen.ok()) return config_error(source, node, "api.listen", listen.message());
  return Status();
}

Status apply(const std::string& source, const YAML::Node& root, Config* c) {
  if (root.IsNull()) return config_error(source, root, "database", "required key missing");
  if (!root.IsMap()) return config_error(source, root, "(top level)", "expected a map of keys");
  bool have_database = false;
  std::set<std::string> seen;
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    SMIMEA_RETURN_IF_ERROR(check_once(&seen, source, kv.first, key));
    const YAML::Node& v = kv.second;
    auto set_u32 = [&](std::uint32_t* field, std::uint64_t min, std::uint64_t max) -> Status {
      auto r = get_uint(source, v, key, min, max);
      if (!r.ok()) return r.status();
      *field = static_cast<std::uint32_t>(*r);
      return Status();
    };
    if (key == "database") {
      auto r = get_string(source, v, key);
      if (!r.ok()) return r.status();
      c->database = *r;
      have_database = true;
    } else if (key == "default-ttl") {
      SMIMEA_RETURN_IF_ERROR(set_u32(&c->default_ttl, 0, kMaxTtl));
    } else if (key == "records") {
      auto r = get_records(source, v, key);
      if (!r.ok()) return r.status();
      c->default_records = *r;
    } else if (key == "lowercase-variant") {
      auto r = get_bool(source, v, key);
      if (!r.ok()) return r.status();
      c->lowercase_variant = *r;
    } else if (key == "max-rrset-bytes") {
      auto r = get_uint(source, v, key, 1024, kMaxRrsetBytes);
      if (!r.ok()) return r.status();
      c->max_rrset_bytes = static_cast<std::size_t>(*r);
    } else if (key == "max-input-bytes") {
      auto r = get_uint(source, v, key, 4096, 64 * 1024 * 1024);
      if (!r.ok()) return r.status();
      c->max_input_bytes = static_cast<std::size_t>(*r);
    } else if (key == "soa") {
      SMIMEA_RETURN_IF_ERROR(apply_soa(source, v, &c->soa));
    } else if (key == "nameservers") {
      if (!v.IsSequence() || v.size() == 0) {
        return config_error(source, v, key, "expected a non-empty list of host names");
      }
      c->nameservers.clear();
      for (std::size_t i = 0; i < v.size(); ++i) {
        auto r = get_dns_name(source, v[i], key + "[" + std::to_string(i) + "]");
        if (!r.ok()) return r.status();
        c->nameservers.push_back(*r);
      }
    } else if (key == "ns-ttl") {
      SMIMEA_RETURN_IF_ERROR(set_u32(&c->ns_ttl, 0, kMaxTtl));
    } else if (key == "busy-timeout-ms") {
      SMIMEA_RETURN_IF_ERROR(set_u32(&c->busy_timeout_ms, 0, 1500));
    } else if (key == "socket-mode") {
      SMIMEA_RETURN_IF_ERROR(set_u32(&c->socket_mode, 0, 0777));
    } else if (key == "socket-group") {
      auto r = get_string(source, v, key);
      if (!r.ok()) return r.status();
      c->socket_group = *r;
    } else if (key == "metrics-listen") {
      auto r = get_string(source, v, key);
      if (!r.ok()) return r.status();
      auto a = parse_listen_address(*r);
      if (!a.ok()) return config_error(source, v, key, a.status().message());
      if (!a->unix_path.empty()) return config_error(source, v, key, "expected HOST:PORT");
      c->metrics_listen = *r;
    } else if (key == "cache-kib") {
      SMIMEA_RETURN_IF_ERROR(set_u32(&c->cache_kib, 256, 16 * 1024 * 1024));
    } else if (key == "expired-certificates") {
      auto r = get_string(source, v, key);
      if (!r.ok()) return r.status();
      if (*r != "keep" && *r != "withdraw") {
        return config_error(source, v, key, "expected keep or withdraw");
      }
      c->withdraw_expired = *r == "withdraw";
    } else if (key == "catalog") {
      auto r = get_string(source, v, key);
      if (!r.ok()) return r.status();
      auto name = normalize_domain(*r, /*allow_underscore=*/false);
      if (!name.ok()) return config_error(source, v, key, name.status().message());
      c->catalog = *name;
    } else if (key == "api") {
      SMIMEA_RETURN_IF_ERROR(apply_api(source, v, &c->api));
    } else {
      return config_error(source, kv.first, key, "unknown key");
    }
  }
  if (!have_database) return config_error(source, YAML::Node(), "database", "required key missing");
  if (c->soa.mname.empty()) c->soa.mname = c->nameservers.front();
  return Status();
}

}  // namespace

bool ListenAddress::loopback() const {
  return !unix_path.empty() || in_network(host, "127.0.0.0/8") || in_network(host, "::1/128");
}

Result<ListenAddress> parse_listen_address(std::string_view text) {
  ListenAddress out;
  const std::string t(text);
  if (t.rfind("unix:", 0) == 0) {
    out.unix_path = t.substr(5);
    if (out.unix_path.empty() || out.unix_path[0] != '/') {
      return Status::invalid_argument(text, "a unix socket needs an absolute path (unix:/run/...)");
    }
    return out;
  }
  const std::size_t colon = t.rfind(':');
  const std::string why = "expected HOST:PORT ([IPv6]:PORT) with an IP address, or unix:PATH";
  if (colon == std::string::npos || colon == 0) return Status::invalid_argument(text, why);
  out.host = t.substr(0, colon);
  if (out.host.front() == '[' && out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  } else if (out.host.find(':') != std::string::npos) {
    return Status::invalid_argument(text, why);
  }
  unsigned char buf[16];
  if (inet_pton(AF_INET, out.host.c_str(), buf) != 1 &&
      inet_pton(AF_INET6, out.host.c_str(), buf) != 1) {
    return Status::invalid_argument(text, why);
  }
  const std::string port = t.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) == 0 ||
      std::stoul(port) > 65535) {
    return Status::invalid_argument(text, "port must be 1..65535");
  }
  out.port = static_cast<std::uint16_t>(std::stoul(port));
  return out;
}

Status check_listen(const std::vector<std::string>& listen, bool allow_plain_http) {
  for (const std::string& l : listen) {
    auto a = parse_listen_address(l);
    if (!a.ok()) return a.status();
    if (!a->loopback() && !allow_plain_http) {
      return Status::config_error(
          l,
          "not a loopback address: smimea-api speaks plain HTTP; put a TLS proxy in front "
          "and set api.allow-plain-http: true (README, \"TLS\")");
    }
  }
  return Status();
}

Result<Config> parse_config(const std::string& text, const std::string& source) {
  Config c;
  c.source = source;
  try {
    const YAML::Node root = YAML::Load(text);
    SMIMEA_RETURN_IF_ERROR(apply(source, root, &c));
  } catch (const YAML::Exception& e) {
    return Status::config_error(source + ":" + std::to_string(e.mark.line + 1), e.msg);
  }
  return c;
}

Result<Config> load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::config_error(path, "cannot read config file");
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().size() > 1024 * 1024) return Status::config_error(path, "config file too large");
  auto config = parse_config(text.str(), path);
  // A relative database path is relative to the config file, not to the working directory:
  // smimea-ctl run anywhere, the backend and pdns (started in /) must all open the same store.
  if (config.ok() && std::filesystem::path(config->database).is_relative()) {
    config->database = (std::filesystem::path(path).parent_path() / config->database).string();
  }
  return config;
}

}  // namespace smimea

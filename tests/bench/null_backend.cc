// null_backend: a PowerDNS remote backend that does as little as possible, for benchmarks only.
//
// It gives pdns the same answers as smimea-backend gives for the benchmark's query sets, without
// a store: the zones' SOA and NS at the apex, the _smimecert empty non-terminal, and one of two
// canned SMIMEA records for any owner name. What pdns and the remote protocol cost around a
// backend is then the whole of what a run measures: the ceiling for that connector.
//
//   null_backend --canned FILE --listen SOCKET   (pdns's unix connector)
//   null_backend --canned FILE --pipe            (pdns's pipe connector)
//
// FILE is written by dns_bench.py, one item per line:
//   zone ID NAME. SERIAL SOA-TTL SOA-CONTENT...  a zone and its SOA record
//   ns TTL NAME.                                 an NS record of every zone
//   smimea TTL CONTENT...                        the canned record of most owners
//   full TTL CONTENT... / full-below HEX4        the canned record of owners whose first four
//                                                hex digits are below HEX4 (the "3 0 0" share)
//   absent-prefix HEX                            owners starting with HEX do not exist
//
// Requests are not parsed as JSON: the few members needed are found in one scan of pdns's line,
// and qname is echoed back exactly as pdns wrote it. Nothing is allocated per request.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "transport.h"

namespace {

using smimea::remote::LineReader;
using smimea::remote::write_all;

constexpr std::size_t kMaxLine = 1024 * 1024;
constexpr std::size_t kHashHexLen = 56;
constexpr std::string_view kSmimecert = "_smimecert.";

// A record is written as {"qname":"<qname as asked>","qtype":... : the tails hold what follows
// the qname.
struct Zone {
  long long id = 0;
  std::string soa_tail;
  std::vector<std::string> ns_tails;
  std::string smimea_tail;  // the canned records, with this zone's id
  std::string full_tail;
  std::string ent_tail;  // the _smimecert empty non-terminal
};

struct Canned {
  std::unordered_map<std::string, Zone> zones;  // lower-case name with trailing dot
  std::unordered_map<long long, const Zone*> by_id;
  std::vector<std::string> ns_json;  // one per NS record, after the qname
  std::string smimea_content;
  std::string full_content;
  unsigned smimea_ttl = 0;
  unsigned full_ttl = 0;
  unsigned full_below = 0;  // owners with a first 16 bits below this get the full record
  std::string absent_prefix;
  std::string all_domains_reply;
};

Canned g_canned;
std::string g_socket_path;

// `,"qtype":"T","content":"C","ttl":N,"domain_id":ID,"auth":1}`: the part of a record after
// its qname. Contents here never need JSON escaping (names, digits, hex).
std::string record_tail(std::string_view qtype, std::string_view content, unsigned ttl,
                        long long id) {
  std::string out = "\",\"qtype\":\"";
  out.append(qtype).append("\",\"content\":\"").append(content).append("\",\"ttl\":");
  out.append(std::to_string(ttl)).append(",\"domain_id\":").append(std::to_string(id));
  out.append(",\"auth\":1}");
  return out;
}

bool load_canned(const std::string& path, Canned* c) {
  std::ifstream in(path);
  if (!in) return false;
  std::string line;
  std::vector<std::pair<unsigned, std::string>> ns;
  std::string domains = "{\"result\":[";
  bool first_zone = true;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string kind;
    fields >> kind;
    std::string rest;
    if (kind == "zone") {
      long long id = 0;
      std::string name;
      unsigned long serial = 0;
      unsigned ttl = 0;
      fields >> id >> name >> serial >> ttl >> std::ws;
      std::getline(fields, rest);
      Zone z;
      z.id = id;
      z.soa_tail = record_tail("SOA", rest, ttl, id);
      c->zones.emplace(name, std::move(z));
      if (!first_zone) domains += ',';
      first_zone = false;
      domains += "{\"id\":" + std::to_string(id) + ",\"zone\":\"" + name +
                 "\",\"kind\":\"native\",\"serial\":" + std::to_string(serial) +
                 ",\"notified_serial\":0,\"masters\":[],\"last_check\":0}";
    } else if (kind == "ns") {
      unsigned ttl = 0;
      fields >> ttl >> std::ws;
      std::getline(fields, rest);
      ns.emplace_back(ttl, rest);
    } else if (kind == "smimea" || kind == "full") {
      unsigned ttl = 0;
      fields >> ttl >> std::ws;
      std::getline(fields, rest);
      (kind == "smimea" ? c->smimea_ttl : c->full_ttl) = ttl;
      (kind == "smimea" ? c->smimea_content : c->full_content) = rest;
    } else if (kind == "full-below") {
      fields >> rest;
      c->full_below = static_cast<unsigned>(std::strtoul(rest.c_str(), nullptr, 16));
    } else if (kind == "absent-prefix") {
      fields >> c->absent_prefix;
    }
  }
  c->all_domains_reply = domains + "]}\n";
  // Records carry the zone id, so they are rendered per zone.
  for (auto& [name, zone] : c->zones) {
    (void)name;
    for (const auto& [ttl, target] : ns) {
      zone.ns_tails.push_back(record_tail("NS", target, ttl, zone.id));
    }
    zone.smimea_tail = record_tail("SMIMEA", c->smimea_content, c->smimea_ttl, zone.id);
    zone.full_tail = record_tail("SMIMEA", c->full_content, c->full_ttl, zone.id);
    zone.ent_tail = record_tail("ENT", "", 0, zone.id);
    c->by_id.emplace(zone.id, &zone);
  }
  return !c->zones.empty() && !c->smimea_content.empty();
}

// The end of a JSON string whose content starts at p: its closing quote, or nullptr.
const char* closing_quote(const char* p, const char* end) {
  while (p < end) {
    const auto* q =
        static_cast<const char*>(std::memchr(p, '"', static_cast<std::size_t>(end - p)));
    if (q == nullptr) return nullptr;
    std::size_t backslashes = 0;
    for (const char* b = q; b > p && b[-1] == '\\'; --b) ++backslashes;
    if (backslashes % 2 == 0) return q;
    p = q + 1;
  }
  return nullptr;
}

// The members of a request this backend looks at, found in one pass: a quoted string followed
// by ':' is a key. Values are raw (escapes kept), which is what echoing qname back needs.
struct Members {
  std::string_view method;
  std::string_view qname;
  std::string_view qtype;
  long long zone_id = -1;
};

Members scan_members(std::string_view line) {
  Members m;
  const char* p = line.data();
  const char* const end = p + line.size();
  while (p < end) {
    const auto* open =
        static_cast<const char*>(std::memchr(p, '"', static_cast<std::size_t>(end - p)));
    if (open == nullptr) break;
    const char* close = closing_quote(open + 1, end);
    if (close == nullptr) break;
    const std::string_view key(open + 1, static_cast<std::size_t>(close - open - 1));
    p = close + 1;
    while (p < end && *p == ' ') ++p;
    if (p >= end || *p != ':') continue;  // that was a value
    ++p;
    while (p < end && *p == ' ') ++p;
    if (p < end && *p == '"') {
      const char* value_end = closing_quote(p + 1, end);
      if (value_end == nullptr) break;
      const std::string_view value(p + 1, static_cast<std::size_t>(value_end - p - 1));
      if (key == "method") m.method = value;
      if (key == "qname") m.qname = value;
      if (key == "qtype") m.qtype = value;
      p = value_end + 1;
    } else if (key == "zone-id") {
      char* num_end = nullptr;
      m.zone_id = std::strtoll(p, &num_end, 10);
      if (num_end == p) m.zone_id = -1;
    }
  }
  return m;
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

unsigned hex4(std::string_view s) {
  unsigned v = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    const char c = s[i];
    const unsigned d =
        c <= '9' ? static_cast<unsigned>(c - '0') : static_cast<unsigned>((c | 0x20) - 'a' + 10);
    v = v * 16 + d;
  }
  return v;
}

class Session {
 public:
  void handle(std::string_view line, std::string& out) {
    const Members m = scan_members(line);
    out.clear();
    if (m.method == "lookup") return lookup(m, out);
    if (m.method == "initialize") {
      out = "{\"result\":true}\n";
    } else if (m.method == "getAllDomains") {
      out = g_canned.all_domains_reply;
    } else {
      out = "{\"result\":false}\n";
    }
  }

 private:
  void lookup(const Members& m, std::string& out) {
    const std::string_view qname = m.qname;
    const std::string_view qtype = m.qtype;
    const bool any = qtype == "ANY";
    out.append("{\"result\":[");
    if (qname.size() > kHashHexLen + kSmimecert.size() && qname[kHashHexLen] == '.' &&
        lower_equals(qname.substr(kHashHexLen + 1, kSmimecert.size()), kSmimecert) &&
        all_hex(qname.substr(0, kHashHexLen))) {
      if ((any || qtype == "SMIMEA") &&
          qname.compare(0, g_canned.absent_prefix.size(), g_canned.absent_prefix) != 0) {
        if (const Zone* zone =
                owner_zone(m.zone_id, qname.substr(kHashHexLen + 1 + kSmimecert.size()))) {
          out.append("{\"qname\":\"").append(qname);
          out.append(hex4(qname) < g_canned.full_below ? zone->full_tail : zone->smimea_tail);
        }
      }
    } else if (const Zone* zone = find(qname)) {
      bool first = true;
      if (any || qtype == "SOA") add_record(qname, zone->soa_tail, &first, out);
      if (any || qtype == "NS") {
        for (const std::string& ns : zone->ns_tails) add_record(qname, ns, &first, out);
      }
    } else if (any && qname.size() > kSmimecert.size() &&
               lower_equals(qname.substr(0, kSmimecert.size()), kSmimecert)) {
      if (const Zone* parent = find(qname.substr(kSmimecert.size()))) {
        out.append("{\"qname\":\"").append(qname).append(parent->ent_tail);
      }
    }
    out.append("]}\n");
  }

  static void add_record(std::string_view qname, const std::string& tail, bool* first,
                         std::string& out) {
    if (!*first) out.push_back(',');
    *first = false;
    out.append("{\"qname\":\"").append(qname).append(tail);
  }

  static bool lower_equals(std::string_view a, std::string_view lower) {
    if (a.size() != lower.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if ((a[i] >= 'A' && a[i] <= 'Z' ? a[i] + 32 : a[i]) != lower[i]) return false;
    }
    return true;
  }
  static bool all_hex(std::string_view s) {
    for (char c : s) {
      if (!is_hex(c)) return false;
    }
    return true;
  }

  const Zone* find(std::string_view name) {
    key_.assign(name);
    for (char& c : key_) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    }
    auto it = g_canned.zones.find(key_);
    return it == g_canned.zones.end() ? nullptr : &it->second;
  }

  // pdns sends the zone's id with every lookup after the first; the name is the fallback.
  const Zone* owner_zone(long long id, std::string_view zone_name) {
    auto it = g_canned.by_id.find(id);
    return it != g_canned.by_id.end() ? it->second : find(zone_name);
  }

  std::string key_;
};

void serve(int in_fd, int out_fd, bool is_socket) {
  LineReader reader(in_fd, kMaxLine);
  Session session;
  std::string reply;
  reply.reserve(65536);
  for (;;) {
    std::string_view line;
    const LineReader::Event ev = reader.next(&line);
    if (ev == LineReader::Event::kEof || ev == LineReader::Event::kError) break;
    if (ev == LineReader::Event::kTooLong) {
      reply = "{\"result\":false}\n";
    } else if (line.empty()) {
      continue;
    } else {
      session.handle(line, reply);
    }
    if (!write_all(out_fd, reply, is_socket)) break;
  }
  if (is_socket) ::close(in_fd);
}

void on_term(int) {
  if (!g_socket_path.empty()) ::unlink(g_socket_path.c_str());
  ::_exit(0);
}

int listen_unix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    std::cerr << "null_backend: socket path too long\n";
    return 2;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ::unlink(path.c_str());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd, 64) != 0) {
    std::cerr << "null_backend: " << path << ": " << std::strerror(errno) << '\n';
    return 1;
  }
  g_socket_path = path;
  for (;;) {
    const int conn = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      std::cerr << "null_backend: accept: " << std::strerror(errno) << '\n';
      return 1;
    }
    std::thread(serve, conn, conn, true).detach();
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string canned_path;
  std::string listen_path;
  bool pipe_mode = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--canned" && i + 1 < argc) {
      canned_path = argv[++i];
    } else if (arg == "--listen" && i + 1 < argc) {
      listen_path = argv[++i];
    } else if (arg == "--pipe") {
      pipe_mode = true;
    } else {
      std::cerr << "usage: null_backend --canned FILE (--listen SOCKET | --pipe)\n";
      return 2;
    }
  }
  if (canned_path.empty() || (listen_path.empty() == !pipe_mode)) {
    std::cerr << "usage: null_backend --canned FILE (--listen SOCKET | --pipe)\n";
    return 2;
  }
  if (!load_canned(canned_path, &g_canned)) {
    std::cerr << "null_backend: " << canned_path << ": unreadable or incomplete\n";
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGTERM, on_term);
  std::signal(SIGINT, on_term);
  if (pipe_mode) {
    serve(STDIN_FILENO, STDOUT_FILENO, false);
    return 0;
  }
  return listen_unix(listen_path);
}

// smimea-ctl lookup: an address's SMIMEA records as a sending mail client sees them, through a
// validating resolver (libunbound), with each answer's DNSSEC state. Needs no config or store.
#include <sys/stat.h>
#include <unbound.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "admin.h"
#include "smimea/cert.h"
#include "smimea/hex.h"
#include "smimea/owner_name.h"

namespace smimea::admin {
namespace {

constexpr int kTypeSmimea = 53;  // RFC 8162 section 2
constexpr int kClassIn = 1;
constexpr const char* kRootAnchor = "/usr/share/dns/root.key";  // Debian's dns-root-data

// Exit status of lookup. 0-2 keep their smimea-ctl meanings (DESIGN.md); 3 (store error)
// cannot happen here. The rest say what the DNS said.
enum LookupExit : int {
  kLookupSecure = 0,    // records found, every answer validated secure
  kLookupInsecure = 4,  // records found, but not all validated (no chain of trust)
  kLookupBogus = 5,     // validation failed: do not use these records
  kLookupNotFound = 6,  // no SMIMEA record for the address
  kLookupFailed = 7,    // the resolver gave no usable answer (SERVFAIL, timeout, network)
  kLookupNoMatch = 8,   // --verify: secure records, none of which matches the certificate
};

constexpr const char* kExitHelp =
    "Exit status: 0 secure (records found, all validated by DNSSEC; with --verify the "
    "certificate matches one), 1 invalid address or file, 2 usage error, 4 insecure (records "
    "found but not validated), 5 bogus (DNSSEC validation failed: do not use them), 6 not found "
    "(no SMIMEA record), 7 lookup failed (no answer from the resolver), 8 --verify: secure "
    "records, none matching the certificate.";

struct LookupOptions {
  std::string address;
  std::string server;
  std::string trust_anchor;
  std::string verify;
  bool case_sensitive = false;
};

struct UbCtxDeleter {
  void operator()(ub_ctx* ctx) const { ub_ctx_delete(ctx); }
};
struct UbResultDeleter {
  void operator()(ub_result* r) const { ub_resolve_free(r); }
};

enum class State { kSecure, kInsecure, kBogus, kFailed };

const char* state_name(State s) {
  switch (s) {
    case State::kSecure:
      return "secure";
    case State::kInsecure:
      return "insecure";
    case State::kBogus:
      return "bogus";
    case State::kFailed:
      return "failed";
  }
  return "failed";
}

const char* rcode_name(int rcode) {
  static const char* const kNames[] = {"NOERROR",  "FORMERR", "SERVFAIL",
                                       "NXDOMAIN", "NOTIMP",  "REFUSED"};
  return rcode >= 0 && rcode < 6 ? kNames[rcode] : "RCODE?";
}

struct FoundRecord {
  RecordParams params;
  Bytes data;
  std::optional<Certificate> cert;  // 3 0 0 and friends: selector 0, matching type 0
  bool verify_match = false;
};

struct OwnerResult {
  std::string name;
  State state = State::kFailed;
  int rcode = 2;
  std::string why;  // why_bogus, or the resolver's error
  int error = 0;    // libunbound's, if the lookup did not run
  std::vector<FoundRecord> records;
};

// "IP" or "IP:PORT" (IPv6 as "[IP]:PORT" or bare) in unbound's "IP@PORT" form.
Result<std::string> forwarder(const std::string& server) {
  std::string ip = server;
  std::string port;
  if (!server.empty() && server.front() == '[') {
    const auto close = server.find(']');
    if (close == std::string::npos) return Status::invalid_argument(server, "missing ']'");
    ip = server.substr(1, close - 1);
    if (close + 1 < server.size()) {
      if (server[close + 1] != ':') return Status::invalid_argument(server, "expected ]:PORT");
      port = server.substr(close + 2);
    }
  } else if (std::count(server.begin(), server.end(), ':') == 1) {
    const auto colon = server.find(':');
    ip = server.substr(0, colon);
    port = server.substr(colon + 1);
  }
  if (ip.empty()) return Status::invalid_argument(server, "no address");
  if (!port.empty()) {
    if (port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::stoi(port) == 0 || std::stoi(port) > 65535) {
      return Status::invalid_argument(server, "bad port");
    }
    return ip + "@" + port;
  }
  return ip;
}

Status ub_status(const std::string& what, int err) {
  return Status::config_error(what, ub_strerror(err));
}

std::string anchor_file(const LookupOptions& o) {
  return o.trust_anchor.empty() ? kRootAnchor : o.trust_anchor;
}

Result<std::unique_ptr<ub_ctx, UbCtxDeleter>> make_context(const LookupOptions& o) {
  std::unique_ptr<ub_ctx, UbCtxDeleter> ctx(ub_ctx_create());
  if (!ctx) return Status::config_error("libunbound", "cannot create a resolver context");
  // Answers with certificates exceed UDP sizes: TCP from the start. Only the servers named
  // here are asked, so a forwarder on loopback is fine.
  for (const auto& [opt, val] : {std::pair<const char*, const char*>{"tcp-upstream:", "yes"},
                                 {"do-not-query-localhost:", "no"}}) {
    if (int err = ub_ctx_set_option(ctx.get(), opt, val); err != 0) return ub_status(opt, err);
  }
  if (!o.server.empty()) {
    auto fwd = forwarder(o.server);
    if (!fwd.ok()) return fwd.status().with_context("--server");
    if (int err = ub_ctx_set_fwd(ctx.get(), fwd->c_str()); err != 0) {
      return Status::invalid_argument("--server " + o.server, ub_strerror(err));
    }
  } else if (int err = ub_ctx_resolvconf(ctx.get(), nullptr); err != 0) {
    return ub_status("/etc/resolv.conf", err);
  }
  const std::string anchor = anchor_file(o);
  struct stat st {};
  if (::stat(anchor.c_str(), &st) != 0) {
    return o.trust_anchor.empty()
               ? Status::config_error(anchor,
                                      "no root trust anchor (install dns-root-data, or "
                                      "give --trust-anchor FILE)")
               : Status::invalid_argument(anchor, "cannot read the trust anchor file");
  }
  // libunbound reads the file only at the first query, and an empty one is no error to it:
  // lookups would just never be secure. Refuse a file without a DS or DNSKEY record here.
  std::ifstream in(anchor);
  std::string line;
  bool has_anchor = false;
  while (!has_anchor && std::getline(in, line)) {
    std::istringstream words(line.substr(0, line.find(';')));
    for (std::string w; !has_anchor && words >> w;)
      has_anchor = iequals(w, "DS") || iequals(w, "DNSKEY");
  }
  if (!has_anchor) {
    return Status::invalid_argument(anchor, "no DS or DNSKEY record in the trust anchor file");
  }
  if (int err = ub_ctx_add_ta_file(ctx.get(), anchor.c_str()); err != 0) {
    return Status::invalid_argument(anchor, std::string("trust anchor: ") + ub_strerror(err));
  }
  return ctx;
}

OwnerResult resolve(ub_ctx* ctx, const std::string& name) {
  OwnerResult out;
  out.name = name;
  ub_result* raw = nullptr;
  const int err = ub_resolve(ctx, name.c_str(), kTypeSmimea, kClassIn, &raw);
  std::unique_ptr<ub_result, UbResultDeleter> r(raw);
  if (err != 0 || !r) {
    out.why = ub_strerror(err);
    out.error = err;
    return out;
  }
  out.rcode = r->rcode;
  if (r->bogus) {
    out.state = State::kBogus;
    out.why = r->why_bogus ? r->why_bogus : "validation failed";
    return out;  // the data of a bogus answer is never shown
  }
  if (r->rcode != 0 && r->rcode != 3) {  // not NOERROR or NXDOMAIN
    out.why = std::string("resolver answered ") + rcode_name(r->rcode);
    return out;
  }
  out.state = r->secure ? State::kSecure : State::kInsecure;
  for (int i = 0; r->havedata && r->data[i] != nullptr; ++i) {
    const auto len = static_cast<std::size_t>(r->len[i]);
    const auto* p = reinterpret_cast<const std::uint8_t*>(r->data[i]);
    if (len < 3) continue;
    auto params = make_record_params(p[0], p[1], p[2]);
    if (!params) continue;  // values this program does not know: not usable
    FoundRecord rec;
    rec.params = *params;
    rec.data.assign(p + 3, p + len);
    if (params->selector == Selector::kFullCert && params->matching_type == MatchingType::kExact) {
      auto cert = parse_der_certificate(rec.data);
      if (cert.ok()) rec.cert = std::move(cert).value();
    }
    out.records.push_back(std::move(rec));
  }
  return out;
}

int lookup(Context& ctx, const LookupOptions& o) {
  auto addr = parse_address(o.address);
  if (!addr.ok()) return fail(addr.status());
  std::optional<Certificate> verify_cert;
  if (!o.verify.empty()) {
    auto input = read_input(o.verify, kDefaultMaxInputBytes);
    if (!input.ok()) return fail(input.status());
    auto certs = parse_certificates(*input, o.verify);
    if (!certs.ok()) return fail(certs.status());
    verify_cert = certs->front();
  }
  auto ub = make_context(o);
  if (!ub.ok()) return fail(ub.status());

  std::vector<OwnerResult> owners;
  // A mailbox ignores letter case by default: the lower-cased owner name is the mailbox's too.
  for (const OwnerHash& h : owner_hashes_for(*addr, !o.case_sensitive)) {
    owners.push_back(resolve(ub->get(), owner_name(h, addr->domain)));
    if (owners.back().error == UB_INITFAIL) {  // a bad trust anchor, as libunbound printed
      return fail(Status::invalid_argument(
          anchor_file(o),
          "the resolver could not start (libunbound: initialization failure): check the "
          "trust anchor records"));
    }
  }

  bool any_bogus = false, any_failed = false, any_insecure = false, any_records = false;
  bool matched = false;
  for (OwnerResult& owner : owners) {
    any_bogus |= owner.state == State::kBogus;
    any_failed |= owner.state == State::kFailed;
    for (FoundRecord& rec : owner.records) {
      any_records = true;
      any_insecure |= owner.state != State::kSecure;
      if (verify_cert) {
        rec.verify_match = compute_association(*verify_cert, rec.params.selector,
                                               rec.params.matching_type) == rec.data;
        matched |= rec.verify_match;
      }
    }
  }
  // Worst first: a bogus answer anywhere means someone may be tampering with the others too.
  int code = kLookupSecure;
  const char* status = "secure";
  if (any_bogus) {
    code = kLookupBogus;
    status = "bogus";
  } else if (any_failed) {
    code = kLookupFailed;
    status = "failed";
  } else if (!any_records) {
    code = kLookupNotFound;
    status = "not-found";
  } else if (any_insecure) {
    code = kLookupInsecure;
    status = "insecure";
  } else if (verify_cert && !matched) {
    code = kLookupNoMatch;
    status = "no-match";
  }

  if (ctx.json) {
    auto jowners = nlohmann::json::array();
    for (const OwnerResult& owner : owners) {
      auto jrecords = nlohmann::json::array();
      for (const FoundRecord& rec : owner.records) {
        nlohmann::json j = {{"usage", static_cast<int>(rec.params.usage)},
                            {"selector", static_cast<int>(rec.params.selector)},
                            {"matching_type", static_cast<int>(rec.params.matching_type)},
                            {"data", to_hex(rec.data)},
                            {"state", state_name(owner.state)}};
        if (rec.cert) {
          j["certificate"] = {
              {"subject", rec.cert->subject},
              {"addresses", rec.cert->emails},
              {"not_after", format_time(rec.cert->not_after)},
              {"names_address", certificate_names(*rec.cert, *addr, o.case_sensitive)}};
        }
        if (verify_cert) j["verify_match"] = rec.verify_match;
        jrecords.push_back(std::move(j));
      }
      nlohmann::json jo = {{"name", owner.name},
                           {"state", state_name(owner.state)},
                           {"rcode", rcode_name(owner.rcode)},
                           {"records", jrecords}};
      if (!owner.why.empty()) jo["why"] = owner.why;
      jowners.push_back(std::move(jo));
    }
    nlohmann::json out = {{"address", addr->to_string()},
                          {"status", status},
                          {"exit_code", code},
                          {"owners", jowners}};
    if (verify_cert) out["verify"] = {{"file", o.verify}, {"matched", matched}};
    std::cout << out.dump() << '\n';
    return code;
  }

  std::cout << addr->to_string() << '\n';
  for (const OwnerResult& owner : owners) {
    std::cout << "  " << owner.name << ": " << state_name(owner.state);
    if (owner.state == State::kBogus || owner.state == State::kFailed) {
      std::cout << " (" << owner.why << ")\n";
      continue;
    }
    if (owner.records.empty()) {
      std::cout << ", no SMIMEA record (" << rcode_name(owner.rcode) << ")\n";
      continue;
    }
    std::cout << ", " << owner.records.size() << " record(s)\n";
    for (const FoundRecord& rec : owner.records) {
      std::cout << "    SMIMEA " << static_cast<int>(rec.params.usage) << ' '
                << static_cast<int>(rec.params.selector) << ' '
                << static_cast<int>(rec.params.matching_type) << " (" << rec.data.size()
                << " bytes) " << state_name(owner.state);
      if (verify_cert) std::cout << (rec.verify_match ? ", matches --verify" : ", no match");
      std::cout << '\n';
      if (rec.cert) {
        std::string emails;
        for (const std::string& e : rec.cert->emails) emails += (emails.empty() ? "" : ", ") + e;
        std::cout << "      subject " << rec.cert->subject << "\n      addresses "
                  << (emails.empty() ? "(none)" : emails)
                  << (certificate_names(*rec.cert, *addr, o.case_sensitive)
                          ? ""
                          : " (does not name the address)")
                  << "\n      expires " << format_time(rec.cert->not_after) << '\n';
      } else if (rec.params.selector == Selector::kFullCert &&
                 rec.params.matching_type == MatchingType::kExact) {
        std::cout << "      (not a parseable certificate)\n";
      }
    }
  }
  std::cout << "status: " << status << '\n';
  return code;
}

}  // namespace

void add_lookup_commands(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<LookupOptions>();
  CLI::App* cmd = app.add_subcommand(
      "lookup",
      "Look up an address's SMIMEA records through a validating resolver (libunbound, over "
      "TCP) and show each one's DNSSEC state (needs no config or store)");
  cmd->add_option("ADDRESS", o->address, "Email address")->required();
  cmd->add_option("--server", o->server,
                  "Resolver to ask, IP[:PORT]: a recursive resolver, or the zone's "
                  "authoritative server itself with the zone's own DS or DNSKEY as "
                  "--trust-anchor (default: the servers in /etc/resolv.conf)");
  cmd->add_option("--trust-anchor", o->trust_anchor,
                  "DS or DNSKEY records in zone-file format, as unbound's trust-anchor-file "
                  "reads them (default: the root key, /usr/share/dns/root.key)");
  cmd->add_option("--verify", o->verify,
                  "Check this certificate (PEM or DER) against every published record");
  cmd->add_flag("--case-sensitive", o->case_sensitive,
                "The zone compares local-parts exactly: look up only the exact owner name and "
                "flag certificates that name the address in another letter case");
  cmd->footer(kExitHelp);
  cmd->callback([&ctx, o] { ctx.exit_code = lookup(ctx, *o); });
}

}  // namespace smimea::admin

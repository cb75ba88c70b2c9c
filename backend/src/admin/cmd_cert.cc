// smimea-ctl cert add|import|list|remove
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "admin.h"
#include "smimea/cert.h"
#include "smimea/hex.h"
#include "smimea/owner_name.h"

namespace smimea::admin {
namespace {

namespace fs = std::filesystem;

struct CertOptions {
  std::string address;
  std::vector<std::string> inputs;
  int usage = -1;
  int selector = -1;
  int matching_type = -1;
  std::vector<std::string> records;  // "U S M"
  int ttl = -1;
  bool force = false;
  bool allow_expired = false;
  std::string zone;
  std::string fingerprint;
};

// The (usage, selector, matching type) sets to publish: --record sets, plus one set from
// --usage/--selector/--matching-type (each defaulting to 3 0 0), or the config's list.
Result<std::vector<RecordParams>> record_params(const CertOptions& o, const Config& config) {
  std::vector<RecordParams> out;
  for (const std::string& text : o.records) {
    int u = -1, s = -1, m = -1;
    char extra = 0;
    std::string normalized = text;
    std::replace(normalized.begin(), normalized.end(), ',', ' ');
    if (std::sscanf(normalized.c_str(), "%d %d %d %c", &u, &s, &m, &extra) != 3) {
      return Status::invalid_argument("--record " + text,
                                      "expected 'USAGE SELECTOR MATCHING-TYPE'");
    }
    auto p = make_record_params(u, s, m);
    if (!p) return Status::invalid_argument("--record " + text, "out of range (0-3 0-1 0-2)");
    out.push_back(*p);
  }
  if (o.usage >= 0 || o.selector >= 0 || o.matching_type >= 0) {
    auto p = make_record_params(o.usage >= 0 ? o.usage : 3, o.selector >= 0 ? o.selector : 0,
                                o.matching_type >= 0 ? o.matching_type : 0);
    if (!p) return Status::invalid_argument("record parameters", "out of range");
    out.push_back(*p);
  }
  if (out.empty()) out = config.default_records;
  std::vector<RecordParams> unique;
  for (const auto& p : out) {
    if (std::find(unique.begin(), unique.end(), p) == unique.end()) unique.push_back(p);
  }
  return unique;
}

// Usages 1 and 3 name the address's own certificate; 0 and 2 the CA that issued it, a trust
// anchor (RFC 6698 section 2.1.1).
bool is_end_entity_usage(const RecordParams& p) {
  return p.usage == Usage::kPkixEe || p.usage == Usage::kDaneEe;
}
bool any_end_entity_usage(const std::vector<RecordParams>& params) {
  return std::any_of(params.begin(), params.end(), is_end_entity_usage);
}
bool any_anchor_usage(const std::vector<RecordParams>& params) {
  return !std::all_of(params.begin(), params.end(), is_end_entity_usage);
}

// The zone a mail domain's records go into: a delegated _smimecert.<domain> zone, else the
// domain's own zone.
Result<Zone> zone_for(Store& store, const std::string& domain) {
  auto sub = store.find_zone(std::string(kSmimecertLabel) + "." + domain);
  if (sub.ok() || !sub.status().is_not_found()) return sub;
  auto zone = store.find_zone(domain);
  if (zone.ok() || !zone.status().is_not_found()) return zone;
  return Status::invalid_argument(domain,
                                  "no zone in the store for this domain (add one with "
                                  "smimea-ctl zone add " +
                                      domain + " or _smimecert." + domain + ")");
}

// The reasons a certificate may not be published for addr; empty if it may. An anchor (a CA
// of the address's chain, published with usage 0 or 2 only) need not name the address.
// Overridable problems go to *overridden (as warnings) when their override flag is set.
std::string check_publishable(const Certificate& cert, const MailAddress& addr,
                              const std::vector<RecordParams>& params, const CertOptions& o,
                              const Zone& zone, std::vector<std::string>* overridden,
                              bool anchor = false) {
  const std::int64_t now = std::time(nullptr);
  if (!anchor && !certificate_names(cert, addr, zone.case_sensitive)) {
    const std::string why =
        "certificate does not name " + addr.to_string() +
        " (no matching SAN rfc822Name, SmtpUTF8Mailbox or emailAddress" +
        (zone.case_sensitive ? "; zone " + zone.name + " compares local-parts exactly)" : ")");
    if (!o.force) return why + "; --force publishes it anyway";
    overridden->push_back(why);
  }
  if (cert.not_after < now) {
    const std::string why = "certificate expired on " + format_time(cert.not_after);
    if (!o.allow_expired) return why + "; --allow-expired publishes it anyway";
    overridden->push_back(why);
  }
  if (cert.is_ca && any_end_entity_usage(params)) {
    const std::string why = "certificate is a CA certificate, but usage 1/3 is for end entities";
    if (!o.force) return why + "; --force publishes it anyway";
    overridden->push_back(why);
  }
  if (!cert.is_ca && any_anchor_usage(params)) {
    const std::string why =
        "certificate is not a CA certificate, but usage 0/2 is for the CA that issued the "
        "address's certificate (give the chain with the CA in it)";
    if (!o.force) return why + "; --force publishes it anyway";
    overridden->push_back(why);
  }
  return {};
}

std::uint32_t ttl_for(const CertOptions& o, const Config& config) {
  return o.ttl >= 0 ? static_cast<std::uint32_t>(o.ttl) : config.default_ttl;
}

// The rows to add for cert at addr in zone: the mailbox's owner names as the zone compares
// local-parts (no lower-cased variant in a case-sensitive zone), the TTL as asked for.
NewCertificate new_certificate(const Certificate& cert, const MailAddress& addr, const Zone& zone,
                               const std::vector<RecordParams>& params, const CertOptions& o,
                               const Config& config) {
  NewCertificate n = make_new_certificate(cert, addr, params, ttl_for(o, config),
                                          config.lowercase_variant && !zone.case_sensitive);
  n.ttl_explicit = o.ttl >= 0;
  return n;
}

// The mailbox addr belongs to in zone: addr itself, or the spelling the zone stores the
// mailbox under (another letter case of it, unless the zone is case-sensitive).
Result<MailAddress> mailbox_of(Store& store, const Zone& zone, const MailAddress& addr) {
  auto stored = store.mailbox_address(zone, addr.to_string());
  if (!stored.ok()) return stored.status();
  if (!*stored || **stored == addr.to_string()) return addr;
  return parse_address(**stored);
}

struct Chosen {
  const Certificate* cert;
  std::vector<RecordParams> params;
  bool anchor;  // published for the address's chain only (usage 0/2)
  std::vector<std::string> warnings;
};

// A bundle may carry the chain. End-entity usages (1, 3) go to the certificates that name the
// address (the end-entity ones, if there are any), anchor usages (0, 2) to the CA certificates
// that issued them, up the chain as far as the bundle goes (all of the bundle's CAs when it
// has no end-entity certificate for the address). With none of the kind, the first
// certificate is taken, which check_publishable refuses without --force.
std::vector<Chosen> choose_certificates(const std::vector<Certificate>& certs,
                                        const MailAddress& addr,
                                        const std::vector<RecordParams>& params,
                                        bool case_sensitive) {
  auto names = [&](const Certificate& c) { return certificate_names(c, addr, case_sensitive); };
  std::vector<const Certificate*> leaves;
  for (const Certificate& c : certs) {
    if (names(c) && !c.is_ca) leaves.push_back(&c);
  }
  std::vector<const Certificate*> issuers;  // of the leaves, up the chain
  std::vector<std::string> wanted_subjects;
  for (const Certificate* leaf : leaves) wanted_subjects.push_back(leaf->issuer);
  for (bool found = true; found;) {
    found = false;
    for (const Certificate& c : certs) {
      if (!c.is_ca || std::find(issuers.begin(), issuers.end(), &c) != issuers.end()) continue;
      if (std::find(wanted_subjects.begin(), wanted_subjects.end(), c.subject) ==
          wanted_subjects.end()) {
        continue;
      }
      issuers.push_back(&c);
      wanted_subjects.push_back(c.issuer);
      found = true;
    }
  }
  std::vector<Chosen> to_add;
  auto choose = [&](bool anchor, auto&& wanted) {
    std::vector<RecordParams> kind;
    for (const RecordParams& p : params) {
      if (is_end_entity_usage(p) != anchor) kind.push_back(p);
    }
    if (kind.empty()) return;
    std::vector<const Certificate*> certs_of_kind;
    for (const Certificate& c : certs) {
      if (wanted(c)) certs_of_kind.push_back(&c);
    }
    if (certs_of_kind.empty()) certs_of_kind.push_back(&certs.front());
    for (const Certificate* c : certs_of_kind) {
      auto same =
          std::find_if(to_add.begin(), to_add.end(), [&](const Chosen& x) { return x.cert == c; });
      if (same == to_add.end()) {
        to_add.push_back({c, kind, anchor, {}});
      } else {  // a certificate of both kinds: checked against all its usages
        same->params.insert(same->params.end(), kind.begin(), kind.end());
        same->anchor = false;
      }
    }
  };
  choose(false, [&](const Certificate& c) {
    return leaves.empty() ? names(c) : std::find(leaves.begin(), leaves.end(), &c) != leaves.end();
  });
  choose(true, [&](const Certificate& c) {
    return leaves.empty() ? c.is_ca
                          : std::find(issuers.begin(), issuers.end(), &c) != issuers.end();
  });
  return to_add;
}

int cert_add(Context& ctx, const CertOptions& o) {
  auto addr = parse_address(o.address);
  if (!addr.ok()) return fail(addr.status());
  auto config = ctx.load_config();
  if (!config.ok()) return fail(config.status());
  auto params = record_params(o, *config);
  if (!params.ok()) return fail(params.status());
  const std::string& input_path = o.inputs.front();
  auto input = read_input(input_path, config->max_input_bytes);
  if (!input.ok()) return fail(input.status());
  const std::string source = input_path == "-" ? "stdin" : input_path;
  auto certs = parse_certificates(*input, source, config->max_input_bytes);
  if (!certs.ok()) return fail(certs.status());

  auto store = ctx.open_store(*config);
  if (!store.ok()) return fail(store.status());
  Store& s = **store;
  if (Status st = s.begin(); !st.ok()) return fail(st);
  auto refuse = [&](const Status& st) {
    s.rollback();
    return fail(st);
  };
  auto zone = zone_for(s, addr->domain);
  if (!zone.ok()) return refuse(zone.status());
  auto mailbox = mailbox_of(s, *zone, *addr);
  if (!mailbox.ok()) return refuse(mailbox.status());
  std::vector<Chosen> to_add = choose_certificates(*certs, *mailbox, *params, zone->case_sensitive);
  for (Chosen& c : to_add) {
    const std::string problem =
        check_publishable(*c.cert, *mailbox, c.params, o, *zone, &c.warnings, c.anchor);
    if (!problem.empty()) {
      return refuse(Status::invalid_argument(source + " (" + c.cert->subject + ")", problem));
    }
  }
  if (mailbox->to_string() != addr->to_string()) {
    warn(addr->to_string() + " is the mailbox " + mailbox->to_string() + " (zone " + zone->name +
         " ignores letter case in local-parts): its records go to that mailbox's owner names");
  }
  auto results = nlohmann::json::array();
  bool changed = false;
  for (const Chosen& chosen : to_add) {
    const Certificate* c = chosen.cert;
    const NewCertificate n = new_certificate(*c, *mailbox, *zone, chosen.params, o, *config);
    auto added = s.add_certificate(*zone, n);
    if (!added.ok()) return refuse(added.status());
    changed = changed || added->changed();
    for (const std::string& w : chosen.warnings) warn(w);
    results.push_back({{"address", n.address},
                       {"zone", added->zone},
                       {"fingerprint", to_hex(c->fingerprint)},
                       {"records_added", added->records_added},
                       {"records_updated", added->records_updated},
                       {"moved", added->moved}});
  }
  if (Status st = s.commit(); !st.ok()) return fail(st);
  auto after = s.find_zone(zone->name);
  const std::uint32_t serial = after.ok() ? after->serial : zone->serial;
  if (ctx.json) {
    std::cout << nlohmann::json{{"added", results}, {"serial", serial}}.dump() << '\n';
  } else {
    for (const auto& r : results) {
      const int n = r["records_added"].get<int>();
      const int updated = r["records_updated"].get<int>();
      const bool moved = r["moved"].get<bool>();
      std::cout << (n > 0                  ? "added "
                    : updated > 0 || moved ? "updated "
                                           : "unchanged ")
                << r["address"].get<std::string>() << " sha256 "
                << r["fingerprint"].get<std::string>().substr(0, 16) << "...: " << n
                << " record(s) in zone " << r["zone"].get<std::string>();
      if (updated > 0) std::cout << ", TTL of " << updated << " record(s) changed";
      if (moved) std::cout << ", moved into this zone";
      std::cout << '\n';
    }
    std::cout << "zone " << zone->name << " serial " << serial << (changed ? "" : " (unchanged)")
              << '\n';
  }
  return kExitOk;
}

// The regular files below dir. Symbolic links are not followed (a walk stays in its tree;
// name a linked file on the command line to import it), and every entry that is neither a
// directory nor a regular file is reported in *skipped ("path: why"), as is a directory that
// cannot be read; the walk goes on with the others.
void walk_directory(const fs::path& dir, std::vector<std::string>* found,
                    std::vector<std::string>* skipped) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) {
      skipped->push_back(it->path().string() + ": " + std::strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
      walk_directory(it->path(), found, skipped);
    } else if (S_ISREG(st.st_mode)) {
      found->push_back(it->path().string());
    } else if (S_ISLNK(st.st_mode)) {
      skipped->push_back(it->path().string() +
                         ": a symbolic link, not followed in a directory (name the file itself "
                         "to import it)");
    } else {
      skipped->push_back(it->path().string() + ": not a regular file (" + file_type(st.st_mode) +
                         ")");
    }
  }
  if (ec) skipped->push_back(dir.string() + ": " + ec.message());
}

// FILE as given (a symbolic link named on the command line is followed), or the regular files
// below a directory, sorted.
void collect_files(const std::string& input, std::vector<std::string>* files,
                   std::vector<std::string>* skipped) {
  std::error_code ec;
  if (input == "-") {
    files->push_back(input);
    return;
  }
  const fs::file_status st = fs::status(input, ec);
  if (ec) {
    skipped->push_back(input + ": " + ec.message());
    return;
  }
  if (fs::is_directory(st)) {
    std::vector<std::string> found;
    walk_directory(input, &found, skipped);
    std::sort(found.begin(), found.end());
    files->insert(files->end(), found.begin(), found.end());
  } else {
    files->push_back(input);  // read_input refuses what is not a regular file, without waiting
  }
}

int cert_import(Context& ctx, const CertOptions& o) {
  auto config = ctx.load_config();
  if (!config.ok()) return fail(config.status());
  auto params = record_params(o, *config);
  if (!params.ok()) return fail(params.status());
  std::vector<std::string> files;
  std::vector<std::string> skipped;  // one line each: "what: why"
  for (const std::string& in : o.inputs) collect_files(in, &files, &skipped);

  auto store = ctx.open_store(*config);
  if (!store.ok()) return fail(store.status());
  Store& s = **store;
  if (Status st = s.begin(); !st.ok()) return fail(st);

  const bool progress = isatty(STDERR_FILENO) != 0 && !ctx.json && files.size() >= 100;
  std::size_t certs_added = 0, certs_updated = 0, certs_unchanged = 0, records_added = 0;
  std::set<std::string> zones_changed;
  // The zone of each mail domain, looked up once per import (zones do not change meanwhile).
  std::unordered_map<std::string, Result<Zone>> zones;
  for (std::size_t i = 0; i < files.size(); ++i) {
    const std::string& file = files[i];
    if (progress && (i % 1000 == 0 || i + 1 == files.size())) {
      std::cerr << "\rimporting: " << i + 1 << "/" << files.size() << " files" << std::flush;
    }
    auto input = read_input(file, config->max_input_bytes);
    if (!input.ok()) {
      skipped.push_back(input.status().message());
      continue;
    }
    auto certs = parse_certificates(*input, file == "-" ? "stdin" : file, config->max_input_bytes);
    if (!certs.ok()) {
      skipped.push_back(certs.status().message());
      continue;
    }
    for (const Certificate& c : *certs) {
      const std::string what = file + " (" + c.subject + ")";
      std::vector<MailAddress> addrs;
      for (const std::string& email : c.emails) {
        auto a = parse_address(email);
        if (!a.ok()) continue;
        // Once each; two spellings of one mailbox meet again in its zone (mailbox_of).
        const bool dup = std::any_of(addrs.begin(), addrs.end(), [&](const MailAddress& x) {
          return x.to_string() == a->to_string();
        });
        if (!dup) addrs.push_back(std::move(a).value());
      }
      if (addrs.empty()) {
        skipped.push_back(what + ": certificate names no email address");
        continue;
      }
      for (const MailAddress& named : addrs) {
        auto cached = zones.find(named.domain);
        if (cached == zones.end()) {
          cached = zones.emplace(named.domain, zone_for(s, named.domain)).first;
        }
        const Result<Zone>& zone = cached->second;
        if (!zone.ok()) {
          if (zone.status().code() == Status::Code::kStoreError) {
            s.rollback();
            return fail(zone.status());
          }
          skipped.push_back(what + ": " + named.to_string() + ": " + zone.status().message());
          continue;
        }
        auto mailbox = mailbox_of(s, *zone, named);
        if (!mailbox.ok()) {
          s.rollback();
          return fail(mailbox.status());
        }
        const MailAddress& addr = *mailbox;
        if (addr.to_string() != named.to_string()) {
          warn(file + ": " + named.to_string() + " is the mailbox " + addr.to_string() + " (zone " +
               zone->name + " ignores letter case in local-parts)");
        }
        std::vector<std::string> warnings;
        CertOptions checks = o;
        checks.force = false;  // import publishes only what the certificate itself names
        const std::string problem = check_publishable(c, addr, *params, checks, *zone, &warnings);
        if (!problem.empty()) {
          skipped.push_back(what + ": " + named.to_string() + ": " + problem);
          continue;
        }
        const NewCertificate n = new_certificate(c, addr, *zone, *params, o, *config);
        auto added = s.add_certificate(*zone, n);
        if (!added.ok()) {
          if (added.status().code() == Status::Code::kStoreError) {
            s.rollback();
            return fail(added.status());
          }
          skipped.push_back(what + ": " + added.status().message());
          continue;
        }
        if (added->records_added > 0) {
          ++certs_added;
          records_added += static_cast<std::size_t>(added->records_added);
          zones_changed.insert(added->zone);
        } else if (added->changed()) {
          ++certs_updated;  // a new TTL, or moved into a _smimecert zone
          zones_changed.insert(added->zone);
        } else {
          ++certs_unchanged;
        }
      }
    }
  }
  if (progress) std::cerr << '\n';
  if (Status st = s.commit(); !st.ok()) return fail(st);
  if (ctx.json) {
    std::cout << nlohmann::json{{"added", certs_added},           {"updated", certs_updated},
                                {"unchanged", certs_unchanged},   {"records_added", records_added},
                                {"zones_changed", zones_changed}, {"skipped", skipped}}
                     .dump()
              << '\n';
  } else {
    for (const std::string& line : skipped) std::cerr << "smimea-ctl: skipped " << line << '\n';
    std::cout << "imported " << certs_added << " certificate(s) (" << records_added
              << " records) into " << zones_changed.size() << " zone(s); " << certs_updated
              << " updated, " << certs_unchanged << " unchanged, " << skipped.size()
              << " skipped\n";
  }
  // Refused when nothing at all could be imported.
  if (certs_added == 0 && certs_updated == 0 && certs_unchanged == 0 && !skipped.empty()) {
    return kExitRefused;
  }
  return kExitOk;
}

int cert_list(Context& ctx, const CertOptions& o) {
  auto config = ctx.load_config();
  if (!config.ok()) return fail(config.status());
  std::string address, zone;
  if (!o.address.empty()) {
    auto addr = parse_address(o.address);
    if (!addr.ok()) return fail(addr.status());
    address = addr->to_string();
  }
  if (!o.zone.empty()) {
    auto z = normalize_domain(o.zone, /*allow_underscore=*/true);
    if (!z.ok()) return fail(z.status());
    zone = *z;
  }
  auto store = ctx.open_store(*config);
  if (!store.ok()) return fail(store.status());
  auto certs = (*store)->list_certificates(address, zone);
  if (!certs.ok()) return fail(certs.status());
  if (ctx.json) {
    auto out = nlohmann::json::array();
    for (const CertInfo& c : *certs) {
      auto records = nlohmann::json::array();
      for (const CertRecordInfo& r : c.records) {
        records.push_back({{"owner", r.owner_name},
                           {"usage", static_cast<int>(r.params.usage)},
                           {"selector", static_cast<int>(r.params.selector)},
                           {"matching_type", static_cast<int>(r.params.matching_type)},
                           {"ttl", r.ttl},
                           {"data_bytes", r.data_size}});
      }
      out.push_back({{"address", c.address},
                     {"zone", c.zone},
                     {"fingerprint", to_hex(c.fingerprint)},
                     {"subject", c.subject},
                     {"issuer", c.issuer},
                     {"serial", c.serial},
                     {"not_before", format_time(c.not_before)},
                     {"not_after", format_time(c.not_after)},
                     {"added", format_time(c.created_at)},
                     {"records", records}});
    }
    std::cout << out.dump(2) << '\n';
    return kExitOk;
  }
  for (const CertInfo& c : *certs) {
    std::cout << c.address << "  zone " << c.zone << "  sha256 " << to_hex(c.fingerprint)
              << "\n  subject " << c.subject << "\n  valid " << format_time(c.not_before) << " .. "
              << format_time(c.not_after) << '\n';
    for (const CertRecordInfo& r : c.records) {
      std::cout << "  " << r.owner_name << ' ' << r.ttl << " SMIMEA "
                << static_cast<int>(r.params.usage) << ' ' << static_cast<int>(r.params.selector)
                << ' ' << static_cast<int>(r.params.matching_type) << " (" << r.data_size
                << " bytes)\n";
    }
  }
  return kExitOk;
}

int cert_remove(Context& ctx, const CertOptions& o) {
  auto addr = parse_address(o.address);
  if (!addr.ok()) return fail(addr.status());
  std::optional<std::array<std::uint8_t, 32>> fingerprint;
  if (!o.fingerprint.empty()) {
    std::string hex;
    for (char c : o.fingerprint) {
      if (c != ':') hex.push_back(c);
    }
    std::array<std::uint8_t, 32> fp{};
    if (!decode_hex(hex, fp.data(), fp.size())) {
      return fail(Status::invalid_argument(o.fingerprint,
                                           "expected a SHA-256 fingerprint (64 hex digits)"));
    }
    fingerprint = fp;
  }
  auto config = ctx.load_config();
  if (!config.ok()) return fail(config.status());
  auto store = ctx.open_store(*config);
  if (!store.ok()) return fail(store.status());
  Store& s = **store;
  if (Status st = s.begin(); !st.ok()) return fail(st);
  auto removed = s.remove_certificates(addr->to_string(), fingerprint);
  if (!removed.ok()) {
    s.rollback();
    return fail(removed.status());
  }
  if (*removed == 0) {
    s.rollback();
    return fail(Status::not_found(addr->to_string(), fingerprint
                                                         ? "no certificate with that fingerprint"
                                                         : "no certificate stored"));
  }
  if (Status st = s.commit(); !st.ok()) return fail(st);
  if (ctx.json) {
    std::cout << nlohmann::json{{"address", addr->to_string()}, {"removed", *removed}}.dump()
              << '\n';
  } else {
    std::cout << "removed " << *removed << " certificate(s) of " << addr->to_string() << '\n';
  }
  return kExitOk;
}

void add_record_options(CLI::App* cmd, CertOptions& o) {
  cmd->add_option("--usage", o.usage, "Certificate usage 0-3 (default 3, DANE-EE)")
      ->check(CLI::Range(0, 3));
  cmd->add_option("--selector", o.selector, "Selector 0 full certificate, 1 SPKI (default 0)")
      ->check(CLI::Range(0, 1));
  cmd->add_option("--matching-type", o.matching_type,
                  "Matching type 0 exact, 1 SHA2-256, 2 SHA2-512 (default 0)")
      ->check(CLI::Range(0, 2));
  cmd->add_option("--record", o.records,
                  "Publish this 'USAGE SELECTOR MATCHING-TYPE' set; repeat for several")
      ->take_all();
  cmd->add_option(
         "--ttl", o.ttl,
         "TTL of every record at the address's owner names (one TTL per RRset; default: the "
         "RRset's TTL, or default-ttl for a new owner)")
      ->check(CLI::Range(0, static_cast<int>(kMaxTtl)));
  cmd->add_flag("--allow-expired", o.allow_expired, "Publish an expired certificate (warns)");
}

}  // namespace

void add_cert_commands(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<CertOptions>();
  CLI::App* cert = app.add_subcommand("cert", "Manage certificates");
  cert->require_subcommand(1);

  CLI::App* add = cert->add_subcommand("add", "Publish a certificate for an address");
  add->add_option("ADDRESS", o->address, "Email address")->required();
  add->add_option("FILE", o->inputs, "PEM, DER or PKCS#7 file, or - for stdin")
      ->required()
      ->expected(1);
  add_record_options(add, *o);
  add->add_flag("--force", o->force,
                "Publish even if the certificate does not name the address, or is a CA "
                "certificate used with usage 1/3 (warns)");
  add->callback([&ctx, o] { ctx.exit_code = cert_add(ctx, *o); });

  CLI::App* import = cert->add_subcommand(
      "import", "Publish certificates for the addresses they name (files or directories)");
  import->add_option("INPUT", o->inputs, "Files or directories (recursively), or -")->required();
  add_record_options(import, *o);
  import->callback([&ctx, o] { ctx.exit_code = cert_import(ctx, *o);
});

CLI::App* list = cert->add_subcommand("list", "List certificates and their records");
list->add_option("ADDRESS", o->address, "Only this address");
list->add_option("--zone", o->zone, "Only this zone");
list->callback([&ctx, o] { ctx.exit_code = cert_list(ctx, *o); });

CLI::App* remove = cert->add_subcommand("remove", "Withdraw an address's certificates");
remove->add_option("ADDRESS", o->address, "Email address")->required();
remove->add_option("--fingerprint", o->fingerprint,
                   "Only the certificate with this SHA-256 fingerprint (hex, ':' allowed)");
remove->callback([&ctx, o] { ctx.exit_code = cert_remove(ctx, *o); });
}  // namespace smimea::admin

}  // namespace smimea::admin

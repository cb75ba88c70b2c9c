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
#include "smimea/provision.h"

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

// The options of a publish: --record sets, plus one set from --usage/--selector/
// --matching-type (each defaulting to 3 0 0); none: the config's default-records.
Result<PublishOptions> publish_options(const CertOptions& o) {
  PublishOptions out;
  for (const std::string& text : o.records) {
    auto p = parse_record_params(text);
    if (!p.ok()) return p.status().with_context("--record");
    out.records.push_back(*p);
  }
  if (o.usage >= 0 || o.selector >= 0 || o.matching_type >= 0) {
    auto p = make_record_params(o.usage >= 0 ? o.usage : 3, o.selector >= 0 ? o.selector : 0,
                                o.matching_type >= 0 ? o.matching_type : 0);
    if (!p) return Status::invalid_argument("record parameters", "out of range");
    out.records.push_back(*p);
  }
  if (o.ttl >= 0) out.ttl = static_cast<std::uint32_t>(o.ttl);
  out.force = o.force;
  out.allow_expired = o.allow_expired;
  return out;
}

int cert_add(Context& ctx, const CertOptions& o) {
  if (auto addr = parse_address(o.address); !addr.ok()) return fail(addr.status());
  auto config = ctx.load_config();
  if (!config.ok()) return fail(config.status());
  auto options = publish_options(o);
  if (!options.ok()) return fail(options.status());
  const std::string& input_path = o.inputs.front();
  auto input = read_input(input_path, config->max_input_bytes);
  if (!input.ok()) return fail(input.status());
  const std::string source = input_path == "-" ? "stdin" : input_path;
  auto certs = parse_certificates(*input, source, config->max_input_bytes);
  if (!certs.ok()) return fail(certs.status());
  auto store = ctx.open_store(*config);
  if (!store.ok()) return fail(store.status());
  Provisioner provisioner(**store, *config, ctx.actor());
  auto result = provisioner.publish(o.address, *certs, source, *options);
  if (!result.ok()) return fail(result.status());
  for (const std::string& w : result->warnings) warn(w);
  if (ctx.json) {
    auto added = nlohmann::json::array();
    for (const PublishedCertificate& c : result->certificates) {
      added.push_back({{"address", result->address},
                       {"zone", result->zone},
                       {"fingerprint", to_hex(c.fingerprint)},
                       {"records_added", c.records_added},
                       {"records_updated", c.records_updated},
                       {"moved", c.moved}});
    }
    std::cout << nlohmann::json{{"added", added}, {"serial", result->serial}}.dump() << '\n';
    return kExitOk;
  }
  for (const PublishedCertificate& c : result->certificates) {
    std::cout << (c.records_added > 0 ? "added "
                  : c.changed()       ? "updated "
                                      : "unchanged ")
              << result->address << " sha256 " << to_hex(c.fingerprint).substr(0, 16)
              << "...: " << c.records_added << " record(s) in zone " << result->zone;
    if (c.records_updated > 0)
      std::cout << ", TTL of " << c.records_updated << " record(s) changed";
    if (c.moved) std::cout << ", moved into this zone";
    std::cout << '\n';
  }
  std::cout << "zone " << result->zone << " serial " << result->serial
            << (result->changed() ? "" : " (unchanged)") << '\n';
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
  auto options = publish_options(o);
  if (!options.ok()) return fail(options.status());
  std::vector<std::string> files;
  std::vector<std::string> skipped;  // one line each: "what: why"
  for (const std::string& in : o.inputs) collect_files(in, &files, &skipped);

  auto store = ctx.open_store(*config);
  if (!store.ok()) return fail(store.status());
  Provisioner provisioner(**store, *config, ctx.actor());
  auto batch = provisioner.begin();
  if (!batch.ok()) return fail(batch.status());
  for (std::string& line : skipped) batch->skip(std::move(line));

  const bool progress = isatty(STDERR_FILENO) != 0 && !ctx.json && files.size() >= 100;
  for (std::size_t i = 0; i < files.size(); ++i) {
    const std::string& file = files[i];
    if (progress && (i % 1000 == 0 || i + 1 == files.size())) {
      std::cerr << "\rimporting: " << i + 1 << "/" << files.size() << " files" << std::flush;
    }
    auto input = read_input(file, config->max_input_bytes);
    if (!input.ok()) {
      batch->skip(input.status().message());
      continue;
    }
    const std::string source = file == "-" ? "stdin" : file;
    auto certs = parse_certificates(*input, source, config->max_input_bytes);
    if (!certs.ok()) {
      batch->skip(certs.status().message());
      continue;
    }
    if (Status s = batch->import(*certs, file, *options); !s.ok()) return fail(s);
  }
  if (progress) std::cerr << '\n';
  if (Status s = batch->commit(); !s.ok()) return fail(s);
  const ImportResult& r = batch->imported();
  for (const std::string& w : r.warnings) warn(w);
  if (ctx.json) {
    std::cout << nlohmann::json{{"added", r.added},
                                {"updated", r.updated},
                                {"unchanged", r.unchanged},
                                {"records_added", r.records_added},
                                {"zones_changed", r.zones_changed},
                                {"skipped", r.skipped}}
                     .dump()
              << '\n';
  } else {
    for (const std::string& line : r.skipped) std::cerr << "smimea-ctl: skipped " << line << '\n';
    std::cout << "imported " << r.added << " certificate(s) (" << r.records_added
              << " records) into " << r.zones_changed.size() << " zone(s); " << r.updated
              << " updated, " << r.unchanged << " unchanged, " << r.skipped.size() << " skipped\n";
  }
  // Refused when nothing at all could be imported.
  if (r.added == 0 && r.updated == 0 && r.unchanged == 0 && !r.skipped.empty()) {
    return kExitRefused;
  }
  return kExitOk;
}

int cert_list(Context& ctx, const CertOptions& o) {
  auto config = ctx.load_config();
  if (!config.ok()) return fail(config.status());
  auto store = ctx.open_store(*config);
  if (!store.ok()) return fail(store.status());
  auto certs = Provisioner(**store, *config, ctx.actor()).list(o.address, o.zone);
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
                           {"data_bytes", r.data.size()}});
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
                     {"changed_by", c.changed_by},
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
                << ' ' << static_cast<int>(r.params.matching_type) << " (" << r.data.size()
                << " bytes)\n";
    }
  }
  return kExitOk;
}

int cert_remove(Context& ctx, const CertOptions& o) {
  if (auto addr = parse_address(o.address); !addr.ok()) return fail(addr.status());
  std::optional<std::array<std::uint8_t, 32>> fingerprint;
  if (!o.fingerprint.empty()) {
    auto fp = parse_fingerprint(o.fingerprint);
    if (!fp.ok()) return fail(fp.status());
    fingerprint = *fp;
  }
  auto config = ctx.load_config();
  if (!config.ok()) return fail(config.status());
  auto store = ctx.open_store(*config);
  if (!store.ok()) return fail(store.status());
  std::string mailbox;
  auto removed =
      Provisioner(**store, *config, ctx.actor()).remove(o.address, fingerprint, &mailbox);
  if (!removed.ok()) return fail(removed.status());
  if (ctx.json) {
    std::cout << nlohmann::json{{"address", mailbox}, {"removed", *removed}}.dump() << '\n';
  } else {
    std::cout << "removed " << *removed << " certificate(s) of " << mailbox << '\n';
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

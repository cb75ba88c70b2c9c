#include "smimea/provision.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "smimea/hex.h"
#include "smimea/owner_name.h"

namespace smimea {
namespace {

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

// The parameter sets to publish: as asked, once each, or the config's default-records.
std::vector<RecordParams> params_for(const PublishOptions& o, const Config& config) {
  if (o.records.empty()) return config.default_records;
  std::vector<RecordParams> unique;
  for (const RecordParams& p : o.records) {
    if (std::find(unique.begin(), unique.end(), p) == unique.end()) unique.push_back(p);
  }
  return unique;
}

// The reasons a certificate may not be published for addr; empty if it may. An anchor (a CA
// of the address's chain, published with usage 0 or 2 only) need not name the address.
// Overridable problems go to *overridden (as warnings) when their override is set.
std::string check_publishable(const Certificate& cert, const MailAddress& addr,
                              const std::vector<RecordParams>& params, const PublishOptions& o,
                              const Zone& zone, std::vector<std::string>* overridden, bool anchor) {
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
  if (!anchor && !cert.for_email) {
    // Not refused (a record is a record), but mail clients will not use it: say so.
    overridden->push_back(
        "certificate's extended key usage leaves out email protection: mail clients may not "
        "use it for S/MIME");
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

// The rows to add for cert at addr in zone: the mailbox's owner names as the zone compares
// local-parts (no lower-cased variant in a case-sensitive zone), the TTL as asked for, and
// who adds it.
NewCertificate new_certificate(const Certificate& cert, const MailAddress& addr, const Zone& zone,
                               const std::vector<RecordParams>& params, const PublishOptions& o,
                               const Config& config, const std::string& actor) {
  NewCertificate n = make_new_certificate(cert, addr, params, o.ttl.value_or(config.default_ttl),
                                          config.lowercase_variant && !zone.case_sensitive);
  n.ttl_explicit = o.ttl.has_value();
  n.changed_by = actor;
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
// certificate is taken, which check_publishable refuses without force. Of a signed mail's
// certificates (signer set), only the signer's is the address's own: the others came beside
// the signature, not covered by it, so they serve only as its chain.
std::vector<Chosen> choose_certificates(const std::vector<Certificate>& certs,
                                        const MailAddress& addr,
                                        const std::vector<RecordParams>& params,
                                        bool case_sensitive, const Certificate* signer) {
  auto names = [&](const Certificate& c) {
    return (signer == nullptr || &c == signer) && certificate_names(c, addr, case_sensitive);
  };
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

std::string mailbox_note(const MailAddress& given, const MailAddress& mailbox, const Zone& zone) {
  return given.to_string() + " is the mailbox " + mailbox.to_string() + " (zone " + zone.name +
         " ignores letter case in local-parts)";
}

// The published records of n, with the TTLs the store gave them (an RRset keeps one TTL: a
// new record may take its RRset's).
std::vector<PublishedRecord> published_records(const NewCertificate& n, const AddResult& added) {
  std::vector<PublishedRecord> out;
  const std::string suffix = "._smimecert." + n.domain + ".";
  for (std::size_t i = 0; i < n.records.size(); ++i) {
    const NewCertificate::Record& r = n.records[i];
    const std::uint32_t ttl = i < added.ttls.size() ? added.ttls[i] : r.ttl;
    out.push_back({to_hex(r.owner.data(), r.owner.size()) + suffix, ttl, r.params, r.data});
  }
  return out;
}

}  // namespace

Result<RecordParams> parse_record_params(std::string_view text) {
  std::string normalized(text);
  std::replace(normalized.begin(), normalized.end(), ',', ' ');
  int u = -1, s = -1, m = -1;
  char extra = 0;
  if (std::sscanf(normalized.c_str(), "%d %d %d %c", &u, &s, &m, &extra) != 3) {
    return Status::invalid_argument(text, "expected 'USAGE SELECTOR MATCHING-TYPE'");
  }
  auto p = make_record_params(u, s, m);
  if (!p) return Status::invalid_argument(text, "out of range (0-3 0-1 0-2)");
  return *p;
}

Result<std::array<std::uint8_t, 32>> parse_fingerprint(std::string_view text) {
  std::string hex;
  for (char c : text) {
    if (c != ':') hex.push_back(c);
  }
  std::array<std::uint8_t, 32> fp{};
  if (!decode_hex(hex, fp.data(), fp.size())) {
    return Status::invalid_argument(text, "expected a SHA-256 fingerprint (64 hex digits)");
  }
  return fp;
}

bool PublishResult::changed() const {
  return std::any_of(certificates.begin(), certificates.end(),
                     [](const PublishedCertificate& c) { return c.changed(); });
}

// --- Batch ---

Batch::Batch(Provisioner& provisioner, bool preview)
    : provisioner_(&provisioner), open_(true), preview_(preview) {}

Batch::Batch(Batch&& other) noexcept
    : provisioner_(other.provisioner_),
      open_(other.open_),
      preview_(other.preview_),
      import_(std::move(other.import_)),
      zones_(std::move(other.zones_)) {
  other.open_ = false;
}

Batch::~Batch() {
  if (open_) provisioner_->store_.rollback();
}

Result<Zone> Batch::zone_for(const std::string& domain) {
  for (const auto& [name, zone] : zones_) {
    if (name == domain) return zone;
  }
  // A delegated _smimecert.<domain> zone, else the domain's own zone.
  Store& store = provisioner_->store_;
  auto zone = store.find_zone(std::string(kSmimecertLabel) + "." + domain);
  if (!zone.ok() && zone.status().is_not_found()) zone = store.find_zone(domain);
  if (!zone.ok() && zone.status().is_not_found()) {
    zone = Status::invalid_argument(domain,
                                    "no zone in the store for this domain (add one with "
                                    "smimea-ctl zone add " +
                                        domain + " or _smimecert." + domain + ")");
  }
  zones_.emplace_back(domain, zone);
  return zone;
}

Result<PublishResult> Batch::publish(std::string_view address,
                                     const std::vector<Certificate>& certs, std::string_view source,
                                     const PublishOptions& options) {
  if (!open_) return Status::conflict("publish", "the batch is closed");
  if (certs.empty()) return Status::invalid_argument(source, "no certificate");
  if (options.ttl && *options.ttl > kMaxTtl) {
    return Status::invalid_argument(std::to_string(*options.ttl),
                                    "TTL out of range 0.." + std::to_string(kMaxTtl));
  }
  Store& store = provisioner_->store_;
  const Config& config = provisioner_->config_;
  auto addr = parse_address(address);
  if (!addr.ok()) return addr.status();
  const std::vector<RecordParams> params = params_for(options, config);
  auto zone = zone_for(addr->domain);
  if (!zone.ok()) return zone.status();
  auto mailbox = mailbox_of(store, *zone, *addr);
  if (!mailbox.ok()) return mailbox.status();
  SMIMEA_RETURN_IF_ERROR(provisioner_->check_write(*zone, *mailbox, options.force, preview_));
  // A signed mail publishes for its sender alone, whatever the options: the mail is the proof.
  const Certificate* signer = mail_signer(certs);
  if (signer != nullptr) {
    const std::string refusal = signed_mail_refusal(*signer, *addr, zone->case_sensitive);
    if (!refusal.empty()) return Status::invalid_argument(source, refusal);
  }
  std::vector<Chosen> to_add =
      choose_certificates(certs, *mailbox, params, zone->case_sensitive, signer);
  for (Chosen& c : to_add) {
    const std::string problem =
        check_publishable(*c.cert, *mailbox, c.params, options, *zone, &c.warnings, c.anchor);
    if (!problem.empty()) {
      return Status::invalid_argument(std::string(source) + " (" + c.cert->subject + ")", problem);
    }
  }
  PublishResult result;
  result.address = mailbox->to_string();
  result.zone = zone->name;
  result.serial = zone->serial;
  if (mailbox->to_string() != addr->to_string()) {
    result.warnings.push_back(mailbox_note(*addr, *mailbox, *zone) +
                              ": its records go to that mailbox's owner names");
  }
  // add_certificate checks everything before it writes, so one certificate needs no
  // savepoint; of a bundle, a refused one must take the others' rows with it.
  const bool bundle = to_add.size() > 1;
  if (bundle) SMIMEA_RETURN_IF_ERROR(store.savepoint());
  for (const Chosen& chosen : to_add) {
    const Certificate& c = *chosen.cert;
    const NewCertificate n =
        new_certificate(c, *mailbox, *zone, chosen.params, options, config, provisioner_->actor_);
    auto added = store.add_certificate(*zone, n);
    if (!added.ok()) {
      if (bundle) store.rollback_to_savepoint();
      return added.status();
    }
    PublishedCertificate p;
    p.fingerprint = c.fingerprint;
    p.subject = c.subject;
    p.issuer = c.issuer;
    p.not_before = c.not_before;
    p.not_after = c.not_after;
    p.anchor = chosen.anchor;
    p.records_added = added->records_added;
    p.records_updated = added->records_updated;
    p.moved = added->moved;
    p.records = published_records(n, *added);
    result.zone = added->zone;
    result.certificates.push_back(std::move(p));
    result.warnings.insert(result.warnings.end(), chosen.warnings.begin(), chosen.warnings.end());
  }
  if (bundle) SMIMEA_RETURN_IF_ERROR(store.release_savepoint());
  return result;
}

Status Batch::import(const std::vector<Certificate>& certs, std::string_view source,
                     const PublishOptions& options) {
  if (!open_) return Status::conflict("import", "the batch is closed");
  Store& store = provisioner_->store_;
  const Config& config = provisioner_->config_;
  const std::vector<RecordParams> params = params_for(options, config);
  PublishOptions checks = options;
  checks.force = false;  // import publishes only what the certificate itself names
  // Of a signed mail, the signer's certificate alone, for the mail's From alone.
  const Certificate* signer = mail_signer(certs);
  for (const Certificate& c : certs) {
    if (signer != nullptr && &c != signer) continue;
    const std::string what = std::string(source) + " (" + c.subject + ")";
    std::vector<MailAddress> addrs;
    const std::vector<std::string>* emails = &c.emails;
    std::vector<std::string> from;  // a mail's From, read as one address when it was parsed
    if (signer != nullptr) {
      from.push_back(c.signed_mail_from);
      emails = &from;
    }
    for (const std::string& email : *emails) {
      auto a = parse_address(email);
      if (!a.ok()) continue;
      // Once each; two spellings of one mailbox meet again in its zone (mailbox_of).
      const bool dup = std::any_of(addrs.begin(), addrs.end(), [&](const MailAddress& x) {
        return x.to_string() == a->to_string();
      });
      if (!dup) addrs.push_back(std::move(a).value());
    }
    if (addrs.empty()) {
      import_.skipped.push_back(what + ": certificate names no email address");
      continue;
    }
    for (const MailAddress& named : addrs) {
      auto zone = zone_for(named.domain);
      if (!zone.ok()) {
        if (zone.status().code() == Status::Code::kStoreError) return zone.status();
        import_.skipped.push_back(what + ": " + named.to_string() + ": " + zone.status().message());
        continue;
      }
      auto mailbox = mailbox_of(store, *zone, named);
      if (!mailbox.ok()) return mailbox.status();
      if (Status scope = provisioner_->check_write(*zone, *mailbox, false); !scope.ok()) {
        import_.skipped.push_back(what + ": " + scope.message());
        continue;
      }
      if (signer != nullptr) {
        const std::string refusal = signed_mail_refusal(c, named, zone->case_sensitive);
        if (!refusal.empty()) {
          import_.skipped.push_back(what + ": " + refusal);
          continue;
        }
      }
      if (mailbox->to_string() != named.to_string()) {
        import_.warnings.push_back(std::string(source) + ": " +
                                   mailbox_note(named, *mailbox, *zone));
      }
      std::vector<std::string> ignored;
      const std::string problem =
          check_publishable(c, *mailbox, params, checks, *zone, &ignored, false);
      if (!problem.empty()) {
        import_.skipped.push_back(what + ": " + named.to_string() + ": " + problem);
        continue;
      }
      auto added = store.add_certificate(*zone, new_certificate(c, *mailbox, *zone, params, options,
                                                                config, provisioner_->actor_));
      if (!added.ok()) {
        if (added.status().code() == Status::Code::kStoreError) return added.status();
        import_.skipped.push_back(what + ": " + added.status().message());
        continue;
      }
      auto changed =
          std::lower_bound(import_.zones_changed.begin(), import_.zones_changed.end(), added->zone);
      const bool zone_changed = added->changed();
      if (zone_changed && (changed == import_.zones_changed.end() || *changed != added->zone)) {
        import_.zones_changed.insert(changed, added->zone);
      }
      if (added->records_added > 0) {
        ++import_.added;
        import_.records_added += static_cast<std::size_t>(added->records_added);
      } else if (zone_changed) {
        ++import_.updated;
      } else {
        ++import_.unchanged;
      }
    }
  }
  return Status();
}

void Batch::skip(std::string line) { import_.skipped.push_back(std::move(line)); }

Status Batch::commit() {
  if (!open_) return Status::conflict("commit", "the batch is closed");
  open_ = false;
  if (preview_) {
    provisioner_->store_.rollback();
    return Status();
  }
  return provisioner_->store_.commit();
}

// --- Provisioner ---

Result<Batch> Provisioner::begin() {
  SMIMEA_RETURN_IF_ERROR(store_.begin());
  return Batch(*this, false);
}

Result<PublishResult> Provisioner::publish(std::string_view address,
                                           const std::vector<Certificate>& certs,
                                           std::string_view source, const PublishOptions& options) {
  auto batch = begin();
  if (!batch.ok()) return batch.status();
  auto result = batch->publish(address, certs, source, options);
  if (!result.ok()) return result;
  SMIMEA_RETURN_IF_ERROR(batch->commit());
  auto zone = store_.find_zone(result->zone);
  if (zone.ok()) result->serial = zone->serial;
  return result;
}

Result<PublishResult> Provisioner::preview(std::string_view address,
                                           const std::vector<Certificate>& certs,
                                           std::string_view source, const PublishOptions& options) {
  SMIMEA_RETURN_IF_ERROR(store_.begin());
  Batch batch(*this, true);
  auto result = batch.publish(address, certs, source, options);
  if (!result.ok()) return result;
  SMIMEA_RETURN_IF_ERROR(batch.commit());  // rolls back
  return result;
}

Result<int> Provisioner::remove(std::string_view address,
                                const std::optional<std::array<std::uint8_t, 32>>& fingerprint,
                                std::string* mailbox) {
  auto addr = parse_address(address);
  if (!addr.ok()) return addr.status();
  int removed = 0;
  const Status s = in_transaction([&]() -> Status {
    if (token_) {  // the mailbox must be in the scope, and the token may write
      if (token_->read_only) return Status::permission_denied(who(), "is read-only");
      auto certs = list(addr->to_string(), "");
      if (!certs.ok()) return certs.status();
    }
    auto n = store_.remove_certificates(addr->to_string(), fingerprint);
    if (!n.ok()) return n.status();
    if (*n == 0) {
      return Status::not_found(addr->to_string(), fingerprint
                                                      ? "no certificate with that fingerprint"
                                                      : "no certificate stored");
    }
    removed = *n;
    return Status();
  });
  if (!s.ok()) return s;
  if (mailbox != nullptr) *mailbox = addr->to_string();
  return removed;
}

Result<ZoneChange> Provisioner::add_zone(std::string_view name, ZoneMode mode, ZoneKind kind,
                                         bool case_sensitive) {
  SMIMEA_RETURN_IF_ERROR(check_admin("add zones"));
  auto normalized = normalize_domain(name, /*allow_underscore=*/true);
  if (!normalized.ok()) return normalized.status();
  ZoneChange change;
  const Status s = in_transaction([&]() -> Status {
    auto zone =
        store_.add_zone(*normalized, mode, kind, &change.certificates_moved, case_sensitive);
    if (!zone.ok()) return zone.status();
    change.zone = std::move(zone).value();
    if (change.zone.mode == ZoneMode::kAuthoritative && starts_with_smimecert(change.zone.name)) {
      auto parent = store_.find_zone(change.zone.name.substr(kSmimecertLabel.size() + 1));
      if (!parent.ok() && !parent.status().is_not_found()) return parent.status();
      change.delegated_by_parent = parent.ok() && parent->mode == ZoneMode::kAuthoritative;
    }
    return Status();
  });
  if (!s.ok()) return s;
  return change;
}

Result<ZoneChange> Provisioner::remove_zone(std::string_view name, bool force) {
  SMIMEA_RETURN_IF_ERROR(check_admin("remove zones"));
  auto normalized = normalize_domain(name, /*allow_underscore=*/true);
  if (!normalized.ok()) return normalized.status();
  ZoneChange change;
  change.zone.name = *normalized;
  const Status s = in_transaction([&]() -> Status {
    auto removed = store_.remove_zone(*normalized, force, &change.certificates_moved);
    if (!removed.ok()) return removed.status();
    change.certificates_removed = *removed;
    return Status();
  });
  if (!s.ok()) return s;
  return change;
}

template <typename Fn>
Result<Zone> Provisioner::change_zone(std::string_view name, Fn change) {
  SMIMEA_RETURN_IF_ERROR(check_admin("change zones"));
  auto normalized = normalize_domain(name, /*allow_underscore=*/true);
  if (!normalized.ok()) return normalized.status();
  Zone zone;
  const Status s = in_transaction([&]() -> Status {
    Result<Zone> z = change(*normalized);
    if (!z.ok()) return z.status();
    zone = std::move(z).value();
    return Status();
  });
  if (!s.ok()) return s;
  return zone;
}

Result<Zone> Provisioner::set_zone_kind(std::string_view name, ZoneKind kind) {
  return change_zone(name, [&](const std::string& n) { return store_.set_zone_kind(n, kind); });
}

Result<Zone> Provisioner::set_zone_case(std::string_view name, bool case_sensitive) {
  return change_zone(name,
                     [&](const std::string& n) { return store_.set_zone_case(n, case_sensitive); });
}

}  // namespace smimea

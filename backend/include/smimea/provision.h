// The provisioning service: every change to the store's zones and certificates, with every
// check and refusal, whoever asks (smimea-ctl today, the HTTP API next). An adapter parses its
// input, calls here and prints or serialises the result; it makes no decision of its own.
//
// Each change is one transaction of the Store: refused or failed, it leaves the store exactly
// as it was; committed, the serials of the zones it changed have moved (Store::commit).
// Errors are Statuses: InvalidArgument for input that can never be published as given (the
// words are the ones an operator sees), NotFound, Conflict, PermissionDenied (outside an API
// token's scope), StoreError (exit codes: admin.h).
//
// Scope. A Provisioner made with a Token acts within it (the HTTP API); without one, it may do
// everything (smimea-ctl, run by root or the store's owner on the name server):
//  - a read-only token never writes (it may list and preview);
//  - an admin token acts in every zone, and only it adds, removes or changes zones;
//  - a zone token acts for the mailboxes of its zones, and may force;
//  - an address token acts only for its own mailboxes (the local-part compared as their zone
//    compares it), and may not force.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smimea/cert.h"
#include "smimea/config.h"
#include "smimea/status.h"
#include "smimea/store.h"

namespace smimea {

// "U S M" (or "U,S,M"): one record parameter set, each number in its RFC range.
Result<RecordParams> parse_record_params(std::string_view text);

// A SHA2-256 fingerprint as 64 hex digits, ':' between them allowed.
Result<std::array<std::uint8_t, 32>> parse_fingerprint(std::string_view text);

// How a certificate is published.
struct PublishOptions {
  std::vector<RecordParams> records;  // empty: the config's default-records
  // The TTL of the whole RRset at each owner (one TTL per RRset); none: the RRset keeps its
  // TTL, and a new owner gets default-ttl.
  std::optional<std::uint32_t> ttl;
  // Publish even if the certificate does not name the address, or its kind does not fit the
  // usages (a CA with usage 1/3, an end entity with 0/2). Each overridden problem is a warning.
  bool force = false;
  bool allow_expired = false;  // an expired certificate, with a warning
};

// One record as published: owner name (fully qualified, trailing dot), TTL, RDATA fields.
struct PublishedRecord {
  std::string owner;
  std::uint32_t ttl = 0;
  RecordParams params;
  Bytes data;
};

struct PublishedCertificate {
  std::array<std::uint8_t, 32> fingerprint{};
  std::string subject;
  std::string issuer;
  std::int64_t not_before = 0;
  std::int64_t not_after = 0;
  bool anchor = false;  // a CA of the address's chain (usage 0/2 only)
  std::vector<PublishedRecord> records;
  int records_added = 0;    // new records
  int records_updated = 0;  // records whose TTL changed
  bool moved = false;       // the certificate was in another zone
  bool changed() const { return records_added > 0 || records_updated > 0 || moved; }
};

struct PublishResult {
  std::string address;  // the mailbox: the address, or its stored spelling (see warnings)
  std::string zone;
  std::uint32_t serial = 0;  // the zone's serial after the change (unchanged for a preview)
  std::vector<PublishedCertificate> certificates;
  std::vector<std::string> warnings;  // one sentence each: what was overridden or adjusted
  bool changed() const;
};

// What an import did: certificates published for the addresses they name.
struct ImportResult {
  std::size_t added = 0;      // certificates with new records
  std::size_t updated = 0;    // a new TTL, or moved into a _smimecert zone
  std::size_t unchanged = 0;  // already there
  std::size_t records_added = 0;
  std::vector<std::string> zones_changed;  // sorted
  std::vector<std::string> skipped;        // "what: why", one per certificate or input
  std::vector<std::string> warnings;
};

struct ZoneChange {
  Zone zone;
  int certificates_moved = 0;    // into a new _smimecert zone, or back to its parent
  int certificates_removed = 0;  // zone remove --force
  // A new _smimecert zone whose authoritative parent is in the store: pdns must rediscover
  // to answer below the cut from it at once (README, "Delegated _smimecert zones").
  bool delegated_by_parent = false;
};

// A token to create (smimea-ctl token add). A token acts in its zones, or only for its
// mailboxes (a customer publishing their own certificate); an admin token in every zone, and
// only it may add or remove zones.
struct TokenRequest {
  std::string name;                    // letters, digits, '.', '_', '-'; at most 64
  std::vector<std::string> zones;      // as given; must be zones of the store
  std::vector<std::string> addresses;  // as given; stored as their mailbox
  std::vector<std::string> networks;   // CIDR, e.g. 192.0.2.0/24, 2001:db8::/32; none: any
  bool read_only = false;
  bool admin = false;
  std::optional<std::int64_t> expires_days;
};

struct NewToken {
  Token token;
  std::string secret;  // shown once; the store keeps only its SHA2-256
};

class Provisioner;

// One transaction in progress: many certificates published or imported, committed together or
// not at all. Destroyed without commit(), it rolls back. Not thread-safe.
class Batch {
 public:
  ~Batch();
  Batch(Batch&&) noexcept;
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;
  Batch& operator=(Batch&&) = delete;

  // Publishes certs (a bundle may carry the chain) for address: usages 1/3 go to the
  // certificates that name it, 0/2 to the CAs that issued them. source names the input in
  // messages. A refusal changes nothing of the batch.
  // Certificates from a signed mail (mail_signer()) are refused, whatever the options, unless
  // the signer's certificate names address and the mail's From is address
  // (signed_mail_refusal()); the signer's is then the only end-entity certificate, the others
  // serve only as its chain.
  Result<PublishResult> publish(std::string_view address, const std::vector<Certificate>& certs,
                                std::string_view source, const PublishOptions& options);

  // Publishes each certificate of certs for the addresses it names, with options.records and
  // options.ttl; nothing is forced. Of a signed mail, only the signer's certificate, for the
  // mail's From address alone, skipped if the certificate does not name it. What cannot be
  // published is added to the result's skipped list; only a store error fails (and the batch
  // must then be dropped).
  Status import(const std::vector<Certificate>& certs, std::string_view source,
                const PublishOptions& options);
  // An input that gave no certificate at all ("what: why"), for the import's report.
  void skip(std::string line);

  // Commits; the serials of the changed zones move.
  Status commit();
  const ImportResult& imported() const { return import_; }

 private:
  friend class Provisioner;
  Batch(Provisioner& provisioner, bool preview);
  Result<Zone> zone_for(const std::string& domain);  // cached for the batch

  Provisioner* provisioner_;
  bool open_ = false;
  bool preview_ = false;
  ImportResult import_;
  std::vector<std::pair<std::string, Result<Zone>>> zones_;  // zone_for's cache
};

class Provisioner {
 public:
  // store is a read-write connection; both must outlive the Provisioner. actor names who
  // makes the changes, for the audit columns: "cli:<user>".
  Provisioner(Store& store, const Config& config, std::string actor = {})
      : store_(store), config_(config), actor_(std::move(actor)) {}
  // Acting for an API token, within its scope; the actor is "token:<name>".
  Provisioner(Store& store, const Config& config, Token token)
      : store_(store), config_(config), actor_("token:" + token.name), token_(std::move(token)) {}

  // One transaction for several changes.
  Result<Batch> begin();

  // A batch of one publish, committed.
  Result<PublishResult> publish(std::string_view address, const std::vector<Certificate>& certs,
                                std::string_view source, const PublishOptions& options);
  // The same checks, refusals and records as publish(), TTLs as they would be; nothing stored.
  Result<PublishResult> preview(std::string_view address, const std::vector<Certificate>& certs,
                                std::string_view source, const PublishOptions& options);

  // Removes the certificates of address's mailbox (all, or the one with this fingerprint).
  // NotFound if there is none. Returns the mailbox's address and how many were removed.
  Result<int> remove(std::string_view address,
                     const std::optional<std::array<std::uint8_t, 32>>& fingerprint,
                     std::string* mailbox = nullptr);

  // Removes the certificate with this fingerprint from every mailbox the caller may change,
  // or only from address's if it is given. NotFound if there is none, PermissionDenied if
  // there are some but all outside the scope. Returns the mailboxes it was removed from.
  Result<std::vector<std::string>> remove_certificate(
      const std::array<std::uint8_t, 32>& fingerprint, std::string_view address = {});

  // Certificates by mailbox and/or zone (either may be empty), as given by a user; of what
  // the scope lets the caller see (PermissionDenied for a mailbox or zone outside it).
  Result<std::vector<CertInfo>> list(std::string_view address, std::string_view zone);

  Result<ZoneChange> add_zone(std::string_view name, ZoneMode mode, ZoneKind kind,
                              bool case_sensitive);
  Result<ZoneChange> remove_zone(std::string_view name, bool force);
  Result<Zone> set_zone_kind(std::string_view name, ZoneKind kind);
  Result<Zone> set_zone_case(std::string_view name, bool case_sensitive);
  // The zones the caller may see: every zone, a token's zones, or the zones of its mailboxes.
  Result<std::vector<Zone>> zones();

  // API tokens. The secret: "smimea_" and 43 characters of base64url, 256 bits from the
  // CSPRNG.
  Result<NewToken> add_token(const TokenRequest& request);
  Result<std::vector<Token>> tokens();
  Status remove_token(std::string_view name);
  // The token of secret if it may be used at `now` (seconds since the epoch) from the client
  // address peer (IPv4 or IPv6 text; a unix socket's client is 127.0.0.1): NotFound for an
  // unknown or expired token or a peer outside its networks, the same words for all. The hash
  // is compared in constant time.
  Result<Token> authenticate(std::string_view secret, std::int64_t now, std::string_view peer);

 private:
  friend class Batch;
  // Runs fn() in one transaction: committed if it returns OK, rolled back otherwise.
  template <typename Fn>
  Status in_transaction(Fn fn) {
    SMIMEA_RETURN_IF_ERROR(store_.begin());
    Status s = fn();
    if (s.ok()) s = store_.commit();
    if (!s.ok()) store_.rollback();
    return s;
  }
  // change(normalised name) in one transaction: the zone as it is after it.
  template <typename Fn>
  Result<Zone> change_zone(std::string_view name, Fn change);

  // The scope's checks (provision_scope.cc); without a token, all pass.
  // preview: what a read-only token may do too.
  Status check_write(const Zone& zone, const MailAddress& mailbox, bool force,
                     bool preview = false) const;
  Status check_read_zone(const Zone& zone) const;
  Status check_admin(std::string_view what) const;
  // Whether the mailbox (as printed) in a zone so named and compared is in the scope.
  bool in_scope(std::string_view zone, bool case_sensitive, std::string_view mailbox) const;
  std::string who() const;  // "token NAME"

  Store& store_;
  const Config& config_;
  std::string actor_;
  std::optional<Token> token_;
};

}  // namespace smimea

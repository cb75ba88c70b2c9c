// What PowerDNS's backend calls mean for our store, written once for both pdns adapters: the
// remote backend (backend/src/remote/, JSON over a pipe or unix socket) and the native module
// (backend/src/pdns_module/). An adapter converts its types to a call here and the call's
// Outcome back; it decides nothing.
//
// Every call but lookup says one of three things (Outcome):
// - an answer;
// - "no": pdns tries the next backend, or reads it as "not found" / "refused". A zone the store
//   does not have, or an overlay zone, is not ours: with several backends that lets another
//   backend own it. A "no" may carry a message: a reason for pdns (a refused write of a zone
//   that is not ours), or an error we log (Outcome::logged()): refused writes, and store errors
//   of the calls pdns also makes from its communicator thread (getDomainInfo,
//   getDomainMetadata, NOTIFY bookkeeping, TSIG keys), where a failure would stop pdns;
// - "failed": a failure of the backend, which pdns sees as an exception (SERVFAIL for the
//   question; the remote backend reconnects). For store errors where "no" would be a wrong
//   answer: a lookup (an NXDOMAIN for a name that exists), getAllDomains (an empty zone
//   cache), list (a transfer of nothing), getDomainKeys and getAllDomainMetadata of a zone of
//   ours (the zone served unsigned, or with NSEC instead of NSEC3), and the NSEC neighbours
//   (pdns would sign an NSEC from the apex to the apex).
// The remote adapter maps an answer to {"result":...}, "no" to {"result":false} (with the
// message in "log"), "failed" to {"error":...}; the native one to true, false, and a thrown
// DBException.
//
// A PdnsCalls owns one backend instance's store connections: the read-only Store of the query
// path with its Answerer, and the KeyStore (read-write, opened on the first call that needs
// it) for keys, metadata, transactions, NOTIFY bookkeeping and TSIG keys. Not thread-safe: one
// per remote connection or pipe process, one per native backend instance (pdns makes one per
// thread). Key material and TSIG secrets are never put into a message.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "smimea/answer.h"
#include "smimea/config.h"
#include "smimea/key_store.h"
#include "smimea/nsec.h"
#include "smimea/status.h"

namespace smimea {

// The answer of a call that answers only yes.
struct Done {};

enum class OutcomeKind : std::uint8_t { kAnswer, kNo, kFailed };

// An answer, "no" or "failed" (see above).
template <class T>
class [[nodiscard]] Outcome {
 public:
  using Kind = OutcomeKind;

  // An answer.
  Outcome(const T& value)  // NOLINT(google-explicit-constructor): by design, like Result
      : kind_(Kind::kAnswer), value_(value) {}
  Outcome(T&& value)  // NOLINT(google-explicit-constructor): by design, like Result
      : kind_(Kind::kAnswer), value_(std::move(value)) {}
  // "no" without a message.
  static Outcome no() { return Outcome(Kind::kNo, std::string(), false); }
  // "no" with a reason for pdns (the remote backend's "log"); not an error of ours.
  static Outcome no_because(std::string message) {
    return Outcome(Kind::kNo, std::move(message), false);
  }
  // "no" after an error that the adapter logs.
  static Outcome no_after_error(std::string message) {
    return Outcome(Kind::kNo, std::move(message), true);
  }
  static Outcome failed(std::string message) {
    return Outcome(Kind::kFailed, std::move(message), true);
  }
  // Converts a non-answer of another type.
  template <class U>
  static Outcome like(Outcome<U>&& other) {
    return Outcome(other.kind(), std::move(other).message(), other.logged());
  }

  Kind kind() const { return kind_; }
  bool answered() const { return kind_ == Kind::kAnswer; }
  bool failed() const { return kind_ == Kind::kFailed; }
  // Whether the message is an error to log (every "failed", and no_after_error).
  bool logged() const { return logged_; }
  const std::string& message() const& { return message_; }
  std::string message() && { return std::move(message_); }
  // REQUIRES: answered().
  T& value() { return value_; }
  T& operator*() { return value_; }
  T* operator->() { return &value_; }

 private:
  Outcome(Kind kind, std::string message, bool logged)
      : kind_(kind), logged_(logged), message_(std::move(message)) {}

  Kind kind_;
  bool logged_ = false;
  std::string message_;
  T value_{};
};

// What pdns's domaininfo says about one of our authoritative zones.
struct ZoneInfo {
  std::int64_t id = -1;
  std::string fqdn;  // "example.com."
  ZoneKind kind = ZoneKind::kMaster;
  std::uint32_t serial = 0;
  std::uint32_t notified_serial = 0;  // 0: never notified
};

class PdnsCalls {
 public:
  // Opens the store read-only (query_only), with the busy timeout and cache of config. config
  // must outlive the PdnsCalls.
  static Result<std::unique_ptr<PdnsCalls>> open(const Config& config);
  // Warnings, one sentence each, if the store's files are accessible to other users (see
  // Store::access_warnings): for the adapter to log once at start.
  static std::vector<std::string> access_warnings(const Config& config);
  // With expired-certificates: withdraw, starts (once per process; later calls do nothing)
  // the thread that moves a zone's serial when one of its certificates expires, so that
  // secondaries and caches follow the answers, which leave it out from that second on
  // (KeyStore::move_serials_of_expired). It wakes at the next notAfter, and at least every
  // kExpiryRecheck for certificates added meanwhile; log receives its errors (once until it
  // succeeds again). Several processes may run it on one store. Call it after the process
  // has forked.
  static constexpr int kExpiryRecheckSeconds = 10;
  static void watch_expiry(const Config& config, std::function<void(const std::string&)> log);

  ~PdnsCalls();
  PdnsCalls(const PdnsCalls&) = delete;
  PdnsCalls& operator=(const PdnsCalls&) = delete;

  // --- questions and transfers ---

  // The query path, as cheap as Answerer::lookup (see answer.h): a name that is not ours gives
  // no records and OK; any error is a failure of the backend ("failed").
  Status lookup(std::string_view qname, QType qtype, RecordSink& sink, std::int64_t zone_id) {
    return answerer_.lookup(qname, qtype, sink, zone_id);
  }
  // pdns's list (AXFR-out, pdnsutil list-zone): the records of zone_name (any case, trailing
  // dot optional), to be pulled one at a time. "no" unless it is one of our authoritative
  // zones; a store error fails. The listing must not outlive this object.
  Outcome<std::unique_ptr<ZoneListing>> list(std::string_view zone_name);

  // getAllDomains: our authoritative zones. Overlay zones belong to another backend: listing
  // them would hand pdns our zone id for them, and every query in the zone would be REFUSED.
  // A store error fails: pdns keeps its zone cache (an empty one would REFUSE every zone).
  Outcome<std::vector<ZoneInfo>> all_domains();
  // getDomainInfo: "no" unless zone is one of our authoritative zones; store error: logged no.
  Outcome<ZoneInfo> domain_info(std::string_view zone);

  // --- NOTIFY bookkeeping (pdns's communicator thread: errors are a logged "no", and the
  // zones are announced on the next cycle) ---

  // getUpdatedMasters: the authoritative master zones whose serial moved since the last
  // setNotified, or that were never announced. Native zones are not announced.
  Outcome<std::vector<ZoneInfo>> updated_masters();
  // setNotified.
  Outcome<Done> set_notified(std::int64_t zone_id, std::uint32_t serial);

  // --- DNSSEC keys and domain metadata (zones named as pdns names them) ---

  // getDomainKeys / getAllDomainMetadata: "no" for a zone that is not ours (the store says so,
  // or the zone is not in our table: pdns may ask from its secondary thread), otherwise a store
  // error fails.
  Outcome<std::vector<DomainKey>> domain_keys(std::string_view zone);
  Outcome<DomainMetadata> all_domain_metadata(std::string_view zone);
  // getDomainMetadata: a logged "no" on errors too (pdns's communicator asks for
  // TSIG-ALLOW-AXFR and ALSO-NOTIFY, and stops on an exception); quiet for a zone not ours.
  Outcome<std::vector<std::string>> domain_metadata(std::string_view zone, std::string_view kind);
  // The writes: "no" with the reason for a zone that is not ours, a logged "no" otherwise.
  Outcome<std::int64_t> add_domain_key(std::string_view zone, const DomainKey& key);
  Outcome<Done> remove_domain_key(std::string_view zone, std::int64_t id);
  Outcome<Done> set_key_active(std::string_view zone, std::int64_t id, bool active);
  Outcome<Done> set_key_published(std::string_view zone, std::int64_t id, bool published);
  Outcome<Done> set_domain_metadata(std::string_view zone, std::string_view kind,
                                    const std::vector<std::string>& values);

  // --- transactions ---

  // startTransaction: "no" for a zone that is not ours. zone_id >= 0 means "replace the zone's
  // records" (AXFR-in, load-zone, clear-zone): their records come from smimea-ctl, so that is
  // refused (a logged no) before anything is deleted. Otherwise the KeyStore's write
  // transaction begins (pdnsutil's key and metadata writes).
  Outcome<Done> start_transaction(std::string_view zone, std::int64_t zone_id);
  // "no" without an open transaction.
  Outcome<Done> commit_transaction();
  Outcome<Done> abort_transaction();
  bool in_transaction() const { return keys_->in_transaction(); }

  // --- plain NSEC (getBeforeAndAfterNamesAbsolute) ---

  // The names around labels (relative to zone zone_id, left to right; see nsec_neighbours)
  // in zone zone_id: relative, lower case, "" for the apex. "no" unless it is one of our
  // authoritative zones; every other failure fails (pdns ignores a "no" and signs an NSEC
  // from the apex to the apex, which denies every name). A hashed name comes only from NSEC3
  // without narrow, which would need every hash of the zone in order: refused with a message
  // saying how to switch to narrow (narrow NSEC3 never asks).
  Outcome<NsecNeighbours> before_and_after(std::int64_t zone_id,
                                           const std::vector<std::string>& labels);
  // The same for a name in presentation format (relative to the zone); a malformed name fails.
  Outcome<NsecNeighbours> before_and_after(std::int64_t zone_id, std::string_view name);

  // --- TSIG keys (errors: a logged "no") ---

  // getTSIGKey: the key named name (any case, trailing dot optional). An empty algorithm
  // matches any; otherwise the key is returned only if it has that algorithm (pdns's own
  // backends: gsqlbackend.cc, lmdbbackend.cc, binddnssec.cc). No such key: a quiet "no"
  // (another backend may have it).
  Outcome<TsigKey> tsig_key(std::string_view name, std::string_view algorithm);
  Outcome<std::vector<TsigKey>> tsig_keys();
  Outcome<Done> set_tsig_key(const TsigKey& key);
  Outcome<Done> delete_tsig_key(std::string_view name);

  // --- directBackendCmd (pdnsutil backend-cmd) ---

  // How many requests this connection or instance made, and how many failed: the adapter
  // counts them (every logged outcome is one failure) for the status command.
  struct Counters {
    std::uint64_t requests = 0;
    std::uint64_t failures = 0;
  };
  // "status" (or "stats"): the store, its zones and counters; "help" or "": the commands;
  // anything else says it is unknown. A store error is a logged "no".
  Outcome<std::string> backend_command(std::string_view query, const Counters& counters);

 private:
  PdnsCalls(const Config& config, std::unique_ptr<Store> store);
  ZoneInfo zone_info(const ZoneEntry& zone) const;
  // The zone of a neighbours call: "no" unless one of our authoritative zones.
  Outcome<const ZoneEntry*> nsec_zone(std::int64_t zone_id);
  Outcome<NsecNeighbours> neighbours(const ZoneEntry& zone, const std::vector<std::string>& labels);

  const Config& config_;
  std::unique_ptr<Store> store_;
  Answerer answerer_;
  std::unique_ptr<KeyStore> keys_;  // opens its connection on first use
};

}  // namespace smimea

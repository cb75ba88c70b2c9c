// libsmimeabackend.so: the native PowerDNS backend module (launch=smimea), answering from the
// same core and store as smimea-backend, in process.
//
// PowerDNS makes one backend instance per thread that needs one (section 1.5 of the remote
// backend notes in the README); each instance owns its own store connection, Answerer and
// result buffer, so nothing here is shared between threads except the immutable factory.
// Built against the headers of the exact installed pdns version (see CMakeLists.txt); the
// factory refuses to load into any other version.
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "dnssec_calls.h"
#include "pdns/arguments.hh"
#include "pdns/dnsbackend.hh"
#include "pdns/dnsparser.hh"
#include "pdns/dnsrecords.hh"
#include "pdns/logger.hh"
#include "smimea/answer.h"
#include "smimea/config.h"
#include "smimea/store.h"
#include "transfer_calls.h"

// pdns_server exports this (pdns/version.hh); pdnsutil, which loads modules too, does not:
// declared weak, it is null there.
std::string getPDNSVersion() __attribute__((weak));

namespace {

constexpr const char* kName = "smimea";

smimea::QType to_qtype(const QType& qtype) {
  switch (qtype.getCode()) {
    case QType::ANY:
      return smimea::QType::kAny;
    case QType::SOA:
      return smimea::QType::kSoa;
    case QType::NS:
      return smimea::QType::kNs;
    case QType::SMIMEA:
      return smimea::QType::kSmimea;
    case QType::DS:
      return smimea::QType::kDs;
    default:
      return smimea::QType::kOther;
  }
}

// Collects an answer as ready-made DNSZoneRecords, so pdns does not parse text per record.
// SOA and NS contents are parsed once and shared; SMIMEA RDATA goes in as wire bytes.
class ZoneRecordSink : public smimea::RecordSink {
 public:
  std::vector<DNSZoneRecord> records;
  const DNSName* qname = nullptr;  // lookup(): the name as pdns asked it

  void add_text(std::string_view name, std::string_view qtype, std::uint32_t ttl,
                std::int64_t zone_id, std::string_view content, bool auth) override {
    const uint16_t type = qtype == "SOA" ? QType::SOA : qtype == "DS" ? QType::DS : QType::NS;
    auto& cache = type == QType::SOA ? soa_cache_ : type == QType::DS ? ds_cache_ : ns_cache_;
    auto it = cache.find(content);
    if (it == cache.end()) {
      if (cache.size() > 100000) cache.clear();
      it = cache
               .emplace(std::string(content),
                        DNSRecordContent::mastermake(type, QClass::IN, std::string(content)))
               .first;
    }
    DNSZoneRecord& zr = next(name, zone_id, type, ttl);
    zr.dr.d_content = it->second;
    zr.auth = auth;
  }

  void add_smimea(std::string_view name, std::int64_t zone_id,
                  const smimea::RecordView& rr) override {
    DNSZoneRecord& zr = next(name, zone_id, QType::SMIMEA, rr.ttl);
    wire_.clear();
    wire_.push_back(static_cast<char>(rr.params.usage));
    wire_.push_back(static_cast<char>(rr.params.selector));
    wire_.push_back(static_cast<char>(rr.params.matching_type));
    wire_.append(reinterpret_cast<const char*>(rr.data), rr.size);
    zr.dr.d_content = smimea_content();
  }

  void add_ent(std::string_view name, std::int64_t zone_id) override {
    DNSZoneRecord& zr = next(name, zone_id, QType::ENT, 0);
    zr.dr.d_content = nullptr;
  }

 private:
  DNSZoneRecord& next(std::string_view name, std::int64_t zone_id, uint16_t type,
                      std::uint32_t ttl) {
    DNSZoneRecord& zr = records.emplace_back();
    zr.dr.d_name = qname != nullptr ? *qname : DNSName(std::string(name));
    zr.dr.d_type = type;
    zr.dr.d_class = QClass::IN;
    zr.dr.d_ttl = ttl;
    zr.dr.d_place = DNSResourceRecord::ANSWER;
    zr.domain_id = static_cast<int>(zone_id);
    zr.auth = true;
    return zr;
  }

  // pdns asks for an owner twice per question (see Answerer::find_owner): the second answer
  // shares the records parsed for the first instead of parsing the same RDATA again. Keyed by
  // the whole RDATA, so a hit is always the same record.
  std::shared_ptr<DNSRecordContent> smimea_content() {
    for (const auto& [wire, content] : smimea_cache_) {
      if (wire == wire_) return content;
    }
    if (smimea_cache_.size() >= kSmimeaCacheSize) smimea_cache_.clear();
    auto content = DNSRecordContent::deserialize(root_, QType::SMIMEA, wire_);
    smimea_cache_.emplace_back(wire_, content);
    return content;
  }

  static constexpr std::size_t kSmimeaCacheSize = 16;
  const DNSName root_{"."};  // the parser wants a name; the content does not keep it
  std::map<std::string, std::shared_ptr<DNSRecordContent>, std::less<>> soa_cache_, ns_cache_,
      ds_cache_;
  std::vector<std::pair<std::string, std::shared_ptr<DNSRecordContent>>> smimea_cache_;
  std::string wire_;
};

// The name as text without the final dot, as DNSName::toStringNoDot() makes it, but without
// its character-by-character escaping when no label needs any: pdns makes several lookups
// per question, and the generic conversion was a sixth of the module's CPU per question.
// Anything unusual (the root, escapes) takes the generic path.
void name_text(const DNSName& name, std::string& out) {
  const auto& wire = name.getStorage();
  out.clear();
  std::size_t i = 0;
  while (i < wire.size() && wire[i] != 0) {
    const std::size_t len = static_cast<unsigned char>(wire[i]);
    if (i + 1 + len >= wire.size()) break;
    for (std::size_t j = i + 1; j <= i + len; ++j) {
      const char c = wire[j];
      const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '*';
      if (!plain) {
        out = name.toStringNoDot();
        return;
      }
    }
    if (!out.empty()) out.push_back('.');
    out.append(&wire[i + 1], len);
    i += 1 + len;
  }
  if (out.empty() || i + 1 != wire.size()) out = name.toStringNoDot();
}

class SmimeaBackend : public DNSBackend {
 public:
  explicit SmimeaBackend(const std::string& suffix) {
    setArgPrefix(std::string(kName) + suffix);
    const std::string path = getArg("config");
    auto config = smimea::load_config(path);
    if (!config.ok()) throw PDNSException("smimea: " + config.status().message());
    config_ = std::make_unique<smimea::Config>(std::move(config).value());
    smimea::StoreOptions options;
    options.read_only = true;
    options.busy_timeout_ms = config_->busy_timeout_ms;
    options.cache_kib = config_->cache_kib;
    auto store = smimea::Store::open(config_->database, options);
    if (!store.ok()) throw PDNSException("smimea: " + store.status().message());
    static std::once_flag warned;  // pdns makes an instance per thread and per transfer
    std::call_once(warned, [&] {
      for (const std::string& w : smimea::Store::access_warnings(config_->database)) {
        g_log << Logger::Warning << "[smimea] " << w << std::endl;
      }
    });
    store_ = std::move(store).value();
    answerer_ = std::make_unique<smimea::Answerer>(*store_, *config_);
    dnssec_ = std::make_unique<smimea::pdns_module::DnssecCalls>(*config_, *answerer_);
    transfer_ = std::make_unique<smimea::pdns_module::TransferCalls>(dnssec_->key_store());
  }

  void lookup(const QType& qtype, const DNSName& qdomain, int zoneId,
              DNSPacket* /*pkt_p*/) override {
    reset();
    name_text(qdomain, qname_text_);
    sink_.qname = &qdomain;
    const smimea::Status s = answerer_->lookup(qname_text_, to_qtype(qtype), sink_, zoneId);
    sink_.qname = nullptr;
    if (!s.ok()) {
      reset();
      throw DBException("smimea: lookup " + qname_text_ + ": " + s.message());
    }
  }

  bool get(DNSZoneRecord& zr) override {
    if (listing_) return next_listed(zr);
    if (pos_ >= sink_.records.size()) return false;
    zr = std::move(sink_.records[pos_++]);
    return true;
  }

  bool get(DNSResourceRecord& rr) override {
    DNSZoneRecord zr;
    if (!get(zr)) return false;
    rr.qname = zr.dr.d_name;
    rr.qtype = zr.dr.d_type;
    rr.qclass = zr.dr.d_class;
    rr.ttl = zr.dr.d_ttl;
    rr.content = zr.dr.d_content ? zr.dr.d_content->getZoneRepresentation(true) : "";
    rr.domain_id = zr.domain_id;
    rr.auth = zr.auth;
    return true;
  }

  bool list(const DNSName& target, int /*domain_id*/, bool /*include_disabled*/) override {
    reset();
    // A pull cursor: get() builds one record at a time from one read snapshot, so a zone
    // transfer costs the same memory whatever the zone's size (see ZoneListing).
    auto listing = answerer_->open_transfer(target.toStringNoDot());
    if (!listing.ok()) {
      if (listing.status().is_not_found()) return false;
      throw DBException("smimea: list " + target.toLogString() + ": " + listing.status().message());
    }
    listing_ = std::move(listing).value();
    return true;
  }

  void getAllDomains(std::vector<DomainInfo>* domains, bool /*getSerial*/,
                     bool /*include_disabled*/) override {
    refresh();
    for (const smimea::ZoneEntry& z : answerer_->zones()) {
      // Overlay zones belong to another backend; listing them here would hijack them.
      if (z.zone.mode != smimea::ZoneMode::kAuthoritative) continue;
      domains->push_back(domain_info(z));
    }
  }

  // Exactly the master zones whose serial moved since the last setNotified (or that were
  // never announced). pdns then sends NOTIFY and calls setNotified.
  // pdns's communicator thread asks, and stops pdns on an exception: a store error skips
  // this cycle (logged), and the zones are announced on the next.
  void getUpdatedMasters(std::vector<DomainInfo>& domains,
                         std::unordered_set<DNSName>& /*catalogs*/,
                         CatalogHashMap& /*catalogHashes*/) override {
    if (!refreshed("getUpdatedMasters")) return;
    for (const smimea::ZoneEntry& z : answerer_->zones()) {
      if (z.zone.mode != smimea::ZoneMode::kAuthoritative ||
          z.zone.kind != smimea::ZoneKind::kMaster ||
          z.zone.notified_serial == static_cast<std::int64_t>(z.zone.serial)) {
        continue;
      }
      domains.push_back(domain_info(z));
    }
  }

  void setNotified(uint32_t id, uint32_t serial) override { transfer_->set_notified(id, serial); }

  // TSIG keys in the store (pdnsutil generate-tsig-key, TSIG-ALLOW-AXFR).
  bool getTSIGKey(const DNSName& name, DNSName& algorithm, std::string& content) override {
    return transfer_->get_tsig_key(name, algorithm, content);
  }
  bool getTSIGKeys(std::vector<struct TSIGKey>& keys) override {
    return transfer_->get_tsig_keys(keys);
  }
  bool setTSIGKey(const DNSName& name, const DNSName& algorithm,
                  const std::string& content) override {
    return transfer_->set_tsig_key(name, algorithm, content);
  }
  bool deleteTSIGKey(const DNSName& name) override { return transfer_->delete_tsig_key(name); }

  // Also asked by the communicator thread (NOTIFY): a store error is a logged false.
  bool getDomainInfo(const DNSName& domain, DomainInfo& di, bool /*getSerial*/) override {
    if (!refreshed("getDomainInfo")) return false;
    const smimea::ZoneEntry* z = answerer_->find_zone(domain.toStringNoDot());
    if (z == nullptr || z->zone.mode != smimea::ZoneMode::kAuthoritative) return false;
    di = domain_info(*z);
    return true;
  }

  // DNSSEC: keys and metadata in the store (dnssec_calls.cc).
  bool doesDNSSEC() override { return true; }
  bool getDomainKeys(const DNSName& name, std::vector<KeyData>& keys) override {
    return dnssec_->get_domain_keys(name, keys);
  }
  bool addDomainKey(const DNSName& name, const KeyData& key, int64_t& id) override {
    return dnssec_->add_domain_key(name, key, id);
  }
  bool removeDomainKey(const DNSName& name, unsigned int id) override {
    return dnssec_->remove_domain_key(name, id);
  }
  bool activateDomainKey(const DNSName& name, unsigned int id) override {
    return dnssec_->set_key_active(name, id, true);
  }
  bool deactivateDomainKey(const DNSName& name, unsigned int id) override {
    return dnssec_->set_key_active(name, id, false);
  }
  bool publishDomainKey(const DNSName& name, unsigned int id) override {
    return dnssec_->set_key_published(name, id, true);
  }
  bool unpublishDomainKey(const DNSName& name, unsigned int id) override {
    return dnssec_->set_key_published(name, id, false);
  }
  bool getAllDomainMetadata(const DNSName& name,
                            std::map<std::string, std::vector<std::string>>& meta) override {
    return dnssec_->get_all_domain_metadata(name, meta);
  }
  bool getDomainMetadata(const DNSName& name, const std::string& kind,
                         std::vector<std::string>& meta) override {
    return dnssec_->get_domain_metadata(name, kind, meta);
  }
  bool setDomainMetadata(const DNSName& name, const std::string& kind,
                         const std::vector<std::string>& meta) override {
    return dnssec_->set_domain_metadata(name, kind, meta);
  }
  bool startTransaction(const DNSName& zone, int domain_id) override {
    return dnssec_->start_transaction(zone, domain_id);
  }
  bool commitTransaction() override { return dnssec_->commit_transaction(); }
  bool abortTransaction() override { return dnssec_->abort_transaction(); }
  bool inTransaction() override { return dnssec_->in_transaction(); }
  bool getBeforeAndAfterNamesAbsolute(uint32_t id, const DNSName& qname, DNSName& unhashed,
                                      DNSName& before, DNSName& after) override {
    return dnssec_->get_before_and_after_names_absolute(id, qname, unhashed, before, after);
  }

  std::string directBackendCmd(const std::string& query) override {
    if (query != "status") return "commands: status";
    refresh();
    return "database " + config_->database + "; zones " +
           std::to_string(answerer_->zones().size()) + "; lookups on this instance " +
           std::to_string(answerer_->lookups());
  }

 private:
  void reset() {
    listing_.reset();  // ends a transfer's read transaction
    sink_.records.clear();
    pos_ = 0;
  }

  bool next_listed(DNSZoneRecord& zr) {
    sink_.records.clear();
    auto more = listing_->next(sink_);
    if (!more.ok()) {
      const std::string zone = listing_->zone().zone.name;
      reset();
      throw DBException("smimea: list " + zone + ": " + more.status().message());
    }
    if (!*more) {
      reset();
      return false;
    }
    zr = std::move(sink_.records.front());
    sink_.records.clear();
    return true;
  }

  // A store error fails the call: SERVFAIL for a question.
  void refresh() {
    const smimea::Status s = answerer_->refresh();
    if (!s.ok()) throw DBException("smimea: " + s.message());
  }

  // For the calls where an exception would stop pdns: logs a store error, returns false.
  bool refreshed(const char* call) {
    const smimea::Status s = answerer_->refresh();
    if (!s.ok()) g_log << Logger::Error << "[smimea] " << call << ": " << s.message() << std::endl;
    return s.ok();
  }

  DomainInfo domain_info(const smimea::ZoneEntry& z) {
    DomainInfo di;
    di.zone = DNSName(z.fqdn);
    di.id = static_cast<uint32_t>(z.zone.id);
    di.serial = z.zone.serial;
    di.notified_serial =
        static_cast<uint32_t>(z.zone.notified_serial < 0 ? 0 : z.zone.notified_serial);
    di.kind = z.zone.kind == smimea::ZoneKind::kMaster ? DomainInfo::Master : DomainInfo::Native;
    di.backend = this;
    return di;
  }

  std::unique_ptr<smimea::Config> config_;
  std::unique_ptr<smimea::Store> store_;
  std::unique_ptr<smimea::Answerer> answerer_;
  std::unique_ptr<smimea::pdns_module::DnssecCalls> dnssec_;
  std::unique_ptr<smimea::pdns_module::TransferCalls> transfer_;
  std::unique_ptr<smimea::ZoneListing> listing_;  // between list() and its last get()
  ZoneRecordSink sink_;
  std::size_t pos_ = 0;
  std::string qname_text_;
};

class SmimeaFactory : public BackendFactory {
 public:
  SmimeaFactory() : BackendFactory(kName) {}

  void declareArguments(const std::string& suffix) override {
    declare(suffix, "config", "smimea: path of smimea.yaml", smimea::kDefaultConfigPath);
  }

  DNSBackend* make(const std::string& suffix) override {
    // The module uses pdns's classes directly: their layout is only right for the version
    // whose headers it was compiled with.
    if (&getPDNSVersion != nullptr && getPDNSVersion() != SMIMEA_PDNS_VERSION) {
      throw PDNSException(std::string("smimea: module built for PowerDNS ") + SMIMEA_PDNS_VERSION +
                          " cannot run in " + getPDNSVersion() +
                          "; rebuild it against this version's headers");
    }
    return new SmimeaBackend(suffix);
  }
};

class SmimeaLoader {
 public:
  SmimeaLoader() {
    BackendMakers().report(new SmimeaFactory);
    g_log << Logger::Info << "[smimea] SMIMEA backend module (built for PowerDNS "
          << SMIMEA_PDNS_VERSION << ") loaded" << std::endl;
  }
};

const SmimeaLoader kLoader;

}  // namespace

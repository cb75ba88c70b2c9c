// libsmimeabackend.so: the native PowerDNS backend module (launch=smimea), answering from the
// same core and store as smimea-backend, in process.
//
// PowerDNS makes one backend instance per thread that needs one (section 1.5 of the remote
// backend notes in the README); each instance owns its own store connection, Answerer and
// result buffer, so nothing here is shared between threads except the immutable factory and
// the zone table, which is immutable too (zone_table.h).
// Built against the headers of the exact installed pdns version (see CMakeLists.txt); the
// factory refuses to load into any other version.
#include <cassert>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "pdns/arguments.hh"
#include "pdns/dnsbackend.hh"
#include "pdns/dnsparser.hh"
#include "pdns/dnsrecords.hh"
#include "pdns/logger.hh"
#include "pdns/statbag.hh"
#include "smimea/config.h"
#include "smimea/lookup_metrics.h"
#include "smimea/pdns_semantics.h"

// pdns_server exports this (pdns/version.hh); pdnsutil, which loads modules too, does not:
// declared weak, it is null there.
std::string getPDNSVersion() __attribute__((weak));
// pdns's statistics (auth-main.cc). Weak too: only used in a pdns_server of our version.
extern StatBag S __attribute__((weak));

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
    case QType::PTR:
      return smimea::QType::kPtr;
    case QType::TXT:
      return smimea::QType::kTxt;
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

  void add_text(std::string_view name, smimea::QType qtype, std::uint32_t ttl, std::int64_t zone_id,
                std::string_view content, bool auth) override {
    uint16_t type = QType::NS;
    auto* cache = &ns_cache_;
    switch (qtype) {
      case smimea::QType::kSoa:
        type = QType::SOA;
        cache = &soa_cache_;
        break;
      case smimea::QType::kDs:
        type = QType::DS;
        cache = &ds_cache_;
        break;
      case smimea::QType::kPtr:  // the catalog's
        type = QType::PTR;
        cache = &ptr_cache_;
        break;
      case smimea::QType::kTxt:
        type = QType::TXT;
        cache = &txt_cache_;
        break;
      default:
        assert(qtype == smimea::QType::kNs);
        break;
    }
    auto it = cache->find(content);
    if (it == cache->end()) {
      if (cache->size() > 100000) cache->clear();
      it = cache
               ->emplace(std::string(content),
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
    // pdns asks for an owner twice per question; the Answerer answers the repeat from the
    // first answer's rows (rr.repeat), which this sink has parsed already: share those
    // contents rather than deserializing the same RDATA again. Only lookups keep them (a
    // transfer's records would grow with the zone).
    const std::size_t index = owner_records_++;
    if (rr.repeat && index < owner_contents_.size() && zone_id == owner_zone_ &&
        *rr.owner == owner_) {
      zr.dr.d_content = owner_contents_[index];
      return;
    }
    wire_.clear();
    wire_.push_back(static_cast<char>(rr.params.usage));
    wire_.push_back(static_cast<char>(rr.params.selector));
    wire_.push_back(static_cast<char>(rr.params.matching_type));
    wire_.append(reinterpret_cast<const char*>(rr.data), rr.size);
    zr.dr.d_content = DNSRecordContent::deserialize(root_, QType::SMIMEA, wire_);
    if (qname != nullptr && !rr.repeat) {
      if (index == 0) {
        owner_contents_.clear();
        owner_zone_ = zone_id;
        owner_ = *rr.owner;
      }
      owner_contents_.push_back(zr.dr.d_content);
    }
  }

  // Called before each lookup.
  void start_lookup(const DNSName& name) {
    qname = &name;
    owner_records_ = 0;
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

  const DNSName root_{"."};  // the parser wants a name; the content does not keep it
  std::map<std::string, std::shared_ptr<DNSRecordContent>, std::less<>> soa_cache_, ns_cache_,
      ds_cache_, ptr_cache_, txt_cache_;
  // The SMIMEA contents of the last owner answered afresh (not a repeat), in order, and the
  // number of SMIMEA records in the current lookup's answer so far.
  std::vector<std::shared_ptr<DNSRecordContent>> owner_contents_;
  std::int64_t owner_zone_ = -1;  // and whose they are
  smimea::OwnerHash owner_{};
  std::size_t owner_records_ = 0;
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
    auto calls = smimea::PdnsCalls::open(*config_);
    if (!calls.ok()) throw PDNSException("smimea: " + calls.status().message());
    static std::once_flag warned;  // pdns makes an instance per thread and per transfer
    std::call_once(warned, [&] {
      for (const std::string& w : smimea::PdnsCalls::access_warnings(*config_)) {
        g_log << Logger::Warning << "[smimea] " << w << std::endl;
      }
    });
    smimea::PdnsCalls::watch_expiry(*config_, [](const std::string& message) {
      g_log << Logger::Error << "[smimea] " << message << std::endl;
    });
    calls_ = std::move(calls).value();
  }

  void lookup(const QType& qtype, const DNSName& qdomain, int zoneId,
              DNSPacket* /*pkt_p*/) override {
    reset();
    ++counters_.requests;
    name_text(qdomain, qname_text_);
    sink_.start_lookup(qdomain);
    const smimea::Status s = calls_->lookup(qname_text_, to_qtype(qtype), sink_, zoneId);
    sink_.qname = nullptr;
    if (!s.ok()) {
      reset();
      ++counters_.failures;
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
    auto listing = calls_->list(target.toStringNoDot());
    if (!answered(listing)) return false;
    listing_ = std::move(*listing);
    return true;
  }

  void getAllDomains(std::vector<DomainInfo>* domains, bool /*getSerial*/,
                     bool /*include_disabled*/) override {
    auto zones = calls_->all_domains();
    if (!answered(zones)) return;
    for (const smimea::ZoneInfo& z : *zones) domains->push_back(domain_info(z));
  }

  void getUpdatedMasters(std::vector<DomainInfo>& domains,
                         std::unordered_set<DNSName>& /*catalogs*/,
                         CatalogHashMap& /*catalogHashes*/) override {
    auto zones = calls_->updated_masters();
    if (!answered(zones)) return;
    for (const smimea::ZoneInfo& z : *zones) domains.push_back(domain_info(z));
  }

  void setNotified(uint32_t id, uint32_t serial) override {
    (void)answered(calls_->set_notified(id, serial));
  }

  bool getTSIGKey(const DNSName& name, DNSName& algorithm, std::string& content) override {
    auto key = calls_->tsig_key(name.toStringNoDot(),
                                algorithm.empty() ? std::string() : algorithm.toStringNoDot());
    if (!answered(key)) return false;
    algorithm = DNSName(key->algorithm);
    content = key->secret;
    return true;
  }

  bool getTSIGKeys(std::vector<struct TSIGKey>& keys) override {
    auto stored = calls_->tsig_keys();
    if (!answered(stored)) return false;
    for (const smimea::TsigKey& k : *stored) {
      TSIGKey key;
      key.name = DNSName(k.name);
      key.algorithm = DNSName(k.algorithm);
      key.key = k.secret;
      keys.push_back(std::move(key));
    }
    return true;
  }

  bool setTSIGKey(const DNSName& name, const DNSName& algorithm,
                  const std::string& content) override {
    return answered(
        calls_->set_tsig_key({name.toStringNoDot(), algorithm.toStringNoDot(), content}));
  }

  bool deleteTSIGKey(const DNSName& name) override {
    return answered(calls_->delete_tsig_key(name.toStringNoDot()));
  }

  bool getDomainInfo(const DNSName& domain, DomainInfo& di, bool /*getSerial*/) override {
    auto zone = calls_->domain_info(domain.toStringNoDot());
    if (!answered(zone)) return false;
    di = domain_info(*zone);
    return true;
  }

  bool doesDNSSEC() override { return true; }

  bool getDomainKeys(const DNSName& name, std::vector<KeyData>& keys) override {
    auto stored = calls_->domain_keys(name.toStringNoDot());
    if (!answered(stored)) return false;
    keys.clear();
    for (const smimea::DomainKey& k : *stored) {
      KeyData kd;
      kd.id = static_cast<unsigned int>(k.id);
      kd.flags = k.flags;
      kd.active = k.active;
      kd.published = k.published;
      kd.content = k.content;
      keys.push_back(std::move(kd));
    }
    return true;
  }

  bool addDomainKey(const DNSName& name, const KeyData& key, int64_t& id) override {
    smimea::DomainKey k;
    k.flags = key.flags;
    k.active = key.active;
    k.published = key.published;
    k.content = key.content;
    auto added = calls_->add_domain_key(name.toStringNoDot(), k);
    if (!answered(added)) return false;
    id = *added;
    return true;
  }

  bool removeDomainKey(const DNSName& name, unsigned int id) override {
    return answered(calls_->remove_domain_key(name.toStringNoDot(), id));
  }
  bool activateDomainKey(const DNSName& name, unsigned int id) override {
    return answered(calls_->set_key_active(name.toStringNoDot(), id, true));
  }
  bool deactivateDomainKey(const DNSName& name, unsigned int id) override {
    return answered(calls_->set_key_active(name.toStringNoDot(), id, false));
  }
  bool publishDomainKey(const DNSName& name, unsigned int id) override {
    return answered(calls_->set_key_published(name.toStringNoDot(), id, true));
  }
  bool unpublishDomainKey(const DNSName& name, unsigned int id) override {
    return answered(calls_->set_key_published(name.toStringNoDot(), id, false));
  }

  bool getAllDomainMetadata(const DNSName& name,
                            std::map<std::string, std::vector<std::string>>& meta) override {
    auto stored = calls_->all_domain_metadata(name.toStringNoDot());
    if (!answered(stored)) return false;
    meta = std::move(*stored);
    return true;
  }
  bool getDomainMetadata(const DNSName& name, const std::string& kind,
                         std::vector<std::string>& meta) override {
    auto stored = calls_->domain_metadata(name.toStringNoDot(), kind);
    if (!answered(stored)) return false;
    meta = std::move(*stored);
    return true;
  }
  bool setDomainMetadata(const DNSName& name, const std::string& kind,
                         const std::vector<std::string>& meta) override {
    return answered(calls_->set_domain_metadata(name.toStringNoDot(), kind, meta));
  }

  bool startTransaction(const DNSName& zone, int domain_id) override {
    return answered(calls_->start_transaction(zone.toStringNoDot(), domain_id));
  }
  bool commitTransaction() override { return answered(calls_->commit_transaction()); }
  bool abortTransaction() override { return answered(calls_->abort_transaction()); }
  bool inTransaction() override { return calls_->in_transaction(); }

  bool getBeforeAndAfterNamesAbsolute(uint32_t id, const DNSName& qname, DNSName& unhashed,
                                      DNSName& before, DNSName& after) override {
    auto n = calls_->before_and_after(id, qname.getRawLabels());
    if (!answered(n)) return false;
    // Relative names; DNSBackend::getBeforeAndAfterNames appends the zone. The apex is the root.
    before = n->before.empty() ? DNSName(".") : DNSName(n->before);
    after = n->after.empty() ? DNSName(".") : DNSName(n->after);
    unhashed = before;
    return true;
  }

  std::string directBackendCmd(const std::string& query) override {
    auto text = calls_->backend_command(query, counters_);
    if (!answered(text)) return text.message();
    return std::move(*text);
  }

 private:
  // An outcome of the core's pdns semantics as pdns wants it: true for an answer, false for
  // "no" (an error logged), DBException for "failed".
  template <class T>
  bool answered(const smimea::Outcome<T>& outcome) {
    ++counters_.requests;
    if (outcome.answered()) return true;
    if (outcome.logged()) ++counters_.failures;
    if (outcome.failed()) throw DBException("smimea: " + outcome.message());
    if (outcome.logged()) {
      g_log << Logger::Error << "[smimea] " << outcome.message() << std::endl;
    }
    return false;
  }

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
      ++counters_.failures;
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

  DomainInfo domain_info(const smimea::ZoneInfo& z) {
    DomainInfo di;
    di.zone = DNSName(z.fqdn);
    di.id = static_cast<uint32_t>(z.id);
    di.serial = z.serial;
    di.notified_serial = z.notified_serial;
    di.kind = z.kind == smimea::ZoneKind::kMaster ? DomainInfo::Master : DomainInfo::Native;
    di.backend = this;
    return di;
  }

  std::unique_ptr<smimea::Config> config_;
  std::unique_ptr<smimea::PdnsCalls> calls_;
  smimea::PdnsCalls::Counters counters_;
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

// The core's lookup counters (lookup_metrics.h), in pdns's statistics: `pdns_control show
// smimea-lookups-answer`, pdns's /metrics (pdns_auth_smimea_lookups_answer) and carbon. Each is
// a function pdns calls when it reports; nothing is added to the query path. Declared once per
// process, when pdns_server loads the module: before its threads start (StatBag's maps have no
// lock), and never in pdnsutil or another pdns version (where S or its layout differ).
void declare_statistics() {
  if (&getPDNSVersion == nullptr || &S == nullptr || getPDNSVersion() != SMIMEA_PDNS_VERSION) {
    return;
  }
  struct Stat {
    const char* name;
    const char* help;
    std::uint64_t (*read)();
  };
  static constexpr Stat kStats[] = {
      {"smimea-lookups-answer", "smimea: lookups answered with records",
       [] { return smimea::lookup_counters().lookups[0]; }},
      {"smimea-lookups-nodata", "smimea: lookups of an existing name without records of the type",
       [] { return smimea::lookup_counters().lookups[1]; }},
      {"smimea-lookups-nxdomain", "smimea: lookups of a name in a zone of ours that has nothing",
       [] { return smimea::lookup_counters().lookups[2]; }},
      {"smimea-lookups-not-ours", "smimea: lookups of a name outside our zones",
       [] { return smimea::lookup_counters().lookups[3]; }},
      {"smimea-store-errors", "smimea: lookups that met a store error",
       [] { return smimea::lookup_counters().store_errors; }},
      {"smimea-store-reads", "smimea: owner-name reads of the store",
       [] { return smimea::lookup_counters().store_reads; }},
      {"smimea-store-read-usec", "smimea: microseconds spent in owner-name reads",
       [] { return smimea::lookup_counters().store_read_ns / 1000; }},
  };
  static_assert(static_cast<int>(smimea::LookupResult::kNotOurs) == 3);
  for (const Stat& stat : kStats) {
    auto read = stat.read;
    S.declare(
        stat.name, stat.help, [read](const std::string&) { return read(); }, StatType::counter);
  }
}

class SmimeaLoader {
 public:
  SmimeaLoader() {
    BackendMakers().report(new SmimeaFactory);
    declare_statistics();
    g_log << Logger::Info << "[smimea] SMIMEA backend module (built for PowerDNS "
          << SMIMEA_PDNS_VERSION << ") loaded" << std::endl;
  }
};

const SmimeaLoader kLoader;

}  // namespace

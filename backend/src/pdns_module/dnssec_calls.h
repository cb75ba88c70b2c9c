// The DNSSEC half of the native module: PowerDNS's key, domain-metadata and transaction calls
// over the store (smimea::KeyStore), and getBeforeAndAfterNamesAbsolute for plain NSEC.
// The same semantics as the remote backend's (backend/src/remote/dnssec_handler.cc): a zone the
// store does not have, or an overlay zone, gets false, so that another backend may own it;
// store errors fail the reads that answers depend on (read_failed) and are a logged false
// elsewhere.
//
// One per backend instance, used by one thread at a time, like the instance itself. Key
// material is never logged.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "pdns/dnsbackend.hh"
#include "pdns/dnsname.hh"
#include "smimea/answer.h"
#include "smimea/config.h"
#include "smimea/key_store.h"

namespace smimea::pdns_module {

class DnssecCalls {
 public:
  // Both must outlive this object.
  DnssecCalls(const Config& config, Answerer& answerer);

  bool get_domain_keys(const DNSName& name, std::vector<DNSBackend::KeyData>& keys);
  bool add_domain_key(const DNSName& name, const DNSBackend::KeyData& key, int64_t& id);
  bool remove_domain_key(const DNSName& name, unsigned int id);
  bool set_key_active(const DNSName& name, unsigned int id, bool active);
  bool set_key_published(const DNSName& name, unsigned int id, bool published);

  bool get_all_domain_metadata(const DNSName& name,
                               std::map<std::string, std::vector<std::string>>& meta);
  bool get_domain_metadata(const DNSName& name, const std::string& kind,
                           std::vector<std::string>& meta);
  bool set_domain_metadata(const DNSName& name, const std::string& kind,
                           const std::vector<std::string>& meta);

  bool start_transaction(const DNSName& zone, int domain_id);
  bool commit_transaction();
  bool abort_transaction();
  bool in_transaction() const { return keys_.in_transaction(); }
  // The store connection for pdns's writes, shared with the zone-transfer calls.
  KeyStore& key_store() { return keys_; }

  bool get_before_and_after_names_absolute(uint32_t id, const DNSName& qname, DNSName& unhashed,
                                           DNSName& before, DNSName& after);

 private:
  // Logs failures other than "not our zone" (NotFound, Conflict); returns false.
  bool failed(const char* call, const Status& status) const;
  // For the reads whose false pdns would act on (no keys: the zone served unsigned; no
  // metadata: NSEC instead of NSEC3; no neighbours: an NSEC from the apex to the apex):
  // false for "not our zone" (the store says so, or the zone is not in the table), otherwise
  // throws DBException (SERVFAIL).
  bool read_failed(const char* call, const std::string& zone, const Status& status) const;
  bool refresh();

  Answerer& answerer_;
  KeyStore keys_;
};

}  // namespace smimea::pdns_module

#include "smimea/store.h"

namespace smimea {

NewCertificate make_new_certificate(const Certificate& cert, const MailAddress& addr,
                                    const std::vector<RecordParams>& params, std::uint32_t ttl,
                                    bool lowercase_variant) {
  NewCertificate n;
  n.address = addr.to_string();
  n.domain = addr.domain;
  n.der = cert.der;
  n.fingerprint = cert.fingerprint;
  n.subject = cert.subject;
  n.issuer = cert.issuer;
  n.serial = cert.serial;
  n.not_before = cert.not_before;
  n.not_after = cert.not_after;
  for (const OwnerHash& owner : owner_hashes_for(addr, lowercase_variant)) {
    for (const RecordParams& p : params) {
      n.records.push_back({owner, p, ttl, compute_association(cert, p.selector, p.matching_type)});
    }
  }
  return n;
}

}  // namespace smimea

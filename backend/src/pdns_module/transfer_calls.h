// The zone-transfer half of the native module: the serial last announced with NOTIFY
// (setNotified) and the TSIG keys (getTSIGKey, getTSIGKeys, setTSIGKey, deleteTSIGKey), kept
// in the store through the instance's KeyStore. The same semantics as the remote backend's
// (backend/src/remote/transfer_handler.cc). getUpdatedMasters is in smimea_backend.cc: it
// reads the Answerer's zone table.
//
// One per backend instance, used by one thread at a time. TSIG secrets are never logged.
#pragma once

#include <string>
#include <vector>

#include "pdns/dnsbackend.hh"
#include "pdns/dnsname.hh"
#include "smimea/key_store.h"

namespace smimea::pdns_module {

class TransferCalls {
 public:
  // keys must outlive this object.
  explicit TransferCalls(KeyStore& keys) : keys_(keys) {}

  void set_notified(uint32_t id, uint32_t serial);
  bool get_tsig_key(const DNSName& name, DNSName& algorithm, std::string& content);
  bool get_tsig_keys(std::vector<TSIGKey>& keys);
  bool set_tsig_key(const DNSName& name, const DNSName& algorithm, const std::string& content);
  bool delete_tsig_key(const DNSName& name);

 private:
  KeyStore& keys_;
};

}  // namespace smimea::pdns_module

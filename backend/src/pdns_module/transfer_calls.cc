#include "transfer_calls.h"

#include "pdns/logger.hh"

namespace smimea::pdns_module {

void TransferCalls::set_notified(uint32_t id, uint32_t serial) {
  const Status s = keys_.set_notified(id, serial);
  // pdns logs nothing itself and carries on: the zone is announced again next cycle.
  if (!s.ok()) g_log << Logger::Error << "[smimea] setNotified: " << s.message() << std::endl;
}

bool TransferCalls::get_tsig_key(const DNSName& name, DNSName& algorithm, std::string& content) {
  auto key = keys_.get_tsig_key(name.toStringNoDot());
  if (!key.ok()) {
    if (!key.status().is_not_found()) {
      g_log << Logger::Error << "[smimea] getTSIGKey: " << key.status().message() << std::endl;
    }
    return false;
  }
  const DNSName stored(key->algorithm);
  // A caller asking for one algorithm gets the key only if it is of that algorithm.
  if (!algorithm.empty() && algorithm != stored) return false;
  algorithm = stored;
  content = key->secret;
  return true;
}

bool TransferCalls::get_tsig_keys(std::vector<TSIGKey>& keys) {
  auto stored = keys_.get_tsig_keys();
  if (!stored.ok()) {
    g_log << Logger::Error << "[smimea] getTSIGKeys: " << stored.status().message() << std::endl;
    return false;
  }
  for (const TsigKey& k : *stored) {
    TSIGKey key;
    key.name = DNSName(k.name);
    key.algorithm = DNSName(k.algorithm);
    key.key = k.secret;
    keys.push_back(std::move(key));
  }
  return true;
}

bool TransferCalls::set_tsig_key(const DNSName& name, const DNSName& algorithm,
                                 const std::string& content) {
  const Status s = keys_.set_tsig_key({name.toStringNoDot(), algorithm.toStringNoDot(), content});
  if (!s.ok()) g_log << Logger::Error << "[smimea] setTSIGKey: " << s.message() << std::endl;
  return s.ok();
}

bool TransferCalls::delete_tsig_key(const DNSName& name) {
  const Status s = keys_.delete_tsig_key(name.toStringNoDot());
  if (!s.ok()) g_log << Logger::Error << "[smimea] deleteTSIGKey: " << s.message() << std::endl;
  return s.ok();
}

}  // namespace smimea::pdns_module

#include "smimea/store.h"

namespace smimea {

StoreOptions store_options(const Config& config, StoreUse use) {
  StoreOptions options;
  switch (use) {
    case StoreUse::kServer:
      options.read_only = true;
      options.busy_timeout_ms = config.busy_timeout_ms;
      options.cache_kib = config.cache_kib;
      options.withdraw_expired = config.withdraw_expired;
      break;
    case StoreUse::kWriter:
      // A change is one transaction, an import possibly of millions of certificates: a fixed
      // page cache (SQLite spills to the WAL beyond it) and no memory-mapped reads keep the
      // memory of `cert import` flat whatever its size, and cost it no speed.
      options.busy_timeout_ms = 5000;
      options.cache_kib = 16384;
      options.mmap_bytes = 0;
      options.max_rrset_bytes = config.max_rrset_bytes;
      break;
    case StoreUse::kInspector:
      options.read_only = true;
      options.withdraw_expired = config.withdraw_expired;  // export: what the servers serve
      break;
  }
  return options;
}

}  // namespace smimea

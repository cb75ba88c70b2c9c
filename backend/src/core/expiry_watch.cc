// PdnsCalls::watch_expiry: the thread that moves zone serials as certificates expire, when
// expired certificates are withdrawn. The answers leave an expired certificate out by
// themselves (the store compares records.not_after with the clock); only the serial needs a
// write, so that secondaries transfer the zone again and NOTIFY goes out for master zones.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <mutex>
#include <thread>

#include "smimea/pdns_semantics.h"

namespace smimea {

void PdnsCalls::watch_expiry(const Config& config, std::function<void(const std::string&)> log) {
  if (!config.withdraw_expired) return;
  static std::once_flag started;
  std::call_once(started, [&] {
    KeyStoreOptions options;
    options.busy_timeout_ms = 1000;
    options.withdraw_expired = true;
    // Never destroyed: the thread runs until the process exits.
    std::thread([keys = KeyStore::create(config.database, options), log = std::move(log)] {
      bool failing = false;
      for (;;) {
        const auto now = static_cast<std::int64_t>(std::time(nullptr));
        auto next = keys->move_serials_of_expired(now);
        std::int64_t wake = now + kExpiryRecheckSeconds;
        if (!next.ok()) {
          if (!failing) log("expired-certificates: withdraw: " + next.status().message());
          failing = true;
        } else {
          failing = false;
          // A certificate is served through its notAfter second: it is gone at notAfter + 1.
          if (next->has_value()) wake = std::min(wake, **next + 1);
        }
        std::this_thread::sleep_until(std::chrono::system_clock::from_time_t(wake));
      }
    }).detach();
  });
}

}  // namespace smimea

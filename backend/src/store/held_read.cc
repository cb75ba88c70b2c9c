// The snapshot lookups share (Store::hold_read) and the thread that ends it when it goes
// idle, so that SQLite's checkpoints can empty the WAL while a server has nothing to do.
#include <algorithm>
#include <thread>
#include <vector>

#include "store_impl.h"

namespace smimea {
namespace {

// Started by the first store that holds a snapshot; it then runs until the process exits,
// waking every kReleaseInterval. Stores leave its list when they are destroyed, which waits
// for a round in progress. (pdns creates backend instances after it forks, and
// smimea-backend does not fork.)
class Releaser {
 public:
  static Releaser& instance() {
    static Releaser* releaser = new Releaser;  // never destroyed: its thread outlives main()
    return *releaser;
  }

  void add(Store* store) {
    std::lock_guard<std::mutex> lock(mutex_);
    stores_.push_back(store);
    if (!started_) {
      started_ = true;
      std::thread([this] { run(); }).detach();
    }
  }

  void remove(Store* store) {
    std::lock_guard<std::mutex> lock(mutex_);
    stores_.erase(std::remove(stores_.begin(), stores_.end(), store), stores_.end());
  }

 private:
  [[noreturn]] void run() {
    for (;;) {
      std::this_thread::sleep_for(Store::kReleaseInterval);
      std::lock_guard<std::mutex> lock(mutex_);
      for (Store* s : stores_) s->release_if_stale();
    }
  }

  std::mutex mutex_;
  std::vector<Store*> stores_;
  bool started_ = false;
};

}  // namespace

SqliteStore::~SqliteStore() {
  if (impl_->registered) Releaser::instance().remove(this);
  end_held_read();
}

Status SqliteStore::hold_read(std::chrono::steady_clock::duration max_age) {
  end_held_read();
  SMIMEA_RETURN_IF_ERROR(begin_read());
  impl_->holding = true;
  impl_->held_since = std::chrono::steady_clock::now();
  impl_->held_max_age = max_age;
  if (!impl_->registered) {
    Releaser::instance().add(this);
    impl_->registered = true;
  }
  return Status();
}

void SqliteStore::end_held_read() noexcept {
  if (!impl_->holding) return;
  impl_->holding = false;
  end_read();
}

std::mutex& SqliteStore::held_read_mutex() { return impl_->held_mutex; }

void SqliteStore::release_if_stale() {
  std::unique_lock<std::mutex> lock(impl_->held_mutex, std::try_to_lock);
  if (!lock.owns_lock() || !impl_->holding) return;  // a lookup runs, or nothing is held
  if (std::chrono::steady_clock::now() - impl_->held_since >= impl_->held_max_age) {
    end_held_read();
  }
}

}  // namespace smimea

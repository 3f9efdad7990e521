// A gate that test stores put in front of the commits they hold back on demand (a fault a real store
// cannot make when asked): wait() returns once the gate is open; hold() closes it, release() opens it
// and wakes every commit waiting.
#pragma once

#include <condition_variable>
#include <mutex>

namespace canopy::test {

class CommitGate {
 public:
  void hold() {
    std::lock_guard lock(mutex_);
    held_ = true;
  }
  void release() {
    {
      std::lock_guard lock(mutex_);
      held_ = false;
    }
    opened_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mutex_);
    ++arrived_;
    opened_.wait(lock, [this] { return !held_; });
  }
  // Commits that have reached the gate, waiting at it or passed.
  int arrived() {
    std::lock_guard lock(mutex_);
    return arrived_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable opened_;
  bool held_ = false;
  int arrived_ = 0;
};

}  // namespace canopy::test

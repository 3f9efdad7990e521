// A gate that test stores put in front of the commits they hold back on demand (a fault a real store
// cannot make when asked): wait() returns once the gate is open; hold() closes it, release() opens it
// and wakes every commit waiting, pass(n) lets n more commits through a closed gate.
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
      passes_ = 0;
    }
    opened_.notify_all();
  }
  void pass(int n) {
    {
      std::lock_guard lock(mutex_);
      passes_ += n;
    }
    opened_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mutex_);
    ++arrived_;
    opened_.wait(lock, [this] { return !held_ || passes_ > 0; });
    if (held_) --passes_;
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
  int passes_ = 0;
  int arrived_ = 0;
};

}  // namespace canopy::test

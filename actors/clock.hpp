// The service's clock: the system's, or a manual one that tests move forward to cross billing cycles.
//
// Thread-safe: read by every actor and I/O thread; only the operator's POST /v1/admin/clock moves
// the manual clock, and never backwards.
#pragma once

#include <atomic>
#include <chrono>

#include "domain/time.hpp"

namespace canopy::actors {

class Clock {
 public:
  explicit Clock(bool manual, domain::Timestamp start = 0) : manual_(manual), manual_now_(start) {}

  domain::Timestamp now() const {
    if (manual_) return manual_now_.load(std::memory_order_acquire);
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  }
  bool manual() const { return manual_; }
  // REQUIRES: manual(). Returns false (and changes nothing) if `to` is earlier than now.
  bool advance_to(domain::Timestamp to) {
    auto current = manual_now_.load(std::memory_order_acquire);
    while (to >= current) {
      if (manual_now_.compare_exchange_weak(current, to, std::memory_order_acq_rel)) return true;
    }
    return false;
  }

 private:
  const bool manual_;
  std::atomic<domain::Timestamp> manual_now_;
};

}  // namespace canopy::actors

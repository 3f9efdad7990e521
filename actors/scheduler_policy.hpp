// The org actors' scheduler: CAF's work sharing (one central queue), with a "next" slot per worker.
//
// A single charge is a relay: the gateway wakes the org's actor, which wakes its parent's, which
// wakes the payer's, which asks the writer; the answer relays back down. Under CAF's work sharing
// every hop of the relay goes through the central queue and wakes whichever worker sleeps, so the
// chain ping-pongs between the workers and each hop costs a context switch; and the queue signals its
// condition variable while holding its mutex, so the woken worker blocks again on that mutex at once.
// Profiled under single charges (docs/benchmarks.md), those two were a third of the workers' switches.
//
// Here, as in Go's `runnext` and Tokio's LIFO slot:
// - An actor woken by the job a worker is running runs next on that worker (its slot), without the
//   queue's lock or a wake-up. A second one woken by the same job pushes the first out to the central
//   queue, where an idle worker can take it.
// - A worker runs at most `next_runs_max` slot jobs in a row before it takes from the central queue,
//   so two actors waking each other cannot starve what waits there.
// - The slot is its worker's alone, and no other worker sees it: a job there waits for the job that
//   woke it to end. use_next_slot_scheduler() therefore bounds every run of an actor to
//   `messages_per_run` messages (CAF's default is no bound: an actor whose mailbox keeps filling
//   would hold its slot's job, and the worker, for as long as it does).
// - An actor woken from any other thread than the worker's own (a blocking actor spawned by an
//   actor carries that actor's worker as its context, and so does a response promise delivered
//   from outside) goes to the central queue.
// - The central queue wakes a worker only if one sleeps that no earlier job has woken yet, and after
//   unlocking. A woken worker counts as asleep until it has retaken the lock, so counting sleepers
//   alone signalled it again for nearly every job queued meanwhile: under single charges 221,281
//   signals for 255,695 jobs queued, each a futex call on the gateway's or the writer's thread; now
//   about one job in five signals (docs/benchmarks.md).
//
// Everything else (shutdown, clean-up of queued jobs) is CAF's coordinator<Policy>, unchanged, and
// its worker loop but for its logging (below). Loaded
// by the runtime as the scheduler module (`--scheduler-policy sharing`, the default).
#pragma once

#include <caf/actor_system_config.hpp>
#include <caf/policy/unprofiled.hpp>
#include <caf/logger.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduler/coordinator.hpp>
#include <caf/scheduler/worker.hpp>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <utility>

namespace canopy::actors {

class NextSlotSharing : public caf::policy::unprofiled {
 public:
  // Slot jobs a worker runs in a row before it looks at the central queue.
  static constexpr unsigned next_runs_max = 32;
  // Messages an actor handles in one run before it goes to the back of the central queue (what a
  // job in the slot waits for at most): a batch group's message is ~0.25 ms, a single charge's ~10 us.
  static constexpr std::size_t messages_per_run = 32;

  struct coordinator_data {
    explicit coordinator_data(caf::scheduler::abstract_coordinator*) {}
    std::mutex lock;
    std::condition_variable cv;
    std::deque<caf::resumable*> queue;  // guarded by lock
    std::size_t sleeping = 0;           // workers waiting on cv; guarded by lock
    std::size_t woken = 0;              // signals sent to them not yet answered by a return from the
                                        // wait (at most; a spurious return answers one too); <= sleeping;
                                        // guarded by lock
  };

  // Only its own worker's thread touches it (CAF copies it into each worker before they start).
  struct worker_data {
    explicit worker_data(caf::scheduler::abstract_coordinator*) {}
    caf::resumable* next = nullptr;
    unsigned next_runs = 0;  // slot jobs run since the worker last took from the central queue
  };

  template <class Coordinator>
  void central_enqueue(Coordinator* self, caf::resumable* job) {
    push(d(self), job);
  }

  template <class Worker>
  void external_enqueue(Worker* self, caf::resumable* job) {
    push(d(self->parent()), job);
  }

  // From the job running on this worker: the slot, pushing out whatever held it. From any other
  // thread: the central queue.
  template <class Worker>
  void internal_enqueue(Worker* self, caf::resumable* job) {
    if (running_worker != self) return push(d(self->parent()), job);
    if (auto* pushed_out = std::exchange(d(self).next, job)) push(d(self->parent()), pushed_out);
  }

  // A job that used up its throughput goes behind everything waiting.
  template <class Worker>
  void resume_job_later(Worker* self, caf::resumable* job) {
    push(d(self->parent()), job);
  }

  template <class Worker>
  caf::resumable* dequeue(Worker* self) {
    running_worker = self;  // this thread is `self`'s (set before its first job, and on every dequeue)
    auto& own = d(self);
    if (own.next != nullptr && own.next_runs < next_runs_max) {
      ++own.next_runs;
      return std::exchange(own.next, nullptr);
    }
    own.next_runs = 0;
    auto& central = d(self->parent());
    std::unique_lock guard(central.lock);
    if (own.next != nullptr) {  // ran its slot `next_runs_max` times in a row: the queue goes first
      if (central.queue.empty()) return std::exchange(own.next, nullptr);
      central.queue.push_back(std::exchange(own.next, nullptr));
      caf::resumable* job = pop_front(central);
      const bool wake = central.sleeping > central.woken;
      if (wake) ++central.woken;
      guard.unlock();
      if (wake) central.cv.notify_one();  // the slot's job now waits in the queue: another may take it
      return job;
    }
    while (central.queue.empty()) {
      ++central.sleeping;
      central.cv.wait(guard);
      --central.sleeping;
      // Back from a wake-up, whichever worker it was meant for (a spurious one included: the signal
      // then finds another sleeper, or nobody, and is not counted twice).
      if (central.woken > 0) --central.woken;
    }
    return pop_front(central);
  }

  template <class Worker, class UnaryFunction>
  void foreach_resumable(Worker* self, UnaryFunction f) {
    if (auto* job = std::exchange(d(self).next, nullptr)) f(job);
  }

  template <class Coordinator, class UnaryFunction>
  void foreach_central_resumable(Coordinator* self, UnaryFunction f) {
    auto& central = d(self);
    std::unique_lock guard(central.lock);
    while (!central.queue.empty()) f(pop_front(central));
  }

 private:
  // The worker whose thread this is; null on every other thread.
  static inline thread_local const void* running_worker = nullptr;

  static void push(coordinator_data& central, caf::resumable* job) {
    bool wake = false;
    {
      std::lock_guard guard(central.lock);
      central.queue.push_back(job);
      wake = central.sleeping > central.woken;
      if (wake) ++central.woken;
    }
    // After unlocking: a worker woken under the lock would only block again on it. Each job queued
    // while workers sleep has a woken worker on its way: one woken for an earlier job comes back
    // to the queue after that one, so no job waits while every worker sleeps.
    if (wake) central.cv.notify_one();
  }

  static caf::resumable* pop_front(coordinator_data& central) {
    caf::resumable* job = central.queue.front();
    central.queue.pop_front();
    return job;
  }
};

}  // namespace canopy::actors

// CAF 0.17's worker loop for this policy, as CAF writes it but for one line: before every job CAF
// casts the job to its actor (a cross-cast, `__dynamic_cast` walking the class graph with string
// compares) and stores the actor's id in the logger's thread-local slot, for log lines this build of
// CAF never writes (CAF_LOG_LEVEL is QUIET). Under single charges that was ~2% of all samples, every
// hop of every chain. (An explicit specialization of a member of CAF's template: if a later CAF
// changes the worker, this stops compiling rather than drifting.)
template <>
inline void caf::scheduler::worker<canopy::actors::NextSlotSharing>::run() {
  CAF_SET_LOGGER_SYS(&system());
  for (;;) {
    auto job = policy_.dequeue(this);
    CAF_ASSERT(job != nullptr);
    CAF_ASSERT(job->subtype() != resumable::io_actor);
    policy_.before_resume(this, job);
    auto res = job->resume(this, max_throughput_);
    policy_.after_resume(this, job);
    switch (res) {
      case resumable::resume_later:
        policy_.resume_job_later(this, job);  // the job stays in the loop: its reference is kept
        break;
      case resumable::done:
        policy_.after_completion(this, job);
        intrusive_ptr_release(job);
        break;
      case resumable::awaiting_message:
        intrusive_ptr_release(job);  // it is queued again when a message comes
        break;
      case resumable::shutdown_execution_unit:
        policy_.after_completion(this, job);
        policy_.before_shutdown(this);
        return;
    }
  }
}

namespace canopy::actors {

// Makes `config`'s actor system schedule with NextSlotSharing on `threads` workers, each run of an
// actor bounded to NextSlotSharing::messages_per_run messages.
inline void use_next_slot_scheduler(caf::actor_system_config& config, std::size_t threads) {
  config.set("scheduler.max-threads", threads);
  config.set("scheduler.max-throughput", NextSlotSharing::messages_per_run);
  config.load<caf::scheduler::coordinator<NextSlotSharing>>();
}

}  // namespace canopy::actors

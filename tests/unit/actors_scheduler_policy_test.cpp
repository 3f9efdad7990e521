// Goal: the org actors' scheduler (actors/scheduler_policy.hpp) runs a relay of actors, each waking
// the next, on the worker the relay started on; hands the second actor a job wakes to the central
// queue, where an idle worker takes it; wakes as many sleeping workers as jobs arrive at once for
// them, though it counts the wake-ups in flight; does not let two actors waking each other for ever starve a
// job waiting in the central queue; makes a job in a worker's slot wait for one bounded run of the
// actor that woke it, not its whole mailbox; and queues centrally an actor woken from a thread that
// is not the worker's. A real CAF actor system with that scheduler, configured as the runtime
// configures it.
#include <gtest/gtest.h>

#include <caf/all.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "actors/scheduler_policy.hpp"

namespace canopy::actors {
namespace {

using namespace std::chrono_literals;

// Liveness bound: a wait that takes this long has hung (the property under test is broken).
constexpr auto hung = 20s;

struct System {
  explicit System(std::size_t workers) {
    use_next_slot_scheduler(config, workers);
    config.set("logger.verbosity", caf::atom("quiet"));
    system = std::make_unique<caf::actor_system>(config);
  }
  caf::actor_system_config config;
  std::unique_ptr<caf::actor_system> system;
};

// CAF 0.17 starts an actor whose function takes nothing but `self` by dereferencing a null pointer
// (UBSan: "reference binding to null pointer" in init_fun_factory), so the lambdas here are handed
// to a function that takes them as its argument.
template <class Make>
caf::behavior made_by(caf::event_based_actor* self, Make make) {
  return make(self);
}

template <caf::spawn_options Options = caf::no_spawn_options, class Make>
caf::actor spawn_with(caf::actor_system& system, Make make) {
  return system.spawn<Options>(made_by<Make>, std::move(make));
}

// One hop of a relay: notes the thread it ran on, then wakes the next hop (or ends the relay).
caf::behavior relay_hop(caf::event_based_actor* self, caf::actor next, std::vector<std::thread::id>* threads,
                        std::promise<void>* done) {
  return {[=](int hop) {
    (*threads)[static_cast<std::size_t>(hop)] = std::this_thread::get_id();
    if (next) {
      self->send(next, hop + 1);
      // Still busy after waking the next hop: long enough for an idle worker to take it, if it were
      // in the central queue.
      std::this_thread::sleep_for(2ms);
    } else {
      done->set_value();
    }
  }};
}

TEST(NextSlotSharing, ARelayOfActorsRunsOnTheWorkerItStartedOn) {
  constexpr int hops = 12;  // fewer than NextSlotSharing::next_runs_max: no hop goes back to the queue
  std::vector<std::thread::id> threads(hops);
  std::promise<void> done;
  System sys(2);  // after what its actors use: it waits for them as it goes
  caf::actor next;
  // Lazy: an actor's first run would otherwise wait in the central queue, for either worker.
  for (int i = 0; i < hops; ++i) next = sys.system->spawn<caf::lazy_init>(relay_hop, next, &threads, &done);
  caf::anon_send(next, 0);  // from outside the scheduler: through the central queue, to either worker
  ASSERT_EQ(done.get_future().wait_for(hung), std::future_status::ready);
  for (int i = 1; i < hops; ++i) EXPECT_EQ(threads[static_cast<std::size_t>(i)], threads[0]) << "hop " << i;
}

// Two actors that wait for each other: they finish only if they run at the same time, on two workers.
struct Meeting {
  // The behaviour of each of the two.
  caf::behavior attendee() {
    return {[this](int) {
      arrive();
      if (finished.fetch_add(1) == 1) both.set_value();
    }};
  }
  // Whether both have run, at the same time or not, within the liveness bound.
  bool ended() { return ended_.wait_for(hung) == std::future_status::ready; }
  // Whether the first to arrive gave up waiting for the other: they did not run at the same time.
  bool missed() {
    std::lock_guard lock(mutex);
    return missed_;
  }

 private:
  void arrive() {
    std::unique_lock lock(mutex);
    if (++arrived == 2) cv.notify_all();
    // Shorter than the liveness bound, so a miss is seen as one (the other then runs after it).
    if (!cv.wait_for(lock, hung / 4, [&] { return arrived == 2; })) missed_ = true;
  }

  std::mutex mutex;
  std::condition_variable cv;
  int arrived = 0;
  bool missed_ = false;
  std::promise<void> both;
  std::future<void> ended_ = both.get_future();
  std::atomic<int> finished{0};
};

TEST(NextSlotSharing, ASecondActorWokenByOneJobGoesToTheQueueForAnIdleWorker) {
  Meeting meeting;
  System sys(2);
  auto attendee = [&](caf::event_based_actor*) { return meeting.attendee(); };
  auto first = spawn_with(*sys.system, attendee);
  auto second = spawn_with(*sys.system, attendee);
  auto fan_out = spawn_with(*sys.system, [=](caf::event_based_actor* self) -> caf::behavior {
    return {[=](int) {
      self->send(first, 1);   // into this worker's slot...
      self->send(second, 1);  // ...pushed out to the queue by this one, for the other worker
    }};
  });
  caf::anon_send(fan_out, 0);
  ASSERT_TRUE(meeting.ended());
  EXPECT_FALSE(meeting.missed()) << "the two actors never ran at the same time";
}

TEST(NextSlotSharing, TwoJobsQueuedAtOnceFromOutsideWakeBothSleepingWorkers) {
  Meeting meeting;
  System sys(2);
  auto attendee = [&](caf::event_based_actor*) { return meeting.attendee(); };
  auto first = spawn_with<caf::lazy_init>(*sys.system, attendee);
  auto second = spawn_with<caf::lazy_init>(*sys.system, attendee);
  std::this_thread::sleep_for(50ms);  // both workers asleep by now
  // Back to back: the second arrives while the worker woken for the first is still on its way, and
  // must wake the other one (the first job blocks its worker until the second runs).
  caf::anon_send(first, 1);
  caf::anon_send(second, 1);
  ASSERT_TRUE(meeting.ended());
  EXPECT_FALSE(meeting.missed()) << "the second job waited for the first worker: the other one was never woken";
}

TEST(NextSlotSharing, TwoActorsWakingEachOtherDoNotStarveTheQueue) {
  std::atomic<bool> stop{false};
  std::atomic<long> volleys{0};
  std::promise<void> referee_ran;
  System sys(1);  // one worker: only the slot's budget lets the queued job in
  auto player = [&](caf::event_based_actor* self) -> caf::behavior {
    return {[&, self](caf::actor other) {
      volleys.fetch_add(1, std::memory_order_relaxed);
      if (!stop.load()) self->send(other, caf::actor_cast<caf::actor>(self));
    }};
  };
  auto ping = spawn_with(*sys.system, player);
  auto pong = spawn_with(*sys.system, player);
  caf::anon_send(ping, pong);
  while (volleys.load() < 1000) std::this_thread::yield();  // the rally is on
  auto referee = spawn_with(*sys.system, [&](caf::event_based_actor*) -> caf::behavior {
    return {[&](int) {
      stop = true;
      referee_ran.set_value();
    }};
  });
  caf::anon_send(referee, 0);
  const bool ran = referee_ran.get_future().wait_for(hung) == std::future_status::ready;
  stop = true;  // end the rally either way, so the system can shut down
  EXPECT_TRUE(ran) << "the queued job never ran";
}

TEST(NextSlotSharing, AJobInTheSlotWaitsForOneRunOfTheActorThatWokeItNotItsWholeMailbox) {
  constexpr int messages = 4 * static_cast<int>(NextSlotSharing::messages_per_run);
  std::atomic<int> handled{0};
  std::promise<int> handled_when_woken_ran;
  System sys(2);
  auto woken = spawn_with<caf::lazy_init>(*sys.system, [&](caf::event_based_actor*) -> caf::behavior {
    return {[&](int) { handled_when_woken_ran.set_value(handled.load()); }};
  });
  auto waker = spawn_with<caf::lazy_init>(*sys.system, [&, woken](caf::event_based_actor* self) -> caf::behavior {
    return {[&, self, woken](int i) {
      if (i == 0) self->send(woken, 1);  // into this worker's slot
      std::this_thread::sleep_for(1ms);  // each message takes a while: the mailbox outlasts a run
      handled.fetch_add(1);
    }};
  });
  for (int i = 0; i < messages; ++i) caf::anon_send(waker, i);
  auto result = handled_when_woken_ran.get_future();
  ASSERT_EQ(result.wait_for(hung), std::future_status::ready);
  EXPECT_LE(result.get(), static_cast<int>(NextSlotSharing::messages_per_run))
      << "the woken actor waited past one run of the actor that woke it";
}

TEST(NextSlotSharing, AnActorWokenFromAnotherThreadGoesToTheQueue) {
  std::promise<void> ran;
  System sys(2);
  auto target = spawn_with<caf::lazy_init>(*sys.system, [&](caf::event_based_actor*) -> caf::behavior {
    return {[&](int) { ran.set_value(); }};
  });
  // A blocking actor spawned by an actor carries that actor's worker as its context, so its sends
  // reach that worker's exec_later from its own thread.
  auto spawner = spawn_with(*sys.system, [target](caf::event_based_actor* self) -> caf::behavior {
    return {[self, target](int) {
      self->spawn(
          [](caf::blocking_actor* blocking, caf::actor to) {
            std::this_thread::sleep_for(50ms);  // both workers asleep by now
            blocking->send(to, 1);
          },
          target);
    }};
  });
  caf::anon_send(spawner, 0);
  const bool ran_in_time = ran.get_future().wait_for(hung) == std::future_status::ready;
  if (!ran_in_time) {  // keep both workers busy a while, so each looks at its slot again and the system can stop
    for (int i = 0; i < 2; ++i) {
      caf::anon_send(spawn_with(*sys.system, [](caf::event_based_actor*) -> caf::behavior {
        return {[](int) { std::this_thread::sleep_for(20ms); }};
      }), 0);
    }
  }
  EXPECT_TRUE(ran_in_time) << "the woken actor was left in a sleeping worker's slot";
}

}  // namespace
}  // namespace canopy::actors

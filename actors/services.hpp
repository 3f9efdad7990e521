// What every actor and the gateway share: the actor system, the directory, the writer, the clock,
// the options, the store (read-only outside the writer) and the payment provider.
//
// Built once by Runtime (runtime.hpp) and outliving every actor.
#pragma once

#include <caf/all.hpp>

#include <atomic>
#include <cstdint>
#include <vector>

#include "actors/clock.hpp"
#include "actors/directory.hpp"
#include "actors/payment_provider.hpp"
#include "actors/writer.hpp"
#include "config/options.hpp"
#include "persistence/store.hpp"

namespace canopy::actors {

// Outgoing email, counted by the mailer (net/mailer.hpp) and shown in /metrics.
struct MailStats {
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> retried{0};
  std::atomic<std::uint64_t> failed{0};  // given up after the last attempt
};

class Services {
 public:
  Services(caf::actor_system& actor_system, const config::Options& opts, persistence::Store& storage,
           PaymentProvider& provider)
      : system(actor_system),
        options(opts),
        store(storage),
        payments(provider),
        clock(opts.clock == config::ClockKind::manual) {}

  caf::actor_system& system;
  const config::Options& options;
  persistence::Store& store;
  PaymentProvider& payments;
  Clock clock;
  Directory directory;
  caf::actor writer;
  WriterStats writer_stats;
  AlertListener alert_listener;
  caf::actor registry;
  // Delivers invitation email (net/mailer.hpp); set by the server before it accepts connections.
  caf::actor mailer;
  MailStats mail_stats;
  // Events the org actors hold for accepted ids the writer has not indexed yet (org_actor.cpp), for
  // /metrics: each until the checkpoint that indexes its id (actors/index_watchers.hpp).
  std::atomic<std::uint64_t> unindexed_events_held{0};
  // Other long-lived actors (e.g. the demo's trickle), stopped by Runtime::shutdown. Touched only by
  // the thread that starts and stops the runtime.
  std::vector<caf::actor> background;
};

}  // namespace canopy::actors

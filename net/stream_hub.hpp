// Fan-out of org changes to WebSocket subscribers, coalesced.
//
// Org actors publish every committed change to the directory, which tells the hub the org changed
// (any thread, cheap: a set insert, skipped entirely while nobody subscribes). Every
// limits::stream_coalesce_window the hub takes the orgs that changed and hands each subscriber of
// each one the org's latest snapshot, so a subscriber hears at most once per org per window, and
// always the newest state ("latest state wins"). The hub never waits on a subscriber: each has a
// bounded queue of its own (ws_session.hpp).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "actors/clock.hpp"
#include "actors/directory.hpp"

namespace canopy::net {

class StreamSubscriber {
 public:
  virtual ~StreamSubscriber() = default;
  // The org changed; `org` is its newest snapshot. Called from the hub's timer; must not block.
  virtual void on_change(const actors::OrgPtr& org) = 0;
  // An alert of a subscribed org (not coalesced: each one is pushed).
  virtual void on_alert(const domain::Alert& alert) = 0;
  // The server is shutting down: close with "going away".
  virtual void on_shutdown() = 0;
};

class StreamHub {
 public:
  StreamHub(actors::Directory& directory, const actors::Clock& clock, boost::asio::io_context& ioc);

  // Starts the coalescing timer.
  void start();
  // Stops the timer and tells every subscriber the server is going away.
  void shutdown();

  // Any thread.
  void changed(domain::OrgId org);
  // Committed alerts (from the writer's thread): each goes to the subscribers of its org.
  void alerts(const std::vector<domain::Alert>& alerts);
  void subscribe(const std::shared_ptr<StreamSubscriber>& subscriber, domain::OrgId org);
  void unsubscribe(const StreamSubscriber* subscriber, domain::OrgId org);
  // Drops the connection and its subscriptions to `orgs` (it closed).
  void remove(const StreamSubscriber* subscriber, const std::unordered_set<domain::OrgId>& orgs);
  // Registers a connection (for shutdown) without subscribing it to anything.
  void attach(const std::shared_ptr<StreamSubscriber>& subscriber);

  std::size_t connections() const;

 private:
  void arm();
  void tick();

  actors::Directory& directory_;
  const actors::Clock& clock_;
  domain::Cycle cycle_ = 0;  // a new cycle changes every org's view (spend 0): all are pushed
  boost::asio::steady_timer timer_;
  mutable std::mutex mutex_;
  std::unordered_map<domain::OrgId, std::unordered_map<const StreamSubscriber*, std::weak_ptr<StreamSubscriber>>> by_org_;
  std::unordered_map<const StreamSubscriber*, std::weak_ptr<StreamSubscriber>> connections_;
  std::unordered_set<domain::OrgId> dirty_;
  std::atomic<std::size_t> subscriptions_{0};
  bool stopped_ = false;
};

}  // namespace canopy::net

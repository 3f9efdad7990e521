#include "net/stream_hub.hpp"

#include "config/limits.hpp"

namespace canopy::net {

StreamHub::StreamHub(actors::Directory& directory, const actors::Clock& clock, boost::asio::io_context& ioc)
    : directory_(directory), clock_(clock), cycle_(domain::cycle_of(clock.now())), timer_(ioc) {}

void StreamHub::start() { arm(); }

void StreamHub::arm() {
  timer_.expires_after(limits::stream_coalesce_window);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    tick();
    arm();
  });
}

void StreamHub::changed(domain::OrgId org) {
  if (subscriptions_.load(std::memory_order_relaxed) == 0) return;
  std::lock_guard lock(mutex_);
  if (by_org_.count(org)) dirty_.insert(org);
}

void StreamHub::alerts(const std::vector<domain::Alert>& alerts) {
  if (subscriptions_.load(std::memory_order_relaxed) == 0) return;
  for (const auto& alert : alerts) {
    std::vector<std::shared_ptr<StreamSubscriber>> subs;
    {
      std::lock_guard lock(mutex_);
      auto it = by_org_.find(alert.org);
      if (it == by_org_.end()) continue;
      for (const auto& [raw, weak] : it->second) {
        if (auto s = weak.lock()) subs.push_back(std::move(s));
      }
    }
    for (const auto& s : subs) s->on_alert(alert);
  }
}

void StreamHub::tick() {
  std::unordered_set<domain::OrgId> dirty;
  std::vector<std::pair<domain::OrgId, std::vector<std::shared_ptr<StreamSubscriber>>>> work;
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    // Reads show a new cycle before any write rolls an org over: push every subscribed org's new view.
    if (const auto cycle = domain::cycle_of(clock_.now()); cycle != cycle_) {
      cycle_ = cycle;
      for (const auto& [org, subs] : by_org_) dirty_.insert(org);
    }
    if (dirty_.empty()) return;
    dirty.swap(dirty_);
    for (const auto org : dirty) {
      auto it = by_org_.find(org);
      if (it == by_org_.end()) continue;
      std::vector<std::shared_ptr<StreamSubscriber>> subs;
      subs.reserve(it->second.size());
      for (const auto& [raw, weak] : it->second) {
        if (auto s = weak.lock()) subs.push_back(std::move(s));
      }
      work.emplace_back(org, std::move(subs));
    }
  }
  // Outside our lock: the snapshot read takes the directory's.
  for (const auto& [id, subs] : work) {
    const actors::OrgPtr org = directory_.org(id);
    if (!org) continue;
    for (const auto& s : subs) s->on_change(org);
  }
}

void StreamHub::subscribe(const std::shared_ptr<StreamSubscriber>& subscriber, domain::OrgId org) {
  std::lock_guard lock(mutex_);
  if (by_org_[org].emplace(subscriber.get(), subscriber).second) subscriptions_.fetch_add(1, std::memory_order_relaxed);
  connections_.emplace(subscriber.get(), subscriber);
}

void StreamHub::unsubscribe(const StreamSubscriber* subscriber, domain::OrgId org) {
  std::lock_guard lock(mutex_);
  auto it = by_org_.find(org);
  if (it == by_org_.end()) return;
  if (it->second.erase(subscriber)) subscriptions_.fetch_sub(1, std::memory_order_relaxed);
  if (it->second.empty()) by_org_.erase(it);
}

void StreamHub::remove(const StreamSubscriber* subscriber, const std::unordered_set<domain::OrgId>& orgs) {
  std::lock_guard lock(mutex_);
  for (const auto org : orgs) {
    auto it = by_org_.find(org);
    if (it == by_org_.end()) continue;
    if (it->second.erase(subscriber)) subscriptions_.fetch_sub(1, std::memory_order_relaxed);
    if (it->second.empty()) by_org_.erase(it);
  }
  connections_.erase(subscriber);
}

void StreamHub::attach(const std::shared_ptr<StreamSubscriber>& subscriber) {
  std::lock_guard lock(mutex_);
  if (!stopped_) connections_.emplace(subscriber.get(), subscriber);
}

std::size_t StreamHub::connections() const {
  std::lock_guard lock(mutex_);
  return connections_.size();
}

void StreamHub::shutdown() {
  std::vector<std::shared_ptr<StreamSubscriber>> all;
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    for (const auto& [raw, weak] : connections_) {
      if (auto s = weak.lock()) all.push_back(std::move(s));
    }
  }
  timer_.cancel();
  for (const auto& s : all) s->on_shutdown();
}

}  // namespace canopy::net

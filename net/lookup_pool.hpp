// Threads for the blocking lookups a request may need (the DNS lookup that vets a webhook's URL), so
// that none runs on the I/O thread: a resolver that takes its full timeout (5 s) there held every
// connection of the server for as long.
//
// A handler hands the blocking part of its work here and answers from the pool's thread (`respond`
// may be called from any thread). limits::lookup_threads lookups run at once; more wait their turn,
// which slows only the requests that need a lookup.
#pragma once

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <functional>
#include <utility>

#include "config/limits.hpp"

namespace canopy::net {

class LookupPool {
 public:
  LookupPool() : pool_(limits::lookup_threads) {}
  // Jobs not started yet are dropped; those running finish first (their answers go to connections
  // that are closing).
  ~LookupPool() {
    pool_.stop();
    pool_.join();
  }
  LookupPool(const LookupPool&) = delete;
  LookupPool& operator=(const LookupPool&) = delete;

  void run(std::function<void()> job) { boost::asio::post(pool_, std::move(job)); }

 private:
  boost::asio::thread_pool pool_;
};

}  // namespace canopy::net

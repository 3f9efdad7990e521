// Runtime: everything `canopy serve` runs besides the network. Opens the store, recovers it, loads the
// directory, starts the CAF actor system, the persistence writer and the registry; on shutdown writes
// a final checkpoint and stops the actors.
//
// Owned by main; every Services reference handed out lives as long as the Runtime.
#pragma once

#include <memory>
#include <string>

#include "actors/services.hpp"

namespace canopy::actors {

class Runtime {
 public:
  struct Started;
  // On failure returns null and sets `error` to a one-line reason. `generated_token` is set when a
  // new operator token was made (first start without one configured): print it once.
  static std::unique_ptr<Runtime> start(const config::Options& options, std::string& error,
                                        std::string& generated_token);
  // The same on a store the caller opened (tests wrap LMDB to count commits or inject faults).
  static std::unique_ptr<Runtime> start(const config::Options& options, std::unique_ptr<persistence::Store> store,
                                        std::string& error, std::string& generated_token);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  Services& services() { return *services_; }
  std::uint64_t recovered_records() const { return recovered_records_; }
  // Blocks until everything acknowledged is committed with a final checkpoint, then stops actors.
  void shutdown();

 private:
  Runtime() = default;

  std::unique_ptr<persistence::Store> store_;
  std::unique_ptr<BuiltinPaymentProvider> payments_;
  std::unique_ptr<caf::actor_system_config> caf_config_;
  std::unique_ptr<caf::actor_system> system_;
  std::unique_ptr<Services> services_;
  std::uint64_t recovered_records_ = 0;
  bool stopped_ = false;
};

}  // namespace canopy::actors

// Setup phase of canopy-loadgen: creates the owner user and the planned forest on the server.
//
// Runs on the calling thread with its own io_context. One connection creates the roots back to back
// (the server creates one root per owner at a time); --setup-connections more, each a coroutine, take
// the next tree whose root exists and fill it in order (grant, sub-orgs parent first, then spending
// limits). Trees are independent, so those connections never wait on each other and the server sees
// as many concurrent writes as there are connections.
// Stops at the first refused request: a half-made forest is reported, never used.
#pragma once

#include <cstddef>
#include <string>

#include "bench/loadgen_forest.hpp"
#include "bench/loadgen_options.hpp"

namespace canopy::loadgen {

struct SetupReport {
  std::size_t roots = 0;
  std::size_t sub_orgs = 0;
  std::size_t grants = 0;
  std::size_t limits = 0;
  std::size_t requests = 0;
  std::size_t connections = 0;
  double seconds = 0;
  std::string error;  // empty on success
};

// Fills forest.owner_user_id and every forest.orgs[i].id.
// REQUIRES: forest comes from plan_forest(options); options.operator_token is set.
// run_tag makes names and the owner's email unique to this run.
SetupReport run_setup(const Options& options, const Target& target, Forest& forest, const std::string& run_tag);

}  // namespace canopy::loadgen

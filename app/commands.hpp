// The long-running command: `canopy serve`.
#pragma once

#include "config/options.hpp"

namespace canopy::app {

// Runs until SIGTERM or SIGINT; returns the process exit code.
int serve(const config::Options& options);

}  // namespace canopy::app

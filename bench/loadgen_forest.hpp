// The org forest a load test runs against: its shape, the ids the server gave it, and a text file
// to keep it between runs.
//
// Built by plan_forest() (shape only), filled with ids by the setup phase, or read back whole by
// load_forest(). Read-only once the load phase starts, shared by every thread.
//
// File format (one record per line, '#' starts a comment):
//   owner <user_id>
//   org <org_id> <parent_org_id or -> <level> <limited 0|1>
// Parents come before their children; a line with parent '-' starts a new tree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/loadgen_options.hpp"

namespace canopy::loadgen {

inline constexpr std::size_t forest_orgs_max = 10'000'000;  // bounds a loaded file
inline constexpr std::size_t id_bytes_max = 128;

struct ForestOrg {
  std::string id;             // empty until the server created it
  std::int64_t parent = -1;   // index in Forest::orgs, -1 for a root
  std::uint32_t level = 0;    // 0 for a root
  bool limited = false;       // gets a monthly spending limit
};

struct Forest {
  std::string owner_user_id;
  std::vector<ForestOrg> orgs;       // tree by tree, each root first, every parent before its children
  std::vector<std::size_t> roots;    // index of each tree's root in orgs, ascending

  // The orgs of tree t are orgs[tree_begin(t), tree_end(t)).
  std::size_t tree_begin(std::size_t t) const { return roots[t]; }
  std::size_t tree_end(std::size_t t) const { return t + 1 < roots.size() ? roots[t + 1] : orgs.size(); }
  std::size_t limited_count() const;
  std::vector<std::size_t> orgs_per_level() const;
};

// Ids we put into URLs and JSON unescaped: the server's ids are opaque, but must be this tame.
bool is_safe_id(std::string_view id);

// The shape from --roots, --orgs-per-root, --depth, --limited-fraction and --seed; no ids yet.
// Each new org's parent is drawn uniformly from the orgs of its tree already above the depth limit,
// which gives trees of mixed width and depth, the same for the same seed.
Forest plan_forest(const Options& options);

// Empty string on success, else a one-line reason.
std::string save_forest(const Forest& forest, const std::string& path);

struct LoadedForest {
  std::optional<Forest> forest;
  std::string error;
};
LoadedForest load_forest(const std::string& path);

}  // namespace canopy::loadgen

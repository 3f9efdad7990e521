#include "bench/loadgen_forest.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "bench/loadgen_random.hpp"

namespace canopy::loadgen {

bool is_safe_id(std::string_view id) {
  return !id.empty() && id.size() <= id_bytes_max && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
  });
}

std::size_t Forest::limited_count() const {
  return static_cast<std::size_t>(std::count_if(orgs.begin(), orgs.end(), [](const ForestOrg& o) { return o.limited; }));
}

std::vector<std::size_t> Forest::orgs_per_level() const {
  std::vector<std::size_t> counts;
  for (const auto& org : orgs) {
    if (counts.size() <= org.level) counts.resize(org.level + 1, 0);
    ++counts[org.level];
  }
  return counts;
}

Forest plan_forest(const Options& options) {
  Forest forest;
  forest.orgs.reserve(std::size_t{options.roots} * options.orgs_per_root);
  std::vector<std::size_t> open_parents;  // orgs of the current tree that may still get children
  for (std::uint32_t t = 0; t < options.roots; ++t) {
    SplitMix64 rng{options.seed * 0x100000001b3ULL + t};
    const std::size_t root = forest.orgs.size();
    forest.roots.push_back(root);
    forest.orgs.push_back(ForestOrg{{}, -1, 0, false});
    open_parents.assign(1, root);
    for (std::uint32_t i = 1; i < options.orgs_per_root; ++i) {
      const std::size_t parent = open_parents[rng.below(open_parents.size())];
      const std::uint32_t level = forest.orgs[parent].level + 1;
      const bool limited = rng.unit() < options.limited_fraction;
      forest.orgs.push_back(ForestOrg{{}, static_cast<std::int64_t>(parent), level, limited});
      if (level < options.depth) open_parents.push_back(forest.orgs.size() - 1);
    }
  }
  return forest;
}

std::string save_forest(const Forest& forest, const std::string& path) {
  std::ofstream out{path, std::ios::trunc};
  if (!out) return "cannot write " + path;
  out << "# canopy-loadgen forest v1: org <id> <parent id or -> <level> <limited 0|1>\n";
  out << "owner " << forest.owner_user_id << "\n";
  for (const auto& org : forest.orgs) {
    const std::string& parent = org.parent < 0 ? std::string{"-"} : forest.orgs[static_cast<std::size_t>(org.parent)].id;
    out << "org " << org.id << ' ' << parent << ' ' << org.level << ' ' << (org.limited ? 1 : 0) << "\n";
  }
  out.flush();
  return out ? std::string{} : "error while writing " + path;
}

namespace {

// Reads one "org ..." line into forest; empty string or the reason it is wrong.
std::string read_org_line(std::istringstream& fields, Forest& forest,
                          std::unordered_map<std::string, std::size_t>& index_of) {
  std::string id, parent;
  std::uint32_t level = 0;
  int limited = 0;
  if (!(fields >> id >> parent >> level >> limited) || !is_safe_id(id)) return "malformed org line";
  if (index_of.count(id) != 0) return "duplicate org " + id;
  ForestOrg org{id, -1, level, limited != 0};
  if (parent == "-") {
    forest.roots.push_back(forest.orgs.size());
  } else {
    const auto it = index_of.find(parent);
    if (it == index_of.end() || forest.roots.empty() || it->second < forest.roots.back())
      return "parent " + parent + " is not earlier in the same tree";
    org.parent = static_cast<std::int64_t>(it->second);
  }
  index_of.emplace(id, forest.orgs.size());
  forest.orgs.push_back(std::move(org));
  return {};
}

}  // namespace

LoadedForest load_forest(const std::string& path) {
  std::ifstream in{path};
  if (!in) return {std::nullopt, "cannot read " + path};
  Forest forest;
  std::unordered_map<std::string, std::size_t> index_of;
  std::string line;
  std::size_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.empty() || line.front() == '#') continue;
    if (forest.orgs.size() >= forest_orgs_max) return {std::nullopt, path + ": more than 10 million orgs"};
    std::istringstream fields{line};
    std::string kind;
    fields >> kind;
    std::string error;
    if (kind == "owner") {
      fields >> forest.owner_user_id;
    } else if (kind == "org") {
      error = read_org_line(fields, forest, index_of);
    } else {
      error = "unknown record '" + kind + "'";
    }
    if (!error.empty()) return {std::nullopt, path + ":" + std::to_string(line_number) + ": " + error};
  }
  if (forest.orgs.empty()) return {std::nullopt, path + ": no orgs"};
  return {std::move(forest), {}};
}

}  // namespace canopy::loadgen

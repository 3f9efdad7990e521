// canopy: serve | check | backup | version (CONTRACT.md "Command line").
#include <cstdio>
#include <cstdlib>

#include "app/commands.hpp"
#include "config/options.hpp"
#include "persistence/recovery.hpp"
#include "persistence/store.hpp"

namespace {

using namespace canopy;

// `canopy check DATA_DIR`: the offline audit; exit 1 on any difference.
int check(const config::Options& options) {
  persistence::Status status;
  auto store = persistence::open_lmdb_store(options.target_dir, persistence::LmdbOptions::reading(), status);
  if (!store) {
    std::fprintf(stderr, "canopy check: cannot open %s: %s\n", options.target_dir.c_str(), status.message.c_str());
    return 2;
  }
  persistence::AuditResult result;
  status = persistence::audit(*store, result);
  if (!status.ok()) {
    std::fprintf(stderr, "canopy check: %s\n", status.message.c_str());
    return 1;
  }
  for (const auto& problem : result.problems) std::printf("DIFFERENCE %s\n", problem.c_str());
  if (result.base_seq > 0) {
    std::printf("checked the audit base (the trimmed journal, records 1-%llu) and %llu records after it, ",
                static_cast<unsigned long long>(result.base_seq), static_cast<unsigned long long>(result.records));
  } else {
    std::printf("checked %llu records, ", static_cast<unsigned long long>(result.records));
  }
  std::printf("%llu organizations: %s\n", static_cast<unsigned long long>(result.orgs),
              result.problems.empty() ? "consistent" : "INCONSISTENT");
  return result.problems.empty() ? 0 : 1;
}

// `canopy backup DATA_DIR OUT_DIR`: LMDB's compacting copy from a read transaction, so a running
// server goes on writing while it is taken.
int backup(const config::Options& options) {
  persistence::Status status;
  auto store = persistence::open_lmdb_store(options.target_dir, persistence::LmdbOptions::reading(), status);
  if (!store) {
    std::fprintf(stderr, "canopy backup: cannot open %s: %s\n", options.target_dir.c_str(), status.message.c_str());
    return 2;
  }
  status = store->copy_compacted(options.backup_out_dir);
  if (!status.ok()) {
    std::fprintf(stderr, "canopy backup: %s\n", status.message.c_str());
    return 1;
  }
  std::printf("backed up %s to %s\n", options.target_dir.c_str(), options.backup_out_dir.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const auto parsed = config::parse(argc, argv, [](const char* name) { return std::getenv(name); });
  if (!parsed.options) {
    std::fprintf(parsed.exit_code == 0 ? stdout : stderr, "%s\n", parsed.message.c_str());
    return parsed.exit_code;
  }
  const auto& options = *parsed.options;
  if (options.command == "version") {
    std::printf("canopy %s\n", config::version().c_str());
    return 0;
  }
  if (options.command == "check") return check(options);
  if (options.command == "backup") return backup(options);
  return app::serve(options);
}

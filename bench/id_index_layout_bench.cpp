// canopy-id-index-bench: what the event-id index costs on disk, as Canopy lays it out now and as a
// DUPSORT table would (the next step named in docs/benchmarks.md, "Where the storage limit is").
//
// Inserts ids the way the writer's checkpoints do (persistence/pending_id_rows.hpp): a checkpoint's
// rows sorted by key, a slice per fsynced commit, into a fresh LMDB environment of its own, then
// reports the bytes written per id (/proc/self/io `wchar`: the pages LMDB wrote) and the file pages
// the index holds per id. The ids come in batches of 1,000 over 4 random orgs of a 15,000-org forest,
// as `canopy-loadgen --batch-orgs 4` sends them, or with `single` one per charge over random orgs, as
// single charges do (checkpoints of 12,000 ids, slices of 2,048): each org's ids increasing (a
// counter after a fixed prefix), or with `random`, 32 random hex digits (UUIDv4-like).
//
//   flat     one row per id: key = org scope + id, value = the encoded EventIdRow (Canopy today)
//   dupsort  one key per org (MDB_DUPSORT), one data item per id: [id length][id][EventIdRow]
//
//   canopy-id-index-bench flat|dupsort [random] [single]
//
// Bounded: 6 checkpoints of 450,000 ids (~10-20 s per layout on the 2-core machine). Loopback and
// network play no part; the environment is removed at exit.
#include <lmdb.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "persistence/codec.hpp"
#include "persistence/keys.hpp"

namespace {

constexpr std::size_t orgs = 15'000;
// A workload: how ids arrive and how the checkpoints slice them.
struct Shape {
  std::size_t checkpoints;
  std::size_t ids_per_checkpoint;
  std::size_t batch_events;
  std::size_t orgs_per_batch;
  std::size_t rows_per_commit;
};
// About a second of batches at ~450,000 events/s a checkpoint; slices of 1/64 of it
// (limits::checkpoint_id_slices_min).
constexpr Shape batches{6, 450'000, 1'000, 4, 450'000 / 64};
// About a second of single charges at ~12,000 a second; slices of limits::checkpoint_id_rows_per_commit_max.
constexpr Shape singles{60, 12'000, 1, 1, 2'048};

void check(int rc, const char* what) {
  if (rc == MDB_SUCCESS) return;
  std::fprintf(stderr, "canopy-id-index-bench: %s: %s\n", what, mdb_strerror(rc));
  std::exit(1);
}

long written_bytes() {
  std::ifstream io("/proc/self/io");
  std::string name;
  long value = 0;
  while (io >> name >> value) {
    if (name == "wchar:") return value;
  }
  return 0;
}

std::string hex(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string layout = argc > 1 ? argv[1] : "";
  bool random_ids = false;
  bool single = false;
  bool bad = layout != "flat" && layout != "dupsort";
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "random") {
      random_ids = true;
    } else if (arg == "single") {
      single = true;
    } else {
      bad = true;
    }
  }
  if (bad) {
    std::fprintf(stderr, "usage: canopy-id-index-bench flat|dupsort [random] [single]\n");
    return 2;
  }
  const Shape& shape = single ? singles : batches;
  const bool dupsort = layout == "dupsort";
  std::string dir_template = (std::filesystem::temp_directory_path() / "canopy-id-index-XXXXXX").string();
  if (!mkdtemp(dir_template.data())) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::filesystem::path dir = dir_template;

  MDB_env* env = nullptr;
  check(mdb_env_create(&env), "env_create");
  check(mdb_env_set_mapsize(env, std::size_t{16} << 30), "set_mapsize");
  check(mdb_env_set_maxdbs(env, 1), "set_maxdbs");
  check(mdb_env_open(env, dir.c_str(), 0, 0600), "env_open");  // fully synced commits, as Canopy's
  MDB_txn* txn = nullptr;
  MDB_dbi dbi = 0;
  check(mdb_txn_begin(env, nullptr, 0, &txn), "txn_begin");
  check(mdb_dbi_open(txn, "event_ids", MDB_CREATE | (dupsort ? MDB_DUPSORT : 0u), &dbi), "dbi_open");
  check(mdb_txn_commit(txn), "commit");

  std::mt19937_64 rng(42);
  std::vector<std::uint64_t> org_ids(orgs);
  for (auto& org : org_ids) org = rng();
  std::uint64_t counter = 0x10000;  // five hex digits on: each org's ids sort in the order they come
  std::uint64_t seq = 1;
  long bytes = 0;
  double seconds = 0;
  std::size_t rows = 0;
  for (std::size_t c = 0; c < shape.checkpoints; ++c) {
    std::vector<std::pair<std::string, std::string>> pending;  // key, value (or data item)
    pending.reserve(shape.ids_per_checkpoint);
    for (std::size_t b = 0; b < shape.ids_per_checkpoint / shape.batch_events; ++b, ++seq) {
      std::vector<std::uint64_t> picked(shape.orgs_per_batch);
      for (auto& org : picked) org = org_ids[rng() % orgs];
      for (std::size_t e = 0; e < shape.batch_events; ++e) {
        const std::string id = random_ids ? hex(rng()) + hex(rng()) : "k3x9q2w7m1t0-" + hex(counter++);
        const std::uint64_t org = picked[rng() % shape.orgs_per_batch];
        const std::string row = canopy::persistence::encode(
            canopy::persistence::EventIdRow{seq, canopy::domain::OrgId{org}, canopy::domain::Timestamp{1'764'000'000}});
        if (dupsort) {
          std::string item(1, static_cast<char>(id.size()));
          item += id;
          item += row;
          pending.emplace_back(canopy::persistence::u64_key(org), std::move(item));
        } else {
          std::string key;
          canopy::persistence::append_scoped_key(key, org, id);
          pending.emplace_back(std::move(key), row);
        }
      }
    }
    std::sort(pending.begin(), pending.end());
    const long before = written_bytes();
    const auto started = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < pending.size(); i += shape.rows_per_commit) {
      check(mdb_txn_begin(env, nullptr, 0, &txn), "txn_begin");
      MDB_cursor* cursor = nullptr;
      check(mdb_cursor_open(txn, dbi, &cursor), "cursor_open");
      for (std::size_t j = i; j < std::min(pending.size(), i + shape.rows_per_commit); ++j) {
        MDB_val key{pending[j].first.size(), pending[j].first.data()};
        MDB_val value{pending[j].second.size(), pending[j].second.data()};
        check(mdb_cursor_put(cursor, &key, &value, 0), "put");
      }
      mdb_cursor_close(cursor);
      check(mdb_txn_commit(txn), "commit");
    }
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    bytes += written_bytes() - before;
    rows += pending.size();
  }
  MDB_envinfo info;
  mdb_env_info(env, &info);
  mdb_env_close(env);
  std::filesystem::remove_all(dir);
  const double n = static_cast<double>(rows);
  std::printf("%s%s%s: %zu ids, written %.0f B/id, held %.0f B/id (%zu pages), %.2f us/id in commits\n", layout.c_str(),
              random_ids ? " (random ids)" : "", single ? " (single charges)" : "", rows, static_cast<double>(bytes) / n,
              4096.0 * static_cast<double>(info.me_last_pgno) / n, static_cast<std::size_t>(info.me_last_pgno),
              1e6 * seconds / n);
  return 0;
}

// LMDB implementation of Store.
//
// Two environments, one per part (store.hpp): the journal part in the data folder, the state part in
// its `state` folder; one named sub-database per Table in its part's environment. Flags are spelled out:
//   MDB_NOSUBDIR off  – the data folder holds data.mdb and lock.mdb;
//   MDB_NOTLS         – read transactions are not tied to threads (CAF workers and Asio threads read);
//   no MDB_NOSYNC / MDB_NOMETASYNC / MDB_WRITEMAP – every commit is fully fsynced: durability is the point.
// The map is reserved large up front (sparse: it costs address space, not disk) because LMDB may only
// resize it while no transaction is open in the process, and our readers never stop. A full map is a
// commit error, which the writer treats as fatal.
#include <lmdb.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <mutex>
#include <optional>
#include <vector>

#include "config/limits.hpp"
#include "domain/org.hpp"
#include "persistence/key_order.hpp"
#include "persistence/keys.hpp"
#include "persistence/store.hpp"
#include "persistence/stored_u64.hpp"
#include "persistence/trim_hold.hpp"

namespace canopy::persistence {

Status Store::read(const std::function<Status(const Snapshot&)>& read) const {
  struct Forward final : Snapshot {
    const Store& store;
    explicit Forward(const Store& s) : store(s) {}
    Status scan(Table table, std::string_view prefix, std::string_view from, const ScanVisitor& visit) const override {
      return store.scan(table, prefix, from, visit);
    }
  };
  return read(Forward(*this));
}

Status check_mark_in_journal(const Store& journal, std::uint64_t mark) {
  std::uint64_t trimmed = 0;
  Status s = read_stored_u64(journal, Table::meta, meta_journal_erased_through, trimmed);
  if (!s.ok()) return s;
  if (mark < trimmed) {
    return Status{Status::Code::corruption, "the state part's checkpoint mark is record " + std::to_string(mark) +
                                                ", but the journal was trimmed through record " + std::to_string(trimmed) +
                                                ": the state part does not belong to it"};
  }
  if (mark == trimmed) return {};
  std::string record;
  s = journal.get(Table::journal, u64_key(mark), record);
  if (s.is_not_found()) {
    return Status{Status::Code::corruption, "the state part's checkpoint mark is record " + std::to_string(mark) +
                                                ", which the journal does not hold: the state part does not belong to it"};
  }
  return s;
}

std::string_view table_name(Table table) {
  static constexpr std::array<std::string_view, table_count> names = {
      "meta", "journal", "orgs", "users", "emails", "tokens", "event_ids", "payments", "payment_keys",
      "usage", "webhook_outbox", "webhook_deliveries", "checkpoint", "audit_base", "audit_meta", "audit_dates"};
  return names[static_cast<std::size_t>(table)];
}

namespace {

Status from_mdb(int rc, std::string_view what) {
  if (rc == MDB_SUCCESS) return {};
  if (rc == MDB_NOTFOUND) return Status::not_found();
  Status s;
  s.code = rc == MDB_MAP_FULL ? Status::Code::full
           : (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID) ? Status::Code::corruption
                                                                                    : Status::Code::io_error;
  s.message = std::string(what) + ": " + mdb_strerror(rc);
  return s;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// A new file's name is durable once its folder is synced (a state part created and then lost to a
// power cut would cost a full replay of the journal).
void sync_dir(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// A store (any part) already in `dir`: a copy must not go there.
bool holds_store(const std::string& dir) {
  return exists(dir + "/data.mdb") || exists(dir + "/" + std::string(state_part_folder) + "/data.mdb") ||
         exists(dir + "/" + std::string(audit_part_folder) + "/data.mdb");
}

MDB_val as_val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string_view as_view(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

// LMDB's comparator for every table we open (key_order.hpp: the default order, compared faster).
// Handles opened without it (the folder migration's legacy tables) sort the same.
int compare_vals(const MDB_val* a, const MDB_val* b) { return compare_keys(as_view(*a), as_view(*b)); }

class ReadTxn {
 public:
  explicit ReadTxn(MDB_env* env) { rc_ = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn_); }
  ~ReadTxn() {
    if (rc_ == MDB_SUCCESS) mdb_txn_abort(txn_);
  }
  ReadTxn(const ReadTxn&) = delete;
  ReadTxn& operator=(const ReadTxn&) = delete;
  int rc() const { return rc_; }
  MDB_txn* get() const { return txn_; }

 private:
  MDB_txn* txn_ = nullptr;
  int rc_ = 0;
};

// A table and the name of its sub-database in an environment.
struct TableName {
  Table table;
  std::string_view name;
};

// One LMDB environment holding some of the tables.
class LmdbEnv final : public Store {
 public:
  ~LmdbEnv() override {
    if (env_) mdb_env_close(env_);
  }

  Status open(const std::string& dir, const LmdbOptions& options, std::span<const TableName> tables) {
    map_bytes_ = options.map_bytes ? options.map_bytes : limits::lmdb_map_bytes_initial;
    if (int rc = mdb_env_create(&env_); rc != MDB_SUCCESS) return from_mdb(rc, "mdb_env_create");
    if (int rc = mdb_env_set_maxdbs(env_, static_cast<MDB_dbi>(table_count)); rc) return from_mdb(rc, "set_maxdbs");
    if (int rc = mdb_env_set_maxreaders(env_, limits::lmdb_readers_max); rc) return from_mdb(rc, "set_maxreaders");
    if (int rc = mdb_env_set_mapsize(env_, map_bytes_); rc) return from_mdb(rc, "set_mapsize");
    const unsigned flags = MDB_NOTLS | (options.read_only ? MDB_RDONLY : 0u);
    if (int rc = mdb_env_open(env_, dir.c_str(), flags, 0600); rc) return from_mdb(rc, "open " + dir);
    // Adopt a larger map left by an earlier run.
    MDB_envinfo info;
    mdb_env_info(env_, &info);
    map_bytes_ = std::max(map_bytes_, info.me_mapsize);

    MDB_txn* txn = nullptr;
    if (int rc = mdb_txn_begin(env_, nullptr, options.read_only ? MDB_RDONLY : 0u, &txn); rc) {
      return from_mdb(rc, "begin");
    }
    for (const auto& [table, table_name] : tables) {
      const std::string name(table_name);
      const unsigned dbi_flags = options.read_only ? 0u : MDB_CREATE;
      const auto i = static_cast<std::size_t>(table);
      if (int rc = mdb_dbi_open(txn, name.c_str(), dbi_flags, &dbis_[i]); rc) {
        mdb_txn_abort(txn);
        return from_mdb(rc, "open table " + name);
      }
      mdb_set_compare(txn, dbis_[i], &compare_vals);  // for this handle's life, in every transaction
      held_[i] = true;
    }
    if (int rc = mdb_txn_commit(txn); rc) return from_mdb(rc, "commit tables");
    return {};
  }

  Status commit(std::span<const WriteOp> ops) override { return try_commit(ops); }

  Status get(Table table, std::string_view key, std::string& value) const override {
    if (!holds(table)) return Status::not_found();  // the audit part's, in a folder from before the parts
    ReadTxn txn(env_);
    if (txn.rc()) return from_mdb(txn.rc(), "begin read");
    MDB_val k = as_val(key), v;
    const int rc = mdb_get(txn.get(), dbi(table), &k, &v);
    if (rc == MDB_SUCCESS) value.assign(as_view(v));
    return from_mdb(rc, "get");
  }

  Status get_many(Table table, std::span<const std::string> keys,
                  std::vector<std::optional<std::string>>& values) const override {
    values.assign(keys.size(), std::nullopt);
    if (keys.empty() || !holds(table)) return {};
    ReadTxn txn(env_);
    if (txn.rc()) return from_mdb(txn.rc(), "begin read");
    // In key order through one cursor, which MDB_SET_RANGE leaves on the first stored key not below
    // the key asked. The next key asked that sorts below where the cursor stands is absent, answered
    // without a call into LMDB: nothing is stored between the two. A batch's new ids for one org are
    // neighbours that fall in one such gap (typically past the org's last id), so most cost a compare.
    thread_local std::vector<std::uint32_t> order;
    order.resize(keys.size());
    for (std::uint32_t i = 0; i < keys.size(); ++i) order[i] = i;
    const auto key_less = [&](std::uint32_t a, std::uint32_t b) { return keys[a] < keys[b]; };
    if (!std::is_sorted(order.begin(), order.end(), key_less)) std::sort(order.begin(), order.end(), key_less);
    MDB_cursor* cursor = nullptr;
    if (int rc = mdb_cursor_open(txn.get(), dbi(table), &cursor); rc) return from_mdb(rc, "cursor");
    bool positioned = false;     // the cursor stands on `stored` (or past the last key)
    bool past_last = false;      // no stored key is at or above the last key asked
    std::string_view stored;     // valid until the read transaction ends
    std::string_view stored_value;
    for (const std::uint32_t i : order) {
      const std::string_view key = keys[i];
      if (positioned) {
        if (past_last) break;  // every key from here on sorts at or above it: all absent
        const int c = key.compare(stored);
        if (c < 0) continue;  // in the gap below `stored`: absent
        if (c == 0) {
          values[i].emplace(stored_value);
          continue;
        }
      }
      MDB_val k = as_val(key), v;
      const int rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
      positioned = true;
      if (rc == MDB_NOTFOUND) {
        past_last = true;
        continue;
      }
      if (rc != MDB_SUCCESS) {
        mdb_cursor_close(cursor);
        return from_mdb(rc, "get");
      }
      stored = as_view(k);
      stored_value = as_view(v);
      if (stored == key) values[i].emplace(stored_value);
    }
    mdb_cursor_close(cursor);
    return {};
  }

  Status scan(Table table, std::string_view prefix, std::string_view from,
              const std::function<bool(std::string_view, std::string_view)>& visit) const override {
    ReadTxn txn(env_);
    if (txn.rc()) return from_mdb(txn.rc(), "begin read");
    return scan_in(txn.get(), table, prefix, from, visit);
  }

  Status read(const std::function<Status(const Snapshot&)>& read) const override {
    ReadTxn txn(env_);
    if (txn.rc()) return from_mdb(txn.rc(), "begin read");
    struct View final : Snapshot {
      const LmdbEnv& store;
      MDB_txn* txn;
      View(const LmdbEnv& s, MDB_txn* t) : store(s), txn(t) {}
      Status scan(Table table, std::string_view prefix, std::string_view from, const ScanVisitor& visit) const override {
        return store.scan_in(txn, table, prefix, from, visit);
      }
    };
    return read(View(*this, txn.get()));
  }

  Status scan_in(MDB_txn* txn, Table table, std::string_view prefix, std::string_view from,
                 const ScanVisitor& visit) const {
    if (!holds(table)) return {};
    MDB_cursor* cursor = nullptr;
    if (int rc = mdb_cursor_open(txn, dbi(table), &cursor); rc) return from_mdb(rc, "cursor");
    // Start at `from`, but never before the prefix's first key.
    const std::string_view start = from < prefix ? prefix : from;
    MDB_val k = as_val(start), v;
    int rc = start.empty() ? mdb_cursor_get(cursor, &k, &v, MDB_FIRST) : mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
    while (rc == MDB_SUCCESS) {
      const auto key = as_view(k);
      if (key.substr(0, prefix.size()) != prefix) break;
      if (!visit(key, as_view(v))) break;
      rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    return rc == MDB_SUCCESS || rc == MDB_NOTFOUND ? Status{} : from_mdb(rc, "scan");
  }

  // A part's copy relies on LMDB refusing an existing data.mdb; the whole store of a folder from
  // before the parts also refuses a folder with a state part (it would be taken for the copy's own).
  Status copy_compacted(const std::string& dir) const override {
    if (whole_store_ && holds_store(dir)) return Status{Status::Code::io_error, "copy to " + dir + ": a store is there already"};
    ::mkdir(dir.c_str(), 0700);
    return from_mdb(mdb_env_copy2(env_, dir.c_str(), MDB_CP_COMPACT), "copy to " + dir);
  }

  bool holds(Table table) const { return held_[static_cast<std::size_t>(table)]; }
  // This environment is a whole store (a folder from before the parts), not one part of one.
  void set_whole_store() { whole_store_ = true; }

  // --- Folders from before the parts: their state tables, still in this (the journal part's) environment.

  // Whether `table`'s sub-database (by its name, the same in both layouts) exists here.
  Status has_table(Table table, bool& found) const {
    ReadTxn txn(env_);
    if (txn.rc()) return from_mdb(txn.rc(), "begin read");
    const std::string name(table_name(table));
    MDB_dbi legacy = 0;
    const int rc = mdb_dbi_open(txn.get(), name.c_str(), 0, &legacy);
    found = rc == MDB_SUCCESS;
    return rc == MDB_NOTFOUND ? Status{} : from_mdb(rc, "open table " + name);
  }

  // Copies every row of `table`'s sub-database here into the same table of `into`,
  // limits::legacy_rows_per_commit rows per commit.
  Status copy_table(Table table, Store& into) const {
    ReadTxn txn(env_);
    if (txn.rc()) return from_mdb(txn.rc(), "begin read");
    const std::string name(table_name(table));
    MDB_dbi legacy = 0;
    if (int rc = mdb_dbi_open(txn.get(), name.c_str(), 0, &legacy); rc) {
      return rc == MDB_NOTFOUND ? Status{} : from_mdb(rc, "open table " + name);
    }
    MDB_cursor* cursor = nullptr;
    if (int rc = mdb_cursor_open(txn.get(), legacy, &cursor); rc) return from_mdb(rc, "cursor");
    std::vector<WriteOp> ops;
    Status status;
    MDB_val k, v;
    int rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST);
    while (rc == MDB_SUCCESS && status.ok()) {
      ops.push_back(WriteOp{table, std::string(as_view(k)), std::string(as_view(v))});
      if (ops.size() == limits::legacy_rows_per_commit) {
        status = into.commit(ops);
        ops.clear();
      }
      rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    if (!status.ok()) return status;
    if (rc != MDB_NOTFOUND) return from_mdb(rc, "scan " + name);
    return ops.empty() ? Status{} : into.commit(ops);
  }

  // Deletes the sub-databases of `tables` (those that exist) and the key `meta_key` of meta, in one commit.
  Status drop_tables(std::span<const Table> tables, std::string_view meta_key) {
    MDB_txn* txn = nullptr;
    if (int rc = mdb_txn_begin(env_, nullptr, 0, &txn); rc) return from_mdb(rc, "begin write");
    for (const Table table : tables) {
      const std::string name(table_name(table));
      MDB_dbi legacy = 0;
      int rc = mdb_dbi_open(txn, name.c_str(), 0, &legacy);
      if (rc == MDB_SUCCESS) rc = mdb_drop(txn, legacy, 1);
      if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return from_mdb(rc, "drop table " + name);
      }
    }
    MDB_val k = as_val(meta_key);
    if (int rc = mdb_del(txn, dbi(Table::meta), &k, nullptr); rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
      mdb_txn_abort(txn);
      return from_mdb(rc, "delete " + std::string(meta_key));
    }
    return from_mdb(mdb_txn_commit(txn), "commit");
  }

 private:
  MDB_dbi dbi(Table table) const {
    CANOPY_ASSERT(holds(table));
    return dbis_[static_cast<std::size_t>(table)];
  }

  // Applies the ops in (table, key) order through one cursor per table. Ops on different keys
  // commute, and a stable sort keeps those on one key in the caller's order, so the result is the
  // same; but a cursor that stays on a leaf finds the next key on that leaf without descending from
  // the root again (LMDB's mdb_cursor_set fast path), which a commit of thousands of event ids and
  // usage buckets repeats thousands of times.
  Status try_commit(std::span<const WriteOp> ops) {
    sort_ops(ops);
    MDB_txn* txn = nullptr;
    if (int rc = mdb_txn_begin(env_, nullptr, 0, &txn); rc) return from_mdb(rc, "begin write");
    MDB_cursor* cursor = nullptr;
    std::optional<Table> cursor_table;
    for (const std::uint32_t index : order_) {
      const WriteOp& op = ops[index];
      int rc = 0;
      if (cursor_table != op.table) {
        if (cursor) mdb_cursor_close(cursor);
        cursor = nullptr;
        rc = mdb_cursor_open(txn, dbi(op.table), &cursor);
        cursor_table = op.table;
      }
      MDB_val k = as_val(op.key);
      if (rc == MDB_SUCCESS && op.erase) {
        MDB_val v;
        rc = mdb_cursor_get(cursor, &k, &v, MDB_SET);
        if (rc == MDB_SUCCESS) rc = mdb_cursor_del(cursor, 0);
        if (rc == MDB_NOTFOUND) rc = MDB_SUCCESS;
      } else if (rc == MDB_SUCCESS) {
        MDB_val v = as_val(op.value);
        rc = mdb_cursor_put(cursor, &k, &v, 0);
      }
      if (rc) {
        if (cursor) mdb_cursor_close(cursor);
        mdb_txn_abort(txn);
        return from_mdb(rc, "put");
      }
    }
    if (cursor) mdb_cursor_close(cursor);
    return from_mdb(mdb_txn_commit(txn), "commit");
  }

  // order_ = the ops' indexes, stably sorted by (table, key). A batch's ops come in runs already in
  // key order (its event ids, a checkpoint slice's orgs), so: a stable counting sort by table, then,
  // per table, the ascending runs merged pairwise: n log(runs) key comparisons rather than n log n
  // (the full sort was an eighth of the writer's time under batches). Short runs are sorted outright.
  void sort_ops(std::span<const WriteOp> ops) {
    std::array<std::uint32_t, table_count + 1> starts{};
    for (const auto& op : ops) ++starts[static_cast<std::size_t>(op.table) + 1];
    for (std::size_t t = 1; t <= table_count; ++t) starts[t] += starts[t - 1];
    order_.resize(ops.size());
    auto next = starts;
    for (std::uint32_t i = 0; i < ops.size(); ++i) order_[next[static_cast<std::size_t>(ops[i].table)]++] = i;
    const auto by_key = [&](std::uint32_t a, std::uint32_t b) { return ops[a].key < ops[b].key; };
    for (std::size_t t = 0; t < table_count; ++t) {
      std::uint32_t* const first = order_.data() + starts[t];
      const std::size_t n = starts[t + 1] - starts[t];
      runs_.assign(1, 0);
      for (std::size_t i = 1; i < n; ++i) {
        if (by_key(first[i], first[i - 1])) runs_.push_back(i);
      }
      runs_.push_back(n);
      // Random keys (single charges' ids and buckets, spread over many orgs) make runs of one or two:
      // merging those pairwise costs more than a plain sort (a buffer per std::inplace_merge).
      if (runs_.size() - 1 > n / limits::commit_sort_run_length_min) {
        std::stable_sort(first, first + n, by_key);
        continue;
      }
      // std::inplace_merge is stable: of equal keys, the earlier run's (the earlier op's) comes first.
      while (runs_.size() > 2) {
        std::size_t kept = 1;
        std::size_t r = 0;
        for (; r + 2 < runs_.size(); r += 2) {
          std::inplace_merge(first + runs_[r], first + runs_[r + 1], first + runs_[r + 2], by_key);
          runs_[kept++] = runs_[r + 2];
        }
        if (runs_[kept - 1] != runs_.back()) runs_[kept++] = runs_.back();  // an odd run out: kept as is
        runs_.resize(kept);
      }
    }
  }

  MDB_env* env_ = nullptr;
  std::vector<std::uint32_t> order_;  // try_commit's op order, reused (commit runs on one thread)
  std::vector<std::size_t> runs_;     // sort_ops' run boundaries, reused
  std::array<MDB_dbi, table_count> dbis_{};
  std::array<bool, table_count> held_{};
  bool whole_store_ = false;
  std::size_t map_bytes_ = 0;
};

// The parts as one Store: reads go to the table's part; a commit of several parts commits the journal
// part first, then the state part, then the audit part. A folder opened read-only that has no audit
// part yet reads as having an empty one (audit_ null).
class PartedStore final : public Store {
 public:
  PartedStore(std::string dir, std::unique_ptr<LmdbEnv> journal, std::unique_ptr<LmdbEnv> state,
              std::unique_ptr<LmdbEnv> audit, std::function<void(Part)> after_part_copied)
      : dir_(std::move(dir)),
        journal_(std::move(journal)),
        state_(std::move(state)),
        audit_(std::move(audit)),
        after_part_copied_(std::move(after_part_copied)) {}

  Status commit(std::span<const WriteOp> ops) override {
    std::array<std::size_t, 3> counts{};
    for (const auto& op : ops) ++counts[static_cast<std::size_t>(part_of(op.table))];
    for (const Part part : {Part::journal, Part::state, Part::audit}) {
      if (counts[static_cast<std::size_t>(part)] == ops.size()) return writable(part).commit(ops);
    }
    // Several parts (recovery, shutdown, tests): copied apart, each part's ops in their order.
    for (const Part part : {Part::journal, Part::state, Part::audit}) {
      if (counts[static_cast<std::size_t>(part)] == 0) continue;
      std::vector<WriteOp> part_ops;
      for (const auto& op : ops) {
        if (part_of(op.table) == part) part_ops.push_back(op);
      }
      if (Status s = writable(part).commit(part_ops); !s.ok()) return s;
    }
    return {};
  }
  Status get(Table table, std::string_view key, std::string& value) const override {
    const LmdbEnv* part = env(table);
    return part ? part->get(table, key, value) : Status::not_found();
  }
  Status get_many(Table table, std::span<const std::string> keys,
                  std::vector<std::optional<std::string>>& values) const override {
    const LmdbEnv* part = env(table);
    if (part) return part->get_many(table, keys, values);
    values.assign(keys.size(), std::nullopt);
    return {};
  }
  Status scan(Table table, std::string_view prefix, std::string_view from, const ScanVisitor& visit) const override {
    const LmdbEnv* part = env(table);
    return part ? part->scan(table, prefix, from, visit) : Status{};
  }
  // One read transaction per part: the state part's begun first (so it is never ahead of the journal
  // part read with it), the audit part's last (the journal is never trimmed past the audit base, so the
  // journal read before it holds every record after the base it reads; a base committed between the
  // two reads may be past the journal's end, which the audit checks for).
  Status read(const std::function<Status(const Snapshot&)>& read) const override {
    struct View final : Snapshot {
      const Snapshot* parts[3] = {nullptr, nullptr, nullptr};  // by Part; the audit part's may be absent
      Status scan(Table table, std::string_view prefix, std::string_view from,
                  const ScanVisitor& visit) const override {
        const Snapshot* part = parts[static_cast<std::size_t>(part_of(table))];
        return part ? part->scan(table, prefix, from, visit) : Status{};
      }
    } view;
    return state_->read([&](const Snapshot& state) {
      return journal_->read([&](const Snapshot& journal) {
        view.parts[static_cast<std::size_t>(Part::state)] = &state;
        view.parts[static_cast<std::size_t>(Part::journal)] = &journal;
        if (!audit_) return read(view);
        return audit_->read([&](const Snapshot& audit) {
          view.parts[static_cast<std::size_t>(Part::audit)] = &audit;
          return read(view);
        });
      });
    });
  }
  // The state part first, then the audit part, then the journal part, with the trim held meanwhile at
  // the lower of the checkpoint mark and the audit base's seq as they were before the copy began
  // (trim_hold.hpp): the copied state part's mark and the copied base are at least that far, so the
  // copied journal holds every record after either; and the base, copied before the journal, is never
  // past the copied journal's end.
  // Refused where a store is already (LMDB would refuse the journal part's copy only after the state
  // part's had been written beside that store's own tables).
  // A copy that fails halfway takes its state and audit parts away again: alone, the state part would
  // be ahead of any journal later copied beside it.
  Status copy_compacted(const std::string& dir) const override {
    const std::string state_dir = dir + "/" + std::string(state_part_folder);
    const std::string audit_dir = dir + "/" + std::string(audit_part_folder);
    if (holds_store(dir)) return Status{Status::Code::io_error, "copy to " + dir + ": a store is there already"};
    ::mkdir(dir.c_str(), 0700);
    std::uint64_t mark = 0;
    std::uint64_t base = 0;
    Status s = read_stored_u64(*this, Table::checkpoint, checkpoint_mark_key, mark);
    if (s.ok()) s = read_stored_u64(*this, Table::audit_meta, audit_base_seq_key, base);
    if (!s.ok()) return s;
    const TrimHold hold(dir_, std::min(mark, base), s);
    if (!s.ok()) return s;
    const auto copied = [&](Part part) {
      if (s.ok() && after_part_copied_) after_part_copied_(part);
    };
    s = state_->copy_compacted(state_dir);
    copied(Part::state);
    if (s.ok() && audit_) s = audit_->copy_compacted(audit_dir);
    copied(Part::audit);
    if (s.ok()) s = journal_->copy_compacted(dir);
    copied(Part::journal);
    if (!s.ok()) {
      std::error_code ignored;
      std::filesystem::remove_all(state_dir, ignored);
      std::filesystem::remove_all(audit_dir, ignored);
    }
    return s;
  }
  std::uint64_t trim_limit() const override { return held_trim_limit(dir_); }

 private:
  const LmdbEnv* env(Table table) const {
    switch (part_of(table)) {
      case Part::state: return state_.get();
      case Part::audit: return audit_.get();
      case Part::journal: break;
    }
    return journal_.get();
  }
  LmdbEnv& writable(Part part) {
    LmdbEnv* env = part == Part::state ? state_.get() : part == Part::audit ? audit_.get() : journal_.get();
    CANOPY_ASSERT(env != nullptr);  // the audit part is absent only from read-only opens
    return *env;
  }

  std::string dir_;  // the data folder (the journal part's)
  std::unique_ptr<LmdbEnv> journal_;
  std::unique_ptr<LmdbEnv> state_;
  std::unique_ptr<LmdbEnv> audit_;
  const std::function<void(Part)> after_part_copied_;  // LmdbOptions::after_part_copied
};

// The state part's tables that a folder from before the parts holds (the mark was a key of meta).
constexpr std::array<Table, 3> moved_tables = {Table::orgs, Table::event_ids, Table::usage};

std::vector<TableName> part_tables(Part part) {
  std::vector<TableName> tables;
  for (std::size_t i = 0; i < table_count; ++i) {
    const auto table = static_cast<Table>(i);
    if (part_of(table) == part) tables.push_back({table, table_name(table)});
  }
  return tables;
}

// A folder from before the parts, as it is: every table in one environment, the checkpoint mark in
// meta (read-only opens: `canopy check` and `canopy backup` must not write).
std::unique_ptr<Store> open_unparted(const std::string& dir, const LmdbOptions& options, Status& status) {
  std::vector<TableName> tables;
  for (std::size_t i = 0; i < table_count; ++i) {
    const auto table = static_cast<Table>(i);
    if (part_of(table) == Part::audit) continue;  // newer than such a folder: read as empty
    tables.push_back({table, table == Table::checkpoint ? table_name(Table::meta) : table_name(table)});
  }
  auto env = std::make_unique<LmdbEnv>();
  status = env->open(dir, options, tables);
  if (!status.ok()) return nullptr;
  env->set_whole_store();
  return env;
}

// Moves the state tables of a folder from before the parts into the state part: every row copied,
// then the checkpoint mark (its presence says the copy is whole), then the old tables dropped. A
// crash at any point repeats or finishes the move at the next open; nothing is lost.
Status move_state_tables(LmdbEnv& journal, LmdbEnv& state) {
  std::string mark;
  Status s = state.get(Table::checkpoint, checkpoint_mark_key, mark);
  if (!s.ok() && !s.is_not_found()) return s;
  const bool marked = s.ok();
  bool any = false;
  for (const Table table : moved_tables) {
    bool found = false;
    if (s = journal.has_table(table, found); !s.ok()) return s;
    any = any || found;
  }
  if (!any) return {};  // a new folder, or one moved already
  if (!marked) {
    for (const Table table : moved_tables) {
      if (s = journal.copy_table(table, state); !s.ok()) return s;
    }
    if (s = journal.get(Table::meta, checkpoint_mark_key, mark); s.is_not_found()) {
      mark = u64_key(0);
    } else if (!s.ok()) {
      return s;
    }
    const WriteOp op{Table::checkpoint, std::string(checkpoint_mark_key), mark};
    if (s = state.commit(std::span<const WriteOp>(&op, 1)); !s.ok()) return s;
  }
  // Never drop the old tables for a state part that does not belong to this journal.
  if (s = check_mark_in_journal(journal, get_u64_be(mark)); !s.ok()) return s;
  return journal.drop_tables(moved_tables, checkpoint_mark_key);
}

}  // namespace

std::unique_ptr<Store> open_lmdb_store(const std::string& dir, const LmdbOptions& options, Status& status) {
  if (!options.read_only) ::mkdir(dir.c_str(), 0700);
  auto journal = std::make_unique<LmdbEnv>();
  status = journal->open(dir, options, part_tables(Part::journal));
  if (!status.ok()) return nullptr;
  const std::string state_dir = dir + "/" + std::string(state_part_folder);
  if (options.read_only) {
    // Unmoved (or moved halfway when a start crashed): read as it was written.
    bool unmoved = false;
    if (status = journal->has_table(Table::orgs, unmoved); !status.ok()) return nullptr;
    if (unmoved) {
      journal.reset();
      return open_unparted(dir, options, status);
    }
    if (!exists(state_dir + "/data.mdb")) {
      status = Status{Status::Code::not_found, state_dir + ": no state part (a server has not started on this folder yet)"};
      return nullptr;
    }
  } else {
    ::mkdir(state_dir.c_str(), 0700);
  }
  auto state = std::make_unique<LmdbEnv>();
  status = state->open(state_dir, options, part_tables(Part::state));
  if (!status.ok()) return nullptr;
  const std::string audit_dir = dir + "/" + std::string(audit_part_folder);
  std::unique_ptr<LmdbEnv> audit;
  if (!options.read_only || exists(audit_dir + "/data.mdb")) {
    if (!options.read_only) ::mkdir(audit_dir.c_str(), 0700);
    audit = std::make_unique<LmdbEnv>();
    status = audit->open(audit_dir, options, part_tables(Part::audit));
    if (!status.ok()) return nullptr;
  }
  if (!options.read_only) {
    sync_dir(state_dir);
    sync_dir(audit_dir);
    sync_dir(dir);
    if (status = move_state_tables(*journal, *state); !status.ok()) return nullptr;
  }
  return std::make_unique<PartedStore>(dir, std::move(journal), std::move(state), std::move(audit),
                                       options.after_part_copied);
}

}  // namespace canopy::persistence

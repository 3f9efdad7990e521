// The one interface through which Canopy touches storage (LevelDB's `Env` idea).
//
// The production implementation is LMDB (lmdb_store.cpp). Tests swap in wrappers that fail commits or
// lose everything after a chosen commit, to prove that nothing acknowledged is lost.
//
// The tables live in three parts, each an LMDB environment of its own with its own commits and fsyncs:
//   journal part: the journal and the rows a client may read as soon as its request is answered
//                 (users, tokens, payments, ...). Every acknowledgement waits for a commit here.
//   state part:   what the checkpoints write (org snapshots, the event-id index, usage buckets) and
//                 the checkpoint mark saying how much of the journal they hold. Committed behind the
//                 acknowledgements, on a thread of its own (actors/state_committer.hpp), never ahead of
//                 the journal: recovery replays the journal after the mark.
//   audit part:   the audit base, the audit's fold of the records up to a seq (audit_base.hpp), which
//                 the journal is trimmed behind (journal_trim.hpp). Committed by the journal trimmer's
//                 thread (actors/journal_trimmer.hpp), never ahead of the checkpoint mark.
// The split keeps a checkpoint's thousands of pages, and the audit base's, out of the commits that
// clients wait for.
//
// Thread-safety: commit() is called by one thread at a time per part (the persistence writer for the
// journal part, the state committer for the state part, the journal trimmer for the audit part); get()
// and scan() may be called from any thread at any time and see the last committed state.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace canopy::persistence {

// Named sub-databases. Key layouts: keys.hpp.
enum class Table : std::uint8_t { meta, journal, orgs, users, emails, tokens, event_ids, payments, payment_keys, usage,
                                  webhook_outbox, webhook_deliveries, checkpoint, audit_base, audit_meta,
                                  audit_dates };
inline constexpr std::size_t table_count = 16;
std::string_view table_name(Table table);

enum class Part : std::uint8_t { journal, state, audit };
inline constexpr Part part_of(Table table) {
  switch (table) {
    case Table::orgs:
    case Table::event_ids:
    case Table::usage:
    case Table::checkpoint:
      return Part::state;
    case Table::audit_base:
    case Table::audit_meta:
    case Table::audit_dates:
      return Part::audit;
    default:
      return Part::journal;
  }
}

// I/O results as values.
struct Status {
  enum class Code : std::uint8_t { ok, not_found, corruption, io_error, full };
  Code code = Code::ok;
  std::string message;

  static Status ok_status() { return {}; }
  static Status not_found() { return {Code::not_found, "not found"}; }
  bool ok() const { return code == Code::ok; }
  bool is_not_found() const { return code == Code::not_found; }
};

struct WriteOp {
  Table table = Table::meta;
  std::string key;
  std::string value;
  bool erase = false;
};

using ScanVisitor = std::function<bool(std::string_view key, std::string_view value)>;

// A consistent view of the store: every read through it sees the same committed state of each part,
// the state part's taken first (so it is never ahead of the journal part's), the audit part's last
// (its base may then be past the journal read, by a commit in between: the audit reads again).
class Snapshot {
 public:
  virtual ~Snapshot() = default;
  // As Store::scan.
  virtual Status scan(Table table, std::string_view prefix, std::string_view from, const ScanVisitor& visit) const = 0;
};

class Store {
 public:
  virtual ~Store() = default;
  // Applies the ops of each part in one atomic transaction, durable (fsynced) when it returns ok: the
  // journal part's first, then the state part's, then the audit part's, so a crash between them leaves
  // the state part behind the journal, never ahead of it. On an error in a part nothing of that part
  // (and of the parts after it) was applied.
  virtual Status commit(std::span<const WriteOp> ops) = 0;
  virtual Status get(Table table, std::string_view key, std::string& value) const = 0;
  // Reads many keys from one consistent snapshot; values[i] is empty when keys[i] is absent. The LMDB
  // store uses one read transaction for all of them (the hot path looks up a batch's event ids).
  virtual Status get_many(Table table, std::span<const std::string> keys,
                          std::vector<std::optional<std::string>>& values) const {
    values.assign(keys.size(), std::nullopt);
    for (std::size_t i = 0; i < keys.size(); ++i) {
      std::string value;
      Status s = get(table, keys[i], value);
      if (s.ok()) values[i] = std::move(value);
      else if (!s.is_not_found()) return s;
    }
    return {};
  }
  // Visits keys starting with `prefix`, from `from` (inclusive; empty: the first) in key order, until
  // `visit` returns false.
  virtual Status scan(Table table, std::string_view prefix, std::string_view from,
                      const std::function<bool(std::string_view key, std::string_view value)>& visit) const = 0;
  // Runs `read` over one consistent view (LMDB: one read transaction), so a report made of many scans
  // never mixes states before and after a commit. The default forwards to scan() (no single view):
  // enough for test wrappers that do not commit concurrently.
  virtual Status read(const std::function<Status(const Snapshot&)>& read) const;
  // A consistent, compacted copy of the whole store into the empty folder `dir`.
  virtual Status copy_compacted(const std::string& dir) const = 0;
  // The journal may be trimmed (journal_trim.hpp) through no record after this one. A copy in progress,
  // in this process or another, holds it at the checkpoint mark it found when it began, so the journal
  // it copies after the state part still holds every record after the copied state part's mark
  // (trim_hold.hpp).
  virtual std::uint64_t trim_limit() const { return UINT64_MAX; }
};

// Corruption unless the journal reached the checkpoint `mark` (0: none yet): it holds record `mark`, or
// was trimmed through exactly it. A state part whose mark the journal never reached belongs to another
// journal (a folder put together from two, a journal restored alone), and replaying after it would
// leave snapshots holding records the journal lacks; one whose mark is below where the journal was
// trimmed would miss the trimmed records.
Status check_mark_in_journal(const Store& journal, std::uint64_t mark);

struct LmdbOptions {
  std::size_t map_bytes = 0;  // 0: limits::lmdb_map_bytes_initial, per part
  bool read_only = false;
  // Called by copy_compacted() after it copies each part: tests run the server's commits between a
  // copy's parts there, which a real race produces only by chance.
  std::function<void(Part copied)> after_part_copied;

  static LmdbOptions reading() {
    LmdbOptions options;
    options.read_only = true;
    return options;
  }
};

// The journal part in `dir`, the state part in `dir`/state, the audit part in `dir`/audit. A data
// folder written before the parts existed (every table in `dir`) has its state tables moved into the
// state part when opened for writing, and is read as it is when opened read-only. A folder without an
// audit part (never trimmed) reads as having an empty one.
std::unique_ptr<Store> open_lmdb_store(const std::string& dir, const LmdbOptions& options, Status& status);
inline constexpr std::string_view state_part_folder = "state";
inline constexpr std::string_view audit_part_folder = "audit";

}  // namespace canopy::persistence

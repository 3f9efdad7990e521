// Event-id index rows between the commit that journals their record and the checkpoint that writes
// them (Materializer, materializer.hpp).
//
// Written in their record's own commit, the rows of a single charge put one random leaf of the index
// (and the branch pages above it) in that commit: charges of unrelated orgs rarely share a leaf, so
// every charge paid a 4 KiB page copy, write and fsync for a 24-byte row. Here the rows wait: a
// checkpoint takes every row pending when it begins, sorts them by key, and writes them a slice per
// commit, so rows that share a leaf share its write and a slice covers a narrow range of the index
// (in journal order, every slice of random ids touched nearly every leaf again). The sort runs on a
// thread of its own (`canopy.sort`), so the persistence writer goes on committing meanwhile (on its
// thread, 131,072 rows held every commit 34 ms); the checkpoint writes its first slice once the sort is
// done. A checkpoint of more than limits::pending_id_rows_sorted_max rows is a burst of batches, whose
// ids come in runs already in order: it is written in journal order, the sort's CPU spared.
//
// Until then the journal holds them durably (recovery indexes them again from the records after the
// checkpoint mark, which never passes an unwritten row), and the origin actor answers for the ids it
// accepted itself (actors/recent_ids.hpp) up to indexed_through().
//
// Rows live in one byte arena per generation (64-bit offsets: a writer stalled behind a burst may
// gather more than 4 GiB), not a pair of strings each: a burst of batches leaves hundreds of thousands
// pending, and the arena's memory is kept for the next generation.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "domain/records.hpp"
#include "persistence/codec.hpp"
#include "persistence/write_ops.hpp"

namespace canopy::persistence {

// Thread-safety: one thread calls every method (the writer's); the sorter is internal.
class PendingIdRows {
 public:
  using Clock = std::chrono::steady_clock;

  PendingIdRows() = default;
  // Tests: `before_sort` runs on the sorter's thread before each sort (to hold one in progress).
  explicit PendingIdRows(std::function<void()> before_sort) : before_sort_(std::move(before_sort)) {}
  // Waits for a sort in progress, then stops the sorter.
  ~PendingIdRows();
  PendingIdRows(const PendingIdRows&) = delete;
  PendingIdRows& operator=(const PendingIdRows&) = delete;

  // The rows of the accepted events of `batch`, journaled as record `seq` at `now`.
  // REQUIRES: seq greater than any added before.
  void add(std::uint64_t seq, const domain::ChargeBatch& batch, Clock::time_point now);

  // True when a checkpoint of rows is in progress and sorted (rows can be written now), or, with none
  // in progress, when rows wait since `cutoff` or earlier, or more rows wait than
  // limits::pending_id_rows_max. False while the checkpoint in progress is being sorted, so an idle
  // writer does not spin on it: the sorted listener (below) tells it when the rows can be written.
  bool due(Clock::time_point cutoff) const;
  // Begins a checkpoint of every pending row unless one is in progress, and starts its sort. Returns
  // whether one is in progress now.
  bool begin();
  // Writes the next rows of the checkpoint in progress into `ops`: `max_rows`, or a
  // 1/limits::checkpoint_id_slices_min share of the checkpoint if that is more; all of them when more
  // than limits::pending_id_rows_max wait behind it (a writer that falls behind catches up in one
  // commit rather than holding without bound). Nothing while its sort runs. Returns how many it wrote.
  std::size_t write_slice(WriteOps& ops, std::size_t max_rows);
  // Writes every row, pending or in a checkpoint, into `ops` (recovery, shutdown): waits for the sort.
  void write_all(WriteOps& ops);
  // Returns once the checkpoint in progress, if any, is sorted.
  void wait_sorted();
  // Called on the sorter's thread after each sort, so an idle writer need not wait for its next poll
  // to write the slices. Set before the first begin().
  void set_sorted_listener(std::function<void()> listener) { sorted_listener_ = std::move(listener); }

  // Once the ops written so far are committed, every row of every record up to this seq, of those
  // up to `last_seq` (the last record added or seen), is in the store: the first record with rows
  // not yet written, less one.
  std::uint64_t indexed_through(std::uint64_t last_seq) const;
  // Rows not yet written into ops.
  std::size_t size() const { return writing_count_ - next_ + pending_.rows.size(); }
  // Rows written into ops so far, ever.
  std::uint64_t written_total() const { return written_total_; }

 private:
  struct Row {
    std::uint64_t org;        // the key's first 8 bytes, and the id's next 8 (zero-padded), as numbers
    std::uint64_t id_prefix;  // that order like the bytes: most comparisons of a sort end here
    std::size_t key_offset;
    std::size_t key_size;
    std::size_t value_offset;  // an encoded EventIdRow (codec.hpp)
  };
  struct Generation {
    std::string arena;
    std::vector<Row> rows;
    std::uint64_t first_seq = 0;  // of the first record with rows here; 0 while empty
    Clock::time_point since{};    // when that record was added
    std::string_view key(const Row& r) const { return {arena.data() + r.key_offset, r.key_size}; }
    std::string_view value(const Row& r) const { return {arena.data() + r.value_offset, event_id_row_bytes}; }
    void clear();
  };

  void put(WriteOps& ops, const Row& row) const;
  bool writing() const { return next_ < writing_count_; }
  // True unless the checkpoint in progress is being sorted.
  bool sorted() const { return sort_done_.load(std::memory_order_acquire); }
  void start_sort();
  void sorter();

  Generation pending_;  // rows no checkpoint has taken yet
  // The checkpoint in progress: rows [0, next_) written. Until sort_done_, its rows and arena are the
  // sorter's; this thread reads only first_seq and writing_count_.
  Generation writing_;
  std::size_t writing_count_ = 0;  // writing_.rows.size(), readable while the sorter holds the rows
  std::size_t next_ = 0;
  std::uint64_t written_total_ = 0;

  // False from handing a sort to the sorter until it has finished (release: the rows are in order);
  // true whenever no sort is in flight.
  std::atomic<bool> sort_done_{true};
  std::mutex sort_mutex_;
  std::condition_variable sort_wake_;   // the sorter: a sort is asked for, or stop
  std::condition_variable sort_ended_;  // wait_sorted(): the sort is done
  bool sort_asked_ = false;             // under sort_mutex_
  bool sorter_stopping_ = false;        // under sort_mutex_
  std::function<void()> before_sort_;
  std::function<void()> sorted_listener_;
  std::thread sorter_thread_;           // started with the first sort, joined by the destructor
};

}  // namespace canopy::persistence

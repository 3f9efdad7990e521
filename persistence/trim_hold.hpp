// Holds on the journal trim, across processes (store.hpp: Store::trim_limit).
//
// A backup (`canopy backup`, another process than the server) copies the state part, the audit part,
// then the journal part. The server must not trim past the copied state part's mark or the copied
// audit base in between, or the copied journal would lack records recovery or the audit needs. So a
// copy first takes a hold: it reads the mark and the base, then places a file in the data folder
// naming the lower, under an exclusive flock, for as long as it copies. The journal trim reads the
// holds after the base it erases up to (journal_trim.hpp), so either it sees the hold and stays at or
// below it, or the hold, and so the copy, came after that base (and the mark behind it) was committed.
//
// A hold is a file "trim-hold-PID-N-RANDOM" (mode 0644: the server may run as another user). One
// the server cannot read holds everything. One seen unlocked belongs to a copy that died, unless it
// is younger than limits::trim_hold_lock_grace_seconds (a copy between creating and locking it):
// then it holds everything too; past that it is removed and ignored. The random part keeps a reused
// pid from ever naming a live hold the server is removing.
#pragma once

#include <cstdint>
#include <string>

#include "persistence/store.hpp"

namespace canopy::persistence {

class TrimHold {
 public:
  // Holds trimming at `through` in `dir` until destroyed. A folder on read-only media holds nothing
  // (no server writes to it either); any other failure to create the hold is an error.
  TrimHold(const std::string& dir, std::uint64_t through, Status& status);
  ~TrimHold();
  TrimHold(const TrimHold&) = delete;
  TrimHold& operator=(const TrimHold&) = delete;

 private:
  std::string path_;
  int fd_ = -1;
};

// The lowest mark held in `dir` (UINT64_MAX: none).
std::uint64_t held_trim_limit(const std::string& dir);

}  // namespace canopy::persistence

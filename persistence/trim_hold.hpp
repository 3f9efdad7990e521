// Holds on the journal trim, across processes (store.hpp: Store::trim_limit).
//
// A backup (`canopy backup`, another process than the server) copies the state part, then the journal
// part. The server must not trim past the copied state part's mark in between, or the copied journal
// would lack records recovery replays after that mark. So a copy first takes a hold: it reads the mark,
// then places a file in the data folder naming it, under an exclusive flock, for as long as it copies.
// The journal trim reads the holds after the mark it trims through (journal_trim.hpp), so either it
// sees the hold and stays at or below the held mark, or the hold, and so the state copy, came after
// that mark was committed, which the copy then holds too.
//
// A hold is a file "trim-hold-*" renamed into place only once it is locked and written, so a file
// seen unlocked belongs to a copy that died: it is removed and ignored.
#pragma once

#include <cstdint>
#include <string>

#include "persistence/store.hpp"

namespace canopy::persistence {

class TrimHold {
 public:
  // Holds trimming at `through` in `dir` until destroyed. A folder this process cannot write to
  // (read-only media) holds nothing: no server writes to it either.
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

// Start-up recovery and the offline audit.
//
// recover(): brings the stored org state up to the end of the journal by replaying every record after
// the last checkpoint through the Materializer, then writes a new checkpoint. Deterministic: the same
// journal always gives the same state. Must run before anything else touches the store.
//
// audit(): `canopy check`. Recomputes every org from the records (the audit base, where the trimmed
// ones are folded, then the journal: journal_trim.hpp), and independently sums each org's balance
// (credits in, transfers, charges paid), then compares both with what is stored (checkpoint +
// replayed tail), all read from one view of the store (Store::read), so it may run beside a live
// server. Every difference is reported; nothing is written.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "persistence/store.hpp"

namespace canopy::persistence {

struct RecoveryResult {
  std::uint64_t last_seq = 0;         // the journal's last record; the writer continues after it
  std::uint64_t replayed_records = 0;
};

Status recover(Store& store, RecoveryResult& result);

struct AuditResult {
  std::uint64_t base_seq = 0;  // the audit base's last record (0: the journal was never trimmed)
  std::uint64_t records = 0;   // in the journal after it
  std::uint64_t orgs = 0;
  std::vector<std::string> problems;
};

Status audit(const Store& store, AuditResult& result);

}  // namespace canopy::persistence

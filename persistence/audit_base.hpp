// The audit base: the audit's fold (audit_fold.hpp) of the journal's records up to a seq, kept in the
// audit part (store.hpp), so that the journal can be trimmed behind it (journal_trim.hpp) and
// `canopy check` still reaches what a fold of every record ever written would: it starts from the
// base and folds the records after it.
//
// advance() folds the records after the base up to a given seq, which its caller keeps at or below the
// committed checkpoint mark (the records recovery no longer needs), and adds the audit part's ops: the
// base rows of the orgs it touched and the new base seq, one commit. A call folds at most
// limits::audit_base_orgs_per_commit_max orgs and limits::audit_base_bytes_per_commit of records, so
// its memory and its read transaction stay bounded; the next call goes on from there.
//
// It never folds a record the audit would report: one that does not decode, that follows a gap, that
// names an org the base lacks or that an org refuses. It stops before it, for good, and says why
// (stopped_because()); the journal then keeps the record, and `canopy check` reports it.
//
// Run by the journal trimmer's thread (actors/journal_trimmer.hpp), off the writer's.
#pragma once

#include <cstdint>
#include <string>

#include "domain/time.hpp"
#include "persistence/audit_fold.hpp"
#include "persistence/store.hpp"
#include "persistence/write_ops.hpp"

namespace canopy::persistence {

class AuditBase {
 public:
  // Reads where the store's base is.
  AuditBase(const Store& store, Status& status);

  // Folds the records after the base up to `through` (bounded, above) and adds the audit part's ops
  // to `ops`. Returns how many records it folded (0: none left, stopped, or the journal could not be
  // read). The next call must come after `ops` are committed (it reads the rows they write).
  std::size_t advance(std::uint64_t through, WriteOps& ops);

  // Every record up to it is folded in once the ops of the last call are committed.
  std::uint64_t seq() const { return seq_; }
  // Why the fold stopped for good (a record the audit would report), or empty.
  const std::string& stopped_because() const { return stopped_; }

 private:
  void stop(std::string why);
  // The base row of `id` into orgs_, unless there or absent. False if the store cannot give it.
  bool load(domain::OrgId id);

  const Store& store_;
  std::uint64_t seq_ = 0;              // audit_meta base_seq
  domain::Timestamp charged_at_ = 0;   // audit_meta charged_at
  AuditedOrgs orgs_;                   // the base rows one call folds into
  std::string stopped_;
};

}  // namespace canopy::persistence

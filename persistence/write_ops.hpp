// The ops of one commit, built in place and kept from one commit to the next.
//
// clear() forgets the ops but keeps each op's key and value buffers, so the next commit writes its
// ops into memory it already has: a writer committing hundreds of thousands of event ids a second
// allocates for them once, not twice per id (LevelDB's WriteBatch keeps one buffer for the same
// reason). It keeps at most limits::write_ops_kept_max ops' buffers: a rare huge commit's are freed.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "config/limits.hpp"
#include "persistence/store.hpp"

namespace canopy::persistence {

class WriteOps {
 public:
  // A new last op on `table`, its key and value empty (their buffers kept), to fill in place.
  WriteOp& add(Table table, bool erase = false) {
    if (size_ == ops_.size()) ops_.emplace_back();
    WriteOp& op = ops_[size_++];
    op.table = table;
    op.key.clear();
    op.value.clear();
    op.erase = erase;
    return op;
  }
  // A whole op built elsewhere (paths too cold to build in place).
  void push_back(WriteOp op) { add(op.table) = std::move(op); }
  void clear() {
    size_ = 0;
    if (ops_.size() > limits::write_ops_kept_max) {
      ops_.resize(limits::write_ops_kept_max);
      ops_.shrink_to_fit();
    }
  }

  // Moves the ops on the tables of `part` to the end of `out`, in order; the others stay, in order.
  // Buffers are swapped, not copied, so both keep memory for their next commits.
  void move_part(Part part, WriteOps& out) {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < size_; ++i) {
      WriteOp& op = ops_[i];
      if (part_of(op.table) == part) {
        take(out.add(op.table, op.erase), op);
      } else {
        if (kept != i) take(ops_[kept], op);
        ++kept;
      }
    }
    size_ = kept;
  }
  // Moves every op to the end of `out`, in order; this is empty afterwards.
  void move_all(WriteOps& out) {
    for (std::size_t i = 0; i < size_; ++i) take(out.add(ops_[i].table, ops_[i].erase), ops_[i]);
    size_ = 0;
  }

  std::size_t size() const { return size_; }
  // Ops whose buffers are kept for the next commits, in use or not.
  std::size_t kept() const { return ops_.size(); }
  bool empty() const { return size_ == 0; }
  const WriteOp& operator[](std::size_t i) const { return ops_[i]; }
  const WriteOp* begin() const { return ops_.data(); }
  const WriteOp* end() const { return ops_.data() + size_; }
  // What Store::commit takes.
  std::span<const WriteOp> span() const { return {ops_.data(), size_}; }

 private:
  static void take(WriteOp& to, WriteOp& from) {
    to.table = from.table;
    to.erase = from.erase;
    to.key.swap(from.key);
    to.value.swap(from.value);
  }

  std::vector<WriteOp> ops_;  // [0, size_) in use; the rest kept for their buffers
  std::size_t size_ = 0;
};

}  // namespace canopy::persistence

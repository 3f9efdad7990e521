// The u64 the store keeps under one key: marks, seqs and times (keys.hpp: the checkpoint mark, the
// audit base's seq, how far the journal is erased, ...), each 0 while absent.
#pragma once

#include <cstdint>
#include <string_view>

#include "persistence/keys.hpp"
#include "persistence/store.hpp"

namespace canopy::persistence {

// The u64 under `key` in `table` into `value` (0: absent). `Reader`: a Store, or a Snapshot of one (the
// audit reads one consistent view).
template <class Reader>
Status read_stored_u64(const Reader& store, Table table, std::string_view key, std::uint64_t& value) {
  value = 0;
  return store.scan(table, key, {}, [&](std::string_view found, std::string_view bytes) {
    if (found == key) value = get_u64_be(bytes);
    return false;
  });
}

}  // namespace canopy::persistence

// Key layout. All integers are big-endian so LMDB's byte order is numeric order.
//
// Journal part (store.hpp):
//   meta         "schema" -> u64 version
//                "operator_token_hash" -> 32 bytes | "manual_clock" -> i64 seconds
//                "journal_erased_through" -> u64: the journal's records up to it are erased
//                (journal_trim.hpp), never past the audit base's seq
//   journal      u64 seq -> record (codec.hpp); seq starts at 1, no gaps, and begins after
//                journal_erased_through once trimmed
//   users        u64 user -> user row (email, name, created_at, token hash)
//   emails       lower-cased email -> u64 user
//   tokens       32-byte SHA-256 of a token -> u8 kind + u64 owner, then by kind (TokenRow in codec.hpp):
//                user: nothing | api_key: u64 key id | invitation: u64 invitation id + u8 used
//   payments     u64 org + u64 (UINT64_MAX - seq) -> payment row (newest first when scanned)
//   payment_keys u64 org + idempotency key -> u64 journal seq of the payment
//   webhook_outbox      u64 delivery id (alert id x webhook) -> OutboxRow: deliveries not finished yet
//   webhook_deliveries  u64 webhook + u64 (UINT64_MAX - seq) -> DeliveryRow: attempts, newest first
// State part:
//   checkpoint   "checkpoint_seq" -> u64: every record up to it is in the state part's tables
//                (in a folder from before the parts, this key was in meta)
//   orgs         u64 org -> OrgState and the seq it is as of (materializer.hpp)
//   event_ids    u64 org + event id bytes -> u64 journal seq of the accepted charge + u64 payer
//                + i64 accepted at (EventIdRow in codec.hpp); forgotten after the retention (id_purge.hpp)
//   usage        u64 org + u8 BucketKind + u32 period (day or cycle, + 2^31) + event type (usage kinds)
//                -> Bucket (codec.hpp): an org's buckets of one kind are contiguous and in time order
// Audit part:
//   audit_base   u64 org -> i64 credits + i64 debits + OrgState (audit_fold.hpp): the audit's fold of
//                the journal's records up to the base seq, where `canopy check` starts
//   audit_meta   "base_seq" -> u64: the last record folded into audit_base | "charged_at" -> i64: when
//                the last of them that accepted events was journaled (no earlier than any of their
//                ids was accepted: id_purge.hpp)
//   audit_dates  u64 seq -> i64: every charge in the records up to seq was accepted by then; a row
//                each time that day changes (dates the ids of trimmed records to within a day)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace canopy::persistence {

// 2: the journal may be trimmed behind an audit base (journal_trim.hpp). A folder of version 1 (never
// trimmed) is read as it is and marked 2 by the first start of a build that trims.
inline constexpr std::uint32_t schema_version = 2;
inline constexpr std::uint32_t schema_version_trim_free = 1;

inline void put_u64_be(std::string& out, std::uint64_t v) {
  char bytes[8];
  for (int i = 7; i >= 0; --i, v >>= 8) bytes[i] = static_cast<char>(v & 0xff);
  out.append(bytes, sizeof bytes);
}

inline std::uint64_t get_u64_be(std::string_view in) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8 && i < in.size(); ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

inline std::string u64_key(std::uint64_t v) {
  std::string out;
  out.reserve(8);
  put_u64_be(out, v);
  return out;
}

// The u64 (an org, mostly) that scoped keys and usage keys begin with.
inline constexpr std::size_t scope_bytes = 8;

// scoped_key() appended to `out` (an arena of keys: persistence/pending_id_rows.cpp).
inline void append_scoped_key(std::string& out, std::uint64_t scope, std::string_view rest) {
  put_u64_be(out, scope);
  out.append(rest);
}

// scoped_key() into `out`, reusing its buffer (the hot path's idempotency lookups).
inline void assign_scoped_key(std::string& out, std::uint64_t scope, std::string_view rest) {
  out.clear();
  out.reserve(scope_bytes + rest.size());
  append_scoped_key(out, scope, rest);
}

inline std::string scoped_key(std::uint64_t scope, std::string_view rest) {
  std::string out;
  assign_scoped_key(out, scope, rest);
  return out;
}

// The period of a usage key as an unsigned big-endian number that sorts like the signed one.
inline void put_period(std::string& out, std::int32_t period) {
  const auto v = static_cast<std::uint32_t>(period) ^ 0x80000000u;
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

inline std::int32_t get_period(std::string_view in) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4 && i < in.size(); ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return static_cast<std::int32_t>(v ^ 0x80000000u);
}

inline constexpr std::size_t usage_key_type_offset = 13;  // org, kind, period

// Appends u64 org + u8 kind: the prefix of every bucket of that kind.
inline void append_usage_prefix(std::string& out, std::uint64_t org, std::uint8_t kind) {
  put_u64_be(out, org);
  out.push_back(static_cast<char>(kind));
}

inline std::string usage_prefix(std::uint64_t org, std::uint8_t kind) {
  std::string out;
  out.reserve(usage_key_type_offset);
  append_usage_prefix(out, org, kind);
  return out;
}

// Appends the key to `out` (a buffer kept by a caller that makes many keys).
inline void append_usage_key(std::string& out, std::uint64_t org, std::uint8_t kind, std::int32_t period,
                             std::string_view type = {}) {
  append_usage_prefix(out, org, kind);
  put_period(out, period);
  out.append(type);
}

inline std::string usage_key(std::uint64_t org, std::uint8_t kind, std::int32_t period, std::string_view type = {}) {
  std::string out;
  out.reserve(usage_key_type_offset + type.size());
  append_usage_key(out, org, kind, period, type);
  return out;
}

inline constexpr std::string_view meta_schema = "schema";
inline constexpr std::string_view checkpoint_mark_key = "checkpoint_seq";
inline constexpr std::string_view meta_operator_token_hash = "operator_token_hash";
inline constexpr std::string_view meta_manual_clock = "manual_clock";
inline constexpr std::string_view meta_journal_erased_through = "journal_erased_through";
inline constexpr std::string_view audit_base_seq_key = "base_seq";
inline constexpr std::string_view audit_charged_at_key = "charged_at";

enum class TokenKind : std::uint8_t { user = 1, api_key = 2, invitation = 3 };

}  // namespace canopy::persistence

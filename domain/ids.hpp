// Identifiers and secrets.
//
// Internally every entity is a 64-bit number (compact keys in LMDB, cheap maps in actors). On the wire
// it is a prefixed opaque string: `org_` + 13 Crockford base32 characters. Ids are random, so they
// reveal neither how many orgs exist nor when one was made. Tokens (`cu_`, `ck_`, `ci_`) are 32 random bytes;
// only their SHA-256 is ever stored.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace canopy::domain {

enum class OrgId : std::uint64_t { none = 0 };
enum class UserId : std::uint64_t { none = 0 };
enum class KeyId : std::uint64_t { none = 0 };
enum class PaymentId : std::uint64_t { none = 0 };
enum class InvitationId : std::uint64_t { none = 0 };

constexpr std::uint64_t raw(OrgId id) { return static_cast<std::uint64_t>(id); }
constexpr std::uint64_t raw(UserId id) { return static_cast<std::uint64_t>(id); }
constexpr std::uint64_t raw(KeyId id) { return static_cast<std::uint64_t>(id); }
constexpr std::uint64_t raw(PaymentId id) { return static_cast<std::uint64_t>(id); }
constexpr std::uint64_t raw(InvitationId id) { return static_cast<std::uint64_t>(id); }

inline constexpr std::string_view org_prefix = "org_";
inline constexpr std::string_view user_prefix = "usr_";
inline constexpr std::string_view key_prefix = "key_";
inline constexpr std::string_view payment_prefix = "pay_";
inline constexpr std::string_view invitation_prefix = "inv_";
inline constexpr std::string_view user_token_prefix = "cu_";
inline constexpr std::string_view api_key_prefix = "ck_";
inline constexpr std::string_view invitation_token_prefix = "ci_";  // the secret in an invitation link

// A fresh nonzero random 64-bit value from the operating system's CSPRNG.
std::uint64_t random_id();

std::string format_id(std::string_view prefix, std::uint64_t value);
// The same appended to `out`: no allocation once `out` has room (JSON answers write thousands).
void append_id(std::string& out, std::string_view prefix, std::uint64_t value);
// Parses `<prefix><13 base32 chars>`; nullopt for anything else (wrong prefix, length, alphabet, zero).
std::optional<std::uint64_t> parse_id(std::string_view prefix, std::string_view text);

inline std::string to_string(OrgId id) { return format_id(org_prefix, raw(id)); }
inline std::string to_string(UserId id) { return format_id(user_prefix, raw(id)); }
inline std::string to_string(KeyId id) { return format_id(key_prefix, raw(id)); }
inline std::string to_string(PaymentId id) { return format_id(payment_prefix, raw(id)); }
inline std::string to_string(InvitationId id) { return format_id(invitation_prefix, raw(id)); }
std::optional<OrgId> parse_org_id(std::string_view text);
std::optional<UserId> parse_user_id(std::string_view text);
std::optional<KeyId> parse_key_id(std::string_view text);
std::optional<InvitationId> parse_invitation_id(std::string_view text);

using TokenHash = std::array<std::uint8_t, 32>;

// `<prefix>` + 43 base64url characters of 32 random bytes.
std::string make_token(std::string_view prefix);
TokenHash hash_token(std::string_view token);
// Constant-time equality, for comparing a presented secret's hash against a stored one.
bool hashes_equal(const TokenHash& a, const TokenHash& b);
std::string to_hex(const std::uint8_t* data, std::size_t size);

}  // namespace canopy::domain

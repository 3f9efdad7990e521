#include "domain/ids.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/evp.h>

#include <cstdlib>
#include <cstring>

namespace canopy::domain {
namespace {

constexpr std::string_view crockford = "0123456789abcdefghjkmnpqrstvwxyz";
constexpr std::size_t id_chars = 13;  // ceil(64 / 5)

void random_bytes(std::uint8_t* out, std::size_t size) {
  if (RAND_bytes(out, static_cast<int>(size)) != 1) {
    std::abort();  // no entropy means no safe ids or tokens: refuse to go on
  }
}

int crockford_value(char c) {
  const auto pos = crockford.find(c);
  return pos == std::string_view::npos ? -1 : static_cast<int>(pos);
}

}  // namespace

std::uint64_t random_id() {
  std::uint64_t value = 0;
  while (value == 0) {
    std::uint8_t bytes[8];
    random_bytes(bytes, sizeof bytes);
    std::memcpy(&value, bytes, sizeof value);
  }
  return value;
}

void append_id(std::string& out, std::string_view prefix, std::uint64_t value) {
  out.append(prefix);
  char digits[id_chars];
  for (std::size_t i = 0; i < id_chars; ++i) {
    digits[id_chars - 1 - i] = crockford[value & 31u];
    value >>= 5;
  }
  out.append(digits, id_chars);
}

std::string format_id(std::string_view prefix, std::uint64_t value) {
  std::string out;
  out.reserve(prefix.size() + id_chars);
  append_id(out, prefix, value);
  return out;
}

std::optional<std::uint64_t> parse_id(std::string_view prefix, std::string_view text) {
  if (text.size() != prefix.size() + id_chars || text.substr(0, prefix.size()) != prefix) {
    return std::nullopt;
  }
  std::uint64_t value = 0;
  const auto digits = text.substr(prefix.size());
  // The first character carries only 4 bits (13 * 5 = 65): anything above 15 would overflow.
  if (crockford_value(digits[0]) > 15) return std::nullopt;
  for (char c : digits) {
    const int v = crockford_value(c);
    if (v < 0) return std::nullopt;
    value = (value << 5) | static_cast<std::uint64_t>(v);
  }
  if (value == 0) return std::nullopt;
  return value;
}

std::optional<OrgId> parse_org_id(std::string_view text) {
  if (auto v = parse_id(org_prefix, text)) return OrgId{*v};
  return std::nullopt;
}

std::optional<UserId> parse_user_id(std::string_view text) {
  if (auto v = parse_id(user_prefix, text)) return UserId{*v};
  return std::nullopt;
}

std::optional<KeyId> parse_key_id(std::string_view text) {
  if (auto v = parse_id(key_prefix, text)) return KeyId{*v};
  return std::nullopt;
}

std::optional<InvitationId> parse_invitation_id(std::string_view text) {
  if (auto v = parse_id(invitation_prefix, text)) return InvitationId{*v};
  return std::nullopt;
}

std::string make_token(std::string_view prefix) {
  static constexpr std::string_view alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::uint8_t bytes[32];
  random_bytes(bytes, sizeof bytes);
  std::string out(prefix);
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::uint8_t b : bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(alphabet[(acc >> bits) & 63u]);
    }
  }
  if (bits > 0) out.push_back(alphabet[(acc << (6 - bits)) & 63u]);
  return out;
}

TokenHash hash_token(std::string_view token) {
  // Every request hashes its bearer token. OpenSSL 3's one-shot SHA256() looks the algorithm up on
  // each call, which cost more than the hashing; the implementation is fetched once instead.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  TokenHash out{};
  if (sha256 == nullptr || EVP_Digest(token.data(), token.size(), out.data(), nullptr, sha256, nullptr) != 1) {
    std::abort();  // no SHA-256 means no way to check any token: refuse to go on
  }
  return out;
}

bool hashes_equal(const TokenHash& a, const TokenHash& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string to_hex(const std::uint8_t* data, std::size_t size) {
  static constexpr std::string_view digits = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out.push_back(digits[data[i] >> 4]);
    out.push_back(digits[data[i] & 15]);
  }
  return out;
}

}  // namespace canopy::domain

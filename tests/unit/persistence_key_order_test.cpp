// The key order LMDB is given (persistence/key_order.hpp): exactly the default (memcmp) order, so files
// written with it are read alike by LMDB's own tools and by builds before it.
#include "persistence/key_order.hpp"

#include <gtest/gtest.h>
#include <lmdb.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "persistence/keys.hpp"
#include "persistence/store.hpp"

namespace canopy::persistence {
namespace {

int sign(int v) { return (v > 0) - (v < 0); }

// What LMDB's default comparator (mdb_cmp_memn) and std::string answer.
int reference(std::string_view a, std::string_view b) { return sign(a.compare(b)); }

// Keys as the store has them: bytes in memory, not literals (whose known size GCC's sanitized builds
// check the word loads against, though the loop never reaches past the shorter key).
int cmp(const std::string& a, const std::string& b) { return compare_keys(a, b); }

TEST(KeyOrder, ComparesAsUnsignedBytesEightAtATime) {
  EXPECT_EQ(cmp("", ""), 0);
  EXPECT_LT(cmp("", "a"), 0);
  EXPECT_GT(cmp("a", ""), 0);
  EXPECT_EQ(cmp("abcdefgh", "abcdefgh"), 0);
  // The first differing byte decides, wherever it is in an 8-byte word: not the word's low byte.
  EXPECT_LT(cmp("abcdefgh", "abcdefgi"), 0);
  EXPECT_LT(cmp("abcdefgh", "bbcdefga"), 0);
  // Bytes from 0x80 up sort after the others (unsigned), in the word and in the tail.
  EXPECT_LT(cmp(std::string("\x7f", 1), std::string("\x80", 1)), 0);
  EXPECT_LT(cmp(std::string(9, '\x7f'), std::string(8, '\x7f') + "\xff"), 0);
  EXPECT_GT(cmp(std::string(8, '\xff'), std::string(7, '\xff') + "\x01"), 0);
}

TEST(KeyOrder, AKeyComesBeforeTheLongerKeysItBegins) {
  EXPECT_LT(cmp("abc", "abcd"), 0);
  EXPECT_LT(cmp(std::string("abcdefgh", 8), std::string("abcdefgh\0", 9)), 0);
  EXPECT_GT(cmp(std::string("abc\0", 4), "abc"), 0);
  EXPECT_LT(cmp(std::string("ab\0", 3), "ab\x01"), 0);
}

TEST(KeyOrder, AgreesWithTheDefaultOrderOnOrgScopedIdsOfEveryLength) {
  std::mt19937_64 rng(20261127);
  // Few distinct bytes, so that long shared prefixes and ties are common.
  const std::string alphabet("\x00\x01\x7f\x80\xfe\xff" "a0", 8);
  const auto random_key = [&] {
    std::string key;
    put_u64_be(key, rng() % 3);
    key.resize(rng() % 2 == 0 ? key.size() : rng() % 9);  // also shorter than an org
    const std::size_t rest = rng() % 40;
    for (std::size_t i = 0; i < rest; ++i) key.push_back(alphabet[rng() % alphabet.size()]);
    return key;
  };
  for (int i = 0; i < 200'000; ++i) {
    const std::string a = random_key();
    std::string b = rng() % 4 == 0 ? a.substr(0, rng() % (a.size() + 1)) : random_key();
    if (rng() % 4 == 0) b = a;
    ASSERT_EQ(sign(compare_keys(a, b)), reference(a, b)) << testing::PrintToString(a) << " vs " << testing::PrintToString(b);
  }
}

// A table (an org's idempotency keys, any bytes) written through the store (which gives LMDB compare_keys) and read back by plain LMDB with
// its default comparator, as mdb_dump or an older build would: every key is found, in the same order.
TEST(KeyOrder, AStoreWrittenWithItIsReadInTheDefaultOrder) {
  const auto dir = std::filesystem::temp_directory_path() / ("canopy_key_order_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::vector<std::string> keys;
  {
    Status status;
    auto store = open_lmdb_store(dir.string(), {}, status);
    ASSERT_TRUE(status.ok()) << status.message;
    std::mt19937_64 rng(7);
    std::vector<WriteOp> ops;
    for (int i = 0; i < 5'000; ++i) {
      std::string key;
      put_u64_be(key, rng() % 50);
      const std::size_t n = rng() % 24;
      for (std::size_t j = 0; j < n; ++j) key.push_back(static_cast<char>(rng() % 256));
      ops.push_back(WriteOp{Table::payment_keys, key, "v", false});
      keys.push_back(key);
    }
    ASSERT_TRUE(store->commit(ops).ok());
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());

  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), MDB_SUCCESS);
  ASSERT_EQ(mdb_env_set_maxdbs(env, 32), MDB_SUCCESS);
  ASSERT_EQ(mdb_env_open(env, dir.c_str(), MDB_RDONLY, 0600), MDB_SUCCESS);
  MDB_txn* txn = nullptr;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn), MDB_SUCCESS);
  MDB_dbi dbi = 0;
  ASSERT_EQ(mdb_dbi_open(txn, std::string(table_name(Table::payment_keys)).c_str(), 0, &dbi), MDB_SUCCESS);
  MDB_cursor* cursor = nullptr;
  ASSERT_EQ(mdb_cursor_open(txn, dbi, &cursor), MDB_SUCCESS);
  std::vector<std::string> read;
  MDB_val k, v;
  for (int rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST); rc == MDB_SUCCESS; rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
    read.emplace_back(static_cast<const char*>(k.mv_data), k.mv_size);
  }
  EXPECT_EQ(read, keys);
  for (const auto& key : keys) {
    MDB_val kv{key.size(), const_cast<char*>(key.data())};
    EXPECT_EQ(mdb_get(txn, dbi, &kv, &v), MDB_SUCCESS);
  }
  mdb_cursor_close(cursor);
  mdb_txn_abort(txn);
  mdb_env_close(env);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace canopy::persistence

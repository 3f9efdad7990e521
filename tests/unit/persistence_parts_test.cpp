// Goal: the store's two parts (store.hpp). The state tables live in the data folder's `state`
// environment and the rest in the folder's own; a commit of both parts applies the journal part first;
// a folder written before the parts (every table in one environment, the checkpoint mark in meta) is
// moved into them when opened for writing, whole and once, also when a move was cut short, and is
// read as it is when opened read-only; a backup copies both parts and never writes into a store.
// Folders are inspected and written with LMDB itself, as an older Canopy left them.
#include <gtest/gtest.h>
#include <lmdb.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/limits.hpp"
#include "persistence/keys.hpp"
#include "persistence/recovery.hpp"
#include "persistence/store.hpp"
#include "tests/support/temp_dir.hpp"

using namespace canopy;
using namespace canopy::persistence;

namespace {

using Tables = std::map<std::string, std::map<std::string, std::string>>;  // sub-database -> rows

// Writes `tables` into the LMDB environment in `dir` (created), one commit.
void write_env(const std::string& dir, const Tables& tables) {
  std::filesystem::create_directories(dir);
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), MDB_SUCCESS);
  ASSERT_EQ(mdb_env_set_maxdbs(env, 32), MDB_SUCCESS);
  ASSERT_EQ(mdb_env_set_mapsize(env, std::size_t{1} << 30), MDB_SUCCESS);
  ASSERT_EQ(mdb_env_open(env, dir.c_str(), 0, 0600), MDB_SUCCESS);
  MDB_txn* txn = nullptr;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), MDB_SUCCESS);
  for (const auto& [name, rows] : tables) {
    MDB_dbi dbi = 0;
    ASSERT_EQ(mdb_dbi_open(txn, name.c_str(), MDB_CREATE, &dbi), MDB_SUCCESS);
    for (const auto& [k, v] : rows) {
      MDB_val key{k.size(), const_cast<char*>(k.data())}, value{v.size(), const_cast<char*>(v.data())};
      ASSERT_EQ(mdb_put(txn, dbi, &key, &value, 0), MDB_SUCCESS);
    }
  }
  ASSERT_EQ(mdb_txn_commit(txn), MDB_SUCCESS);
  mdb_env_close(env);
}

// Every sub-database of the environment in `dir` and its rows (nullopt: no environment there).
std::optional<Tables> read_env(const std::string& dir) {
  if (!std::filesystem::exists(dir + "/data.mdb")) return std::nullopt;
  MDB_env* env = nullptr;
  Tables tables;
  if (mdb_env_create(&env) != MDB_SUCCESS) return std::nullopt;
  mdb_env_set_maxdbs(env, 32);
  if (mdb_env_open(env, dir.c_str(), MDB_RDONLY, 0600) != MDB_SUCCESS) {
    mdb_env_close(env);
    return std::nullopt;
  }
  MDB_txn* txn = nullptr;
  mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn);
  MDB_dbi main = 0;
  mdb_dbi_open(txn, nullptr, 0, &main);
  MDB_cursor* names = nullptr;
  mdb_cursor_open(txn, main, &names);
  MDB_val k, v;
  for (int rc = mdb_cursor_get(names, &k, &v, MDB_FIRST); rc == MDB_SUCCESS; rc = mdb_cursor_get(names, &k, &v, MDB_NEXT)) {
    const std::string name(static_cast<const char*>(k.mv_data), k.mv_size);
    auto& rows = tables[name];
    MDB_dbi dbi = 0;
    if (mdb_dbi_open(txn, name.c_str(), 0, &dbi) != MDB_SUCCESS) continue;
    MDB_cursor* cursor = nullptr;
    mdb_cursor_open(txn, dbi, &cursor);
    MDB_val rk, rv;
    for (int rc2 = mdb_cursor_get(cursor, &rk, &rv, MDB_FIRST); rc2 == MDB_SUCCESS;
         rc2 = mdb_cursor_get(cursor, &rk, &rv, MDB_NEXT)) {
      rows.emplace(std::string(static_cast<const char*>(rk.mv_data), rk.mv_size),
                   std::string(static_cast<const char*>(rv.mv_data), rv.mv_size));
    }
    mdb_cursor_close(cursor);
  }
  mdb_cursor_close(names);
  mdb_txn_abort(txn);
  mdb_env_close(env);
  return tables;
}

class PartsTest : public ::testing::Test {
 protected:

  std::unique_ptr<Store> open(bool read_only = false) {
    Status status;
    auto store = open_lmdb_store(dir_, read_only ? LmdbOptions::reading() : LmdbOptions{}, status);
    EXPECT_TRUE(status.ok()) << status.message;
    return store;
  }
  static std::optional<std::string> get(const Store& store, Table table, std::string_view key) {
    std::string value;
    const Status s = store.get(table, key, value);
    EXPECT_TRUE(s.ok() || s.is_not_found()) << s.message;
    if (!s.ok()) return std::nullopt;
    return value;
  }
  static std::size_t count(const Store& store, Table table) {
    std::size_t n = 0;
    EXPECT_TRUE(store.scan(table, {}, {}, [&](std::string_view, std::string_view) { return ++n, true; }).ok());
    return n;
  }

  // A folder as Canopy wrote it before the parts (all twelve tables): `ids` event ids, an org, a
  // bucket, the mark at 7.
  Tables unparted(std::size_t ids) {
    Tables t;
    for (const char* empty : {"users", "emails", "tokens", "payment_keys", "webhook_outbox", "webhook_deliveries"}) {
      t[empty] = {};
    }
    t["meta"] = {{std::string(meta_schema), u64_key(schema_version)}, {std::string(checkpoint_mark_key), u64_key(7)}};
    for (std::uint64_t seq = 1; seq <= 8; ++seq) t["journal"][u64_key(seq)] = "record-" + std::to_string(seq);
    t["payments"] = {{"p", "payment"}};
    t["orgs"] = {{u64_key(42), "org-42"}};
    t["usage"] = {{"bucket", "b"}};
    for (std::size_t i = 0; i < ids; ++i) t["event_ids"][scoped_key(42, "id-" + std::to_string(i))] = "row";
    return t;
  }

  test::TempDir temp_;
  std::string root_ = temp_.str();
  std::string dir_ = temp_.str("data");
  std::string state_dir_ = dir_ + "/" + std::string(state_part_folder);
};

TEST_F(PartsTest, StateTablesAreInTheStateFolderAndTheRestBesideIt) {
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    const std::vector<WriteOp> ops = {{Table::journal, u64_key(1), "r"},
                                      {Table::orgs, u64_key(42), "org"},
                                      {Table::event_ids, "id", "row"},
                                      {Table::usage, "bucket", "b"},
                                      {Table::checkpoint, std::string(checkpoint_mark_key), u64_key(1)},
                                      {Table::payments, "p", "pay"}};
    ASSERT_TRUE(store->commit(ops).ok());
  }
  const auto journal = read_env(dir_);
  const auto state = read_env(state_dir_);
  ASSERT_TRUE(journal && state);
  EXPECT_EQ(journal->at("journal").at(u64_key(1)), "r");
  EXPECT_EQ(journal->at("payments").at("p"), "pay");
  EXPECT_EQ(journal->count("orgs") + journal->count("event_ids") + journal->count("usage") + journal->count("checkpoint"), 0u);
  EXPECT_EQ(state->at("orgs").at(u64_key(42)), "org");
  EXPECT_EQ(state->at("event_ids").at("id"), "row");
  EXPECT_EQ(state->at("usage").at("bucket"), "b");
  EXPECT_EQ(state->at("checkpoint").at(std::string(checkpoint_mark_key)), u64_key(1));
  EXPECT_EQ(state->count("journal"), 0u);
}

TEST_F(PartsTest, ACommitWhoseJournalPartFailsAppliesNeitherPart) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  const std::vector<WriteOp> ops = {{Table::orgs, u64_key(42), "org"}, {Table::journal, std::string(600, 'k'), "r"}};
  EXPECT_FALSE(store->commit(ops).ok());
  EXPECT_EQ(get(*store, Table::orgs, u64_key(42)), std::nullopt) << "the state part must never get ahead";
}

TEST_F(PartsTest, AFolderFromBeforeThePartsIsMovedIntoThemWhole) {
  // More event ids than one commit of the move takes.
  const std::size_t ids = limits::legacy_rows_per_commit + 10;
  write_env(dir_, unparted(ids));
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(get(*store, Table::checkpoint, checkpoint_mark_key), u64_key(7));
    EXPECT_EQ(get(*store, Table::orgs, u64_key(42)), "org-42");
    EXPECT_EQ(get(*store, Table::usage, "bucket"), "b");
    EXPECT_EQ(count(*store, Table::event_ids), ids);
    EXPECT_EQ(get(*store, Table::journal, u64_key(8)), "record-8");
    EXPECT_EQ(get(*store, Table::payments, "p"), "payment");
    EXPECT_EQ(get(*store, Table::meta, meta_schema), u64_key(schema_version));
  }
  const auto journal = read_env(dir_);
  ASSERT_TRUE(journal);
  EXPECT_EQ(journal->count("orgs") + journal->count("event_ids") + journal->count("usage"), 0u)
      << "the old tables are dropped once moved";
  EXPECT_EQ(journal->at("meta").count(std::string(checkpoint_mark_key)), 0u);
  // Opened again: nothing moves twice, nothing is lost.
  auto store = open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(count(*store, Table::event_ids), ids);
  EXPECT_EQ(get(*store, Table::checkpoint, checkpoint_mark_key), u64_key(7));
}

TEST_F(PartsTest, AMoveCutShortBeforeTheMarkIsDoneAgainAtTheNextOpen) {
  write_env(dir_, unparted(100));
  write_env(state_dir_, {{"event_ids", {{scoped_key(42, "id-0"), "row"}}}});  // a first commit of the move
  auto store = open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(count(*store, Table::event_ids), 100u);
  EXPECT_EQ(get(*store, Table::orgs, u64_key(42)), "org-42");
  EXPECT_EQ(get(*store, Table::checkpoint, checkpoint_mark_key), u64_key(7));
}

TEST_F(PartsTest, AMoveCutShortAfterTheMarkOnlyDropsTheOldTables) {
  Tables old = unparted(3);
  old["orgs"][u64_key(42)] = "stale";  // the state part's copy is the one that counts once marked
  write_env(dir_, old);
  write_env(state_dir_, {{"checkpoint", {{std::string(checkpoint_mark_key), u64_key(8)}}},
                         {"orgs", {{u64_key(42), "moved"}}}});
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(get(*store, Table::orgs, u64_key(42)), "moved");
    EXPECT_EQ(get(*store, Table::checkpoint, checkpoint_mark_key), u64_key(8));
  }
  EXPECT_EQ(read_env(dir_)->count("orgs"), 0u);
}

TEST_F(PartsTest, ReadOnlyReadsAFolderFromBeforeThePartsAsItIsAndWritesNothing) {
  write_env(dir_, unparted(5));
  auto store = open(/*read_only=*/true);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(get(*store, Table::checkpoint, checkpoint_mark_key), u64_key(7)) << "the mark, from meta";
  EXPECT_EQ(get(*store, Table::orgs, u64_key(42)), "org-42");
  EXPECT_EQ(count(*store, Table::event_ids), 5u);
  EXPECT_EQ(get(*store, Table::journal, u64_key(1)), "record-1");
  EXPECT_FALSE(std::filesystem::exists(state_dir_));
  EXPECT_EQ(read_env(dir_)->count("orgs"), 1u);
}

TEST_F(PartsTest, ReadOnlyReadsAFolderWhoseMoveWasCutShortAsItWas) {
  write_env(dir_, unparted(5));
  write_env(state_dir_, {{"event_ids", {{scoped_key(42, "id-0"), "row"}}}});  // copied in part, no mark
  auto store = open(/*read_only=*/true);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(count(*store, Table::event_ids), 5u);
  EXPECT_EQ(get(*store, Table::checkpoint, checkpoint_mark_key), u64_key(7));
}

TEST_F(PartsTest, AStatePartAheadOfItsJournalIsRefusedByRecovery) {
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    const std::vector<WriteOp> ops = {{Table::journal, u64_key(1), "r"},
                                      {Table::checkpoint, std::string(checkpoint_mark_key), u64_key(5)}};
    ASSERT_TRUE(store->commit(ops).ok());
  }
  auto store = open();
  ASSERT_NE(store, nullptr);
  RecoveryResult result;
  const Status s = recover(*store, result);
  EXPECT_EQ(s.code, Status::Code::corruption);
  EXPECT_NE(s.message.find("record 5"), std::string::npos) << s.message;
}

TEST_F(PartsTest, OldTablesAreNotDroppedForAStatePartFromAnotherJournal) {
  write_env(dir_, unparted(2));  // its journal ends at record 8
  write_env(state_dir_, {{"checkpoint", {{std::string(checkpoint_mark_key), u64_key(500)}}}});
  Status status;
  EXPECT_EQ(open_lmdb_store(dir_, {}, status), nullptr);
  EXPECT_EQ(status.code, Status::Code::corruption) << status.message;
  EXPECT_EQ(read_env(dir_)->at("orgs").at(u64_key(42)), "org-42") << "the old tables are still there";
}

TEST_F(PartsTest, ABackupHoldsBothPartsAndOpensOnItsOwn) {
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    const std::vector<WriteOp> ops = {{Table::journal, u64_key(1), "r"}, {Table::orgs, u64_key(42), "org"}};
    ASSERT_TRUE(store->commit(ops).ok());
    ASSERT_TRUE(store->copy_compacted(root_ + "/backup").ok());
  }
  dir_ = root_ + "/backup";
  auto copy = open();
  ASSERT_NE(copy, nullptr);
  EXPECT_EQ(get(*copy, Table::journal, u64_key(1)), "r");
  EXPECT_EQ(get(*copy, Table::orgs, u64_key(42)), "org");
}

TEST_F(PartsTest, ABackupOfAFolderFromBeforeThePartsIsRefusedWhereAStatePartIs) {
  write_env(dir_, unparted(2));
  auto legacy = open(/*read_only=*/true);
  ASSERT_NE(legacy, nullptr);
  const std::string out = root_ + "/out";
  write_env(out + "/" + std::string(state_part_folder), {{"checkpoint", {{std::string(checkpoint_mark_key), u64_key(1)}}}});
  EXPECT_FALSE(legacy->copy_compacted(out).ok());
  EXPECT_FALSE(std::filesystem::exists(out + "/data.mdb"));
}

TEST_F(PartsTest, ABackupIntoAFolderFromBeforeThePartsIsRefusedAndChangesNothing) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  const std::vector<WriteOp> ops = {{Table::orgs, u64_key(42), "mine"}};
  ASSERT_TRUE(store->commit(ops).ok());
  const std::string other = root_ + "/other";
  write_env(other, unparted(2));
  EXPECT_FALSE(store->copy_compacted(other).ok());
  EXPECT_FALSE(std::filesystem::exists(other + "/" + std::string(state_part_folder)))
      << "a state part there would replace the folder's own when it is next opened";
  EXPECT_EQ(read_env(other)->at("orgs").at(u64_key(42)), "org-42");
}

}  // namespace

// LevelDB files both ways between caffe2rs and Google's C++ LevelDB (libleveldb, Snappy):
// a database Google's library writes (compacted Snappy tables plus records left in its log)
// reads record for record through the C ABI, and one caffe2rs writes (a table plus a log)
// opens in Google's library with paranoid checks and reads back with verified checksums.
#include "caffe2rs.h"
#include "c2rs_test_util.h"

#include <gtest/gtest.h>
#include <leveldb/c.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

namespace {

using Records = std::vector<std::pair<std::string, std::string>>;

std::string FreshDir(const std::string& name) {
  std::string dir = "/tmp/c2rs-leveldb-google-" + std::to_string(getpid()) + "-" + name;
  std::string cmd = "rm -rf '" + dir + "'";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  return dir;
}

// Keys "000000".."000(n-1)", values of several sizes: some span 64 KiB blocks, all compress.
Records MakeRecords(int n) {
  Records out;
  for (int i = 0; i < n; ++i) {
    char key[16];
    std::snprintf(key, sizeof key, "%06d", i);
    const size_t size = i % 50 == 0 ? 100000 : static_cast<size_t>(10 + i % 300);
    std::string value(size, static_cast<char>('a' + i % 26));
    value += std::to_string(i);
    out.emplace_back(key, value);
  }
  return out;
}

// Google's LevelDB with Caffe2's options (Snappy, 64 KiB blocks).
leveldb_options_t* GoogleOptions(bool create) {
  leveldb_options_t* o = leveldb_options_create();
  leveldb_options_set_create_if_missing(o, create ? 1 : 0);
  leveldb_options_set_error_if_exists(o, create ? 1 : 0);
  leveldb_options_set_paranoid_checks(o, 1);
  leveldb_options_set_compression(o, leveldb_snappy_compression);
  leveldb_options_set_block_size(o, 65536);
  return o;
}

Records ReadThroughCaffe2rs(const std::string& dir) {
  Records got;
  c2rs_db* db = nullptr;
  c2rs_db_cursor* cursor = nullptr;
  EXPECT_EQ(c2rs_db_open("leveldb", dir.c_str(), C2RS_DB_READ, &db), C2RS_OK) << c2rs_test::last_error();
  EXPECT_EQ(c2rs_db_cursor_new(db, &cursor), C2RS_OK) << c2rs_test::last_error();
  bool valid = false;
  while (cursor != nullptr && c2rs_db_cursor_valid(cursor, &valid) == C2RS_OK && valid) {
    const uint8_t* k = nullptr;
    const uint8_t* v = nullptr;
    size_t klen = 0;
    size_t vlen = 0;
    EXPECT_EQ(c2rs_db_cursor_key(cursor, &k, &klen), C2RS_OK);
    EXPECT_EQ(c2rs_db_cursor_value(cursor, &v, &vlen), C2RS_OK);
    got.emplace_back(std::string(reinterpret_cast<const char*>(k), klen),
                     std::string(reinterpret_cast<const char*>(v), vlen));
    EXPECT_EQ(c2rs_db_cursor_next(cursor), C2RS_OK) << c2rs_test::last_error();
  }
  c2rs_db_cursor_free(cursor);
  c2rs_db_free(db);
  return got;
}

TEST(LevelDbGoogle, ADbWrittenByGooglesLevelDbReadsRecordForRecord) {
  const std::string dir = FreshDir("google-writes");
  const Records records = MakeRecords(400);
  char* err = nullptr;
  leveldb_options_t* options = GoogleOptions(true);
  leveldb_t* db = leveldb_open(options, dir.c_str(), &err);
  ASSERT_EQ(err, nullptr) << (err != nullptr ? err : "");
  ASSERT_NE(db, nullptr);
  leveldb_writeoptions_t* wo = leveldb_writeoptions_create();
  for (size_t start = 0; start < records.size(); start += 100) {
    leveldb_writebatch_t* batch = leveldb_writebatch_create();
    for (size_t i = start; i < start + 100; ++i) {
      leveldb_writebatch_put(batch, records[i].first.data(), records[i].first.size(),
                             records[i].second.data(), records[i].second.size());
    }
    leveldb_write(db, wo, batch, &err);
    ASSERT_EQ(err, nullptr) << (err != nullptr ? err : "");
    leveldb_writebatch_destroy(batch);
    if (start == 200) leveldb_compact_range(db, nullptr, 0, nullptr, 0);  // the rest stays in the log
  }
  leveldb_writeoptions_destroy(wo);
  leveldb_close(db);
  leveldb_options_destroy(options);

  const Records got = ReadThroughCaffe2rs(dir);
  ASSERT_EQ(got.size(), records.size());
  EXPECT_TRUE(got == records);

  c2rs_db* c2 = nullptr;
  c2rs_db_cursor* cursor = nullptr;
  ASSERT_EQ(c2rs_db_open("LevelDB", dir.c_str(), C2RS_DB_READ, &c2), C2RS_OK) << c2rs_test::last_error();
  ASSERT_EQ(c2rs_db_cursor_new(c2, &cursor), C2RS_OK);
  const std::string probe = "000250x";
  ASSERT_EQ(c2rs_db_cursor_seek(cursor, reinterpret_cast<const uint8_t*>(probe.data()), probe.size()),
            C2RS_OK);
  const uint8_t* k = nullptr;
  size_t klen = 0;
  ASSERT_EQ(c2rs_db_cursor_key(cursor, &k, &klen), C2RS_OK);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(k), klen), "000251");
  c2rs_db_cursor_free(cursor);
  c2rs_db_free(c2);
}

TEST(LevelDbGoogle, ADbWrittenByCaffe2rsOpensInGooglesLevelDbWithChecksumsVerified) {
  const std::string dir = FreshDir("caffe2rs-writes");
  const Records records = MakeRecords(300);
  // First half: written, closed, reopened for writing (the log becomes a Snappy table);
  // second half: left in the log.
  for (int half = 0; half < 2; ++half) {
    c2rs_db* db = nullptr;
    c2rs_db_transaction* txn = nullptr;
    ASSERT_EQ(c2rs_db_open("leveldb", dir.c_str(), half == 0 ? C2RS_DB_NEW : C2RS_DB_WRITE, &db),
              C2RS_OK)
        << c2rs_test::last_error();
    ASSERT_EQ(c2rs_db_transaction_new(db, &txn), C2RS_OK);
    for (size_t i = half * 150; i < (half + 1) * 150u; ++i) {
      const auto& [key, value] = records[i];
      ASSERT_EQ(c2rs_db_transaction_put(txn, reinterpret_cast<const uint8_t*>(key.data()), key.size(),
                                        reinterpret_cast<const uint8_t*>(value.data()), value.size()),
                C2RS_OK);
    }
    ASSERT_EQ(c2rs_db_transaction_commit(txn), C2RS_OK) << c2rs_test::last_error();
    c2rs_db_transaction_free(txn);
    c2rs_db_free(db);  // the last handle: closed, LOCK released
  }

  char* err = nullptr;
  leveldb_options_t* options = GoogleOptions(false);
  leveldb_t* db = leveldb_open(options, dir.c_str(), &err);
  ASSERT_EQ(err, nullptr) << (err != nullptr ? err : "");
  ASSERT_NE(db, nullptr);
  leveldb_readoptions_t* ro = leveldb_readoptions_create();
  leveldb_readoptions_set_verify_checksums(ro, 1);
  leveldb_iterator_t* it = leveldb_create_iterator(db, ro);
  Records got;
  for (leveldb_iter_seek_to_first(it); leveldb_iter_valid(it); leveldb_iter_next(it)) {
    size_t klen = 0;
    size_t vlen = 0;
    const char* k = leveldb_iter_key(it, &klen);
    const char* v = leveldb_iter_value(it, &vlen);
    got.emplace_back(std::string(k, klen), std::string(v, vlen));
  }
  leveldb_iter_get_error(it, &err);
  ASSERT_EQ(err, nullptr) << (err != nullptr ? err : "");
  leveldb_iter_destroy(it);
  leveldb_readoptions_destroy(ro);
  leveldb_close(db);
  leveldb_options_destroy(options);
  ASSERT_EQ(got.size(), records.size());
  EXPECT_TRUE(got == records);
}

}  // namespace

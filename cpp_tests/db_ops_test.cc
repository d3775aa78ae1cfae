// The DB operators from a C++ host through the C ABI: CreateDB + TensorProtosDBInput in a net
// over the golden DBs (minidb, LMDB, LevelDB; batches of 4, wrap-around), a damaged LevelDB,
// Save/Load with a workspace root folder, the DB reader held by a blob used from the host,
// and errors as statuses with messages.
// OperatorDef/NetDef bytes come from a tiny protobuf writer (no libprotobuf needed).
#include "caffe2rs.h"
#include "c2rs_test_proto.h"
#include "c2rs_test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <unistd.h>

namespace {
using c2rs_test::IntArg;
using c2rs_test::Op;
using c2rs_test::Pb;
using c2rs_test::StrArg;

struct Ws {
  c2rs_workspace* ws = nullptr;
  explicit Ws(const std::string& root = "") {
    if (root.empty()) {
      EXPECT_EQ(c2rs_workspace_new(nullptr, &ws), C2RS_OK);
    } else {
      EXPECT_EQ(c2rs_workspace_new_with_root(nullptr, root.c_str(), &ws), C2RS_OK);
    }
  }
  ~Ws() { c2rs_workspace_free(ws); }
  Ws(const Ws&) = delete;
  Ws& operator=(const Ws&) = delete;
  operator c2rs_workspace*() const { return ws; }
};

int32_t RunOp(c2rs_workspace* ws, const Pb& op) {
  return c2rs_workspace_run_operator_once(ws, op.data(), op.bytes.size());
}

struct Fetched {
  int32_t dtype = 0;
  std::vector<int64_t> dims;
  std::vector<uint8_t> bytes;
};

Fetched Fetch(c2rs_workspace* ws, const char* name) {
  Fetched f;
  c2rs_tensor* t = nullptr;
  EXPECT_EQ(c2rs_workspace_fetch(ws, name, &t), C2RS_OK) << c2rs_test::last_error();
  if (t == nullptr) return f;
  EXPECT_EQ(c2rs_tensor_dtype(t, &f.dtype), C2RS_OK);
  const int64_t* dims = nullptr;
  size_t ndim = 0;
  EXPECT_EQ(c2rs_tensor_dims(t, &dims, &ndim), C2RS_OK);
  f.dims.assign(dims, dims + ndim);
  if (f.dtype != C2RS_DTYPE_STRING) {
    const void* data = nullptr;
    int64_t numel = 0;
    EXPECT_EQ(c2rs_tensor_data(t, &data), C2RS_OK);
    EXPECT_EQ(c2rs_tensor_numel(t, &numel), C2RS_OK);
    size_t item = f.dtype == C2RS_DTYPE_FLOAT || f.dtype == C2RS_DTYPE_INT32 ? 4 : 1;
    const auto* p = static_cast<const uint8_t*>(data);
    f.bytes.assign(p, p + static_cast<size_t>(numel) * item);
  }
  c2rs_tensor_free(t);
  return f;
}

std::string TempDir(const std::string& name) {
  std::string dir = "/tmp/c2rs-dbops-cc-" + std::to_string(getpid()) + "-" + name;
  std::string cmd = "rm -rf '" + dir + "' && mkdir -p '" + dir + "'";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  return dir;
}

// A private copy of the golden LevelDB directory: opening a LevelDB writes to its directory,
// and the golden files must stay as they are.
std::string GoldenLevelDbCopy(const std::string& name) {
  const std::string dir = TempDir(name);
  const std::string cmd =
      "cp '" + c2rs_test::golden_path("db/records.leveldb") + "'/* '" + dir + "'/";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  return dir;
}

TEST(DbOps, GoldenDbsGiveBatchesOfFourThroughANetAndWrap) {
  const auto manifest = nlohmann::json::parse(
      c2rs_test::read_text(c2rs_test::golden_path("db/manifest.json")));
  const auto& records = manifest["records"];
  for (const char* kind : {"minidb", "lmdb", "leveldb"}) {
    Ws ws;
    const std::string path = std::string(kind) == "leveldb"
                                 ? GoldenLevelDbCopy("golden-leveldb")
                                 : c2rs_test::golden_path(std::string("db/records.") + kind);
    ASSERT_EQ(RunOp(ws, Op("CreateDB", {}, {"reader"}, {StrArg("db_type", kind), StrArg("db", path)})),
              C2RS_OK)
        << c2rs_test::last_error();
    Pb net;
    net.str(1, "input");
    net.msg(2, Op("TensorProtosDBInput", {"reader"}, {"image", "label", "weights", "tag"},
                  {IntArg("batch_size", 4), IntArg("num_decode_threads", 2),
                   IntArg("prefetch_depth", 2)}));
    ASSERT_EQ(c2rs_workspace_create_net(ws, net.data(), net.bytes.size(), false), C2RS_OK)
        << c2rs_test::last_error();
    size_t next = 0;
    for (int run = 0; run < 4; ++run) {
      ASSERT_EQ(c2rs_workspace_run_net(ws, "input", 1), C2RS_OK) << c2rs_test::last_error();
      const Fetched label = Fetch(ws, "label");
      EXPECT_EQ(label.dtype, C2RS_DTYPE_INT32);
      ASSERT_EQ(label.dims, std::vector<int64_t>({4}));
      const Fetched image = Fetch(ws, "image");
      EXPECT_EQ(image.dims, std::vector<int64_t>({4, 3, 4, 4}));
      for (size_t k = 0; k < 4; ++k) {
        const auto& want = records[(next + k) % records.size()]["tensors"];
        int32_t got = 0;
        std::memcpy(&got, label.bytes.data() + 4 * k, 4);
        EXPECT_EQ(got, want[1]["values"][0].get<int32_t>()) << kind << " run " << run;
        EXPECT_EQ(image.bytes[48 * k], want[0]["values"][0].get<uint8_t>());
      }
      next += 4;
    }
  }
}

TEST(DbOps, SaveThenLoadUnderTheWorkspaceRootFolder) {
  const std::string dir = TempDir("saveload");
  Ws ws(dir);
  const int64_t dims[2] = {2, 3};
  c2rs_tensor* t = nullptr;
  ASSERT_EQ(c2rs_tensor_new(C2RS_DTYPE_FLOAT, dims, 2, &t), C2RS_OK);
  void* data = nullptr;
  ASSERT_EQ(c2rs_tensor_mutable_data(t, &data), C2RS_OK);
  for (int i = 0; i < 6; ++i) static_cast<float*>(data)[i] = 0.5f * static_cast<float>(i);
  ASSERT_EQ(c2rs_workspace_feed(ws, "w", t), C2RS_OK);
  c2rs_tensor_free(t);
  ASSERT_EQ(RunOp(ws, Op("Save", {"w"}, {}, {StrArg("db", "ckpt.minidb"), StrArg("db_type", "minidb"),
                                             IntArg("chunk_size", 4)})),
            C2RS_OK)
      << c2rs_test::last_error();
  std::FILE* f = std::fopen((dir + "/ckpt.minidb").c_str(), "rb");
  ASSERT_NE(f, nullptr) << "Save writes under the root folder";
  std::fclose(f);

  Ws fresh(dir);
  ASSERT_EQ(RunOp(fresh, Op("Load", {}, {}, {StrArg("db", "ckpt.minidb"), StrArg("db_type", "minidb"),
                                             IntArg("load_all", 1)})),
            C2RS_OK)
      << c2rs_test::last_error();
  const Fetched w = Fetch(fresh, "w");
  EXPECT_EQ(w.dims, std::vector<int64_t>({2, 3}));
  float last = 0;
  std::memcpy(&last, w.bytes.data() + 20, 4);
  EXPECT_EQ(last, 2.5f);

  // The saved blob serialises as one unchunked BlobProto too.
  c2rs_buffer* bytes = nullptr;
  ASSERT_EQ(c2rs_workspace_serialize_blob(fresh, "w", &bytes), C2RS_OK);
  ASSERT_EQ(c2rs_workspace_deserialize_blob(fresh, "w2", c2rs_buffer_data(bytes), c2rs_buffer_len(bytes)),
            C2RS_OK);
  c2rs_buffer_free(bytes);
  EXPECT_EQ(Fetch(fresh, "w2").bytes, w.bytes);
}

TEST(DbOps, TheReaderBlobIsSharedWithTheHost) {
  Ws ws;
  const std::string path = c2rs_test::golden_path("db/records.minidb");
  ASSERT_EQ(RunOp(ws, Op("CreateDB", {}, {"reader"}, {StrArg("db_type", "minidb"), StrArg("db", path)})),
            C2RS_OK);
  c2rs_db_reader* reader = nullptr;
  ASSERT_EQ(c2rs_workspace_db_reader(ws, "reader", &reader), C2RS_OK);
  c2rs_buffer* key = nullptr;
  c2rs_buffer* value = nullptr;
  ASSERT_EQ(c2rs_db_reader_read(reader, &key, &value), C2RS_OK);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(c2rs_buffer_data(key)), c2rs_buffer_len(key)),
            "00000000");
  c2rs_buffer_free(key);
  c2rs_buffer_free(value);
  // The operator continues where the host stopped.
  ASSERT_EQ(RunOp(ws, Op("TensorProtosDBInput", {"reader"}, {"image", "label", "weights", "tag"},
                         {IntArg("no_prefetch", 1)})),
            C2RS_OK)
      << c2rs_test::last_error();
  const auto manifest = nlohmann::json::parse(
      c2rs_test::read_text(c2rs_test::golden_path("db/manifest.json")));
  const Fetched label = Fetch(ws, "label");
  EXPECT_TRUE(label.dims.empty());
  int32_t got = 0;
  std::memcpy(&got, label.bytes.data(), 4);
  EXPECT_EQ(got, manifest["records"][1]["tensors"][1]["values"][0].get<int32_t>());
  c2rs_db_reader_free(reader);
}

TEST(DbOps, DamagedLevelDbIsAParseErrorNamingTheFile) {
  const std::string dir = GoldenLevelDbCopy("damaged-leveldb");
  const std::string table = dir + "/000005.ldb";
  std::FILE* f = std::fopen(table.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(std::fseek(f, 10, SEEK_SET), 0);
  const int byte = std::fgetc(f);
  ASSERT_EQ(std::fseek(f, 10, SEEK_SET), 0);
  std::fputc(byte ^ 0x41, f);
  std::fclose(f);
  Ws ws;
  EXPECT_EQ(RunOp(ws, Op("CreateDB", {}, {"r"}, {StrArg("db_type", "leveldb"), StrArg("db", dir)})),
            C2RS_PARSE_ERROR);
  EXPECT_NE(c2rs_test::last_error().find("000005.ldb"), std::string::npos) << c2rs_test::last_error();
  c2rs_db* db = nullptr;
  c2rs_db_cursor* cursor = nullptr;
  ASSERT_EQ(c2rs_db_open("LevelDB", dir.c_str(), C2RS_DB_READ, &db), C2RS_OK) << c2rs_test::last_error();
  EXPECT_EQ(c2rs_db_cursor_new(db, &cursor), C2RS_PARSE_ERROR);
  EXPECT_EQ(cursor, nullptr);
  EXPECT_NE(c2rs_test::last_error().find("checksum mismatch"), std::string::npos) << c2rs_test::last_error();
  c2rs_db_free(db);
}

TEST(DbOps, PrefetchSettingsAboveTheirMaximumAreRefusedWithTheLimit) {
  Ws ws;
  const std::string path = c2rs_test::golden_path("db/records.minidb");
  ASSERT_EQ(RunOp(ws, Op("CreateDB", {}, {"reader"}, {StrArg("db_type", "minidb"), StrArg("db", path)})),
            C2RS_OK)
      << c2rs_test::last_error();
  const std::vector<std::string> outputs = {"image", "label", "weights", "tag"};
  EXPECT_EQ(RunOp(ws, Op("TensorProtosDBInput", {"reader"}, outputs, {IntArg("batch_size", int64_t{1} << 30)})),
            C2RS_ENFORCE_NOT_MET);
  EXPECT_NE(c2rs_test::last_error().find("batch_size 1073741824 exceeds the maximum " +
                                         std::to_string(C2RS_MAX_BATCH_SIZE)),
            std::string::npos)
      << c2rs_test::last_error();
  EXPECT_EQ(RunOp(ws, Op("TensorProtosDBInput", {"reader"}, outputs,
                         {IntArg("num_decode_threads", int64_t{1} << 20)})),
            C2RS_ENFORCE_NOT_MET);
  EXPECT_NE(c2rs_test::last_error().find("exceeds the maximum " + std::to_string(C2RS_MAX_PREFETCH_THREADS)),
            std::string::npos)
      << c2rs_test::last_error();
  c2rs_db_reader* reader = nullptr;
  ASSERT_EQ(c2rs_workspace_db_reader(ws, "reader", &reader), C2RS_OK);
  c2rs_batch_reader* br = nullptr;
  EXPECT_EQ(c2rs_batch_reader_new(reader, 4, 4, C2RS_MAX_PREFETCH_DEPTH + 1, 1, &br),
            C2RS_INVALID_ARGUMENT);
  EXPECT_EQ(br, nullptr);
  EXPECT_NE(c2rs_test::last_error().find("prefetch depth"), std::string::npos) << c2rs_test::last_error();
  // The maximum itself is accepted, and batches read as before (inline: no threads, so no
  // thousand batches are prefetched for nothing).
  ASSERT_EQ(c2rs_batch_reader_new(reader, 4, 4, C2RS_MAX_PREFETCH_DEPTH, 0, &br), C2RS_OK)
      << c2rs_test::last_error();
  c2rs_tensor_list* batch = nullptr;
  ASSERT_EQ(c2rs_batch_reader_next(br, &batch), C2RS_OK) << c2rs_test::last_error();
  EXPECT_EQ(c2rs_tensor_list_len(batch), 4u);
  c2rs_tensor_list_free(batch);
  c2rs_batch_reader_free(br);
  c2rs_db_reader_free(reader);
}

TEST(DbOps, BadInputIsAStatusWithAMessage) {
  Ws ws;
  EXPECT_EQ(RunOp(ws, Op("CreateDB", {}, {"r"}, {StrArg("db_type", "foodb"), StrArg("db", "/tmp/x")})),
            C2RS_NOT_FOUND);
  EXPECT_NE(c2rs_test::last_error().find("Unknown db type: foodb"), std::string::npos);
  EXPECT_EQ(RunOp(ws, Op("CreateDB", {}, {"r"},
                         {StrArg("db_type", "minidb"), StrArg("db", "/nonexistent/c2rs.minidb")})),
            C2RS_NOT_FOUND);
  EXPECT_NE(c2rs_test::last_error().find("/nonexistent/c2rs.minidb"), std::string::npos);
  EXPECT_EQ(RunOp(ws, Op("Load", {}, {"x"}, {StrArg("db", "/nonexistent/c.minidb"), StrArg("db_type", "minidb"),
                                             IntArg("absolute_path", 1)})),
            C2RS_NOT_FOUND);
  EXPECT_EQ(RunOp(ws, Op("DBExists", {}, {"e"}, {StrArg("db_name", "x"), StrArg("db_type", "foodb")})),
            C2RS_NOT_FOUND);
  c2rs_db_reader* reader = nullptr;
  EXPECT_EQ(c2rs_workspace_db_reader(ws, "missing", &reader), C2RS_NOT_FOUND);
  EXPECT_EQ(reader, nullptr);
}

}  // namespace

// caffe2rs.hpp classes over every handle beyond tensors and workspaces: one TEST suite per
// class (HppObject, HppDb, HppCursor, HppTransaction, HppDbReader, HppRecordFeed,
// HppBatchReader, HppOperator, HppNet, HppMemoryPlan, HppRegisterOperator, HppBlobsQueue,
// HppRebatchingQueue, HppContext, HppEvent), plus the zero-copy
// hand-over members of Tensor, TensorList and Workspace. Each checks behaviour through the
// class, ownership (a DLPack deleter runs exactly once; moved-from objects free nothing) and
// that failures arrive as c2rs::Error with the library's status and message.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <unistd.h>
#include <vector>

#include "c2rs_test_proto.h"
#include "c2rs_test_util.h"
#include "caffe2rs.hpp"

using c2rs_test::Op;
using c2rs_test::IntArg;
using c2rs_test::StrArg;

static_assert(std::is_copy_constructible_v<c2rs::Object>, "Object copies share the object");
static_assert(std::is_nothrow_move_constructible_v<c2rs::Object>, "Object moves never throw");
static_assert(!std::is_copy_constructible_v<c2rs::DbReader>, "DbReader is move-only");
static_assert(!std::is_copy_constructible_v<c2rs::BatchReader>, "BatchReader is move-only");
static_assert(!std::is_copy_constructible_v<c2rs::Operator>, "Operator is move-only");
static_assert(!std::is_copy_constructible_v<c2rs::RecordFeed>, "RecordFeed is move-only");
static_assert(!std::is_copy_constructible_v<c2rs::MemoryPlan>, "MemoryPlan is move-only");

namespace {

std::string temp_path(const std::string& tag) {
  return "/tmp/c2rs-hpp-handles-" + std::to_string(::getpid()) + "-" + tag;
}

c2rs::Tensor ints(std::vector<int32_t> v) {
  c2rs::Tensor t = c2rs::Tensor::create(C2RS_DTYPE_INT32, {static_cast<int64_t>(v.size())});
  int32_t* p = t.mutable_data<int32_t>();
  for (size_t i = 0; i < v.size(); ++i) p[i] = v[i];
  return t;
}

/// A serialized TensorProtos record holding one INT32 tensor of `dims` filled with `v`.
std::string record(int32_t v, std::vector<int64_t> dims = {}) {
  c2rs::Tensor t = c2rs::Tensor::create(C2RS_DTYPE_INT32, dims);
  int32_t* p = t.mutable_data<int32_t>();
  for (int64_t k = 0; k < t.numel(); ++k) p[k] = v;
  return c2rs::encode_tensor_protos({t}).str();
}

/// A host buffer handed over as DLPack, counting deleter calls.
struct Counted {
  DLManagedTensorVersioned managed{};
  std::vector<int32_t> data{1, 2, 3};
  int64_t shape[1] = {3};
  std::atomic<int> deleted{0};
  explicit Counted(uint64_t flags = 0) {
    managed.version = DLPackVersion{DLPACK_MAJOR_VERSION, DLPACK_MINOR_VERSION};
    managed.manager_ctx = this;
    managed.deleter = [](DLManagedTensorVersioned* self) {
      static_cast<Counted*>(self->manager_ctx)->deleted += 1;
    };
    managed.flags = flags;
    managed.dl_tensor.data = data.data();
    managed.dl_tensor.device = DLDevice{kDLCPU, 0};
    managed.dl_tensor.ndim = 1;
    managed.dl_tensor.dtype = DLDataType{kDLInt, 32, 1};
    managed.dl_tensor.shape = shape;
  }
};

}  // namespace

// ---------------------------------------------------------------- Tensor / TensorList hand-over

TEST(HppTensorHandover, CloneSharesStorageAndWritesCopyFirst) {
  c2rs::Tensor a = ints({1, 2});
  EXPECT_TRUE(a.writes_in_place());
  c2rs::Tensor b = a.clone();
  EXPECT_EQ(a.data<int32_t>(), b.data<int32_t>());
  EXPECT_FALSE(a.writes_in_place());
  b.mutable_data<int32_t>()[0] = 9;
  EXPECT_EQ(a.to_vector<int32_t>(), (std::vector<int32_t>{1, 2}));
  EXPECT_TRUE(a.writes_in_place());
}

TEST(HppTensorHandover, IntoDlpackIsWritableForTheSoleHolderAndConsumes) {
  c2rs::Tensor t = ints({4, 5});
  const int32_t* p = t.data<int32_t>();
  bool writable = false;
  c2rs::DLPackPtr m = std::move(t).into_dlpack(true, &writable);
  EXPECT_TRUE(writable);
  EXPECT_FALSE(t) << "consumed";
  EXPECT_EQ(m->flags & DLPACK_FLAG_BITMASK_READ_ONLY, 0u);
  EXPECT_EQ(m->dl_tensor.data, p);
  static_cast<int32_t*>(m->dl_tensor.data)[0] = 7;
}

TEST(HppTensorHandover, SharedStorageIsReadOnlyOrRefusedAndTheTensorStays) {
  c2rs::Tensor t = ints({1});
  c2rs::Tensor keep = t.clone();
  try {
    (void)std::move(t).into_dlpack(true);
    FAIL() << "a shared tensor must not be handed over writable";
  } catch (const c2rs::Error& e) {
    EXPECT_EQ(e.status(), C2RS_ENFORCE_NOT_MET);
    EXPECT_NE(e.message().find("shares its storage"), std::string::npos) << e.message();
  }
  ASSERT_TRUE(t) << "refused: not consumed";
  bool writable = true;
  c2rs::DLPackPtr m = std::move(t).into_dlpack(false, &writable);
  EXPECT_FALSE(writable);
  EXPECT_EQ(m->flags & DLPACK_FLAG_BITMASK_READ_ONLY, DLPACK_FLAG_BITMASK_READ_ONLY);
}

TEST(HppTensorHandover, AnAdoptedHostBufferRoundTripsAndItsDeleterRunsOnce) {
  Counted host;
  {
    c2rs::Tensor t = c2rs::Tensor::from_dlpack(&host.managed);
    EXPECT_TRUE(t.writes_in_place());
    c2rs::DLPackPtr back = std::move(t).into_dlpack(true);
    EXPECT_EQ(back->dl_tensor.data, host.data.data());
    EXPECT_EQ(host.deleted, 0);
  }
  EXPECT_EQ(host.deleted, 1);
  Counted read_only(DLPACK_FLAG_BITMASK_READ_ONLY);
  {
    c2rs::Tensor t = c2rs::Tensor::from_dlpack(&read_only.managed);
    EXPECT_FALSE(t.writes_in_place());
    EXPECT_THROW((void)std::move(t).into_dlpack(true), c2rs::Error);
  }
  EXPECT_EQ(read_only.deleted, 1);
}

TEST(HppTensorHandover, TakingFromAListMovesWithoutCopy) {
  c2rs::Tensor a = ints({1, 2, 3});
  c2rs::TensorList list = c2rs::TensorList::decode(c2rs::encode_tensor_protos({a}).str());
  const int32_t* p = list[0].data<int32_t>();
  c2rs::Tensor taken = list.take(0);
  EXPECT_EQ(taken.data<int32_t>(), p);
  EXPECT_TRUE(taken.writes_in_place());
  EXPECT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].numel(), 0);
  EXPECT_THROW(list.take(1), c2rs::Error);
}

// ---------------------------------------------------------------- Workspace hand-over, Object

TEST(HppWorkspaceHandover, TakeFetchSharedAndObjects) {
  c2rs::Workspace ws;
  c2rs::Tensor x = ints({3, 4});
  const int32_t* p = x.data<int32_t>();
  ws.feed("x", std::move(x));
  c2rs::Tensor snap = ws.fetch_shared("x");
  EXPECT_EQ(snap.data<int32_t>(), p);
  snap = c2rs::Tensor();
  c2rs::Tensor t = ws.take("x");
  EXPECT_EQ(t.data<int32_t>(), p);
  EXPECT_EQ(ws.blob_type("x"), "nullptr (uninitialized)");
  EXPECT_FALSE(ws.take("x")) << "an empty blob gives an empty Tensor";
  ws.feed_string("s", std::string("a\0b", 3));
  try {
    (void)ws.take("s");
    FAIL();
  } catch (const c2rs::Error& e) {
    EXPECT_EQ(e.status(), C2RS_TYPE_MISMATCH);
  }
  c2rs::Workspace::Content c = ws.take_any("s");
  ASSERT_TRUE(c.object);
  EXPECT_EQ(c.object.bytes(), std::string("a\0b", 3));
  EXPECT_THROW(ws.take("missing"), c2rs::Error);
}

TEST(HppObject, CopiesShareNativeObjectsAndCrossWorkspaces) {
  c2rs::Workspace a, b;
  a.run_operator_once(Op("CreateCounter", {}, {"c"}, {IntArg("init_count", 1)}).bytes);
  c2rs::Object counter = a.fetch_object("c");
  EXPECT_EQ(counter.type_name(), a.blob_type("c"));
  c2rs::Object copy = counter;
  EXPECT_EQ(copy.id(), counter.id());
  b.put_object("c", copy);
  // The same counter: counting down in `b` is seen by `a`.
  b.run_operator_once(Op("CountDown", {"c"}, {"done"}).bytes);
  a.run_operator_once(Op("CheckCounterDone", {"c"}, {"done"}).bytes);
  EXPECT_EQ(a.fetch("done").to_vector<uint8_t>(), (std::vector<uint8_t>{1}));
  c2rs::Object moved = std::move(copy);
  EXPECT_FALSE(copy);
  EXPECT_EQ(copy.type_name(), "");
  c2rs::Object bytes = c2rs::Object::from_bytes("xyz");
  EXPECT_EQ(bytes.type_name(), "std::string");
  EXPECT_EQ(c2rs::Object(bytes).bytes(), "xyz");
  EXPECT_THROW(counter.bytes(), c2rs::Error);
  EXPECT_THROW(counter.db_reader(), c2rs::Error);
}

// ---------------------------------------------------------------- DBs

TEST(HppDb, WritesThenReadsAMinidbInOrder) {
  const std::string path = temp_path("db");
  {
    c2rs::Db db = c2rs::Db::open("minidb", path, c2rs::DbMode::New);
    c2rs::Transaction txn = db.transaction();
    txn.put("k1", "v1");
    txn.put("k2", std::string("v\0", 2));
    txn.commit();
  }
  c2rs::Db db = c2rs::Db::open("minidb", path, c2rs::DbMode::Read);
  c2rs::Cursor cur = db.cursor();
  ASSERT_TRUE(cur.valid());
  EXPECT_FALSE(cur.supports_seek());
  EXPECT_EQ(cur.key(), "k1");
  cur.next();
  EXPECT_EQ(cur.value(), std::string("v\0", 2));
  cur.next();
  EXPECT_FALSE(cur.valid());
  cur.seek_to_first();
  EXPECT_EQ(cur.key(), "k1");
  EXPECT_THROW(cur.seek("k2"), c2rs::Error);
  try {
    (void)c2rs::Db::open("nosuchdb", path, c2rs::DbMode::Read);
    FAIL();
  } catch (const c2rs::Error& e) {
    EXPECT_EQ(e.status(), C2RS_NOT_FOUND);
    EXPECT_NE(e.message().find("Unknown db type: nosuchdb"), std::string::npos);
  }
  ::unlink(path.c_str());
}

TEST(HppCursor, MovedFromCursorIsEmpty) {
  const std::string path = temp_path("cursor");
  { c2rs::Db created = c2rs::Db::open("minidb", path, c2rs::DbMode::New); }
  c2rs::Db db = c2rs::Db::open("minidb", path, c2rs::DbMode::Read);
  c2rs::Cursor a = db.cursor();
  c2rs::Cursor b = std::move(a);
  EXPECT_FALSE(a);
  EXPECT_TRUE(b);
  EXPECT_FALSE(b.valid()) << "an empty DB";
  EXPECT_THROW(a.valid(), c2rs::Error) << "a NULL handle is an argument error";
  ::unlink(path.c_str());
}

TEST(HppTransaction, PutAfterCommitStillWorks) {
  const std::string path = temp_path("txn");
  {
    c2rs::Db db = c2rs::Db::open("minidb", path, c2rs::DbMode::New);
    c2rs::Transaction t = db.transaction();
    t.put("a", "1");
    t.commit();
    t.put("b", "2");
  }  // committed on destruction
  c2rs::DbReader r("minidb", path);
  EXPECT_EQ(r.read().first, "a");
  EXPECT_EQ(r.read().first, "b");
  EXPECT_EQ(r.read().first, "a") << "wraps around";
  ::unlink(path.c_str());
}

TEST(HppDbReader, ReadsFromAHostCallbackAndReportsItsException) {
  int n = 0;
  c2rs::DbReader r = c2rs::DbReader::from_callback(
      [&n](std::string& key, std::string& value) {
        if (n == 2) throw std::runtime_error("host source broke");
        key = "k" + std::to_string(n);
        value = record(n);
        ++n;
        return true;
      },
      "host");
  EXPECT_EQ(r.read().first, "k0");
  EXPECT_EQ(r.read().first, "k1");
  try {
    (void)r.read();
    FAIL();
  } catch (const c2rs::Error& e) {
    EXPECT_EQ(e.status(), C2RS_IO_ERROR);
    EXPECT_NE(e.message().find("record source host: host source broke"), std::string::npos)
        << e.message();
  }
  c2rs::Object obj = c2rs::Object::from_db_reader(r);
  EXPECT_EQ(obj.type_name(), "std::unique_ptr<caffe2::db::DBReader>");
  EXPECT_TRUE(obj.db_reader());
}

TEST(HppDbReader, CallbackStateIsReleasedExactlyOnceWhenTheLastHolderGoes) {
  auto alive = std::make_shared<int>(0);
  std::weak_ptr<int> watch = alive;
  {
    c2rs::DbReader r = c2rs::DbReader::from_callback(
        [alive](std::string&, std::string&) { return false; }, "ended");
    alive.reset();
    EXPECT_FALSE(watch.expired()) << "the reader keeps the callback";
    c2rs::Workspace ws;
    ws.set_db_reader("r", r);
    c2rs::DbReader from_blob = ws.db_reader("r");
    EXPECT_THROW(from_blob.read(), c2rs::Error) << "the stream ended";
  }
  EXPECT_TRUE(watch.expired()) << "released with the last reference";
}

TEST(HppRecordFeed, PushedRecordsBecomeCheckedBatches) {
  c2rs::RecordFeed feed(4);
  c2rs::DbReader reader = c2rs::DbReader::from_feed(feed, "pushed");
  std::thread producer([&feed] {
    for (int i = 0; i < 4; ++i) feed.push("k" + std::to_string(i), record(i, {2}));
    feed.push("bad", record(9, {3}));
    feed.close();
  });
  c2rs::BatchReader batches(reader, 2, 1, 1, 1);
  c2rs::TensorList b0 = batches.next();
  EXPECT_EQ(b0[0].dims(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(b0[0].to_vector<int32_t>(), (std::vector<int32_t>{0, 0, 1, 1}));
  EXPECT_EQ(batches.next()[0].to_vector<int32_t>(), (std::vector<int32_t>{2, 2, 3, 3}));
  producer.join();
  EXPECT_TRUE(feed.closed());
  EXPECT_THROW(feed.push("late", "x"), c2rs::Error);
  try {
    (void)batches.next();  // "bad", then the closed feed
    FAIL();
  } catch (const c2rs::Error& e) {
    EXPECT_EQ(e.status(), C2RS_CLOSED) << e.message();
  }
  EXPECT_THROW(c2rs::RecordFeed(size_t{0}), c2rs::Error);
}

TEST(HppBatchReader, MismatchedHostRecordsGetTheDbMessage) {
  c2rs::RecordFeed feed(8);
  feed.push("a", record(1, {2}));
  feed.push("b", record(2, {3}));
  c2rs::DbReader reader = c2rs::DbReader::from_feed(feed, "pushed");
  c2rs::BatchReader batches(reader, 2, 1, 1, 0);
  try {
    (void)batches.next();
    FAIL();
  } catch (const c2rs::Error& e) {
    EXPECT_EQ(e.status(), C2RS_ENFORCE_NOT_MET);
    EXPECT_NE(e.message().find("TensorProtosDBInput: record 'b' output 0 has [3]/INT32, batch "
                               "expects [2]/INT32"),
              std::string::npos)
        << e.message();
  }
  EXPECT_THROW(c2rs::BatchReader(reader, 1, 0), c2rs::Error) << "num_outputs 0";
}

TEST(HppBatchReader, ATakenBatchTensorIsWritableWithoutACopy) {
  c2rs::RecordFeed feed(8);
  for (int i = 0; i < 4; ++i) feed.push("k", record(i, {8}));
  c2rs::DbReader reader = c2rs::DbReader::from_feed(feed, "pushed");
  c2rs::BatchReader batches(reader, 4, 1, 1, 0);
  c2rs::TensorList b = batches.next();
  const int32_t* p = b[0].data<int32_t>();
  c2rs::Tensor t = b.take(0);
  bool writable = false;
  c2rs::DLPackPtr m = std::move(t).into_dlpack(true, &writable);
  EXPECT_TRUE(writable);
  EXPECT_EQ(m->dl_tensor.data, p);
}

// ---------------------------------------------------------------- Operator, Net, schema

TEST(HppOperator, KeepsStateAcrossRunsAndReportsErrors) {
  c2rs::Workspace ws;
  ws.run_operator_once(Op("CreateCounter", {}, {"c"}, {IntArg("init_count", 1)}).bytes);
  c2rs::Operator op(ws, Op("CountDown", {"c"}, {"done"}).bytes);
  op.run();
  EXPECT_EQ(ws.fetch("done").to_vector<uint8_t>(), (std::vector<uint8_t>{0}));
  op.run();
  EXPECT_EQ(ws.fetch("done").to_vector<uint8_t>(), (std::vector<uint8_t>{1}));
  op.cancel();
  try {
    c2rs::Operator bad(ws, Op("CountDown", {"nope"}, {"d"}).bytes);
    FAIL();
  } catch (const c2rs::Error& e) {
    EXPECT_EQ(e.status(), C2RS_ENFORCE_NOT_MET);
    EXPECT_NE(e.message().find("non-existing input blob: nope"), std::string::npos);
  }
  ws.feed("t", ints({1}));
  c2rs::Operator wrong(ws, Op("CountDown", {"t"}, {"d"}).bytes);
  try {
    wrong.run();
    FAIL();
  } catch (const c2rs::Error& e) {
    EXPECT_NE(e.message().find("op (CountDown)"), std::string::npos) << e.message();
  }
}

TEST(HppOperator, SchemaJsonAndRegisteredList) {
  const std::string json = c2rs::operator_schema("Save");
  EXPECT_NE(json.find("\"type\":\"Save\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"name\":\"db_type\""), std::string::npos) << json;
  const std::vector<std::string> ops = c2rs::registered_operators();
  EXPECT_NE(std::find(ops.begin(), ops.end(), "TensorProtosDBInput"), ops.end());
  EXPECT_THROW(c2rs::operator_schema("NoSuchOp"), c2rs::Error);
}

TEST(HppNet, CreatesAndRunsByName) {
  c2rs::Workspace ws;
  ws.run_operator_once(Op("CreateCounter", {}, {"c"}, {IntArg("init_count", 2)}).bytes);
  c2rs_test::Pb net;
  net.str(1, "countdown").msg(2, Op("CountDown", {"c"}, {"done"}));
  c2rs::Net n(ws, net.bytes, "countdown");
  EXPECT_TRUE(n.exists());
  n.run(3);
  EXPECT_EQ(ws.fetch("done").to_vector<uint8_t>(), (std::vector<uint8_t>{1}));
  EXPECT_THROW(c2rs::Net(ws, net.bytes, "countdown"), c2rs::Error) << "no overwrite";
  c2rs::Net again(ws, net.bytes, "countdown", /*overwrite=*/true);
  EXPECT_EQ(again.name(), "countdown");
}

TEST(HppMemoryPlan, PlansTheGoldenNet) {
  const std::vector<uint8_t> net = c2rs_test::read_file(c2rs_test::golden_path("memonger/resnet50_infer.pb"));
  const std::vector<uint8_t> shapes =
      c2rs_test::read_file(c2rs_test::golden_path("memonger/resnet50_infer.shapes.pb"));
  c2rs::MemoryPlan plan = c2rs::MemoryPlan::plan(
      std::string_view(reinterpret_cast<const char*>(net.data()), net.size()),
      std::string_view(reinterpret_cast<const char*>(shapes.data()), shapes.size()));
  EXPECT_GT(plan.arena_bytes(), 0u);
  const auto [offset, bytes] = plan.offset("conv1");
  EXPECT_EQ(offset % 64, 0u);
  EXPECT_EQ(bytes, 102760448u);
  EXPECT_NE(plan.report().find("\"arena_bytes\""), std::string::npos);
  EXPECT_NE(plan.arena_json().find("\"devices\""), std::string::npos);
  EXPECT_GT(plan.net().size(), 0u);
  EXPECT_THROW(plan.offset("no_such_blob"), c2rs::Error);
  EXPECT_THROW(c2rs::MemoryPlan::plan("\xff\xff", ""), c2rs::Error);
}

// ---------------------------------------------------------------- host operators

namespace {

class Doubler final : public c2rs::HostOperator {
 public:
  explicit Doubler(int64_t factor) : factor_(factor) {}
  void run(c2rs::OpContext& ctx) override {
    const c2rs::TensorView x = ctx.input(0);
    if (x.numel() == 0) throw std::runtime_error("Doubler: empty input");
    c2rs::TensorRef y = ctx.output(0, C2RS_DTYPE_INT32, x.dims());
    const int32_t* in = x.data<int32_t>();
    int32_t* out = y.mutable_data<int32_t>();
    for (int64_t i = 0; i < x.numel(); ++i) out[i] = static_cast<int32_t>(in[i] * factor_);
  }

 private:
  int64_t factor_;
};

std::atomic<int> live_doublers{0};

class CountedDoubler final : public c2rs::HostOperator {
 public:
  CountedDoubler() { ++live_doublers; }
  ~CountedDoubler() override { --live_doublers; }
  void run(c2rs::OpContext&) override { throw 42; }  // not even a std::exception
};

}  // namespace

TEST(HppRegisterOperator, RunsACppKernelAndTurnsItsExceptionsIntoErrors) {
  c2rs::register_operator("HppDoubler", [](c2rs::OpContext& ctx) -> std::unique_ptr<c2rs::HostOperator> {
    const int64_t factor = ctx.arg_int("factor", 2);
    if (factor == 0) throw std::invalid_argument("factor must not be 0");
    return std::make_unique<Doubler>(factor);
  });
  c2rs::Workspace ws;
  ws.feed("x", ints({1, 2, 3}));
  ws.run_operator_once(Op("HppDoubler", {"x"}, {"y"}, {IntArg("factor", 3)}).bytes);
  EXPECT_EQ(ws.fetch("y").to_vector<int32_t>(), (std::vector<int32_t>{3, 6, 9}));
  // An exception from the factory fails the creation with its message.
  try {
    ws.run_operator_once(Op("HppDoubler", {"x"}, {"y"}, {IntArg("factor", 0)}).bytes);
    FAIL();
  } catch (const c2rs::Error& e) {
    EXPECT_NE(e.message().find("factor must not be 0"), std::string::npos) << e.message();
  }
  // An exception from run fails the run with its message (never crosses the C boundary).
  ws.feed("empty", c2rs::Tensor::create(C2RS_DTYPE_INT32, {0}));
  try {
    ws.run_operator_once(Op("HppDoubler", {"empty"}, {"y"}).bytes);
    FAIL();
  } catch (const c2rs::Error& e) {
    EXPECT_EQ(e.status(), C2RS_RUN_FAILED);
    EXPECT_NE(e.message().find("Doubler: empty input"), std::string::npos) << e.message();
  }
  // A second registration of the type is refused.
  try {
    c2rs::register_operator("HppDoubler", [](c2rs::OpContext&) { return std::unique_ptr<c2rs::HostOperator>(); });
    FAIL();
  } catch (const c2rs::Error& e) {
    EXPECT_EQ(e.status(), C2RS_ALREADY_EXISTS);
  }
}

TEST(HppRegisterOperator, NonStandardExceptionsAndFactoryResultsAreContained) {
  c2rs::register_operator("HppThrowsInt", [](c2rs::OpContext&) -> std::unique_ptr<c2rs::HostOperator> {
    return std::make_unique<CountedDoubler>();
  });
  c2rs::register_operator("HppNullFactory", [](c2rs::OpContext&) { return std::unique_ptr<c2rs::HostOperator>(); });
  c2rs::Workspace ws;
  try {
    ws.run_operator_once(Op("HppThrowsInt", {}, {}).bytes);
    FAIL();
  } catch (const c2rs::Error& e) {
    EXPECT_NE(e.message().find("unknown C++ exception"), std::string::npos) << e.message();
  }
  EXPECT_EQ(live_doublers, 0) << "the kernel was destroyed with its operator";
  try {
    ws.run_operator_once(Op("HppNullFactory", {}, {}).bytes);
    FAIL();
  } catch (const c2rs::Error& e) {
    EXPECT_NE(e.message().find("returned no operator"), std::string::npos) << e.message();
  }
}

// ---------------------------------------------------------------- queues

TEST(HppBlobsQueue, MovesRecordsWithoutCopyAndEndsTheStreamOnClose) {
  c2rs::BlobsQueue q("hostq", 2, 2, {"data", "label"});
  EXPECT_EQ(q.info().capacity, 2u);
  std::vector<c2rs::Tensor> rec;
  rec.push_back(ints({1, 2}));
  rec.push_back(ints({7}));
  const int32_t* p = rec[0].data<int32_t>();
  q.enqueue(rec);
  EXPECT_TRUE(rec.empty()) << "moved in";
  std::vector<c2rs::Tensor> out = q.dequeue();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].data<int32_t>(), p) << "no copy";
  EXPECT_NE(q.stats().find("\"hostq/queue_dequeued_bytes/data\":8"), std::string::npos) << q.stats();
  std::vector<c2rs::Tensor> more;
  more.push_back(ints({3}));
  more.push_back(ints({4}));
  EXPECT_TRUE(q.safe_enqueue(more));
  q.close();
  EXPECT_EQ(q.safe_dequeue().size(), 2u) << "drains after close";
  EXPECT_TRUE(q.safe_dequeue().empty()) << "end of stream";
  try {
    (void)q.dequeue();
    FAIL();
  } catch (const c2rs::Error& e) {
    EXPECT_EQ(e.status(), C2RS_CLOSED);
  }
  EXPECT_THROW(c2rs::BlobsQueue("bad", 0, 1), c2rs::Error);
  EXPECT_THROW(c2rs::BlobsQueue("bad", 1, 2, {"only_one"}), c2rs::Error);
}

TEST(HppBlobsQueue, AWorkspaceFreeQueueServesOperatorsThroughAnObject) {
  c2rs::BlobsQueue q("shared", 4, 1);
  c2rs::Workspace ws;
  ws.put_object("queue", q.to_object());
  ws.feed("x", ints({5, 6}));
  ws.run_operator_once(Op("EnqueueBlobs", {"queue", "x"}, {"x"}).bytes);
  std::vector<c2rs::Tensor> got = q.dequeue(1.0);
  EXPECT_EQ(got[0].to_vector<int32_t>(), (std::vector<int32_t>{5, 6}));
  EXPECT_THROW(q.dequeue(0.01), c2rs::Error) << "times out";
  c2rs::BlobsQueue again = c2rs::BlobsQueue::from_object(ws.fetch_object("queue"));
  EXPECT_EQ(again.to_object().id(), q.to_object().id());
}

TEST(HppBlobsQueue, CreateInAWorkspaceWithFieldsAndUniqueNames) {
  c2rs::Workspace ws;
  c2rs::BlobsQueue q = c2rs::BlobsQueue::create(ws, "q", 2, 1, true, {"f"});
  EXPECT_TRUE(ws.has_blob("q_0_0"));
  try {
    (void)c2rs::BlobsQueue::create(ws, "q", 2, 1, true);
    FAIL();
  } catch (const c2rs::Error& e) {
    EXPECT_NE(e.message().find("Queue internal blob already exists: q_0_0"), std::string::npos);
  }
  EXPECT_TRUE(c2rs::BlobsQueue::from_workspace(ws, "q"));
}

TEST(HppBlobsQueue, SafeDequeueManyConcatenatesAndWeightedSampleReportsTheChoice) {
  c2rs::BlobsQueue a("a", 8, 1), b("b", 8, 1);
  for (int i = 0; i < 3; ++i) {
    std::vector<c2rs::Tensor> r;
    r.push_back(c2rs::Tensor::create(C2RS_DTYPE_INT32, {1, 2}));
    r[0].mutable_data<int32_t>()[0] = i;
    a.enqueue(r);
  }
  std::vector<c2rs::Tensor> batch = a.safe_dequeue(2);
  EXPECT_EQ(batch[0].dims(), (std::vector<int64_t>{2, 2}));
  std::vector<c2rs::Tensor> r;
  r.push_back(ints({9}));
  b.enqueue(r);
  size_t chosen = 7;
  std::vector<c2rs::Tensor> got = c2rs::BlobsQueue::weighted_sample_dequeue({&a, &b}, {0.f, 1.f}, &chosen);
  EXPECT_EQ(chosen, 1u);
  EXPECT_EQ(got[0].to_vector<int32_t>(), (std::vector<int32_t>{9}));
}

TEST(HppRebatchingQueue, RebatchesRowsAndRefusesEnqueueAfterClose) {
  c2rs::Workspace ws;
  c2rs::RebatchingQueue q = c2rs::RebatchingQueue::create(ws, "rq", 10, 1);
  c2rs::Tensor t = ints({0, 1, 2, 3, 4, 5});
  q.enqueue({t.view()}, /*batch=*/true);
  EXPECT_EQ(q.size(), 6u);
  EXPECT_EQ(q.capacity(), 10u);
  std::vector<c2rs::Tensor> out = q.dequeue(4, 1);
  EXPECT_EQ(out[0].to_vector<int32_t>(), (std::vector<int32_t>{0, 1, 2, 3}));
  q.close();
  EXPECT_THROW(q.enqueue({t.view()}), c2rs::Error);
  EXPECT_EQ(q.dequeue(4, 1)[0].to_vector<int32_t>(), (std::vector<int32_t>{4, 5}));
  EXPECT_THROW(q.dequeue(1, 1), c2rs::Error);
  EXPECT_TRUE(c2rs::RebatchingQueue::from_workspace(ws, "rq"));
}

// ---------------------------------------------------------------- contexts and events

TEST(HppContext, SeededContextsDrawTheSameSequenceAndCopy) {
  // DeviceOption {device_type: 0, random_seed: 5}
  const std::string seeded = c2rs_test::Pb().i64(1, 0).i64(3, 5).bytes;
  c2rs::Context a(seeded), b(seeded);
  EXPECT_EQ(a.device_type(), 0);
  EXPECT_EQ(a.random_seed(), 5u);
  EXPECT_EQ(a.rand_u32(4), b.rand_u32(4));
  a.switch_to_device();
  const char src[4] = {1, 2, 3, 4};
  char dst[4] = {};
  a.copy_bytes(4, src, dst);
  a.finish_device_computation();
  EXPECT_EQ(std::string(dst, 4), std::string(src, 4));
  EXPECT_THROW(c2rs::Context("\xff\xff"), c2rs::Error);
}

TEST(HppEvent, FollowsCaffe2sStateMachine) {
  c2rs::Event ev("");
  EXPECT_EQ(ev.query(), C2RS_EVENT_INITIALIZED);
  c2rs::Context ctx("");
  ctx.record(ev);
  EXPECT_EQ(ev.query(), C2RS_EVENT_SCHEDULED) << "a CPU event waits for set_finished";
  ev.set_finished();
  ev.finish();  // returns now that the event is finished
  EXPECT_EQ(ev.query(), C2RS_EVENT_SUCCESS);
  ctx.wait(ev);
  ev.reset();
  EXPECT_EQ(ev.query(), C2RS_EVENT_INITIALIZED);
  ev.set_finished("boom");
  EXPECT_EQ(ev.query(), C2RS_EVENT_FAILED);
  EXPECT_NE(ev.error_message().find("boom"), std::string::npos);
}

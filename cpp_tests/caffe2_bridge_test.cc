// include/caffe2rs/caffe2_bridge.h (and host_op.hpp under it) in a stand-in Caffe2 host
// (cpp_tests/standin): the host keeps its own workspace, blobs, tensors, registry and net, and
// switches TensorProtosDBInput and the BlobsQueue family to caffe2rs one at a time by setting
// engine "C2RS". One host net: DB input -> host op reading the batch -> EnqueueBlobs ->
// DequeueBlobs -> host op writing the batch in place. Checked in every configuration: the
// values, that the batch the host operator writes is the very buffer the DB input produced
// (pointer equality: no copy anywhere on the way), that the write happens in place, and that
// caffe2rs errors reach the host as its own exception with caffe2rs's message.
#include <gtest/gtest.h>

#include <caffe2/core/db.h>
#include <caffe2/core/operator.h>
#include <caffe2/core/workspace.h>

#include <cstdint>
#include <string>
#include <vector>

#include "caffe2rs.hpp"
#include "caffe2rs/caffe2_bridge.h"
#include "standin_ops.h"

C2RS_CAFFE2_DEFINE_TYPES();
C2RS_CAFFE2_REGISTER_BLOBS_QUEUE_FAMILY();
C2RS_CAFFE2_REGISTER(TensorProtosDBInput);
C2RS_CAFFE2_REGISTER(HostOnlyOp);
C2RS_CAFFE2_REGISTER(Alias);
C2RS_CAFFE2_REGISTER(Copy);

namespace {

constexpr int kRecords = 8;
constexpr int64_t kBatch = 2;

/// Record i: a UINT8 image [3, 4, 4] filled with i, and an INT32 label i; key "k00i".
/// `odd_at` gives that record a [4, 4, 4] image instead.
std::vector<std::pair<std::string, std::string>> records(int odd_at = -1) {
  std::vector<std::pair<std::string, std::string>> out;
  for (int i = 0; i < kRecords; ++i) {
    const int64_t c = i == odd_at ? 4 : 3;
    c2rs::Tensor image = c2rs::Tensor::create(C2RS_DTYPE_UINT8, {c, 4, 4});
    uint8_t* p = image.mutable_data<uint8_t>();
    for (int64_t k = 0; k < image.numel(); ++k) p[k] = static_cast<uint8_t>(i);
    c2rs::Tensor label = c2rs::Tensor::create(C2RS_DTYPE_INT32, {});
    *label.mutable_data<int32_t>() = i;
    const std::string key = "k00" + std::to_string(i);
    out.emplace_back(key, c2rs::encode_tensor_protos({image, label}).str());
  }
  return out;
}

caffe2::OperatorDef op(const std::string& type, std::vector<std::string> in,
                       std::vector<std::string> out, const std::string& engine,
                       std::vector<caffe2::Argument> args = {}) {
  caffe2::OperatorDef d;
  d.set_type(type);
  for (auto& i : in) d.add_input(i);
  for (auto& o : out) d.add_output(o);
  d.set_engine(engine);
  d.args() = std::move(args);
  return d;
}

caffe2::Argument int_arg(const std::string& name, int64_t v) {
  caffe2::Argument a;
  a.name = name;
  a.i = v;
  a.has_i = true;
  return a;
}

caffe2::Argument str_arg(const std::string& name, const std::string& v) {
  caffe2::Argument a;
  a.name = name;
  a.s = v;
  a.has_s = true;
  return a;
}

/// The host's pipeline: `db_engine` for TensorProtosDBInput, `queue_engine` for the BlobsQueue
/// family ("" = the host's own, "C2RS" = caffe2rs).
struct Pipeline {
  caffe2::Workspace ws;

  Pipeline(const std::string& db_engine, const std::string& queue_engine, int odd_at = -1) {
    ws.CreateBlob("reader")->GetMutable<caffe2::db::DBReader>()->Open(records(odd_at));
    caffe2::NetDef init;
    init.set_name("init");
    *init.add_op() = op("CreateBlobsQueue", {}, {"queue"}, queue_engine,
                        {int_arg("capacity", 2), int_arg("num_blobs", 2)});
    EXPECT_TRUE(ws.RunNetOnce(init));
    caffe2::NetDef main;
    main.set_name("main");
    *main.add_op() = op("TensorProtosDBInput", {"reader"}, {"data", "label"}, db_engine,
                        {int_arg("batch_size", kBatch)});
    *main.add_op() = op("TracePointer", {"data"}, {}, "", {str_arg("tag", "db")});
    *main.add_op() = op("EnqueueBlobs", {"queue", "data", "label"}, {"data", "label"}, queue_engine);
    *main.add_op() = op("DequeueBlobs", {"queue"}, {"batch", "batch_label"}, queue_engine);
    *main.add_op() = op("AddOneInPlace", {"batch"}, {"batch"}, "");
    ws.CreateNet(main);
  }

  /// Runs the net once and checks the batch: images of the next kBatch records, plus one.
  void run_and_check(int iteration) {
    ASSERT_TRUE(ws.RunNet("main"));
    const caffe2::Tensor& batch = ws.GetBlob("batch")->Get<caffe2::Tensor>();
    ASSERT_EQ(batch.sizes(), (std::vector<int64_t>{kBatch, 3, 4, 4}));
    const auto* p = batch.data<uint8_t>();
    const auto* labels = ws.GetBlob("batch_label")->Get<caffe2::Tensor>().data<int32_t>();
    for (int64_t b = 0; b < kBatch; ++b) {
      const int record = static_cast<int>((iteration * kBatch + b) % kRecords);
      EXPECT_EQ(labels[b], record);
      for (int64_t k = 0; k < 48; ++k) ASSERT_EQ(p[b * 48 + k], record + 1) << "row " << b;
    }
  }
};

class BridgeSwitch : public ::testing::TestWithParam<std::pair<const char*, const char*>> {};

}  // namespace

// Every switch configuration runs the same host net with the same results; the buffer the
// DB input made is the one the in-place host operator writes (no copy on the way).
TEST_P(BridgeSwitch, PipelineRunsAndTheDbBatchReachesTheHostOperatorWithoutACopy) {
  const auto [db_engine, queue_engine] = GetParam();
  standin::trace().clear();
  const uint64_t copies_before = c2rs::caffe2_bridge::copied_outputs();
  {
    Pipeline p(db_engine, queue_engine);
    if (std::string(queue_engine) == "C2RS") {
      // The queue made by caffe2rs lives in the host's blob as a caffe2rs object.
      const caffe2::Blob* q = p.ws.GetBlob("queue");
      ASSERT_TRUE(q->IsType<c2rs::caffe2_bridge::ObjectBlob>());
      EXPECT_EQ(q->Get<c2rs::caffe2_bridge::ObjectBlob>().object.type_name(),
                "std::shared_ptr<caffe2::BlobsQueue>");
    }
    for (int it = 0; it < 6; ++it) p.run_and_check(it);
  }
  const std::vector<const void*> db = standin::trace().of("db");
  const std::vector<const void*> bump = standin::trace().of("bump");
  ASSERT_EQ(db.size(), 6u);
  ASSERT_EQ(bump, db) << "the host operator wrote a copy, not the DB batch";
  for (const void* ptr : db) EXPECT_NE(ptr, nullptr);
  EXPECT_EQ(c2rs::caffe2_bridge::copied_outputs(), copies_before) << "the bridge copied a batch";
}

INSTANTIATE_TEST_SUITE_P(
    OneFamilyAtATime, BridgeSwitch,
    ::testing::Values(std::make_pair("", ""), std::make_pair("C2RS", ""),
                      std::make_pair("", "C2RS"), std::make_pair("C2RS", "C2RS")),
    [](const ::testing::TestParamInfo<std::pair<const char*, const char*>>& info) {
      const std::string db = *info.param.first ? "CaffeRsDbInput" : "HostDbInput";
      const std::string q = *info.param.second ? "CaffeRsQueue" : "HostQueue";
      return db + "_" + q;
    });

// A dequeued batch is the only holder of its buffer: the host writes it in place, and the
// caffe2rs operator made a writable hand-over (no copy-on-write happened in caffe2rs either).
TEST(Caffe2Bridge, HostOperatorWritesInPlaceIntoADequeuedBatch) {
  Pipeline p("C2RS", "C2RS");
  p.run_and_check(0);
  const caffe2::Tensor& batch = p.ws.GetBlob("batch")->Get<caffe2::Tensor>();
  // The host tensor is the sole holder of the caffe2rs buffer it adopted.
  EXPECT_EQ(batch.getIntrusivePtr().use_count(), 1);
  EXPECT_EQ(batch.getIntrusivePtr()->storage().use_count(), 1u);
  const void* before = batch.raw_data();
  caffe2::Tensor* t = caffe2::BlobGetMutableTensor(p.ws.GetBlob("batch"), caffe2::CPU);
  auto* w = static_cast<uint8_t*>(t->raw_mutable_data(t->dtype()));
  EXPECT_EQ(static_cast<const void*>(w), before);
  w[0] = 200;
  EXPECT_EQ(batch.data<uint8_t>()[0], 200);
}

// Errors inside caffe2rs surface as the host's exception with caffe2rs's message.
TEST(Caffe2Bridge, ACaffe2rsErrorIsAHostExceptionWithTheCaffe2rsMessage) {
  Pipeline p("C2RS", "", /*odd_at=*/3);
  p.run_and_check(0);  // records 0, 1
  try {
    p.ws.RunNet("main");  // records 2, 3: record 3 has another shape
    FAIL() << "expected a host exception";
  } catch (const caffe2::EnforceNotMet& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("op (TensorProtosDBInput)"), std::string::npos) << what;
    EXPECT_NE(what.find("TensorProtosDBInput: record 'k003' output 0 has [4, 4, 4]/UINT8, batch "
                        "expects [3, 4, 4]/UINT8"),
              std::string::npos)
        << what;
  }
}

TEST(Caffe2Bridge, AWrongRecordCountIsAHostExceptionFromTheCaffe2rsQueue) {
  caffe2::Workspace ws;
  caffe2::NetDef net;
  net.set_name("n");
  *net.add_op() = op("CreateBlobsQueue", {}, {"q"}, "C2RS", {int_arg("num_blobs", 2)});
  ASSERT_TRUE(ws.RunNetOnce(net));
  caffe2::BlobGetMutableTensor(ws.CreateBlob("x"), caffe2::CPU)->Resize({2});
  (void)ws.GetBlob("x")->GetMutable<caffe2::Tensor>()->mutable_data<float>();
  caffe2::NetDef enq;
  enq.set_name("e");
  *enq.add_op() = op("EnqueueBlobs", {"q", "x"}, {"x"}, "C2RS");
  try {
    ws.RunNetOnce(enq);
    FAIL() << "expected a host exception";
  } catch (const caffe2::EnforceNotMet& e) {
    EXPECT_NE(std::string(e.what()).find("op (EnqueueBlobs)"), std::string::npos) << e.what();
  }
  // The consumed input went back to its host blob: the failed run lost nothing.
  const caffe2::Tensor& x = ws.GetBlob("x")->Get<caffe2::Tensor>();
  ASSERT_TRUE(x.defined());
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{2}));
}

// A type caffe2rs lacks falls back to the host's own implementation (UnsupportedOperatorFeature).
TEST(Caffe2Bridge, AnOperatorCaffe2rsLacksFallsBackToTheHostImplementation) {
  standin::trace().clear();
  caffe2::Workspace ws;
  caffe2::NetDef net;
  net.set_name("n");
  *net.add_op() = op("HostOnlyOp", {}, {}, "C2RS");
  ASSERT_TRUE(ws.RunNetOnce(net));
  EXPECT_EQ(standin::trace().of("host_only").size(), 1u);
}

// switch_engine sets the engine on exactly the listed types.
TEST(Caffe2Bridge, SwitchEngineSetsC2rsOnTheListedTypesOnly) {
  caffe2::NetDef net;
  *net.add_op() = op("DequeueBlobs", {"q"}, {"x"}, "");
  *net.add_op() = op("AddOneInPlace", {"x"}, {"x"}, "");
  EXPECT_EQ(c2rs::caffe2_bridge::switch_engine(&net, {"DequeueBlobs", "EnqueueBlobs"}), 1);
  EXPECT_EQ(net.op()[0].engine(), "C2RS");
  EXPECT_EQ(net.op()[1].engine(), "");
}

// An output caffe2rs still shares elsewhere is copied into the host, so a host write never
// reaches caffe2rs's copy; the bridge counts such copies.
TEST(Caffe2Bridge, ASharedOutputIsCopiedSoHostWritesStayOnTheHostSide) {
  caffe2::Workspace ws;
  caffe2::Tensor* x = caffe2::BlobGetMutableTensor(ws.CreateBlob("x"), caffe2::CPU);
  x->Resize({3});
  float* xp = x->mutable_data<float>();
  xp[0] = 1;
  xp[1] = 2;
  xp[2] = 3;
  caffe2::NetDef net;
  net.set_name("n");
  // Alias shares the input's storage: the output comes back read-only and is copied.
  *net.add_op() = op("Alias", {"x"}, {"y"}, "C2RS");
  const uint64_t before = c2rs::caffe2_bridge::copied_outputs();
  ASSERT_TRUE(ws.RunNetOnce(net));
  EXPECT_EQ(c2rs::caffe2_bridge::copied_outputs(), before + 1);
  const caffe2::Tensor& y = ws.GetBlob("y")->Get<caffe2::Tensor>();
  EXPECT_NE(y.raw_data(), static_cast<const void*>(xp));
  EXPECT_EQ(y.data<float>()[2], 3.0f);
}

// A buffer bounced between the host and caffe2rs many times (a queue ping-pong) goes back to
// caffe2rs as the buffer it is, not wrapped once more per trip: the same pointer every time,
// and the host tensor's storage holds caffe2rs's own export directly.
TEST(Caffe2Bridge, ABufferBouncingThroughAQueueNeverGrowsLayers) {
  caffe2::Workspace ws;
  caffe2::NetDef init;
  init.set_name("init");
  *init.add_op() = op("CreateBlobsQueue", {}, {"q"}, "C2RS");
  ASSERT_TRUE(ws.RunNetOnce(init));
  caffe2::Tensor* t = caffe2::BlobGetMutableTensor(ws.CreateBlob("x"), caffe2::CPU);
  t->Resize({1024});
  const void* p = t->mutable_data<uint8_t>();
  caffe2::NetDef pingpong;
  pingpong.set_name("pingpong");
  *pingpong.add_op() = op("EnqueueBlobs", {"q", "x"}, {"x"}, "C2RS");
  *pingpong.add_op() = op("DequeueBlobs", {"q"}, {"x"}, "C2RS");
  ws.CreateNet(pingpong);
  const uint64_t copies = c2rs::caffe2_bridge::copied_outputs();
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(ws.RunNet("pingpong"));
  const caffe2::Tensor& x = ws.GetBlob("x")->Get<caffe2::Tensor>();
  EXPECT_EQ(x.raw_data(), p);
  EXPECT_EQ(c2rs::caffe2_bridge::copied_outputs(), copies);
  // One layer: the storage's context is a caffe2rs export whose deleter is caffe2rs's own.
  auto storage = x.getIntrusivePtr()->storage();
  ASSERT_EQ(storage.data_ptr().get_deleter(), &c2rs::caffe2_bridge::detail::delete_managed);
  auto* m = static_cast<DLManagedTensorVersioned*>(storage.data_ptr().get_context());
  EXPECT_EQ(m->dl_tensor.data, p);
}

// STRING tensors have no DLPack form: they cross both ways as copies of their strings.
TEST(Caffe2Bridge, StringTensorsCrossAsCopies) {
  caffe2::Workspace ws;
  caffe2::Tensor* s = caffe2::BlobGetMutableTensor(ws.CreateBlob("s"), caffe2::CPU);
  s->Resize({2});
  auto* p = static_cast<std::string*>(s->raw_mutable_data(caffe2::TypeMeta::Make<std::string>()));
  p[0] = "caffe2";
  p[1] = std::string("r\0s", 3);
  caffe2::NetDef net;
  net.set_name("n");
  *net.add_op() = op("Copy", {"s"}, {"t"}, "C2RS");
  ASSERT_TRUE(ws.RunNetOnce(net));
  const caffe2::Tensor& t = ws.GetBlob("t")->Get<caffe2::Tensor>();
  ASSERT_TRUE(t.dtype().Match<std::string>());
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{2}));
  const auto* q = static_cast<const std::string*>(t.raw_data());
  EXPECT_EQ(q[0], "caffe2");
  EXPECT_EQ(q[1], std::string("r\0s", 3));
}

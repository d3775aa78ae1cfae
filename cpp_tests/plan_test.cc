// Plans through the C ABI and the C++ wrapper: c2rs_workspace_run_plan / Workspace::run_plan
// (Caffe2's RunPlan), c2rs_workspace_cancel / Workspace::cancel_plans, and the utility
// operators plans use (Iter, GivenTensor*Fill, Free after release_blobs_when_used).
// Ports python/workspace_test.py testRunPlan and the producer/consumer shape of
// hypothesis_test.py test_safe_blobs_queue (every record checked to arrive once).
// Changes: protobuf messages are encoded by c2rs_test_proto.h (no libprotobuf needed).
#include "caffe2rs.hpp"
#include "c2rs_test_proto.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using c2rs_test::FloatArg;
using c2rs_test::IntArg;
using c2rs_test::IntsArg;
using c2rs_test::Op;
using c2rs_test::Pb;

std::string LastError() { return c2rs_last_error_message(); }

// NetDef: 1 name, 2 op. ExecutionStep: 1 name, 2 substep, 3 network, 4 num_iter,
// 6 concurrent_substeps, 9 should_stop_blob. PlanDef: 1 name, 2 network, 3 execution_step.
Pb Net(const std::string& name, const std::vector<Pb>& ops) {
  Pb p;
  p.str(1, name);
  for (const auto& o : ops) p.msg(2, o);
  return p;
}

Pb Step(const std::string& name, const std::vector<std::string>& nets, int64_t num_iter = -1,
        const std::string& should_stop_blob = "") {
  Pb p;
  p.str(1, name);
  for (const auto& n : nets) p.str(3, n);
  if (num_iter >= 0) p.i64(4, num_iter);
  if (!should_stop_blob.empty()) p.str(9, should_stop_blob);
  return p;
}

Pb Group(const std::string& name, const std::vector<Pb>& substeps, bool concurrent) {
  Pb p;
  p.str(1, name);
  for (const auto& s : substeps) p.msg(2, s);
  if (concurrent) p.i64(6, 1);
  return p;
}

Pb Plan(const std::string& name, const std::vector<Pb>& nets, const std::vector<Pb>& steps) {
  Pb p;
  p.str(1, name);
  for (const auto& n : nets) p.msg(2, n);
  for (const auto& s : steps) p.msg(3, s);
  return p;
}

Pb CreateQueue(const std::string& name, int64_t capacity) {
  return Op("CreateBlobsQueue", {}, {name}, {IntArg("capacity", capacity), IntArg("num_blobs", 1)});
}

Pb FailingFill() {
  return Op("GivenTensorIntFill", {}, {"bad"}, {IntsArg("shape", {3}), IntsArg("values", {1, 2})});
}

int32_t RunPlan(c2rs_workspace* ws, const Pb& plan) {
  return c2rs_workspace_run_plan(ws, plan.data(), plan.bytes.size());
}

int64_t FetchInt64(c2rs::Workspace& ws, const std::string& name) {
  c2rs::Tensor t = ws.fetch(name);
  return t.data<int64_t>()[0];
}

}  // namespace

TEST(Plan, RunPlanLeavesTheBlob) {
  c2rs::Workspace ws;
  Pb plan = Plan("test-plan",
                 {Net("test-net", {Op("ConstantFill", {}, {"testblob"},
                                      {IntsArg("shape", {1, 2, 3, 4}), FloatArg("value", 1.0f)})})},
                 {Step("test-step", {"test-net"})});
  ASSERT_EQ(RunPlan(ws.get(), plan), C2RS_OK) << LastError();
  c2rs::Tensor t = ws.fetch("testblob");
  EXPECT_EQ(t.dims(), (std::vector<int64_t>{1, 2, 3, 4}));
  for (int64_t i = 0; i < t.numel(); ++i) EXPECT_EQ(t.data<float>()[i], 1.0f);
}

TEST(Plan, WrapperRunsIterStepsAndThrowsWithTheStepPath) {
  c2rs::Workspace ws;
  Pb plan = Plan("p", {Net("count", {Op("Iter", {}, {"it"})})}, {Step("s", {"count"}, 4)});
  ws.run_plan(plan.bytes);
  EXPECT_EQ(FetchInt64(ws, "it"), 4);
  Pb bad = Plan("p", {}, {Step("s", {"missing"})});
  try {
    ws.run_plan(bad.bytes);
    FAIL() << "expected an error";
  } catch (const c2rs::Error& e) {
    EXPECT_EQ(e.status(), C2RS_ENFORCE_NOT_MET);
    EXPECT_NE(std::string(e.what()).find("plan p: step s: ExecutionStep s uses undefined net missing"),
              std::string::npos)
        << e.what();
  }
}

TEST(Plan, NullAndGarbageArgumentsAreRefused) {
  c2rs::Workspace ws;
  EXPECT_EQ(c2rs_workspace_run_plan(nullptr, nullptr, 0), C2RS_INVALID_ARGUMENT);
  EXPECT_EQ(c2rs_workspace_run_plan(ws.get(), nullptr, 4), C2RS_INVALID_ARGUMENT);
  const uint8_t garbage[] = {0xff, 0xff, 0xff};
  EXPECT_EQ(c2rs_workspace_run_plan(ws.get(), garbage, sizeof garbage), C2RS_PARSE_ERROR);
  EXPECT_EQ(c2rs_workspace_run_plan(ws.get(), nullptr, 0), C2RS_OK);  // empty plan
  size_t n = 9;
  EXPECT_EQ(c2rs_workspace_cancel(ws.get(), nullptr), C2RS_INVALID_ARGUMENT);
  EXPECT_EQ(c2rs_workspace_cancel(nullptr, &n), C2RS_INVALID_ARGUMENT);
  EXPECT_EQ(c2rs_workspace_cancel(ws.get(), &n), C2RS_OK);
  EXPECT_EQ(n, 0u);
}

TEST(Plan, FailingConcurrentSubstepStopsThePlanWithItsStepPath) {
  c2rs::Workspace ws;
  Pb plan = Plan("p",
                 {Net("init", {CreateQueue("q", 1)}), Net("dequeue", {Op("DequeueBlobs", {"q"}, {"got"})}),
                  Net("fail", {FailingFill()})},
                 {Step("init", {"init"}),
                  Group("main", {Step("blocked", {"dequeue"}), Step("failing", {"fail"})}, true)});
  EXPECT_EQ(RunPlan(ws.get(), plan), C2RS_ENFORCE_NOT_MET);
  const std::string prefix =
      "c2rs_workspace_run_plan: plan p: step main / substep failing: op #0 (GivenTensorIntFill): ";
  EXPECT_EQ(LastError().rfind(prefix, 0), 0u) << LastError();
}

TEST(Plan, CancelFromAnotherThreadEndsAPlanBlockedOnAQueue) {
  c2rs::Workspace ws;
  ws.run_operator_once(CreateQueue("host_q", 2).bytes);
  Pb plan = Plan("stuck", {Net("dequeue", {Op("DequeueBlobs", {"host_q"}, {"got"})})},
                 {Step("wait", {"dequeue"})});
  int32_t status = C2RS_OK;
  std::string what;
  std::thread runner([&] {
    try {
      ws.run_plan(plan.bytes);
    } catch (const c2rs::Error& e) {
      status = e.status();
      what = e.what();
    }
  });
  // Poll until the plan runs (bounded: a hung test fails instead of hanging).
  for (int i = 0; i < 60000 && ws.running_plans() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(ws.running_plans(), 1u);
  EXPECT_EQ(ws.cancel_plans(), 1u);
  runner.join();
  EXPECT_EQ(status, C2RS_RUN_FAILED);
  EXPECT_NE(what.find("plan stuck: cancelled"), std::string::npos) << what;
  EXPECT_EQ(ws.running_plans(), 0u);
}

TEST(Plan, ProducerConsumerOverABlobsQueueDeliversEveryRecordOnce) {
  c2rs::Workspace ws;
  const int64_t records = 40;
  // producer: Iter, copy, SafeEnqueue; exit step closes the queue. Two consumers:
  // SafeDequeue with its status as should_stop_blob, then forward into "results".
  std::vector<Pb> nets = {
      Net("init", {CreateQueue("queue", 3), CreateQueue("results", records + 1),
                   Op("ConstantFill", {}, {"seq"},
                      {IntsArg("shape", {1}), IntArg("value", 0), IntArg("dtype", C2RS_DTYPE_INT64)})}),
      Net("produce", {Op("Iter", {"seq"}, {"seq"}), Op("Copy", {"seq"}, {"rec"}),
                      Op("SafeEnqueueBlobs", {"queue", "rec"}, {"rec", "pstatus"})}),
      Net("close", {Op("CloseBlobsQueue", {"queue"}, {})}),
  };
  std::vector<Pb> consumers;
  for (int j = 0; j < 2; ++j) {
    const std::string got = "got_" + std::to_string(j), st = "status_" + std::to_string(j);
    nets.push_back(Net("consume_" + std::to_string(j), {Op("SafeDequeueBlobs", {"queue"}, {got, st})}));
    nets.push_back(Net("forward_" + std::to_string(j), {Op("EnqueueBlobs", {"results", got}, {got})}));
    consumers.push_back(
        Step("consumer_" + std::to_string(j), {"consume_" + std::to_string(j), "forward_" + std::to_string(j)},
             -1, st));
  }
  Pb producer = Group("producer", {Step("produce", {"produce"}, records), Step("exit", {"close"})}, false);
  Pb plan = Plan("pc", nets,
                 {Step("init", {"init"}),
                  Group("worker", {Group("consumers", consumers, true), producer}, true)});
  ASSERT_EQ(RunPlan(ws.get(), plan), C2RS_OK) << LastError();
  std::set<int64_t> seen;
  for (int64_t i = 0; i < records; ++i) {
    ws.run_operator_once(Op("DequeueBlobs", {"results"}, {"r"}).bytes);
    EXPECT_TRUE(seen.insert(FetchInt64(ws, "r")).second) << "record twice";
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(records));
  EXPECT_EQ(*seen.begin(), 1);
  EXPECT_EQ(*seen.rbegin(), records);
}

TEST(Plan, NetRewrittenByReleaseBlobsWhenUsedRunsAndFrees) {
  c2rs::Workspace ws;
  // x -> Copy -> y -> Copy -> z (external output): y is freed after its last read.
  Pb net = Net("released", {Op("Copy", {"x"}, {"y"}), Op("Copy", {"y"}, {"z"})});
  net.str(7, "x").str(8, "z");
  c2rs_buffer* out = nullptr;
  ASSERT_EQ(c2rs_memonger_release_blobs_when_used(net.data(), net.bytes.size(), nullptr, 0, nullptr, nullptr, &out),
            C2RS_OK)
      << LastError();
  const std::string rewritten(reinterpret_cast<const char*>(c2rs_buffer_data(out)), c2rs_buffer_len(out));
  c2rs_buffer_free(out);
  c2rs::Tensor x = c2rs::Tensor::create(C2RS_DTYPE_FLOAT, {2});
  x.mutable_data<float>()[0] = 1.5f;
  x.mutable_data<float>()[1] = -2.0f;
  ws.feed("x", x);
  ws.create_net(rewritten);
  ws.run_net("released");
  c2rs::Tensor z = ws.fetch("z");
  EXPECT_EQ(z.data<float>()[0], 1.5f);
  EXPECT_EQ(z.data<float>()[1], -2.0f);
  const char* type = nullptr;
  ASSERT_EQ(c2rs_workspace_blob_type(ws.get(), "y", &type), C2RS_OK);
  EXPECT_STREQ(type, "nullptr (uninitialized)");
  ASSERT_EQ(c2rs_workspace_blob_type(ws.get(), "x", &type), C2RS_OK);
  EXPECT_STREQ(type, "caffe2::Tensor");
}

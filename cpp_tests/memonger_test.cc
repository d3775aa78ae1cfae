// C ABI tests of the memory optimizer: plan a golden net, read arena bytes, offsets and the
// report, verify the renamed net, and check the statuses of bad input.
#include "caffe2rs.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#ifndef C2RS_GOLDEN_DIR
#error "C2RS_GOLDEN_DIR must name the shared golden directory"
#endif

namespace {

std::vector<uint8_t> ReadFile(const std::string& rel) {
  std::ifstream in(std::string(C2RS_GOLDEN_DIR) + "/" + rel, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

std::string TakeBuffer(c2rs_buffer* buf) {
  std::string s(reinterpret_cast<const char*>(c2rs_buffer_data(buf)), c2rs_buffer_len(buf));
  c2rs_buffer_free(buf);
  return s;
}

uint64_t JsonInt(const std::string& json, const std::string& key) {
  auto pos = json.find("\"" + key + "\":");
  if (pos == std::string::npos) return UINT64_MAX;
  return std::stoull(json.substr(pos + key.size() + 3));
}

}  // namespace

TEST(Memonger, PlansGoldenNetWithinTargets) {
  auto net = ReadFile("memonger/resnet50_infer.pb");
  auto shapes = ReadFile("memonger/resnet50_infer.shapes.pb");
  ASSERT_FALSE(net.empty());
  ASSERT_FALSE(shapes.empty());
  c2rs_memory_plan* plan = nullptr;
  ASSERT_EQ(c2rs_memonger_plan(net.data(), net.size(), shapes.data(), shapes.size(), nullptr, 0, &plan),
            C2RS_OK)
      << c2rs_last_error_message();
  uint64_t arena = 0;
  ASSERT_EQ(c2rs_memory_plan_arena_bytes(plan, &arena), C2RS_OK);
  c2rs_buffer* report = nullptr;
  ASSERT_EQ(c2rs_memory_plan_report(plan, &report), C2RS_OK);
  std::string json = TakeBuffer(report);
  EXPECT_EQ(JsonInt(json, "lb_bytes"), 308281344u);  // golden manifest
  EXPECT_EQ(JsonInt(json, "arena_bytes"), arena);
  EXPECT_LE(static_cast<double>(arena), 1.03 * 308281344.0);
  EXPECT_LE(static_cast<double>(JsonInt(json, "name_bytes")), 1.15 * 308281344.0);

  uint64_t offset = 1, bytes = 1;
  ASSERT_EQ(c2rs_memory_plan_offset(plan, "conv1", &offset, &bytes), C2RS_OK);
  EXPECT_EQ(offset % 64, 0u);
  EXPECT_EQ(bytes, 102760448u);
  EXPECT_LE(offset + bytes, arena);
  EXPECT_EQ(c2rs_memory_plan_offset(plan, "no_such_blob", &offset, &bytes), C2RS_NOT_FOUND);

  c2rs_buffer* renamed = nullptr;
  ASSERT_EQ(c2rs_memory_plan_net(plan, &renamed), C2RS_OK);
  std::string after = TakeBuffer(renamed);
  EXPECT_EQ(c2rs_memonger_verify(net.data(), net.size(), reinterpret_cast<const uint8_t*>(after.data()),
                                 after.size(), nullptr, 0),
            C2RS_OK)
      << c2rs_last_error_message();

  c2rs_buffer* arena_json = nullptr;
  ASSERT_EQ(c2rs_memory_plan_arena_json(plan, &arena_json), C2RS_OK);
  EXPECT_NE(TakeBuffer(arena_json).find("\"entries\""), std::string::npos);
  c2rs_memory_plan_free(plan);
  c2rs_memory_plan_free(nullptr);
}

TEST(Memonger, OptimizeInferenceNetRewritesSafely) {
  auto net = ReadFile("netdefs/resnet50.pb");
  ASSERT_FALSE(net.empty());
  const char* statics[] = {"gpu_0/data", "gpu_0/softmax"};
  c2rs_buffer* out = nullptr;
  ASSERT_EQ(c2rs_memonger_optimize_inference_net(net.data(), net.size(), statics, 2, &out), C2RS_OK);
  std::string after = TakeBuffer(out);
  EXPECT_NE(after.find("__m0_shared"), std::string::npos);
  EXPECT_EQ(c2rs_memonger_verify(net.data(), net.size(), reinterpret_cast<const uint8_t*>(after.data()),
                                 after.size(), statics, 2),
            C2RS_OK)
      << c2rs_last_error_message();
}

TEST(Memonger, VerifierRejectsSwappedNetsWithMessage) {
  auto a = ReadFile("netdefs/bvlc_alexnet.pb");
  auto b = ReadFile("netdefs/zfnet512.pb");
  EXPECT_NE(c2rs_memonger_verify(a.data(), a.size(), b.data(), b.size(), nullptr, 0), C2RS_OK);
  EXPECT_NE(std::string(c2rs_last_error_message()).find("c2rs_memonger_verify"), std::string::npos);
}

TEST(Memonger, BadInputGivesStatusAndMessage) {
  const uint8_t junk[] = {0xff, 0xff, 0xff, 0x07};
  c2rs_memory_plan* plan = nullptr;
  EXPECT_EQ(c2rs_memonger_plan(junk, sizeof junk, nullptr, 0, nullptr, 0, &plan), C2RS_PARSE_ERROR);
  EXPECT_EQ(plan, nullptr);
  EXPECT_NE(std::string(c2rs_last_error_message()).find("NetDef"), std::string::npos);
  EXPECT_EQ(c2rs_memonger_plan(nullptr, 5, nullptr, 0, nullptr, 0, &plan), C2RS_INVALID_ARGUMENT);
  auto net = ReadFile("netdefs/bvlc_alexnet.pb");
  EXPECT_EQ(c2rs_memonger_plan(net.data(), net.size(), junk, sizeof junk, nullptr, 0, &plan), C2RS_PARSE_ERROR);
  EXPECT_EQ(c2rs_memonger_plan(net.data(), net.size(), nullptr, 0, nullptr, 0, nullptr), C2RS_INVALID_ARGUMENT);
  const char* null_name[] = {nullptr};
  c2rs_buffer* out = nullptr;
  EXPECT_EQ(c2rs_memonger_optimize_inference_net(net.data(), net.size(), null_name, 1, &out),
            C2RS_INVALID_ARGUMENT);
  EXPECT_EQ(out, nullptr);
}

TEST(Memonger, PlanWithOptionsReportsBoundAndRejectsUnknownFlags) {
  auto net = ReadFile("memonger/googlenet_infer.pb");
  auto shapes = ReadFile("memonger/googlenet_infer.shapes.pb");
  ASSERT_FALSE(net.empty());
  c2rs_memory_plan* plan = nullptr;
  ASSERT_EQ(c2rs_memonger_plan_with_options(net.data(), net.size(), shapes.data(), shapes.size(), nullptr, 0,
                                            /*search_budget_ms=*/0, 0, &plan),
            C2RS_OK)
      << c2rs_last_error_message();
  c2rs_buffer* report = nullptr;
  ASSERT_EQ(c2rs_memory_plan_report(plan, &report), C2RS_OK);
  std::string json = TakeBuffer(report);
  uint64_t arena = JsonInt(json, "arena_bytes");
  uint64_t arena_lb = JsonInt(json, "arena_lb_bytes");
  ASSERT_NE(arena_lb, UINT64_MAX) << json;
  EXPECT_GE(arena, arena_lb);
  EXPECT_GE(arena_lb, JsonInt(json, "lb_bytes"));  // aligned sizes are never smaller
  EXPECT_NE(json.find("\"search_nodes\":0"), std::string::npos) << json;  // greedy only
  c2rs_memory_plan_free(plan);

  plan = nullptr;
  EXPECT_EQ(c2rs_memonger_plan_with_options(net.data(), net.size(), shapes.data(), shapes.size(), nullptr, 0, 0,
                                            C2RS_MEMONGER_SHARE_EXTERNAL_OUTPUTS << 1, &plan),
            C2RS_INVALID_ARGUMENT);
  EXPECT_EQ(plan, nullptr);
  EXPECT_NE(std::string(c2rs_last_error_message()).find("flags"), std::string::npos);
}

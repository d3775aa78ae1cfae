// Device contexts and events through the C ABI, from C++.
// Ported from Caffe2 caffe2/core/context_test.cc (TestAllocAlignment with 64 instead of 32
// bytes, TestAllocDealloc), context_gpu_test.cc (HasCudaRuntime) and event_test.cc
// (EventCPUTest.EventBasics); the seeded generator is checked against std::mt19937 itself.
// Copy operators and CUDA tensors (CopyCPUToGPU/CopyGPUToCPU/Copy/EnsureCPUOutput, kDLCUDA
// DLPack) are checked without a GPU (UNSUPPORTED) and, self-skipping, with one.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "caffe2rs.h"
#include "c2rs_test_proto.h"

namespace {

void put_varint(std::vector<uint8_t>& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}

// A serialized caffe2.DeviceOption (fields 1 device_type, 2 device_id, 3 random_seed).
std::vector<uint8_t> device_option(int32_t type, int32_t id = -1, int64_t seed = -1) {
  std::vector<uint8_t> out;
  out.push_back(0x08);
  put_varint(out, static_cast<uint64_t>(static_cast<uint32_t>(type)));
  if (id >= 0) {
    out.push_back(0x10);
    put_varint(out, static_cast<uint64_t>(id));
  }
  if (seed >= 0) {
    out.push_back(0x18);
    put_varint(out, static_cast<uint64_t>(seed));
  }
  return out;
}

c2rs_context* make_context(const std::vector<uint8_t>& option) {
  c2rs_context* ctx = nullptr;
  EXPECT_EQ(c2rs_context_new(option.data(), option.size(), &ctx), C2RS_OK)
      << c2rs_last_error_message();
  return ctx;
}

int32_t status_of(const c2rs_event* ev) {
  int32_t s = -1;
  EXPECT_EQ(c2rs_event_query(ev, &s), C2RS_OK);
  return s;
}

bool require_gpu() {
  const char* v = std::getenv("C2RS_REQUIRE_GPU");
  return v != nullptr && std::string(v) == "1";
}

using c2rs_test::Pb;

// An OperatorDef (1 input, 2 output, 4 type, 6 device_option).
Pb copy_op(const std::string& type, const std::string& in, const std::string& out, int32_t device) {
  Pb p;
  p.str(1, in).str(2, out).str(4, type);
  if (device >= 0) p.msg(6, Pb().i64(1, device).i64(2, 0));
  return p;
}

int32_t run_op(c2rs_workspace* ws, const Pb& op) {
  return c2rs_workspace_run_operator_once(ws, op.data(), op.bytes.size());
}

void feed_floats(c2rs_workspace* ws, const char* name, const std::vector<float>& v) {
  c2rs_tensor* t = nullptr;
  const int64_t dims[1] = {static_cast<int64_t>(v.size())};
  ASSERT_EQ(c2rs_tensor_new(1 /* FLOAT */, dims, 1, &t), C2RS_OK);
  void* p = nullptr;
  ASSERT_EQ(c2rs_tensor_mutable_data(t, &p), C2RS_OK);
  if (!v.empty()) std::memcpy(p, v.data(), v.size() * sizeof(float));
  ASSERT_EQ(c2rs_workspace_feed(ws, name, t), C2RS_OK);
  c2rs_tensor_free(t);
}

std::vector<float> floats_of(const c2rs_tensor* t) {
  int64_t n = 0;
  EXPECT_EQ(c2rs_tensor_numel(t, &n), C2RS_OK);
  const void* p = nullptr;
  EXPECT_EQ(c2rs_tensor_data(t, &p), C2RS_OK);
  const float* f = static_cast<const float*>(p);
  return std::vector<float>(f, f + n);
}

}  // namespace

TEST(Context, TestAllocAlignment) {
  c2rs_context* ctx = make_context(device_option(0));
  for (size_t i = 1; i < 10; ++i) {
    void* p = nullptr;
    c2rs_deleter del = nullptr;
    ASSERT_EQ(c2rs_context_alloc(ctx, i, &p, &del), C2RS_OK);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
    del(p);
  }
  c2rs_context_free(ctx);
}

TEST(Context, TestAllocDealloc) {
  c2rs_context* ctx = make_context(device_option(0));
  void* a = nullptr;
  void* b = nullptr;
  c2rs_deleter da = nullptr;
  c2rs_deleter db = nullptr;
  ASSERT_EQ(c2rs_context_alloc(ctx, 10 * sizeof(float), &a, &da), C2RS_OK);
  ASSERT_EQ(c2rs_context_alloc(ctx, 10 * sizeof(float), &b, &db), C2RS_OK);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  float* fa = static_cast<float*>(a);
  for (int i = 0; i < 10; ++i) fa[i] = static_cast<float>(i);
  ASSERT_EQ(c2rs_context_copy_items(ctx, C2RS_DTYPE_FLOAT, 10, a, b), C2RS_OK);
  const float* fb = static_cast<const float*>(b);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(fb[i], static_cast<float>(i));
  da(a);
  db(b);
  c2rs_context_free(ctx);
}

TEST(Context, HasCudaRuntimeIsTrueInDefaultBuildsWithOrWithoutDriver) {
  // The default build has the `cuda` feature; a GPU is not needed for the answer.
  EXPECT_TRUE(c2rs_cuda_has_runtime());
}

TEST(Context, SeededGeneratorMatchesStdMt19937) {
  for (uint32_t seed : {0u, 1u, 5489u, 123456789u, 4294967295u}) {
    c2rs_context* ctx = make_context(device_option(0, -1, seed));
    std::vector<uint32_t> ours(2000);
    ASSERT_EQ(c2rs_context_rand_u32(ctx, ours.data(), 1000), C2RS_OK);
    ASSERT_EQ(c2rs_context_rand_u32(ctx, ours.data() + 1000, 1000), C2RS_OK);
    std::mt19937 reference(seed);
    for (size_t i = 0; i < ours.size(); ++i) {
      ASSERT_EQ(ours[i], reference()) << "seed " << seed << " draw " << i;
    }
    c2rs_context_free(ctx);
  }
}

TEST(Context, CopyBytesOfZeroAcceptsNull) {
  c2rs_context* ctx = make_context(device_option(0));
  EXPECT_EQ(c2rs_context_copy_bytes(ctx, 0, nullptr, nullptr), C2RS_OK);
  char dst[4] = {0};
  EXPECT_EQ(c2rs_context_copy_bytes(ctx, 4, nullptr, dst), C2RS_ENFORCE_NOT_MET);
  c2rs_context_free(ctx);
}

TEST(Context, EventCpuBasics) {
  c2rs_context* ctx = make_context(device_option(0));
  c2rs_event* ev = nullptr;
  ASSERT_EQ(c2rs_event_new(nullptr, 0, &ev), C2RS_OK);
  ASSERT_EQ(c2rs_context_record_event(ctx, ev, nullptr), C2RS_OK);
  EXPECT_EQ(status_of(ev), C2RS_EVENT_SCHEDULED);
  ASSERT_EQ(c2rs_event_set_finished(ev, nullptr), C2RS_OK);
  EXPECT_EQ(status_of(ev), C2RS_EVENT_SUCCESS);
  EXPECT_EQ(c2rs_context_wait_event(ctx, ev), C2RS_OK);
  EXPECT_EQ(c2rs_event_finish(ev), C2RS_OK);
  ASSERT_EQ(c2rs_event_reset(ev), C2RS_OK);
  ASSERT_EQ(c2rs_event_record(ev, C2RS_DEVICE_CPU, ctx, nullptr), C2RS_OK);
  ASSERT_EQ(c2rs_event_set_finished(ev, nullptr), C2RS_OK);
  EXPECT_EQ(c2rs_event_wait(ev, C2RS_DEVICE_CPU, ctx), C2RS_OK);
  EXPECT_EQ(c2rs_event_record(ev, C2RS_DEVICE_CPU, ctx, nullptr), C2RS_OK);  // finished: no-op
  c2rs_event_free(ev);
  c2rs_context_free(ctx);
}

TEST(Context, EventFinishWakesOnSetFinishedFromAnotherThread) {
  c2rs_event* ev = nullptr;
  ASSERT_EQ(c2rs_event_new(nullptr, 0, &ev), C2RS_OK);
  ASSERT_EQ(c2rs_event_record(ev, C2RS_DEVICE_CPU, nullptr, nullptr), C2RS_OK);
  std::thread finisher([ev] { EXPECT_EQ(c2rs_event_set_finished(ev, "late failure"), C2RS_OK); });
  EXPECT_EQ(c2rs_event_finish(ev), C2RS_OK);
  finisher.join();
  EXPECT_EQ(status_of(ev), C2RS_EVENT_FAILED);
  c2rs_buffer* msg = nullptr;
  ASSERT_EQ(c2rs_event_error_message(ev, &msg), C2RS_OK);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(c2rs_buffer_data(msg)), c2rs_buffer_len(msg)),
            "late failure");
  c2rs_buffer_free(msg);
  c2rs_event_free(ev);
}

TEST(Context, CudaEntryPointsWithoutGpuAreUnsupported) {
  if (c2rs_cuda_device_count() > 0) GTEST_SKIP() << "a GPU is present";
  auto opt = device_option(1, 0);
  c2rs_context* ctx = nullptr;
  EXPECT_EQ(c2rs_context_new(opt.data(), opt.size(), &ctx), C2RS_UNSUPPORTED);
  EXPECT_EQ(ctx, nullptr);
  void* p = nullptr;
  c2rs_deleter d = nullptr;
  EXPECT_EQ(c2rs_cuda_alloc(16, &p, &d), C2RS_UNSUPPORTED);
  EXPECT_NE(std::string(c2rs_last_error_message()).find("CUDA is not available"), std::string::npos);
  EXPECT_EQ(c2rs_cuda_set_device(0), C2RS_UNSUPPORTED);
}

TEST(Context, GpuCopyRoundTrip) {
  if (c2rs_cuda_device_count() == 0) {
    if (require_gpu()) FAIL() << "C2RS_REQUIRE_GPU=1 but no GPU";
    GTEST_SKIP() << "no GPU";
  }
  auto opt = device_option(1, 0);
  c2rs_context* ctx = make_context(opt);
  std::vector<uint8_t> host(1 << 20), back(1 << 20, 0);
  for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<uint8_t>(i * 13);
  void* dev = nullptr;
  c2rs_deleter d = nullptr;
  ASSERT_EQ(c2rs_context_alloc(ctx, host.size(), &dev, &d), C2RS_OK);
  ASSERT_EQ(c2rs_context_copy_bytes(ctx, host.size(), host.data(), dev), C2RS_OK);
  ASSERT_EQ(c2rs_context_copy_bytes(ctx, host.size(), dev, back.data()), C2RS_OK);
  ASSERT_EQ(c2rs_context_finish_device_computation(ctx), C2RS_OK);
  EXPECT_EQ(back, host);
  d(dev);
  c2rs_context_free(ctx);
}

TEST(Context, CudaCopyOperatorsWithoutGpuAreUnsupported) {
  if (c2rs_cuda_device_count() > 0) GTEST_SKIP() << "a GPU is present";
  c2rs_workspace* ws = nullptr;
  ASSERT_EQ(c2rs_workspace_new(nullptr, &ws), C2RS_OK);
  feed_floats(ws, "x", {1.f, 2.f});
  for (const char* type : {"CopyCPUToGPU", "CopyGPUToCPU", "Copy", "EnsureCPUOutput"}) {
    EXPECT_EQ(run_op(ws, copy_op(type, "x", "y", 1)), C2RS_UNSUPPORTED) << type;
    EXPECT_NE(std::string(c2rs_last_error_message()).find("no usable CUDA device"),
              std::string::npos)
        << c2rs_last_error_message();
  }
  c2rs_tensor* t = nullptr;
  const int64_t dims[1] = {2};
  ASSERT_EQ(c2rs_tensor_new(1, dims, 1, &t), C2RS_OK);
  EXPECT_EQ(c2rs_cuda_tensor_feed(ws, "g", 0, t), C2RS_UNSUPPORTED);
  c2rs_tensor_free(t);
  c2rs_workspace_free(ws);
}

TEST(Context, EnsureCPUOutputOnACpuInputWorksWithoutGpu) {
  c2rs_workspace* ws = nullptr;
  ASSERT_EQ(c2rs_workspace_new(nullptr, &ws), C2RS_OK);
  feed_floats(ws, "x", {1.5f, -2.f, 3.f});
  ASSERT_EQ(run_op(ws, copy_op("EnsureCPUOutput", "x", "y", -1)), C2RS_OK)
      << c2rs_last_error_message();
  c2rs_tensor* y = nullptr;
  ASSERT_EQ(c2rs_workspace_fetch(ws, "y", &y), C2RS_OK);
  EXPECT_EQ(floats_of(y), (std::vector<float>{1.5f, -2.f, 3.f}));
  c2rs_tensor_free(y);
  int32_t type = -1, id = -1;
  ASSERT_EQ(c2rs_workspace_blob_device(ws, "y", &type, &id), C2RS_OK);
  EXPECT_EQ(type, 0);
  EXPECT_EQ(id, 0);
  c2rs_workspace_free(ws);
}

TEST(Context, GpuCopyOperatorsAndCudaDlpackRoundTrip) {
  if (c2rs_cuda_device_count() == 0) {
    if (require_gpu()) FAIL() << "C2RS_REQUIRE_GPU=1 but no GPU";
    GTEST_SKIP() << "no GPU";
  }
  c2rs_workspace* ws = nullptr;
  ASSERT_EQ(c2rs_workspace_new(nullptr, &ws), C2RS_OK);
  std::vector<float> values(1000);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) * 0.25f;
  feed_floats(ws, "x", values);
  ASSERT_EQ(run_op(ws, copy_op("CopyCPUToGPU", "x", "xg", 1)), C2RS_OK)
      << c2rs_last_error_message();
  int32_t type = -1, id = -1;
  ASSERT_EQ(c2rs_workspace_blob_device(ws, "xg", &type, &id), C2RS_OK);
  EXPECT_EQ(type, 1);
  EXPECT_EQ(id, 0);
  const char* tn = nullptr;
  ASSERT_EQ(c2rs_workspace_blob_type(ws, "xg", &tn), C2RS_OK);
  EXPECT_STREQ(tn, "CudaTensor");
  ASSERT_EQ(run_op(ws, copy_op("Copy", "xg", "xg2", 1)), C2RS_OK) << c2rs_last_error_message();
  ASSERT_EQ(run_op(ws, copy_op("CopyGPUToCPU", "xg2", "y", 1)), C2RS_OK)
      << c2rs_last_error_message();
  c2rs_tensor* y = nullptr;
  ASSERT_EQ(c2rs_workspace_fetch(ws, "y", &y), C2RS_OK);
  EXPECT_EQ(floats_of(y), values);
  c2rs_tensor_free(y);

  DLManagedTensorVersioned* m = nullptr;
  ASSERT_EQ(c2rs_cuda_tensor_to_dlpack(ws, "xg", &m), C2RS_OK);
  EXPECT_EQ(m->dl_tensor.device.device_type, 2);  // kDLCUDA
  EXPECT_EQ(m->dl_tensor.device.device_id, 0);
  EXPECT_EQ(m->dl_tensor.shape[0], 1000);
  ASSERT_EQ(c2rs_cuda_tensor_from_dlpack(ws, "z", m), C2RS_OK) << c2rs_last_error_message();
  c2rs_tensor* z = nullptr;
  ASSERT_EQ(c2rs_cuda_tensor_fetch(ws, "z", &z), C2RS_OK);
  EXPECT_EQ(floats_of(z), values);
  c2rs_tensor_free(z);
  c2rs_workspace_free(ws);
}

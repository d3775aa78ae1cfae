// Tensor handles over host buffers (c2rs_tensor_wrap) and their reuse by c2rs_tensor_free:
// every wrapped buffer is released exactly once, on whichever thread frees the last tensor
// sharing it, never while a tensor still uses it, and never when the wrap failed; handles move
// through a BlobsQueue as the same pointers. Run under the sanitizer build too (ctest in
// build-asan): a use after free or a double free of a recycled handle shows there.
#include "caffe2rs.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

namespace {

// One host buffer: its bytes and how many times the library released it.
struct Buffer {
  alignas(8) unsigned char bytes[64];
  std::atomic<int> released{0};
};

extern "C" void count_release(void* ctx) {
  static_cast<Buffer*>(ctx)->released.fetch_add(1, std::memory_order_relaxed);
}

c2rs_tensor* wrap(Buffer& b, size_t nbytes = 64) {
  const int64_t dims[1] = {static_cast<int64_t>(nbytes)};
  c2rs_tensor* t = nullptr;
  EXPECT_EQ(c2rs_tensor_wrap(C2RS_DTYPE_UINT8, dims, 1, b.bytes, nbytes, count_release, &b, &t),
            C2RS_OK)
      << c2rs_last_error_message();
  return t;
}

TEST(TensorHandles, WrapSharesTheBufferAndReleasesItOnceAtTheLastFree) {
  Buffer b;
  std::memset(b.bytes, 7, sizeof b.bytes);
  c2rs_tensor* t = wrap(b);
  ASSERT_NE(t, nullptr);
  const void* data = nullptr;
  ASSERT_EQ(c2rs_tensor_data(t, &data), C2RS_OK);
  EXPECT_EQ(data, static_cast<const void*>(b.bytes)) << "zero copy";
  // A workspace copy shares the buffer: freeing the handle does not release it yet.
  c2rs_workspace* ws = nullptr;
  ASSERT_EQ(c2rs_workspace_new(nullptr, &ws), C2RS_OK);
  ASSERT_EQ(c2rs_workspace_feed_move(ws, "x", t), C2RS_OK);  // t consumed
  EXPECT_EQ(b.released.load(), 0);
  c2rs_workspace_free(ws);
  EXPECT_EQ(b.released.load(), 1);
}

TEST(TensorHandles, AFailedWrapAdoptsNothingAndReleasesNothing) {
  Buffer b;
  const int64_t dims[2] = {2, 4};
  c2rs_tensor* t = nullptr;
  // 8 floats need 32 bytes, not 16; a STRING tensor cannot wrap bytes; release is required.
  EXPECT_EQ(c2rs_tensor_wrap(C2RS_DTYPE_FLOAT, dims, 2, b.bytes, 16, count_release, &b, &t),
            C2RS_INVALID_ARGUMENT);
  EXPECT_EQ(c2rs_tensor_wrap(C2RS_DTYPE_STRING, dims, 2, b.bytes, 32, count_release, &b, &t),
            C2RS_UNSUPPORTED);
  EXPECT_EQ(c2rs_tensor_wrap(C2RS_DTYPE_FLOAT, dims, 2, b.bytes, 32, nullptr, &b, &t),
            C2RS_INVALID_ARGUMENT);
  EXPECT_EQ(c2rs_tensor_wrap(C2RS_DTYPE_FLOAT, dims, 2, b.bytes + 1, 32, count_release, &b, &t),
            C2RS_INVALID_ARGUMENT);  // misaligned for FLOAT
  EXPECT_EQ(c2rs_tensor_wrap(C2RS_DTYPE_FLOAT, dims, 2, b.bytes, 32, count_release, &b, nullptr),
            C2RS_INVALID_ARGUMENT);
  EXPECT_EQ(t, nullptr);
  EXPECT_EQ(b.released.load(), 0);
  // The buffer is still the host's: a later wrap of it works and releases once.
  ASSERT_EQ(c2rs_tensor_wrap(C2RS_DTYPE_FLOAT, dims, 2, b.bytes, 32, count_release, &b, &t),
            C2RS_OK);
  c2rs_tensor_free(t);
  EXPECT_EQ(b.released.load(), 1);
}

// Producers wrap, a queue carries the handles, consumers read and free them on other threads;
// the handle cache recycles the freed handles into later wraps. Every buffer is released
// exactly once, after its consumer read it, and the data each consumer sees is its record's.
TEST(TensorHandles, HandlesCrossThreadsThroughAQueueAndEachBufferIsReleasedOnce) {
  constexpr int kProducers = 4, kConsumers = 4, kPerProducer = 20000;
  c2rs_workspace* ws = nullptr;
  ASSERT_EQ(c2rs_workspace_new(nullptr, &ws), C2RS_OK);
  c2rs_blobs_queue* q = nullptr;
  ASSERT_EQ(c2rs_blobs_queue_create(ws, "handles_q", 8, 2, false, &q), C2RS_OK);
  std::vector<std::unique_ptr<Buffer[]>> buffers;
  for (int p = 0; p < kProducers; ++p) buffers.emplace_back(new Buffer[2 * kPerProducer]);
  std::atomic<int64_t> bad{0}, received{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kConsumers; ++c)
    threads.emplace_back([&] {
      c2rs_tensor* t[2] = {nullptr, nullptr};
      while (c2rs_blobs_queue_dequeue(q, t, 2) == C2RS_OK) {
        const void* a = nullptr;
        const void* b = nullptr;
        if (c2rs_tensor_data(t[0], &a) != C2RS_OK || c2rs_tensor_data(t[1], &b) != C2RS_OK) {
          bad.fetch_add(1);
        } else {
          // The record's large buffer is the one right after its small one, and neither was
          // released while the record was in flight.
          const auto* buf = static_cast<const Buffer*>(static_cast<const void*>(
              static_cast<const unsigned char*>(a) - offsetof(Buffer, bytes)));
          if (static_cast<const unsigned char*>(b) != (buf + 1)->bytes || buf->released.load() != 0)
            bad.fetch_add(1);
        }
        c2rs_tensor_free(t[0]);
        c2rs_tensor_free(t[1]);
        received.fetch_add(1);
      }
    });
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p)
    producers.emplace_back([&, p] {
      for (uint32_t k = 0; k < kPerProducer; ++k) {
        Buffer& small = buffers[p][2 * k];
        Buffer& large = buffers[p][2 * k + 1];
        std::memcpy(small.bytes, &k, sizeof k);
        c2rs_tensor* t[2] = {wrap(small, 8), wrap(large)};
        if (c2rs_blobs_queue_enqueue(q, t, 2) != C2RS_OK) {
          bad.fetch_add(1);
          c2rs_tensor_free(t[0]);
          c2rs_tensor_free(t[1]);
        }
      }
    });
  for (auto& p : producers) p.join();
  ASSERT_EQ(c2rs_blobs_queue_close(q), C2RS_OK);
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(received.load(), int64_t{kProducers} * kPerProducer);
  for (int p = 0; p < kProducers; ++p)
    for (int i = 0; i < 2 * kPerProducer; ++i)
      ASSERT_EQ(buffers[p][i].released.load(), 1) << "producer " << p << " buffer " << i;
  c2rs_blobs_queue_free(q);
  c2rs_workspace_free(ws);
}

// A dequeued host tensor is the handle that was enqueued (moved as a pointer, not copied).
TEST(TensorHandles, AQueueHandsBackTheEnqueuedHandles) {
  c2rs_workspace* ws = nullptr;
  ASSERT_EQ(c2rs_workspace_new(nullptr, &ws), C2RS_OK);
  c2rs_blobs_queue* q = nullptr;
  ASSERT_EQ(c2rs_blobs_queue_create(ws, "same_q", 4, 1, false, &q), C2RS_OK);
  Buffer b;
  c2rs_tensor* in = wrap(b);
  c2rs_tensor* sent = in;
  ASSERT_EQ(c2rs_blobs_queue_enqueue(q, &in, 1), C2RS_OK);
  c2rs_tensor* out = nullptr;
  ASSERT_EQ(c2rs_blobs_queue_dequeue(q, &out, 1), C2RS_OK);
  EXPECT_EQ(out, sent);
  EXPECT_EQ(b.released.load(), 0);
  c2rs_tensor_free(out);
  EXPECT_EQ(b.released.load(), 1);
  c2rs_blobs_queue_free(q);
  c2rs_workspace_free(ws);
}

// Threads that exit with handles in their cache hand them on; nothing is released twice.
TEST(TensorHandles, ThreadsExitingWithCachedHandlesLoseNothing) {
  constexpr int kThreads = 8, kPerThread = 500;
  std::vector<std::unique_ptr<Buffer[]>> buffers;
  for (int i = 0; i < kThreads; ++i) buffers.emplace_back(new Buffer[kPerThread]);
  for (int round = 0; round < 2; ++round) {
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i)
      threads.emplace_back([&, i] {
        std::vector<c2rs_tensor*> held;
        for (int k = 0; k < kPerThread; ++k) held.push_back(wrap(buffers[i][k]));
        for (c2rs_tensor* t : held) c2rs_tensor_free(t);
      });
    for (auto& t : threads) t.join();
    for (int i = 0; i < kThreads; ++i)
      for (int k = 0; k < kPerThread; ++k)
        ASSERT_EQ(buffers[i][k].released.load(), round + 1);
  }
}

}  // namespace

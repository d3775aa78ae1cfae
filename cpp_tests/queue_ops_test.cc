// Queues through the C ABI: host enqueue/dequeue of tensor handles (blocking, try, timeout),
// close semantics, a multi-producer/consumer stress run with a close mid-stream, operators and
// host threads sharing one queue, the RebatchingQueue host API and bad input.
// Upstream Caffe2 has no C++ queue tests; the ported Python cases live in tests/queue_ops.rs.
// Protobuf messages (OperatorDef) are encoded by a tiny writer below.
#include "caffe2rs.h"
#include "c2rs_test_proto.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

namespace {
using c2rs_test::Pb;

std::string int_arg(const std::string& name, int64_t v) {
  Pb a;
  a.str(1, name).int_field(3, v);
  return a.bytes;
}

std::string op_def(const std::string& type, const std::vector<std::string>& in,
                   const std::vector<std::string>& out, const std::vector<std::string>& args = {}) {
  Pb p;
  for (const auto& i : in) p.str(1, i);
  for (const auto& o : out) p.str(2, o);
  p.str(4, type);
  for (const auto& a : args) p.str(5, a);
  return p.bytes;
}

int32_t run_op(c2rs_workspace* ws, const std::string& def) {
  return c2rs_workspace_run_operator_once(ws, reinterpret_cast<const uint8_t*>(def.data()),
                                          def.size());
}

c2rs_tensor* int_tensor(int64_t v) {
  const int64_t dims[1] = {1};
  c2rs_tensor* t = nullptr;
  if (c2rs_tensor_new(C2RS_DTYPE_INT64, dims, 1, &t) != C2RS_OK) return nullptr;
  void* data = nullptr;
  if (c2rs_tensor_mutable_data(t, &data) != C2RS_OK) return nullptr;
  std::memcpy(data, &v, sizeof v);
  return t;
}

int64_t int_value(const c2rs_tensor* t) {
  const void* data = nullptr;
  EXPECT_EQ(c2rs_tensor_data(t, &data), C2RS_OK);
  int64_t v = 0;
  std::memcpy(&v, data, sizeof v);
  return v;
}

struct Fixture : ::testing::Test {
  c2rs_workspace* ws = nullptr;
  void SetUp() override { ASSERT_EQ(c2rs_workspace_new(nullptr, &ws), C2RS_OK); }
  void TearDown() override { c2rs_workspace_free(ws); }
  c2rs_blobs_queue* make_queue(const char* name, int64_t capacity, int64_t num_blobs,
                               bool strict = false) {
    c2rs_blobs_queue* q = nullptr;
    EXPECT_EQ(c2rs_blobs_queue_create(ws, name, capacity, num_blobs, strict, &q), C2RS_OK);
    return q;
  }
};

using BlobsQueueHost = Fixture;

TEST_F(BlobsQueueHost, EnqueueMovesTheTensorAndDequeueHandsTheSameBufferBack) {
  c2rs_blobs_queue* q = make_queue("q", 2, 1);
  c2rs_tensor* t = int_tensor(42);
  const void* before = nullptr;
  ASSERT_EQ(c2rs_tensor_data(t, &before), C2RS_OK);
  ASSERT_EQ(c2rs_blobs_queue_enqueue(q, &t, 1), C2RS_OK);  // t consumed
  size_t size = 0, capacity = 0, num_blobs = 0;
  bool closed = true;
  ASSERT_EQ(c2rs_blobs_queue_info(q, &size, &capacity, &num_blobs, &closed), C2RS_OK);
  EXPECT_EQ(size, 1u);
  EXPECT_EQ(capacity, 2u);
  EXPECT_EQ(num_blobs, 1u);
  EXPECT_FALSE(closed);
  c2rs_tensor* out = nullptr;
  ASSERT_EQ(c2rs_blobs_queue_dequeue(q, &out, 1), C2RS_OK);
  const void* after = nullptr;
  ASSERT_EQ(c2rs_tensor_data(out, &after), C2RS_OK);
  EXPECT_EQ(before, after);
  EXPECT_EQ(int_value(out), 42);
  c2rs_tensor_free(out);
  c2rs_blobs_queue_free(q);
}

TEST_F(BlobsQueueHost, TryAndTimeoutVariantsReportTimeoutAndKeepOwnership) {
  c2rs_blobs_queue* q = make_queue("q", 1, 1);
  c2rs_tensor* out = nullptr;
  EXPECT_EQ(c2rs_blobs_queue_try_dequeue(q, &out, 1), C2RS_TIMEOUT);
  EXPECT_EQ(c2rs_last_error_code(), C2RS_TIMEOUT);
  EXPECT_EQ(c2rs_blobs_queue_dequeue_timeout(q, 0.0005, &out, 1), C2RS_TIMEOUT);
  EXPECT_EQ(out, nullptr);
  c2rs_tensor* a = int_tensor(1);
  c2rs_tensor* b = int_tensor(2);
  ASSERT_EQ(c2rs_blobs_queue_try_enqueue(q, &a, 1), C2RS_OK);
  EXPECT_EQ(c2rs_blobs_queue_try_enqueue(q, &b, 1), C2RS_TIMEOUT);  // full: b still ours
  EXPECT_EQ(int_value(b), 2);
  c2rs_tensor_free(b);
  ASSERT_EQ(c2rs_blobs_queue_dequeue_timeout(q, 1.0, &out, 1), C2RS_OK);
  EXPECT_EQ(int_value(out), 1);
  c2rs_tensor_free(out);
  c2rs_blobs_queue_free(q);
}

TEST_F(BlobsQueueHost, CloseWakesBlockedReadersAndWritersWithClosedStatus) {
  c2rs_blobs_queue* full = make_queue("full", 1, 1);
  c2rs_blobs_queue* empty = make_queue("empty", 1, 1);
  c2rs_tensor* t = int_tensor(0);
  ASSERT_EQ(c2rs_blobs_queue_enqueue(full, &t, 1), C2RS_OK);
  std::vector<std::future<int32_t>> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.push_back(std::async(std::launch::async, [full] {
      c2rs_tensor* w = int_tensor(1);
      const int32_t s = c2rs_blobs_queue_enqueue(full, &w, 1);
      if (s != C2RS_OK) c2rs_tensor_free(w);
      return s;
    }));
    waiters.push_back(std::async(std::launch::async, [empty] {
      c2rs_tensor* out = nullptr;
      return c2rs_blobs_queue_dequeue(empty, &out, 1);
    }));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(c2rs_blobs_queue_close(full), C2RS_OK);
  ASSERT_EQ(c2rs_blobs_queue_close(empty), C2RS_OK);
  ASSERT_EQ(c2rs_blobs_queue_close(empty), C2RS_OK);  // idempotent
  for (auto& w : waiters) {
    ASSERT_EQ(w.wait_for(std::chrono::seconds(5)), std::future_status::ready);
    EXPECT_EQ(w.get(), C2RS_CLOSED);
  }
  // Readers drain what is left, then fail.
  c2rs_tensor* out = nullptr;
  ASSERT_EQ(c2rs_blobs_queue_dequeue(full, &out, 1), C2RS_OK);
  c2rs_tensor_free(out);
  EXPECT_EQ(c2rs_blobs_queue_dequeue(full, &out, 1), C2RS_CLOSED);
  c2rs_blobs_queue_free(full);
  c2rs_blobs_queue_free(empty);
}

TEST_F(BlobsQueueHost, StrictQueueRefusesEveryWriteAfterClose) {
  c2rs_blobs_queue* q = make_queue("q", 4, 1, /*strict=*/true);
  ASSERT_EQ(c2rs_blobs_queue_close(q), C2RS_OK);
  c2rs_tensor* t = int_tensor(1);
  EXPECT_EQ(c2rs_blobs_queue_enqueue(q, &t, 1), C2RS_CLOSED);
  c2rs_tensor_free(t);
  c2rs_blobs_queue_free(q);
}

// Several producers and consumers, a close in the middle of the stream: every record that went
// in comes out exactly once and each producer's records arrive in order; bounded waits.
TEST_F(BlobsQueueHost, StressCloseMidStreamEveryRecordOnceInProducerOrder) {
  constexpr int kProducers = 4, kConsumers = 4;
  constexpr int64_t kPerProducer = 50000;
  c2rs_blobs_queue* q = make_queue("stress", 4, 1);
  std::atomic<int64_t> consumed{0};
  std::vector<std::future<int64_t>> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.push_back(std::async(std::launch::async, [q, p] {
      int64_t sent = 0;
      for (int64_t k = 0; k < kPerProducer; ++k) {
        c2rs_tensor* t = int_tensor(static_cast<int64_t>(p) << 40 | k);
        if (c2rs_blobs_queue_enqueue(q, &t, 1) != C2RS_OK) {
          c2rs_tensor_free(t);
          break;
        }
        ++sent;
      }
      return sent;
    }));
  }
  std::vector<std::future<std::vector<int64_t>>> consumers;
  for (int c = 0; c < kConsumers; ++c) {
    consumers.push_back(std::async(std::launch::async, [q, &consumed] {
      std::vector<int64_t> got;
      c2rs_tensor* out = nullptr;
      while (c2rs_blobs_queue_dequeue(q, &out, 1) == C2RS_OK) {
        got.push_back(int_value(out));
        c2rs_tensor_free(out);
        consumed.fetch_add(1, std::memory_order_relaxed);
      }
      return got;
    }));
  }
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (consumed.load() < kProducers * kPerProducer / 2) {
    ASSERT_LT(std::chrono::steady_clock::now(), limit) << "consumers stalled";
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  ASSERT_EQ(c2rs_blobs_queue_close(q), C2RS_OK);
  std::vector<int64_t> sent;
  for (auto& p : producers) {
    ASSERT_EQ(p.wait_for(std::chrono::seconds(60)), std::future_status::ready);
    sent.push_back(p.get());
  }
  std::vector<int64_t> all;
  for (auto& c : consumers) {
    ASSERT_EQ(c.wait_for(std::chrono::seconds(60)), std::future_status::ready);
    std::vector<int64_t> got = c.get();
    std::vector<int64_t> last(kProducers, -1);
    for (int64_t v : got) {
      const int p = static_cast<int>(v >> 40);
      const int64_t k = v & ((int64_t{1} << 40) - 1);
      ASSERT_LT(last[p], k) << "producer " << p << " out of order";
      last[p] = k;
    }
    all.insert(all.end(), got.begin(), got.end());
  }
  c2rs_tensor* out = nullptr;
  while (c2rs_blobs_queue_try_dequeue(q, &out, 1) == C2RS_OK) {
    all.push_back(int_value(out));
    c2rs_tensor_free(out);
  }
  std::vector<int64_t> expected;
  for (int p = 0; p < kProducers; ++p)
    for (int64_t k = 0; k < sent[p]; ++k) expected.push_back(static_cast<int64_t>(p) << 40 | k);
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, expected);
  c2rs_blobs_queue_free(q);
}

// No lost wake-up: at capacity 1 the producer and the consumer sleep at nearly every record
// (the queue alternates full and empty). A wake-up that went missing shows as a timeout
// (generous: 30 s), never as a hang.
TEST_F(BlobsQueueHost, SleepersOnAFullAndAnEmptyQueueAreWokenByEveryTransfer) {
  constexpr int64_t kRecords = 20000;
  c2rs_blobs_queue* q = make_queue("pingpong", 1, 1);
  auto consumer = std::async(std::launch::async, [q] {
    int64_t sum = 0;
    for (int64_t k = 0; k < kRecords; ++k) {
      c2rs_tensor* out = nullptr;
      const int32_t s = c2rs_blobs_queue_dequeue_timeout(q, 30.0, &out, 1);
      if (s != C2RS_OK) return int64_t{-1} - k;
      sum += int_value(out);
      c2rs_tensor_free(out);
    }
    return sum;
  });
  for (int64_t k = 0; k < kRecords; ++k) {
    c2rs_tensor* t = int_tensor(k);
    ASSERT_EQ(c2rs_blobs_queue_enqueue(q, &t, 1), C2RS_OK);
  }
  ASSERT_EQ(consumer.wait_for(std::chrono::seconds(120)), std::future_status::ready);
  EXPECT_EQ(consumer.get(), kRecords * (kRecords - 1) / 2) << "a reader was never woken";
  c2rs_blobs_queue_free(q);
}

TEST_F(BlobsQueueHost, OperatorsAndHostThreadsShareOneQueue) {
  ASSERT_EQ(run_op(ws, op_def("CreateBlobsQueue", {}, {"opq"},
                              {int_arg("capacity", 3), int_arg("num_blobs", 1)})),
            C2RS_OK);
  c2rs_blobs_queue* q = nullptr;
  ASSERT_EQ(c2rs_blobs_queue_from_workspace(ws, "opq", &q), C2RS_OK);
  c2rs_tensor* t = int_tensor(7);
  ASSERT_EQ(c2rs_blobs_queue_enqueue(q, &t, 1), C2RS_OK);
  ASSERT_EQ(run_op(ws, op_def("DequeueBlobs", {"opq"}, {"out"})), C2RS_OK);
  c2rs_tensor* fetched = nullptr;
  ASSERT_EQ(c2rs_workspace_fetch(ws, "out", &fetched), C2RS_OK);
  EXPECT_EQ(int_value(fetched), 7);
  c2rs_tensor_free(fetched);
  ASSERT_EQ(run_op(ws, op_def("CloseBlobsQueue", {"opq"}, {})), C2RS_OK);
  c2rs_tensor* out = nullptr;
  EXPECT_EQ(c2rs_blobs_queue_dequeue(q, &out, 1), C2RS_CLOSED);
  c2rs_buffer* stats = nullptr;
  ASSERT_EQ(c2rs_blobs_queue_stats(q, &stats), C2RS_OK);
  const std::string json(reinterpret_cast<const char*>(c2rs_buffer_data(stats)),
                         c2rs_buffer_len(stats));
  EXPECT_NE(json.find("\"opq/queue_dequeued_records\":1"), std::string::npos) << json;
  EXPECT_NE(json.find("\"opq/queue_balance\":-1"), std::string::npos) << json;
  c2rs_buffer_free(stats);
  c2rs_blobs_queue_free(q);
}

// A record whose second column is not a tensor (here another queue's native object, put in by
// EnqueueBlobs): the host dequeue refuses it and leaves it queued whole, the first column's
// tensor included, so an operator can still take it.
TEST_F(BlobsQueueHost, DequeueOfANonTensorColumnLeavesTheWholeRecordQueued) {
  ASSERT_EQ(run_op(ws, op_def("CreateBlobsQueue", {}, {"mq"},
                              {int_arg("capacity", 2), int_arg("num_blobs", 2)})),
            C2RS_OK);
  ASSERT_EQ(run_op(ws, op_def("CreateBlobsQueue", {}, {"other"},
                              {int_arg("capacity", 1), int_arg("num_blobs", 1)})),
            C2RS_OK);
  c2rs_tensor* a = int_tensor(5);
  ASSERT_EQ(c2rs_workspace_feed_move(ws, "a", a), C2RS_OK);
  ASSERT_EQ(run_op(ws, op_def("EnqueueBlobs", {"mq", "a", "other"}, {"a", "other"})), C2RS_OK);
  c2rs_blobs_queue* q = nullptr;
  ASSERT_EQ(c2rs_blobs_queue_from_workspace(ws, "mq", &q), C2RS_OK);
  c2rs_tensor* out[2] = {nullptr, nullptr};
  EXPECT_EQ(c2rs_blobs_queue_dequeue(q, out, 2), C2RS_TYPE_MISMATCH);
  EXPECT_EQ(out[0], nullptr);
  EXPECT_EQ(out[1], nullptr);
  EXPECT_NE(std::string(c2rs_last_error_message()).find("column 1"), std::string::npos)
      << c2rs_last_error_message();
  // Still there, whole: a second try fails the same way, the operator gets both columns.
  EXPECT_EQ(c2rs_blobs_queue_try_dequeue(q, out, 2), C2RS_TYPE_MISMATCH);
  ASSERT_EQ(run_op(ws, op_def("DequeueBlobs", {"mq"}, {"x", "y"})), C2RS_OK);
  c2rs_tensor* x = nullptr;
  ASSERT_EQ(c2rs_workspace_fetch(ws, "x", &x), C2RS_OK);
  EXPECT_EQ(int_value(x), 5);
  c2rs_tensor_free(x);
  EXPECT_EQ(c2rs_blobs_queue_try_dequeue(q, out, 2), C2RS_TIMEOUT);
  c2rs_blobs_queue_free(q);
}

TEST_F(BlobsQueueHost, BadInputIsRefusedWithoutChangingTheQueue) {
  c2rs_blobs_queue* q = nullptr;
  EXPECT_EQ(c2rs_blobs_queue_create(ws, "bad", -1, 1, false, &q), C2RS_ENFORCE_NOT_MET);
  EXPECT_NE(std::string(c2rs_last_error_message()).find("capacity must be >= 1, got -1"),
            std::string::npos);
  EXPECT_EQ(q, nullptr);
  EXPECT_EQ(c2rs_blobs_queue_create(ws, nullptr, 1, 1, false, &q), C2RS_INVALID_ARGUMENT);
  q = make_queue("q", 2, 2);
  c2rs_tensor* t = int_tensor(1);
  EXPECT_EQ(c2rs_blobs_queue_enqueue(q, &t, 1), C2RS_INVALID_ARGUMENT);  // wrong count
  c2rs_tensor* pair[2] = {t, nullptr};
  EXPECT_EQ(c2rs_blobs_queue_enqueue(q, pair, 2), C2RS_INVALID_ARGUMENT);  // NULL tensor
  c2rs_tensor* out[2] = {nullptr, nullptr};
  EXPECT_EQ(c2rs_blobs_queue_dequeue(q, out, 1), C2RS_INVALID_ARGUMENT);
  size_t size = 99;
  ASSERT_EQ(c2rs_blobs_queue_info(q, &size, nullptr, nullptr, nullptr), C2RS_OK);
  EXPECT_EQ(size, 0u);
  c2rs_tensor_free(t);
  // A blob that is not a queue.
  c2rs_tensor* plain = int_tensor(3);
  ASSERT_EQ(c2rs_workspace_feed_move(ws, "plain", plain), C2RS_OK);
  c2rs_blobs_queue* not_queue = nullptr;
  EXPECT_EQ(c2rs_blobs_queue_from_workspace(ws, "plain", &not_queue), C2RS_TYPE_MISMATCH);
  EXPECT_EQ(run_op(ws, op_def("DequeueBlobs", {"plain"}, {"x"})), C2RS_TYPE_MISMATCH);
  EXPECT_EQ(run_op(ws, op_def("SafeDequeueBlobs", {"q"}, {"a", "b", "s"},
                              {int_arg("num_records", 0)})),
            C2RS_ENFORCE_NOT_MET);
  EXPECT_EQ(run_op(ws, op_def("DequeueBlobs", {"q"}, {"a"})), C2RS_ENFORCE_NOT_MET);
  c2rs_blobs_queue_free(q);
}

// Issue 11 item 6: capacity 2^40 built every slot up front (abort after 20+ s); num_blobs 2^30
// spun. Creation now allocates nothing up front and the queue works.
TEST_F(BlobsQueueHost, HugeCapacityOrNumBlobsIsCreatedAtOnceAndWorks) {
  c2rs_blobs_queue* q = make_queue("big", int64_t{1} << 40, 1);
  ASSERT_NE(q, nullptr);
  for (int64_t k = 0; k < 100; ++k) {
    c2rs_tensor* t = int_tensor(k);
    ASSERT_EQ(c2rs_blobs_queue_enqueue(q, &t, 1), C2RS_OK);
  }
  size_t size = 0, capacity = 0;
  ASSERT_EQ(c2rs_blobs_queue_info(q, &size, &capacity, nullptr, nullptr), C2RS_OK);
  EXPECT_EQ(size, 100u);
  EXPECT_EQ(capacity, size_t{1} << 40);
  for (int64_t k = 0; k < 100; ++k) {
    c2rs_tensor* out = nullptr;
    ASSERT_EQ(c2rs_blobs_queue_dequeue(q, &out, 1), C2RS_OK);
    EXPECT_EQ(int_value(out), k);
    c2rs_tensor_free(out);
  }
  c2rs_blobs_queue_free(q);
  c2rs_blobs_queue* wide = make_queue("wide", 1, int64_t{1} << 30);
  ASSERT_NE(wide, nullptr);
  c2rs_tensor* t = int_tensor(1);
  EXPECT_EQ(c2rs_blobs_queue_enqueue(wide, &t, 1), C2RS_INVALID_ARGUMENT);  // short record
  c2rs_tensor_free(t);
  c2rs_blobs_queue_free(wide);
  c2rs_rebatching_queue* rq = nullptr;
  ASSERT_EQ(c2rs_rebatching_queue_create(ws, "rq", int64_t{1} << 40, 1, &rq), C2RS_OK);
  c2rs_tensor* row = int_tensor(5);
  const c2rs_tensor* in[1] = {row};
  ASSERT_EQ(c2rs_rebatching_queue_enqueue(rq, in, 1, false), C2RS_OK);
  ASSERT_EQ(c2rs_rebatching_queue_close(rq), C2RS_OK);
  c2rs_tensor* out = nullptr;
  ASSERT_EQ(c2rs_rebatching_queue_dequeue(rq, int64_t{1} << 40, &out, 1), C2RS_OK);
  EXPECT_EQ(int_value(out), 5);
  c2rs_tensor_free(out);
  c2rs_tensor_free(row);
  c2rs_rebatching_queue_free(rq);
}

using RebatchingQueueHost = Fixture;

TEST_F(RebatchingQueueHost, BatchEnqueueSplitsAndDequeueStacksThenClosedWhenDrained) {
  c2rs_rebatching_queue* q = nullptr;
  ASSERT_EQ(c2rs_rebatching_queue_create(ws, "rq", 10, 1, &q), C2RS_OK);
  const int64_t dims[1] = {10};
  c2rs_tensor* t = nullptr;
  ASSERT_EQ(c2rs_tensor_new(C2RS_DTYPE_INT32, dims, 1, &t), C2RS_OK);
  void* data = nullptr;
  ASSERT_EQ(c2rs_tensor_mutable_data(t, &data), C2RS_OK);
  for (int i = 0; i < 10; ++i) static_cast<int32_t*>(data)[i] = i * 2;
  const c2rs_tensor* in[1] = {t};
  ASSERT_EQ(c2rs_rebatching_queue_enqueue(q, in, 1, true), C2RS_OK);
  static_cast<int32_t*>(data)[0] = 999;  // the queue holds copies
  ASSERT_EQ(c2rs_rebatching_queue_close(q), C2RS_OK);
  EXPECT_EQ(c2rs_rebatching_queue_enqueue(q, in, 1, false), C2RS_CLOSED);
  for (int half = 0; half < 2; ++half) {
    c2rs_tensor* out = nullptr;
    ASSERT_EQ(c2rs_rebatching_queue_dequeue(q, 5, &out, 1), C2RS_OK);
    const int64_t* odims = nullptr;
    size_t ndim = 0;
    ASSERT_EQ(c2rs_tensor_dims(out, &odims, &ndim), C2RS_OK);
    ASSERT_EQ(ndim, 1u);
    EXPECT_EQ(odims[0], 5);
    const void* od = nullptr;
    ASSERT_EQ(c2rs_tensor_data(out, &od), C2RS_OK);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(static_cast<const int32_t*>(od)[i], (half * 5 + i) * 2);
    c2rs_tensor_free(out);
  }
  c2rs_tensor* out = nullptr;
  EXPECT_EQ(c2rs_rebatching_queue_dequeue(q, 1, &out, 1), C2RS_CLOSED);
  EXPECT_EQ(c2rs_rebatching_queue_dequeue(q, 0, &out, 1), C2RS_ENFORCE_NOT_MET);
  c2rs_rebatching_queue* again = nullptr;
  ASSERT_EQ(c2rs_rebatching_queue_from_workspace(ws, "rq", &again), C2RS_OK);
  size_t size = 9, capacity = 0;
  ASSERT_EQ(c2rs_rebatching_queue_info(again, &size, &capacity), C2RS_OK);
  EXPECT_EQ(size, 0u);
  EXPECT_EQ(capacity, 10u);
  c2rs_rebatching_queue_free(again);
  c2rs_tensor_free(t);
  c2rs_rebatching_queue_free(q);
}

}  // namespace

// bench_queue: BlobsQueue throughput through the C ABI against two C++ references measured in
// the same run, and RebatchingQueue bandwidth against memcpy. Not a test (no ctest entry).
//
// Scenarios (records/s, each record one small tensor allocated by the producer and freed by the
// consumer in every contender, so allocation cost is alike):
//   producers x consumers in {1x1, 2x2, 4x4}, capacity in {1, 4, 64}
//   - caffe2rs:   c2rs_tensor_new + c2rs_blobs_queue_enqueue / c2rs_blobs_queue_dequeue + free
//   - caffe2ref:  Caffe2's design: one mutex, one condition variable, notify_all, slot swap
//   - twocv:      one mutex, two condition variables (not_empty / not_full), notify_one
// Rebatching (GB/s): batches of B bytes (float rows of 4 KiB) enqueued with enqueue_batch and
// dequeued as one batch of the same rows, against memcpy of the same bytes (enqueue copies
// rows in, dequeue copies them out: 2 copies, so memcpy is timed doing 2 copies too, into
// preallocated, pre-touched buffers; the queue also allocates and zero-fills its buffers).
//
// Output: one line per scenario with the ratios, then a JSON object (--json FILE to save it).
// Usage: bench_queue [--records N] [--json FILE] [--only PxC CAP] [--no-rebatching]
//                    [--contender caffe2rs|caffe2ref|twocv] [--serial]
//   --only runs one scenario (e.g. `--only 4 64` for 4x4 at capacity 64), for profiling.
//   --serial only measures the per-record cost on one thread (ns/record, no waiting).
#include "caffe2rs.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// A record payload for the references: a heap tensor of one float, like c2rs_tensor_new.
struct Payload {
  std::vector<float> data = std::vector<float>(1);
};
using Slot = std::unique_ptr<Payload>;

// Caffe2's BlobsQueue design: one mutex, one condvar shared by readers and writers,
// notify_all after every operation, records moved by swapping slot contents.
class Caffe2Queue {
 public:
  explicit Caffe2Queue(size_t capacity) : slots_(capacity) {}
  bool write(Slot& in) {
    std::unique_lock<std::mutex> g(mu_);
    cv_.wait(g, [&] { return closing_ || writer_ != reader_ + slots_.size(); });
    if (writer_ == reader_ + slots_.size()) return false;
    std::swap(slots_[writer_ % slots_.size()], in);
    ++writer_;
    cv_.notify_all();
    return true;
  }
  bool read(Slot& out) {
    std::unique_lock<std::mutex> g(mu_);
    cv_.wait(g, [&] { return closing_ || reader_ != writer_; });
    if (reader_ == writer_) return false;
    std::swap(slots_[reader_ % slots_.size()], out);
    ++reader_;
    cv_.notify_all();
    return true;
  }
  void close() {
    std::lock_guard<std::mutex> g(mu_);
    closing_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Slot> slots_;
  uint64_t reader_ = 0, writer_ = 0;
  bool closing_ = false;
};

// A plain bounded queue with separate condition variables and notify_one.
class TwoCvQueue {
 public:
  explicit TwoCvQueue(size_t capacity) : slots_(capacity) {}
  bool write(Slot& in) {
    std::unique_lock<std::mutex> g(mu_);
    not_full_.wait(g, [&] { return closing_ || writer_ != reader_ + slots_.size(); });
    if (writer_ == reader_ + slots_.size()) return false;
    std::swap(slots_[writer_ % slots_.size()], in);
    ++writer_;
    g.unlock();
    not_empty_.notify_one();
    return true;
  }
  bool read(Slot& out) {
    std::unique_lock<std::mutex> g(mu_);
    not_empty_.wait(g, [&] { return closing_ || reader_ != writer_; });
    if (reader_ == writer_) return false;
    std::swap(slots_[reader_ % slots_.size()], out);
    ++reader_;
    g.unlock();
    not_full_.notify_one();
    return true;
  }
  void close() {
    std::lock_guard<std::mutex> g(mu_);
    closing_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::vector<Slot> slots_;
  uint64_t reader_ = 0, writer_ = 0;
  bool closing_ = false;
};

// Runs P producers each writing records/P, C consumers reading until close; returns records/s.
template <class WriteFn, class ReadFn, class CloseFn>
double run_mpmc(int producers, int consumers, uint64_t records, WriteFn write, ReadFn read,
                CloseFn close) {
  std::vector<std::thread> threads;
  const uint64_t per = records / producers;
  const auto t0 = Clock::now();
  for (int c = 0; c < consumers; ++c)
    threads.emplace_back([&] {
      while (read()) {
      }
    });
  std::vector<std::thread> writers;
  for (int p = 0; p < producers; ++p)
    writers.emplace_back([&] {
      for (uint64_t i = 0; i < per; ++i)
        if (!write()) std::abort();
    });
  for (auto& w : writers) w.join();
  close();  // readers drain what is left, then stop
  for (auto& t : threads) t.join();
  return static_cast<double>(per * producers) / seconds_since(t0);
}

template <class Q>
double bench_reference(int producers, int consumers, size_t capacity, uint64_t records) {
  Q q(capacity);
  return run_mpmc(
      producers, consumers, records,
      [&] {
        Slot s(new Payload);
        return q.write(s);  // s now holds the slot's old content (recycled / freed here)
      },
      [&] {
        Slot s;
        const bool ok = q.read(s);
        return ok;  // s (the record) freed here
      },
      [&] { q.close(); });
}

double bench_caffe2rs(c2rs_workspace* ws, int producers, int consumers, size_t capacity,
                      uint64_t records) {
  c2rs_blobs_queue* q = nullptr;
  const std::string name = "bench_q_" + std::to_string(producers) + "_" + std::to_string(capacity);
  if (c2rs_blobs_queue_create(ws, name.c_str(), static_cast<int64_t>(capacity), 1, false, &q) !=
      C2RS_OK) {
    std::fprintf(stderr, "create failed: %s\n", c2rs_last_error_message());
    std::exit(1);
  }
  const int64_t dims[1] = {1};
  const double rate = run_mpmc(
      producers, consumers, records,
      [&] {
        c2rs_tensor* t = nullptr;
        if (c2rs_tensor_new(C2RS_DTYPE_FLOAT, dims, 1, &t) != C2RS_OK) return false;
        return c2rs_blobs_queue_enqueue(q, &t, 1) == C2RS_OK;
      },
      [&] {
        c2rs_tensor* t = nullptr;
        if (c2rs_blobs_queue_dequeue(q, &t, 1) != C2RS_OK) return false;
        c2rs_tensor_free(t);
        return true;
      },
      [&] {
        if (c2rs_blobs_queue_close(q) != C2RS_OK) std::abort();
      });
  c2rs_blobs_queue_free(q);
  return rate;
}

// Serial per-record cost (no second thread, so no waiting): one thread writes 32 records, then
// reads them back, repeatedly; ns per record for each contender. Separates the fixed per-record
// work (allocation, calls, locks, stats) from the blocking protocol.
template <class Q>
double serial_ns_reference(uint64_t records) {
  Q q(64);
  const auto t0 = Clock::now();
  for (uint64_t done = 0; done < records; done += 32) {
    for (int i = 0; i < 32; ++i) {
      Slot s(new Payload);
      if (!q.write(s)) std::abort();
    }
    for (int i = 0; i < 32; ++i) {
      Slot s;
      if (!q.read(s)) std::abort();
    }
  }
  return seconds_since(t0) * 1e9 / static_cast<double>(records);
}

double serial_ns_caffe2rs(c2rs_workspace* ws, uint64_t records) {
  c2rs_blobs_queue* q = nullptr;
  if (c2rs_blobs_queue_create(ws, "bench_serial_q", 64, 1, false, &q) != C2RS_OK) std::abort();
  const int64_t dims[1] = {1};
  const auto t0 = Clock::now();
  for (uint64_t done = 0; done < records; done += 32) {
    for (int i = 0; i < 32; ++i) {
      c2rs_tensor* t = nullptr;
      if (c2rs_tensor_new(C2RS_DTYPE_FLOAT, dims, 1, &t) != C2RS_OK) std::abort();
      if (c2rs_blobs_queue_enqueue(q, &t, 1) != C2RS_OK) std::abort();
    }
    for (int i = 0; i < 32; ++i) {
      c2rs_tensor* t = nullptr;
      if (c2rs_blobs_queue_dequeue(q, &t, 1) != C2RS_OK) std::abort();
      c2rs_tensor_free(t);
    }
  }
  const double ns = seconds_since(t0) * 1e9 / static_cast<double>(records);
  c2rs_blobs_queue_free(q);
  return ns;
}

// Rebatching: one batch of `bytes` (float rows of 4 KiB) in, the same rows out as one batch.
double bench_rebatching(c2rs_workspace* ws, size_t bytes, int reps) {
  const int64_t row_floats = 1024;
  const int64_t rows = static_cast<int64_t>(bytes / (row_floats * 4));
  c2rs_rebatching_queue* q = nullptr;
  if (c2rs_rebatching_queue_create(ws, ("bench_rq_" + std::to_string(bytes)).c_str(), rows, 1,
                                   &q) != C2RS_OK)
    std::abort();
  const int64_t dims[2] = {rows, row_floats};
  c2rs_tensor* t = nullptr;
  if (c2rs_tensor_new(C2RS_DTYPE_FLOAT, dims, 2, &t) != C2RS_OK) std::abort();
  const c2rs_tensor* in[1] = {t};
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    if (c2rs_rebatching_queue_enqueue(q, in, 1, true) != C2RS_OK) std::abort();
    c2rs_tensor* out = nullptr;
    if (c2rs_rebatching_queue_dequeue(q, rows, &out, 1) != C2RS_OK) std::abort();
    best = std::min(best, seconds_since(t0));
    c2rs_tensor_free(out);
  }
  c2rs_tensor_free(t);
  c2rs_rebatching_queue_free(q);
  return static_cast<double>(rows * row_floats * 4) / best / 1e9;
}

double bench_memcpy(size_t bytes, int reps) {
  // Two copies of the same bytes (enqueue copies rows in, dequeue copies them out) into
  // buffers allocated and touched once up front: pure copy bandwidth, no page faults.
  std::vector<char> src(bytes, 1), mid(bytes, 0), out(bytes, 0);
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    std::memcpy(mid.data(), src.data(), bytes);
    std::memcpy(out.data(), mid.data(), bytes);
    best = std::min(best, seconds_since(t0));
    if (out[bytes - 1] != 1) std::abort();
  }
  return static_cast<double>(bytes) / best / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t records = 200000;
  const char* json_path = nullptr;
  int only_pc = 0;
  size_t only_cap = 0;
  bool rebatching = true;
  bool serial = false;
  int contender = 0;  // 0 all, 1 caffe2rs, 2 caffe2ref, 3 twocv (profiling only)
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--records") == 0 && i + 1 < argc) records = std::strtoull(argv[++i], nullptr, 10);
    else if (std::strcmp(argv[i], "--only") == 0 && i + 2 < argc) {
      only_pc = std::atoi(argv[++i]);
      only_cap = std::strtoull(argv[++i], nullptr, 10);
    } else if (std::strcmp(argv[i], "--no-rebatching") == 0) rebatching = false;
    else if (std::strcmp(argv[i], "--serial") == 0) serial = true;
    else if (std::strcmp(argv[i], "--contender") == 0 && i + 1 < argc) {
      const std::string c = argv[++i];
      contender = c == "caffe2rs" ? 1 : c == "caffe2ref" ? 2 : c == "twocv" ? 3 : 0;
    }
    else if (std::strcmp(argv[i], "--json") == 0 && i + 1 < argc) json_path = argv[++i];
  }
  c2rs_workspace* ws = nullptr;
  if (c2rs_workspace_new(nullptr, &ws) != C2RS_OK) return 1;
  if (serial) {
    // Best of 5, interleaved.
    double rs = 1e30, c2 = 1e30, tc = 1e30;
    for (int rep = 0; rep < 5; ++rep) {
      rs = std::min(rs, serial_ns_caffe2rs(ws, records));
      c2 = std::min(c2, serial_ns_reference<Caffe2Queue>(records));
      tc = std::min(tc, serial_ns_reference<TwoCvQueue>(records));
    }
    std::printf("serial ns/record: caffe2rs %.1f  caffe2ref %.1f  twocv %.1f\n", rs, c2, tc);
    c2rs_workspace_free(ws);
    return 0;
  }
  std::string json = "{\"version\":\"" + std::string(c2rs_version_string()) +
                     "\",\"hardware_threads\":" +
                     std::to_string(std::thread::hardware_concurrency()) + ",\"records\":" +
                     std::to_string(records) + ",\"blobs_queue\":[";
  std::printf("%-6s %-4s %14s %14s %14s %10s %10s\n", "PxC", "cap", "caffe2rs rec/s",
              "caffe2ref", "twocv", "vs c2ref", "vs twocv");
  bool first = true;
  for (int pc : {1, 2, 4}) {
    for (size_t cap : {size_t{1}, size_t{4}, size_t{64}}) {
      if (only_pc != 0 && (pc != only_pc || cap != only_cap)) continue;
      // Interleave contenders and keep each one's best of 3 to damp noise on shared machines.
      double rs = 0, c2 = 0, tc = 0;
      for (int rep = 0; rep < 3; ++rep) {
        if (contender == 0 || contender == 1)
          rs = std::max(rs, bench_caffe2rs(ws, pc, pc, cap, records));
        if (contender == 0 || contender == 2)
          c2 = std::max(c2, bench_reference<Caffe2Queue>(pc, pc, cap, records));
        if (contender == 0 || contender == 3)
          tc = std::max(tc, bench_reference<TwoCvQueue>(pc, pc, cap, records));
      }
      std::printf("%dx%-4d %-4zu %14.0f %14.0f %14.0f %10.2f %10.2f\n", pc, pc, cap, rs, c2, tc,
                  rs / c2, rs / tc);
      char buf[256];
      std::snprintf(buf, sizeof buf,
                    "%s{\"p\":%d,\"c\":%d,\"capacity\":%zu,\"caffe2rs\":%.0f,\"caffe2ref\":%.0f,"
                    "\"twocv\":%.0f,\"ratio_caffe2ref\":%.3f,\"ratio_twocv\":%.3f}",
                    first ? "" : ",", pc, pc, cap, rs, c2, tc, rs / c2, rs / tc);
      json += buf;
      first = false;
    }
  }
  json += "],\"rebatching\":[";
  std::printf("\n%-10s %12s %12s %8s\n", "batch", "rebatch GB/s", "memcpy GB/s", "ratio");
  first = true;
  for (size_t bytes : {size_t{64} << 10, size_t{1} << 20, size_t{4} << 20, size_t{16} << 20}) {
    if (!rebatching) break;
    const int reps = bytes >= (size_t{16} << 20) ? 10 : 30;
    const double rb = bench_rebatching(ws, bytes, reps);
    const double mc = bench_memcpy(bytes, reps);
    std::printf("%-10zu %12.2f %12.2f %8.2f\n", bytes, rb, mc, rb / mc);
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s{\"bytes\":%zu,\"rebatching_gbs\":%.3f,\"memcpy_gbs\":%.3f,\"ratio\":%.3f}",
                  first ? "" : ",", bytes, rb, mc, rb / mc);
    json += buf;
    first = false;
  }
  json += "]}";
  std::printf("\n%s\n", json.c_str());
  if (json_path != nullptr) {
    FILE* f = std::fopen(json_path, "w");
    if (f == nullptr) return 1;
    std::fputs(json.c_str(), f);
    std::fclose(f);
  }
  c2rs_workspace_free(ws);
  return 0;
}

// bench_queue: BlobsQueue throughput through the C ABI against the queues a C++ or Rust user
// would pick instead, measured in the same run, and RebatchingQueue bandwidth against memcpy.
// Not a test (no ctest entry). Scenarios and how to run: cpp_tests/bench/README.md.
//
// Every contender moves the same records: two tensors, 64 B and 4 KiB, over host buffers the
// producer owns (a ring of 256 per producer), "wrapped" once per record and released once by
// the consumer through the same release callback:
//   - caffe2rs:   c2rs_tensor_wrap x2 + c2rs_blobs_queue_enqueue / c2rs_blobs_queue_dequeue +
//                 c2rs_tensor_data + c2rs_tensor_free x2 (which runs the release callbacks)
//   - moodycamel: BlockingConcurrentQueue<Record> (with producer/consumer tokens) bounded by a
//                 LightweightSemaphore of `capacity` slots; a record is two 32-byte views
//   - crossbeam:  crossbeam-channel bounded(capacity) (a Rust staticlib, crossbeam_peer/)
//   - caffe2ref:  Caffe2's design: one mutex, one condition variable, notify_all
//   - twocv:      one mutex, two condition variables (not_empty / not_full), notify_one
// The consumer reads the sequence number the producer wrote into the small buffer; the sums
// are checked, so a contender that loses or duplicates records aborts the run.
//
// Output: per scenario the median records/s of `--reps` interleaved runs per contender, the
// ratios, and CPU time per record (getrusage, all threads); then a JSON object.
#include "caffe2rs.h"

#include <concurrentqueue/blockingconcurrentqueue.h>
#include <concurrentqueue/lightweightsemaphore.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
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

extern "C" {
// crossbeam_peer (Rust staticlib): crossbeam-channel bounded, 64-byte records.
struct Peer;
Peer* cbpeer_new(size_t capacity);
bool cbpeer_send(const Peer* p, const void* rec);
bool cbpeer_recv(const Peer* p, void* out);
void cbpeer_close(const Peer* p);
void cbpeer_free(Peer* p);
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

constexpr size_t kSmall = 64, kLarge = 4096, kRing = 256;

// The release callback every contender runs once per buffer (caffe2rs: from c2rs_tensor_free).
extern "C" void bench_release(void* ctx) {
  // An opaque use of `ctx`, so that the call is not optimised away.
  asm volatile("" : : "r"(ctx) : "memory");
}
void (*volatile g_release)(void*) = bench_release;

// A tensor as the peers move it: data, size, shape, dtype.
struct View {
  void* data;
  size_t nbytes;
  int64_t dim;
  int32_t dtype;
  int32_t pad;
};
struct Record {
  View t[2];
};
static_assert(sizeof(Record) == 64, "crossbeam_peer moves 64-byte records");

// One producer's buffers: a small buffer per record (it carries the record's sequence number,
// so none is reused while a record might still be in flight: a consumer preempted while holding
// a record does not bound how far the producer runs ahead) and a ring of 256 large buffers,
// never written after setup.
struct Buffers {
  explicit Buffers(uint64_t records) : small(kSmall * std::max<uint64_t>(records, 1)) {}
  std::vector<char> small;
  std::vector<char> large = std::vector<char>(kLarge * kRing);
  void* small_at(uint64_t i) { return &small[(i % (small.size() / kSmall)) * kSmall]; }
  void* large_at(uint64_t i) { return &large[(i % kRing) * kLarge]; }
};

Record make_record(Buffers& b, uint64_t seq) {
  void* s = b.small_at(seq);
  std::memcpy(s, &seq, sizeof seq);
  return Record{{View{s, kSmall, static_cast<int64_t>(kSmall), C2RS_DTYPE_UINT8, 0},
                 View{b.large_at(seq), kLarge, static_cast<int64_t>(kLarge), C2RS_DTYPE_UINT8, 0}}};
}

// Reads the record's sequence number and releases both buffers.
uint64_t consume_record(const Record& r) {
  uint64_t seq = 0;
  std::memcpy(&seq, r.t[0].data, sizeof seq);
  g_release(r.t[0].data);
  g_release(r.t[1].data);
  return seq;
}

// Caffe2's BlobsQueue design: one mutex, one condvar shared by readers and writers,
// notify_all after every operation.
class Caffe2Queue {
 public:
  explicit Caffe2Queue(size_t capacity) : slots_(capacity) {}
  bool write(const Record& in) {
    std::unique_lock<std::mutex> g(mu_);
    cv_.wait(g, [&] { return closing_ || writer_ != reader_ + slots_.size(); });
    if (writer_ == reader_ + slots_.size()) return false;
    slots_[writer_ % slots_.size()] = in;
    ++writer_;
    cv_.notify_all();
    return true;
  }
  bool read(Record& out) {
    std::unique_lock<std::mutex> g(mu_);
    cv_.wait(g, [&] { return closing_ || reader_ != writer_; });
    if (reader_ == writer_) return false;
    out = slots_[reader_ % slots_.size()];
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
  std::vector<Record> slots_;
  uint64_t reader_ = 0, writer_ = 0;
  bool closing_ = false;
};

// A plain bounded queue with separate condition variables and notify_one.
class TwoCvQueue {
 public:
  explicit TwoCvQueue(size_t capacity) : slots_(capacity) {}
  bool write(const Record& in) {
    std::unique_lock<std::mutex> g(mu_);
    not_full_.wait(g, [&] { return closing_ || writer_ != reader_ + slots_.size(); });
    if (writer_ == reader_ + slots_.size()) return false;
    slots_[writer_ % slots_.size()] = in;
    ++writer_;
    g.unlock();
    not_empty_.notify_one();
    return true;
  }
  bool read(Record& out) {
    std::unique_lock<std::mutex> g(mu_);
    not_empty_.wait(g, [&] { return closing_ || reader_ != writer_; });
    if (reader_ == writer_) return false;
    out = slots_[reader_ % slots_.size()];
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
  std::vector<Record> slots_;
  uint64_t reader_ = 0, writer_ = 0;
  bool closing_ = false;
};

struct Result {
  double rate = 0;        // records/s
  double cpu_ns = 0;      // CPU ns per record, all threads
};

// Runs P producers each making records/P records with `produce(buffers, seq)`, C consumers
// calling `consume()` (returns false at end of stream, adds to its checksum) until `close()`
// after the producers finished. Checks that every sequence number arrived once (by sum).
template <class Produce, class Consume, class Close>
Result run_mpmc(const char* name, int producers, int consumers, uint64_t records, Produce produce,
                Consume consume, Close close) {
  const uint64_t per = records / producers;
  std::vector<Buffers> buffers;
  for (int p = 0; p < producers; ++p) buffers.emplace_back(per);
  std::atomic<uint64_t> checksum{0}, received{0};
  std::vector<std::thread> readers, writers;
  const double cpu0 = cpu_seconds();
  const auto t0 = Clock::now();
  for (int c = 0; c < consumers; ++c)
    readers.emplace_back([&, c] {
      uint64_t sum = 0, n = 0;
      while (consume(c, sum)) ++n;
      checksum.fetch_add(sum);
      received.fetch_add(n);
    });
  for (int p = 0; p < producers; ++p)
    writers.emplace_back([&, p] {
      for (uint64_t i = 0; i < per; ++i)
        if (!produce(p, buffers[p], i)) std::abort();
    });
  for (auto& w : writers) w.join();
  close();
  for (auto& r : readers) r.join();
  const double secs = seconds_since(t0);
  const double cpu = cpu_seconds() - cpu0;
  const uint64_t total = per * producers;
  if (received.load() != total || checksum.load() != producers * (per * (per - 1) / 2)) {
    std::fprintf(stderr,
                 "%s %dx%d: records lost or duplicated: %llu of %llu, checksum %llu, expected %llu\n",
                 name, producers, consumers, static_cast<unsigned long long>(received.load()),
                 static_cast<unsigned long long>(total),
                 static_cast<unsigned long long>(checksum.load()),
                 static_cast<unsigned long long>(producers * (per * (per - 1) / 2)));
    std::abort();
  }
  return Result{static_cast<double>(total) / secs, cpu * 1e9 / static_cast<double>(total)};
}

template <class Q>
Result bench_reference(const char* name, int producers, int consumers, size_t capacity,
                       uint64_t records) {
  Q q(capacity);
  return run_mpmc(
      name, producers, consumers, records,
      [&](int, Buffers& b, uint64_t i) { return q.write(make_record(b, i)); },
      [&](int, uint64_t& sum) {
        Record r;
        if (!q.read(r)) return false;
        sum += consume_record(r);
        return true;
      },
      [&] { q.close(); });
}

Result bench_moodycamel(int producers, int consumers, size_t capacity, uint64_t records) {
  moodycamel::BlockingConcurrentQueue<Record> q(capacity + static_cast<size_t>(consumers),
                                               static_cast<size_t>(producers), 1);
  moodycamel::LightweightSemaphore slots(static_cast<moodycamel::LightweightSemaphore::ssize_t>(capacity));
  std::vector<std::unique_ptr<moodycamel::ProducerToken>> ptok;
  std::vector<std::unique_ptr<moodycamel::ConsumerToken>> ctok;
  for (int p = 0; p < producers; ++p) ptok.emplace_back(new moodycamel::ProducerToken(q));
  for (int c = 0; c < consumers; ++c) ctok.emplace_back(new moodycamel::ConsumerToken(q));
  return run_mpmc(
      "moodycamel", producers, consumers, records,
      [&](int p, Buffers& b, uint64_t i) {
        slots.wait();
        return q.enqueue(*ptok[p], make_record(b, i));
      },
      [&](int c, uint64_t& sum) {
        Record r;
        q.wait_dequeue(*ctok[c], r);
        slots.signal();
        if (r.t[0].data == nullptr) return false;  // end-of-stream sentinel
        sum += consume_record(r);
        return true;
      },
      [&] {
        // No close in moodycamel: one sentinel per consumer (each takes a slot too), sent once
        // every record was taken (moodycamel orders items per producer only, so an earlier
        // sentinel could overtake another producer's records). The producers are done, so
        // size_approx() only falls; the wait is at most `capacity` records long.
        while (q.size_approx() != 0) std::this_thread::sleep_for(std::chrono::microseconds(20));
        for (int c = 0; c < consumers; ++c) {
          slots.wait();
          if (!q.enqueue(Record{})) std::abort();
        }
      });
}

Result bench_crossbeam(int producers, int consumers, size_t capacity, uint64_t records) {
  Peer* peer = cbpeer_new(capacity);
  const Result r = run_mpmc(
      "crossbeam", producers, consumers, records,
      [&](int, Buffers& b, uint64_t i) {
        const Record rec = make_record(b, i);
        return cbpeer_send(peer, &rec);
      },
      [&](int, uint64_t& sum) {
        Record rec;
        if (!cbpeer_recv(peer, &rec)) return false;
        sum += consume_record(rec);
        return true;
      },
      [&] { cbpeer_close(peer); });
  cbpeer_free(peer);
  return r;
}

bool wrap(void* data, size_t nbytes, c2rs_tensor** out) {
  const int64_t dims[1] = {static_cast<int64_t>(nbytes)};
  return c2rs_tensor_wrap(C2RS_DTYPE_UINT8, dims, 1, data, nbytes, bench_release, data, out) ==
         C2RS_OK;
}

c2rs_blobs_queue* make_queue(c2rs_workspace* ws, const std::string& name, size_t capacity) {
  c2rs_blobs_queue* q = nullptr;
  if (c2rs_blobs_queue_create(ws, name.c_str(), static_cast<int64_t>(capacity), 2, false, &q) !=
      C2RS_OK) {
    std::fprintf(stderr, "create failed: %s\n", c2rs_last_error_message());
    std::exit(1);
  }
  return q;
}

Result bench_caffe2rs(c2rs_workspace* ws, int producers, int consumers, size_t capacity,
                      uint64_t records) {
  c2rs_blobs_queue* q = make_queue(
      ws, "bench_q_" + std::to_string(producers) + "_" + std::to_string(capacity), capacity);
  const Result r = run_mpmc(
      "caffe2rs", producers, consumers, records,
      [&](int, Buffers& b, uint64_t i) {
        void* s = b.small_at(i);
        std::memcpy(s, &i, sizeof i);
        c2rs_tensor* t[2] = {nullptr, nullptr};
        if (!wrap(s, kSmall, &t[0]) || !wrap(b.large_at(i), kLarge, &t[1])) return false;
        return c2rs_blobs_queue_enqueue(q, t, 2) == C2RS_OK;
      },
      [&](int, uint64_t& sum) {
        c2rs_tensor* t[2] = {nullptr, nullptr};
        if (c2rs_blobs_queue_dequeue(q, t, 2) != C2RS_OK) return false;
        const void* data = nullptr;
        if (c2rs_tensor_data(t[0], &data) != C2RS_OK) std::abort();
        uint64_t seq = 0;
        std::memcpy(&seq, data, sizeof seq);
        sum += seq;
        c2rs_tensor_free(t[0]);  // runs bench_release
        c2rs_tensor_free(t[1]);
        return true;
      },
      [&] {
        if (c2rs_blobs_queue_close(q) != C2RS_OK) std::abort();
      });
  c2rs_blobs_queue_free(q);
  return r;
}

// ---- one thread, no waiting: fixed per-record cost (ns/record) -----------------------------

template <class F>
double ns_per(uint64_t n, F body) {
  const auto t0 = Clock::now();
  for (uint64_t i = 0; i < n; ++i) body(i);
  return seconds_since(t0) * 1e9 / static_cast<double>(n);
}

struct Serial {
  double record = 0;     // caffe2rs: wrap x2 + enqueue + dequeue + data + free x2
  double queue = 0;      // caffe2rs: enqueue + dequeue of the same two handles
  double handles = 0;    // caffe2rs: wrap x2 + free x2
  double moodycamel = 0, crossbeam = 0, twocv = 0;  // enqueue + dequeue of one Record
};

Serial serial(c2rs_workspace* ws, uint64_t n) {
  Serial s;
  Buffers b(kRing);  // one thread: a record is gone before the next is made
  c2rs_blobs_queue* q = make_queue(ws, "bench_serial_q", 64);
  s.record = ns_per(n, [&](uint64_t i) {
    c2rs_tensor* t[2];
    if (!wrap(b.small_at(i), kSmall, &t[0]) || !wrap(b.large_at(i), kLarge, &t[1])) std::abort();
    if (c2rs_blobs_queue_enqueue(q, t, 2) != C2RS_OK) std::abort();
    if (c2rs_blobs_queue_dequeue(q, t, 2) != C2RS_OK) std::abort();
    const void* data = nullptr;
    if (c2rs_tensor_data(t[0], &data) != C2RS_OK) std::abort();
    c2rs_tensor_free(t[0]);
    c2rs_tensor_free(t[1]);
  });
  c2rs_tensor* held[2];
  if (!wrap(b.small_at(0), kSmall, &held[0]) || !wrap(b.large_at(0), kLarge, &held[1])) std::abort();
  s.queue = ns_per(n, [&](uint64_t) {
    if (c2rs_blobs_queue_enqueue(q, held, 2) != C2RS_OK) std::abort();
    if (c2rs_blobs_queue_dequeue(q, held, 2) != C2RS_OK) std::abort();
  });
  c2rs_tensor_free(held[0]);
  c2rs_tensor_free(held[1]);
  s.handles = ns_per(n, [&](uint64_t i) {
    c2rs_tensor* t[2];
    if (!wrap(b.small_at(i), kSmall, &t[0]) || !wrap(b.large_at(i), kLarge, &t[1])) std::abort();
    c2rs_tensor_free(t[0]);
    c2rs_tensor_free(t[1]);
  });
  c2rs_blobs_queue_free(q);
  {
    moodycamel::BlockingConcurrentQueue<Record> mq(64);
    moodycamel::ProducerToken pt(mq);
    moodycamel::ConsumerToken ct(mq);
    s.moodycamel = ns_per(n, [&](uint64_t i) {
      mq.enqueue(pt, make_record(b, i));
      Record r;
      if (!mq.try_dequeue(ct, r)) std::abort();
      consume_record(r);
    });
  }
  {
    Peer* p = cbpeer_new(64);
    s.crossbeam = ns_per(n, [&](uint64_t i) {
      const Record rec = make_record(b, i);
      Record r;
      if (!cbpeer_send(p, &rec) || !cbpeer_recv(p, &r)) std::abort();
      consume_record(r);
    });
    cbpeer_free(p);
  }
  {
    TwoCvQueue tq(64);
    s.twocv = ns_per(n, [&](uint64_t i) {
      Record r;
      if (!tq.write(make_record(b, i)) || !tq.read(r)) std::abort();
      consume_record(r);
    });
  }
  return s;
}

// ---- rebatching: one batch of B bytes (float rows of 4 KiB) in, the same rows out as one ------

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

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

enum Contender { kCaffe2rs, kMoodycamel, kCrossbeam, kCaffe2ref, kTwocv, kContenders };
const char* const kNames[kContenders] = {"caffe2rs", "moodycamel", "crossbeam", "caffe2ref",
                                         "twocv"};

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // lines appear even if a check aborts the run
  uint64_t records = 100000;
  int reps = 5;
  const char* json_path = nullptr;
  int only_pc = 0;
  size_t only_cap = 0;
  bool rebatching = true, serial_only = false;
  bool enabled[kContenders] = {true, true, true, true, true};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--records" && i + 1 < argc) records = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--reps" && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--only" && i + 2 < argc) {
      only_pc = std::atoi(argv[++i]);
      only_cap = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--no-rebatching") rebatching = false;
    else if (a == "--serial") serial_only = true;
    else if (a == "--contenders" && i + 1 < argc) {
      const std::string list = std::string(",") + argv[++i] + ",";
      for (int c = 0; c < kContenders; ++c)
        enabled[c] = list.find(std::string(",") + kNames[c] + ",") != std::string::npos;
    } else if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else {
      std::fprintf(stderr,
                   "usage: bench_queue [--records N] [--reps R] [--only P CAP] [--serial]\n"
                   "                   [--contenders caffe2rs,moodycamel,crossbeam,caffe2ref,twocv]\n"
                   "                   [--no-rebatching] [--json FILE]\n");
      return 2;
    }
  }
  c2rs_workspace* ws = nullptr;
  if (c2rs_workspace_new(nullptr, &ws) != C2RS_OK) return 1;
  std::string json = "{\"version\":\"" + std::string(c2rs_version_string()) +
                     "\",\"hardware_threads\":" +
                     std::to_string(std::thread::hardware_concurrency()) +
                     ",\"records\":" + std::to_string(records) + ",\"reps\":" + std::to_string(reps);

  // One thread: medians of `reps` interleaved rounds.
  {
    std::vector<double> rec, queue, handles, mc, cb, tc;
    const uint64_t n = std::max<uint64_t>(records * 10, 100000);
    for (int r = 0; r < reps; ++r) {
      const Serial s = serial(ws, n);
      rec.push_back(s.record);
      queue.push_back(s.queue);
      handles.push_back(s.handles);
      mc.push_back(s.moodycamel);
      cb.push_back(s.crossbeam);
      tc.push_back(s.twocv);
    }
    std::printf(
        "one thread, ns/record (median of %d): caffe2rs whole record %.1f = enqueue+dequeue %.1f "
        "+ wrap+free of 2 handles %.1f | moodycamel %.1f  crossbeam %.1f  twocv %.1f\n\n",
        reps, median(rec), median(queue), median(handles), median(mc), median(cb), median(tc));
    char buf[400];
    std::snprintf(buf, sizeof buf,
                  ",\"serial_ns\":{\"caffe2rs_record\":%.2f,\"caffe2rs_enqueue_dequeue\":%.2f,"
                  "\"caffe2rs_wrap_free_2\":%.2f,\"moodycamel\":%.2f,\"crossbeam\":%.2f,"
                  "\"twocv\":%.2f}",
                  median(rec), median(queue), median(handles), median(mc), median(cb), median(tc));
    json += buf;
  }
  if (serial_only) {
    json += "}";
    std::printf("%s\n", json.c_str());
    c2rs_workspace_free(ws);
    return 0;
  }

  json += ",\"blobs_queue\":[";
  std::printf("%-5s %-4s %11s %11s %11s %11s %11s %7s %7s | %9s %9s %9s %7s\n", "PxC", "cap",
              "caffe2rs", "moodycamel", "crossbeam", "caffe2ref", "twocv", "/mc", "/cb",
              "cpu c2rs", "cpu mc", "cpu cb", "cpu/cb");
  std::printf("%-5s %-4s %11s %11s %11s %11s %11s %7s %7s | %9s %9s %9s %7s\n", "", "",
              "rec/s", "rec/s", "rec/s", "rec/s", "rec/s", "", "", "ns/rec", "ns/rec", "ns/rec",
              "");
  bool first = true;
  for (int pc : {1, 2, 4}) {
    for (size_t cap : {size_t{4}, size_t{64}}) {
      if (only_pc != 0 && (pc != only_pc || cap != only_cap)) continue;
      std::vector<double> rate[kContenders], cpu[kContenders];
      for (int r = 0; r < reps; ++r) {
        for (int c = 0; c < kContenders; ++c) {
          if (!enabled[c]) continue;
          Result res;
          switch (c) {
            case kCaffe2rs: res = bench_caffe2rs(ws, pc, pc, cap, records); break;
            case kMoodycamel: res = bench_moodycamel(pc, pc, cap, records); break;
            case kCrossbeam: res = bench_crossbeam(pc, pc, cap, records); break;
            case kCaffe2ref:
              res = bench_reference<Caffe2Queue>("caffe2ref", pc, pc, cap, records);
              break;
            default: res = bench_reference<TwoCvQueue>("twocv", pc, pc, cap, records); break;
          }
          rate[c].push_back(res.rate);
          cpu[c].push_back(res.cpu_ns);
        }
      }
      double m[kContenders], mcpu[kContenders];
      for (int c = 0; c < kContenders; ++c) {
        m[c] = median(rate[c]);
        mcpu[c] = median(cpu[c]);
      }
      auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
      std::printf("%dx%-3d %-4zu %11.0f %11.0f %11.0f %11.0f %11.0f %7.2f %7.2f | %9.0f %9.0f %9.0f %7.2f\n",
                  pc, pc, cap, m[kCaffe2rs], m[kMoodycamel], m[kCrossbeam], m[kCaffe2ref],
                  m[kTwocv], ratio(m[kCaffe2rs], m[kMoodycamel]), ratio(m[kCaffe2rs], m[kCrossbeam]),
                  mcpu[kCaffe2rs], mcpu[kMoodycamel], mcpu[kCrossbeam],
                  ratio(mcpu[kCaffe2rs], mcpu[kCrossbeam]));
      char buf[640];
      std::snprintf(buf, sizeof buf,
                    "%s{\"p\":%d,\"c\":%d,\"capacity\":%zu,\"rate\":{\"caffe2rs\":%.0f,"
                    "\"moodycamel\":%.0f,\"crossbeam\":%.0f,\"caffe2ref\":%.0f,\"twocv\":%.0f},"
                    "\"cpu_ns\":{\"caffe2rs\":%.1f,\"moodycamel\":%.1f,\"crossbeam\":%.1f,"
                    "\"caffe2ref\":%.1f,\"twocv\":%.1f},\"ratio_moodycamel\":%.3f,"
                    "\"ratio_crossbeam\":%.3f,\"cpu_ratio_crossbeam\":%.3f}",
                    first ? "" : ",", pc, pc, cap, m[0], m[1], m[2], m[3], m[4], mcpu[0], mcpu[1],
                    mcpu[2], mcpu[3], mcpu[4], ratio(m[kCaffe2rs], m[kMoodycamel]),
                    ratio(m[kCaffe2rs], m[kCrossbeam]), ratio(mcpu[kCaffe2rs], mcpu[kCrossbeam]));
      json += buf;
      first = false;
    }
  }
  json += "],\"rebatching\":[";
  if (rebatching) std::printf("\n%-10s %12s %12s %8s\n", "batch", "rebatch GB/s", "memcpy GB/s", "ratio");
  first = true;
  for (size_t bytes : {size_t{64} << 10, size_t{1} << 20, size_t{4} << 20, size_t{16} << 20}) {
    if (!rebatching) break;
    const int n = bytes >= (size_t{16} << 20) ? 10 : 30;
    std::vector<double> ratios, rbs, mcs;
    for (int r = 0; r < reps; ++r) {
      const double rb = bench_rebatching(ws, bytes, n);
      const double mc = bench_memcpy(bytes, n);
      rbs.push_back(rb);
      mcs.push_back(mc);
      ratios.push_back(rb / mc);
    }
    std::printf("%-10zu %12.2f %12.2f %8.2f\n", bytes, median(rbs), median(mcs), median(ratios));
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "%s{\"bytes\":%zu,\"rebatching_gbs\":%.3f,\"memcpy_gbs\":%.3f,\"ratio\":%.3f}",
                  first ? "" : ",", bytes, median(rbs), median(mcs), median(ratios));
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

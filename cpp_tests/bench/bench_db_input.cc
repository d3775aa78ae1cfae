// Batch assembly throughput of TensorProtosDBInput-style reading, caffe2rs vs C++ protobuf vs
// memcpy, in one run (issue 5 benchmark; not a test). See cpp_tests/bench/README.md.
//
// Scenarios (records in a minidb on tmpfs, i.e. in memory; batches of 32):
//   (a) image records: BYTE tensor 3x224x224 in byte_data + INT32 scalar label;
//   (b) float records: FLOAT tensor of 2048 values in packed float_data.
// Contenders:
//   caffe2rs   c2rs_batch_assemble over the records in memory (scan + copy into a new batch);
//   via DB     c2rs_batch_reader on the minidb, no prefetch thread (read + decode + assemble);
//   via LMDB   the same over the records in an LMDB on tmpfs (written through the C ABI), with
//              no prefetch thread and with one (`--only via_lmdb`);
//   protobuf   Debian libprotobuf: ParseFromArray of each record (messages generated from
//              proto/caffe2.proto), then its payload copied into a reused batch buffer;
//   protobuf, Caffe2 design  what Caffe2's TensorProtosDBInput did: value copied out of the
//              reader, fresh TensorProtos parsed per record, each proto deserialised into a
//              temporary tensor, then copied into a batch allocated per run;
//   (`--only assemble|via_db|via_lmdb|protobuf|caffe2|memcpy|prefetch` runs one, for profiling;
//   `--depth N` sets the prefetch depth, default 4)
//   memcpy     the payload bytes of each record copied into a reused batch buffer (the floor).
// Then prefetch scaling: c2rs_batch_reader with 1 and 2 decode threads (depth 4), next to what
// this machine gives two threads right now: the memcpy contender on 1 and on 2 threads at once
// (on a shared or loaded machine the second CPU may not be there to show any scaling).
// Prints records/s, GB/s of payload and the ratios; `--json` also writes them as one JSON line.
#include "caffe2.pb.h"
#include "caffe2rs.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <dirent.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

constexpr int kBatch = 32;
constexpr int kRecords = 256;  // distinct records in each DB (the reader wraps)

struct Scenario {
  const char* name;
  std::vector<std::string> values;     // serialized TensorProtos
  std::vector<std::string> payloads;   // payload bytes of each record (for memcpy)
  size_t payload_bytes = 0;            // per record
  int num_outputs = 0;
};

Scenario MakeImages() {
  Scenario s{"image uint8 3x224x224 (byte_data)", {}, {}, 3 * 224 * 224 + 4, 2};
  for (int i = 0; i < kRecords; ++i) {
    caffe2::TensorProtos protos;
    caffe2::TensorProto* img = protos.add_protos();
    img->add_dims(3);
    img->add_dims(224);
    img->add_dims(224);
    img->set_data_type(caffe2::TensorProto::BYTE);
    std::string pixels(3 * 224 * 224, '\0');
    for (size_t j = 0; j < pixels.size(); ++j) pixels[j] = static_cast<char>((i * 31 + j) % 251);
    img->set_byte_data(pixels);
    caffe2::TensorProto* label = protos.add_protos();
    label->set_data_type(caffe2::TensorProto::INT32);
    label->add_int32_data(i % 1000);
    s.values.push_back(protos.SerializeAsString());
    int32_t l = i % 1000;
    s.payloads.push_back(pixels + std::string(reinterpret_cast<const char*>(&l), 4));
  }
  return s;
}

Scenario MakeFloats() {
  Scenario s{"float 2048 (packed float_data)", {}, {}, 2048 * 4, 1};
  for (int i = 0; i < kRecords; ++i) {
    caffe2::TensorProtos protos;
    caffe2::TensorProto* t = protos.add_protos();
    t->add_dims(2048);
    t->set_data_type(caffe2::TensorProto::FLOAT);
    std::vector<float> v(2048);
    for (int j = 0; j < 2048; ++j) v[j] = static_cast<float>(i * 2048 + j) * 0.001f;
    for (float x : v) t->add_float_data(x);
    s.values.push_back(protos.SerializeAsString());
    s.payloads.push_back(std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4));
  }
  return s;
}

std::string WriteMinidb(const Scenario& s, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (int i = 0; i < kRecords; ++i) {
    char key[16];
    std::snprintf(key, sizeof key, "%08d", i);
    int32_t k = 8, v = static_cast<int32_t>(s.values[i].size());
    out.write(reinterpret_cast<const char*>(&k), 4);
    out.write(reinterpret_cast<const char*>(&v), 4);
    out.write(key, 8);
    out.write(s.values[i].data(), v);
  }
  return path;
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void Check(int32_t status, const char* what) {
  if (status != C2RS_OK) {
    std::fprintf(stderr, "%s failed: %s\n", what, c2rs_last_error_message());
    std::exit(1);
  }
}

/// The scenario's records in a new LMDB directory at `path` (keys as in the minidb), written
/// through the C ABI in one transaction.
std::string WriteLmdb(const Scenario& s, const std::string& path) {
  c2rs_db* db = nullptr;
  Check(c2rs_db_open("lmdb", path.c_str(), C2RS_DB_NEW, &db), "c2rs_db_open(lmdb)");
  c2rs_db_transaction* txn = nullptr;
  Check(c2rs_db_transaction_new(db, &txn), "c2rs_db_transaction_new");
  for (int i = 0; i < kRecords; ++i) {
    char key[16];
    std::snprintf(key, sizeof key, "%08d", i);
    Check(c2rs_db_transaction_put(txn, reinterpret_cast<const uint8_t*>(key), 8,
                                  reinterpret_cast<const uint8_t*>(s.values[i].data()), s.values[i].size()),
          "c2rs_db_transaction_put");
  }
  Check(c2rs_db_transaction_commit(txn), "c2rs_db_transaction_commit");
  c2rs_db_transaction_free(txn);
  c2rs_db_free(db);
  return path;
}

void RemoveLmdb(const std::string& path) {
  std::remove((path + "/data.mdb").c_str());
  std::remove((path + "/lock.mdb").c_str());
  std::remove(path.c_str());
}

/// Runs `batch()` for about `seconds` (after one warm-up call); returns batches per second.
template <typename F>
double Rate(F batch, double seconds) {
  batch();
  int n = 0;
  const double start = Now();
  double elapsed = 0;
  do {
    batch();
    ++n;
    elapsed = Now() - start;
  } while (elapsed < seconds);
  return n / elapsed;
}

/// Prefetch depth of c2rs_batch_reader (`--depth`, default 4).
size_t g_depth = 4;

/// CPU seconds (user + system) used by the whole process so far, all threads.
double ProcessCpu() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

/// Where a batch reader's time goes, split between the consumer (the calling thread) and the
/// prefetch workers (threads named c2rs-prefetch-N), from /proc/self/task (Linux): on-CPU
/// nanoseconds (schedstat), voluntary context switches (the thread slept) and involuntary
/// ones (it was preempted). Counted per thread, so other processes' load does not enter it
/// except as preemptions.
struct ThreadSplit {
  double consumer_ns = 0, consumer_sleeps = 0, workers_ns = 0, workers_preempted = 0;
};

ThreadSplit SplitNow() {
  ThreadSplit out;
  const long self = static_cast<long>(syscall(SYS_gettid));
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return out;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    const std::string base = std::string("/proc/self/task/") + e->d_name;
    std::string comm;
    std::ifstream(base + "/comm") >> comm;
    const bool consumer = std::atol(e->d_name) == self;
    const bool worker = comm.rfind("c2rs-prefetch", 0) == 0;
    if (!consumer && !worker) continue;
    double run_ns = 0;
    std::ifstream(base + "/schedstat") >> run_ns;
    double voluntary = 0, involuntary = 0;
    std::ifstream status(base + "/status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) voluntary = std::atof(line.c_str() + 24);
      if (line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) involuntary = std::atof(line.c_str() + 27);
    }
    if (consumer) {
      out.consumer_ns += run_ns;
      out.consumer_sleeps += voluntary;
    } else {
      out.workers_ns += run_ns;
      out.workers_preempted += involuntary;
    }
  }
  closedir(dir);
  return out;
}

/// Records per second through c2rs_batch_reader; with `cpu_us_per_record`, also the process CPU
/// time per record consumed (all threads: workers and consumer), which does not depend on how
/// many CPUs the machine could give the threads.
double Caffe2rs(const std::string& path, const Scenario& s, size_t threads, double seconds,
                double* cpu_us_per_record = nullptr, ThreadSplit* split = nullptr,
                const char* db_type = "minidb") {
  c2rs_db_reader* reader = nullptr;
  Check(c2rs_db_reader_new(db_type, path.c_str(), 1, 0, &reader), "c2rs_db_reader_new");
  c2rs_batch_reader* br = nullptr;
  Check(c2rs_batch_reader_new(reader, kBatch, static_cast<size_t>(s.num_outputs), g_depth, threads, &br),
        "c2rs_batch_reader_new");
  long batches = 0;
  double cpu_start = 0;
  ThreadSplit split_start;
  const double rate = Rate(
      [&] {
        if (batches++ == 0) {  // after the warm-up batch
          cpu_start = ProcessCpu();
          if (split != nullptr) split_start = SplitNow();
        }
        c2rs_tensor_list* batch = nullptr;
        Check(c2rs_batch_reader_next(br, &batch), "c2rs_batch_reader_next");
        c2rs_tensor_list_free(batch);
      },
      seconds);
  if (cpu_us_per_record != nullptr) {
    *cpu_us_per_record = (ProcessCpu() - cpu_start) * 1e6 / (static_cast<double>(batches - 1) * kBatch);
  }
  if (split != nullptr) {
    // Per record (CPU, µs) and per batch (switches); the workers are still alive here.
    const ThreadSplit end = SplitNow();
    const double records = static_cast<double>(batches - 1) * kBatch;
    const double n = static_cast<double>(batches - 1);
    split->consumer_ns = (end.consumer_ns - split_start.consumer_ns) / 1e3 / records;
    split->workers_ns = (end.workers_ns - split_start.workers_ns) / 1e3 / records;
    split->consumer_sleeps = (end.consumer_sleeps - split_start.consumer_sleeps) / n;
    split->workers_preempted = (end.workers_preempted - split_start.workers_preempted) / n;
  }
  c2rs_batch_reader_free(br);
  c2rs_db_reader_free(reader);
  return rate;
}

double Assemble(const Scenario& s, double seconds) {
  std::vector<const uint8_t*> values(kBatch);
  std::vector<size_t> lens(kBatch);
  int next = 0;
  return Rate(
      [&] {
        for (int k = 0; k < kBatch; ++k) {
          values[k] = reinterpret_cast<const uint8_t*>(s.values[next].data());
          lens[k] = s.values[next].size();
          next = (next + 1) % kRecords;
        }
        c2rs_tensor_list* batch = nullptr;
        Check(c2rs_batch_assemble(nullptr, values.data(), lens.data(), kBatch, kBatch,
                                  static_cast<size_t>(s.num_outputs), &batch),
              "c2rs_batch_assemble");
        c2rs_tensor_list_free(batch);
      },
      seconds);
}

double Protobuf(const Scenario& s, double seconds) {
  std::vector<char> out(static_cast<size_t>(kBatch) * s.payload_bytes);
  caffe2::TensorProtos protos;
  int next = 0;
  return Rate(
      [&] {
        char* dst = out.data();
        for (int k = 0; k < kBatch; ++k) {
          const std::string& v = s.values[next];
          next = (next + 1) % kRecords;
          if (!protos.ParseFromArray(v.data(), static_cast<int>(v.size()))) std::abort();
          for (const caffe2::TensorProto& t : protos.protos()) {
            switch (t.data_type()) {
              case caffe2::TensorProto::BYTE:
                std::memcpy(dst, t.byte_data().data(), t.byte_data().size());
                dst += t.byte_data().size();
                break;
              case caffe2::TensorProto::FLOAT:
                std::memcpy(dst, t.float_data().data(), t.float_data_size() * 4);
                dst += t.float_data_size() * 4;
                break;
              case caffe2::TensorProto::INT32:
                std::memcpy(dst, t.int32_data().data(), t.int32_data_size() * 4);
                dst += t.int32_data_size() * 4;
                break;
              default:
                std::abort();
            }
          }
        }
        asm volatile("" : : "r"(out.data()) : "memory");
      },
      seconds);
}

/// Copies one proto's payload into `tmp` (resized to the payload), as Caffe2's TensorDeserializer
/// filled a temporary Tensor from a TensorProto; returns the payload size in bytes.
size_t DeserializeToTemp(const caffe2::TensorProto& t, std::vector<char>* tmp) {
  const void* src = nullptr;
  size_t n = 0;
  switch (t.data_type()) {
    case caffe2::TensorProto::BYTE:
      src = t.byte_data().data();
      n = t.byte_data().size();
      break;
    case caffe2::TensorProto::FLOAT:
      src = t.float_data().data();
      n = static_cast<size_t>(t.float_data_size()) * 4;
      break;
    case caffe2::TensorProto::INT32:
      src = t.int32_data().data();
      n = static_cast<size_t>(t.int32_data_size()) * 4;
      break;
    default:
      std::abort();
  }
  tmp->resize(n);
  std::memcpy(tmp->data(), src, n);
  return n;
}

/// What Caffe2's TensorProtosDBInput did per batch (spec data-input.md §6): the reader copied
/// each value out into a string, a fresh TensorProtos was parsed per record, each proto was
/// deserialised into a temporary tensor (one per output, reused across the batch's records)
/// and then copied into the batch tensor, which was (re)allocated per run.
double ProtobufCaffe2(const Scenario& s, double seconds) {
  const size_t batch_bytes = static_cast<size_t>(kBatch) * s.payload_bytes;
  std::string value;  // DBReader::Read's output string, a member of the op
  int next = 0;
  return Rate(
      [&] {
        std::unique_ptr<char[]> out(new char[batch_bytes]);  // uninitialised, like a Tensor's
        std::vector<std::vector<char>> temps(static_cast<size_t>(s.num_outputs));
        std::vector<size_t> offsets(static_cast<size_t>(s.num_outputs));
        for (int k = 0; k < kBatch; ++k) {
          value = s.values[next];
          next = (next + 1) % kRecords;
          caffe2::TensorProtos protos;
          if (!protos.ParseFromString(value)) std::abort();
          if (protos.protos_size() != s.num_outputs) std::abort();
          // Outputs laid out one after another in `out`, each [kBatch] + dims.
          char* base = out.get();
          for (int i = 0; i < protos.protos_size(); ++i) {
            caffe2::TensorProto* p = protos.mutable_protos(i);
            if (p->has_device_detail()) p->clear_device_detail();
            const size_t n = DeserializeToTemp(*p, &temps[i]);
            std::memcpy(base + offsets[i] * kBatch + static_cast<size_t>(k) * n, temps[i].data(), n);
            if (k == 0 && i + 1 < s.num_outputs) offsets[i + 1] = offsets[i] + n;
          }
        }
        asm volatile("" : : "r"(out.get()) : "memory");
      },
      seconds);
}

double Memcpy(const Scenario& s, double seconds) {
  std::vector<char> out(static_cast<size_t>(kBatch) * s.payload_bytes);
  int next = 0;
  return Rate(
      [&] {
        for (int k = 0; k < kBatch; ++k) {
          const std::string& p = s.payloads[next];
          next = (next + 1) % kRecords;
          std::memcpy(out.data() + k * s.payload_bytes, p.data(), p.size());
        }
        asm volatile("" : : "r"(out.data()) : "memory");
      },
      seconds);
}

/// The memcpy contender on `threads` threads at once, each into its own batch buffer; returns
/// batches per second summed over the threads.
double ParallelMemcpy(const Scenario& s, int threads, double seconds) {
  std::vector<double> rates(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] { rates[t] = Memcpy(s, seconds); });
  }
  double sum = 0;
  for (int t = 0; t < threads; ++t) {
    pool[t].join();
    sum += rates[t];
  }
  return sum;
}

bool Run(const char* only, const char* name) {
  return only == nullptr || std::strcmp(only, name) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 2.0;
  const char* only = nullptr;  // run one contender (for profiling); the others report 0
  const char* json_path = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) seconds = std::atof(argv[++i]);
    if (std::strcmp(argv[i], "--json") == 0 && i + 1 < argc) json_path = argv[++i];
    if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) only = argv[++i];
    if (std::strcmp(argv[i], "--depth") == 0 && i + 1 < argc) g_depth = std::strtoul(argv[++i], nullptr, 10);
  }
  const std::string dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  std::string json = "{\"batch\":32,\"seconds\":" + std::to_string(seconds) +
                     ",\"cpus\":" + std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) +
                     ",\"protobuf\":\"" + std::to_string(GOOGLE_PROTOBUF_VERSION) + "\",\"scenarios\":[";
  std::printf("caffe2rs %s, libprotobuf %d, %ld CPUs, batch %d, %.1f s per contender\n",
              c2rs_version_string(), GOOGLE_PROTOBUF_VERSION, sysconf(_SC_NPROCESSORS_ONLN), kBatch,
              seconds);
  bool first = true;
  for (const Scenario& s : {MakeImages(), MakeFloats()}) {
    const std::string path =
        WriteMinidb(s, dir + "/c2rs-bench-" + std::to_string(getpid()) + ".minidb");
    const double ours = Run(only, "assemble") ? Assemble(s, seconds) * kBatch : 0.0;
    const double via_db = Run(only, "via_db") ? Caffe2rs(path, s, 0, seconds) * kBatch : 0.0;
    double via_lmdb = 0, lmdb1 = 0;  // records/s from the LMDB copy: inline, 1 prefetch thread
    if (Run(only, "via_lmdb")) {
      const std::string lmdb =
          WriteLmdb(s, dir + "/c2rs-bench-" + std::to_string(getpid()) + ".lmdb");
      via_lmdb = Caffe2rs(lmdb, s, 0, seconds, nullptr, nullptr, "lmdb") * kBatch;
      lmdb1 = Caffe2rs(lmdb, s, 1, seconds, nullptr, nullptr, "lmdb") * kBatch;
      RemoveLmdb(lmdb);
    }
    const double proto = Run(only, "protobuf") ? Protobuf(s, seconds) * kBatch : 0.0;
    const double caffe2 = Run(only, "caffe2") ? ProtobufCaffe2(s, seconds) * kBatch : 0.0;
    const double copy = Run(only, "memcpy") ? Memcpy(s, seconds) * kBatch : 0.0;
    double cpu1 = 0, cpu2 = 0;  // process CPU µs per record with 1 and 2 prefetch threads
    ThreadSplit sp1, sp2;       // consumer / workers split, same runs
    const double t1 = Run(only, "prefetch") ? Caffe2rs(path, s, 1, seconds, &cpu1, &sp1) * kBatch : 0.0;
    const double t2 = Run(only, "prefetch") ? Caffe2rs(path, s, 2, seconds, &cpu2, &sp2) * kBatch : 0.0;
    const double m1 = Run(only, "prefetch") ? ParallelMemcpy(s, 1, seconds) * kBatch : 0.0;
    const double m2 = Run(only, "prefetch") ? ParallelMemcpy(s, 2, seconds) * kBatch : 0.0;
    std::remove(path.c_str());
    const double gb = static_cast<double>(s.payload_bytes) / 1e9;
    std::printf("\n(%s) payload %zu B/record\n", s.name, s.payload_bytes);
    std::printf("  caffe2rs assemble %10.0f rec/s %7.2f GB/s  (records in memory)\n", ours, ours * gb);
    std::printf("  caffe2rs via DB   %10.0f rec/s %7.2f GB/s  (DBReader on tmpfs, inline)\n", via_db,
                via_db * gb);
    std::printf("  caffe2rs via LMDB %10.0f rec/s %7.2f GB/s  (LMDB on tmpfs, inline; 1 prefetch thread %.0f rec/s)\n",
                via_lmdb, via_lmdb * gb, lmdb1);
    std::printf("  C++ protobuf      %10.0f rec/s %7.2f GB/s\n", proto, proto * gb);
    std::printf("  C++ Caffe2 design %10.0f rec/s %7.2f GB/s\n", caffe2, caffe2 * gb);
    std::printf("  memcpy            %10.0f rec/s %7.2f GB/s\n", copy, copy * gb);
    std::printf("  caffe2rs/protobuf %6.2fx (via DB %.2fx)   caffe2rs/Caffe2 design %6.2fx (via DB %.2fx)\n",
                ours / proto, via_db / proto, ours / caffe2, via_db / caffe2);
    std::printf("  caffe2rs/memcpy %5.1f%% (via DB %.1f%%)   memcpy/protobuf %.2fx\n", 100.0 * ours / copy,
                100.0 * via_db / copy, copy / proto);
    std::printf("  prefetch 1 thread %10.0f rec/s, 2 threads %10.0f rec/s: %.2fx\n", t1, t2, t2 / t1);
    std::printf("  memcpy   1 thread %10.0f rec/s, 2 threads %10.0f rec/s: %.2fx  (what 2 threads get now)\n",
                m1, m2, m2 / m1);
    std::printf("  prefetch CPU time %10.3f us/record, 2 threads %7.3f us/record: %.2fx  (all threads)\n",
                cpu1, cpu2, cpu2 / cpu1);
    for (const auto& [threads, sp] : {std::pair<int, ThreadSplit>{1, sp1}, {2, sp2}}) {
      std::printf("  prefetch %d thread%s consumer %6.3f us/record CPU, %5.2f sleeps/batch; workers %6.3f us/record CPU, "
                  "%5.2f preempted/batch\n",
                  threads, threads == 1 ? ": " : "s:", sp.consumer_ns, sp.consumer_sleeps, sp.workers_ns,
                  sp.workers_preempted);
    }
    char entry[1024];
    std::snprintf(entry, sizeof entry,
                  "%s{\"name\":\"%s\",\"payload_bytes\":%zu,\"caffe2rs_rps\":%.0f,\"caffe2rs_via_db_rps\":%.0f,\"caffe2rs_via_lmdb_rps\":%.0f,\"lmdb_prefetch1_rps\":%.0f,\"protobuf_rps\":%.0f,"
                  "\"protobuf_caffe2_rps\":%.0f,\"memcpy_rps\":%.0f,\"vs_protobuf_caffe2\":%.3f,\"vs_protobuf\":%.3f,\"vs_memcpy\":%.3f,\"prefetch1_rps\":%.0f,"
                  "\"prefetch2_rps\":%.0f,\"prefetch_scaling\":%.3f,\"memcpy_scaling\":%.3f,\"prefetch1_cpu_us\":%.4f,\"prefetch2_cpu_us\":%.4f}",
                  first ? "" : ",", s.name, s.payload_bytes, ours, via_db, via_lmdb, lmdb1, proto, caffe2, copy, ours / caffe2, ours / proto, ours / copy,
                  t1, t2, t2 / t1, m2 / m1, cpu1, cpu2);
    json += entry;
    first = false;
  }
  json += "]}";
  if (json_path != nullptr) {
    std::ofstream(json_path) << json << "\n";
  }
  return 0;
}

// bench_context: device-context costs through the C ABI against raw baselines measured in the
// same run. Not a test (no ctest entry); built only on request:
//   cmake --build build-release --target bench_context && build-release/cpp_tests/bench/bench_context
//
// CPU part (always; runs first, before CUDA init switches the CPU allocator to pinned memory):
//   alloc+copy+free of N bytes: c2rs_context_alloc + c2rs_context_copy_bytes + deleter on a CPU
//   context (zero fill on, Caffe2's default, and off) vs posix_memalign(64) + memcpy + free,
//   N in 4 KiB .. 64 MiB (GB/s of copied bytes).
// GPU part (needs libcudart and a device; otherwise prints "no CUDA device: GPU part skipped"):
//   - pinned H2D and D2H bandwidth, 1 MiB .. 1 GiB: c2rs_cuda_pinned_alloc host buffer,
//     c2rs_context_alloc device buffer, c2rs_context_copy_bytes + finish_device_computation,
//     vs cudaMallocHost + cudaMalloc + cudaMemcpyAsync + cudaStreamSynchronize on a
//     non-blocking stream (best of 5 after a warm-up);
//   - device allocation latency: c2rs_cuda_alloc + deleter of 1 MiB (pool hits) vs
//     cudaMalloc + cudaFree of 1 MiB.
// The CUDA runtime is loaded with dlopen and its few functions declared here, so the bench
// builds without CUDA headers or toolkit.
#include "caffe2rs.h"

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Runs `f` repeatedly for at least `min_s` seconds (doubling batches); seconds per call.
template <class F>
double time_per_call(F&& f, double min_s) {
  f();
  uint64_t iters = 1;
  for (;;) {
    auto t0 = Clock::now();
    for (uint64_t i = 0; i < iters; ++i) f();
    double s = seconds_since(t0);
    if (s >= min_s) return s / static_cast<double>(iters);
    iters *= 2;
  }
}

void check(int32_t rc, const char* what) {
  if (rc != C2RS_OK) {
    std::fprintf(stderr, "%s failed: %d %s\n", what, rc, c2rs_last_error_message());
    std::exit(1);
  }
}

std::vector<uint8_t> device_option(int32_t type, int32_t id) {
  std::vector<uint8_t> out{0x08, static_cast<uint8_t>(type)};
  if (id >= 0) {
    out.push_back(0x10);
    out.push_back(static_cast<uint8_t>(id));
  }
  return out;
}

c2rs_context* make_context(int32_t type, int32_t id) {
  auto opt = device_option(type, id);
  c2rs_context* ctx = nullptr;
  check(c2rs_context_new(opt.data(), opt.size(), &ctx), "c2rs_context_new");
  return ctx;
}

void cpu_part() {
  std::printf("== CPU: alloc + copy + free (GB/s of copied bytes)\n");
  std::printf("   (c2rs zero-fills new allocations by default, as Caffe2; nofill = zero fill off)\n");
  std::printf("%10s %12s %12s %12s %8s %8s\n", "bytes", "c2rs", "c2rs nofill", "memcpy", "ratio",
              "nofill");
  c2rs_context* ctx = make_context(0, -1);
  for (size_t n = 4 << 10; n <= (64u << 20); n *= 4) {
    std::vector<uint8_t> src(n, 7);
    auto ours_once = [&] {
      void* p = nullptr;
      c2rs_deleter d = nullptr;
      check(c2rs_context_alloc(ctx, n, &p, &d), "c2rs_context_alloc");
      check(c2rs_context_copy_bytes(ctx, n, src.data(), p), "c2rs_context_copy_bytes");
      d(p);
    };
    double ours = time_per_call(ours_once, 0.2);
    c2rs_context_cpu_set_zero_fill(false);
    double nofill = time_per_call(ours_once, 0.2);
    c2rs_context_cpu_set_zero_fill(true);
    double raw = time_per_call(
        [&] {
          void* p = nullptr;
          if (posix_memalign(&p, 64, n) != 0) std::abort();
          std::memcpy(p, src.data(), n);
          // Keep the copy observable.
          asm volatile("" : : "r"(p) : "memory");
          std::free(p);
        },
        0.2);
    std::printf("%10zu %12.2f %12.2f %12.2f %8.2f %8.2f\n", n, n / ours / 1e9, n / nofill / 1e9,
                n / raw / 1e9, raw / ours, raw / nofill);
  }
  c2rs_context_free(ctx);
}

// The few CUDA runtime entry points the baseline needs (cudaError_t is an int enum).
struct Cudart {
  void* lib = nullptr;
  int (*GetDeviceCount)(int*) = nullptr;
  int (*SetDevice)(int) = nullptr;
  int (*Malloc)(void**, size_t) = nullptr;
  int (*Free)(void*) = nullptr;
  int (*MallocHost)(void**, size_t) = nullptr;
  int (*FreeHost)(void*) = nullptr;
  int (*StreamCreateWithFlags)(void**, unsigned) = nullptr;
  int (*StreamDestroy)(void*) = nullptr;
  int (*StreamSynchronize)(void*) = nullptr;
  int (*MemcpyAsync)(void*, const void*, size_t, int, void*) = nullptr;

  template <class F>
  bool sym(F& f, const char* name) {
    f = reinterpret_cast<F>(dlsym(lib, name));
    return f != nullptr;
  }

  bool load(std::string& why) {
    for (const char* name : {"libcudart.so", "libcudart.so.12", "libcudart.so.11.0"}) {
      lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (lib != nullptr) break;
    }
    if (lib == nullptr) {
      why = "libcudart not found";
      return false;
    }
    bool ok = sym(GetDeviceCount, "cudaGetDeviceCount") && sym(SetDevice, "cudaSetDevice") &&
              sym(Malloc, "cudaMalloc") && sym(Free, "cudaFree") &&
              sym(MallocHost, "cudaMallocHost") && sym(FreeHost, "cudaFreeHost") &&
              sym(StreamCreateWithFlags, "cudaStreamCreateWithFlags") &&
              sym(StreamDestroy, "cudaStreamDestroy") &&
              sym(StreamSynchronize, "cudaStreamSynchronize") &&
              sym(MemcpyAsync, "cudaMemcpyAsync");
    if (!ok) why = "libcudart lacks a needed symbol";
    return ok;
  }
};

constexpr int kMemcpyDefault = 4;  // cudaMemcpyDefault: direction from unified addressing.
constexpr unsigned kStreamNonBlocking = 1;

void must(int rc, const char* what) {
  if (rc != 0) {
    std::fprintf(stderr, "%s failed with cudaError %d\n", what, rc);
    std::exit(1);
  }
}

// Best time of 5 timed repetitions after one warm-up.
template <class F>
double best_of_5(F&& f) {
  f();
  double best = 1e30;
  for (int i = 0; i < 5; ++i) {
    auto t0 = Clock::now();
    f();
    best = std::min(best, seconds_since(t0));
  }
  return best;
}

void gpu_part(Cudart& rt) {
  must(rt.SetDevice(0), "cudaSetDevice");
  c2rs_context* ctx = make_context(1, 0);
  void* stream = nullptr;
  must(rt.StreamCreateWithFlags(&stream, kStreamNonBlocking), "cudaStreamCreateWithFlags");
  std::printf("== GPU 0: pinned transfers (GB/s, best of 5)\n");
  std::printf("%12s %10s %10s %8s %10s %10s %8s\n", "bytes", "H2D c2rs", "H2D raw", "ratio",
              "D2H c2rs", "D2H raw", "ratio");
  for (size_t n = 1u << 20; n <= (1u << 30); n *= 4) {
    void *host = nullptr, *dev = nullptr;
    c2rs_deleter hdel = nullptr, ddel = nullptr;
    check(c2rs_cuda_pinned_alloc(n, &host, &hdel), "c2rs_cuda_pinned_alloc");
    check(c2rs_context_alloc(ctx, n, &dev, &ddel), "c2rs_context_alloc");
    std::memset(host, 3, n);
    auto ours = [&](bool h2d) {
      return best_of_5([&] {
        check(c2rs_context_copy_bytes(ctx, n, h2d ? host : dev, h2d ? dev : host), "copy");
        check(c2rs_context_finish_device_computation(ctx), "finish");
      });
    };
    double h2d_ours = ours(true), d2h_ours = ours(false);
    void *rhost = nullptr, *rdev = nullptr;
    must(rt.MallocHost(&rhost, n), "cudaMallocHost");
    must(rt.Malloc(&rdev, n), "cudaMalloc");
    std::memset(rhost, 3, n);
    auto raw = [&](bool h2d) {
      return best_of_5([&] {
        must(rt.MemcpyAsync(h2d ? rdev : rhost, h2d ? rhost : rdev, n, kMemcpyDefault, stream),
             "cudaMemcpyAsync");
        must(rt.StreamSynchronize(stream), "cudaStreamSynchronize");
      });
    };
    double h2d_raw = raw(true), d2h_raw = raw(false);
    std::printf("%12zu %10.2f %10.2f %8.2f %10.2f %10.2f %8.2f\n", n, n / h2d_ours / 1e9,
                n / h2d_raw / 1e9, h2d_raw / h2d_ours, n / d2h_ours / 1e9, n / d2h_raw / 1e9,
                d2h_raw / d2h_ours);
    must(rt.Free(rdev), "cudaFree");
    must(rt.FreeHost(rhost), "cudaFreeHost");
    ddel(dev);
    hdel(host);
  }
  const size_t n = 1u << 20;
  double pool = time_per_call(
      [&] {
        void* p = nullptr;
        c2rs_deleter d = nullptr;
        check(c2rs_cuda_alloc(n, &p, &d), "c2rs_cuda_alloc");
        d(p);
      },
      0.2);
  double raw = time_per_call(
      [&] {
        void* p = nullptr;
        must(rt.Malloc(&p, n), "cudaMalloc");
        must(rt.Free(p), "cudaFree");
      },
      0.2);
  std::printf("== GPU 0: 1 MiB alloc+free latency: pool %.3f us, cudaMalloc+cudaFree %.3f us\n",
              pool * 1e6, raw * 1e6);
  must(rt.StreamDestroy(stream), "cudaStreamDestroy");
  c2rs_context_free(ctx);
}

}  // namespace

int main() {
  cpu_part();
  if (c2rs_cuda_device_count() == 0) {
    std::printf("no CUDA device: GPU part skipped\n");
    return 0;
  }
  Cudart rt;
  std::string why;
  int count = 0;
  if (!rt.load(why) || rt.GetDeviceCount(&count) != 0 || count == 0) {
    std::printf("no CUDA device: GPU part skipped (%s)\n",
                why.empty() ? "cudaGetDeviceCount found none" : why.c_str());
    return 0;
  }
  gpu_part(rt);
  return 0;
}

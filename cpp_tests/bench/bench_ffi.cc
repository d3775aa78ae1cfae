// bench_ffi: the fixed cost of small C ABI calls, against an empty call through the same symbol
// table measured in the same run (not a test; built on request, see README.md):
//   cmake --build build-release --target bench_ffi && build-release/cpp_tests/bench/bench_ffi
//
//   empty            c2rs_abi_version() (a PLT call into the library that does nothing)
//   has_blob         c2rs_workspace_has_blob on a workspace of 1000 blobs, names present / absent
//   has_blob_n       the (pointer, length) twin
//   feed+fetch       c2rs_workspace_feed of a 4-float tensor + c2rs_workspace_fetch of it +
//                    c2rs_tensor_free of the fetched copy, cycling over 1000 blobs, and on one
//                    blob (everything stays in cache)
//   handle has       c2rs_blob_handle_has on handles got once per blob
//   handle feed+fetch c2rs_blob_handle_feed + c2rs_blob_handle_fetch + c2rs_tensor_free
//
// `--only has|feed_fetch|handle` runs one group (the others print 0; the empty call always
// runs), for profiling, e.g. `perf record -g bench_ffi --only feed_fetch`.
// Each figure is the best (lowest) of `--rounds` rounds of `--calls` calls, so a round that
// other processes interrupted does not count; ns per call and the ratio to the empty call.
// The handle functions are looked up as weak symbols, so the same binary runs against an older
// library (LD_LIBRARY_PATH) and prints "n/a" for them.
#include "caffe2rs.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#pragma weak c2rs_workspace_blob_handle
#pragma weak c2rs_blob_handle_has
#pragma weak c2rs_blob_handle_feed
#pragma weak c2rs_blob_handle_fetch
#pragma weak c2rs_blob_handle_free

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kBlobs = 1000;

void Check(int32_t rc, const char* what) {
  if (rc != C2RS_OK) {
    std::fprintf(stderr, "%s failed: %d %s\n", what, rc, c2rs_last_error_message());
    std::exit(1);
  }
}

/// Lowest ns per call of `body(i)` over `rounds` rounds of `calls` calls (i = call index).
template <typename F>
double BestNs(F&& body, int rounds, int calls) {
  for (int i = 0; i < calls / 10; ++i) body(i);  // warm-up
  double best = 1e300;
  for (int r = 0; r < rounds; ++r) {
    const auto t0 = Clock::now();
    for (int i = 0; i < calls; ++i) body(i);
    const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / calls;
    if (ns < best) best = ns;
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 20;
  int calls = 200000;
  const char* only = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) only = argv[++i];
    if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) rounds = std::atoi(argv[++i]);
    if (std::strcmp(argv[i], "--calls") == 0 && i + 1 < argc) calls = std::atoi(argv[++i]);
  }
  if (rounds < 1 || calls < 10) {
    std::fprintf(stderr, "usage: bench_ffi [--rounds N>=1] [--calls N>=10]\n");
    return 2;
  }

  c2rs_workspace* ws = nullptr;
  Check(c2rs_workspace_new(nullptr, &ws), "c2rs_workspace_new");
  std::vector<std::string> present, absent;
  for (int i = 0; i < kBlobs; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "blob_%04d", i);
    present.emplace_back(name);
    std::snprintf(name, sizeof name, "nope_%04d", i);
    absent.emplace_back(name);
  }
  const int64_t dims[1] = {4};
  c2rs_tensor* four = nullptr;
  Check(c2rs_tensor_new(1 /* FLOAT */, dims, 1, &four), "c2rs_tensor_new");
  void* data = nullptr;
  Check(c2rs_tensor_mutable_data(four, &data), "c2rs_tensor_mutable_data");
  const float values[4] = {1.f, 2.f, 3.f, 4.f};
  std::memcpy(data, values, sizeof values);
  for (const std::string& n : present) Check(c2rs_workspace_feed(ws, n.c_str(), four), "feed");

  auto run = [&](const char* group) { return only == nullptr || std::strcmp(only, group) == 0; };
  volatile uint32_t sink = 0;
  bool found = false;
  const double empty = BestNs([&](int) { sink = sink + c2rs_abi_version(); }, rounds, calls);
  const double has_present = !run("has") ? 0 : BestNs(
      [&](int i) {
        Check(c2rs_workspace_has_blob(ws, present[i % kBlobs].c_str(), &found), "has_blob");
        sink = sink + found;
      },
      rounds, calls);
  const double has_absent = !run("has") ? 0 : BestNs(
      [&](int i) {
        Check(c2rs_workspace_has_blob(ws, absent[i % kBlobs].c_str(), &found), "has_blob");
        sink = sink + found;
      },
      rounds, calls);
  const double has_n_present = !run("has") ? 0 : BestNs(
      [&](int i) {
        const std::string& n = present[i % kBlobs];
        Check(c2rs_workspace_has_blob_n(ws, n.data(), n.size(), &found), "has_blob_n");
        sink = sink + found;
      },
      rounds, calls);
  const double has_n_absent = !run("has") ? 0 : BestNs(
      [&](int i) {
        const std::string& n = absent[i % kBlobs];
        Check(c2rs_workspace_has_blob_n(ws, n.data(), n.size(), &found), "has_blob_n");
        sink = sink + found;
      },
      rounds, calls);
  const double feed_fetch = !run("feed_fetch") ? 0 : BestNs(
      [&](int i) {
        const char* n = present[i % kBlobs].c_str();
        Check(c2rs_workspace_feed(ws, n, four), "feed");
        c2rs_tensor* out = nullptr;
        Check(c2rs_workspace_fetch(ws, n, &out), "fetch");
        c2rs_tensor_free(out);
      },
      rounds, calls);

  const double feed_fetch_one = !run("feed_fetch") ? 0 : BestNs(
      [&](int) {
        Check(c2rs_workspace_feed(ws, "blob_0000", four), "feed");
        c2rs_tensor* out = nullptr;
        Check(c2rs_workspace_fetch(ws, "blob_0000", &out), "fetch");
        c2rs_tensor_free(out);
      },
      rounds, calls);

  const bool handles = c2rs_workspace_blob_handle != nullptr && c2rs_blob_handle_has != nullptr &&
                       c2rs_blob_handle_feed != nullptr && c2rs_blob_handle_fetch != nullptr &&
                       c2rs_blob_handle_free != nullptr;
  double handle_has = 0, handle_feed_fetch = 0, handle_feed_fetch_one = 0;
  if (handles && run("handle")) {
    std::vector<c2rs_blob_handle*> hs(kBlobs, nullptr);
    for (int i = 0; i < kBlobs; ++i) {
      Check(c2rs_workspace_blob_handle(ws, present[i].c_str(), false, &hs[i]), "blob_handle");
    }
    handle_has = BestNs(
        [&](int i) {
          Check(c2rs_blob_handle_has(hs[i % kBlobs], &found), "handle_has");
          sink = sink + found;
        },
        rounds, calls);
    handle_feed_fetch = BestNs(
        [&](int i) {
          c2rs_blob_handle* h = hs[i % kBlobs];
          Check(c2rs_blob_handle_feed(h, four), "handle_feed");
          c2rs_tensor* out = nullptr;
          Check(c2rs_blob_handle_fetch(h, &out), "handle_fetch");
          c2rs_tensor_free(out);
        },
        rounds, calls);
    handle_feed_fetch_one = BestNs(
        [&](int) {
          Check(c2rs_blob_handle_feed(hs[0], four), "handle_feed");
          c2rs_tensor* out = nullptr;
          Check(c2rs_blob_handle_fetch(hs[0], &out), "handle_fetch");
          c2rs_tensor_free(out);
        },
        rounds, calls);
    for (c2rs_blob_handle* h : hs) c2rs_blob_handle_free(h);
  }

  std::printf("caffe2rs %s: best of %d rounds x %d calls, %d blobs\n", c2rs_version_string(), rounds,
              calls, kBlobs);
  std::printf("%-34s %9s %9s\n", "call", "ns/call", "x empty");
  auto row = [&](const char* what, double ns) {
    std::printf("%-34s %9.2f %9.1f\n", what, ns, ns / empty);
  };
  row("empty (c2rs_abi_version)", empty);
  row("has_blob, present", has_present);
  row("has_blob, absent", has_absent);
  row("has_blob_n, present", has_n_present);
  row("has_blob_n, absent", has_n_absent);
  row("feed + fetch + free, 4 floats", feed_fetch);
  row("  the same on one blob", feed_fetch_one);
  if (handles) {
    row("handle has", handle_has);
    row("handle feed + fetch + free", handle_feed_fetch);
    row("  the same on one blob", handle_feed_fetch_one);
  } else {
    std::printf("%-34s %9s\n", "handle has", "n/a");
    std::printf("%-34s %9s\n", "handle feed + fetch + free", "n/a");
  }
  c2rs_tensor_free(four);
  c2rs_workspace_free(ws);
  return sink == 12345 ? 1 : 0;
}

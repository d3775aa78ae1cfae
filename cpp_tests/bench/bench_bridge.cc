// bench_bridge: per-batch overhead of the host-operator bridge (include/caffe2rs/caffe2_bridge.h
// over host_op.hpp) against calling the C ABI directly, for one 32 x 3 x 224 x 224 UINT8 batch
// travelling from a (stand-in) Caffe2 host blob through a caffe2rs BlobsQueue and back.
//
//   direct: the host code a team would write by hand: export the Caffe2 tensor as DLPack,
//           c2rs_tensor_from_dlpack, c2rs_blobs_queue_enqueue, c2rs_blobs_queue_dequeue,
//           c2rs_tensor_into_dlpack, adopt into a new Caffe2 tensor in the blob.
//   bridge: the host's net [EnqueueBlobs, DequeueBlobs] with engine "C2RS" (two bridged
//           operators), run once per batch.
// Both move the same buffer every iteration (checked: the data pointer never changes, so no
// copy happens); the difference per batch is the bridge's overhead. memcpy of the batch is
// printed as the cost a copy would add. Build (Release for real figures):
//   cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release
//   cmake --build build-release --target bench_bridge && build-release/cpp_tests/bench/bench_bridge
#include <caffe2/core/operator.h>
#include <caffe2/core/workspace.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "caffe2rs.hpp"
#include "caffe2rs/caffe2_bridge.h"

C2RS_CAFFE2_DEFINE_TYPES();
C2RS_CAFFE2_REGISTER(CreateBlobsQueue);
C2RS_CAFFE2_REGISTER(EnqueueBlobs);
C2RS_CAFFE2_REGISTER(DequeueBlobs);

namespace {

const std::vector<int64_t> kDims{32, 3, 224, 224};

using Clock = std::chrono::steady_clock;

caffe2::OperatorDef op(const std::string& type, std::vector<std::string> in,
                       std::vector<std::string> out) {
  caffe2::OperatorDef d;
  d.set_type(type);
  for (auto& i : in) d.add_input(i);
  for (auto& o : out) d.add_output(o);
  d.set_engine("C2RS");
  return d;
}

void fill_batch(caffe2::Workspace& ws) {
  caffe2::Tensor* t = caffe2::BlobGetMutableTensor(ws.CreateBlob("batch"), caffe2::CPU);
  t->Resize(kDims);
  std::memset(t->mutable_data<uint8_t>(), 7, t->nbytes());
}

const void* batch_ptr(caffe2::Workspace& ws) {
  return ws.GetBlob("batch")->Get<caffe2::Tensor>().raw_data();
}

void check(int32_t status) {
  if (status != C2RS_OK) {
    std::fprintf(stderr, "caffe2rs: %s\n", c2rs_last_error_message());
    std::exit(1);
  }
}

/// One direct iteration: Caffe2 blob -> DLPack -> c2rs tensor -> queue -> c2rs tensor -> DLPack
/// -> new Caffe2 tensor in the blob. All C ABI calls spelled out.
void direct_once(caffe2::Workspace& ws, c2rs_blobs_queue* q) {
  caffe2::Blob* blob = ws.GetBlob("batch");
  caffe2::Tensor t = std::move(*caffe2::BlobGetMutableTensor(blob, caffe2::CPU));
  blob->Reset();
  // The buffer came from caffe2rs last time: give caffe2rs its own export back (as the bridge
  // does) instead of wrapping it once more per trip.
  DLManagedTensorVersioned* own = c2rs::caffe2_bridge::detail::reclaim_export(t);
  c2rs::DLPackPtr out =
      own != nullptr ? c2rs::DLPackPtr(own) : c2rs::caffe2_bridge::detail::export_tensor(t, true, "batch");
  t = caffe2::Tensor();
  c2rs_tensor* ct = nullptr;
  check(c2rs_tensor_from_dlpack(out.get(), &ct));
  (void)out.release();
  check(c2rs_blobs_queue_enqueue(q, &ct, 1));
  c2rs_tensor* back = nullptr;
  check(c2rs_blobs_queue_dequeue(q, &back, 1));
  DLManagedTensorVersioned* m = nullptr;
  bool writable = false;
  check(c2rs_tensor_into_dlpack(back, true, &m, &writable));
  caffe2::Tensor host(caffe2::CPU);
  host.Resize(std::vector<int64_t>(m->dl_tensor.shape, m->dl_tensor.shape + m->dl_tensor.ndim));
  const size_t nbytes = static_cast<size_t>(host.numel());
  host.ShareExternalPointer(at::DataPtr(m->dl_tensor.data, m, &c2rs::caffe2_bridge::detail::delete_managed,
                                        at::Device(at::DeviceType::CPU)),
                            caffe2::TypeMeta::Make<uint8_t>(), nbytes);
  caffe2::BlobSetTensor(blob, std::move(host));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 20000;
  const int reps = 7;

  // direct
  caffe2::Workspace dws;
  fill_batch(dws);
  const void* dptr = batch_ptr(dws);
  c2rs::Workspace c2ws;
  c2rs_blobs_queue* q = nullptr;
  check(c2rs_blobs_queue_create(c2ws.get(), "q", 4, 1, false, &q));
  // bridge
  caffe2::Workspace bws;
  fill_batch(bws);
  const void* bptr = batch_ptr(bws);
  caffe2::NetDef init;
  init.set_name("init");
  *init.add_op() = op("CreateBlobsQueue", {}, {"q"});
  bws.RunNetOnce(init);
  caffe2::NetDef pingpong;
  pingpong.set_name("pingpong");
  *pingpong.add_op() = op("EnqueueBlobs", {"q", "batch"}, {"batch"});
  *pingpong.add_op() = op("DequeueBlobs", {"q"}, {"batch"});
  bws.CreateNet(pingpong);

  std::vector<double> direct_ns, bridge_ns;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    for (int i = 0; i < iterations; ++i) direct_once(dws, q);
    auto t1 = Clock::now();
    for (int i = 0; i < iterations; ++i) {
      if (!bws.RunNet("pingpong")) return 1;
    }
    auto t2 = Clock::now();
    direct_ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / iterations);
    bridge_ns.push_back(std::chrono::duration<double, std::nano>(t2 - t1).count() / iterations);
    if (batch_ptr(dws) != dptr || batch_ptr(bws) != bptr) {
      std::fprintf(stderr, "the batch was copied (data pointer changed)\n");
      return 1;
    }
  }
  // What one copy of the batch would cost.
  std::vector<uint8_t> a(32 * 3 * 224 * 224, 1), b(a.size());
  std::vector<double> copy_ns;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    for (int i = 0; i < 50; ++i) {
      std::memcpy(b.data(), a.data(), a.size());
      a[static_cast<size_t>(i)] = b[static_cast<size_t>(i) + 1];
    }
    copy_ns.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / 50);
  }
  c2rs_blobs_queue_free(q);

  const double d = median(direct_ns), br = median(bridge_ns), c = median(copy_ns);
  std::printf("batch: 32x3x224x224 UINT8 (%zu bytes); %d iterations x %d repetitions, medians\n",
              a.size(), iterations, reps);
  std::printf("direct C ABI (enqueue + dequeue + DLPack both ways): %9.1f ns/batch\n", d);
  std::printf("bridge (2 bridged Caffe2 operators, same work):      %9.1f ns/batch\n", br);
  std::printf("bridge overhead:                                     %9.1f ns/batch (%.2f us)\n",
              br - d, (br - d) / 1000.0);
  std::printf("memcpy of the batch (what one copy would add):       %9.1f ns\n", c);
  std::printf("no copy: the batch data pointer stayed %p (direct) and %p (bridge)\n", dptr, bptr);
  std::printf("{\"direct_ns\":%.1f,\"bridge_ns\":%.1f,\"overhead_ns\":%.1f,\"memcpy_ns\":%.1f}\n",
              d, br, br - d, c);
  return 0;
}

// include/caffe2rs/host_op.hpp on its own, with the smallest possible host: blobs in a map,
// float tensors in shared buffers, its own exception type. Shows that the bridge is
// independent of Caffe2's types and checks its contract: inputs cross zero-copy (read-only when
// shared, writable when consumed), outputs come back zero-copy, objects stay in host blobs
// between operators, host records feed TensorProtosDBInput, a failure calls the adapter's fail
// with the caffe2rs message, and consumed inputs go back to their blobs when a run fails.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "c2rs_test_proto.h"
#include "caffe2rs.hpp"
#include "caffe2rs/host_op.hpp"

using c2rs_test::IntArg;
using c2rs_test::Op;

namespace {

/// The host's tensor: floats in a shared buffer (or a caffe2rs buffer it adopted).
struct HostTensor {
  std::vector<int64_t> dims;
  std::shared_ptr<std::vector<float>> own;  // set when the host allocated the buffer
  c2rs::DLPackPtr adopted;                  // set when the buffer came from caffe2rs
  float* data() const {
    return own ? own->data() : static_cast<float*>(adopted->dl_tensor.data);
  }
};
using HostTensorPtr = std::shared_ptr<HostTensor>;

/// A host blob: empty, a tensor, a caffe2rs object, or bytes.
struct HostBlob {
  HostTensorPtr tensor;
  c2rs::Object object;
  std::string bytes;
  bool has_bytes = false;
};

struct HostError : std::runtime_error {
  int32_t status;
  HostError(int32_t s, const std::string& m) : std::runtime_error(m), status(s) {}
};

/// A DLPack export of a host tensor; the context keeps the tensor alive.
struct Export {
  DLManagedTensorVersioned managed{};
  HostTensorPtr keep;
  static void deleter(DLManagedTensorVersioned* m) { delete static_cast<Export*>(m->manager_ctx); }
};

c2rs::DLPackPtr export_tensor(HostTensorPtr t, bool writable) {
  auto* e = new Export{{}, t};
  e->managed.version = DLPackVersion{DLPACK_MAJOR_VERSION, DLPACK_MINOR_VERSION};
  e->managed.manager_ctx = e;
  e->managed.deleter = &Export::deleter;
  e->managed.flags = writable ? 0 : DLPACK_FLAG_BITMASK_READ_ONLY;
  e->managed.dl_tensor.data = t->data();
  e->managed.dl_tensor.device = DLDevice{kDLCPU, 0};
  e->managed.dl_tensor.ndim = static_cast<int32_t>(t->dims.size());
  e->managed.dl_tensor.dtype = DLDataType{kDLFloat, 32, 1};
  e->managed.dl_tensor.shape = t->dims.data();
  return c2rs::DLPackPtr(&e->managed);
}

struct Host {
  std::map<std::string, HostBlob> blobs;
  std::vector<std::string> failures;
};

/// The adapter for one run of one operator over `host`'s blobs.
struct Adapter {
  Host& host;
  std::vector<std::string> in, out;

  void input(size_t i, c2rs::host::InputSlot& slot) {
    HostBlob& b = host.blobs[in[i]];
    if (b.tensor) {
      HostTensorPtr t = b.tensor;
      if (slot.consumed()) b.tensor.reset();
      slot.set_tensor(export_tensor(t, slot.consumed() && t.use_count() == 1));
    } else if (b.object) {
      slot.set_object(b.object);
    } else if (b.has_bytes) {
      slot.set_bytes(b.bytes);
    }
  }
  void output_tensor(size_t o, c2rs::DLPackPtr m, bool writable) {
    auto t = std::make_shared<HostTensor>();
    t->dims.assign(m->dl_tensor.shape, m->dl_tensor.shape + m->dl_tensor.ndim);
    if (writable) {
      t->adopted = std::move(m);
    } else {
      const float* src = static_cast<const float*>(m->dl_tensor.data);
      size_t n = 1;
      for (int64_t d : t->dims) n *= static_cast<size_t>(d);
      t->own = std::make_shared<std::vector<float>>(src, src + n);
    }
    host.blobs[out[o]] = HostBlob{t, {}, {}, false};
  }
  void output_strings(size_t o, const c2rs::Tensor& t) {
    // This host keeps a STRING tensor's first string as bytes (enough for the tests).
    host.blobs[out[o]] = HostBlob{{}, {}, t.numel() > 0 ? t.string_at(0) : std::string(), true};
  }
  void output_object(size_t o, const c2rs::Object& obj) { host.blobs[out[o]] = HostBlob{{}, obj, {}, false}; }
  void output_bytes(size_t o, std::string_view bytes) {
    host.blobs[out[o]] = HostBlob{{}, {}, std::string(bytes), true};
  }
  [[noreturn]] void fail(const c2rs::Error& e) {
    host.failures.push_back(e.message());
    throw HostError(e.status(), e.message());
  }
};

/// A host operator running a caffe2rs operator through the bridge.
struct BridgedOp {
  std::vector<std::string> in, out;
  c2rs::host::OperatorBridge bridge;
  BridgedOp(const c2rs_test::Pb& def, std::vector<std::string> i, std::vector<std::string> o)
      : in(i), out(o), bridge(def.bytes, std::move(i), std::move(o)) {}
  void run(Host& host) {
    Adapter a{host, in, out};
    bridge.run(a);
  }
};

HostTensorPtr floats(std::vector<float> v) {
  auto t = std::make_shared<HostTensor>();
  t->dims = {static_cast<int64_t>(v.size())};
  t->own = std::make_shared<std::vector<float>>(std::move(v));
  return t;
}

}  // namespace

TEST(HostOpBridge, AQueueCarriesAHostBufferWithoutACopyAndItComesBackWritable) {
  Host host;
  BridgedOp create(Op("CreateBlobsQueue", {}, {"q"}, {IntArg("capacity", 2)}), {}, {"q"});
  create.run(host);
  ASSERT_TRUE(host.blobs["q"].object) << "the queue lives in the host blob as an object";
  host.blobs["x"].tensor = floats({1, 2, 3});
  const float* p = host.blobs["x"].tensor->data();
  BridgedOp enq(Op("EnqueueBlobs", {"q", "x"}, {"x"}), {"q", "x"}, {"x"});
  BridgedOp deq(Op("DequeueBlobs", {"q"}, {"y"}), {"q"}, {"y"});
  enq.run(host);
  EXPECT_FALSE(host.blobs["x"].tensor) << "consumed, as Caffe2's EnqueueBlobs";
  deq.run(host);
  const HostTensorPtr& y = host.blobs["y"].tensor;
  ASSERT_TRUE(y);
  EXPECT_EQ(y->data(), p) << "the host buffer crossed the queue without a copy";
  ASSERT_TRUE(y->adopted) << "handed back writable: the host owns it alone";
  y->data()[0] = 10;  // in place
  EXPECT_EQ(y->data()[0], 10);
}

TEST(HostOpBridge, ASharedInputCrossesReadOnlyAndTheOutputIsTheCaffe2rsResult) {
  Host host;
  host.blobs["x"].tensor = floats({-1, 2});
  BridgedOp relu(Op("Relu", {"x"}, {"y"}), {"x"}, {"y"});
  relu.run(host);
  ASSERT_TRUE(host.blobs["x"].tensor) << "not consumed";
  EXPECT_EQ(host.blobs["x"].tensor->data()[0], -1) << "the input was not written";
  const HostTensorPtr& y = host.blobs["y"].tensor;
  ASSERT_TRUE(y && y->adopted) << "a fresh caffe2rs output comes back writable";
  EXPECT_EQ(y->data()[0], 0);
  EXPECT_EQ(y->data()[1], 2);
  EXPECT_EQ(host.blobs["x"].tensor.use_count(), 1) << "the bridge released the input";
}

TEST(HostOpBridge, AFailureCallsFailWithTheCaffe2rsMessageAndHandsConsumedInputsBack) {
  Host host;
  BridgedOp create(Op("CreateBlobsQueue", {}, {"q"}, {IntArg("num_blobs", 2)}), {}, {"q"});
  create.run(host);
  host.blobs["x"].tensor = floats({5});
  const float* original = host.blobs["x"].tensor->data();
  BridgedOp enq(Op("EnqueueBlobs", {"q", "x"}, {"x"}), {"q", "x"}, {"x"});
  try {
    enq.run(host);
    FAIL() << "expected the host's exception";
  } catch (const HostError& e) {
    EXPECT_EQ(e.status, C2RS_ENFORCE_NOT_MET);
    EXPECT_NE(std::string(e.what()).find("c2rs_operator_run: op (EnqueueBlobs): "),
              std::string::npos)
        << e.what();
  }
  ASSERT_EQ(host.failures.size(), 1u);
  ASSERT_TRUE(host.blobs["x"].tensor) << "the consumed input came back";
  EXPECT_EQ(host.blobs["x"].tensor->data(), original) << "the same buffer, not a copy";
}

TEST(HostOpBridge, HostRecordsFeedTensorProtosDBInputAcrossRuns) {
  Host host;
  int next = 0;
  struct RecordsAdapter : Adapter {
    int* next;
    void input(size_t, c2rs::host::InputSlot& slot) {
      slot.set_records(next, [n = next](std::string& key, std::string& value) {
        c2rs::Tensor t = c2rs::Tensor::create(C2RS_DTYPE_FLOAT, {2});
        float* p = t.mutable_data<float>();
        p[0] = p[1] = static_cast<float>(*n);
        key = "r" + std::to_string(*n);
        value = c2rs::encode_tensor_protos({t}).str();
        ++*n;
        return true;
      });
    }
  };
  c2rs::host::OperatorBridge bridge(
      Op("TensorProtosDBInput", {"reader"}, {"data"}, {IntArg("batch_size", 3)}).bytes, {"reader"},
      {"data"});
  for (int run = 0; run < 3; ++run) {
    RecordsAdapter a{{host, {"reader"}, {"data"}}, &next};
    bridge.run(a);
    const HostTensorPtr& d = host.blobs["data"].tensor;
    ASSERT_EQ(d->dims, (std::vector<int64_t>{3, 2}));
    for (int k = 0; k < 3; ++k) EXPECT_EQ(d->data()[2 * k], static_cast<float>(3 * run + k));
  }
}

TEST(HostOpBridge, ADefCaffe2rsCannotBuildThrowsAtConstruction) {
  try {
    c2rs::host::OperatorBridge b(Op("NoSuchOperator", {}, {"y"}).bytes, {}, {"y"});
    FAIL();
  } catch (const c2rs::Error& e) {
    EXPECT_EQ(e.status(), C2RS_NOT_FOUND);
    EXPECT_NE(e.message().find("NoSuchOperator"), std::string::npos);
  }
}

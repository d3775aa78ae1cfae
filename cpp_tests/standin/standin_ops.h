// The stand-in host's own operators (cpp_tests/standin): its TensorProtosDBInput and BlobsQueue
// family, which the tests switch to caffe2rs one family at a time, plus two host operators that
// work on batches in Caffe2's style (in place, through raw pointers) and record the pointers
// they saw. Include from exactly one translation unit (the registrations are static objects).
#ifndef C2RS_STANDIN_OPS_H
#define C2RS_STANDIN_OPS_H

#include <caffe2/core/db.h>
#include <caffe2/core/operator.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "caffe2rs.hpp"

namespace standin {

/// Pointers host operators saw, by tag, in order (the tests compare them).
struct Trace {
  std::mutex mu;
  std::vector<std::pair<std::string, const void*>> seen;
  void add(const std::string& tag, const void* p) {
    std::lock_guard<std::mutex> lock(mu);
    seen.emplace_back(tag, p);
  }
  std::vector<const void*> of(const std::string& tag) {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<const void*> out;
    for (const auto& s : seen) {
      if (s.first == tag) out.push_back(s.second);
    }
    return out;
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mu);
    seen.clear();
  }
};

inline Trace& trace() {
  static Trace t;
  return t;
}

/// The host's TensorProtosDBInput: `batch_size` records from its DBReader input, decoded (the
/// stand-in borrows caffe2rs's TensorProtos decoder for its own operator) and copied into
/// [B] + dims outputs. No prefetching, UINT8/INT32/FLOAT only: enough to be replaced.
class HostTensorProtosDBInput final : public caffe2::Operator<caffe2::CPUContext> {
 public:
  HostTensorProtosDBInput(const caffe2::OperatorDef& def, caffe2::Workspace* ws)
      : caffe2::Operator<caffe2::CPUContext>(def, ws),
        batch_size_(GetSingleArgument<int64_t>("batch_size", 1)) {}

  bool RunOnDevice() override {
    const auto& reader = OperatorBase::Input<caffe2::db::DBReader>(0);
    for (int64_t b = 0; b < batch_size_; ++b) {
      std::string key, value;
      reader.Read(&key, &value);
      c2rs::TensorList record = c2rs::TensorList::decode(value);
      for (int o = 0; o < OutputSize(); ++o) {
        const c2rs::TensorView t = record[static_cast<size_t>(o)];
        std::vector<int64_t> dims = t.dims();
        dims.insert(dims.begin(), batch_size_);
        caffe2::Tensor* out = Output(o);
        if (b == 0) out->Resize(dims);
        const caffe2::TypeMeta meta = meta_of(t.dtype());
        const size_t row = static_cast<size_t>(t.numel()) * meta.itemsize();
        char* base = static_cast<char*>(out->raw_mutable_data(meta));
        std::memcpy(base + static_cast<size_t>(b) * row, raw(t), row);
      }
    }
    return true;
  }

 private:
  static caffe2::TypeMeta meta_of(int32_t dtype) {
    switch (dtype) {
      case C2RS_DTYPE_UINT8: return caffe2::TypeMeta::Make<uint8_t>();
      case C2RS_DTYPE_INT32: return caffe2::TypeMeta::Make<int32_t>();
      case C2RS_DTYPE_FLOAT: return caffe2::TypeMeta::Make<float>();
      default: CAFFE_THROW("the stand-in TensorProtosDBInput reads UINT8, INT32 and FLOAT only");
    }
  }
  static const void* raw(const c2rs::TensorView& t) {
    const void* p = nullptr;
    c2rs::check(c2rs_tensor_data(t.handle(), &p));
    return p;
  }
  int64_t batch_size_;
};

/// The host's blob queue: records of tensors moved in and out (Caffe2 swaps; moving keeps the
/// same buffers), blocking on full/empty, close wakes everyone.
struct HostQueue {
  std::mutex mu;
  std::condition_variable changed;
  std::deque<std::vector<caffe2::Tensor>> records;
  size_t capacity = 1;
  bool closed = false;
};
using HostQueuePtr = std::shared_ptr<HostQueue>;

class HostCreateBlobsQueue final : public caffe2::Operator<caffe2::CPUContext> {
 public:
  using caffe2::Operator<caffe2::CPUContext>::Operator;
  bool RunOnDevice() override {
    auto q = std::make_shared<HostQueue>();
    q->capacity = static_cast<size_t>(GetSingleArgument<int64_t>("capacity", 1));
    *OperatorBase::Output<HostQueuePtr>(0) = q;
    return true;
  }
};

class HostEnqueueBlobs final : public caffe2::Operator<caffe2::CPUContext> {
 public:
  using caffe2::Operator<caffe2::CPUContext>::Operator;
  bool RunOnDevice() override {
    HostQueuePtr q = OperatorBase::Input<HostQueuePtr>(0);
    std::vector<caffe2::Tensor> record;
    for (int o = 0; o < OutputSize(); ++o) record.push_back(std::move(*Output(o)));
    std::unique_lock<std::mutex> lock(q->mu);
    q->changed.wait(lock, [&] { return q->closed || q->records.size() < q->capacity; });
    if (q->records.size() >= q->capacity) return false;
    q->records.push_back(std::move(record));
    q->changed.notify_all();
    return true;
  }
};

class HostDequeueBlobs final : public caffe2::Operator<caffe2::CPUContext> {
 public:
  using caffe2::Operator<caffe2::CPUContext>::Operator;
  bool RunOnDevice() override {
    HostQueuePtr q = OperatorBase::Input<HostQueuePtr>(0);
    std::unique_lock<std::mutex> lock(q->mu);
    q->changed.wait(lock, [&] { return q->closed || !q->records.empty(); });
    if (q->records.empty()) return false;
    std::vector<caffe2::Tensor> record = std::move(q->records.front());
    q->records.pop_front();
    q->changed.notify_all();
    lock.unlock();
    for (int o = 0; o < OutputSize(); ++o) {
      caffe2::BlobSetTensor(OutputBlob(o), std::move(record[static_cast<size_t>(o)]));
    }
    return true;
  }
};

class HostCloseBlobsQueue final : public caffe2::Operator<caffe2::CPUContext> {
 public:
  using caffe2::Operator<caffe2::CPUContext>::Operator;
  bool RunOnDevice() override {
    HostQueuePtr q = OperatorBase::Input<HostQueuePtr>(0);
    std::lock_guard<std::mutex> lock(q->mu);
    q->closed = true;
    q->changed.notify_all();
    return true;
  }
};

/// Records the data pointer of its input under `tag` (a host operator reading a batch).
class TracePointer final : public caffe2::Operator<caffe2::CPUContext> {
 public:
  TracePointer(const caffe2::OperatorDef& def, caffe2::Workspace* ws)
      : caffe2::Operator<caffe2::CPUContext>(def, ws),
        tag_(GetSingleArgument<std::string>("tag", "trace")) {}
  bool RunOnDevice() override {
    trace().add(tag_, Input(0).raw_data());
    return true;
  }

 private:
  std::string tag_;
};

/// Adds 1 to every UINT8 element, in place (output 0 is input 0), through the pointer the
/// tensor already has, as Caffe2 operators write their outputs; records that pointer.
class AddOneInPlace final : public caffe2::Operator<caffe2::CPUContext> {
 public:
  using caffe2::Operator<caffe2::CPUContext>::Operator;
  bool RunOnDevice() override {
    caffe2::Tensor* t = Output(0);
    const void* before = t->raw_data();
    auto* p = static_cast<uint8_t*>(t->raw_mutable_data(t->dtype()));
    if (static_cast<const void*>(p) != before) CAFFE_THROW("AddOneInPlace reallocated its output");
    for (int64_t i = 0; i < t->numel(); ++i) p[i] = static_cast<uint8_t>(p[i] + 1);
    trace().add("bump", p);
    return true;
  }
};

/// An operator only the host has (caffe2rs lacks it): switching it to engine C2RS must fall
/// back to this implementation.
class HostOnlyOp final : public caffe2::Operator<caffe2::CPUContext> {
 public:
  using caffe2::Operator<caffe2::CPUContext>::Operator;
  bool RunOnDevice() override {
    trace().add("host_only", nullptr);
    return true;
  }
};

REGISTER_CPU_OPERATOR(TensorProtosDBInput, HostTensorProtosDBInput);
REGISTER_CPU_OPERATOR(CreateBlobsQueue, HostCreateBlobsQueue);
REGISTER_CPU_OPERATOR(EnqueueBlobs, HostEnqueueBlobs);
REGISTER_CPU_OPERATOR(DequeueBlobs, HostDequeueBlobs);
REGISTER_CPU_OPERATOR(CloseBlobsQueue, HostCloseBlobsQueue);
REGISTER_CPU_OPERATOR(TracePointer, TracePointer);
REGISTER_CPU_OPERATOR(AddOneInPlace, AddOneInPlace);
REGISTER_CPU_OPERATOR(HostOnlyOp, HostOnlyOp);

}  // namespace standin

#endif  // C2RS_STANDIN_OPS_H

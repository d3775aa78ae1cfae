/*
 * caffe2rs/host_op.hpp: run caffe2rs operators inside a foreign operator registry, on the
 * host's own blobs (header-only, C++17, no dependency beyond caffe2rs.hpp).
 *
 * A host that keeps its own workspace, blobs, tensors and executor switches one operator (or
 * one family, e.g. the BlobsQueue operators) to caffe2rs by registering, under its own registry,
 * an operator class that owns a c2rs::host::OperatorBridge and forwards each run to it. The
 * host writes a small *adapter* that tells the bridge what its blobs hold and takes results
 * back; include/caffe2rs/caffe2_bridge.h is that adapter for Caffe2's C++ API.
 *
 * How a run works (OperatorBridge::run):
 *  1. Each input blob is described by the adapter (Adapter::input): a tensor handed over as a
 *     DLPack export of the host's buffer (no copy), a caffe2rs object the host keeps in the blob
 *     (a queue, a DB reader made by an earlier caffe2rs operator), a byte string, or a host
 *     record reader (wrapped once as a caffe2rs DB reader, so TensorProtosDBInput can read the
 *     host's own DB). An input that the operator also writes (EnqueueBlobs' blobs, in place) is
 *     *consumed*: the adapter moves its tensor out of the host blob, so caffe2rs holds the only
 *     reference and the buffer can travel on writable.
 *  2. The caffe2rs operator runs in a private caffe2rs workspace, built once with the def, so
 *     stateful operators (TensorProtosDBInput and its prefetch threads, queues) keep their state
 *     across runs.
 *  3. Each output is moved out of the private workspace and handed to the adapter: tensors as
 *     DLPack (Adapter::output_tensor), writable when caffe2rs held the only reference (a
 *     prefetched batch, a dequeued record), so the host may write in place; objects and byte
 *     strings as such. Inputs that were not consumed are released from the private workspace.
 *  4. A caffe2rs failure goes to Adapter::fail with the c2rs::Error (status and the library's
 *     message, e.g. "c2rs_operator_run: op (DequeueBlobs): …"), which raises the host's own
 *     exception type. Consumed inputs are handed back first, so a failed run loses nothing.
 *
 * The adapter (duck-typed; all member functions may throw the host's exceptions):
 *
 *   struct Adapter {
 *     void input(size_t i, c2rs::host::InputSlot& slot);   // describe input i
 *     void output_tensor(size_t o, c2rs::DLPackPtr t, bool writable);
 *     void output_strings(size_t o, const c2rs::Tensor& t); // a STRING tensor (copied)
 *     void output_object(size_t o, const c2rs::Object& obj);
 *     void output_bytes(size_t o, std::string_view bytes);
 *     [[noreturn]] void fail(const c2rs::Error& e);         // throw the host's exception
 *   };
 *
 * STRING tensors have no DLPack form: the adapter gives them as a ready c2rs::Tensor
 * (InputSlot::set_tensor(Tensor&&), a copy of the strings) and gets them with output_strings.
 *
 * Ownership: a DLPack tensor given to InputSlot::set_tensor belongs to caffe2rs afterwards (its
 * deleter runs exactly once, when caffe2rs is done with the buffer). A DLPackPtr given to
 * output_tensor belongs to the host. Thread safety: one OperatorBridge may run from several
 * threads only if the host's executor does that with its operators; cancel() may be called from
 * any thread.
 */
#ifndef CAFFE2RS_HOST_OP_HPP
#define CAFFE2RS_HOST_OP_HPP

#include "../caffe2rs.hpp"

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace c2rs {
namespace host {

/// What one input blob of the host holds, as the adapter describes it to the bridge. Exactly
/// one set_* call per input; none leaves the input empty.
class InputSlot {
 public:
  enum class Kind { Empty, Tensor, Built, Object, Bytes, Records };

  explicit InputSlot(bool consumed) noexcept : consumed_(consumed) {}

  /// True when the operator also writes this blob (an in-place output): move the host's value
  /// out of its blob rather than share it, so caffe2rs holds the only reference.
  bool consumed() const noexcept { return consumed_; }

  /// A tensor as a DLPack export of the host's buffer (zero copy). caffe2rs adopts it: its
  /// deleter runs exactly once. Set DLPACK_FLAG_BITMASK_READ_ONLY unless caffe2rs may write the
  /// buffer (it then holds the only reference the host will use).
  void set_tensor(DLPackPtr managed) {
    kind_ = Kind::Tensor;
    tensor_ = std::move(managed);
  }
  /// A tensor built as a c2rs::Tensor (STRING tensors, which DLPack cannot carry).
  void set_tensor(Tensor&& tensor) {
    kind_ = Kind::Built;
    built_ = std::move(tensor);
  }
  /// A caffe2rs object the host blob holds (shared, not copied). Borrowed: `object` must stay
  /// valid until the run that asked for it has fed its inputs (it is the host blob's).
  void set_object(const Object& object) {
    kind_ = Kind::Object;
    object_ = &object;
  }
  /// A byte string (copied).
  void set_bytes(std::string_view bytes) {
    kind_ = Kind::Bytes;
    bytes_.assign(bytes.data(), bytes.size());
  }
  /// A host record reader: `read` returns the next record (false at the end). `identity` names
  /// the host reader; the bridge wraps it once per identity as a caffe2rs DB reader. `read`
  /// runs on caffe2rs threads (prefetch workers), one call at a time.
  void set_records(const void* identity, RecordReadFn read) {
    kind_ = Kind::Records;
    identity_ = identity;
    read_ = std::move(read);
  }
  void set_empty() noexcept { kind_ = Kind::Empty; }

  Kind kind() const noexcept { return kind_; }
  DLPackPtr& tensor() noexcept { return tensor_; }
  Tensor& built() noexcept { return built_; }
  const Object& object() const noexcept { return *object_; }
  const std::string& bytes() const noexcept { return bytes_; }
  const void* identity() const noexcept { return identity_; }
  RecordReadFn& read() noexcept { return read_; }

 private:
  bool consumed_;
  Kind kind_ = Kind::Empty;
  DLPackPtr tensor_;
  Tensor built_;
  const Object* object_ = nullptr;
  std::string bytes_;
  const void* identity_ = nullptr;
  RecordReadFn read_;
};

/// One caffe2rs operator run on a host's blobs: a private caffe2rs workspace holding the
/// operator (built once from the serialized OperatorDef) and the per-input state the bridge
/// keeps across runs. Move-only.
class OperatorBridge {
 public:
  /// `op_def`: the host's serialized OperatorDef (its engine, e.g. "C2RS", falls back to
  /// caffe2rs's own implementation). `inputs`/`outputs`: the def's blob names, in order.
  /// Throws c2rs::Error when caffe2rs cannot build the operator (unknown type, schema, args).
  OperatorBridge(std::string_view op_def, std::vector<std::string> inputs,
                 std::vector<std::string> outputs)
      : inputs_(std::move(inputs)), outputs_(std::move(outputs)) {
    for (const std::string& name : inputs_) {
      ws_.create_blob(name);
      consumed_.push_back(std::find(outputs_.begin(), outputs_.end(), name) != outputs_.end());
    }
    readers_.resize(inputs_.size());
    op_ = Operator(ws_, op_def);
  }

  size_t num_inputs() const noexcept { return inputs_.size(); }
  size_t num_outputs() const noexcept { return outputs_.size(); }

  /// Runs the operator once on the host's blobs through `adapter` (see the file comment).
  template <class Adapter>
  void run(Adapter& adapter) {
    try {
      for (size_t i = 0; i < inputs_.size(); ++i) feed_input(adapter, i);
    } catch (...) {
      hand_back_consumed(adapter);
      throw;
    }
    try {
      op_.run();
    } catch (const Error& e) {
      hand_back_consumed(adapter);
      release_inputs();
      adapter.fail(e);
      throw;  // only reached when the adapter's fail() returns: it must not
    }
    for (size_t o = 0; o < outputs_.size(); ++o) hand_output(adapter, o);
    release_inputs();
  }

  /// Asks a blocking run (a queue wait) to stop; any thread.
  void cancel() const noexcept { op_.cancel(); }

  /// The private caffe2rs workspace (for tests and diagnostics).
  Workspace& workspace() noexcept { return ws_; }

 private:
  /// A host record reader wrapped as a caffe2rs DB reader, kept while the host blob holds the
  /// same reader (TensorProtosDBInput's prefetcher holds it across runs anyway).
  struct WrappedReader {
    const void* identity = nullptr;
    Object object;
  };

  template <class Adapter>
  void feed_input(Adapter& adapter, size_t i) {
    InputSlot slot(consumed_[i]);
    adapter.input(i, slot);
    const std::string& name = inputs_[i];
    switch (slot.kind()) {
      case InputSlot::Kind::Tensor:
        op_.set_input(i, Tensor::from_dlpack(slot.tensor()));
        break;
      case InputSlot::Kind::Built:
        op_.set_input(i, std::move(slot.built()));
        break;
      case InputSlot::Kind::Object:
        op_.set_input_object(i, slot.object());
        break;
      case InputSlot::Kind::Bytes:
        op_.set_input_object(i, Object::from_bytes(slot.bytes()));
        break;
      case InputSlot::Kind::Records: {
        WrappedReader& w = readers_[i];
        if (!w.object || w.identity != slot.identity()) {
          w.object = Object::from_db_reader(DbReader::from_callback(std::move(slot.read()), name));
          w.identity = slot.identity();
        }
        op_.set_input_object(i, w.object);
        break;
      }
      case InputSlot::Kind::Empty:
        op_.clear_input(i);
        break;
    }
  }

  template <class Adapter>
  void hand_output(Adapter& adapter, size_t o) {
    Workspace::Content c = op_.take_output(o);
    if (c.tensor && c.tensor.dtype() == C2RS_DTYPE_STRING) {
      adapter.output_strings(o, c.tensor);
    } else if (c.tensor) {
      bool writable = false;
      DLPackPtr m = std::move(c.tensor).into_dlpack(false, &writable);
      adapter.output_tensor(o, std::move(m), writable);
    } else if (c.object) {
      if (c.object.type_name() == "std::string") {
        adapter.output_bytes(o, c.object.bytes());
      } else {
        adapter.output_object(o, c.object);
      }
    }
    // An empty output (a consumed input the operator left empty) leaves the host blob empty.
  }

  /// Gives consumed inputs back to the host blobs they were moved out of (a failed run).
  template <class Adapter>
  void hand_back_consumed(Adapter& adapter) noexcept {
    for (size_t o = 0; o < outputs_.size(); ++o) {
      const auto in = std::find(inputs_.begin(), inputs_.end(), outputs_[o]);
      if (in == inputs_.end()) continue;
      try {
        hand_output(adapter, o);
      } catch (...) {
        // Best effort on a path that is already failing; the original error is reported.
      }
    }
  }

  /// Drops the private references to inputs that are not outputs (host buffers, objects).
  void release_inputs() noexcept {
    for (size_t i = 0; i < inputs_.size(); ++i) {
      if (consumed_[i]) continue;
      try {
        op_.clear_input(i);
      } catch (...) {
        // The private workspace knows every input name; nothing can fail here in practice.
      }
    }
  }

  Workspace ws_;
  std::vector<std::string> inputs_;
  std::vector<std::string> outputs_;
  std::vector<bool> consumed_;
  std::vector<WrappedReader> readers_;
  Operator op_;
};

}  // namespace host
}  // namespace c2rs

#endif  // CAFFE2RS_HOST_OP_HPP

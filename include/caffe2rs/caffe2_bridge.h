/*
 * caffe2rs/caffe2_bridge.h: the Caffe2 binding of caffe2rs/host_op.hpp. A Caffe2 C++ host
 * (PyTorch 1.x caffe2) switches an operator to caffe2rs by registering it under the engine
 * "C2RS" and setting `engine: "C2RS"` in its OperatorDef; everything else (its workspace,
 * blobs, tensors, executor, other operators) stays Caffe2's.
 *
 *   // once, in one .cc of the program, at global scope:
 *   C2RS_CAFFE2_DEFINE_TYPES();
 *   C2RS_CAFFE2_REGISTER_BLOBS_QUEUE_FAMILY();   // or C2RS_CAFFE2_REGISTER(TensorProtosDBInput);
 *   // then, per net: op.set_engine("C2RS") on the operators to switch
 *   // (c2rs::caffe2_bridge::switch_engine(&net, {"CreateBlobsQueue", ...}) does that).
 *
 * What crosses, and how:
 *  - CPU tensors cross zero-copy both ways through DLPack. A tensor caffe2rs hands back while
 *    holding the only reference (a prefetched batch, a dequeued record) becomes a Caffe2 tensor
 *    over caffe2rs's buffer, which the host may write in place; its memory returns to caffe2rs
 *    when the Caffe2 tensor drops it. A tensor caffe2rs still shares elsewhere is copied, so a
 *    Caffe2 write can never reach caffe2rs's copy. A Caffe2 tensor an operator consumes (the
 *    blobs of EnqueueBlobs, in place) is moved out of its blob and travels on without a copy.
 *    STRING tensors cross as copies of their strings (DLPack has no strings).
 *  - caffe2rs objects (a queue made by CreateBlobsQueue, a DB reader made by CreateDB) live in
 *    Caffe2 blobs as c2rs::caffe2_bridge::ObjectBlob; std::string blobs cross as bytes.
 *  - A Caffe2 `db::DBReader` blob (from Caffe2's own CreateDB) feeds a switched
 *    TensorProtosDBInput: caffe2rs reads its records through DBReader::Read on its prefetch
 *    threads (the reader must outlive the operator, as Caffe2's workspaces ensure).
 *  - A caffe2rs failure is thrown as Caffe2's exception (CAFFE_THROW, i.e. caffe2::EnforceNotMet
 *    / c10::Error) carrying the caffe2rs message. A type caffe2rs does not implement, or a def
 *    it refuses to build, throws caffe2::UnsupportedOperatorFeature from the constructor, so
 *    Caffe2 falls back to its own implementation (CreateOperator tries the next engine).
 *
 * What this header needs from Caffe2 (the complete list; cpp_tests/standin implements exactly
 * this for the tests, since there is no Caffe2 build here). Names as in PyTorch 1.x:
 *   caffe2/core/operator.h: caffe2::Operator<caffe2::CPUContext> (constructor taking
 *     (const OperatorDef&, Workspace*), virtual bool RunOnDevice()), OperatorBase::InputBlob(i),
 *     OutputBlob(i), InputSize(), OutputSize(), caffe2::UnsupportedOperatorFeature(std::string),
 *     REGISTER_CPU_OPERATOR_WITH_ENGINE(name, engine, class), CAFFE_THROW(...).
 *   caffe2::OperatorDef (protobuf): SerializeToString(std::string*), input_size(), input(i),
 *     output_size(), output(i), type(); NetDef::mutable_op() / set_engine() in switch_engine.
 *   caffe2/core/blob.h: Blob::IsType<T>(), Get<T>(), GetMutable<T>(), Reset(), GetRaw(),
 *     meta().name();
 *     caffe2::BlobIsTensorType(const Blob&, DeviceType), BlobGetMutableTensor(Blob*,
 *     DeviceType), BlobSetTensor(Blob*, Tensor&&); CAFFE_KNOWN_TYPE(T).
 *   caffe2/core/tensor.h: caffe2::Tensor(DeviceType), defined(), Resize(std::vector<int64_t>), sizes(),
 *     dtype() (a caffe2::TypeMeta), numel(), raw_data(), raw_mutable_data(TypeMeta),
 *     ShareExternalPointer(at::DataPtr&&, const TypeMeta&, size_t), UnsafeSharedInstance(),
 *     getIntrusivePtr() with use_count() and ->storage() (copyable, with use_count());
 *     caffe2::TypeMeta::Make<T>() and Match<T>() for float, double, at::Half, int8_t, int16_t,
 *     int32_t, int64_t, uint8_t, uint16_t, bool; caffe2::CPU.
 *   c10: at::DataPtr(void* data, void* ctx, void (*ctx_deleter)(void*), at::Device) with
 *     get_context(), get_deleter(), compare_exchange_deleter(expected, new);
 *     at::Device(at::DeviceType::CPU); c10::Storage::data_ptr() (non-const).
 *   caffe2/core/db.h: caffe2::db::DBReader::Read(std::string* key, std::string* value) const.
 * Define C2RS_CAFFE2_HAS_CANCEL (PyTorch >= 1.8, OperatorBase::Cancel) to forward cancellation.
 */
#ifndef CAFFE2RS_CAFFE2_BRIDGE_H
#define CAFFE2RS_CAFFE2_BRIDGE_H

#include <caffe2/core/blob.h>
#include <caffe2/core/db.h>
#include <caffe2/core/operator.h>
#include <caffe2/core/tensor.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "host_op.hpp"

namespace c2rs {
namespace caffe2_bridge {

/// What a Caffe2 blob holds for a caffe2rs object (a BlobsQueue, a DB reader, …). Registered
/// with Caffe2's type system by C2RS_CAFFE2_DEFINE_TYPES().
struct ObjectBlob {
  c2rs::Object object;
};

/// Sets engine "C2RS" on every operator of `net` whose type is in `types`; returns how many.
template <class NetDefT>
int switch_engine(NetDefT* net, std::initializer_list<const char*> types) {
  int switched = 0;
  for (auto& op : *net->mutable_op()) {
    for (const char* t : types) {
      if (op.type() == t) {
        op.set_engine("C2RS");
        ++switched;
      }
    }
  }
  return switched;
}

/// How many outputs the bridges of this process copied instead of handing over (tensors
/// caffe2rs still shared elsewhere); a diagnostic for zero-copy pipelines.
inline uint64_t copied_outputs() noexcept;

namespace detail {

inline std::atomic<uint64_t>& copied_outputs_counter() noexcept {
  static std::atomic<uint64_t> n{0};
  return n;
}

/// The Caffe2 element type of a DLPack dtype (throws for the ones Caffe2 has no CPU type for).
inline caffe2::TypeMeta meta_of(const DLDataType& dt) {
  if (dt.lanes == 1) {
    switch (dt.code) {
      case kDLFloat:
        if (dt.bits == 32) return caffe2::TypeMeta::Make<float>();
        if (dt.bits == 64) return caffe2::TypeMeta::Make<double>();
        if (dt.bits == 16) return caffe2::TypeMeta::Make<at::Half>();
        break;
      case kDLInt:
        if (dt.bits == 8) return caffe2::TypeMeta::Make<int8_t>();
        if (dt.bits == 16) return caffe2::TypeMeta::Make<int16_t>();
        if (dt.bits == 32) return caffe2::TypeMeta::Make<int32_t>();
        if (dt.bits == 64) return caffe2::TypeMeta::Make<int64_t>();
        break;
      case kDLUInt:
        if (dt.bits == 8) return caffe2::TypeMeta::Make<uint8_t>();
        if (dt.bits == 16) return caffe2::TypeMeta::Make<uint16_t>();
        break;
      case kDLBool:
        if (dt.bits == 8) return caffe2::TypeMeta::Make<bool>();
        break;
      default:
        break;
    }
  }
  CAFFE_THROW("caffe2rs bridge: DLPack dtype (code ", int(dt.code), ", bits ", int(dt.bits),
              ") has no Caffe2 CPU type");
}

/// The DLPack dtype of a Caffe2 element type; false for types that cannot cross (strings, …).
inline bool dl_dtype_of(const caffe2::TypeMeta& meta, DLDataType* out) {
  auto set = [out](uint8_t code, uint8_t bits) {
    *out = DLDataType{code, bits, 1};
    return true;
  };
  if (meta.Match<float>()) return set(kDLFloat, 32);
  if (meta.Match<double>()) return set(kDLFloat, 64);
  if (meta.Match<at::Half>()) return set(kDLFloat, 16);
  if (meta.Match<int8_t>()) return set(kDLInt, 8);
  if (meta.Match<int16_t>()) return set(kDLInt, 16);
  if (meta.Match<int32_t>()) return set(kDLInt, 32);
  if (meta.Match<int64_t>()) return set(kDLInt, 64);
  if (meta.Match<uint8_t>()) return set(kDLUInt, 8);
  if (meta.Match<uint16_t>()) return set(kDLUInt, 16);
  if (meta.Match<bool>()) return set(kDLBool, 8);
  return false;
}

/// The storage type of a Caffe2 tensor (c10::Storage), named without naming it.
using StorageOf = std::decay_t<decltype(std::declval<const caffe2::Tensor&>().getIntrusivePtr()->storage())>;

/// A DLPack export of a Caffe2 tensor: the context keeps the tensor's storage alive (not the
/// TensorImpl, which the host may resize or refill while caffe2rs still reads the buffer).
struct ExportedTensor {
  DLManagedTensorVersioned managed{};
  std::vector<int64_t> shape;
  StorageOf storage;

  static void deleter(DLManagedTensorVersioned* m) noexcept {
    delete static_cast<ExportedTensor*>(m->manager_ctx);
  }
};

/// Exports `t` (a CPU tensor) without copying; read-only unless `writable`.
inline DLPackPtr export_tensor(const caffe2::Tensor& t, bool writable, const std::string& blob) {
  DLDataType dt{};
  if (!dl_dtype_of(t.dtype(), &dt)) {
    CAFFE_THROW("caffe2rs bridge: blob ", blob, " holds a tensor of type ", t.dtype().name(),
                ", which cannot cross to caffe2rs (numeric CPU tensors only)");
  }
  auto* e = new ExportedTensor{{}, {}, t.getIntrusivePtr()->storage()};
  const auto sizes = t.sizes();
  e->shape.assign(sizes.begin(), sizes.end());
  DLManagedTensorVersioned& m = e->managed;
  m.version = DLPackVersion{DLPACK_MAJOR_VERSION, DLPACK_MINOR_VERSION};
  m.manager_ctx = e;
  m.deleter = &ExportedTensor::deleter;
  m.flags = writable ? 0 : DLPACK_FLAG_BITMASK_READ_ONLY;
  m.dl_tensor.data = t.numel() == 0 ? nullptr : const_cast<void*>(t.raw_data());
  m.dl_tensor.device = DLDevice{kDLCPU, 0};
  m.dl_tensor.ndim = static_cast<int32_t>(e->shape.size());
  m.dl_tensor.dtype = dt;
  m.dl_tensor.shape = e->shape.empty() ? nullptr : e->shape.data();
  m.dl_tensor.strides = nullptr;
  m.dl_tensor.byte_offset = 0;
  return DLPackPtr(&m);
}

/// A copy of a Caffe2 STRING tensor as a caffe2rs STRING tensor (strings have no DLPack form).
inline c2rs::Tensor strings_of(const caffe2::Tensor& t) {
  const auto sizes = t.sizes();
  c2rs::Tensor out = c2rs::Tensor::create(C2RS_DTYPE_STRING, std::vector<int64_t>(sizes.begin(), sizes.end()));
  const auto* src = static_cast<const std::string*>(t.raw_data());
  for (int64_t i = 0; i < t.numel(); ++i) out.set_string(static_cast<size_t>(i), src[i]);
  return out;
}

/// Runs a DLPack tensor's deleter (the at::DataPtr context deleter of an imported tensor).
inline void delete_managed(void* ctx) noexcept {
  auto* m = static_cast<DLManagedTensorVersioned*>(ctx);
  if (m != nullptr && m->deleter != nullptr) m->deleter(m);
}

/// A deleter that leaves its context alone (the context was handed back to caffe2rs).
inline void keep_context(void*) noexcept {}

/// When `t`'s buffer is a caffe2rs buffer this bridge imported (its storage's DataPtr context
/// is the DLPack export and the deleter delete_managed) and the tensor still describes it
/// unchanged (same data, dtype, dims), takes that export back out of the storage and returns it,
/// so caffe2rs gets its own buffer back instead of a new layer around it: a buffer travelling
/// back and forth (a queue, a host operator between caffe2rs operators) never accumulates
/// wrappers. nullptr otherwise. Call only for a tensor the caller holds alone.
inline DLManagedTensorVersioned* reclaim_export(const caffe2::Tensor& t) {
  StorageOf storage = t.getIntrusivePtr()->storage();
  auto& data_ptr = storage.data_ptr();
  if (data_ptr.get_deleter() != &delete_managed) return nullptr;
  auto* m = static_cast<DLManagedTensorVersioned*>(data_ptr.get_context());
  const DLTensor& d = m->dl_tensor;
  const auto sizes = t.sizes();
  DLDataType dt{};
  if (m->flags != 0 || d.data != t.raw_data() || d.byte_offset != 0 || !dl_dtype_of(t.dtype(), &dt) ||
      dt.code != d.dtype.code || dt.bits != d.dtype.bits || dt.lanes != d.dtype.lanes ||
      static_cast<size_t>(d.ndim) != sizes.size()) {
    return nullptr;
  }
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (d.shape[i] != sizes[i]) return nullptr;
  }
  if (!data_ptr.compare_exchange_deleter(&delete_managed, &keep_context)) return nullptr;
  return m;
}

}  // namespace detail

inline uint64_t copied_outputs() noexcept { return detail::copied_outputs_counter().load(); }

/// A Caffe2 operator running the caffe2rs operator of the same type on Caffe2's blobs.
/// Register it under engine "C2RS" (C2RS_CAFFE2_REGISTER) for each type to switch.
class BridgedOperator final : public caffe2::Operator<caffe2::CPUContext> {
 public:
  BridgedOperator(const caffe2::OperatorDef& def, caffe2::Workspace* ws)
      : caffe2::Operator<caffe2::CPUContext>(def, ws), bridge_(make_bridge(def)) {
    for (int i = 0; i < def.input_size(); ++i) input_names_.push_back(def.input(i));
    for (int i = 0; i < def.input_size(); ++i) {
      int out = -1;
      for (int o = 0; o < def.output_size(); ++o) {
        if (def.output(o) == def.input(i)) out = o;
      }
      in_place_output_.push_back(out);
    }
  }

  bool RunOnDevice() override {
    Adapter adapter{this};
    bridge_.run(adapter);
    return true;
  }

#ifdef C2RS_CAFFE2_HAS_CANCEL
  void Cancel() override { bridge_.cancel(); }
#endif

  /// The bridge (for tests and diagnostics).
  c2rs::host::OperatorBridge& bridge() noexcept { return bridge_; }

 private:
  static c2rs::host::OperatorBridge make_bridge(const caffe2::OperatorDef& def) {
    std::string bytes;
    def.SerializeToString(&bytes);
    std::vector<std::string> in, out;
    for (int i = 0; i < def.input_size(); ++i) in.push_back(def.input(i));
    for (int i = 0; i < def.output_size(); ++i) out.push_back(def.output(i));
    try {
      return c2rs::host::OperatorBridge(bytes, std::move(in), std::move(out));
    } catch (const c2rs::Error& e) {
      if (e.status() == C2RS_NOT_FOUND) {
        // caffe2rs has no such operator: Caffe2 tries the next engine (its own implementation).
        throw caffe2::UnsupportedOperatorFeature(std::string("caffe2rs has no operator ") +
                                                 def.type() + ": " + e.what());
      }
      CAFFE_THROW(e.what());  // a def caffe2rs refuses (schema, arguments) is an error
    }
  }

  /// The host_op.hpp adapter over this operator's Caffe2 blobs.
  struct Adapter {
    BridgedOperator* op;

    void input(size_t i, c2rs::host::InputSlot& slot) {
      const caffe2::Blob& blob = op->InputBlob(static_cast<int>(i));
      const std::string& name = op->input_names_[i];
      if (caffe2::BlobIsTensorType(blob, caffe2::CPU) && !blob.Get<caffe2::Tensor>().defined()) {
        slot.set_empty();  // a moved-from tensor holds nothing
      } else if (caffe2::BlobIsTensorType(blob, caffe2::CPU)) {
        if (blob.Get<caffe2::Tensor>().dtype().template Match<std::string>()) {
          slot.set_tensor(detail::strings_of(blob.Get<caffe2::Tensor>()));  // copied
        } else if (slot.consumed()) {
          // In place: move the tensor out of its blob, so caffe2rs holds the only reference.
          caffe2::Blob* owner = op->OutputBlob(op->in_place_output_[i]);
          caffe2::Tensor t = std::move(*caffe2::BlobGetMutableTensor(owner, caffe2::CPU));
          owner->Reset();
          const bool sole = t.getIntrusivePtr().use_count() == 1 &&
                            t.getIntrusivePtr()->storage().use_count() == 1;
          DLManagedTensorVersioned* own = sole ? detail::reclaim_export(t) : nullptr;
          slot.set_tensor(own != nullptr ? DLPackPtr(own) : detail::export_tensor(t, sole, name));
        } else if (blob.Get<caffe2::Tensor>().dtype().template Match<std::string>()) {
          slot.set_tensor(detail::strings_of(blob.Get<caffe2::Tensor>()));
        } else {
          slot.set_tensor(detail::export_tensor(blob.Get<caffe2::Tensor>(), false, name));
        }
      } else if (blob.IsType<ObjectBlob>()) {
        slot.set_object(blob.Get<ObjectBlob>().object);
      } else if (blob.IsType<std::string>()) {
        slot.set_bytes(blob.Get<std::string>());
      } else if (blob.IsType<caffe2::db::DBReader>()) {
        const caffe2::db::DBReader* reader = &blob.Get<caffe2::db::DBReader>();
        slot.set_records(reader, [reader](std::string& key, std::string& value) {
          reader->Read(&key, &value);
          return true;
        });
      } else if (blob.GetRaw() == nullptr) {
        slot.set_empty();
      } else {
        CAFFE_THROW("caffe2rs bridge: input ", name, " holds ", blob.meta().name(),
                    ", which caffe2rs cannot take");
      }
    }

    void output_tensor(size_t o, DLPackPtr m, bool writable) {
      caffe2::Blob* blob = op->OutputBlob(static_cast<int>(o));
      const DLTensor& t = m->dl_tensor;
      const caffe2::TypeMeta meta = detail::meta_of(t.dtype);
      std::vector<int64_t> dims(t.shape, t.shape + t.ndim);
      caffe2::Tensor out(caffe2::CPU);
      out.Resize(dims);
      const size_t nbytes = static_cast<size_t>(out.numel()) * meta.itemsize();
      void* data = t.data == nullptr ? nullptr : static_cast<char*>(t.data) + t.byte_offset;
      if (writable) {
        // Zero copy: the Caffe2 tensor adopts caffe2rs's buffer; the DLPack deleter runs when
        // Caffe2 lets go of it.
        DLManagedTensorVersioned* raw = m.release();
        out.ShareExternalPointer(
            at::DataPtr(data, raw, &detail::delete_managed, at::Device(at::DeviceType::CPU)), meta,
            nbytes);
      } else {
        // Shared inside caffe2rs: copy, so a Caffe2 write never reaches caffe2rs's copy.
        void* dst = out.raw_mutable_data(meta);
        if (nbytes > 0) std::memcpy(dst, data, nbytes);
        detail::copied_outputs_counter().fetch_add(1, std::memory_order_relaxed);
      }
      caffe2::BlobSetTensor(blob, std::move(out));
    }

    void output_strings(size_t o, const c2rs::Tensor& t) {
      caffe2::Tensor out(caffe2::CPU);
      out.Resize(t.dims());
      auto* dst = static_cast<std::string*>(out.raw_mutable_data(caffe2::TypeMeta::Make<std::string>()));
      for (int64_t i = 0; i < out.numel(); ++i) {
        dst[i] = t.string_at(static_cast<size_t>(i));
      }
      caffe2::BlobSetTensor(op->OutputBlob(static_cast<int>(o)), std::move(out));
    }

    void output_object(size_t o, const c2rs::Object& obj) {
      op->OutputBlob(static_cast<int>(o))->template GetMutable<ObjectBlob>()->object = obj;
    }

    void output_bytes(size_t o, std::string_view bytes) {
      *op->OutputBlob(static_cast<int>(o))->template GetMutable<std::string>() =
          std::string(bytes);
    }

    [[noreturn]] void fail(const c2rs::Error& e) { CAFFE_THROW(e.what()); }
  };

  c2rs::host::OperatorBridge bridge_;
  std::vector<std::string> input_names_;
  std::vector<int> in_place_output_;
};

}  // namespace caffe2_bridge
}  // namespace c2rs

/// Registers the bridge's blob type with Caffe2's type system; once per program, at global scope.
#define C2RS_CAFFE2_DEFINE_TYPES() \
  namespace caffe2 {               \
  CAFFE_KNOWN_TYPE(::c2rs::caffe2_bridge::ObjectBlob)  \
  }                                \
  static_assert(true, "")

/// Registers caffe2rs's implementation of Caffe2 operator `Type` under engine "C2RS".
#define C2RS_CAFFE2_REGISTER(Type) \
  REGISTER_CPU_OPERATOR_WITH_ENGINE(Type, C2RS, ::c2rs::caffe2_bridge::BridgedOperator)

/// The BlobsQueue operator family (queue_ops), all under engine "C2RS".
#define C2RS_CAFFE2_REGISTER_BLOBS_QUEUE_FAMILY()   \
  C2RS_CAFFE2_REGISTER(CreateBlobsQueue);           \
  C2RS_CAFFE2_REGISTER(EnqueueBlobs);               \
  C2RS_CAFFE2_REGISTER(DequeueBlobs);               \
  C2RS_CAFFE2_REGISTER(CloseBlobsQueue);            \
  C2RS_CAFFE2_REGISTER(SafeEnqueueBlobs);           \
  C2RS_CAFFE2_REGISTER(SafeDequeueBlobs);           \
  C2RS_CAFFE2_REGISTER(WeightedSampleDequeueBlobs); \
  C2RS_CAFFE2_REGISTER(CreateBlobsQueueDB)

/// The DB operator family: CreateDB and TensorProtosDBInput.
#define C2RS_CAFFE2_REGISTER_DB_FAMILY() \
  C2RS_CAFFE2_REGISTER(CreateDB);        \
  C2RS_CAFFE2_REGISTER(TensorProtosDBInput)

#endif  // CAFFE2RS_CAFFE2_BRIDGE_H

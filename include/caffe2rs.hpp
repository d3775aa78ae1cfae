/*
 * caffe2rs.hpp: header-only C++17 wrapper over the caffe2rs C ABI (caffe2rs.h).
 *
 * - Every failing C call becomes a c2rs::Error (a std::runtime_error) carrying the C2RS_*
 *   status and the library's message (c2rs_last_error_message()).
 * - Every handle is held by a move-only RAII class that calls the matching *_free exactly once.
 *   A moved-from object is empty (operator bool is false) and frees nothing.
 * - Thread safety is that of the C function each method forwards to (see caffe2rs.h).
 *
 * Hand-written (not generated); link caffe2rs::caffe2rs and include this header.
 */
#ifndef CAFFE2RS_HPP
#define CAFFE2RS_HPP

#include "caffe2rs.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace c2rs {

/// A failed caffe2rs call: `status()` is the C2RS_* code, `what()` the library's message
/// (it names the C function and the argument at fault).
class Error : public std::runtime_error {
 public:
  Error(int32_t status, const std::string& message)
      : std::runtime_error(message), status_(status), message_(message) {}
  /// `printable` becomes what() (a C string: each NUL of a name in it written as \0);
  /// `exact` is the message byte for byte.
  Error(int32_t status, const std::string& printable, std::string exact)
      : std::runtime_error(printable), status_(status), message_(std::move(exact)) {}

  /// The C2RS_* status of the failed call (never C2RS_OK).
  int32_t status() const noexcept { return status_; }
  /// The message byte for byte: a blob or net name in it keeps its NUL bytes (what() cannot).
  const std::string& message() const noexcept { return message_; }

 private:
  int32_t status_;
  std::string message_;
};

/// Throws c2rs::Error when `status` is not C2RS_OK, with this thread's last error message.
/// Call it right after the C call whose status it is (the message is per thread and is replaced
/// by the next failing call).
/// Error::message() keeps every byte of the names in the message, NUL included
/// (c2rs_last_error_message_n); what() is c2rs_last_error_message().
inline void check(int32_t status) {
  if (status != C2RS_OK) {
    const char* printable = c2rs_last_error_message();
    size_t len = 0;
    const char* exact = c2rs_last_error_message_n(&len);
    throw Error(status, printable != nullptr ? printable : "",
                exact != nullptr ? std::string(exact, len) : std::string());
  }
}

/// `(C2RS_ABI_MAJOR << 16) | C2RS_ABI_MINOR` of the loaded library.
inline uint32_t abi_version() noexcept { return c2rs_abi_version(); }

/// Version, git revision, ABI and features of the loaded library.
inline std::string version_string() { return c2rs_version_string(); }

/// The macro name of a status, e.g. "C2RS_PARSE_ERROR".
inline std::string status_name(int32_t status) { return c2rs_status_name(status); }

/// Throws C2RS_UNSUPPORTED when the loaded library's ABI major differs from this header's or its
/// minor is older (it may lack functions this header declares).
inline void check_abi() {
  const uint32_t loaded = c2rs_abi_version();
  if ((loaded >> 16) != C2RS_ABI_MAJOR || (loaded & 0xffffu) < C2RS_ABI_MINOR) {
    throw Error(C2RS_UNSUPPORTED,
                "c2rs::check_abi: library ABI " + std::to_string(loaded >> 16) + "." +
                    std::to_string(loaded & 0xffffu) + ", header ABI " +
                    std::to_string(C2RS_ABI_MAJOR) + "." + std::to_string(C2RS_ABI_MINOR));
  }
}

/// Name of a dtype number ("FLOAT", "INT64", ...); "DTYPE_<n>" for unknown numbers.
inline std::string dtype_name(int32_t dtype) {
  switch (dtype) {
    case C2RS_DTYPE_FLOAT: return "FLOAT";
    case C2RS_DTYPE_INT32: return "INT32";
    case C2RS_DTYPE_BYTE: return "BYTE";
    case C2RS_DTYPE_STRING: return "STRING";
    case C2RS_DTYPE_BOOL: return "BOOL";
    case C2RS_DTYPE_UINT8: return "UINT8";
    case C2RS_DTYPE_INT8: return "INT8";
    case C2RS_DTYPE_UINT16: return "UINT16";
    case C2RS_DTYPE_INT16: return "INT16";
    case C2RS_DTYPE_INT64: return "INT64";
    case C2RS_DTYPE_FLOAT16: return "FLOAT16";
    case C2RS_DTYPE_DOUBLE: return "DOUBLE";
    default: return "DTYPE_" + std::to_string(dtype);
  }
}

namespace detail {
struct BufferFree {
  void operator()(c2rs_buffer* p) const noexcept { c2rs_buffer_free(p); }
};
struct StringListFree {
  void operator()(c2rs_string_list* p) const noexcept { c2rs_string_list_free(p); }
};
struct TensorFree {
  void operator()(c2rs_tensor* p) const noexcept { c2rs_tensor_free(p); }
};
struct WorkspaceFree {
  void operator()(c2rs_workspace* p) const noexcept { c2rs_workspace_free(p); }
};
struct TensorListFree {
  void operator()(c2rs_tensor_list* p) const noexcept { c2rs_tensor_list_free(p); }
};
struct BlobHandleFree {
  void operator()(c2rs_blob_handle* p) const noexcept { c2rs_blob_handle_free(p); }
};

/// Whether elements of dtype `dtype` may be read as `T` (same size and representation).
template <typename T>
constexpr bool element_type_matches(int32_t dtype) noexcept {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_same_v<U, float>) return dtype == C2RS_DTYPE_FLOAT;
  else if constexpr (std::is_same_v<U, double>) return dtype == C2RS_DTYPE_DOUBLE;
  else if constexpr (std::is_same_v<U, int32_t>) return dtype == C2RS_DTYPE_INT32;
  else if constexpr (std::is_same_v<U, int64_t>) return dtype == C2RS_DTYPE_INT64;
  else if constexpr (std::is_same_v<U, int16_t>) return dtype == C2RS_DTYPE_INT16;
  else if constexpr (std::is_same_v<U, int8_t>) return dtype == C2RS_DTYPE_INT8;
  // FLOAT16 is stored as its uint16_t bit pattern.
  else if constexpr (std::is_same_v<U, uint16_t>)
    return dtype == C2RS_DTYPE_UINT16 || dtype == C2RS_DTYPE_FLOAT16;
  // BYTE and BOOL are one byte per element (BOOL 0 or 1).
  else if constexpr (std::is_same_v<U, uint8_t>)
    return dtype == C2RS_DTYPE_UINT8 || dtype == C2RS_DTYPE_BYTE || dtype == C2RS_DTYPE_BOOL;
  else if constexpr (std::is_same_v<U, bool>) return sizeof(bool) == 1 && dtype == C2RS_DTYPE_BOOL;
  else return false;
}

/// Read accessors shared by the owning Tensor and the borrowed TensorView (CRTP: `Derived`
/// provides `const c2rs_tensor* handle() const`).
template <typename Derived>
class TensorReader {
 public:
  /// Caffe2 dtype number (C2RS_DTYPE_*).
  int32_t dtype() const {
    int32_t out = 0;
    check(c2rs_tensor_dtype(h(), &out));
    return out;
  }

  /// Dims (empty for a scalar).
  std::vector<int64_t> dims() const {
    const int64_t* dims = nullptr;
    size_t ndim = 0;
    check(c2rs_tensor_dims(h(), &dims, &ndim));
    return ndim == 0 ? std::vector<int64_t>{} : std::vector<int64_t>(dims, dims + ndim);
  }

  /// Number of elements (1 for a scalar).
  int64_t numel() const {
    int64_t out = 0;
    check(c2rs_tensor_numel(h(), &out));
    return out;
  }

  /// Read-only elements as `T` (see element_type_matches; FLOAT16 reads as uint16_t bits).
  /// Throws C2RS_TYPE_MISMATCH when `T` does not fit the dtype. nullptr when empty.
  /// Borrowed: valid until the tensor is freed or mutable_data() is called on it.
  template <typename T>
  const T* data() const {
    if (!element_type_matches<T>(dtype())) {
      throw Error(C2RS_TYPE_MISMATCH, "c2rs::Tensor::data: element type does not match dtype " +
                                          dtype_name(dtype()));
    }
    const void* out = nullptr;
    check(c2rs_tensor_data(h(), &out));
    return static_cast<const T*>(out);
  }

  /// The elements copied into a vector.
  template <typename T>
  std::vector<T> to_vector() const {
    const T* p = data<T>();
    const auto n = static_cast<size_t>(numel());
    return p == nullptr ? std::vector<T>{} : std::vector<T>(p, p + n);
  }

  /// Element `i` of a STRING tensor, borrowed: valid until the tensor is freed or element `i`
  /// is set again.
  std::string_view string_view_at(size_t i) const {
    const uint8_t* ptr = nullptr;
    size_t len = 0;
    check(c2rs_tensor_string_at(h(), i, &ptr, &len));
    return len == 0 ? std::string_view{}
                    : std::string_view(reinterpret_cast<const char*>(ptr), len);
  }

  /// Element `i` of a STRING tensor, copied.
  std::string string_at(size_t i) const { return std::string(string_view_at(i)); }

  /// Serializes as a Caffe2 TensorProto.
  std::unique_ptr<c2rs_buffer, BufferFree> to_proto_handle() const {
    c2rs_buffer* out = nullptr;
    check(c2rs_tensor_to_proto(h(), &out));
    return std::unique_ptr<c2rs_buffer, BufferFree>(out);
  }

 private:
  const c2rs_tensor* h() const { return static_cast<const Derived*>(this)->handle(); }
};
}  // namespace detail

/// An owned byte buffer from the library (serialized protobufs, JSON). Move-only.
class Buffer {
 public:
  Buffer() = default;
  /// Adopts `raw` (may be NULL); it will be released with c2rs_buffer_free.
  explicit Buffer(c2rs_buffer* raw) noexcept : p_(raw) {}

  const uint8_t* data() const noexcept { return c2rs_buffer_data(p_.get()); }
  size_t size() const noexcept { return c2rs_buffer_len(p_.get()); }
  /// The bytes, borrowed: valid until this buffer is freed.
  std::string_view view() const noexcept {
    return size() == 0 ? std::string_view{}
                       : std::string_view(reinterpret_cast<const char*>(data()), size());
  }
  std::string str() const { return std::string(view()); }
  std::vector<uint8_t> bytes() const {
    return size() == 0 ? std::vector<uint8_t>{} : std::vector<uint8_t>(data(), data() + size());
  }

  c2rs_buffer* get() const noexcept { return p_.get(); }
  /// Gives up ownership; the caller must c2rs_buffer_free the result.
  c2rs_buffer* release() noexcept { return p_.release(); }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  std::unique_ptr<c2rs_buffer, detail::BufferFree> p_;
};

/// An owned list of strings from the library. Move-only.
class StringList {
 public:
  StringList() = default;
  /// Adopts `raw` (may be NULL); it will be released with c2rs_string_list_free.
  explicit StringList(c2rs_string_list* raw) noexcept : p_(raw) {}

  size_t size() const noexcept { return c2rs_string_list_len(p_.get()); }
  /// String `i` byte for byte (a blob or net name may hold NUL bytes), borrowed: valid until
  /// the list is freed. Throws C2RS_INVALID_ARGUMENT when `i` is out of range.
  std::string_view operator[](size_t i) const {
    const char* s = nullptr;
    size_t len = 0;
    check(c2rs_string_list_get_n(p_.get(), i, &s, &len));
    return std::string_view(s, len);
  }
  std::vector<std::string> to_vector() const {
    std::vector<std::string> out;
    out.reserve(size());
    for (size_t i = 0; i < size(); ++i) out.emplace_back((*this)[i]);
    return out;
  }

  c2rs_string_list* get() const noexcept { return p_.get(); }
  c2rs_string_list* release() noexcept { return p_.release(); }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  std::unique_ptr<c2rs_string_list, detail::StringListFree> p_;
};

/// A DLPack export owned by the host: the unique_ptr calls the tensor's deleter exactly once.
struct DLPackDeleter {
  void operator()(DLManagedTensorVersioned* m) const noexcept {
    if (m != nullptr && m->deleter != nullptr) m->deleter(m);
  }
};
using DLPackPtr = std::unique_ptr<DLManagedTensorVersioned, DLPackDeleter>;

/// A borrowed, read-only tensor (an entry of a TensorList, or a view of a Tensor). It does not
/// free anything; it is valid as long as the object it was taken from.
class TensorView : public detail::TensorReader<TensorView> {
 public:
  explicit TensorView(const c2rs_tensor* raw) noexcept : p_(raw) {}
  const c2rs_tensor* handle() const noexcept { return p_; }

  /// Serializes as a Caffe2 TensorProto.
  Buffer to_proto() const { return Buffer(to_proto_handle().release()); }

 private:
  const c2rs_tensor* p_;
};

/// An owned CPU tensor. Move-only; the destructor calls c2rs_tensor_free.
class Tensor : public detail::TensorReader<Tensor> {
 public:
  Tensor() = default;
  /// Adopts `raw` (may be NULL); it will be released with c2rs_tensor_free.
  explicit Tensor(c2rs_tensor* raw) noexcept : p_(raw) {}

  /// A zero-filled tensor (c2rs_tensor_new); empty `dims` makes a scalar.
  static Tensor create(int32_t dtype, const std::vector<int64_t>& dims) {
    c2rs_tensor* out = nullptr;
    check(c2rs_tensor_new(dtype, dims.empty() ? nullptr : dims.data(), dims.size(), &out));
    return Tensor(out);
  }
  static Tensor create(int32_t dtype, std::initializer_list<int64_t> dims) {
    return create(dtype, std::vector<int64_t>(dims));
  }

  /// Decodes a serialized Caffe2 TensorProto.
  static Tensor from_proto(const void* bytes, size_t len) {
    c2rs_tensor* out = nullptr;
    check(c2rs_tensor_from_proto(static_cast<const uint8_t*>(bytes), len, &out));
    return Tensor(out);
  }
  static Tensor from_proto(std::string_view bytes) {
    return from_proto(bytes.data(), bytes.size());
  }

  /// Adopts a DLPack tensor without copying. On success the tensor owns `in` (its deleter runs
  /// once, when the last holder is freed); on failure this throws and the caller still owns
  /// `in`.
  static Tensor from_dlpack(DLManagedTensorVersioned* in) {
    c2rs_tensor* out = nullptr;
    check(c2rs_tensor_from_dlpack(in, &out));
    return Tensor(out);
  }
  /// As above; `in` is released only on success (on failure it still owns the export).
  static Tensor from_dlpack(DLPackPtr& in) {
    Tensor t = from_dlpack(in.get());
    (void)in.release();
    return t;
  }

  /// Serializes as a Caffe2 TensorProto.
  Buffer to_proto() const { return Buffer(to_proto_handle().release()); }

  /// Exports without copying (read-only DLPack v1); the export outlives this tensor.
  DLPackPtr to_dlpack() const {
    DLManagedTensorVersioned* out = nullptr;
    check(c2rs_tensor_to_dlpack(p_.get(), &out));
    return DLPackPtr(out);
  }

  /// Writable elements as `T`; copies first when the storage is shared (see
  /// c2rs_tensor_mutable_data). Throws C2RS_TYPE_MISMATCH when `T` does not fit the dtype.
  template <typename T>
  T* mutable_data() {
    if (!detail::element_type_matches<T>(dtype())) {
      throw Error(C2RS_TYPE_MISMATCH,
                  "c2rs::Tensor::mutable_data: element type does not match dtype " +
                      dtype_name(dtype()));
    }
    void* out = nullptr;
    check(c2rs_tensor_mutable_data(p_.get(), &out));
    return static_cast<T*>(out);
  }

  /// Sets element `i` of a STRING tensor to a copy of `value` (any bytes).
  void set_string(size_t i, std::string_view value) {
    check(c2rs_tensor_set_string(p_.get(), i, reinterpret_cast<const uint8_t*>(value.data()),
                                 value.size()));
  }

  const c2rs_tensor* handle() const noexcept { return p_.get(); }
  c2rs_tensor* get() const noexcept { return p_.get(); }
  /// Gives up ownership; the caller must c2rs_tensor_free the result.
  c2rs_tensor* release() noexcept { return p_.release(); }
  explicit operator bool() const noexcept { return p_ != nullptr; }
  TensorView view() const noexcept { return TensorView(p_.get()); }
  operator TensorView() const noexcept { return view(); }

 private:
  std::unique_ptr<c2rs_tensor, detail::TensorFree> p_;
};

/// An owned list of tensors (a decoded TensorProtos). Move-only.
class TensorList {
 public:
  TensorList() = default;
  /// Adopts `raw` (may be NULL); it will be released with c2rs_tensor_list_free.
  explicit TensorList(c2rs_tensor_list* raw) noexcept : p_(raw) {}

  /// Decodes a serialized Caffe2 TensorProtos (a DB record).
  static TensorList decode(const void* bytes, size_t len) {
    c2rs_tensor_list* out = nullptr;
    check(c2rs_tensor_protos_decode(static_cast<const uint8_t*>(bytes), len, &out));
    return TensorList(out);
  }
  static TensorList decode(std::string_view bytes) { return decode(bytes.data(), bytes.size()); }

  size_t size() const noexcept { return c2rs_tensor_list_len(p_.get()); }
  /// Tensor `i`, borrowed: valid until the list is freed.
  TensorView operator[](size_t i) const {
    const c2rs_tensor* out = nullptr;
    check(c2rs_tensor_list_get(p_.get(), i, &out));
    return TensorView(out);
  }

  c2rs_tensor_list* get() const noexcept { return p_.get(); }
  c2rs_tensor_list* release() noexcept { return p_.release(); }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  std::unique_ptr<c2rs_tensor_list, detail::TensorListFree> p_;
};

/// Serializes tensors, in order, as one Caffe2 TensorProtos (a DB record).
inline Buffer encode_tensor_protos(const std::vector<TensorView>& tensors) {
  std::vector<const c2rs_tensor*> handles;
  handles.reserve(tensors.size());
  for (const TensorView& t : tensors) handles.push_back(t.handle());
  c2rs_buffer* out = nullptr;
  check(c2rs_tensor_protos_encode(handles.empty() ? nullptr : handles.data(), handles.size(),
                                  &out));
  return Buffer(out);
}


/// A blob looked up by name once (Workspace::blob_handle): feeding, fetching and checking it
/// costs no name lookup. Refers to the blob, not the name (a rename keeps it working); once the
/// blob is removed and its name given to another blob, feed and fetch throw
/// (C2RS_ENFORCE_NOT_MET). Keeps its workspace alive. Move-only; thread-safe.
class BlobHandle {
 public:
  BlobHandle() = default;
  /// Adopts `raw` (may be NULL); it will be released with c2rs_blob_handle_free.
  explicit BlobHandle(c2rs_blob_handle* raw) noexcept : p_(raw) {}

  /// Whether the blob is still in its workspace (false once removed).
  bool present() const {
    bool out = false;
    check(c2rs_blob_handle_has(p_.get(), &out));
    return out;
  }
  /// Stores a copy of `t` (into the blob's own buffer when dtype and dims match).
  void feed(const Tensor& t) { check(c2rs_blob_handle_feed(p_.get(), t.handle())); }
  /// Stores `t` without a copy (moved-from `t` is empty).
  void feed(Tensor&& t) { check(c2rs_blob_handle_feed_move(p_.get(), t.release())); }
  /// A snapshot copy the caller owns.
  Tensor fetch() const {
    c2rs_tensor* out = nullptr;
    check(c2rs_blob_handle_fetch(p_.get(), &out));
    return Tensor(out);
  }

  c2rs_blob_handle* get() const noexcept { return p_.get(); }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  std::unique_ptr<c2rs_blob_handle, detail::BlobHandleFree> p_;
};

/// A workspace: named blobs and nets (Caffe2's python `workspace` module, as an object).
/// Move-only; the handle is reference-counted inside the library, so a child keeps its parent
/// alive. Thread-safe: calls from many threads on one workspace are fine.
class Workspace {
 public:
  /// A new workspace, optionally a child of `parent` (lookups fall back to the parent).
  explicit Workspace(Workspace* parent = nullptr) {
    c2rs_workspace* out = nullptr;
    check(c2rs_workspace_new(parent != nullptr ? parent->get() : nullptr, &out));
    p_.reset(out);
  }

  // Names are byte strings: every method below passes `name` as (pointer, length), so a
  // std::string holding NUL bytes names exactly that blob or net (the *_n C functions). Names
  // must be UTF-8; other bytes throw C2RS_INVALID_ARGUMENT.

  bool has_blob(std::string_view name) const {
    bool out = false;
    check(c2rs_workspace_has_blob_n(p_.get(), name.data(), name.size(), &out));
    return out;
  }
  void create_blob(std::string_view name) {
    check(c2rs_workspace_create_blob_n(p_.get(), name.data(), name.size()));
  }
  /// Removes a local blob; false when there was none.
  bool remove_blob(std::string_view name) {
    bool removed = false;
    check(c2rs_workspace_remove_blob_n(p_.get(), name.data(), name.size(), &removed));
    return removed;
  }
  /// Blob names: local ones sorted, then (with `include_shared`) forwarded and parent names.
  std::vector<std::string> blob_names(bool include_shared = true) const {
    c2rs_string_list* out = nullptr;
    check(c2rs_workspace_blob_names(p_.get(), include_shared, &out));
    return StringList(out).to_vector();
  }
  /// FeedBlob: stores a copy of `t` under `name`.
  void feed(std::string_view name, const Tensor& t) {
    check(c2rs_workspace_feed_n(p_.get(), name.data(), name.size(), t.handle()));
  }
  /// FeedBlob without a copy: the workspace takes the tensor (moved-from `t` is empty).
  void feed(std::string_view name, Tensor&& t) {
    check(c2rs_workspace_feed_move_n(p_.get(), name.data(), name.size(), t.release()));
  }
  /// FetchBlob: a snapshot copy the caller owns.
  Tensor fetch(std::string_view name) const {
    c2rs_tensor* out = nullptr;
    check(c2rs_workspace_fetch_n(p_.get(), name.data(), name.size(), &out));
    return Tensor(out);
  }
  /// A handle on blob `name` (local, forwarded or a parent's) for repeated feed/fetch without
  /// a name lookup per call; with `create`, a missing name gets an empty blob first, otherwise
  /// it throws C2RS_NOT_FOUND.
  BlobHandle blob_handle(std::string_view name, bool create = false) {
    c2rs_blob_handle* out = nullptr;
    check(c2rs_workspace_blob_handle_n(p_.get(), name.data(), name.size(), create, &out));
    return BlobHandle(out);
  }
  /// FeedBlob of a byte string (`value` may hold NUL bytes too).
  void feed_string(std::string_view name, std::string_view value) {
    check(c2rs_workspace_feed_string_n(p_.get(), name.data(), name.size(),
                                       reinterpret_cast<const uint8_t*>(value.data()), value.size()));
  }
  /// FetchBlob of a non-tensor blob: its bytes (or Caffe2's description of a native object).
  std::string fetch_string(std::string_view name) const {
    c2rs_buffer* out = nullptr;
    check(c2rs_workspace_fetch_string_n(p_.get(), name.data(), name.size(), &out));
    return Buffer(out).str();
  }
  /// RunOperatorOnce with a serialized OperatorDef.
  void run_operator_once(std::string_view op_def) {
    check(c2rs_workspace_run_operator_once(p_.get(), reinterpret_cast<const uint8_t*>(op_def.data()), op_def.size()));
  }
  /// CreateNet with a serialized NetDef.
  void create_net(std::string_view net_def, bool overwrite = false) {
    check(c2rs_workspace_create_net(p_.get(), reinterpret_cast<const uint8_t*>(net_def.data()), net_def.size(),
                                    overwrite));
  }
  void run_net(std::string_view name, int32_t iterations = 1) {
    check(c2rs_workspace_run_net_n(p_.get(), name.data(), name.size(), iterations));
  }
  bool has_net(std::string_view name) const {
    bool out = false;
    check(c2rs_workspace_has_net_n(p_.get(), name.data(), name.size(), &out));
    return out;
  }
  /// Deletes a net; false when there was none.
  bool delete_net(std::string_view name) {
    bool deleted = false;
    check(c2rs_workspace_delete_net_n(p_.get(), name.data(), name.size(), &deleted));
    return deleted;
  }
  /// Net names, sorted.
  std::vector<std::string> net_names() const {
    c2rs_string_list* out = nullptr;
    check(c2rs_workspace_net_names(p_.get(), &out));
    return StringList(out).to_vector();
  }

  /// RunPlan with a serialized PlanDef (Caffe2's ExecutionStep semantics; see
  /// c2rs_workspace_run_plan). Blocks until the plan ends; throws Error on failure, whose
  /// message carries the step path ("plan p: step s / substep t: op #i (Type): ...").
  void run_plan(std::string_view plan_def) {
    check(c2rs_workspace_run_plan(p_.get(), reinterpret_cast<const uint8_t*>(plan_def.data()),
                                  plan_def.size()));
  }
  /// Cancels the plans running on this workspace (call it from another thread): their
  /// run_plan throws Error with status C2RS_RUN_FAILED ("cancelled"). Returns how many it
  /// reached.
  size_t cancel_plans() {
    size_t out = 0;
    check(c2rs_workspace_cancel(p_.get(), &out));
    return out;
  }
  /// Number of plans running on this workspace now.
  size_t running_plans() const {
    size_t out = 0;
    check(c2rs_workspace_running_plans(p_.get(), &out));
    return out;
  }

  c2rs_workspace* get() const noexcept { return p_.get(); }

 private:
  std::unique_ptr<c2rs_workspace, detail::WorkspaceFree> p_;
};

/// IEEE half (as its bit pattern) to float, exactly (every half is a float).
inline float half_to_float(uint16_t bits) noexcept {
  const uint32_t sign = static_cast<uint32_t>(bits >> 15) << 31;
  const uint32_t exp = (bits >> 10) & 0x1fu;
  uint32_t mant = bits & 0x3ffu;
  uint32_t out;
  if (exp == 0x1fu) {
    out = sign | 0x7f800000u | (mant << 13);  // inf / NaN
  } else if (exp != 0) {
    out = sign | ((exp + 112u) << 23) | (mant << 13);  // normal: rebias 15 -> 127
  } else if (mant == 0) {
    out = sign;  // +-0
  } else {
    // Subnormal half: normalise into a float.
    uint32_t e = 113u;
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --e;
    }
    out = sign | (e << 23) | ((mant & 0x3ffu) << 13);
  }
  float f;
  static_assert(sizeof f == sizeof out, "float is 32-bit");
  std::memcpy(&f, &out, sizeof f);
  return f;
}

}  // namespace c2rs

#endif  // CAFFE2RS_HPP

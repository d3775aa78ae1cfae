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
#include <exception>
#include <functional>
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

  /// A tensor equal to this one sharing its storage (no copy); writes through either copy
  /// first while both live (c2rs_tensor_clone).
  Tensor clone() const {
    c2rs_tensor* out = nullptr;
    check(c2rs_tensor_clone(p_.get(), &out));
    return Tensor(out);
  }

  /// Whether mutable_data() would write the current elements in place: no other tensor or
  /// export shares the storage (c2rs_tensor_writes_in_place).
  bool writes_in_place() const {
    bool out = false;
    check(c2rs_tensor_writes_in_place(p_.get(), &out));
    return out;
  }

  /// Hands this tensor over as DLPack without copying, consuming it (c2rs_tensor_into_dlpack):
  /// writable when nobody else holds the storage, else read-only, or refused with
  /// C2RS_ENFORCE_NOT_MET when `require_writable`. `*writable` (optional) tells which. On
  /// failure this tensor is unchanged.
  DLPackPtr into_dlpack(bool require_writable = false, bool* writable = nullptr) && {
    DLManagedTensorVersioned* out = nullptr;
    bool w = false;
    check(c2rs_tensor_into_dlpack(p_.get(), require_writable, &out, &w));
    (void)p_.release();  // consumed by the call
    if (writable != nullptr) *writable = w;
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

  /// Moves tensor `i` out without copying, leaving an empty FLOAT [0] entry
  /// (c2rs_tensor_list_take). A batch tensor taken this way usually writes in place.
  Tensor take(size_t i) {
    c2rs_tensor* out = nullptr;
    check(c2rs_tensor_list_take(p_.get(), i, &out));
    return Tensor(out);
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

namespace detail {
struct ObjectFree {
  void operator()(c2rs_object* p) const noexcept { c2rs_object_free(p); }
};
struct DbFree {
  void operator()(c2rs_db* p) const noexcept { c2rs_db_free(p); }
};
struct CursorFree {
  void operator()(c2rs_db_cursor* p) const noexcept { c2rs_db_cursor_free(p); }
};
struct TransactionFree {
  void operator()(c2rs_db_transaction* p) const noexcept { c2rs_db_transaction_free(p); }
};
struct DbReaderFree {
  void operator()(c2rs_db_reader* p) const noexcept { c2rs_db_reader_free(p); }
};
struct RecordFeedFree {
  void operator()(c2rs_record_feed* p) const noexcept { c2rs_record_feed_free(p); }
};
struct BatchReaderFree {
  void operator()(c2rs_batch_reader* p) const noexcept { c2rs_batch_reader_free(p); }
};
inline std::string_view bytes_view(const uint8_t* p, size_t n) {
  return n == 0 ? std::string_view{} : std::string_view(reinterpret_cast<const char*>(p), n);
}
inline const uint8_t* u8(std::string_view s) noexcept {
  return reinterpret_cast<const uint8_t*>(s.data());
}
}  // namespace detail

class DbReader;

/// Blob content that is not a tensor (c2rs_object): a native object shared by reference (a
/// BlobsQueue, a DB reader, …) or a byte string. Copying shares the native object (copies a
/// byte string); a host keeps these in its own blobs between caffe2rs operators. An empty
/// Object (default-constructed, moved-from) holds nothing.
class Object {
 public:
  Object() = default;
  /// Adopts `raw` (may be NULL); released with c2rs_object_free.
  explicit Object(c2rs_object* raw) noexcept : p_(raw) {}
  Object(const Object& other) : p_(other.clone_raw()) {}
  Object& operator=(const Object& other) {
    if (this != &other) p_.reset(other.clone_raw());
    return *this;
  }
  Object(Object&&) noexcept = default;
  Object& operator=(Object&&) noexcept = default;

  /// A byte-string object (any bytes).
  static Object from_bytes(std::string_view bytes) {
    c2rs_object* out = nullptr;
    check(c2rs_object_from_bytes(detail::u8(bytes), bytes.size(), &out));
    return Object(out);
  }
  /// An object sharing `reader`.
  static Object from_db_reader(const DbReader& reader);

  /// The type name ("std::string", "std::shared_ptr<caffe2::BlobsQueue>", …); "" when empty.
  std::string type_name() const {
    const char* n = p_ ? c2rs_object_type_name(p_.get()) : nullptr;
    return n != nullptr ? std::string(n) : std::string();
  }
  /// Equal for two objects holding the very same native object.
  const void* id() const {
    const void* out = nullptr;
    check(c2rs_object_id(p_.get(), &out));
    return out;
  }
  /// The bytes of a byte-string object, borrowed: valid until this object is freed.
  std::string_view bytes() const {
    const uint8_t* data = nullptr;
    size_t len = 0;
    check(c2rs_object_bytes(p_.get(), &data, &len));
    return detail::bytes_view(data, len);
  }
  /// The DB reader this object holds (C2RS_TYPE_MISMATCH otherwise).
  DbReader db_reader() const;

  c2rs_object* get() const noexcept { return p_.get(); }
  c2rs_object* release() noexcept { return p_.release(); }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  c2rs_object* clone_raw() const {
    if (!p_) return nullptr;
    c2rs_object* out = nullptr;
    check(c2rs_object_clone(p_.get(), &out));
    return out;
  }
  std::unique_ptr<c2rs_object, detail::ObjectFree> p_;
};

/// DB open modes (Caffe2's db::Mode).
enum class DbMode : int32_t { Read = 0, Write = 1, New = 2 };

/// A cursor over a DB's records (c2rs_db_cursor). Move-only; one thread at a time.
class Cursor {
 public:
  Cursor() = default;
  explicit Cursor(c2rs_db_cursor* raw) noexcept : p_(raw) {}

  bool valid() const {
    bool out = false;
    check(c2rs_db_cursor_valid(p_.get(), &out));
    return out;
  }
  bool supports_seek() const {
    bool out = false;
    check(c2rs_db_cursor_supports_seek(p_.get(), &out));
    return out;
  }
  void next() { check(c2rs_db_cursor_next(p_.get())); }
  void seek_to_first() { check(c2rs_db_cursor_seek_to_first(p_.get())); }
  /// Moves to the first record whose key is >= `key` (invalid when none).
  void seek(std::string_view key) { check(c2rs_db_cursor_seek(p_.get(), detail::u8(key), key.size())); }
  /// The current key, borrowed: valid until the cursor moves or is freed.
  std::string_view key() const {
    const uint8_t* p = nullptr;
    size_t n = 0;
    check(c2rs_db_cursor_key(p_.get(), &p, &n));
    return detail::bytes_view(p, n);
  }
  /// The current value, borrowed: valid until the cursor moves or is freed.
  std::string_view value() const {
    const uint8_t* p = nullptr;
    size_t n = 0;
    check(c2rs_db_cursor_value(p_.get(), &p, &n));
    return detail::bytes_view(p, n);
  }

  c2rs_db_cursor* get() const noexcept { return p_.get(); }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  std::unique_ptr<c2rs_db_cursor, detail::CursorFree> p_;
};

/// A write transaction (c2rs_db_transaction); committed by commit() and when destroyed.
class Transaction {
 public:
  Transaction() = default;
  explicit Transaction(c2rs_db_transaction* raw) noexcept : p_(raw) {}

  void put(std::string_view key, std::string_view value) {
    check(c2rs_db_transaction_put(p_.get(), detail::u8(key), key.size(), detail::u8(value),
                                  value.size()));
  }
  void commit() { check(c2rs_db_transaction_commit(p_.get())); }

  c2rs_db_transaction* get() const noexcept { return p_.get(); }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  std::unique_ptr<c2rs_db_transaction, detail::TransactionFree> p_;
};

/// An open database (c2rs_db: minidb, lmdb, leveldb). Move-only.
class Db {
 public:
  Db() = default;
  explicit Db(c2rs_db* raw) noexcept : p_(raw) {}
  static Db open(const std::string& db_type, const std::string& source, DbMode mode) {
    c2rs_db* out = nullptr;
    check(c2rs_db_open(db_type.c_str(), source.c_str(), static_cast<int32_t>(mode), &out));
    return Db(out);
  }
  Cursor cursor() const {
    c2rs_db_cursor* out = nullptr;
    check(c2rs_db_cursor_new(p_.get(), &out));
    return Cursor(out);
  }
  Transaction transaction() const {
    c2rs_db_transaction* out = nullptr;
    check(c2rs_db_transaction_new(p_.get(), &out));
    return Transaction(out);
  }

  c2rs_db* get() const noexcept { return p_.get(); }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  std::unique_ptr<c2rs_db, detail::DbFree> p_;
};

/// A bounded FIFO of records host threads push and a DbReader::from_feed reader pulls
/// (c2rs_record_feed). Move-only; fully thread-safe.
class RecordFeed {
 public:
  RecordFeed() = default;
  explicit RecordFeed(c2rs_record_feed* raw) noexcept : p_(raw) {}
  explicit RecordFeed(size_t capacity) {
    c2rs_record_feed* out = nullptr;
    check(c2rs_record_feed_new(capacity, &out));
    p_.reset(out);
  }
  /// Appends a copy of a record, waiting while full (forever when `timeout_secs <= 0`).
  /// Throws C2RS_CLOSED once closed, C2RS_TIMEOUT when it stayed full.
  void push(std::string_view key, std::string_view value, double timeout_secs = 0.0) {
    check(c2rs_record_feed_push(p_.get(), detail::u8(key), key.size(), detail::u8(value),
                                value.size(), timeout_secs));
  }
  /// Ends the stream: pushes fail, the reader drains then fails with C2RS_CLOSED.
  void close() noexcept { c2rs_record_feed_close(p_.get()); }
  size_t size() const {
    size_t n = 0;
    check(c2rs_record_feed_status(p_.get(), &n, nullptr));
    return n;
  }
  bool closed() const {
    size_t n = 0;
    bool c = false;
    check(c2rs_record_feed_status(p_.get(), &n, &c));
    return c;
  }

  c2rs_record_feed* get() const noexcept { return p_.get(); }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  std::unique_ptr<c2rs_record_feed, detail::RecordFeedFree> p_;
};

/// Reads one record per call into `key` and `value`; returns false at the end of the stream.
/// May throw: the exception becomes a read error carrying its what().
using RecordReadFn = std::function<bool(std::string& key, std::string& value)>;

namespace detail {
/// What a callback reader keeps: the host function and the last record/error it handed over
/// (valid until the next call, as c2rs_record_view requires).
struct CallbackSource {
  RecordReadFn read;
  std::string key, value, error;

  static int32_t trampoline(void* user, c2rs_record_view* rec) noexcept {
    auto* self = static_cast<CallbackSource*>(user);
    try {
      if (!self->read(self->key, self->value)) return C2RS_CLOSED;
      rec->key = u8(self->key);
      rec->key_len = self->key.size();
      rec->value = u8(self->value);
      rec->value_len = self->value.size();
      return C2RS_OK;
    } catch (const Error& e) {
      self->error = e.message();
      rec->error = self->error.c_str();
      return e.status();
    } catch (const std::exception& e) {
      self->error = e.what();
    } catch (...) {
      self->error = "unknown C++ exception";
    }
    rec->error = self->error.c_str();
    return C2RS_IO_ERROR;
  }
  static void destroy(void* user) noexcept { delete static_cast<CallbackSource*>(user); }
};
}  // namespace detail

/// A shared, thread-safe record reader (Caffe2's DBReader, c2rs_db_reader). Move-only handle
/// to a reference-counted reader: blobs and batch readers holding it keep it alive.
class DbReader {
 public:
  DbReader() = default;
  explicit DbReader(c2rs_db_reader* raw) noexcept : p_(raw) {}
  /// Opens `source` for shard `shard_id` of `num_shards` (wraps around at the end).
  DbReader(const std::string& db_type, const std::string& source, uint32_t num_shards = 1,
           uint32_t shard_id = 0) {
    c2rs_db_reader* out = nullptr;
    check(c2rs_db_reader_new(db_type.c_str(), source.c_str(), num_shards, shard_id, &out));
    p_.reset(out);
  }
  /// Records from a host function (c2rs_db_reader_from_callback): `read` runs on the reading
  /// thread (a prefetch worker), one call at a time; returning false ends the stream.
  static DbReader from_callback(RecordReadFn read, const std::string& name) {
    auto* state = new detail::CallbackSource{std::move(read), {}, {}, {}};
    c2rs_db_reader* out = nullptr;
    const int32_t status =
        c2rs_db_reader_from_callback(&detail::CallbackSource::trampoline, state,
                                     &detail::CallbackSource::destroy, name.c_str(), &out);
    if (status != C2RS_OK) delete state;  // not kept on failure
    check(status);
    return DbReader(out);
  }
  /// Records pushed into `feed` (c2rs_db_reader_from_feed).
  static DbReader from_feed(const RecordFeed& feed, const std::string& name) {
    c2rs_db_reader* out = nullptr;
    check(c2rs_db_reader_from_feed(feed.get(), name.c_str(), &out));
    return DbReader(out);
  }
  /// Opens the reader a serialized "DBReader" BlobProto describes.
  static DbReader deserialize(std::string_view blob_proto) {
    c2rs_db_reader* out = nullptr;
    check(c2rs_db_reader_deserialize(detail::u8(blob_proto), blob_proto.size(), &out));
    return DbReader(out);
  }
  /// The next record of the shard (key, value), copied.
  std::pair<std::string, std::string> read() const {
    c2rs_buffer* k = nullptr;
    c2rs_buffer* v = nullptr;
    check(c2rs_db_reader_read(p_.get(), &k, &v));
    Buffer key(k), value(v);
    return {key.str(), value.str()};
  }
  /// Serializes as Caffe2 does (BlobProto "DBReader" named `name`).
  Buffer serialize(const std::string& name) const {
    c2rs_buffer* out = nullptr;
    check(c2rs_db_reader_serialize(p_.get(), name.c_str(), &out));
    return Buffer(out);
  }

  c2rs_db_reader* get() const noexcept { return p_.get(); }
  c2rs_db_reader* release() noexcept { return p_.release(); }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  std::unique_ptr<c2rs_db_reader, detail::DbReaderFree> p_;
};

inline Object Object::from_db_reader(const DbReader& reader) {
  c2rs_object* out = nullptr;
  check(c2rs_object_from_db_reader(reader.get(), &out));
  return Object(out);
}

inline DbReader Object::db_reader() const {
  c2rs_db_reader* out = nullptr;
  check(c2rs_object_db_reader(p_.get(), &out));
  return DbReader(out);
}

/// TensorProtosDBInput's prefetching for host threads (c2rs_batch_reader): `num_threads`
/// workers assemble up to `depth` batches ahead, in record order. Move-only; the destructor
/// stops and joins the workers.
class BatchReader {
 public:
  BatchReader() = default;
  explicit BatchReader(c2rs_batch_reader* raw) noexcept : p_(raw) {}
  BatchReader(const DbReader& reader, size_t batch_size, size_t num_outputs, size_t depth = 1,
              size_t num_threads = 1) {
    c2rs_batch_reader* out = nullptr;
    check(c2rs_batch_reader_new(reader.get(), batch_size, num_outputs, depth, num_threads, &out));
    p_.reset(out);
  }
  /// The next batch (blocking); take() its tensors to own them without a copy.
  TensorList next() const {
    c2rs_tensor_list* out = nullptr;
    check(c2rs_batch_reader_next(p_.get(), &out));
    return TensorList(out);
  }

  c2rs_batch_reader* get() const noexcept { return p_.get(); }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  std::unique_ptr<c2rs_batch_reader, detail::BatchReaderFree> p_;
};


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

  /// Moves the tensor out of blob `name` without copying, leaving the blob empty
  /// (c2rs_workspace_take_n). Throws C2RS_TYPE_MISMATCH (blob untouched) when it holds
  /// something else; returns an empty Tensor when the blob was empty.
  Tensor take(std::string_view name) {
    c2rs_tensor* out = nullptr;
    check(c2rs_workspace_take_n(p_.get(), name.data(), name.size(), &out, nullptr));
    return Tensor(out);
  }
  /// What take_any() moved out of a blob: a tensor, an object, or neither (empty blob).
  struct Content {
    Tensor tensor;
    Object object;
  };
  /// Moves any content out of blob `name`, leaving it empty.
  Content take_any(std::string_view name) {
    c2rs_tensor* t = nullptr;
    c2rs_object* o = nullptr;
    check(c2rs_workspace_take_n(p_.get(), name.data(), name.size(), &t, &o));
    return Content{Tensor(t), Object(o)};
  }
  /// A read-only snapshot sharing the blob's storage (no copy; c2rs_workspace_fetch_shared_n).
  Tensor fetch_shared(std::string_view name) const {
    c2rs_tensor* out = nullptr;
    check(c2rs_workspace_fetch_shared_n(p_.get(), name.data(), name.size(), &out));
    return Tensor(out);
  }
  /// The non-tensor content of blob `name` (a queue, a reader: the same object).
  Object fetch_object(std::string_view name) const {
    c2rs_object* out = nullptr;
    check(c2rs_workspace_fetch_object_n(p_.get(), name.data(), name.size(), &out));
    return Object(out);
  }
  /// Puts `obj` in blob `name` (shared, not copied).
  void put_object(std::string_view name, const Object& obj) {
    check(c2rs_workspace_put_object_n(p_.get(), name.data(), name.size(), obj.get()));
  }
  /// Stores `reader` in blob `name` (shared), for TensorProtosDBInput or Load.
  void set_db_reader(const std::string& name, const DbReader& reader) {
    check(c2rs_workspace_set_db_reader(p_.get(), name.c_str(), reader.get()));
  }
  /// The DB reader blob `name` holds (shared).
  DbReader db_reader(const std::string& name) const {
    c2rs_db_reader* out = nullptr;
    check(c2rs_workspace_db_reader(p_.get(), name.c_str(), &out));
    return DbReader(out);
  }
  /// Caffe2's type name of what blob `name` holds ("caffe2::Tensor", "std::string", …).
  std::string blob_type(std::string_view name) const {
    const char* out = nullptr;
    check(c2rs_workspace_blob_type_n(p_.get(), name.data(), name.size(), &out));
    return out != nullptr ? std::string(out) : std::string();
  }

  c2rs_workspace* get() const noexcept { return p_.get(); }

 private:
  std::unique_ptr<c2rs_workspace, detail::WorkspaceFree> p_;
};

namespace detail {
struct OperatorFree {
  void operator()(c2rs_operator* p) const noexcept { c2rs_operator_free(p); }
};
struct MemoryPlanFree {
  void operator()(c2rs_memory_plan* p) const noexcept { c2rs_memory_plan_free(p); }
};
}  // namespace detail

/// One caffe2rs operator built in a workspace from a serialized OperatorDef (c2rs_operator):
/// run any number of times keeping its state (a prefetcher, a queue). Move-only; the handle
/// keeps its workspace alive. The engine of the def falls back to caffe2rs's own kernel.
class Operator {
 public:
  Operator() = default;
  explicit Operator(c2rs_operator* raw) noexcept : p_(raw) {}
  Operator(Workspace& ws, std::string_view op_def) {
    c2rs_operator* out = nullptr;
    check(c2rs_operator_new(ws.get(), detail::u8(op_def), op_def.size(), &out));
    p_.reset(out);
  }
  /// Runs once; throws Error (message "c2rs_operator_run: op (<Type>): …") on failure.
  void run() const { check(c2rs_operator_run(p_.get())); }
  /// Asks a blocking run to stop (closes the queue it waits on). Any thread.
  void cancel() const noexcept { c2rs_operator_cancel(p_.get()); }

  // The operator's own input and output blobs, by position (no name lookup): how a host
  // bridge feeds a run and takes its results (c2rs_operator_set_input …).
  /// Puts `t` (consumed) in input blob `i`.
  void set_input(size_t i, Tensor&& t) { check(c2rs_operator_set_input(p_.get(), i, t.release())); }
  /// Puts `obj` (shared) in input blob `i`.
  void set_input_object(size_t i, const Object& obj) {
    check(c2rs_operator_set_input_object(p_.get(), i, obj.get()));
  }
  /// Empties input blob `i`.
  void clear_input(size_t i) { check(c2rs_operator_clear_input(p_.get(), i)); }
  /// Moves the content of output blob `o` out (a tensor, an object, or nothing).
  Workspace::Content take_output(size_t o) {
    c2rs_tensor* t = nullptr;
    c2rs_object* obj = nullptr;
    check(c2rs_operator_take_output(p_.get(), o, &t, &obj));
    return Workspace::Content{Tensor(t), Object(obj)};
  }

  c2rs_operator* get() const noexcept { return p_.get(); }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  std::unique_ptr<c2rs_operator, detail::OperatorFree> p_;
};

/// The schema of a registered operator type as JSON (c2rs_operator_schema).
inline std::string operator_schema(const std::string& type) {
  c2rs_buffer* out = nullptr;
  check(c2rs_operator_schema(type.c_str(), &out));
  return Buffer(out).str();
}

/// Every registered operator type (and engine variant), sorted.
inline std::vector<std::string> registered_operators() {
  c2rs_string_list* out = nullptr;
  check(c2rs_registered_operators(&out));
  return StringList(out).to_vector();
}

/// A net registered in a workspace, by name (nets have no handle of their own in the C ABI).
/// Holds a reference to the workspace object, which must outlive it.
class Net {
 public:
  /// Creates the net a serialized NetDef describes in `ws` (named by the NetDef).
  Net(Workspace& ws, std::string_view net_def, std::string name, bool overwrite = false)
      : ws_(&ws), name_(std::move(name)) {
    ws.create_net(net_def, overwrite);
  }
  /// Runs it `iterations` times, stopping at the first failure (thrown as Error).
  void run(int32_t iterations = 1) const { ws_->run_net(name_, iterations); }
  bool exists() const { return ws_->has_net(name_); }
  const std::string& name() const noexcept { return name_; }

 private:
  Workspace* ws_;
  std::string name_;
};

/// A memory plan for a net (c2rs_memonger_plan): renamed NetDef, arena offsets, report.
class MemoryPlan {
 public:
  MemoryPlan() = default;
  explicit MemoryPlan(c2rs_memory_plan* raw) noexcept : p_(raw) {}
  /// Plans `net_def` with blob shapes from a serialized TensorShapes; `keep` are never shared.
  static MemoryPlan plan(std::string_view net_def, std::string_view tensor_shapes,
                         const std::vector<std::string>& keep = {}) {
    std::vector<const char*> names;
    names.reserve(keep.size());
    for (const std::string& k : keep) names.push_back(k.c_str());
    c2rs_memory_plan* out = nullptr;
    check(c2rs_memonger_plan(detail::u8(net_def), net_def.size(), detail::u8(tensor_shapes),
                             tensor_shapes.size(), names.empty() ? nullptr : names.data(),
                             names.size(), &out));
    return MemoryPlan(out);
  }
  /// The renamed NetDef, serialized.
  Buffer net() const {
    c2rs_buffer* out = nullptr;
    check(c2rs_memory_plan_net(p_.get(), &out));
    return Buffer(out);
  }
  uint64_t arena_bytes() const {
    uint64_t out = 0;
    check(c2rs_memory_plan_arena_bytes(p_.get(), &out));
    return out;
  }
  /// (offset, bytes) of activation `blob` in its arena; C2RS_NOT_FOUND when it has none.
  std::pair<uint64_t, uint64_t> offset(const std::string& blob) const {
    uint64_t off = 0, bytes = 0;
    check(c2rs_memory_plan_offset(p_.get(), blob.c_str(), &off, &bytes));
    return {off, bytes};
  }
  std::string report() const {
    c2rs_buffer* out = nullptr;
    check(c2rs_memory_plan_report(p_.get(), &out));
    return Buffer(out).str();
  }
  std::string arena_json() const {
    c2rs_buffer* out = nullptr;
    check(c2rs_memory_plan_arena_json(p_.get(), &out));
    return Buffer(out).str();
  }

  c2rs_memory_plan* get() const noexcept { return p_.get(); }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  std::unique_ptr<c2rs_memory_plan, detail::MemoryPlanFree> p_;
};

/// A borrowed, writable tensor (an output of a host operator): frees nothing; valid while the
/// callback that got it runs.
class TensorRef : public detail::TensorReader<TensorRef> {
 public:
  explicit TensorRef(c2rs_tensor* raw) noexcept : p_(raw) {}
  const c2rs_tensor* handle() const noexcept { return p_; }
  c2rs_tensor* get() const noexcept { return p_; }

  /// Writable elements as `T` (see Tensor::mutable_data).
  template <typename T>
  T* mutable_data() {
    if (!detail::element_type_matches<T>(dtype())) {
      throw Error(C2RS_TYPE_MISMATCH,
                  "c2rs::TensorRef::mutable_data: element type does not match dtype " +
                      dtype_name(dtype()));
    }
    void* out = nullptr;
    check(c2rs_tensor_mutable_data(p_, &out));
    return static_cast<T*>(out);
  }
  void set_string(size_t i, std::string_view value) {
    check(c2rs_tensor_set_string(p_, i, detail::u8(value), value.size()));
  }

 private:
  c2rs_tensor* p_;
};

/// What a host operator's callbacks see (c2rs_op_context), valid during one callback.
class OpContext {
 public:
  explicit OpContext(c2rs_op_context* raw) noexcept : p_(raw) {}
  size_t num_inputs() const noexcept { return c2rs_op_context_num_inputs(p_); }
  size_t num_outputs() const noexcept { return c2rs_op_context_num_outputs(p_); }
  /// Input tensor `i` (run only), borrowed until the run callback returns.
  TensorView input(size_t i) const {
    const c2rs_tensor* out = nullptr;
    check(c2rs_op_context_input(p_, i, &out));
    return TensorView(out);
  }
  /// Output `i` shaped `dims` of `dtype`, ready for writing (run only).
  TensorRef output(size_t i, int32_t dtype, const std::vector<int64_t>& dims) {
    c2rs_tensor* out = nullptr;
    check(c2rs_op_context_output(p_, i, dtype, dims.empty() ? nullptr : dims.data(), dims.size(),
                                 &out));
    return TensorRef(out);
  }
  /// Sets output `i` to `t` (consumed).
  void set_output(size_t i, Tensor&& t) { check(c2rs_op_context_set_output(p_, i, t.release())); }
  bool has_arg(const std::string& name) const {
    bool out = false;
    check(c2rs_op_context_has_arg(p_, name.c_str(), &out));
    return out;
  }
  int64_t arg_int(const std::string& name, int64_t default_value) const {
    int64_t out = 0;
    check(c2rs_op_context_arg_int(p_, name.c_str(), default_value, &out));
    return out;
  }
  float arg_float(const std::string& name, float default_value) const {
    float out = 0;
    check(c2rs_op_context_arg_float(p_, name.c_str(), default_value, &out));
    return out;
  }
  std::string arg_string(const std::string& name, const std::string& default_value) const {
    if (!has_arg(name)) return default_value;
    const uint8_t* p = nullptr;
    size_t n = 0;
    check(c2rs_op_context_arg_string(p_, name.c_str(), &p, &n));
    return std::string(detail::bytes_view(p, n));
  }
  std::vector<int64_t> arg_ints(const std::string& name) const {
    const int64_t* p = nullptr;
    size_t n = 0;
    check(c2rs_op_context_arg_ints(p_, name.c_str(), &p, &n));
    return n == 0 ? std::vector<int64_t>{} : std::vector<int64_t>(p, p + n);
  }
  std::vector<float> arg_floats(const std::string& name) const {
    const float* p = nullptr;
    size_t n = 0;
    check(c2rs_op_context_arg_floats(p_, name.c_str(), &p, &n));
    return n == 0 ? std::vector<float>{} : std::vector<float>(p, p + n);
  }
  c2rs_op_context* get() const noexcept { return p_; }

 private:
  c2rs_op_context* p_;
};

/// A host kernel registered with register_operator(): one instance per created operator.
/// `run` may throw: the exception never crosses into the library, it becomes the operator's
/// failure (status C2RS_RUN_FAILED, message its what()). `run` of one instance may be called
/// from several threads at once (the same net run twice concurrently); `cancel` may be called
/// from another thread while `run` runs.
class HostOperator {
 public:
  virtual ~HostOperator() = default;
  virtual void run(OpContext& ctx) = 0;
  virtual void cancel() noexcept {}
};

/// Throw from a HostOperatorFactory to say this def is not supported (Caffe2's
/// UnsupportedOperatorFeature): the next engine candidate is tried.
class UnsupportedFeature : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Makes the HostOperator for one operator def; may throw (the creation then fails with the
/// exception's message; UnsupportedFeature falls through to the next engine).
using HostOperatorFactory = std::function<std::unique_ptr<HostOperator>(OpContext& ctx)>;

namespace detail {
/// Records `what` as the callback's error and returns `status`; never throws.
inline int32_t callback_failure(c2rs_op_context* ctx, const char* what, int32_t status) noexcept {
  (void)c2rs_op_context_set_error(ctx, what != nullptr ? what : "unknown C++ exception");
  return status;
}

/// Runs `body` and turns every exception into a status plus message on `ctx`: no C++
/// exception crosses into the library (it would be undefined behaviour).
template <typename Body>
int32_t guarded(c2rs_op_context* ctx, int32_t failure, Body&& body) noexcept {
  try {
    body();
    return C2RS_OK;
  } catch (const UnsupportedFeature& e) {
    return callback_failure(ctx, e.what(), C2RS_UNSUPPORTED);
  } catch (const Error& e) {
    return callback_failure(ctx, e.what(), e.status());
  } catch (const std::exception& e) {
    return callback_failure(ctx, e.what(), failure);
  } catch (...) {
    return callback_failure(ctx, "unknown C++ exception", failure);
  }
}

struct HostOperatorTrampolines {
  static int32_t create(void* user, c2rs_op_context* ctx, void** state) noexcept {
    return guarded(ctx, C2RS_ENFORCE_NOT_MET, [&] {
      OpContext c(ctx);
      std::unique_ptr<HostOperator> op = (*static_cast<HostOperatorFactory*>(user))(c);
      if (!op) throw std::runtime_error("the host operator factory returned no operator");
      *state = op.release();
    });
  }
  static int32_t run(void*, void* state, c2rs_op_context* ctx) noexcept {
    return guarded(ctx, C2RS_RUN_FAILED, [&] {
      OpContext c(ctx);
      static_cast<HostOperator*>(state)->run(c);
    });
  }
  static void cancel(void*, void* state) noexcept {
    if (state != nullptr) static_cast<HostOperator*>(state)->cancel();
  }
  static void destroy(void*, void* state) noexcept { delete static_cast<HostOperator*>(state); }
};
}  // namespace detail

/// Registers a C++ kernel as CPU operator `type` (c2rs_register_operator): nets and
/// run_operator_once use it like a built-in operator. `schema` (optional) is checked on every
/// def. Exceptions from `factory` and from the kernels are caught and reported as the
/// operator's errors. The factory lives for the rest of the process (there is no
/// unregistration).
inline void register_operator(const std::string& type, HostOperatorFactory factory,
                              const c2rs_op_schema* schema = nullptr) {
  auto* user = new HostOperatorFactory(std::move(factory));
  c2rs_op_callbacks callbacks{};
  callbacks.create = &detail::HostOperatorTrampolines::create;
  callbacks.run = &detail::HostOperatorTrampolines::run;
  callbacks.cancel = &detail::HostOperatorTrampolines::cancel;
  callbacks.destroy = &detail::HostOperatorTrampolines::destroy;
  const int32_t status = c2rs_register_operator(type.c_str(), schema, &callbacks, user);
  if (status != C2RS_OK) delete user;  // not kept on failure
  check(status);
}

namespace detail {
struct BlobsQueueFree {
  void operator()(c2rs_blobs_queue* p) const noexcept { c2rs_blobs_queue_free(p); }
};
struct RebatchingQueueFree {
  void operator()(c2rs_rebatching_queue* p) const noexcept { c2rs_rebatching_queue_free(p); }
};
/// The raw handles of `record`, which the C call consumes on success (released here then).
inline std::vector<c2rs_tensor*> raw_record(const std::vector<Tensor>& record) {
  std::vector<c2rs_tensor*> raw;
  raw.reserve(record.size());
  for (const Tensor& t : record) raw.push_back(t.get());
  return raw;
}
inline void release_record(std::vector<Tensor>& record) noexcept {
  for (Tensor& t : record) (void)t.release();
  record.clear();
}
inline std::vector<Tensor> adopt_record(std::vector<c2rs_tensor*>& raw) {
  std::vector<Tensor> out;
  out.reserve(raw.size());
  for (c2rs_tensor* t : raw) out.emplace_back(t);
  return out;
}
inline std::vector<const char*> c_strings(const std::vector<std::string>& v) {
  std::vector<const char*> out;
  out.reserve(v.size());
  for (const std::string& s : v) out.push_back(s.c_str());
  return out;
}
}  // namespace detail

/// A BlobsQueue (c2rs_blobs_queue): records of `num_blobs` tensors moved in and out without a
/// copy, Caffe2's blocking and close semantics. Move-only handle to a shared queue (a blob, an
/// operator or another handle may hold it too); fully thread-safe.
class BlobsQueue {
 public:
  BlobsQueue() = default;
  explicit BlobsQueue(c2rs_blobs_queue* raw) noexcept : p_(raw) {}
  /// A queue of no workspace (private slots); `field_names` label the per-column stats.
  BlobsQueue(const std::string& name, int64_t capacity, int64_t num_blobs,
             const std::vector<std::string>& field_names = {}, bool strict = false) {
    std::vector<const char*> f = detail::c_strings(field_names);
    c2rs_blobs_queue* out = nullptr;
    check(c2rs_blobs_queue_new(name.c_str(), capacity, num_blobs, f.empty() ? nullptr : f.data(),
                               f.size(), strict, &out));
    p_.reset(out);
  }
  /// CreateBlobsQueue in blob `name` of `ws` (slot blobs `<name>_<i>_<j>`).
  static BlobsQueue create(Workspace& ws, const std::string& name, int64_t capacity,
                           int64_t num_blobs, bool enforce_unique_name = false,
                           const std::vector<std::string>& field_names = {}, bool strict = false) {
    std::vector<const char*> f = detail::c_strings(field_names);
    c2rs_blobs_queue* out = nullptr;
    check(c2rs_blobs_queue_create_with_fields(ws.get(), name.c_str(), capacity, num_blobs,
                                              enforce_unique_name, f.empty() ? nullptr : f.data(),
                                              f.size(), strict, &out));
    return BlobsQueue(out);
  }
  /// The queue blob `name` of `ws` holds.
  static BlobsQueue from_workspace(const Workspace& ws, const std::string& name) {
    c2rs_blobs_queue* out = nullptr;
    check(c2rs_blobs_queue_from_workspace(ws.get(), name.c_str(), &out));
    return BlobsQueue(out);
  }
  /// The queue an Object holds (e.g. a host blob's, from a bridged CreateBlobsQueue).
  static BlobsQueue from_object(const Object& obj) {
    c2rs_blobs_queue* out = nullptr;
    check(c2rs_object_blobs_queue(obj.get(), &out));
    return BlobsQueue(out);
  }
  /// An Object sharing this queue (to keep it in a blob).
  Object to_object() const {
    c2rs_object* out = nullptr;
    check(c2rs_object_from_blobs_queue(p_.get(), &out));
    return Object(out);
  }

  /// Writes one record, blocking while full; the tensors are moved in (`record` is emptied).
  /// Throws C2RS_CLOSED when closed and full (the tensors stay in `record`).
  void enqueue(std::vector<Tensor>& record) {
    std::vector<c2rs_tensor*> raw = detail::raw_record(record);
    check(c2rs_blobs_queue_enqueue(p_.get(), raw.empty() ? nullptr : raw.data(), raw.size()));
    detail::release_record(record);
  }
  /// Writes one record if there is room now: true when it went in (`record` emptied).
  bool try_enqueue(std::vector<Tensor>& record) {
    std::vector<c2rs_tensor*> raw = detail::raw_record(record);
    const int32_t s = c2rs_blobs_queue_try_enqueue(p_.get(), raw.empty() ? nullptr : raw.data(), raw.size());
    if (s == C2RS_TIMEOUT) return false;
    check(s);
    detail::release_record(record);
    return true;
  }
  /// SafeEnqueueBlobs: true when the record went in (`record` emptied); false (the "stop"
  /// status) when the queue is closed and full (`record` kept).
  bool safe_enqueue(std::vector<Tensor>& record) {
    std::vector<c2rs_tensor*> raw = detail::raw_record(record);
    bool stopped = false;
    check(c2rs_blobs_queue_safe_enqueue(p_.get(), raw.empty() ? nullptr : raw.data(), raw.size(),
                                        &stopped));
    if (!stopped) detail::release_record(record);
    return !stopped;
  }
  /// One record, blocking; throws C2RS_CLOSED at the end of the stream.
  std::vector<Tensor> dequeue() {
    std::vector<c2rs_tensor*> raw(num_blobs(), nullptr);
    check(c2rs_blobs_queue_dequeue(p_.get(), raw.data(), raw.size()));
    return detail::adopt_record(raw);
  }
  /// One record within `timeout_secs`; throws C2RS_TIMEOUT or C2RS_CLOSED.
  std::vector<Tensor> dequeue(double timeout_secs) {
    std::vector<c2rs_tensor*> raw(num_blobs(), nullptr);
    check(c2rs_blobs_queue_dequeue_timeout(p_.get(), timeout_secs, raw.data(), raw.size()));
    return detail::adopt_record(raw);
  }
  /// SafeDequeueBlobs: `num_records` records (concatenated along dim 0 when > 1); empty at the
  /// end of the stream.
  std::vector<Tensor> safe_dequeue(size_t num_records = 1) {
    std::vector<c2rs_tensor*> raw(num_blobs(), nullptr);
    bool stopped = false;
    check(c2rs_blobs_queue_safe_dequeue(p_.get(), num_records, raw.data(), raw.size(), &stopped));
    return stopped ? std::vector<Tensor>{} : detail::adopt_record(raw);
  }
  /// WeightedSampleDequeueBlobs over `queues`, which agree in num_blobs (`weights` empty =
  /// equal); `*chosen` is the index drawn (from `ctx`, a CPU c2rs_context, or a fresh random
  /// one); empty at the end of the chosen queue's stream.
  static std::vector<Tensor> weighted_sample_dequeue(const std::vector<const BlobsQueue*>& queues,
                                                     const std::vector<float>& weights,
                                                     size_t* chosen = nullptr,
                                                     c2rs_context* ctx = nullptr) {
    std::vector<const c2rs_blobs_queue*> raw_q;
    for (const BlobsQueue* q : queues) raw_q.push_back(q->get());
    // Records have the chosen queue's num_blobs; the queues of one draw must agree on it.
    std::vector<c2rs_tensor*> raw(queues.empty() ? 0 : queues.front()->num_blobs(), nullptr);
    size_t c = 0;
    bool stopped = false;
    check(c2rs_blobs_queue_weighted_sample_dequeue(
        raw_q.empty() ? nullptr : raw_q.data(), raw_q.size(),
        weights.empty() ? nullptr : weights.data(), ctx, raw.data(), raw.size(), &c, &stopped));
    if (chosen != nullptr) *chosen = c;
    return stopped ? std::vector<Tensor>{} : detail::adopt_record(raw);
  }
  /// Closes the queue: readers drain then fail, writers fail only when full.
  void close() { check(c2rs_blobs_queue_close(p_.get())); }

  size_t size() const { return info().size; }
  size_t num_blobs() const { return info().num_blobs; }
  struct Info {
    size_t size, capacity, num_blobs;
    bool closed;
  };
  Info info() const {
    Info i{};
    check(c2rs_blobs_queue_info(p_.get(), &i.size, &i.capacity, &i.num_blobs, &i.closed));
    return i;
  }
  /// The stats as JSON (Caffe2's keys).
  std::string stats() const {
    c2rs_buffer* out = nullptr;
    check(c2rs_blobs_queue_stats(p_.get(), &out));
    return Buffer(out).str();
  }

  c2rs_blobs_queue* get() const noexcept { return p_.get(); }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  std::unique_ptr<c2rs_blobs_queue, detail::BlobsQueueFree> p_;
};

/// A RebatchingQueue (c2rs_rebatching_queue): elements (rows) in, batches of rows out, copied.
/// Move-only handle to a shared queue; fully thread-safe.
class RebatchingQueue {
 public:
  RebatchingQueue() = default;
  explicit RebatchingQueue(c2rs_rebatching_queue* raw) noexcept : p_(raw) {}
  /// CreateRebatchingQueue in blob `name` of `ws` (`capacity` counts elements).
  static RebatchingQueue create(Workspace& ws, const std::string& name, int64_t capacity,
                                int64_t num_blobs) {
    c2rs_rebatching_queue* out = nullptr;
    check(c2rs_rebatching_queue_create(ws.get(), name.c_str(), capacity, num_blobs, &out));
    return RebatchingQueue(out);
  }
  static RebatchingQueue from_workspace(const Workspace& ws, const std::string& name) {
    c2rs_rebatching_queue* out = nullptr;
    check(c2rs_rebatching_queue_from_workspace(ws.get(), name.c_str(), &out));
    return RebatchingQueue(out);
  }
  /// Enqueues one element, or with `batch` every row along dim 0 (copies); throws C2RS_CLOSED
  /// once closed.
  void enqueue(const std::vector<TensorView>& tensors, bool batch = false) {
    std::vector<const c2rs_tensor*> raw;
    for (const TensorView& t : tensors) raw.push_back(t.handle());
    check(c2rs_rebatching_queue_enqueue(p_.get(), raw.empty() ? nullptr : raw.data(), raw.size(),
                                        batch));
  }
  /// `num_elements` elements stacked under a new leading dim (fewer only at close); throws
  /// C2RS_CLOSED when closed and empty.
  std::vector<Tensor> dequeue(int64_t num_elements, size_t num_blobs) {
    std::vector<c2rs_tensor*> raw(num_blobs, nullptr);
    check(c2rs_rebatching_queue_dequeue(p_.get(), num_elements, raw.data(), raw.size()));
    return detail::adopt_record(raw);
  }
  void close() { check(c2rs_rebatching_queue_close(p_.get())); }
  size_t size() const {
    size_t s = 0;
    check(c2rs_rebatching_queue_info(p_.get(), &s, nullptr));
    return s;
  }
  size_t capacity() const {
    size_t c = 0;
    check(c2rs_rebatching_queue_info(p_.get(), nullptr, &c));
    return c;
  }

  c2rs_rebatching_queue* get() const noexcept { return p_.get(); }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  std::unique_ptr<c2rs_rebatching_queue, detail::RebatchingQueueFree> p_;
};

namespace detail {
struct ContextFree {
  void operator()(c2rs_context* p) const noexcept { c2rs_context_free(p); }
};
struct EventFree {
  void operator()(c2rs_event* p) const noexcept { c2rs_event_free(p); }
};
}  // namespace detail

class Event;

/// A device context (c2rs_context: Caffe2's CPUContext or CUDAContext), made from a serialized
/// DeviceOption (empty = CPU). Move-only; one thread at a time.
class Context {
 public:
  Context() = default;
  explicit Context(c2rs_context* raw) noexcept : p_(raw) {}
  explicit Context(std::string_view device_option) {
    c2rs_context* out = nullptr;
    check(c2rs_context_new(detail::u8(device_option), device_option.size(), &out));
    p_.reset(out);
  }
  int32_t device_type() const {
    int32_t out = 0;
    check(c2rs_context_device_type(p_.get(), &out));
    return out;
  }
  uint32_t random_seed() const {
    uint32_t out = 0;
    check(c2rs_context_random_seed(p_.get(), &out));
    return out;
  }
  /// `n` values of the context's MT19937 (CPU contexts; seeded by the device option).
  std::vector<uint32_t> rand_u32(size_t n) {
    std::vector<uint32_t> out(n);
    check(c2rs_context_rand_u32(p_.get(), out.empty() ? nullptr : out.data(), n));
    return out;
  }
  void switch_to_device(int32_t stream_id = 0) {
    check(c2rs_context_switch_to_device(p_.get(), stream_id));
  }
  void finish_device_computation() { check(c2rs_context_finish_device_computation(p_.get())); }
  /// Copies `n` bytes on the context's device (CPU: memcpy; CUDA: its stream).
  void copy_bytes(size_t n, const void* src, void* dst) const {
    check(c2rs_context_copy_bytes(p_.get(), n, src, dst));
  }
  void record(const Event& event, const char* err = nullptr) const;
  void wait(const Event& event) const;

  c2rs_context* get() const noexcept { return p_.get(); }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  std::unique_ptr<c2rs_context, detail::ContextFree> p_;
};

/// An event with Caffe2's state machine (c2rs_event), made from a serialized DeviceOption.
/// Move-only; finish, query and wait may run concurrently from any thread.
class Event {
 public:
  Event() = default;
  explicit Event(c2rs_event* raw) noexcept : p_(raw) {}
  explicit Event(std::string_view device_option) {
    c2rs_event* out = nullptr;
    check(c2rs_event_new(detail::u8(device_option), device_option.size(), &out));
    p_.reset(out);
  }
  /// One of C2RS_EVENT_INITIALIZED, _SCHEDULED, _SUCCESS, _FAILED.
  int32_t query() const {
    int32_t out = 0;
    check(c2rs_event_query(p_.get(), &out));
    return out;
  }
  void finish() const { check(c2rs_event_finish(p_.get())); }
  /// Marks the event finished, failed with `err` when not NULL.
  void set_finished(const char* err = nullptr) const { check(c2rs_event_set_finished(p_.get(), err)); }
  void reset() const { check(c2rs_event_reset(p_.get())); }
  std::string error_message() const {
    c2rs_buffer* out = nullptr;
    check(c2rs_event_error_message(p_.get(), &out));
    return Buffer(out).str();
  }

  c2rs_event* get() const noexcept { return p_.get(); }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  std::unique_ptr<c2rs_event, detail::EventFree> p_;
};

inline void Context::record(const Event& event, const char* err) const {
  check(c2rs_context_record_event(p_.get(), event.get(), err));
}
inline void Context::wait(const Event& event) const {
  check(c2rs_context_wait_event(p_.get(), event.get()));
}

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

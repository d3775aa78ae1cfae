// A small stand-in for Caffe2's C++ API (PyTorch 1.x caffe2/core + c10), for testing
// include/caffe2rs/caffe2_bridge.h without a Caffe2 build. It mirrors the *shape* of the calls
// that header uses (listed at its top) and the behaviour they rely on:
//   - Workspace owns Blobs by name; OperatorBase resolves input and output blobs at
//     construction (inputs must exist, outputs are created), as Caffe2 does.
//   - Blob is a type-erased owner (IsType/Get/GetMutable/Reset/GetRaw/meta().name()).
//   - Tensor is a handle to a shared TensorImpl (intrusive_ptr in Caffe2, shared_ptr here) that
//     holds dims, a TypeMeta and a reference-counted Storage whose DataPtr carries a context and
//     a deleter (at::DataPtr); ShareExternalPointer adopts foreign memory, Resize drops the
//     storage when the byte size grows, raw_mutable_data allocates lazily.
//   - A per-device operator registry keyed by type or type_ENGINE_engine; CreateOperator tries
//     the def's engines left to right, skips UnsupportedOperatorFeature, falls back to the type.
//   - A simple net runs its operators in order and stops at the first that returns false.
//   - db::DBReader::Read is thread-safe and wraps around, like Caffe2's (records in memory).
// Everything is written from Caffe2's documented behaviour; no Caffe2 code is copied. It is
// deliberately small: only what the bridge and the stand-in host's own operators need.
#ifndef C2RS_STANDIN_CAFFE2_H
#define C2RS_STANDIN_CAFFE2_H

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <new>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <typeindex>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace at {

enum class DeviceType : int8_t { CPU = 0 };

struct Device {
  explicit Device(DeviceType t) : type(t) {}
  DeviceType type;
};

using DeleterFnPtr = void (*)(void*);

/// IEEE half as its bits (Caffe2's at::Half).
struct Half {
  uint16_t x;
};

/// A data pointer with a context and the deleter of that context (c10::DataPtr).
class DataPtr {
 public:
  DataPtr() = default;
  DataPtr(void* data, void* ctx, DeleterFnPtr ctx_deleter, Device)
      : data_(data), ctx_(ctx), deleter_(ctx_deleter) {}
  DataPtr(const DataPtr&) = delete;
  DataPtr& operator=(const DataPtr&) = delete;
  DataPtr(DataPtr&& o) noexcept { swap(o); }
  DataPtr& operator=(DataPtr&& o) noexcept {
    DataPtr tmp(std::move(o));
    swap(tmp);
    return *this;
  }
  ~DataPtr() {
    if (deleter_ != nullptr) deleter_(ctx_);
  }
  void* get() const noexcept { return data_; }
  void* get_context() const noexcept { return ctx_; }
  DeleterFnPtr get_deleter() const noexcept { return deleter_; }
  /// Replaces the deleter when it is `expected` (c10's way to take a context back).
  bool compare_exchange_deleter(DeleterFnPtr expected, DeleterFnPtr replacement) noexcept {
    if (deleter_ != expected) return false;
    deleter_ = replacement;
    return true;
  }

 private:
  void swap(DataPtr& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(ctx_, o.ctx_);
    std::swap(deleter_, o.deleter_);
  }
  void* data_ = nullptr;
  void* ctx_ = nullptr;
  DeleterFnPtr deleter_ = nullptr;
};

}  // namespace at

namespace c10 {

struct StorageImpl {
  at::DataPtr data;
  size_t nbytes = 0;
};

/// A reference-counted buffer (c10::Storage).
class Storage {
 public:
  Storage() = default;
  explicit Storage(std::shared_ptr<StorageImpl> impl) : impl_(std::move(impl)) {}
  size_t use_count() const noexcept { return static_cast<size_t>(impl_.use_count()); }
  void* data() const noexcept { return impl_ ? impl_->data.get() : nullptr; }
  size_t nbytes() const noexcept { return impl_ ? impl_->nbytes : 0; }
  at::DataPtr& data_ptr() { return impl_->data; }
  explicit operator bool() const noexcept { return impl_ != nullptr; }

 private:
  std::shared_ptr<StorageImpl> impl_;
};

}  // namespace c10

namespace caffe2 {

using DeviceType = at::DeviceType;
constexpr DeviceType CPU = DeviceType::CPU;

namespace standin_detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
void append(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  append(os, rest...);
}
template <typename... Args>
std::string str(const Args&... args) {
  std::ostringstream os;
  append(os, args...);
  return os.str();
}
}  // namespace standin_detail

/// Caffe2's enforce failure (c10::Error).
class EnforceNotMet : public std::exception {
 public:
  explicit EnforceNotMet(std::string msg) : msg_(std::move(msg)) {}
  const char* what() const noexcept override { return msg_.c_str(); }

 private:
  std::string msg_;
};

/// Thrown by an operator constructor that cannot handle a def: the next engine is tried.
class UnsupportedOperatorFeature : public std::exception {
 public:
  explicit UnsupportedOperatorFeature(std::string msg) : msg_(std::move(msg)) {}
  const char* what() const noexcept override { return msg_.c_str(); }

 private:
  std::string msg_;
};

#define CAFFE_THROW(...) throw ::caffe2::EnforceNotMet(::caffe2::standin_detail::str(__VA_ARGS__))
/// Caffe2 registers blob types with this (a definition, no trailing semicolon needed); the
/// stand-in uses typeid and only records the name.
template <class T>
const char* standin_known_type_name();
#define CAFFE_KNOWN_TYPE(T) \
  template <>               \
  inline const char* standin_known_type_name<T>() { return #T; }

/// Element type descriptor (caffe2::TypeMeta).
class TypeMeta {
 public:
  TypeMeta() = default;
  template <typename T>
  static TypeMeta Make() {
    TypeMeta m(&typeid(T), sizeof(T), name_of<T>());
    if (!std::is_trivially_default_constructible<T>::value || !std::is_trivially_destructible<T>::value) {
      m.ctor_ = [](void* p, size_t n) {
        for (size_t i = 0; i < n; ++i) new (static_cast<T*>(p) + i) T();
      };
      m.dtor_ = [](void* p, size_t n) {
        for (size_t i = 0; i < n; ++i) (static_cast<T*>(p) + i)->~T();
      };
    }
    return m;
  }
  /// Constructs / destroys `n` elements in place (non-trivial types such as std::string only).
  using ArrayFn = void (*)(void*, size_t);
  ArrayFn ctor() const noexcept { return ctor_; }
  ArrayFn dtor() const noexcept { return dtor_; }
  template <typename T>
  bool Match() const noexcept {
    return type_ != nullptr && *type_ == typeid(T);
  }
  size_t itemsize() const noexcept { return size_; }
  const char* name() const noexcept { return name_; }
  bool operator==(const TypeMeta& o) const noexcept {
    return type_ == o.type_ || (type_ != nullptr && o.type_ != nullptr && *type_ == *o.type_);
  }
  bool operator!=(const TypeMeta& o) const noexcept { return !(*this == o); }

 private:
  TypeMeta(const std::type_info* t, size_t size, const char* name)
      : type_(t), size_(size), name_(name) {}
  template <typename T>
  static const char* name_of() {
    if (std::is_same<T, float>::value) return "float";
    if (std::is_same<T, double>::value) return "double";
    if (std::is_same<T, int32_t>::value) return "int";
    if (std::is_same<T, int64_t>::value) return "long";
    if (std::is_same<T, uint8_t>::value) return "unsigned char";
    if (std::is_same<T, std::string>::value) return "std::string";
    return typeid(T).name();
  }
  const std::type_info* type_ = nullptr;
  size_t size_ = 0;
  const char* name_ = "nullptr (uninitialized)";
  ArrayFn ctor_ = nullptr;
  ArrayFn dtor_ = nullptr;
};

/// The context of a buffer the stand-in allocated: freed (elements destroyed first) once.
struct StandinAllocation {
  void* p;
  size_t n;
  TypeMeta::ArrayFn dtor;
  static void release(void* ctx) {
    auto* a = static_cast<StandinAllocation*>(ctx);
    if (a->dtor != nullptr) a->dtor(a->p, a->n);
    std::free(a->p);
    delete a;
  }
};

class TensorImpl {
 public:
  std::vector<int64_t> sizes;
  TypeMeta meta;
  c10::Storage storage_;
  const c10::Storage& storage() const noexcept { return storage_; }
  int64_t numel() const noexcept {
    int64_t n = 1;
    for (int64_t d : sizes) n *= d;
    return n;
  }
};

/// A CPU tensor handle (caffe2::Tensor): copies are not allowed, moves are; a second handle to
/// the same TensorImpl comes from UnsafeSharedInstance().
class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(DeviceType) : impl_(std::make_shared<TensorImpl>()) {}
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;
  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(Tensor&&) noexcept = default;

  bool defined() const noexcept { return impl_ != nullptr; }
  void Resize(std::vector<int64_t> dims) {
    impl_->sizes = std::move(dims);
    // Grows beyond the storage: drop it, the next raw_mutable_data allocates.
    if (nbytes() > impl_->storage_.nbytes()) impl_->storage_ = c10::Storage();
  }
  const std::vector<int64_t>& sizes() const noexcept { return impl_->sizes; }
  int64_t numel() const noexcept { return impl_->numel(); }
  TypeMeta dtype() const noexcept { return impl_->meta; }
  size_t nbytes() const noexcept { return static_cast<size_t>(numel()) * impl_->meta.itemsize(); }
  const void* raw_data() const { return impl_->storage_.data(); }
  void* raw_mutable_data(const TypeMeta& meta) {
    const size_t need = static_cast<size_t>(numel()) * meta.itemsize();
    if (meta != impl_->meta || !impl_->storage_ || impl_->storage_.nbytes() < need) {
      auto s = std::make_shared<c10::StorageImpl>();
      void* p = std::calloc(need == 0 ? 1 : need, 1);
      if (p == nullptr) throw std::bad_alloc();
      const size_t n = static_cast<size_t>(numel());
      if (meta.ctor() != nullptr) meta.ctor()(p, n);
      s->data = at::DataPtr(p, new StandinAllocation{p, n, meta.dtor()}, &StandinAllocation::release,
                            at::Device(CPU));
      s->nbytes = need;
      impl_->storage_ = c10::Storage(std::move(s));
      impl_->meta = meta;
    }
    return impl_->storage_.data();
  }
  template <typename T>
  T* mutable_data() {
    return static_cast<T*>(raw_mutable_data(TypeMeta::Make<T>()));
  }
  template <typename T>
  const T* data() const {
    if (!impl_->meta.template Match<T>()) CAFFE_THROW("Tensor type mismatch, caller expects ", typeid(T).name());
    return static_cast<const T*>(raw_data());
  }
  void ShareExternalPointer(at::DataPtr&& data_ptr, const TypeMeta& meta, size_t capacity) {
    auto s = std::make_shared<c10::StorageImpl>();
    s->data = std::move(data_ptr);
    s->nbytes = capacity;
    impl_->storage_ = c10::Storage(std::move(s));
    impl_->meta = meta;
  }
  Tensor UnsafeSharedInstance() const {
    Tensor t;
    t.impl_ = impl_;
    return t;
  }
  const std::shared_ptr<TensorImpl>& getIntrusivePtr() const noexcept { return impl_; }
  DeviceType GetDeviceType() const noexcept { return CPU; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

/// A type-erased, owning blob (caffe2::Blob).
class Blob {
 public:
  Blob() = default;
  Blob(const Blob&) = delete;
  Blob& operator=(const Blob&) = delete;

  template <typename T>
  bool IsType() const noexcept {
    return ptr_ != nullptr && type_ == std::type_index(typeid(T));
  }
  template <typename T>
  const T& Get() const {
    if (!IsType<T>()) {
      CAFFE_THROW("wrong type for the Blob instance. Blob contains ", meta().name(),
                  " while caller expects ", typeid(T).name());
    }
    return *static_cast<const T*>(ptr_.get());
  }
  template <typename T>
  T* GetMutable() {
    if (!IsType<T>()) {
      ptr_ = std::shared_ptr<void>(new T(), [](void* p) { delete static_cast<T*>(p); });
      type_ = std::type_index(typeid(T));
      name_ = std::is_same<T, Tensor>::value ? "Tensor" : typeid(T).name();
    }
    return static_cast<T*>(ptr_.get());
  }
  void Reset() noexcept {
    ptr_.reset();
    type_ = std::type_index(typeid(void));
    name_ = "nullptr (uninitialized)";
  }
  const void* GetRaw() const noexcept { return ptr_.get(); }
  struct Meta {
    const char* n;
    const char* name() const noexcept { return n; }
  };
  Meta meta() const noexcept { return Meta{name_}; }

 private:
  std::shared_ptr<void> ptr_;
  std::type_index type_ = std::type_index(typeid(void));
  const char* name_ = "nullptr (uninitialized)";
};

inline bool BlobIsTensorType(const Blob& blob, DeviceType) { return blob.IsType<Tensor>(); }
inline Tensor* BlobGetMutableTensor(Blob* blob, DeviceType type) {
  if (!blob->IsType<Tensor>() || !blob->GetMutable<Tensor>()->defined()) {
    *blob->GetMutable<Tensor>() = Tensor(type);
  }
  return blob->GetMutable<Tensor>();
}
inline Tensor* BlobSetTensor(Blob* blob, Tensor&& tensor) {
  Tensor* t = blob->GetMutable<Tensor>();
  *t = std::move(tensor);
  return t;
}

/// A protobuf-shaped Argument (caffe2::Argument), with the fields the tests use.
struct Argument {
  std::string name;
  bool has_i = false, has_f = false, has_s = false;
  int64_t i = 0;
  float f = 0;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<float> floats;
};

/// A protobuf-shaped OperatorDef (caffe2::OperatorDef): accessors and wire serialization of
/// input (1), output (2), type (4), arg (5), engine (7).
class OperatorDef {
 public:
  const std::string& type() const { return type_; }
  void set_type(std::string t) { type_ = std::move(t); }
  const std::string& engine() const { return engine_; }
  void set_engine(std::string e) { engine_ = std::move(e); }
  int input_size() const { return static_cast<int>(inputs_.size()); }
  int output_size() const { return static_cast<int>(outputs_.size()); }
  const std::string& input(int i) const { return inputs_.at(static_cast<size_t>(i)); }
  const std::string& output(int i) const { return outputs_.at(static_cast<size_t>(i)); }
  void add_input(std::string n) { inputs_.push_back(std::move(n)); }
  void add_output(std::string n) { outputs_.push_back(std::move(n)); }
  std::vector<Argument>& args() { return args_; }
  const std::vector<Argument>& args() const { return args_; }

  bool SerializeToString(std::string* out) const {
    out->clear();
    for (const auto& n : inputs_) str(out, 1, n);
    for (const auto& n : outputs_) str(out, 2, n);
    str(out, 4, type_);
    for (const auto& a : args_) {
      std::string m;
      str(&m, 1, a.name);
      if (a.has_f) {
        tag(&m, 2, 5);
        char raw[4];
        std::memcpy(raw, &a.f, 4);
        m.append(raw, 4);
      }
      if (a.has_i) {
        tag(&m, 3, 0);
        varint(&m, static_cast<uint64_t>(a.i));
      }
      if (a.has_s) str(&m, 4, a.s);
      for (float v : a.floats) {
        tag(&m, 5, 5);
        char raw[4];
        std::memcpy(raw, &v, 4);
        m.append(raw, 4);
      }
      for (int64_t v : a.ints) {
        tag(&m, 6, 0);
        varint(&m, static_cast<uint64_t>(v));
      }
      str(out, 5, m);
    }
    if (!engine_.empty()) str(out, 7, engine_);
    return true;
  }

 private:
  static void varint(std::string* out, uint64_t v) {
    while (v >= 0x80) {
      out->push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out->push_back(static_cast<char>(v));
  }
  static void tag(std::string* out, int field, int wire) {
    varint(out, static_cast<uint64_t>(field) << 3 | static_cast<uint64_t>(wire));
  }
  static void str(std::string* out, int field, const std::string& s) {
    tag(out, field, 2);
    varint(out, s.size());
    out->append(s);
  }

  std::string type_, engine_;
  std::vector<std::string> inputs_, outputs_;
  std::vector<Argument> args_;
};

/// A protobuf-shaped NetDef: a name and operators.
class NetDef {
 public:
  const std::string& name() const { return name_; }
  void set_name(std::string n) { name_ = std::move(n); }
  std::vector<OperatorDef>* mutable_op() { return &ops_; }
  const std::vector<OperatorDef>& op() const { return ops_; }
  OperatorDef* add_op() {
    ops_.emplace_back();
    return &ops_.back();
  }

 private:
  std::string name_;
  std::vector<OperatorDef> ops_;
};

class NetBase;

/// Named blobs and nets (caffe2::Workspace).
class Workspace {
 public:
  Workspace() = default;
  ~Workspace();  // nets before blobs, as Caffe2
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  Blob* CreateBlob(const std::string& name) {
    std::unique_ptr<Blob>& b = blobs_[name];
    if (!b) b = std::make_unique<Blob>();
    return b.get();
  }
  Blob* GetBlob(const std::string& name) {
    auto it = blobs_.find(name);
    return it == blobs_.end() ? nullptr : it->second.get();
  }
  bool HasBlob(const std::string& name) const { return blobs_.count(name) != 0; }
  NetBase* CreateNet(const NetDef& def);
  bool RunNet(const std::string& name);
  bool RunNetOnce(const NetDef& def);

 private:
  std::map<std::string, std::unique_ptr<Blob>> blobs_;
  std::map<std::string, std::unique_ptr<NetBase>> nets_;
};

/// The base of every operator (caffe2::OperatorBase): inputs resolved (must exist) and outputs
/// created at construction.
class OperatorBase {
 public:
  OperatorBase(const OperatorDef& def, Workspace* ws) : def_(def) {
    for (int i = 0; i < def.input_size(); ++i) {
      Blob* b = ws->GetBlob(def.input(i));
      if (b == nullptr) {
        CAFFE_THROW("op ", def.type(), ": Encountered a non-existing input blob: ", def.input(i));
      }
      inputs_.push_back(b);
    }
    for (int i = 0; i < def.output_size(); ++i) outputs_.push_back(ws->CreateBlob(def.output(i)));
  }
  virtual ~OperatorBase() = default;
  OperatorBase(const OperatorBase&) = delete;
  OperatorBase& operator=(const OperatorBase&) = delete;

  virtual bool Run() = 0;
  virtual void Cancel() {}

  const Blob& InputBlob(int i) { return *inputs_.at(static_cast<size_t>(i)); }
  Blob* OutputBlob(int i) { return outputs_.at(static_cast<size_t>(i)); }
  int InputSize() const { return static_cast<int>(inputs_.size()); }
  int OutputSize() const { return static_cast<int>(outputs_.size()); }
  const OperatorDef& debug_def() const { return def_; }
  const std::string& type() const { return def_.type(); }

  template <typename T>
  T GetSingleArgument(const std::string& name, const T& default_value) const {
    for (const Argument& a : def_.args()) {
      if (a.name != name) continue;
      if constexpr (std::is_same<T, std::string>::value) return a.s;
      else if constexpr (std::is_floating_point<T>::value) return static_cast<T>(a.has_f ? a.f : static_cast<float>(a.i));
      else return static_cast<T>(a.i);
    }
    return default_value;
  }
  template <typename T>
  const T& Input(int i) {
    return InputBlob(i).Get<T>();
  }
  template <typename T>
  T* Output(int i) {
    return OutputBlob(i)->GetMutable<T>();
  }

 private:
  OperatorDef def_;
  std::vector<Blob*> inputs_;
  std::vector<Blob*> outputs_;
};

struct CPUContext {};

/// Operators on one device (caffe2::Operator<Context>): implement RunOnDevice.
template <class Context>
class Operator : public OperatorBase {
 public:
  Operator(const OperatorDef& def, Workspace* ws) : OperatorBase(def, ws) {}
  bool Run() final { return RunOnDevice(); }
  virtual bool RunOnDevice() = 0;
  const Tensor& Input(int i) { return InputBlob(i).Get<Tensor>(); }
  Tensor* Output(int i) { return BlobGetMutableTensor(OutputBlob(i), CPU); }
};

using OperatorCreator = std::function<std::unique_ptr<OperatorBase>(const OperatorDef&, Workspace*)>;

/// The CPU operator registry: type (or type_ENGINE_engine) to creator.
inline std::map<std::string, OperatorCreator>& CPUOperatorRegistry() {
  static std::map<std::string, OperatorCreator> registry;
  return registry;
}

inline bool standin_register(const std::string& key, OperatorCreator c) {
  if (!CPUOperatorRegistry().emplace(key, std::move(c)).second) {
    std::fprintf(stderr, "operator %s registered twice\n", key.c_str());
    std::abort();
  }
  return true;
}

#define STANDIN_CAT2(a, b) a##b
#define STANDIN_CAT(a, b) STANDIN_CAT2(a, b)
#define REGISTER_CPU_OPERATOR(name, ...)                                                      \
  static const bool STANDIN_CAT(standin_registered_, __COUNTER__) = ::caffe2::standin_register( \
      #name, [](const ::caffe2::OperatorDef& d, ::caffe2::Workspace* w) {                      \
        return std::unique_ptr<::caffe2::OperatorBase>(new __VA_ARGS__(d, w));                 \
      })
#define REGISTER_CPU_OPERATOR_WITH_ENGINE(name, engine, ...)                                  \
  static const bool STANDIN_CAT(standin_registered_, __COUNTER__) = ::caffe2::standin_register( \
      #name "_ENGINE_" #engine, [](const ::caffe2::OperatorDef& d, ::caffe2::Workspace* w) {   \
        return std::unique_ptr<::caffe2::OperatorBase>(new __VA_ARGS__(d, w));                 \
      })

/// Creates the operator for `def`: the def's engines left to right (an
/// UnsupportedOperatorFeature from a constructor tries the next), then the plain type.
inline std::unique_ptr<OperatorBase> CreateOperator(const OperatorDef& def, Workspace* ws) {
  auto& reg = CPUOperatorRegistry();
  std::string engines = def.engine();
  size_t start = 0;
  while (start <= engines.size() && !engines.empty()) {
    const size_t comma = engines.find(',', start);
    const std::string engine =
        engines.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    auto it = reg.find(def.type() + "_ENGINE_" + engine);
    if (it != reg.end()) {
      try {
        return it->second(def, ws);
      } catch (const UnsupportedOperatorFeature&) {
        // next engine
      }
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  auto it = reg.find(def.type());
  if (it == reg.end()) CAFFE_THROW("Cannot create operator of type '", def.type(), "'");
  return it->second(def, ws);
}

/// A simple net: operators run in order; the first that returns false stops the run.
class NetBase {
 public:
  NetBase(const NetDef& def, Workspace* ws) {
    for (const OperatorDef& op : def.op()) ops_.push_back(CreateOperator(op, ws));
  }
  bool Run() {
    for (auto& op : ops_) {
      if (!op->Run()) return false;
    }
    return true;
  }
  const std::vector<std::unique_ptr<OperatorBase>>& ops() const { return ops_; }

 private:
  std::vector<std::unique_ptr<OperatorBase>> ops_;
};

inline Workspace::~Workspace() { nets_.clear(); }

inline NetBase* Workspace::CreateNet(const NetDef& def) {
  auto net = std::make_unique<NetBase>(def, this);
  NetBase* raw = net.get();
  nets_[def.name()] = std::move(net);
  return raw;
}

inline bool Workspace::RunNet(const std::string& name) {
  auto it = nets_.find(name);
  if (it == nets_.end()) CAFFE_THROW("Network ", name, " does not exist yet.");
  return it->second->Run();
}

inline bool Workspace::RunNetOnce(const NetDef& def) { return NetBase(def, this).Run(); }

namespace db {

/// A thread-safe, wrapping record reader (caffe2::db::DBReader) over records held in memory:
/// the stand-in host's "own DB".
class DBReader {
 public:
  DBReader() = default;
  void Open(std::vector<std::pair<std::string, std::string>> records) {
    std::lock_guard<std::mutex> lock(mu_);
    records_ = std::move(records);
    pos_ = 0;
  }
  void Read(std::string* key, std::string* value) const {
    std::lock_guard<std::mutex> lock(mu_);
    if (records_.empty()) CAFFE_THROW("Cursor is at invalid location!");
    *key = records_[pos_].first;
    *value = records_[pos_].second;
    pos_ = (pos_ + 1) % records_.size();
  }
  size_t reads() const {
    std::lock_guard<std::mutex> lock(mu_);
    return pos_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> records_;
  mutable size_t pos_ = 0;
};

}  // namespace db
}  // namespace caffe2

#endif  // C2RS_STANDIN_CAFFE2_H

// DLPack exchange through the C ABI: zero-copy export (same data pointer, read-only flag,
// outlives the tensor), adoption of host-made tensors with a counting deleter (called exactly
// once, after the last user, never when the import fails), rejection of what caffe2rs cannot
// represent, and the DLPack v1 struct layout (x86-64).
#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <memory>
#include <vector>

#include "c2rs_test_util.h"
#include "caffe2rs.h"

using c2rs_test::last_error;

// The DLPack v1 ABI on LP64 (x86-64, aarch64): these layouts are what every framework shares.
static_assert(sizeof(DLPackVersion) == 8, "DLPackVersion size");
static_assert(sizeof(DLDevice) == 8, "DLDevice size");
static_assert(sizeof(DLDataType) == 4, "DLDataType size");
static_assert(offsetof(DLDataType, code) == 0 && offsetof(DLDataType, bits) == 1 &&
                  offsetof(DLDataType, lanes) == 2,
              "DLDataType layout");
static_assert(sizeof(DLTensor) == 48, "DLTensor size");
static_assert(offsetof(DLTensor, data) == 0, "DLTensor.data");
static_assert(offsetof(DLTensor, device) == 8, "DLTensor.device");
static_assert(offsetof(DLTensor, ndim) == 16, "DLTensor.ndim");
static_assert(offsetof(DLTensor, dtype) == 20, "DLTensor.dtype");
static_assert(offsetof(DLTensor, shape) == 24, "DLTensor.shape");
static_assert(offsetof(DLTensor, strides) == 32, "DLTensor.strides");
static_assert(offsetof(DLTensor, byte_offset) == 40, "DLTensor.byte_offset");
static_assert(sizeof(DLManagedTensorVersioned) == 80, "DLManagedTensorVersioned size");
static_assert(offsetof(DLManagedTensorVersioned, version) == 0, "version");
static_assert(offsetof(DLManagedTensorVersioned, manager_ctx) == 8, "manager_ctx");
static_assert(offsetof(DLManagedTensorVersioned, deleter) == 16, "deleter");
static_assert(offsetof(DLManagedTensorVersioned, flags) == 24, "flags");
static_assert(offsetof(DLManagedTensorVersioned, dl_tensor) == 32, "dl_tensor");
static_assert(DLPACK_MAJOR_VERSION == 1, "DLPack major version");
static_assert(DLPACK_FLAG_BITMASK_READ_ONLY == 1 && DLPACK_FLAG_BITMASK_IS_COPIED == 2,
              "DLPack flag bits");
static_assert(kDLCPU == 1 && kDLCUDA == 2 && kDLCUDAHost == 3, "DLPack device numbers");
static_assert(kDLInt == 0 && kDLUInt == 1 && kDLFloat == 2 && kDLBfloat == 4 && kDLBool == 6,
              "DLPack dtype codes");

namespace {

struct TensorFree {
  void operator()(c2rs_tensor* t) const { c2rs_tensor_free(t); }
};
using TensorPtr = std::unique_ptr<c2rs_tensor, TensorFree>;

// A DLPack tensor made by the host: it owns its data, shape and strides; the deleter counts.
struct HostTensor {
  DLManagedTensorVersioned managed{};
  std::vector<float> data;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
  int deleted = 0;

  static void deleter(DLManagedTensorVersioned* self) {
    static_cast<HostTensor*>(self->manager_ctx)->deleted += 1;
  }

  HostTensor(std::vector<int64_t> shape_in, std::vector<float> values) {
    data = std::move(values);
    shape = std::move(shape_in);
    managed.version.major = DLPACK_MAJOR_VERSION;
    managed.version.minor = DLPACK_MINOR_VERSION;
    managed.manager_ctx = this;
    managed.deleter = &HostTensor::deleter;
    managed.flags = 0;
    managed.dl_tensor.data = data.data();
    managed.dl_tensor.device.device_type = kDLCPU;
    managed.dl_tensor.device.device_id = 0;
    managed.dl_tensor.ndim = static_cast<int32_t>(shape.size());
    managed.dl_tensor.dtype.code = kDLFloat;
    managed.dl_tensor.dtype.bits = 32;
    managed.dl_tensor.dtype.lanes = 1;
    managed.dl_tensor.shape = shape.data();
    managed.dl_tensor.strides = nullptr;
    managed.dl_tensor.byte_offset = 0;
  }
  void set_strides(std::vector<int64_t> s) {
    strides = std::move(s);
    managed.dl_tensor.strides = strides.data();
  }
};

TensorPtr new_float_tensor(std::vector<int64_t> dims, const std::vector<float>& values) {
  c2rs_tensor* t = nullptr;
  EXPECT_EQ(c2rs_tensor_new(C2RS_DTYPE_FLOAT, dims.data(), dims.size(), &t), C2RS_OK);
  void* m = nullptr;
  EXPECT_EQ(c2rs_tensor_mutable_data(t, &m), C2RS_OK);
  std::memcpy(m, values.data(), values.size() * sizeof(float));
  return TensorPtr(t);
}

const void* data_of(const c2rs_tensor* t) {
  const void* d = nullptr;
  EXPECT_EQ(c2rs_tensor_data(t, &d), C2RS_OK) << last_error();
  return d;
}

// Import fails with `status`, `*out` stays NULL and the deleter has not run.
void expect_import_rejected(HostTensor& host, int32_t status) {
  c2rs_tensor* out = reinterpret_cast<c2rs_tensor*>(static_cast<uintptr_t>(0x40));
  EXPECT_EQ(c2rs_tensor_from_dlpack(&host.managed, &out), status) << last_error();
  EXPECT_EQ(out, nullptr);
  EXPECT_EQ(host.deleted, 0) << "a failed import must not call the deleter";
  EXPECT_NE(last_error().find("c2rs_tensor_from_dlpack"), std::string::npos) << last_error();
}

}  // namespace

TEST(DLPackExport, SharesTheDataPointerAndIsReadOnly) {
  TensorPtr t = new_float_tensor({2, 3}, {1, 2, 3, 4, 5, 6});
  DLManagedTensorVersioned* dl = nullptr;
  ASSERT_EQ(c2rs_tensor_to_dlpack(t.get(), &dl), C2RS_OK) << last_error();
  ASSERT_NE(dl, nullptr);
  EXPECT_EQ(dl->version.major, 1u);
  EXPECT_NE(dl->flags & DLPACK_FLAG_BITMASK_READ_ONLY, 0u);
  EXPECT_EQ(dl->flags & DLPACK_FLAG_BITMASK_IS_COPIED, 0u);
  const DLTensor& d = dl->dl_tensor;
  EXPECT_EQ(static_cast<const uint8_t*>(d.data) + d.byte_offset, data_of(t.get()))
      << "zero copy";
  EXPECT_EQ(d.device.device_type, kDLCPU);
  EXPECT_EQ(d.ndim, 2);
  EXPECT_EQ(d.shape[0], 2);
  EXPECT_EQ(d.shape[1], 3);
  EXPECT_EQ(d.strides, nullptr);
  EXPECT_EQ(d.dtype.code, kDLFloat);
  EXPECT_EQ(d.dtype.bits, 32);
  EXPECT_EQ(d.dtype.lanes, 1);
  ASSERT_NE(dl->deleter, nullptr);
  dl->deleter(dl);
}

TEST(DLPackExport, OutlivesTensorFree) {
  TensorPtr t = new_float_tensor({4}, {1.5f, -2.5f, 3.5f, 0.25f});
  DLManagedTensorVersioned* dl = nullptr;
  ASSERT_EQ(c2rs_tensor_to_dlpack(t.get(), &dl), C2RS_OK);
  t.reset();  // c2rs_tensor_free
  const auto* values =
      reinterpret_cast<const float*>(static_cast<const uint8_t*>(dl->dl_tensor.data) +
                                     dl->dl_tensor.byte_offset);
  EXPECT_EQ(values[0], 1.5f);
  EXPECT_EQ(values[1], -2.5f);
  EXPECT_EQ(values[3], 0.25f);
  EXPECT_EQ(dl->dl_tensor.shape[0], 4);
  dl->deleter(dl);
}

TEST(DLPackExport, LaterWritesToTheTensorCopyFirst) {
  TensorPtr t = new_float_tensor({2}, {1, 2});
  DLManagedTensorVersioned* dl = nullptr;
  ASSERT_EQ(c2rs_tensor_to_dlpack(t.get(), &dl), C2RS_OK);
  void* m = nullptr;
  ASSERT_EQ(c2rs_tensor_mutable_data(t.get(), &m), C2RS_OK);
  EXPECT_NE(m, dl->dl_tensor.data) << "shared storage must be copied before a write";
  static_cast<float*>(m)[0] = 42.0f;
  EXPECT_EQ(static_cast<const float*>(dl->dl_tensor.data)[0], 1.0f);
  dl->deleter(dl);
}

TEST(DLPackExport, DtypesMapToDLPackCodes) {
  struct Case {
    int32_t dtype;
    uint8_t code;
    uint8_t bits;
  };
  const Case cases[] = {
      {C2RS_DTYPE_FLOAT, kDLFloat, 32},  {C2RS_DTYPE_DOUBLE, kDLFloat, 64},
      {C2RS_DTYPE_FLOAT16, kDLFloat, 16}, {C2RS_DTYPE_INT8, kDLInt, 8},
      {C2RS_DTYPE_INT16, kDLInt, 16},    {C2RS_DTYPE_INT32, kDLInt, 32},
      {C2RS_DTYPE_INT64, kDLInt, 64},    {C2RS_DTYPE_UINT8, kDLUInt, 8},
      {C2RS_DTYPE_UINT16, kDLUInt, 16},  {C2RS_DTYPE_BOOL, kDLBool, 8},
      {C2RS_DTYPE_BYTE, kDLUInt, 8},
  };
  const int64_t dims[1] = {3};
  for (const Case& c : cases) {
    SCOPED_TRACE("dtype " + std::to_string(c.dtype));
    c2rs_tensor* t = nullptr;
    ASSERT_EQ(c2rs_tensor_new(c.dtype, dims, 1, &t), C2RS_OK);
    TensorPtr owner(t);
    DLManagedTensorVersioned* dl = nullptr;
    ASSERT_EQ(c2rs_tensor_to_dlpack(t, &dl), C2RS_OK) << last_error();
    EXPECT_EQ(dl->dl_tensor.dtype.code, c.code);
    EXPECT_EQ(dl->dl_tensor.dtype.bits, c.bits);
    EXPECT_EQ(dl->dl_tensor.dtype.lanes, 1);
    dl->deleter(dl);
  }
  c2rs_tensor* s = nullptr;
  ASSERT_EQ(c2rs_tensor_new(C2RS_DTYPE_STRING, dims, 1, &s), C2RS_OK);
  TensorPtr s_owner(s);
  DLManagedTensorVersioned* dl = reinterpret_cast<DLManagedTensorVersioned*>(uintptr_t{0x40});
  EXPECT_EQ(c2rs_tensor_to_dlpack(s, &dl), C2RS_UNSUPPORTED);
  EXPECT_EQ(dl, nullptr);
}

TEST(DLPackImport, AdoptsWithoutCopyAndDeletesOnceWhenTheTensorIsFreed) {
  HostTensor host({2, 2}, {1, 2, 3, 4});
  c2rs_tensor* t = nullptr;
  ASSERT_EQ(c2rs_tensor_from_dlpack(&host.managed, &t), C2RS_OK) << last_error();
  EXPECT_EQ(data_of(t), host.data.data()) << "zero copy";
  int32_t dtype = 0;
  ASSERT_EQ(c2rs_tensor_dtype(t, &dtype), C2RS_OK);
  EXPECT_EQ(dtype, C2RS_DTYPE_FLOAT);
  int64_t n = 0;
  ASSERT_EQ(c2rs_tensor_numel(t, &n), C2RS_OK);
  EXPECT_EQ(n, 4);
  EXPECT_EQ(host.deleted, 0) << "still in use";
  c2rs_tensor_free(t);
  EXPECT_EQ(host.deleted, 1);
}

TEST(DLPackImport, DeleterWaitsForTheLastUser) {
  HostTensor host({3}, {7, 8, 9});
  c2rs_tensor* t = nullptr;
  ASSERT_EQ(c2rs_tensor_from_dlpack(&host.managed, &t), C2RS_OK) << last_error();
  // Re-export: the export shares the adopted storage.
  DLManagedTensorVersioned* again = nullptr;
  ASSERT_EQ(c2rs_tensor_to_dlpack(t, &again), C2RS_OK);
  EXPECT_EQ(again->dl_tensor.data, static_cast<void*>(host.data.data()));
  c2rs_tensor_free(t);
  EXPECT_EQ(host.deleted, 0) << "the re-export still uses the host's memory";
  again->deleter(again);
  EXPECT_EQ(host.deleted, 1);
}

TEST(DLPackImport, WritableImportIsWrittenInPlace) {
  HostTensor host({2}, {1, 2});
  c2rs_tensor* t = nullptr;
  ASSERT_EQ(c2rs_tensor_from_dlpack(&host.managed, &t), C2RS_OK);
  TensorPtr owner(t);
  void* m = nullptr;
  ASSERT_EQ(c2rs_tensor_mutable_data(t, &m), C2RS_OK);
  EXPECT_EQ(m, host.data.data());
  static_cast<float*>(m)[1] = 5.0f;
  EXPECT_EQ(host.data[1], 5.0f);
}

TEST(DLPackImport, ReadOnlyImportIsCopiedBeforeAWrite) {
  HostTensor host({2}, {1, 2});
  host.managed.flags = DLPACK_FLAG_BITMASK_READ_ONLY;
  c2rs_tensor* t = nullptr;
  ASSERT_EQ(c2rs_tensor_from_dlpack(&host.managed, &t), C2RS_OK);
  EXPECT_EQ(data_of(t), host.data.data());
  void* m = nullptr;
  ASSERT_EQ(c2rs_tensor_mutable_data(t, &m), C2RS_OK);
  EXPECT_NE(m, host.data.data());
  static_cast<float*>(m)[0] = 9.0f;
  EXPECT_EQ(host.data[0], 1.0f) << "read-only host memory must not be written";
  c2rs_tensor_free(t);
  EXPECT_EQ(host.deleted, 1);
}

TEST(DLPackImport, CompactStridesAreAccepted) {
  HostTensor host({2, 3}, {0, 1, 2, 3, 4, 5});
  host.set_strides({3, 1});
  c2rs_tensor* t = nullptr;
  ASSERT_EQ(c2rs_tensor_from_dlpack(&host.managed, &t), C2RS_OK) << last_error();
  c2rs_tensor_free(t);
  EXPECT_EQ(host.deleted, 1);
}

TEST(DLPackImport, NonCompactStridesAreUnsupported) {
  HostTensor transposed({3, 2}, {0, 1, 2, 3, 4, 5});
  transposed.set_strides({1, 3});
  expect_import_rejected(transposed, C2RS_UNSUPPORTED);
  HostTensor strided({3}, {0, 1, 2, 3, 4, 5});
  strided.set_strides({2});
  expect_import_rejected(strided, C2RS_UNSUPPORTED);
  // The caller still owns a rejected tensor and releases it itself.
  transposed.managed.deleter(&transposed.managed);
  EXPECT_EQ(transposed.deleted, 1);
}

TEST(DLPackImport, UnknownDtypesAreUnsupported) {
  struct Bad {
    uint8_t code;
    uint8_t bits;
    uint16_t lanes;
  };
  const Bad bad[] = {{kDLComplex, 64, 1}, {kDLFloat, 8, 1},  {kDLFloat, 32, 4},
                     {kDLUInt, 32, 1},    {kDLOpaqueHandle, 64, 1}, {kDLBfloat, 16, 1},
                     {kDLInt, 4, 1},      {99, 32, 1}};
  for (const Bad& b : bad) {
    SCOPED_TRACE("code " + std::to_string(b.code) + " bits " + std::to_string(b.bits) +
                 " lanes " + std::to_string(b.lanes));
    HostTensor host({2}, {1, 2});
    host.managed.dl_tensor.dtype.code = b.code;
    host.managed.dl_tensor.dtype.bits = b.bits;
    host.managed.dl_tensor.dtype.lanes = b.lanes;
    expect_import_rejected(host, C2RS_UNSUPPORTED);
  }
}

TEST(DLPackImport, NonHostDeviceAndOtherMajorVersionAreUnsupported) {
  HostTensor cuda({2}, {1, 2});
  cuda.managed.dl_tensor.device.device_type = kDLCUDA;
  expect_import_rejected(cuda, C2RS_UNSUPPORTED);
  HostTensor v2({2}, {1, 2});
  v2.managed.version.major = 2;
  expect_import_rejected(v2, C2RS_UNSUPPORTED);
}

TEST(DLPackImport, BadShapeOrDataPointerIsInvalidArgument) {
  HostTensor negative({2, -1}, {1, 2});
  expect_import_rejected(negative, C2RS_INVALID_ARGUMENT);
  HostTensor null_data({2}, {1, 2});
  null_data.managed.dl_tensor.data = nullptr;
  expect_import_rejected(null_data, C2RS_INVALID_ARGUMENT);
  HostTensor misaligned({2}, {1, 2, 3});
  misaligned.managed.dl_tensor.byte_offset = 1;
  expect_import_rejected(misaligned, C2RS_INVALID_ARGUMENT);
}

TEST(DLPackImport, SizeBeyondTheAddressSpaceIsInvalidAndNothingIsAdopted) {
  // 2^61 floats are 2^63 bytes: more than any buffer can hold, refused before adopting (a
  // refusal after adopting would have run the producer's deleter).
  HostTensor huge({int64_t{1} << 61}, {1});
  expect_import_rejected(huge, C2RS_INVALID_ARGUMENT);
  EXPECT_NE(last_error().find("too large"), std::string::npos) << last_error();
  // Data that would run past the top of the address space.
  HostTensor wrapping({16}, {1});  // 16 int8 elements starting 8 bytes below the top
  wrapping.managed.dl_tensor.data = reinterpret_cast<void*>(~uintptr_t{0} - 7);
  wrapping.managed.dl_tensor.dtype.code = kDLInt;
  wrapping.managed.dl_tensor.dtype.bits = 8;
  expect_import_rejected(wrapping, C2RS_INVALID_ARGUMENT);
  EXPECT_NE(last_error().find("wraps around"), std::string::npos) << last_error();
}

TEST(DLPackImport, ByteOffsetIsHonoured) {
  HostTensor host({2}, {10, 20, 30});
  host.managed.dl_tensor.byte_offset = sizeof(float);
  c2rs_tensor* t = nullptr;
  ASSERT_EQ(c2rs_tensor_from_dlpack(&host.managed, &t), C2RS_OK) << last_error();
  const auto* values = static_cast<const float*>(data_of(t));
  EXPECT_EQ(values, host.data.data() + 1);
  EXPECT_EQ(values[0], 20.0f);
  EXPECT_EQ(values[1], 30.0f);
  c2rs_tensor_free(t);
  EXPECT_EQ(host.deleted, 1);
}

TEST(DLPackImport, NullArgumentsAreInvalidAndNothingIsAdopted) {
  HostTensor host({1}, {1});
  EXPECT_EQ(c2rs_tensor_from_dlpack(&host.managed, nullptr), C2RS_INVALID_ARGUMENT);
  EXPECT_NE(last_error().find("`out`"), std::string::npos) << last_error();
  EXPECT_EQ(host.deleted, 0);
  c2rs_tensor* t = nullptr;
  EXPECT_EQ(c2rs_tensor_from_dlpack(nullptr, &t), C2RS_INVALID_ARGUMENT);
  EXPECT_NE(last_error().find("`in`"), std::string::npos) << last_error();
}

// The C++ wrapper include/caffe2rs.hpp: errors become c2rs::Error with the status and the
// library's message; RAII classes free exactly once, also across moves; accessors forward to the
// C ABI; DLPack ownership passes only on success.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "c2rs_test_util.h"
#include "caffe2rs.hpp"

using c2rs_test::golden_path;
using c2rs_test::read_file;

static_assert(!std::is_copy_constructible_v<c2rs::Tensor>, "Tensor is move-only");
static_assert(!std::is_copy_assignable_v<c2rs::Tensor>, "Tensor is move-only");
static_assert(std::is_nothrow_move_constructible_v<c2rs::Tensor>, "Tensor moves never throw");
static_assert(std::is_nothrow_move_assignable_v<c2rs::Tensor>, "Tensor moves never throw");
static_assert(!std::is_copy_constructible_v<c2rs::Buffer>, "Buffer is move-only");
static_assert(!std::is_copy_constructible_v<c2rs::StringList>, "StringList is move-only");
static_assert(!std::is_copy_constructible_v<c2rs::TensorList>, "TensorList is move-only");
static_assert(std::is_nothrow_move_constructible_v<c2rs::TensorList>, "TensorList moves");
static_assert(std::is_base_of_v<std::runtime_error, c2rs::Error>, "Error is a runtime_error");

namespace {

// A host-made DLPack tensor whose deleter counts calls: detects double frees and leaks of the
// c2rs_tensor that adopts it.
struct Counted {
  DLManagedTensorVersioned managed{};
  std::vector<int32_t> data;
  int64_t shape[1];
  int deleted = 0;

  explicit Counted(std::vector<int32_t> values) : data(std::move(values)) {
    shape[0] = static_cast<int64_t>(data.size());
    managed.version.major = DLPACK_MAJOR_VERSION;
    managed.version.minor = DLPACK_MINOR_VERSION;
    managed.manager_ctx = this;
    managed.deleter = [](DLManagedTensorVersioned* self) {
      static_cast<Counted*>(self->manager_ctx)->deleted += 1;
    };
    managed.dl_tensor.data = data.data();
    managed.dl_tensor.device = DLDevice{kDLCPU, 0};
    managed.dl_tensor.ndim = 1;
    managed.dl_tensor.dtype = DLDataType{kDLInt, 32, 1};
    managed.dl_tensor.shape = shape;
    managed.dl_tensor.strides = nullptr;
    managed.dl_tensor.byte_offset = 0;
  }
};

}  // namespace

TEST(HppError, CarriesStatusAndLibraryMessage) {
  const std::string garbage = "\xff\xff\xff\xff";
  try {
    (void)c2rs::Tensor::from_proto(garbage);
    FAIL() << "decoding garbage did not throw";
  } catch (const c2rs::Error& e) {
    EXPECT_EQ(e.status(), C2RS_PARSE_ERROR);
    EXPECT_NE(std::string(e.what()).find("c2rs_tensor_from_proto"), std::string::npos) << e.what();
  }
  try {
    (void)c2rs::Tensor::create(11, {2});
    FAIL() << "dtype 11 did not throw";
  } catch (const std::runtime_error& e) {  // catchable as the standard base
    const auto* error = dynamic_cast<const c2rs::Error*>(&e);
    ASSERT_NE(error, nullptr);
    EXPECT_EQ(error->status(), C2RS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("`dtype`"), std::string::npos) << e.what();
  }
}

TEST(HppError, CheckPassesOkAndThrowsOtherwise) {
  EXPECT_NO_THROW(c2rs::check(C2RS_OK));
  int64_t n = 0;
  const int32_t status = c2rs_tensor_numel(nullptr, &n);
  try {
    c2rs::check(status);
    FAIL();
  } catch (const c2rs::Error& e) {
    EXPECT_EQ(e.status(), C2RS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("`t`"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(c2rs::check_abi());
  EXPECT_EQ(c2rs::status_name(C2RS_CLOSED), "C2RS_CLOSED");
  EXPECT_EQ(c2rs::abi_version(), (uint32_t{C2RS_ABI_MAJOR} << 16) | C2RS_ABI_MINOR);
}

TEST(HppTensor, MovesTransferOwnershipAndFreeExactlyOnce) {
  Counted a({1, 2, 3});
  Counted b({4});
  {
    c2rs::Tensor t1 = c2rs::Tensor::from_dlpack(&a.managed);
    c2rs::Tensor t2(std::move(t1));  // move construction
    EXPECT_FALSE(t1);                // NOLINT(bugprone-use-after-move): moved-from is empty
    EXPECT_TRUE(t2);
    EXPECT_EQ(t2.numel(), 3);
    c2rs::Tensor t3 = c2rs::Tensor::from_dlpack(&b.managed);
    t3 = std::move(t2);  // move assignment frees what t3 held (b) at once
    EXPECT_EQ(b.deleted, 1);
    EXPECT_EQ(a.deleted, 0);
    EXPECT_EQ(t3.to_vector<int32_t>(), (std::vector<int32_t>{1, 2, 3}));
    std::vector<c2rs::Tensor> many;
    many.push_back(std::move(t3));
    many.reserve(64);  // reallocation moves the element again
    EXPECT_EQ(a.deleted, 0);
  }
  EXPECT_EQ(a.deleted, 1);
  EXPECT_EQ(b.deleted, 1);
}

TEST(HppTensor, ReleaseHandsOwnershipToTheCaller) {
  Counted a({5});
  c2rs_tensor* raw = nullptr;
  {
    c2rs::Tensor t = c2rs::Tensor::from_dlpack(&a.managed);
    raw = t.release();
    EXPECT_FALSE(t);
  }
  EXPECT_EQ(a.deleted, 0);
  c2rs_tensor_free(raw);
  EXPECT_EQ(a.deleted, 1);
}

TEST(HppTensor, CreateAndAccessors) {
  c2rs::Tensor t = c2rs::Tensor::create(C2RS_DTYPE_DOUBLE, {2, 3});
  EXPECT_EQ(t.dtype(), C2RS_DTYPE_DOUBLE);
  EXPECT_EQ(t.dims(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(t.numel(), 6);
  double* m = t.mutable_data<double>();
  for (int i = 0; i < 6; ++i) m[i] = i * 0.5;
  EXPECT_EQ(t.data<double>()[5], 2.5);
  EXPECT_EQ(t.to_vector<double>(), (std::vector<double>{0, 0.5, 1, 1.5, 2, 2.5}));

  c2rs::Tensor scalar = c2rs::Tensor::create(C2RS_DTYPE_INT64, std::vector<int64_t>{});
  EXPECT_TRUE(scalar.dims().empty());
  EXPECT_EQ(scalar.numel(), 1);

  c2rs::Tensor empty = c2rs::Tensor::create(C2RS_DTYPE_FLOAT, {0, 4});
  EXPECT_EQ(empty.numel(), 0);
  EXPECT_EQ(empty.data<float>(), nullptr);
  EXPECT_TRUE(empty.to_vector<float>().empty());
}

TEST(HppTensor, ElementTypeMustMatchDtype) {
  c2rs::Tensor t = c2rs::Tensor::create(C2RS_DTYPE_FLOAT, {2});
  try {
    (void)t.data<double>();
    FAIL();
  } catch (const c2rs::Error& e) {
    EXPECT_EQ(e.status(), C2RS_TYPE_MISMATCH);
    EXPECT_NE(std::string(e.what()).find("dtype FLOAT"), std::string::npos) << e.what();
  }
  c2rs::Tensor i = c2rs::Tensor::create(C2RS_DTYPE_INT32, {2});
  try {
    (void)i.mutable_data<float>();
    FAIL();
  } catch (const c2rs::Error& e) {
    EXPECT_EQ(e.status(), C2RS_TYPE_MISMATCH);
    // The dtype is named, not numbered ("dtype 2").
    EXPECT_NE(std::string(e.what()).find("does not match dtype INT32"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW((void)t.mutable_data<int32_t>(), c2rs::Error);
  // FLOAT16 reads as its uint16_t bit patterns; BOOL and BYTE as uint8_t.
  c2rs::Tensor h = c2rs::Tensor::create(C2RS_DTYPE_FLOAT16, {1});
  h.mutable_data<uint16_t>()[0] = 0x3C00;  // 1.0
  EXPECT_EQ(c2rs::half_to_float(h.data<uint16_t>()[0]), 1.0f);
  EXPECT_NO_THROW((void)c2rs::Tensor::create(C2RS_DTYPE_BOOL, {1}).data<bool>());
  EXPECT_NO_THROW((void)c2rs::Tensor::create(C2RS_DTYPE_BYTE, {1}).data<uint8_t>());
}

TEST(HppTensor, StringsSetAndGet) {
  c2rs::Tensor s = c2rs::Tensor::create(C2RS_DTYPE_STRING, {2});
  s.set_string(0, std::string("a\0b", 3));
  s.set_string(1, "caffe2");
  EXPECT_EQ(s.string_at(0), std::string("a\0b", 3));
  EXPECT_EQ(s.string_view_at(1), "caffe2");
  try {
    (void)s.string_at(2);
    FAIL();
  } catch (const c2rs::Error& e) {
    EXPECT_EQ(e.status(), C2RS_INVALID_ARGUMENT);
  }
  EXPECT_THROW((void)s.data<uint8_t>(), c2rs::Error);
}

TEST(HppTensor, ProtoRoundTrip) {
  c2rs::Tensor t = c2rs::Tensor::create(C2RS_DTYPE_INT32, {3});
  int32_t* m = t.mutable_data<int32_t>();
  m[0] = std::numeric_limits<int32_t>::min();
  m[1] = 0;
  m[2] = std::numeric_limits<int32_t>::max();
  const c2rs::Buffer bytes = t.to_proto();
  EXPECT_GT(bytes.size(), 0u);
  EXPECT_EQ(bytes.bytes().size(), bytes.size());
  const c2rs::Tensor back = c2rs::Tensor::from_proto(bytes.data(), bytes.size());
  EXPECT_EQ(back.to_vector<int32_t>(), t.to_vector<int32_t>());
}

TEST(HppTensor, DlpackExportAndImportShareMemory) {
  c2rs::Tensor t = c2rs::Tensor::create(C2RS_DTYPE_FLOAT, {4});
  t.mutable_data<float>()[2] = 3.0f;
  const float* original = t.data<float>();
  c2rs::DLPackPtr exported = t.to_dlpack();
  ASSERT_TRUE(exported);
  EXPECT_EQ(exported->dl_tensor.data, static_cast<const void*>(original));
  t = c2rs::Tensor();  // free the original; the export keeps the elements
  c2rs::Tensor again = c2rs::Tensor::from_dlpack(exported);
  EXPECT_FALSE(exported) << "ownership passed to the tensor";
  EXPECT_EQ(again.data<float>(), original);
  EXPECT_EQ(again.data<float>()[2], 3.0f);
}

TEST(HppTensor, FailedDlpackImportLeavesOwnershipWithTheCaller) {
  Counted c({1, 2});
  c.managed.dl_tensor.dtype = DLDataType{kDLComplex, 64, 1};
  {
    c2rs::DLPackPtr ptr(&c.managed);
    try {
      (void)c2rs::Tensor::from_dlpack(ptr);
      FAIL();
    } catch (const c2rs::Error& e) {
      EXPECT_EQ(e.status(), C2RS_UNSUPPORTED);
    }
    EXPECT_TRUE(ptr);
    EXPECT_EQ(c.deleted, 0);
  }
  EXPECT_EQ(c.deleted, 1) << "DLPackPtr ran the deleter";
}

TEST(HppTensorList, DecodesGoldenRecordAndEncodesItBack) {
  const std::vector<uint8_t> bytes = read_file(golden_path("tensors/all.tensorprotos.pb"));
  const c2rs::TensorList list = c2rs::TensorList::decode(bytes.data(), bytes.size());
  ASSERT_EQ(list.size(), 14u);
  EXPECT_EQ(list[0].dtype(), C2RS_DTYPE_FLOAT);
  EXPECT_EQ(list[0].dims(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(list[11].string_at(1), "caffe2");
  EXPECT_THROW((void)list[14], c2rs::Error);

  std::vector<c2rs::TensorView> views;
  for (size_t i = 0; i < list.size(); ++i) views.push_back(list[i]);
  const c2rs::Buffer again = c2rs::encode_tensor_protos(views);
  c2rs::TensorList back = c2rs::TensorList::decode(again.view());
  ASSERT_EQ(back.size(), list.size());
  EXPECT_EQ(back[1].to_vector<int32_t>(), list[1].to_vector<int32_t>());
  EXPECT_EQ(back[11].string_at(2), list[11].string_at(2));

  c2rs::TensorList moved = std::move(back);
  EXPECT_EQ(moved.size(), 14u);
}

TEST(HppTensorList, OwnedTensorsConvertToViews) {
  const c2rs::Tensor a = c2rs::Tensor::create(C2RS_DTYPE_INT8, {2});
  const c2rs::Tensor b = c2rs::Tensor::create(C2RS_DTYPE_STRING, std::vector<int64_t>{});
  const c2rs::Buffer record = c2rs::encode_tensor_protos({a, b});
  const c2rs::TensorList list = c2rs::TensorList::decode(record.view());
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].dtype(), C2RS_DTYPE_INT8);
  EXPECT_EQ(list[1].dtype(), C2RS_DTYPE_STRING);
}

TEST(HppBufferAndStringList, EmptyHandlesAreSafe) {
  c2rs::Buffer buffer;
  EXPECT_FALSE(buffer);
  EXPECT_EQ(buffer.size(), 0u);
  EXPECT_TRUE(buffer.view().empty());
  c2rs::StringList strings;
  EXPECT_EQ(strings.size(), 0u);
  EXPECT_TRUE(strings.to_vector().empty());
  try {
    (void)strings[0];
    FAIL();
  } catch (const c2rs::Error& e) {
    EXPECT_EQ(e.status(), C2RS_INVALID_ARGUMENT);
  }
}

TEST(HppHalf, ConvertsEveryClassOfHalfExactly) {
  EXPECT_EQ(c2rs::half_to_float(0x0000), 0.0f);
  EXPECT_TRUE(std::signbit(c2rs::half_to_float(0x8000)));
  EXPECT_EQ(c2rs::half_to_float(0x3800), 0.5f);
  EXPECT_EQ(c2rs::half_to_float(0xC000), -2.0f);
  EXPECT_EQ(c2rs::half_to_float(0x7BFF), 65504.0f);
  EXPECT_EQ(c2rs::half_to_float(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(c2rs::half_to_float(0x03FF), std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(c2rs::half_to_float(0x0400), std::ldexp(1.0f, -14));     // smallest normal
  EXPECT_TRUE(std::isinf(c2rs::half_to_float(0x7C00)));
  EXPECT_TRUE(std::isnan(c2rs::half_to_float(0x7E00)));
}

TEST(HppNames, DtypeNames) {
  EXPECT_EQ(c2rs::dtype_name(C2RS_DTYPE_FLOAT16), "FLOAT16");
  EXPECT_EQ(c2rs::dtype_name(C2RS_DTYPE_BYTE), "BYTE");
  EXPECT_EQ(c2rs::dtype_name(11), "DTYPE_11");
}

TEST(HppWorkspace, FeedFetchChildAndErrorsThrow) {
  c2rs::Workspace parent;
  c2rs::Tensor t = c2rs::Tensor::create(C2RS_DTYPE_INT32, {2});
  t.mutable_data<int32_t>()[1] = 7;
  parent.feed("a", t);
  EXPECT_EQ(t.data<int32_t>()[1], 7) << "feed copies; the host keeps its tensor";
  parent.feed("b", std::move(t));
  EXPECT_EQ(t.handle(), nullptr) << "feed by move takes the handle";
  c2rs::Workspace child(&parent);
  EXPECT_TRUE(child.has_blob("a"));
  EXPECT_EQ(child.fetch("b").data<int32_t>()[1], 7);
  EXPECT_EQ(child.blob_names(false), std::vector<std::string>{});
  EXPECT_EQ(child.blob_names(true), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(parent.remove_blob("a"));
  EXPECT_FALSE(child.has_blob("a"));
  try {
    (void)child.fetch("a");
    FAIL() << "fetching a missing blob must throw";
  } catch (const c2rs::Error& e) {
    EXPECT_EQ(e.status(), C2RS_NOT_FOUND);
    EXPECT_NE(std::string(e.what()).find("a"), std::string::npos);
  }
}

TEST(HppBlobHandle, FeedFetchThroughAHandleAndRemovedBlobRules) {
  c2rs::Workspace ws;
  try {
    (void)ws.blob_handle("x");
    FAIL() << "a handle on a missing name without create must throw";
  } catch (const c2rs::Error& e) {
    EXPECT_EQ(e.status(), C2RS_NOT_FOUND);
  }
  c2rs::BlobHandle h = ws.blob_handle("x", /*create=*/true);
  EXPECT_TRUE(ws.has_blob("x"));
  EXPECT_TRUE(h.present());
  c2rs::Tensor t = c2rs::Tensor::create(C2RS_DTYPE_FLOAT, {4});
  for (int i = 0; i < 4; ++i) t.mutable_data<float>()[i] = static_cast<float>(i);
  h.feed(t);
  c2rs::Tensor before = h.fetch();
  t.mutable_data<float>()[0] = 9.0f;
  h.feed(t);  // same dtype and dims: copied into the blob's buffer
  EXPECT_EQ(before.data<float>()[0], 0.0f) << "an earlier fetch is a snapshot";
  EXPECT_EQ(ws.fetch("x").data<float>()[0], 9.0f) << "the named call sees the handle's feed";
  // Removed: absent, yet usable while the name is free; refused once it names another blob.
  EXPECT_TRUE(ws.remove_blob("x"));
  EXPECT_FALSE(h.present());
  EXPECT_EQ(h.fetch().data<float>()[0], 9.0f);
  ws.feed("x", t);
  try {
    (void)h.fetch();
    FAIL() << "a handle whose name holds another blob must throw";
  } catch (const c2rs::Error& e) {
    EXPECT_EQ(e.status(), C2RS_ENFORCE_NOT_MET);
    EXPECT_NE(std::string(e.what()).find("blob x was removed"), std::string::npos);
  }
  c2rs::BlobHandle moved = std::move(h);
  EXPECT_FALSE(h) << "moved-from handle is empty";
  EXPECT_TRUE(moved);
}

// Tensors through the C ABI: golden TensorProto vectors (written by Google's protobuf runtime
// from the public Caffe2 schema) decode to the dtypes, dims and values of
// tests/data/golden/tensors/manifest.json; re-encoding round-trips; malformed input, NULL arguments
// and bad integers give the documented statuses with messages; out-parameters are NULL on failure.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "c2rs_test_util.h"
#include "caffe2rs.h"
#include "caffe2rs.hpp"  // c2rs::half_to_float

using c2rs_test::golden_path;
using c2rs_test::last_error;
using c2rs_test::read_file;
using json = nlohmann::json;

namespace {

struct TensorFree {
  void operator()(c2rs_tensor* t) const { c2rs_tensor_free(t); }
};
struct BufferFree {
  void operator()(c2rs_buffer* b) const { c2rs_buffer_free(b); }
};
struct ListFree {
  void operator()(c2rs_tensor_list* l) const { c2rs_tensor_list_free(l); }
};
using TensorPtr = std::unique_ptr<c2rs_tensor, TensorFree>;
using BufferPtr = std::unique_ptr<c2rs_buffer, BufferFree>;
using ListPtr = std::unique_ptr<c2rs_tensor_list, ListFree>;

// A pointer value no call may leave behind on failure.
template <typename T>
T* sentinel() {
  return reinterpret_cast<T*>(static_cast<uintptr_t>(0x5a5a5a50));
}

const std::vector<int32_t> kAllDtypes = {
    C2RS_DTYPE_FLOAT, C2RS_DTYPE_INT32,  C2RS_DTYPE_BYTE,  C2RS_DTYPE_STRING,
    C2RS_DTYPE_BOOL,  C2RS_DTYPE_UINT8,  C2RS_DTYPE_INT8,  C2RS_DTYPE_UINT16,
    C2RS_DTYPE_INT16, C2RS_DTYPE_INT64,  C2RS_DTYPE_FLOAT16, C2RS_DTYPE_DOUBLE};

size_t element_size(int32_t dtype) {
  switch (dtype) {
    case C2RS_DTYPE_FLOAT:
    case C2RS_DTYPE_INT32:
      return 4;
    case C2RS_DTYPE_BYTE:
    case C2RS_DTYPE_BOOL:
    case C2RS_DTYPE_UINT8:
    case C2RS_DTYPE_INT8:
      return 1;
    case C2RS_DTYPE_UINT16:
    case C2RS_DTYPE_INT16:
    case C2RS_DTYPE_FLOAT16:
      return 2;
    case C2RS_DTYPE_INT64:
    case C2RS_DTYPE_DOUBLE:
      return 8;
    default:
      return 0;
  }
}

int32_t dtype_number(const std::string& name) {
  if (name == "FLOAT") return C2RS_DTYPE_FLOAT;
  if (name == "INT32") return C2RS_DTYPE_INT32;
  if (name == "BYTE") return C2RS_DTYPE_BYTE;
  if (name == "STRING") return C2RS_DTYPE_STRING;
  if (name == "BOOL") return C2RS_DTYPE_BOOL;
  if (name == "UINT8") return C2RS_DTYPE_UINT8;
  if (name == "INT8") return C2RS_DTYPE_INT8;
  if (name == "UINT16") return C2RS_DTYPE_UINT16;
  if (name == "INT16") return C2RS_DTYPE_INT16;
  if (name == "INT64") return C2RS_DTYPE_INT64;
  if (name == "FLOAT16") return C2RS_DTYPE_FLOAT16;
  if (name == "DOUBLE") return C2RS_DTYPE_DOUBLE;
  ADD_FAILURE() << "manifest names an unknown dtype " << name;
  return -1;
}

json manifest() {
  const std::vector<uint8_t> bytes = read_file(golden_path("tensors/manifest.json"));
  return json::parse(bytes.begin(), bytes.end());
}

TensorPtr decode(const std::vector<uint8_t>& bytes) {
  c2rs_tensor* t = nullptr;
  const int32_t status = c2rs_tensor_from_proto(bytes.data(), bytes.size(), &t);
  EXPECT_EQ(status, C2RS_OK) << last_error();
  return TensorPtr(t);
}

std::vector<int64_t> dims_of(const c2rs_tensor* t) {
  const int64_t* dims = nullptr;
  size_t ndim = 99;
  EXPECT_EQ(c2rs_tensor_dims(t, &dims, &ndim), C2RS_OK) << last_error();
  return ndim == 0 ? std::vector<int64_t>{} : std::vector<int64_t>(dims, dims + ndim);
}

int32_t dtype_of(const c2rs_tensor* t) {
  int32_t dtype = -1;
  EXPECT_EQ(c2rs_tensor_dtype(t, &dtype), C2RS_OK) << last_error();
  return dtype;
}

int64_t numel_of(const c2rs_tensor* t) {
  int64_t n = -1;
  EXPECT_EQ(c2rs_tensor_numel(t, &n), C2RS_OK) << last_error();
  return n;
}

std::string string_at(const c2rs_tensor* t, size_t i) {
  const uint8_t* p = nullptr;
  size_t len = 0;
  EXPECT_EQ(c2rs_tensor_string_at(t, i, &p, &len), C2RS_OK) << last_error();
  return len == 0 ? std::string() : std::string(reinterpret_cast<const char*>(p), len);
}

template <typename T>
T element(const void* data, size_t i) {
  T v;
  std::memcpy(&v, static_cast<const uint8_t*>(data) + i * sizeof(T), sizeof(T));
  return v;
}

// Expected values of a manifest entry in row-major order, expanded over the segment if any.
json expected_values(const json& entry) {
  if (!entry.contains("segment")) return entry["values"];
  int64_t total = 1;
  for (const auto& d : entry["dims"]) total *= d.get<int64_t>();
  json full = json::array();
  for (int64_t i = 0; i < total; ++i) full.push_back(0.0);
  const int64_t begin = entry["segment"][0].get<int64_t>();
  for (size_t k = 0; k < entry["values"].size(); ++k) full[begin + k] = entry["values"][k];
  return full;
}

// Compares a decoded tensor with one manifest entry: dtype, dims, every value.
void expect_matches_entry(const c2rs_tensor* t, const json& entry) {
  const std::string name = entry["name"].get<std::string>();
  SCOPED_TRACE(name);
  const int32_t dtype = dtype_number(entry["data_type"].get<std::string>());
  ASSERT_EQ(dtype_of(t), dtype);
  ASSERT_EQ(dims_of(t), entry["dims"].get<std::vector<int64_t>>());
  const json values = expected_values(entry);
  ASSERT_EQ(numel_of(t), static_cast<int64_t>(values.size()));

  if (dtype == C2RS_DTYPE_STRING) {
    const void* data = sentinel<void>();
    EXPECT_EQ(c2rs_tensor_data(t, &data), C2RS_TYPE_MISMATCH);
    for (size_t i = 0; i < values.size(); ++i) {
      EXPECT_EQ(string_at(t, i), values[i].get<std::string>()) << "element " << i;
    }
    return;
  }
  const void* data = nullptr;
  ASSERT_EQ(c2rs_tensor_data(t, &data), C2RS_OK) << last_error();
  if (values.empty()) {
    EXPECT_EQ(data, nullptr);
    return;
  }
  ASSERT_NE(data, nullptr);
  for (size_t i = 0; i < values.size(); ++i) {
    SCOPED_TRACE("element " + std::to_string(i));
    const json& v = values[i];
    switch (dtype) {
      case C2RS_DTYPE_FLOAT:
        EXPECT_EQ(element<float>(data, i), static_cast<float>(v.get<double>()));
        break;
      case C2RS_DTYPE_DOUBLE:
        EXPECT_EQ(element<double>(data, i), v.get<double>());
        break;
      case C2RS_DTYPE_FLOAT16:
        // Bit patterns converted exactly; the manifest lists the half values.
        EXPECT_EQ(c2rs::half_to_float(element<uint16_t>(data, i)),
                  static_cast<float>(v.get<double>()));
        break;
      case C2RS_DTYPE_INT32:
        EXPECT_EQ(element<int32_t>(data, i), v.get<int32_t>());
        break;
      case C2RS_DTYPE_INT64:
        EXPECT_EQ(element<int64_t>(data, i), v.get<int64_t>());
        break;
      case C2RS_DTYPE_INT16:
        EXPECT_EQ(element<int16_t>(data, i), v.get<int16_t>());
        break;
      case C2RS_DTYPE_UINT16:
        EXPECT_EQ(element<uint16_t>(data, i), v.get<uint16_t>());
        break;
      case C2RS_DTYPE_INT8:
        EXPECT_EQ(element<int8_t>(data, i), v.get<int8_t>());
        break;
      case C2RS_DTYPE_UINT8:
      case C2RS_DTYPE_BYTE:
        EXPECT_EQ(element<uint8_t>(data, i), v.get<uint8_t>());
        break;
      case C2RS_DTYPE_BOOL:
        EXPECT_EQ(element<uint8_t>(data, i), v.get<bool>() ? 1 : 0);
        break;
      default:
        ADD_FAILURE() << "unhandled dtype " << dtype;
    }
  }
}

// Two tensors hold the same dtype, dims and elements (bytes, or strings for STRING).
void expect_same_tensor(const c2rs_tensor* a, const c2rs_tensor* b) {
  ASSERT_EQ(dtype_of(a), dtype_of(b));
  ASSERT_EQ(dims_of(a), dims_of(b));
  const int64_t n = numel_of(a);
  ASSERT_EQ(n, numel_of(b));
  const int32_t dtype = dtype_of(a);
  if (dtype == C2RS_DTYPE_STRING) {
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_EQ(string_at(a, static_cast<size_t>(i)), string_at(b, static_cast<size_t>(i)));
    }
    return;
  }
  const void* da = nullptr;
  const void* db = nullptr;
  ASSERT_EQ(c2rs_tensor_data(a, &da), C2RS_OK);
  ASSERT_EQ(c2rs_tensor_data(b, &db), C2RS_OK);
  if (n == 0) return;
  EXPECT_EQ(std::memcmp(da, db, static_cast<size_t>(n) * element_size(dtype)), 0);
}

BufferPtr encode(const c2rs_tensor* t) {
  c2rs_buffer* out = nullptr;
  EXPECT_EQ(c2rs_tensor_to_proto(t, &out), C2RS_OK) << last_error();
  return BufferPtr(out);
}

// Builds TensorProto bytes by hand (protobuf wire format), for malformed-payload cases.
struct ProtoWriter {
  std::vector<uint8_t> bytes;
  void varint(uint64_t v) {
    while (v >= 0x80) {
      bytes.push_back(static_cast<uint8_t>(v | 0x80));
      v >>= 7;
    }
    bytes.push_back(static_cast<uint8_t>(v));
  }
  void tag(uint32_t field, uint32_t wire) { varint((uint64_t{field} << 3) | wire); }
  void int_field(uint32_t field, int64_t v) {
    tag(field, 0);
    varint(static_cast<uint64_t>(v));
  }
  void bytes_field(uint32_t field, const void* p, size_t n) {
    tag(field, 2);
    varint(n);
    const auto* b = static_cast<const uint8_t*>(p);
    bytes.insert(bytes.end(), b, b + n);
  }
  void packed_floats(uint32_t field, const std::vector<float>& v) {
    bytes_field(field, v.data(), v.size() * sizeof(float));
  }
};

constexpr uint32_t kDims = 1, kDataType = 2, kFloatData = 3, kInt32Data = 4, kByteData = 5,
                   kStringData = 6, kSegment = 11;

// Decoding `bytes` fails with `status`, a message naming the function, and `*out` NULL.
void expect_decode_fails(const std::vector<uint8_t>& bytes, int32_t status) {
  c2rs_tensor* out = sentinel<c2rs_tensor>();
  EXPECT_EQ(c2rs_tensor_from_proto(bytes.data(), bytes.size(), &out), status) << last_error();
  EXPECT_EQ(out, nullptr);
  EXPECT_EQ(c2rs_last_error_code(), status);
  EXPECT_NE(last_error().find("c2rs_tensor_from_proto"), std::string::npos) << last_error();
  c2rs_tensor_free(out == sentinel<c2rs_tensor>() ? nullptr : out);
}

}  // namespace

// --- golden vectors ---------------------------------------------------------------------------

TEST(TensorGolden, EveryFileDecodesToManifestDtypeDimsAndValues) {
  const json m = manifest();
  ASSERT_EQ(m["tensors"].size(), 15u);
  for (const json& entry : m["tensors"]) {
    const std::string file = entry["file"].get<std::string>();
    SCOPED_TRACE(file);
    TensorPtr t = decode(read_file(golden_path("tensors/" + file)));
    ASSERT_NE(t, nullptr);
    expect_matches_entry(t.get(), entry);
  }
}

TEST(TensorGolden, Float16BitsConvertToManifestHalfValues) {
  TensorPtr t = decode(read_file(golden_path("tensors/float16_4.pb")));
  ASSERT_EQ(dtype_of(t.get()), C2RS_DTYPE_FLOAT16);
  const void* data = nullptr;
  ASSERT_EQ(c2rs_tensor_data(t.get(), &data), C2RS_OK);
  // 0.5, -2.0, 65504 (largest half), 0.0010004... (a value with a full mantissa).
  EXPECT_EQ(element<uint16_t>(data, 0), 0x3800);
  EXPECT_EQ(element<uint16_t>(data, 1), 0xC000);
  EXPECT_EQ(element<uint16_t>(data, 2), 0x7BFF);
  EXPECT_FLOAT_EQ(c2rs::half_to_float(element<uint16_t>(data, 3)), 0.0010004043579101562f);
}

TEST(TensorGolden, ByteStaysDtypeByte) {
  TensorPtr t = decode(read_file(golden_path("tensors/byte_3x4x4.pb")));
  EXPECT_EQ(dtype_of(t.get()), C2RS_DTYPE_BYTE);
  EXPECT_EQ(dims_of(t.get()), (std::vector<int64_t>{3, 4, 4}));
  BufferPtr again = encode(t.get());
  c2rs_tensor* back = nullptr;
  ASSERT_EQ(c2rs_tensor_from_proto(c2rs_buffer_data(again.get()), c2rs_buffer_len(again.get()),
                                   &back),
            C2RS_OK);
  TensorPtr back_owner(back);
  EXPECT_EQ(dtype_of(back), C2RS_DTYPE_BYTE);
}

TEST(TensorGolden, SegmentFillsOnlyItsRangeAndDeviceDetailIsIgnored) {
  TensorPtr t = decode(read_file(golden_path("tensors/segment_float.pb")));
  ASSERT_EQ(dims_of(t.get()), std::vector<int64_t>{10});
  const void* data = nullptr;
  ASSERT_EQ(c2rs_tensor_data(t.get(), &data), C2RS_OK);
  for (size_t i = 0; i < 10; ++i) {
    const float want = (i >= 4 && i < 8) ? static_cast<float>(i) : 0.0f;
    EXPECT_EQ(element<float>(data, i), want) << "element " << i;
  }
}

TEST(TensorGolden, AllTensorProtosMatchesManifestEntriesInOrder) {
  const json m = manifest();
  std::vector<json> entries;
  for (const json& e : m["tensors"]) {
    if (!e.contains("segment")) entries.push_back(e);
  }
  const std::vector<uint8_t> bytes = read_file(golden_path("tensors/all.tensorprotos.pb"));
  c2rs_tensor_list* list = nullptr;
  ASSERT_EQ(c2rs_tensor_protos_decode(bytes.data(), bytes.size(), &list), C2RS_OK) << last_error();
  ListPtr owner(list);
  ASSERT_EQ(c2rs_tensor_list_len(list), entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const c2rs_tensor* t = nullptr;
    ASSERT_EQ(c2rs_tensor_list_get(list, i, &t), C2RS_OK);
    expect_matches_entry(t, entries[i]);
  }
  const c2rs_tensor* past = sentinel<const c2rs_tensor>();
  EXPECT_EQ(c2rs_tensor_list_get(list, entries.size(), &past), C2RS_INVALID_ARGUMENT);
  EXPECT_EQ(past, nullptr);
}

TEST(TensorGolden, ReencodedTensorDecodesEqual) {
  const json m = manifest();  // kept alive: range-for over a temporary's member would dangle
  for (const json& entry : m["tensors"]) {
    const std::string file = entry["file"].get<std::string>();
    SCOPED_TRACE(file);
    TensorPtr t = decode(read_file(golden_path("tensors/" + file)));
    BufferPtr bytes = encode(t.get());
    ASSERT_NE(bytes, nullptr);
    c2rs_tensor* back = nullptr;
    ASSERT_EQ(c2rs_tensor_from_proto(c2rs_buffer_data(bytes.get()), c2rs_buffer_len(bytes.get()),
                                     &back),
              C2RS_OK)
        << last_error();
    TensorPtr back_owner(back);
    expect_same_tensor(t.get(), back);
    expect_matches_entry(back, entry);
  }
}

TEST(TensorGolden, ReencodedTensorProtosDecodeEqual) {
  const std::vector<uint8_t> bytes = read_file(golden_path("tensors/all.tensorprotos.pb"));
  c2rs_tensor_list* list = nullptr;
  ASSERT_EQ(c2rs_tensor_protos_decode(bytes.data(), bytes.size(), &list), C2RS_OK);
  ListPtr owner(list);
  std::vector<const c2rs_tensor*> items(c2rs_tensor_list_len(list));
  for (size_t i = 0; i < items.size(); ++i) {
    ASSERT_EQ(c2rs_tensor_list_get(list, i, &items[i]), C2RS_OK);
  }
  c2rs_buffer* again = nullptr;
  ASSERT_EQ(c2rs_tensor_protos_encode(items.data(), items.size(), &again), C2RS_OK);
  BufferPtr again_owner(again);
  c2rs_tensor_list* list2 = nullptr;
  ASSERT_EQ(c2rs_tensor_protos_decode(c2rs_buffer_data(again), c2rs_buffer_len(again), &list2),
            C2RS_OK);
  ListPtr owner2(list2);
  ASSERT_EQ(c2rs_tensor_list_len(list2), items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const c2rs_tensor* t = nullptr;
    ASSERT_EQ(c2rs_tensor_list_get(list2, i, &t), C2RS_OK);
    SCOPED_TRACE("entry " + std::to_string(i));
    expect_same_tensor(items[i], t);
  }
}

// --- malformed input --------------------------------------------------------------------------

TEST(TensorDecode, GarbageBytesAreParseErrorWithMessage) {
  expect_decode_fails({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, C2RS_PARSE_ERROR);
  expect_decode_fails({0x0f, 0x01, 0x02}, C2RS_PARSE_ERROR);  // field 1 with wire type 7
  expect_decode_fails({0x1a, 0x40, 0x00}, C2RS_PARSE_ERROR);  // length runs past the end
  c2rs_tensor_list* list = sentinel<c2rs_tensor_list>();
  const uint8_t junk[] = {0xff, 0xff, 0xff};
  EXPECT_EQ(c2rs_tensor_protos_decode(junk, sizeof junk, &list), C2RS_PARSE_ERROR);
  EXPECT_EQ(list, nullptr);
  EXPECT_NE(last_error().find("c2rs_tensor_protos_decode"), std::string::npos) << last_error();
}

TEST(TensorDecode, SegmentClaimingMoreThanTheInputCarriesIsParseErrorNotAnAllocation) {
  // tests/data/hostile/tensor_proto/crash-070c…: an empty segment of a FLOAT tensor of 2^51
  // elements (2^53 bytes), 11 bytes long.
  expect_decode_fails({0x5a, 0x00, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x03},
                      C2RS_PARSE_ERROR);
  EXPECT_NE(last_error().find("are not in the input"), std::string::npos) << last_error();
  // A small empty segment is what Caffe2 accepts: zeros, within C2RS_MAX_IMPLICIT_ZERO_BYTES.
  ProtoWriter w;
  w.int_field(kDims, 4);
  w.int_field(kDataType, C2RS_DTYPE_FLOAT);
  const uint8_t segment[] = {0x08, 0x01, 0x10, 0x01};  // begin 1, end 1
  w.bytes_field(kSegment, segment, sizeof segment);
  c2rs_tensor* t = nullptr;
  ASSERT_EQ(c2rs_tensor_from_proto(w.bytes.data(), w.bytes.size(), &t), C2RS_OK) << last_error();
  EXPECT_EQ(numel_of(t), 4);
  c2rs_tensor_free(t);
}

TEST(TensorDecode, EveryPrefixOfEveryGoldenFileGivesOkOrDocumentedStatus) {
  std::vector<std::string> files;
  const json m = manifest();
  for (const json& e : m["tensors"]) files.push_back(e["file"].get<std::string>());
  for (const std::string& file : files) {
    const std::vector<uint8_t> bytes = read_file(golden_path("tensors/" + file));
    for (size_t n = 0; n <= bytes.size(); ++n) {
      // A copy of exactly n bytes, so reading past the prefix would be caught by sanitizers.
      std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
      c2rs_tensor* t = sentinel<c2rs_tensor>();
      const int32_t status = c2rs_tensor_from_proto(prefix.data(), n, &t);
      if (status == C2RS_OK) {
        ASSERT_NE(t, nullptr);
        (void)numel_of(t);
        c2rs_tensor_free(t);
      } else {
        ASSERT_TRUE(status == C2RS_PARSE_ERROR || status == C2RS_UNSUPPORTED)
            << file << " prefix " << n << ": status " << status << " " << last_error();
        ASSERT_EQ(t, nullptr);
        ASSERT_FALSE(last_error().empty());
      }
    }
  }
  const std::vector<uint8_t> all = read_file(golden_path("tensors/all.tensorprotos.pb"));
  for (size_t n = 0; n <= all.size(); ++n) {
    std::vector<uint8_t> prefix(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n));
    c2rs_tensor_list* list = sentinel<c2rs_tensor_list>();
    const int32_t status = c2rs_tensor_protos_decode(prefix.data(), n, &list);
    if (status == C2RS_OK) {
      ASSERT_NE(list, nullptr);
      c2rs_tensor_list_free(list);
    } else {
      ASSERT_TRUE(status == C2RS_PARSE_ERROR || status == C2RS_UNSUPPORTED)
          << "all.tensorprotos.pb prefix " << n << ": status " << status;
      ASSERT_EQ(list, nullptr);
      ASSERT_FALSE(last_error().empty());
    }
  }
}

TEST(TensorDecode, PayloadLengthDisagreeingWithDimsIsParseError) {
  {  // FLOAT [3] with two floats
    ProtoWriter w;
    w.int_field(kDims, 3);
    w.int_field(kDataType, C2RS_DTYPE_FLOAT);
    w.packed_floats(kFloatData, {1.0f, 2.0f});
    expect_decode_fails(w.bytes, C2RS_PARSE_ERROR);
  }
  {  // FLOAT [2] with three floats
    ProtoWriter w;
    w.int_field(kDims, 2);
    w.packed_floats(kFloatData, {1.0f, 2.0f, 3.0f});
    expect_decode_fails(w.bytes, C2RS_PARSE_ERROR);
  }
  {  // INT32 [2, 2] with one value
    ProtoWriter w;
    w.int_field(kDims, 2);
    w.int_field(kDims, 2);
    w.int_field(kDataType, C2RS_DTYPE_INT32);
    w.tag(kInt32Data, 2);
    w.varint(1);
    w.varint(7);
    expect_decode_fails(w.bytes, C2RS_PARSE_ERROR);
  }
  {  // BYTE [4] with 3 bytes
    ProtoWriter w;
    w.int_field(kDims, 4);
    w.int_field(kDataType, C2RS_DTYPE_BYTE);
    w.bytes_field(kByteData, "abc", 3);
    expect_decode_fails(w.bytes, C2RS_PARSE_ERROR);
  }
  {  // STRING [2] with one string
    ProtoWriter w;
    w.int_field(kDims, 2);
    w.int_field(kDataType, C2RS_DTYPE_STRING);
    w.bytes_field(kStringData, "x", 1);
    expect_decode_fails(w.bytes, C2RS_PARSE_ERROR);
  }
  {  // the same STRING [2] with two strings is fine
    ProtoWriter w;
    w.int_field(kDims, 2);
    w.int_field(kDataType, C2RS_DTYPE_STRING);
    w.bytes_field(kStringData, "x", 1);
    w.bytes_field(kStringData, "", 0);
    TensorPtr t = decode(w.bytes);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(string_at(t.get(), 0), "x");
    EXPECT_EQ(string_at(t.get(), 1), "");
  }
}

TEST(TensorDecode, NegativeDimOrUnknownDtypeIsParseError) {
  {
    ProtoWriter w;
    w.int_field(kDims, -1);
    expect_decode_fails(w.bytes, C2RS_PARSE_ERROR);
  }
  {
    ProtoWriter w;
    w.int_field(kDims, 1);
    w.int_field(kDataType, 99);
    expect_decode_fails(w.bytes, C2RS_PARSE_ERROR);
  }
}

TEST(TensorDecode, DtypeWithoutTensorStorageIsUnsupported) {
  ProtoWriter w;
  w.int_field(kDims, 1);
  w.int_field(kDataType, 14);  // ZERO_COLLISION_HASH
  expect_decode_fails(w.bytes, C2RS_UNSUPPORTED);
}

TEST(TensorDecode, TensorProtosErrorNamesTheEntryIndex) {
  // Entry 0 is a valid FLOAT [1]; entry 1 has a payload mismatch.
  ProtoWriter good;
  good.int_field(kDims, 1);
  good.packed_floats(kFloatData, {1.0f});
  ProtoWriter bad;
  bad.int_field(kDims, 2);
  bad.packed_floats(kFloatData, {1.0f});
  ProtoWriter protos;
  protos.bytes_field(1, good.bytes.data(), good.bytes.size());
  protos.bytes_field(1, bad.bytes.data(), bad.bytes.size());
  c2rs_tensor_list* list = sentinel<c2rs_tensor_list>();
  EXPECT_EQ(c2rs_tensor_protos_decode(protos.bytes.data(), protos.bytes.size(), &list),
            C2RS_PARSE_ERROR);
  EXPECT_EQ(list, nullptr);
  EXPECT_NE(last_error().find('1'), std::string::npos) << last_error();
}

TEST(TensorDecode, EmptyInputWithNullPointerIsNotAnArgumentError) {
  c2rs_tensor* t = nullptr;
  const int32_t status = c2rs_tensor_from_proto(nullptr, 0, &t);
  EXPECT_NE(status, C2RS_INVALID_ARGUMENT) << last_error();
  c2rs_tensor_free(t);
  c2rs_tensor_list* list = nullptr;
  ASSERT_EQ(c2rs_tensor_protos_decode(nullptr, 0, &list), C2RS_OK) << last_error();
  EXPECT_EQ(c2rs_tensor_list_len(list), 0u);
  c2rs_tensor_list_free(list);
}

// --- NULL arguments and out-parameters ----------------------------------------------------------

// `status` is C2RS_INVALID_ARGUMENT and the message names `function` and the `param`.
#define EXPECT_NULL_ARG(call, function, param)                                      \
  do {                                                                            \
    EXPECT_EQ((call), C2RS_INVALID_ARGUMENT) << #call;                            \
    const std::string message = last_error();                                     \
    EXPECT_NE(message.find(function), std::string::npos) << message;              \
    EXPECT_NE(message.find("`" param "`"), std::string::npos) << message;         \
    EXPECT_EQ(c2rs_last_error_code(), C2RS_INVALID_ARGUMENT);                     \
  } while (0)

TEST(TensorNullArguments, AreInvalidArgumentNamingTheParameter) {
  const int64_t dims[1] = {2};
  TensorPtr t;
  {
    c2rs_tensor* raw = nullptr;
    ASSERT_EQ(c2rs_tensor_new(C2RS_DTYPE_FLOAT, dims, 1, &raw), C2RS_OK);
    t.reset(raw);
  }
  TensorPtr s;
  {
    c2rs_tensor* raw = nullptr;
    ASSERT_EQ(c2rs_tensor_new(C2RS_DTYPE_STRING, dims, 1, &raw), C2RS_OK);
    s.reset(raw);
  }
  c2rs_tensor* out = nullptr;
  const uint8_t byte = 0;
  EXPECT_NULL_ARG(c2rs_tensor_new(C2RS_DTYPE_FLOAT, dims, 1, nullptr), "c2rs_tensor_new", "out");
  EXPECT_NULL_ARG(c2rs_tensor_new(C2RS_DTYPE_FLOAT, nullptr, 1, &out), "c2rs_tensor_new", "dims");
  EXPECT_NULL_ARG(c2rs_tensor_from_proto(nullptr, 4, &out), "c2rs_tensor_from_proto", "bytes");
  EXPECT_NULL_ARG(c2rs_tensor_from_proto(&byte, 1, nullptr), "c2rs_tensor_from_proto", "out");
  c2rs_buffer* buf = nullptr;
  EXPECT_NULL_ARG(c2rs_tensor_to_proto(nullptr, &buf), "c2rs_tensor_to_proto", "t");
  EXPECT_NULL_ARG(c2rs_tensor_to_proto(t.get(), nullptr), "c2rs_tensor_to_proto", "out");
  c2rs_tensor_list* list = nullptr;
  EXPECT_NULL_ARG(c2rs_tensor_protos_decode(nullptr, 3, &list), "c2rs_tensor_protos_decode",
                  "bytes");
  EXPECT_NULL_ARG(c2rs_tensor_protos_decode(&byte, 1, nullptr), "c2rs_tensor_protos_decode",
                  "out");
  EXPECT_NULL_ARG(c2rs_tensor_protos_encode(nullptr, 2, &buf), "c2rs_tensor_protos_encode",
                  "tensors");
  const c2rs_tensor* one[1] = {t.get()};
  EXPECT_NULL_ARG(c2rs_tensor_protos_encode(one, 1, nullptr), "c2rs_tensor_protos_encode", "out");
  const c2rs_tensor* item = nullptr;
  EXPECT_NULL_ARG(c2rs_tensor_list_get(nullptr, 0, &item), "c2rs_tensor_list_get", "list");
  int32_t dtype = 0;
  EXPECT_NULL_ARG(c2rs_tensor_dtype(nullptr, &dtype), "c2rs_tensor_dtype", "t");
  EXPECT_NULL_ARG(c2rs_tensor_dtype(t.get(), nullptr), "c2rs_tensor_dtype", "out");
  const int64_t* d = nullptr;
  size_t ndim = 0;
  EXPECT_NULL_ARG(c2rs_tensor_dims(nullptr, &d, &ndim), "c2rs_tensor_dims", "t");
  EXPECT_NULL_ARG(c2rs_tensor_dims(t.get(), nullptr, &ndim), "c2rs_tensor_dims", "dims");
  EXPECT_NULL_ARG(c2rs_tensor_dims(t.get(), &d, nullptr), "c2rs_tensor_dims", "ndim");
  int64_t n = 0;
  EXPECT_NULL_ARG(c2rs_tensor_numel(nullptr, &n), "c2rs_tensor_numel", "t");
  EXPECT_NULL_ARG(c2rs_tensor_numel(t.get(), nullptr), "c2rs_tensor_numel", "out");
  const void* data = nullptr;
  EXPECT_NULL_ARG(c2rs_tensor_data(nullptr, &data), "c2rs_tensor_data", "t");
  EXPECT_NULL_ARG(c2rs_tensor_data(t.get(), nullptr), "c2rs_tensor_data", "out");
  void* mdata = nullptr;
  EXPECT_NULL_ARG(c2rs_tensor_mutable_data(nullptr, &mdata), "c2rs_tensor_mutable_data", "t");
  EXPECT_NULL_ARG(c2rs_tensor_mutable_data(t.get(), nullptr), "c2rs_tensor_mutable_data", "out");
  const uint8_t* p = nullptr;
  size_t len = 0;
  EXPECT_NULL_ARG(c2rs_tensor_string_at(nullptr, 0, &p, &len), "c2rs_tensor_string_at", "t");
  EXPECT_NULL_ARG(c2rs_tensor_string_at(s.get(), 0, nullptr, &len), "c2rs_tensor_string_at",
                  "ptr");
  EXPECT_NULL_ARG(c2rs_tensor_string_at(s.get(), 0, &p, nullptr), "c2rs_tensor_string_at", "len");
  EXPECT_NULL_ARG(c2rs_tensor_set_string(nullptr, 0, &byte, 1), "c2rs_tensor_set_string", "t");
  EXPECT_NULL_ARG(c2rs_tensor_set_string(s.get(), 0, nullptr, 1), "c2rs_tensor_set_string", "ptr");
  DLManagedTensorVersioned* dl = nullptr;
  EXPECT_NULL_ARG(c2rs_tensor_to_dlpack(nullptr, &dl), "c2rs_tensor_to_dlpack", "t");
  EXPECT_NULL_ARG(c2rs_tensor_to_dlpack(t.get(), nullptr), "c2rs_tensor_to_dlpack", "out");
  EXPECT_NULL_ARG(c2rs_tensor_from_dlpack(nullptr, &out), "c2rs_tensor_from_dlpack", "in");
}

TEST(TensorNullArguments, ProtosEncodeNamesTheNullEntryIndex) {
  c2rs_tensor* t = nullptr;
  ASSERT_EQ(c2rs_tensor_new(C2RS_DTYPE_FLOAT, nullptr, 0, &t), C2RS_OK);
  TensorPtr owner(t);
  const c2rs_tensor* entries[3] = {t, t, nullptr};
  c2rs_buffer* out = sentinel<c2rs_buffer>();
  EXPECT_EQ(c2rs_tensor_protos_encode(entries, 3, &out), C2RS_INVALID_ARGUMENT);
  EXPECT_EQ(out, nullptr);
  EXPECT_NE(last_error().find('2'), std::string::npos) << last_error();
}

TEST(TensorFree, NullIsANoOp) {
  c2rs_tensor_free(nullptr);
  c2rs_tensor_list_free(nullptr);
  c2rs_buffer_free(nullptr);
  c2rs_string_list_free(nullptr);
  EXPECT_EQ(c2rs_buffer_len(nullptr), 0u);
  EXPECT_EQ(c2rs_buffer_data(nullptr), nullptr);
  EXPECT_EQ(c2rs_string_list_len(nullptr), 0u);
  EXPECT_EQ(c2rs_string_list_get(nullptr, 0), nullptr);
  EXPECT_EQ(c2rs_tensor_list_len(nullptr), 0u);
}

TEST(TensorOutParameters, AreResetOnFailure) {
  c2rs_tensor* t = sentinel<c2rs_tensor>();
  EXPECT_EQ(c2rs_tensor_new(C2RS_DTYPE_FLOAT, nullptr, 1, &t), C2RS_INVALID_ARGUMENT);
  EXPECT_EQ(t, nullptr);
  t = sentinel<c2rs_tensor>();
  EXPECT_EQ(c2rs_tensor_new(11, nullptr, 0, &t), C2RS_INVALID_ARGUMENT);
  EXPECT_EQ(t, nullptr);

  c2rs_buffer* buf = sentinel<c2rs_buffer>();
  EXPECT_EQ(c2rs_tensor_to_proto(nullptr, &buf), C2RS_INVALID_ARGUMENT);
  EXPECT_EQ(buf, nullptr);

  int32_t dtype = 77;
  EXPECT_EQ(c2rs_tensor_dtype(nullptr, &dtype), C2RS_INVALID_ARGUMENT);
  EXPECT_EQ(dtype, 0);
  int64_t n = 77;
  EXPECT_EQ(c2rs_tensor_numel(nullptr, &n), C2RS_INVALID_ARGUMENT);
  EXPECT_EQ(n, 0);
  const int64_t* dims = sentinel<const int64_t>();
  size_t ndim = 77;
  EXPECT_EQ(c2rs_tensor_dims(nullptr, &dims, &ndim), C2RS_INVALID_ARGUMENT);
  EXPECT_EQ(dims, nullptr);

  c2rs_tensor* s = nullptr;
  ASSERT_EQ(c2rs_tensor_new(C2RS_DTYPE_STRING, nullptr, 0, &s), C2RS_OK);
  TensorPtr s_owner(s);
  const void* data = sentinel<const void>();
  EXPECT_EQ(c2rs_tensor_data(s, &data), C2RS_TYPE_MISMATCH);
  EXPECT_EQ(data, nullptr);
  void* mdata = sentinel<void>();
  EXPECT_EQ(c2rs_tensor_mutable_data(s, &mdata), C2RS_TYPE_MISMATCH);
  EXPECT_EQ(mdata, nullptr);
  DLManagedTensorVersioned* dl = sentinel<DLManagedTensorVersioned>();
  EXPECT_EQ(c2rs_tensor_to_dlpack(s, &dl), C2RS_UNSUPPORTED);
  EXPECT_EQ(dl, nullptr);
  const uint8_t* p = sentinel<const uint8_t>();
  size_t len = 77;
  EXPECT_EQ(c2rs_tensor_string_at(s, 1, &p, &len), C2RS_INVALID_ARGUMENT);
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(len, 0u);
}

// --- creation ---------------------------------------------------------------------------------

TEST(TensorNew, EveryDtypeIsZeroFilledWithItsShape) {
  const int64_t dims[3] = {2, 3, 4};
  for (int32_t dtype : kAllDtypes) {
    SCOPED_TRACE("dtype " + std::to_string(dtype));
    c2rs_tensor* t = nullptr;
    ASSERT_EQ(c2rs_tensor_new(dtype, dims, 3, &t), C2RS_OK) << last_error();
    TensorPtr owner(t);
    EXPECT_EQ(dtype_of(t), dtype);
    EXPECT_EQ(dims_of(t), (std::vector<int64_t>{2, 3, 4}));
    EXPECT_EQ(numel_of(t), 24);
    if (dtype == C2RS_DTYPE_STRING) {
      for (size_t i = 0; i < 24; ++i) EXPECT_EQ(string_at(t, i), "");
      continue;
    }
    const void* data = nullptr;
    ASSERT_EQ(c2rs_tensor_data(t, &data), C2RS_OK);
    ASSERT_NE(data, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(data) % 64, 0u) << "64-byte aligned";
    const auto* bytes = static_cast<const uint8_t*>(data);
    const size_t nbytes = 24 * element_size(dtype);
    EXPECT_EQ(std::count(bytes, bytes + nbytes, uint8_t{0}), static_cast<std::ptrdiff_t>(nbytes));
  }
}

TEST(TensorNew, ScalarHasNoDimsAndOneElement) {
  for (int32_t dtype : kAllDtypes) {
    SCOPED_TRACE("dtype " + std::to_string(dtype));
    c2rs_tensor* t = nullptr;
    ASSERT_EQ(c2rs_tensor_new(dtype, nullptr, 0, &t), C2RS_OK) << last_error();
    TensorPtr owner(t);
    EXPECT_TRUE(dims_of(t).empty());
    EXPECT_EQ(numel_of(t), 1);
    if (dtype != C2RS_DTYPE_STRING) {
      const void* data = nullptr;
      ASSERT_EQ(c2rs_tensor_data(t, &data), C2RS_OK);
      EXPECT_NE(data, nullptr);
    }
    // A scalar survives a TensorProto round trip as a scalar.
    BufferPtr bytes = encode(t);
    c2rs_tensor* back = nullptr;
    ASSERT_EQ(c2rs_tensor_from_proto(c2rs_buffer_data(bytes.get()), c2rs_buffer_len(bytes.get()),
                                     &back),
              C2RS_OK)
        << last_error();
    TensorPtr back_owner(back);
    expect_same_tensor(t, back);
  }
}

TEST(TensorNew, ZeroSizeDimsGiveEmptyTensorWithNullData) {
  const int64_t dims[2] = {0, 5};
  for (int32_t dtype : kAllDtypes) {
    SCOPED_TRACE("dtype " + std::to_string(dtype));
    c2rs_tensor* t = nullptr;
    ASSERT_EQ(c2rs_tensor_new(dtype, dims, 2, &t), C2RS_OK) << last_error();
    TensorPtr owner(t);
    EXPECT_EQ(dims_of(t), (std::vector<int64_t>{0, 5}));
    EXPECT_EQ(numel_of(t), 0);
    if (dtype != C2RS_DTYPE_STRING) {
      const void* data = sentinel<const void>();
      ASSERT_EQ(c2rs_tensor_data(t, &data), C2RS_OK);
      EXPECT_EQ(data, nullptr);
    }
    BufferPtr bytes = encode(t);
    c2rs_tensor* back = nullptr;
    ASSERT_EQ(c2rs_tensor_from_proto(c2rs_buffer_data(bytes.get()), c2rs_buffer_len(bytes.get()),
                                     &back),
              C2RS_OK);
    TensorPtr back_owner(back);
    EXPECT_EQ(dims_of(back), (std::vector<int64_t>{0, 5}));
  }
}

TEST(TensorNew, BadDtypeAndDimsAreRejected) {
  const int64_t ok_dims[1] = {2};
  c2rs_tensor* t = nullptr;
  // Not Caffe2 dtype numbers.
  for (int32_t dtype : {-1, 11, 16, 1000}) {
    EXPECT_EQ(c2rs_tensor_new(dtype, ok_dims, 1, &t), C2RS_INVALID_ARGUMENT) << dtype;
    EXPECT_NE(last_error().find("`dtype`"), std::string::npos) << last_error();
  }
  // Caffe2 numbers without tensor storage.
  for (int32_t dtype : {0, 14, 15}) {
    EXPECT_EQ(c2rs_tensor_new(dtype, ok_dims, 1, &t), C2RS_UNSUPPORTED) << dtype;
  }
  const int64_t negative[2] = {3, -1};
  EXPECT_EQ(c2rs_tensor_new(C2RS_DTYPE_FLOAT, negative, 2, &t), C2RS_INVALID_ARGUMENT);
  const int64_t huge[3] = {std::numeric_limits<int64_t>::max(), 4, 4};
  EXPECT_EQ(c2rs_tensor_new(C2RS_DTYPE_FLOAT, huge, 3, &t), C2RS_INVALID_ARGUMENT);
  EXPECT_EQ(t, nullptr);
}

TEST(TensorNew, ShapeBeyondAnyMemoryIsOutOfMemoryNotAnAbort) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "ASan aborts on allocations this large unless allocator_may_return_null=1";
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  GTEST_SKIP() << "ASan aborts on allocations this large unless allocator_may_return_null=1";
#endif
#endif
  // 2^46 elements: no address space holds them, so the allocation fails and says so.
  const int64_t dims[1] = {int64_t{1} << 46};
  for (int32_t dtype : {C2RS_DTYPE_FLOAT, C2RS_DTYPE_STRING}) {
    c2rs_tensor* t = sentinel<c2rs_tensor>();
    EXPECT_EQ(c2rs_tensor_new(dtype, dims, 1, &t), C2RS_INTERNAL) << dtype;
    EXPECT_EQ(t, nullptr);
    EXPECT_NE(last_error().find("out of memory allocating"), std::string::npos) << last_error();
  }
}

// --- element access ---------------------------------------------------------------------------

TEST(TensorStrings, SetAndGetArbitraryBytes) {
  const int64_t dims[1] = {3};
  c2rs_tensor* t = nullptr;
  ASSERT_EQ(c2rs_tensor_new(C2RS_DTYPE_STRING, dims, 1, &t), C2RS_OK);
  TensorPtr owner(t);
  const std::string with_nul("a\0b\xff", 4);
  ASSERT_EQ(c2rs_tensor_set_string(t, 0, reinterpret_cast<const uint8_t*>(with_nul.data()),
                                   with_nul.size()),
            C2RS_OK);
  ASSERT_EQ(c2rs_tensor_set_string(t, 2, reinterpret_cast<const uint8_t*>("caffe2"), 6), C2RS_OK);
  ASSERT_EQ(c2rs_tensor_set_string(t, 1, nullptr, 0), C2RS_OK) << "NULL with length 0";
  EXPECT_EQ(string_at(t, 0), with_nul);
  EXPECT_EQ(string_at(t, 1), "");
  EXPECT_EQ(string_at(t, 2), "caffe2");
  // Replacing an element.
  ASSERT_EQ(c2rs_tensor_set_string(t, 2, reinterpret_cast<const uint8_t*>("x"), 1), C2RS_OK);
  EXPECT_EQ(string_at(t, 2), "x");

  EXPECT_EQ(c2rs_tensor_set_string(t, 3, reinterpret_cast<const uint8_t*>("x"), 1),
            C2RS_INVALID_ARGUMENT);
  const uint8_t* p = nullptr;
  size_t len = 0;
  EXPECT_EQ(c2rs_tensor_string_at(t, 3, &p, &len), C2RS_INVALID_ARGUMENT);

  // Strings survive a TensorProto round trip byte for byte.
  BufferPtr bytes = encode(t);
  c2rs_tensor* back = nullptr;
  ASSERT_EQ(c2rs_tensor_from_proto(c2rs_buffer_data(bytes.get()), c2rs_buffer_len(bytes.get()),
                                   &back),
            C2RS_OK);
  TensorPtr back_owner(back);
  EXPECT_EQ(string_at(back, 0), with_nul);
  EXPECT_EQ(string_at(back, 2), "x");
}

TEST(TensorStrings, AccessorsOnNonStringTensorAreTypeMismatch) {
  const int64_t dims[1] = {2};
  c2rs_tensor* t = nullptr;
  ASSERT_EQ(c2rs_tensor_new(C2RS_DTYPE_INT32, dims, 1, &t), C2RS_OK);
  TensorPtr owner(t);
  const uint8_t* p = nullptr;
  size_t len = 0;
  EXPECT_EQ(c2rs_tensor_string_at(t, 0, &p, &len), C2RS_TYPE_MISMATCH);
  EXPECT_EQ(c2rs_tensor_set_string(t, 0, reinterpret_cast<const uint8_t*>("x"), 1),
            C2RS_TYPE_MISMATCH);
}

TEST(TensorData, WritesThroughMutableDataAreReadAndSerialized) {
  const int64_t dims[2] = {2, 2};
  c2rs_tensor* t = nullptr;
  ASSERT_EQ(c2rs_tensor_new(C2RS_DTYPE_INT64, dims, 2, &t), C2RS_OK);
  TensorPtr owner(t);
  void* m = nullptr;
  ASSERT_EQ(c2rs_tensor_mutable_data(t, &m), C2RS_OK);
  const int64_t values[4] = {std::numeric_limits<int64_t>::min(), -1, 0,
                             std::numeric_limits<int64_t>::max()};
  std::memcpy(m, values, sizeof values);
  const void* d = nullptr;
  ASSERT_EQ(c2rs_tensor_data(t, &d), C2RS_OK);
  EXPECT_EQ(d, m) << "unshared storage is written in place";
  BufferPtr bytes = encode(t);
  c2rs_tensor* back = nullptr;
  ASSERT_EQ(c2rs_tensor_from_proto(c2rs_buffer_data(bytes.get()), c2rs_buffer_len(bytes.get()),
                                   &back),
            C2RS_OK);
  TensorPtr back_owner(back);
  const void* bd = nullptr;
  ASSERT_EQ(c2rs_tensor_data(back, &bd), C2RS_OK);
  EXPECT_EQ(std::memcmp(bd, values, sizeof values), 0);
}

// A minimal protobuf writer for the C++ tests: they build OperatorDef/NetDef/Argument bytes by
// hand (field numbers from proto/caffe2.proto) so the tests need no protobuf library.
#ifndef C2RS_TEST_PROTO_H
#define C2RS_TEST_PROTO_H

#include <cstdint>
#include <cstring>
#include <string>

namespace c2rs_test {

struct Pb {
  std::string bytes;
  /// The bytes as the C ABI takes them (pointer + `bytes.size()`).
  const uint8_t* data() const { return reinterpret_cast<const uint8_t*>(bytes.data()); }
  void varint(uint64_t v) {
    while (v >= 0x80) {
      bytes.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    bytes.push_back(static_cast<char>(v));
  }
  /// A length-delimited field (string, bytes, or an embedded message's bytes).
  Pb& str(int field, const std::string& s) {
    varint(static_cast<uint64_t>(field) << 3 | 2);
    varint(s.size());
    bytes += s;
    return *this;
  }
  Pb& msg(int field, const Pb& m) { return str(field, m.bytes); }
  /// A varint field (int32/int64/bool/enum).
  Pb& i64(int field, int64_t v) {
    varint(static_cast<uint64_t>(field) << 3);
    varint(static_cast<uint64_t>(v));
    return *this;
  }
  Pb& int_field(int field, int64_t v) { return i64(field, v); }
  /// A fixed32 float field.
  Pb& f32(int field, float v) {
    varint(static_cast<uint64_t>(field) << 3 | 5);
    char raw[4];
    std::memcpy(raw, &v, sizeof raw);
    bytes.append(raw, sizeof raw);
    return *this;
  }
};

}  // namespace c2rs_test

#endif  // C2RS_TEST_PROTO_H

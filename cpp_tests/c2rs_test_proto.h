// A minimal protobuf writer for the C++ tests: they build OperatorDef/NetDef/Argument bytes by
// hand (field numbers from proto/caffe2.proto) so the tests need no protobuf library.
#ifndef C2RS_TEST_PROTO_H
#define C2RS_TEST_PROTO_H

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

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

// Argument (1 name, 2 f, 3 i, 4 s, 6 ints) and OperatorDef (1 input, 2 output, 4 type, 5 arg).
inline Pb IntArg(const std::string& name, int64_t v) { return Pb().str(1, name).i64(3, v); }
inline Pb FloatArg(const std::string& name, float v) { return Pb().str(1, name).f32(2, v); }
inline Pb StrArg(const std::string& name, const std::string& v) { return Pb().str(1, name).str(4, v); }
inline Pb IntsArg(const std::string& name, const std::vector<int64_t>& vs) {
  Pb p;
  p.str(1, name);
  for (int64_t v : vs) p.i64(6, v);
  return p;
}

inline Pb Op(const std::string& type, const std::vector<std::string>& in, const std::vector<std::string>& out,
             const std::vector<Pb>& args = {}) {
  Pb p;
  for (const auto& i : in) p.str(1, i);
  for (const auto& o : out) p.str(2, o);
  p.str(4, type);
  for (const auto& a : args) p.msg(5, a);
  return p;
}

}  // namespace c2rs_test

#endif  // C2RS_TEST_PROTO_H

// Example host: a workspace driven through caffe2rs the way Caffe2's python `workspace` module
// was used — FeedBlob, a net (ConstantFill → Relu → Copy), RunNet, FetchBlob, GetAllBlobNames in
// a child workspace. Hosts normally serialize NetDefs with their own protobuf library; this
// example writes the few fields it needs by hand to stay dependency-free.
#include <caffe2rs.hpp>

#include <cstdint>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

namespace {

// Minimal protobuf writer: varints, length-delimited fields, fixed32 floats.
struct Proto {
  std::string bytes;
  void varint(uint64_t v) {
    while (v >= 0x80) {
      bytes.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    bytes.push_back(static_cast<char>(v));
  }
  Proto& str(int field, const std::string& s) {
    varint(static_cast<uint64_t>(field) << 3 | 2);
    varint(s.size());
    bytes += s;
    return *this;
  }
  Proto& i64(int field, int64_t v) {
    varint(static_cast<uint64_t>(field) << 3);
    varint(static_cast<uint64_t>(v));
    return *this;
  }
  Proto& f32(int field, float v) {
    varint(static_cast<uint64_t>(field) << 3 | 5);
    char raw[4];
    std::memcpy(raw, &v, 4);
    bytes.append(raw, 4);
    return *this;
  }
};

// OperatorDef fields: input 1, output 2, type 4, arg 5. Argument: name 1, f 2, i 3, ints 6.
std::string op(const std::string& type, const std::vector<std::string>& in, const std::vector<std::string>& out,
               const std::vector<std::string>& args = {}) {
  Proto p;
  for (const auto& i : in) p.str(1, i);
  for (const auto& o : out) p.str(2, o);
  p.str(4, type);
  for (const auto& a : args) p.str(5, a);
  return p.bytes;
}

}  // namespace

int main() try {
  c2rs::Workspace ws;

  // FeedBlob: a 2x3 float input.
  c2rs::Tensor x = c2rs::Tensor::create(C2RS_DTYPE_FLOAT, {2, 3});
  float* px = x.mutable_data<float>();
  for (int i = 0; i < 6; ++i) px[i] = static_cast<float>(i) - 2.5f;
  ws.feed("x", x);

  // A net: bias = ConstantFill(shape [2,3], value 0.5); y = Relu(x); out = Copy(y).
  Proto shape_arg;
  shape_arg.str(1, "shape").i64(6, 2).i64(6, 3);
  Proto value_arg;
  value_arg.str(1, "value").f32(2, 0.5f);
  Proto net;  // NetDef: name 1, op 2, external_input 7, external_output 8.
  net.str(1, "demo")
      .str(2, op("ConstantFill", {}, {"bias"}, {shape_arg.bytes, value_arg.bytes}))
      .str(2, op("Relu", {"x"}, {"y"}))
      .str(2, op("Copy", {"y"}, {"out"}))
      .str(7, "x")
      .str(8, "out");
  ws.create_net(net.bytes);
  ws.run_net("demo");

  c2rs::Tensor out = ws.fetch("out");
  std::cout << "out = Relu(x):";
  for (int i = 0; i < 6; ++i) std::cout << ' ' << out.data<float>()[i];
  std::cout << "\nbias[0] = " << ws.fetch("bias").data<float>()[0] << '\n';

  // GetAllBlobNames in a child workspace: its own output plus the parent's blobs.
  c2rs::Workspace child(&ws);
  Proto no_shared;
  no_shared.str(1, "include_shared").i64(3, 0);
  child.run_operator_once(op("GetAllBlobNames", {}, {"names"}));
  child.run_operator_once(op("GetAllBlobNames", {}, {"local_names"}, {no_shared.bytes}));
  for (const char* blob : {"names", "local_names"}) {
    c2rs::Tensor names = child.fetch(blob);
    std::cout << blob << ':';
    for (int64_t i = 0; i < names.numel(); ++i) std::cout << ' ' << names.string_at(static_cast<size_t>(i));
    std::cout << '\n';
  }

  // Errors come back as exceptions carrying the status and the library's message.
  try {
    ws.run_operator_once(op("Relu", {"missing"}, {"z"}));
  } catch (const c2rs::Error& e) {
    std::cout << "error " << c2rs::status_name(e.status()) << ": " << e.what() << '\n';
  }
  return 0;
} catch (const std::exception& e) {
  std::cerr << "workspace_demo: " << e.what() << '\n';
  return 1;
}

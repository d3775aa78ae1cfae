// Consumer of the installed package: decodes what it encodes through caffe2rs.hpp and checks
// that the library it loaded is the installed one (found through the package's rpath).
#include <caffe2rs.hpp>
#include <caffe2rs/host_op.hpp>  // the installed host-operator bridge compiles as installed

#include <dlfcn.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

int main() {
  try {
    c2rs::check_abi();
    if (std::string(C2RS_PACKAGE_VERSION) != "0.1.0") {
      std::fprintf(stderr, "find_package gave version %s\n", C2RS_PACKAGE_VERSION);
      return 1;
    }
    // The package names the installed wire schema, for hosts that compile their own messages.
    std::ifstream proto_file(C2RS_PROTO_FILE);
    const std::string schema((std::istreambuf_iterator<char>(proto_file)),
                             std::istreambuf_iterator<char>());
    if (schema.find("package caffe2;") == std::string::npos ||
        schema.find("message OperatorDef") == std::string::npos) {
      std::fprintf(stderr, "caffe2rs_PROTO_FILE=%s is not the caffe2 schema\n", C2RS_PROTO_FILE);
      return 1;
    }
    c2rs::host::InputSlot slot(/*consumed=*/false);
    slot.set_bytes("bridge");
    if (slot.kind() != c2rs::host::InputSlot::Kind::Bytes || slot.bytes() != "bridge") {
      std::fprintf(stderr, "the installed host_op.hpp misbehaves\n");
      return 1;
    }
    c2rs::Tensor t = c2rs::Tensor::create(C2RS_DTYPE_FLOAT, {2, 2});
    float* p = t.mutable_data<float>();
    for (int i = 0; i < 4; ++i) p[i] = 0.5f * static_cast<float>(i);
    const c2rs::Buffer proto = t.to_proto();
    const c2rs::Tensor back = c2rs::Tensor::from_proto(proto.view());
    const std::vector<float> v = back.to_vector<float>();
    if (back.dims() != std::vector<int64_t>{2, 2} || v != std::vector<float>{0.f, .5f, 1.f, 1.5f}) {
      std::fprintf(stderr, "round trip through the installed library changed the tensor\n");
      return 1;
    }
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&c2rs_abi_version), &info) == 0 ||
        info.dli_fname == nullptr) {
      std::fprintf(stderr, "dladdr failed\n");
      return 1;
    }
    const std::string loaded = info.dli_fname;
    const std::string expected = C2RS_EXPECTED_PREFIX;
    if (!expected.empty() && loaded.rfind(expected, 0) != 0) {
      std::fprintf(stderr, "loaded %s, expected a library under %s\n", loaded.c_str(),
                   expected.c_str());
      return 1;
    }
    std::printf("find_package consumer OK: %s from %s\n", c2rs::version_string().c_str(),
                loaded.c_str());
    return 0;
  } catch (const c2rs::Error& e) {
    std::fprintf(stderr, "caffe2rs error %d: %s\n", e.status(), e.what());
    return 1;
  }
}

// Writes examples/data/sample_tensors.pb: a small Caffe2 TensorProtos made by caffe2rs itself
// (float 2x3, int64, string, float16, bool and a scalar), the input print_tensors reads by default.
// Usage: make_sample_data OUTPUT.pb   (the output is deterministic)
#include <caffe2rs.hpp>

#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_sample_data OUTPUT.pb\n";
    return 2;
  }
  try {
    c2rs::Tensor f = c2rs::Tensor::create(C2RS_DTYPE_FLOAT, {2, 3});
    float* fp = f.mutable_data<float>();
    for (int i = 0; i < 6; ++i) fp[i] = 0.25f * static_cast<float>(i) - 0.5f;

    c2rs::Tensor ids = c2rs::Tensor::create(C2RS_DTYPE_INT64, {3});
    int64_t* ip = ids.mutable_data<int64_t>();
    ip[0] = -1;
    ip[1] = 42;
    ip[2] = int64_t{1} << 40;

    c2rs::Tensor words = c2rs::Tensor::create(C2RS_DTYPE_STRING, {2});
    words.set_string(0, "caffe2");
    words.set_string(1, "rs");

    c2rs::Tensor half = c2rs::Tensor::create(C2RS_DTYPE_FLOAT16, {4});
    const uint16_t half_bits[4] = {0x3C00 /* 1 */, 0xC000 /* -2 */, 0x3800 /* 0.5 */,
                                   0x7BFF /* 65504 */};
    std::memcpy(half.mutable_data<uint16_t>(), half_bits, sizeof half_bits);

    c2rs::Tensor flags = c2rs::Tensor::create(C2RS_DTYPE_BOOL, {3});
    uint8_t* bp = flags.mutable_data<uint8_t>();
    bp[0] = 1;
    bp[2] = 1;

    c2rs::Tensor scalar = c2rs::Tensor::create(C2RS_DTYPE_INT32, std::vector<int64_t>{});
    scalar.mutable_data<int32_t>()[0] = 7;

    const c2rs::Buffer record = c2rs::encode_tensor_protos({f, ids, words, half, flags, scalar});
    std::ofstream out(argv[1], std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(record.data()),
              static_cast<std::streamsize>(record.size()));
    if (!out) {
      std::cerr << "make_sample_data: cannot write " << argv[1] << '\n';
      return 1;
    }
    std::cout << "wrote " << record.size() << " bytes to " << argv[1] << '\n';
  } catch (const c2rs::Error& e) {
    std::cerr << "make_sample_data: " << e.what() << '\n';
    return 1;
  }
  return 0;
}

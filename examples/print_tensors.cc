// Example host: reads a serialized Caffe2 TensorProtos (a DB record; default: the bundled
// examples/data/sample_tensors.pb), decodes it through caffe2rs and prints one line per tensor:
//   #<index> <dtype> [<dims>] <first values...>
// Usage: print_tensors [FILE] [MAX_VALUES]
#include <caffe2rs.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#ifndef C2RS_EXAMPLE_DATA
#define C2RS_EXAMPLE_DATA "examples/data/sample_tensors.pb"
#endif

namespace {

std::string quoted(std::string_view s) {
  std::ostringstream out;
  out << '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out << '\\' << c;
    } else if (c >= 0x20 && c < 0x7f) {
      out << c;
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out << hex;
    }
  }
  out << '"';
  return out.str();
}

template <typename T, typename Print>
void print_values(const c2rs::TensorView& t, size_t count, Print print) {
  const T* p = t.data<T>();
  for (size_t i = 0; i < count; ++i) {
    std::cout << ' ';
    print(p[i]);
  }
}

void print_tensor(size_t index, const c2rs::TensorView& t, size_t max_values) {
  const int32_t dtype = t.dtype();
  std::cout << '#' << index << ' ' << c2rs::dtype_name(dtype) << " [";
  const std::vector<int64_t> dims = t.dims();
  for (size_t i = 0; i < dims.size(); ++i) std::cout << (i ? "," : "") << dims[i];
  std::cout << ']';
  const auto numel = static_cast<size_t>(t.numel());
  const size_t count = numel < max_values ? numel : max_values;
  auto plain = [](auto v) { std::cout << v; };
  switch (dtype) {
    case C2RS_DTYPE_FLOAT: print_values<float>(t, count, plain); break;
    case C2RS_DTYPE_DOUBLE: print_values<double>(t, count, plain); break;
    case C2RS_DTYPE_INT32: print_values<int32_t>(t, count, plain); break;
    case C2RS_DTYPE_INT64: print_values<int64_t>(t, count, plain); break;
    case C2RS_DTYPE_INT16: print_values<int16_t>(t, count, plain); break;
    case C2RS_DTYPE_UINT16: print_values<uint16_t>(t, count, plain); break;
    case C2RS_DTYPE_INT8:
      print_values<int8_t>(t, count, [](int8_t v) { std::cout << static_cast<int>(v); });
      break;
    case C2RS_DTYPE_UINT8:
    case C2RS_DTYPE_BYTE:
      print_values<uint8_t>(t, count, [](uint8_t v) { std::cout << static_cast<int>(v); });
      break;
    case C2RS_DTYPE_BOOL:
      print_values<uint8_t>(t, count, [](uint8_t v) { std::cout << (v ? "true" : "false"); });
      break;
    case C2RS_DTYPE_FLOAT16:
      print_values<uint16_t>(t, count, [](uint16_t v) { std::cout << c2rs::half_to_float(v); });
      break;
    case C2RS_DTYPE_STRING:
      for (size_t i = 0; i < count; ++i) std::cout << ' ' << quoted(t.string_view_at(i));
      break;
    default: std::cout << " (no printer for this dtype)"; break;
  }
  if (count < numel) std::cout << " ... (" << numel << " values)";
  std::cout << '\n';
}

}  // namespace

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : C2RS_EXAMPLE_DATA;
  const size_t max_values = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 8;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "print_tensors: cannot read " << path << '\n';
    return 2;
  }
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    c2rs::check_abi();
    const c2rs::TensorList list = c2rs::TensorList::decode(bytes);
    std::cout << path << ": " << list.size() << " tensors (" << c2rs::version_string() << ")\n";
    for (size_t i = 0; i < list.size(); ++i) print_tensor(i, list[i], max_values);
  } catch (const c2rs::Error& e) {
    std::cerr << "print_tensors: " << c2rs::status_name(e.status()) << ": " << e.what() << '\n';
    return 1;
  }
  return 0;
}

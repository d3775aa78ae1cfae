// Helpers shared by the C++ tests: golden/source paths and file reading.
#ifndef C2RS_TEST_UTIL_H
#define C2RS_TEST_UTIL_H

#include <cstdint>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "caffe2rs.h"

namespace c2rs_test {

/// Path of a file under tests/data/golden (C2RS_GOLDEN_DIR is set by cpp_tests/CMakeLists.txt).
inline std::string golden_path(const std::string& relative) {
  return std::string(C2RS_GOLDEN_DIR) + "/" + relative;
}

/// Path of a file in the project checkout.
inline std::string source_path(const std::string& relative) {
  return std::string(C2RS_SOURCE_DIR) + "/" + relative;
}

/// Whole file as bytes; throws std::runtime_error naming the path when it cannot be read.
inline std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline std::string read_text(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file(path);
  return std::string(bytes.begin(), bytes.end());
}

/// This thread's last caffe2rs error message, copied.
inline std::string last_error() {
  const char* m = c2rs_last_error_message();
  return m != nullptr ? std::string(m) : std::string();
}

}  // namespace c2rs_test

#endif  // C2RS_TEST_UTIL_H

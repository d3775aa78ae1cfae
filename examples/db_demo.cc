// Example host: reads a minidb of TensorProtos records (default: the bundled
// examples/data/sample.minidb) in batches through caffe2rs's prefetching batch reader and
// prints each batch, one line per output:
//   batch <n> #<output> <dtype> [<dims>] <values...>
// The reader wraps around at the end of the DB, as Caffe2's DBReader does.
// Usage: db_demo [FILE.minidb] [BATCH_SIZE] [BATCHES]
#include <caffe2rs.hpp>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#ifndef C2RS_EXAMPLE_DB
#define C2RS_EXAMPLE_DB "examples/data/sample.minidb"
#endif

namespace {

void print_output(int batch, size_t index, const c2rs::TensorView& t) {
  std::cout << "batch " << batch << " #" << index << ' ' << c2rs::dtype_name(t.dtype()) << " [";
  const std::vector<int64_t> dims = t.dims();
  for (size_t i = 0; i < dims.size(); ++i) std::cout << (i ? "," : "") << dims[i];
  std::cout << ']';
  const auto numel = static_cast<size_t>(t.numel());
  switch (t.dtype()) {
    case C2RS_DTYPE_UINT8:
    case C2RS_DTYPE_BYTE:
      for (size_t i = 0; i < numel; ++i) std::cout << ' ' << static_cast<int>(t.data<uint8_t>()[i]);
      break;
    case C2RS_DTYPE_INT32:
      for (size_t i = 0; i < numel; ++i) std::cout << ' ' << t.data<int32_t>()[i];
      break;
    case C2RS_DTYPE_FLOAT:
      for (size_t i = 0; i < numel; ++i) std::cout << ' ' << t.data<float>()[i];
      break;
    case C2RS_DTYPE_STRING:
      for (size_t i = 0; i < numel; ++i) std::cout << ' ' << t.string_view_at(i);
      break;
    default: std::cout << " (no printer for this dtype)"; break;
  }
  std::cout << '\n';
}

}  // namespace

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : C2RS_EXAMPLE_DB;
  const size_t batch_size = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 4;
  const int batches = argc > 3 ? std::atoi(argv[3]) : 3;
  c2rs_db_reader* reader = nullptr;
  c2rs_batch_reader* br = nullptr;
  int rc = 0;
  try {
    c2rs::check_abi();
    c2rs::check(c2rs_db_reader_new("minidb", path.c_str(), 1, 0, &reader));
    // Records hold 3 tensors; one decode thread prepares up to 2 batches ahead.
    c2rs::check(c2rs_batch_reader_new(reader, batch_size, 3, 2, 1, &br));
    std::cout << path << ": batches of " << batch_size << '\n';
    for (int b = 0; b < batches; ++b) {
      c2rs_tensor_list* raw = nullptr;
      c2rs::check(c2rs_batch_reader_next(br, &raw));
      const c2rs::TensorList batch(raw);
      for (size_t i = 0; i < batch.size(); ++i) print_output(b, i, batch[i]);
    }
  } catch (const c2rs::Error& e) {
    std::cerr << "db_demo: " << c2rs::status_name(e.status()) << ": " << e.what() << '\n';
    rc = 1;
  }
  c2rs_batch_reader_free(br);
  c2rs_db_reader_free(reader);
  return rc;
}

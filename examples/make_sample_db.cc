// Writes examples/data/sample.minidb: 6 records (keys "000".."005") made by caffe2rs itself,
// each a TensorProtos [image UINT8 [2,3], label INT32 scalar, tag STRING scalar], the input
// db_demo reads by default.
// Usage: make_sample_db OUTPUT.minidb   (the output is deterministic)
#include <caffe2rs.hpp>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_sample_db OUTPUT.minidb\n";
    return 2;
  }
  try {
    c2rs_db* db = nullptr;
    c2rs::check(c2rs_db_open("minidb", argv[1], C2RS_DB_NEW, &db));
    c2rs_db_transaction* txn = nullptr;
    const int32_t opened = c2rs_db_transaction_new(db, &txn);
    c2rs_db_free(db);
    c2rs::check(opened);
    for (int r = 0; r < 6; ++r) {
      c2rs::Tensor image = c2rs::Tensor::create(C2RS_DTYPE_UINT8, {2, 3});
      uint8_t* px = image.mutable_data<uint8_t>();
      for (int i = 0; i < 6; ++i) px[i] = static_cast<uint8_t>(10 * r + i);
      c2rs::Tensor label = c2rs::Tensor::create(C2RS_DTYPE_INT32, std::vector<int64_t>{});
      label.mutable_data<int32_t>()[0] = r % 3;
      c2rs::Tensor tag = c2rs::Tensor::create(C2RS_DTYPE_STRING, std::vector<int64_t>{});
      tag.set_string(0, "sample-" + std::to_string(r));
      const c2rs::Buffer value = c2rs::encode_tensor_protos({image, label, tag});
      char key[8];
      std::snprintf(key, sizeof key, "%03d", r);
      const int32_t put = c2rs_db_transaction_put(txn, reinterpret_cast<const uint8_t*>(key), 3,
                                                  value.data(), value.size());
      if (put != C2RS_OK) c2rs_db_transaction_free(txn);
      c2rs::check(put);
    }
    const int32_t committed = c2rs_db_transaction_commit(txn);
    c2rs_db_transaction_free(txn);
    c2rs::check(committed);
    std::cout << "wrote 6 records to " << argv[1] << '\n';
  } catch (const c2rs::Error& e) {
    std::cerr << "make_sample_db: " << e.what() << '\n';
    return 1;
  }
  return 0;
}

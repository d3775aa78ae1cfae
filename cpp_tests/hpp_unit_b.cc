// Second translation unit including caffe2rs.hpp (see hpp_unit_a.cc); it instantiates the same
// templates and inline functions.
#include "caffe2rs.hpp"

int64_t numel_in_unit_b(int64_t n) {
  c2rs::check_abi();
  c2rs::Tensor t = c2rs::Tensor::create(C2RS_DTYPE_INT32, {n});
  int32_t* p = t.mutable_data<int32_t>();
  p[0] = 1;
  return static_cast<int64_t>(t.to_vector<int32_t>().size());
}

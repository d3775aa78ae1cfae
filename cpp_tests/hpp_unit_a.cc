// First of two translation units including caffe2rs.hpp, linked into one program: every
// function the header defines must be inline (a duplicate definition fails the link).
#include "caffe2rs.hpp"

#include <cstdio>

int64_t numel_in_unit_b(int64_t n);

int main() {
  c2rs::check_abi();
  const c2rs::Tensor t = c2rs::Tensor::create(C2RS_DTYPE_INT32, {3, 5});
  const int64_t other = numel_in_unit_b(7);
  if (t.numel() != 15 || other != 7) {
    std::fprintf(stderr, "unexpected numel: %lld %lld\n", static_cast<long long>(t.numel()),
                 static_cast<long long>(other));
    return 1;
  }
  std::puts("caffe2rs.hpp: two translation units OK");
  return 0;
}

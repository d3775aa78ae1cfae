/* Links caffe2rs::caffe2rs_static into a C program: the staticlib must resolve with only the
 * native libraries the imported target declares (pthread, dl, m, ...). */
#include "caffe2rs.h"

#include <stdio.h>
#include <string.h>

int main(void) {
  const int64_t dims[1] = {4};
  c2rs_tensor* t = NULL;
  c2rs_buffer* proto = NULL;
  c2rs_tensor* back = NULL;
  c2rs_tensor* bad = NULL;
  int64_t numel = 0;
  int ok = 1;

  ok &= c2rs_tensor_new(C2RS_DTYPE_INT64, dims, 1, &t) == C2RS_OK;
  ok &= c2rs_tensor_to_proto(t, &proto) == C2RS_OK;
  ok &= c2rs_tensor_from_proto(c2rs_buffer_data(proto), c2rs_buffer_len(proto), &back) == C2RS_OK;
  ok &= c2rs_tensor_numel(back, &numel) == C2RS_OK && numel == 4;
  /* A failing call still reports through the thread-local error (exercises the panic-free path). */
  ok &= c2rs_tensor_from_proto((const uint8_t*)"\xff\xff\xff", 3, &bad) == C2RS_PARSE_ERROR;
  ok &= bad == NULL;
  ok &= strlen(c2rs_last_error_message()) > 0;
  c2rs_tensor_free(back);
  c2rs_buffer_free(proto);
  c2rs_tensor_free(t);
  if (!ok) {
    fprintf(stderr, "static link program: a check failed: %s\n", c2rs_last_error_message());
    return 1;
  }
  puts("libcaffe2rs.a: static C program OK");
  return 0;
}

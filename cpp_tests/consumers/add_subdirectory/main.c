/* Consumer that builds caffe2rs through add_subdirectory and uses the C API: a TensorProtos
 * record of two tensors is encoded, decoded and checked. */
#include <caffe2rs.h>

#include <stdio.h>
#include <string.h>

int main(void) {
  const int64_t dims[1] = {3};
  c2rs_tensor* a = NULL;
  c2rs_tensor* s = NULL;
  c2rs_buffer* record = NULL;
  c2rs_tensor_list* list = NULL;
  const c2rs_tensor* got = NULL;
  const uint8_t* text = NULL;
  size_t len = 0;
  int32_t dtype = 0;
  int ok = 1;

  ok &= c2rs_tensor_new(C2RS_DTYPE_DOUBLE, dims, 1, &a) == C2RS_OK;
  ok &= c2rs_tensor_new(C2RS_DTYPE_STRING, NULL, 0, &s) == C2RS_OK;
  ok &= c2rs_tensor_set_string(s, 0, (const uint8_t*)"hello", 5) == C2RS_OK;
  {
    const c2rs_tensor* both[2];
    both[0] = a;
    both[1] = s;
    ok &= c2rs_tensor_protos_encode(both, 2, &record) == C2RS_OK;
  }
  ok &= c2rs_tensor_protos_decode(c2rs_buffer_data(record), c2rs_buffer_len(record), &list) ==
        C2RS_OK;
  ok &= c2rs_tensor_list_len(list) == 2;
  ok &= c2rs_tensor_list_get(list, 1, &got) == C2RS_OK;
  ok &= c2rs_tensor_dtype(got, &dtype) == C2RS_OK && dtype == C2RS_DTYPE_STRING;
  ok &= c2rs_tensor_string_at(got, 0, &text, &len) == C2RS_OK;
  ok &= len == 5 && memcmp(text, "hello", 5) == 0;

  c2rs_tensor_list_free(list);
  c2rs_buffer_free(record);
  c2rs_tensor_free(s);
  c2rs_tensor_free(a);
  if (!ok) {
    fprintf(stderr, "add_subdirectory consumer failed: %s\n", c2rs_last_error_message());
    return 1;
  }
  puts("add_subdirectory consumer OK");
  return 0;
}

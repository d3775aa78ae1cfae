/* caffe2rs.h as a strict C99 translation unit (-std=c99 -Wall -Wextra -Wpedantic -Werror):
 * a warning or error in the header fails the build. The program then makes a few calls so the
 * declarations are checked against the real library at link and run time. */
#include "caffe2rs.h"

#include <stdio.h>
#include <string.h>

static int failures = 0;

#define EXPECT(cond)                                                  \
  do {                                                                \
    if (!(cond)) {                                                    \
      fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                     \
    }                                                                 \
  } while (0)

int main(void) {
  const int64_t dims[2] = {2, 3};
  c2rs_tensor* t = NULL;
  int64_t numel = -1;
  int32_t dtype = -1;
  DLManagedTensorVersioned* dl = NULL;

  EXPECT(c2rs_abi_version() == (((uint32_t)C2RS_ABI_MAJOR << 16) | (uint32_t)C2RS_ABI_MINOR));
  EXPECT(strncmp(c2rs_version_string(), "caffe2rs ", 9) == 0);

  EXPECT(c2rs_tensor_new(C2RS_DTYPE_FLOAT, dims, 2, &t) == C2RS_OK);
  EXPECT(t != NULL);
  EXPECT(c2rs_tensor_numel(t, &numel) == C2RS_OK && numel == 6);
  EXPECT(c2rs_tensor_dtype(t, &dtype) == C2RS_OK && dtype == C2RS_DTYPE_FLOAT);

  EXPECT(c2rs_tensor_to_dlpack(t, &dl) == C2RS_OK && dl != NULL);
  if (dl != NULL) {
    EXPECT(dl->version.major == DLPACK_MAJOR_VERSION);
    EXPECT(dl->dl_tensor.ndim == 2 && dl->dl_tensor.shape[1] == 3);
    EXPECT(dl->dl_tensor.device.device_type == kDLCPU);
    EXPECT(dl->dl_tensor.dtype.code == kDLFloat && dl->dl_tensor.dtype.bits == 32);
    dl->deleter(dl);
  }
  c2rs_tensor_free(t);

  EXPECT(c2rs_tensor_numel(NULL, &numel) == C2RS_INVALID_ARGUMENT);
  EXPECT(c2rs_last_error_code() == C2RS_INVALID_ARGUMENT);
  EXPECT(strstr(c2rs_last_error_message(), "`t`") != NULL);
  EXPECT(strcmp(c2rs_status_name(C2RS_PARSE_ERROR), "C2RS_PARSE_ERROR") == 0);

  c2rs_tensor_free(NULL);
  c2rs_buffer_free(NULL);
  c2rs_string_list_free(NULL);
  c2rs_tensor_list_free(NULL);

  if (failures != 0) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  puts("caffe2rs.h: C99 program OK");
  return 0;
}

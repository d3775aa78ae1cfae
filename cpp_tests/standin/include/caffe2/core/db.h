// Stand-in for Caffe2's caffe2/core/db.h (see standin.h): same include path, so host code and
// include/caffe2rs/caffe2_bridge.h compile unchanged against it and against Caffe2.
#include "caffe2/core/standin.h"

#!/usr/bin/env bash
# From a fresh checkout: installs what is missing, builds caffe2rs and the example hosts with
# CMake, and runs them on the bundled sample data:
#   print_tensors  — decodes examples/data/sample_tensors.pb (or the file given as first argument)
#   workspace_demo — feed, a net, fetch, GetAllBlobNames in a child workspace
#   queue_demo     — producer/consumer threads through a BlobsQueue, clean shutdown by close
#   db_demo        — the bundled sample minidb read in batches of 4 (wrapping around)
#   memonger_demo  — plans the bundled small CNN and prints the memory report
#   caffe2_host_switch — a (stand-in) Caffe2 host switching its DB and BlobsQueue operators to
#                    caffe2rs with 6 lines of C++ (include/caffe2rs/caffe2_bridge.h)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-Debug}

bash scripts/setup.sh
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="$BUILD_TYPE"
cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}" --target print_tensors workspace_demo queue_demo db_demo memonger_demo caffe2_host_switch
echo "== print_tensors: the bundled sample TensorProtos"
"$BUILD_DIR/examples/print_tensors" "$@"
echo "== workspace_demo: feed, a net, fetch, GetAllBlobNames"
"$BUILD_DIR/examples/workspace_demo"
echo "== queue_demo: producer and consumer threads through a BlobsQueue, shut down by close"
"$BUILD_DIR/examples/queue_demo"
echo "== db_demo: the bundled sample minidb in batches"
"$BUILD_DIR/examples/db_demo"
echo "== memonger_demo: plan the bundled small CNN and print the report"
"$BUILD_DIR/examples/memonger_demo"
echo "== caffe2_host_switch: a Caffe2 host running caffe2rs's DB and queue operators in its own net"
"$BUILD_DIR/examples/caffe2_host_switch"

#!/usr/bin/env bash
# From a fresh checkout: installs what is missing, builds caffe2rs and the example host with
# CMake, and prints the bundled sample TensorProtos (or the file given as first argument).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-Debug}

bash scripts/setup.sh
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="$BUILD_TYPE"
cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}" --target print_tensors queue_demo
"$BUILD_DIR/examples/print_tensors" "$@"
"$BUILD_DIR/examples/queue_demo"

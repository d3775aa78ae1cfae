#!/usr/bin/env bash
# Runs every test: `cargo test`, then the CMake build and the ctest suite (build dir `build/`,
# Debug: cargo's dev profile, shared with `cargo test`), then checks that the generated C header
# is the committed one. Exits non-zero on any failure.
# Environment: BUILD_DIR (default build), BUILD_TYPE (default Debug), JOBS (default nproc),
# CMAKE_ARGS (extra configure arguments), SANITIZE (default 1: also build and run the C++ tests
# with ASan + UBSan in build-asan/; 0 skips that pass).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-Debug}
JOBS=${JOBS:-$(nproc)}

echo "== cargo test"
cargo test

echo "== cmake configure + build ($BUILD_TYPE, $BUILD_DIR/)"
# shellcheck disable=SC2086
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="$BUILD_TYPE" ${CMAKE_ARGS:-}
cmake --build "$BUILD_DIR" -j "$JOBS"

echo "== ctest"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS"

if [ "${SANITIZE:-1}" = 1 ]; then
  echo "== ctest under AddressSanitizer + UBSan ($BUILD_DIR-asan/)"
  # shellcheck disable=SC2086
  cmake -S . -B "$BUILD_DIR-asan" -DCMAKE_BUILD_TYPE=Debug -DCAFFE2RS_SANITIZE=ON ${CMAKE_ARGS:-}
  cmake --build "$BUILD_DIR-asan" -j "$JOBS"
  ctest --test-dir "$BUILD_DIR-asan" --output-on-failure -j "$JOBS"
fi

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "== generated header is committed"
  git diff --exit-code -- include/caffe2rs.h
fi
echo "test.sh: all tests passed"

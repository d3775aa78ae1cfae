#!/usr/bin/env bash
# Fails when include/caffe2rs.h differs from the committed one (cargo regenerates it on every
# build; an ABI change must be committed together with its header). Exit 77 (ctest: skipped)
# when the source tree is not a git checkout of its own.
set -u
src=$(cd "$1" && pwd -P)
top=$(git -C "$src" rev-parse --show-toplevel 2>/dev/null) || top=""
if [ -z "$top" ] || [ "$(cd "$top" && pwd -P)" != "$src" ]; then
  echo "not a git checkout of caffe2rs: header drift check skipped"
  exit 77
fi
if ! git -C "$src" ls-files --error-unmatch include/caffe2rs.h >/dev/null 2>&1; then
  echo "include/caffe2rs.h is not committed"
  exit 1
fi
if ! git -C "$src" diff --exit-code HEAD -- include/caffe2rs.h; then
  echo "include/caffe2rs.h differs from the committed header: commit the regenerated header"
  exit 1
fi
echo "include/caffe2rs.h matches the committed header"

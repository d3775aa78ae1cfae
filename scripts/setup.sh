#!/usr/bin/env bash
# Installs what building and testing caffe2rs needs on Debian/Ubuntu, idempotently: packages
# are installed (after one `apt-get update`) only when something is missing. The Rust toolchain
# (cargo, rustfmt, clippy) is expected to be installed already (https://rustup.rs).
set -euo pipefail

# Debian package -> a file it provides (checked instead of asking dpkg, so that tools installed
# some other way also count).
declare -A probes=(
  [cmake]=/usr/bin/cmake
  [g++]=/usr/bin/g++
  [make]=/usr/bin/make
  [git]=/usr/bin/git
  [binutils]=/usr/bin/nm
  [pkg-config]=/usr/bin/pkg-config
  [libgtest-dev]=/usr/include/gtest/gtest.h
  [nlohmann-json3-dev]=/usr/include/nlohmann/json.hpp
  [libleveldb-dev]=/usr/include/leveldb/c.h
)

missing=()
for package in "${!probes[@]}"; do
  probe=${probes[$package]}
  if [ ! -e "$probe" ] && ! command -v "$(basename "$probe")" >/dev/null 2>&1; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
  elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -n)
  else
    echo "setup: missing ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: system packages present"
fi

for tool in cargo rustc; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "setup: $tool not found; install the Rust toolchain (https://rustup.rs)" >&2
    exit 1
  fi
done
for component in rustfmt clippy; do
  subcommand=${component/rustfmt/fmt}
  if ! cargo "$subcommand" --version >/dev/null 2>&1; then
    if command -v rustup >/dev/null 2>&1; then
      rustup component add "$component"
    else
      echo "setup: cargo $component not available" >&2
      exit 1
    fi
  fi
done
echo "setup: $(cargo --version), $(cmake --version | head -n1), $(g++ --version | head -n1)"

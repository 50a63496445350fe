#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# check_cmake.sh BUILD_DIR SOURCE_ROOT: meson install into a temporary DESTDIR, then build
# tests/install/cmake_consumer (find_package(modelrepo) and modelrepo::modelrepo) with
# CMake against it and run the program. Without cmake it skips (exit 77), and fails in CI.
set -euo pipefail
build=$1
root=$2
if ! command -v cmake >/dev/null; then
    echo "cmake is missing: scripts/setup test installs it"
    [ "${CI:-}" = true ] && exit 1
    exit 77
fi
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT

meson install -C "$build" --destdir "$dest" --no-rebuild --quiet
config=$(find "$dest" -name modelrepoConfig.cmake | head -n 1)
test -n "$config" || { echo "no modelrepoConfig.cmake installed"; exit 1; }
test -f "$(dirname "$config")/modelrepoConfigVersion.cmake" || { echo "no version file"; exit 1; }
prefix=$(cd "$(dirname "$config")/../../.." && pwd)
# libdir may be lib/<triplet>: the prefix is where include/ is.
while [ ! -d "$prefix/include/modelrepo" ] && [ "$prefix" != / ]; do prefix=$(dirname "$prefix"); done

# The consumer's own copy, so that its build directory is outside the tree.
cp -r "$root/tests/install/cmake_consumer" "$dest/consumer"
sed -i "s|\.\./\.\./\.\./examples/basic.cpp|$root/examples/basic.cpp|" "$dest/consumer/CMakeLists.txt"
cmake -S "$dest/consumer" -B "$dest/consumer/build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_BUILD_TYPE=Release >"$dest/cmake.log" 2>&1 || { cat "$dest/cmake.log"; exit 1; }
cmake --build "$dest/consumer/build" >>"$dest/cmake.log" 2>&1 || { cat "$dest/cmake.log"; exit 1; }
output=$(MODELREPO_SOURCES= "$dest/consumer/build/consumer")
echo "$output"
grep -q "32 models from builtin" <<<"$output"

# A version the package is not: refused by the version file.
cat >"$dest/consumer/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.16)
project(too_new CXX)
find_package(modelrepo 99 REQUIRED)
CMAKE
if cmake -S "$dest/consumer" -B "$dest/consumer/build2" -DCMAKE_PREFIX_PATH="$prefix" \
    >"$dest/cmake2.log" 2>&1; then
    echo "find_package(modelrepo 99) was accepted"; exit 1
fi
grep -q "compatible with requested version" "$dest/cmake2.log" || { cat "$dest/cmake2.log"; exit 1; }
echo "find_package(modelrepo) and modelrepo::modelrepo build and run a program; version 99 is refused"

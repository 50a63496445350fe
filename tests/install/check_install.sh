#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# check_install.sh BUILD_DIR PROGRAM.cpp [with-cli|without-cli]: meson install into a temporary DESTDIR, then
# compile PROGRAM.cpp against it with pkg-config alone and run it.
set -euo pipefail
build=$1
program=$2
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT

meson install -C "$build" --destdir "$dest" --no-rebuild --quiet
prefix=$(meson introspect "$build" --buildoptions |
    python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"))')
pcdir=$(dirname "$(find "$dest" -name modelrepo.pc | head -n 1)")
test -n "$pcdir" || { echo "no modelrepo.pc installed"; exit 1; }
test -f "$dest$prefix/share/modelrepo/models.json" || { echo "data/models.json not installed"; exit 1; }

export PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$dest
flags=$(pkg-config --cflags --libs modelrepo)
echo "pkg-config --cflags --libs modelrepo: $flags"
# shellcheck disable=SC2086
c++ -std=c++20 "$program" -o "$dest/program" $flags
libdir=$(dirname "$(find "$dest" -name 'libmodelrepo.so' | head -n 1)")
output=$(LD_LIBRARY_PATH=$libdir "$dest/program")
echo "$output"
grep -q "32 models from builtin" <<<"$output"
if [ "${3:-with-cli}" = with-cli ]; then
    LD_LIBRARY_PATH=$libdir "$dest$prefix/bin/modelrepo" stats >/dev/null
fi
echo "installed library, headers, pkg-config file, data and CLI work"

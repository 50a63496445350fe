#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fails when a C++ file of the tree is not formatted as .clang-format says (clang-format
# --dry-run), naming each. Run by the test suite (suite "style"); fix with
#   clang-format -i $(find include src tools tests bench examples -name '*.[ch]pp')
set -uo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "clang-format is not installed (scripts/setup test)"; exit 1; }
bad=0
while IFS= read -r -d '' file; do
    if ! clang-format --dry-run --Werror "$file" >/dev/null 2>&1; then
        echo "not formatted: $file"
        bad=1
    fi
done < <(find include src tools tests bench examples -name '*.cpp' -print0 -o -name '*.hpp' -print0)
[ $bad -eq 0 ] && echo "every C++ file is formatted"
exit $bad

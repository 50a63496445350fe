#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fails when the README's C++ example and examples/basic.cpp differ."""
import sys

readme, example = open(sys.argv[1]).read(), open(sys.argv[2]).read()
start = readme.index("```cpp\n") + len("```cpp\n")
snippet = readme[start:readme.index("```", start)]
body = "".join(l for l in example.splitlines(keepends=True) if not l.startswith("// "))
if snippet.strip() != body.strip():
    print("README.md's C++ example differs from examples/basic.cpp")
    sys.exit(1)
print("README example == examples/basic.cpp")

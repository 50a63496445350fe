#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Lists the functions of C++ files longer than a limit (default 120 lines).

A function is a brace block opened at namespace or class level after a closing
parenthesis (a definition, possibly with const/noexcept/override/trailing return type or
a constructor's initializer list). Comments, strings and character literals are blanked
first. Usage: check-function-length.py [--max N] PATH... ; exit 1 when one is too long.
"""
import re
import sys
from pathlib import Path

CONTAINER = re.compile(r'\b(namespace|class|struct|union|enum)\b[^;{}()]*$')


def blank(text):
    """Comments, string and char literals replaced by spaces (newlines kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith('//', i):
            j = text.find('\n', i)
            j = n if j < 0 else j
            out.append(' ' * (j - i))
            i = j
        elif text.startswith('/*', i):
            j = text.find('*/', i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r'[^\n]', ' ', text[i:j]))
            i = j
        elif text.startswith('R"', i):
            m = re.match(r'R"([^(]*)\(', text[i:])
            end = text.find(')' + m.group(1) + '"', i) if m else -1
            j = n if end < 0 else end + len(m.group(1)) + 2
            out.append(re.sub(r'[^\n]', ' ', text[i:j]))
            i = j
        elif c == "'" and i > 0 and text[i - 1].isalnum() and i + 1 < n and text[i + 1].isalnum():
            out.append(c)  # a digit separator: 1'000
            i += 1
        elif c in '"\'':
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == '\\' else 1
            j = min(j + 1, n)
            out.append(re.sub(r'[^\n]', ' ', text[i:j]))
            i = j
        else:
            out.append(c)
            i += 1
    return ''.join(out)


def long_functions(path, limit):
    text = blank(path.read_text(errors='replace'))
    stack = []  # (kind, start offset)
    found = []
    last = 0
    for m in re.finditer(r'[{}]', text):
        pos = m.start()
        if m.group() == '{':
            head = text[last:pos]
            at_container_level = all(kind == 'container' for kind, _ in stack)
            if CONTAINER.search(head.split(';')[-1].split('}')[-1]):
                kind = 'container'
            elif at_container_level and re.search(r'\)[^;{}]*$', head):
                kind = 'function'
            else:
                kind = 'block'
            stack.append((kind, pos))
        elif stack:
            kind, start = stack.pop()
            if kind == 'function':
                first = text.count('\n', 0, start) + 1
                lines = text.count('\n', start, pos) + 1
                if lines > limit:
                    found.append((first, lines))
        last = pos + 1
    return found


def main(argv):
    limit = 120
    if len(argv) > 1 and argv[0] == '--max':
        limit = int(argv[1])
        argv = argv[2:]
    bad = 0
    for root in argv:
        paths = [Path(root)] if Path(root).is_file() else sorted(
            p for p in Path(root).rglob('*') if p.suffix in ('.cpp', '.hpp'))
        for p in paths:
            for first, lines in long_functions(p, limit):
                print(f'{p}:{first}: a function of {lines} lines (limit {limit})')
                bad += 1
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The limits on the C++ sources' size, so that a newcomer finds rooms, not halls.

  files     at most 600 lines (--file)
  classes   at most 300 lines, a class or struct's braces (--class)
  functions at most 100 lines, a definition's braces (--function)
  folders   at most 3,000 lines of their own .cpp and .hpp files, subfolders apart (--folder)

A function is a brace block opened at namespace or class level after a closing
parenthesis (a definition, possibly with const/noexcept/override/trailing return type or
a constructor's initializer list); a lambda is part of the function it is in. Comments,
strings and character literals are blanked first. The page's JavaScript and CSS are not
C++ and do not count.

Usage: check-limits.py [--file N] [--class N] [--function N] [--folder N] PATH...
Prints each breach as PATH:LINE: what; exits 1 when there is one.
"""
import re
import sys
from pathlib import Path

CONTAINER = re.compile(r'\b(namespace|class|struct|union|enum)\b[^;{}()]*$')
CLASS = re.compile(r'\b(class|struct|union)\b[^;{}()]*$')


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


def long_blocks(path, function_limit, class_limit):
    """(line, what) for each function or class over its limit in `path`."""
    text = blank(path.read_text(errors='replace'))
    stack = []  # (kind, start offset, name)
    found = []
    last = 0
    for m in re.finditer(r'[{}]', text):
        pos = m.start()
        if m.group() == '{':
            head = text[last:pos]
            tail = head.split(';')[-1].split('}')[-1]
            at_container_level = all(kind in ('container', 'class') for kind, _, _ in stack)
            name = ''
            if CLASS.search(tail) and not re.search(r'\benum\b', tail):
                kind = 'class'
                words = re.findall(r'\b(?:class|struct|union)\s+(?:\[\[[^]]*\]\]\s*)?(\w+(?:::\w+)*)', tail)
                name = words[-1] if words else '(anonymous)'
            elif CONTAINER.search(tail):
                kind = 'container'
            elif at_container_level and re.search(r'\)[^;{}]*$', head):
                kind = 'function'
            else:
                kind = 'block'
            stack.append((kind, pos, name))
        elif stack:
            kind, start, name = stack.pop()
            first = text.count('\n', 0, start) + 1
            lines = text.count('\n', start, pos) + 1
            if kind == 'function' and lines > function_limit:
                found.append((first, f'a function of {lines} lines (limit {function_limit})'))
            elif kind == 'class' and lines > class_limit:
                found.append((first, f'class {name}: {lines} lines (limit {class_limit})'))
        last = pos + 1
    return found


def line_count(path):
    with open(path, 'rb') as f:
        return sum(1 for _ in f)


def main(argv):
    limits = {'--file': 600, '--class': 300, '--function': 100, '--folder': 3000}
    roots = []
    while argv:
        if argv[0] in limits:
            limits[argv[0]] = int(argv[1])
            argv = argv[2:]
        else:
            roots.append(argv.pop(0))
    bad = 0
    folders = {}
    for root in roots:
        paths = [Path(root)] if Path(root).is_file() else sorted(
            p for p in Path(root).rglob('*') if p.suffix in ('.cpp', '.hpp'))
        for p in paths:
            lines = line_count(p)
            folders[p.parent] = folders.get(p.parent, 0) + lines
            if lines > limits['--file']:
                print(f'{p}:1: a file of {lines} lines (limit {limits["--file"]})')
                bad += 1
            for first, what in long_blocks(p, limits['--function'], limits['--class']):
                print(f'{p}:{first}: {what}')
                bad += 1
    for folder, lines in sorted(folders.items()):
        if lines > limits['--folder']:
            print(f'{folder}/: {lines} lines of its own files (limit {limits["--folder"]})')
            bad += 1
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

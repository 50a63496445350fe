#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fails when the documents and the tree disagree.

- every relative link of README.md and docs/*.md names a file that exists;
- every path under src/, tools/, include/, tests/, bench/ or contrib/ that
  docs/architecture.md names exists, and every folder of src/ and of
  tools/modelrepo/serve/ holding C++ is named there (the page matches the tree);
- with the CLI given: every command that docs/cli.md lists is one `modelrepo --help`
  lists, and the other way round; every long option docs/cli.md shows for serve is one
  `modelrepo serve --help` knows.

usage: check_docs.py SOURCE_ROOT [MODELREPO_CLI]
"""
import pathlib
import re
import subprocess
import sys

root = pathlib.Path(sys.argv[1])
cli = sys.argv[2] if len(sys.argv) > 2 else None
problems = []

pages = [root / "README.md"] + sorted((root / "docs").glob("*.md"))
for page in pages:
    text = page.read_text()
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        if not (page.parent / target).exists():
            problems.append(f"{page.relative_to(root)}: link to missing {target}")

arch = (root / "docs/architecture.md").read_text()
for path in set(re.findall(r"`((?:src|tools|include|tests|bench|contrib)/[A-Za-z0-9_./-]+)`", arch)):
    if not (root / path.rstrip("/")).exists() and "redis" not in path:
        problems.append(f"docs/architecture.md names {path}, which does not exist")
folders = [p for p in (root / "src").rglob("*") if p.is_dir()]
folders += [p for p in (root / "tools/modelrepo/serve").iterdir() if p.is_dir()]
for folder in folders:
    if not any(f.suffix in (".cpp", ".hpp") for f in folder.iterdir()):
        continue
    rel = folder.relative_to(root).as_posix()
    parent = folder.parent.relative_to(root).as_posix()
    # "src/postgres/catalog/", or "src/durable" with "copy/" named in its row
    if rel + "/" not in arch and f"`{rel}`" not in arch and f"`{rel}/`" not in arch \
            and not (parent + "/" in arch and f"`{folder.name}/`" in arch):
        problems.append(f"docs/architecture.md does not name {rel}/")

if cli:
    listed = set(re.findall(r"^  ([a-z]+)\b", (root / "docs/cli.md").read_text(), re.M))
    out = subprocess.run([cli, "--help"], capture_output=True, text=True).stdout
    known = set(re.findall(r"^  ([a-z]+)\s", out[out.find("Subcommands:"):out.find("Exit status")], re.M))
    for c in sorted(listed ^ known):
        where = "docs/cli.md" if c in listed else "modelrepo --help"
        problems.append(f"command {c} is only in {where}")
    serve_help = subprocess.run([cli, "serve", "--help"], capture_output=True, text=True).stdout
    cli_page = (root / "docs/cli.md").read_text()
    serve_part = cli_page[cli_page.find("  serve "):cli_page.find("  publish ")]
    for option in sorted(set(re.findall(r"(--[a-z][a-z-]+)", serve_part))):
        if option not in serve_help:
            problems.append(f"docs/cli.md shows serve {option}, which serve --help lacks")
    for option in sorted(set(re.findall(r"^\s+(--[a-z][a-z-]+)", serve_help, re.M))):
        if option != "--help" and option not in serve_part:
            problems.append(f"serve --help has {option}, which docs/cli.md does not show")

for p in problems:
    print(p)
print(f"{len(pages)} pages checked, {len(problems)} problems")
sys.exit(1 if problems else 0)

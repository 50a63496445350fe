#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Adds up meson testlog.json files and prints "N passed, M failed".

A test binary that printed doctest's summary counts as its test cases; any other test
counts as one. With CI=true a skipped test is a failure: CI must run every test.
"""
import json
import os
import re
import sys

# doctest's lines that say where a check failed (printed again at the end: CI's output
# may keep only its tail).
FAILED_AT = re.compile(r"^(.*\.cpp:\d+: (?:ERROR|FATAL ERROR): .*)$", re.M)

DOCTEST = re.compile(r"\[doctest\] test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed\s*\|\s*(\d+) skipped")

in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
passed = failed = 0
problems = []
for log in sys.argv[1:]:
    if log.startswith("passed:"):  # a check of the script's own (the packages)
        passed += 1
        continue
    if log.startswith("build-failed:"):
        failed += 1
        problems.append(log)
        continue
    if not os.path.exists(log):
        failed += 1
        problems.append("missing " + log)
        continue
    build = log.split("/")[0]
    for line in open(log):
        test = json.loads(line)
        result = test["result"]
        name = "%s: %s" % (build, test["name"])
        counts = DOCTEST.findall(test.get("stdout") or "")
        if result == "SKIP":
            if in_ci:
                failed += 1
                problems.append(name + " skipped (a skip fails CI)")
            continue
        if result == "OK" and counts:
            passed += sum(int(c[1]) for c in counts)
            failed += sum(int(c[2]) for c in counts)
        elif result in ("OK", "EXPECTEDFAIL"):
            passed += 1
        else:
            if counts:
                passed += sum(int(c[1]) for c in counts)
                failed += max(1, sum(int(c[2]) for c in counts))
            else:
                failed += 1
            problems.append("%s %s" % (name, result))
            output = (test.get("stdout") or "") + (test.get("stderr") or "")
            for where in FAILED_AT.findall(output)[:5]:
                problems.append("  " + where[:300])

for p in problems:
    print("failed: " + p)
print("%d passed, %d failed" % (passed, failed))
sys.exit(0 if failed == 0 and passed > 0 else 1)

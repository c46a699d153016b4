#!/usr/bin/env python3
"""Prints one 'N passed, N failed, N skipped' line for a CTest log.

CTest sees the lit suite as a single test; lit's own results (its xunit file,
the second argument) give the per-file counts that replace that entry."""
import os
import re
import sys
import xml.etree.ElementTree as ET

text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
summary = re.search(r"(\d+) tests failed out of (\d+)", text)
if not summary:
    print("0 passed, 1 failed (CTest printed no summary)")
    sys.exit(0)
failed, total = int(summary.group(1)), int(summary.group(2))
skipped = len(re.findall(r"^\s*\d+ - .* \((Skipped|Disabled)\)$", text, re.M))
passed = total - failed - skipped

lit = {}
if len(sys.argv) > 2 and os.path.exists(sys.argv[2]):
    for suite in ET.parse(sys.argv[2]).getroot().iter("testsuite"):
        runs = int(suite.get("tests", 0))
        bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skip = int(suite.get("skipped", 0))
        lit["Passed"] = lit.get("Passed", 0) + runs - bad - skip
        lit["Failed"] = lit.get("Failed", 0) + bad
        lit["Unsupported"] = lit.get("Unsupported", 0) + skip
lit_entry = re.search(r"Test\s+#\d+: lit \.+\s*(\**)\s*(\w+)", text)
if lit_entry:
    if lit_entry.group(2) == "Passed":
        passed -= 1
    else:
        failed -= 1
    if not lit:
        failed += 1  # lit stopped before printing its summary
    passed += lit.get("Passed", 0) + lit.get("Expectedly Failed", 0)
    failed += (lit.get("Failed", 0) + lit.get("Unresolved", 0) +
               lit.get("Timed Out", 0))
    skipped += lit.get("Unsupported", 0)
print(f"{passed} passed, {failed} failed, {skipped} skipped")

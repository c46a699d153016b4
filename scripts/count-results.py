#!/usr/bin/env python3
"""Prints one 'N passed, N failed' line for a CTest log.

CTest sees the lit suite as a single test; lit's own summary inside the log
gives its per-file counts, which replace that single entry."""
import re
import sys

text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
passed = failed = skipped = 0
for m in re.finditer(r"Test\s+#\d+: (\S+) \.+\**\s*(\w+)", text):
    name, result = m.groups()
    if name == "lit":
        continue
    if result == "Passed":
        passed += 1
    elif "Skipped" in m.group(0) or result == "Not":
        skipped += 1
    else:
        failed += 1
lit = {k: int(v) for k, v in re.findall(
    r"^\s*(Passed|Failed|Unsupported|Expectedly Failed|Unresolved|Timed Out)\s*:\s*(\d+)",
    text, re.M)}
passed += lit.get("Passed", 0) + lit.get("Expectedly Failed", 0)
failed += lit.get("Failed", 0) + lit.get("Unresolved", 0) + lit.get("Timed Out", 0)
skipped += lit.get("Unsupported", 0)
if "lit" in re.findall(r"Test\s+#\d+: (\S+)", text) and not lit:
    failed += 1  # lit crashed before printing its summary
print(f"{passed} passed, {failed} failed, {skipped} skipped")

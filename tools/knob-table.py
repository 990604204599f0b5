#!/usr/bin/env python3
"""knob-table.py - prints the Markdown table of every WEFT_* variable from core/config_table.h,
for docs/configuration.md (tests check that it names every variable)."""
import re
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "core/config_table.h"
print("| Variable | Type | Default | Meaning |")
print("|---|---|---|---|")
for line in open(path):
    m = re.match(r'X\((\w+),\s*(\w+),\s*"([^"]*)",\s*"(.*)"\)\s*$', line.strip())
    if m:
        name, typ, default, text = m.groups()
        default = f"`{default}`" if default else "(empty)"
        print(f"| `WEFT_{name}` | {typ.lower()} | {default} | {text.replace('|', chr(92) + '|')} |")

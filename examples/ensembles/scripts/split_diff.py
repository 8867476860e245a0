"""Script agent: split a unified diff into one chunk per file, for a per-file fan-out.

Reads {"input": <diff text>} on stdin; writes {"success", "data": [<file diff>, ...], "error"}.
"""

import json
import sys


def main() -> None:
    try:
        diff = json.load(sys.stdin).get("input")
        if not isinstance(diff, str):
            raise ValueError("input must be diff text")
    except (ValueError, AttributeError) as e:
        print(json.dumps({"success": False, "data": None, "error": f"bad input: {e}"}))
        return
    chunks, current = [], []
    for line in diff.splitlines():
        if line.startswith("diff --git ") and current:
            chunks.append("\n".join(current))
            current = []
        current.append(line)
    if current:
        chunks.append("\n".join(current))
    print(json.dumps({"success": True, "data": chunks, "error": None}))


main()

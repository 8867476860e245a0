"""DESIGN.md keeps every module under ~600 lines so a newcomer can read one whole: past that, a cohesive part
moves to its own module (config.py's line-number errors went to config_lines.py at 601)."""

from __future__ import annotations

from pathlib import Path

LIMIT = 600
SRC = Path(__file__).resolve().parents[1] / "src" / "tierwise"


def test_no_module_is_over_the_line_limit():
    over = {str(p.relative_to(SRC)): n for p in sorted(SRC.rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > LIMIT}
    assert not over, f"modules over {LIMIT} lines (move a cohesive part out): {over}"

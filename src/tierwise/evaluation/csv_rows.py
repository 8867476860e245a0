"""A user's outcomes as a spreadsheet writes them: a `.csv` (or `.tsv`) file with a header row naming the JSONL
format's fields (`prompt`, `strong`, `weak`, and optionally `id`, `subject`, `strong_response`,
`weak_response`; other columns are left out), separated by commas, tabs (`.tsv`) or semicolons (a spreadsheet's
export where the decimal mark is a comma: its outcomes may be written `7,5`). Each record becomes the row the JSONL reader would have read:
the outcomes' text read as numbers, an empty cell of an optional field left out. Errors name the file's line
where the record starts (a quoted prompt may span lines)."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

OUTCOMES = ("strong", "weak")
FIELDS = ("prompt", "strong", "weak", "id", "subject", "strong_response", "weak_response")  # the JSONL format's


def is_table(path: str | Path) -> bool:
    return str(path).lower().endswith((".csv", ".tsv"))


def csv_rows(path: str | Path, error: type[Exception]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line where the record starts, the record as a JSONL row) of each non-empty record."""
    csv.field_size_limit(sys.maxsize)
    delimiter = "\t" if str(path).lower().endswith(".tsv") else ","
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            if delimiter == "," and _semicolons(f.readline()):
                delimiter = ";"  # a spreadsheet's export where the decimal mark is a comma (most of Europe)
            f.seek(0)
            # strict: a quote never closed is an error, not every line after it read into one cell (rows lost)
            reader = csv.DictReader(f, delimiter=delimiter, strict=True)
            start = 1
            header = reader.fieldnames
            if not header or "prompt" not in header:
                shown = ", ".join(header or []) or "nothing"
                raise error(f"{path}:1: the header row names {shown[:200]}; a CSV of outcomes needs a header with "
                            "`prompt`, `strong` and `weak` columns (docs/routers.md)")
            twice = sorted({k for k in header if k in FIELDS and header.count(k) > 1})
            if twice:  # DictReader keeps the last column of a name: a note read as every prompt
                raise error(f"{path}:1: the header names {' and '.join(f'`{k}` twice' for k in twice)}; rename "
                            "or remove the extra column")
            start = reader.line_num + 1
            for record in reader:
                line, start = start, reader.line_num + 1
                if None in record:  # more cells than the header has names
                    raise error(f"{path}:{line}: {len(header) + len(record[None])} cells under a header of "
                                f"{len(header)}: quote a prompt that holds the delimiter")
                row = {k: v for k, v in record.items() if v not in (None, "")}
                if not row:
                    continue
                for k in OUTCOMES:
                    if k in row:  # a cell that is no number is reported with the other rows' problems
                        row[k] = _number(row[k], decimal_comma=delimiter == ";")
                yield line, row
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 (byte 0x{e.object[e.start]:02x}); save the file as UTF-8") from None
    except csv.Error as e:  # `start`: the line where the record being read began
        raise error(f"{path}:{start}: not readable as CSV ({e}): a quote opened in this record is never closed, or "
                    "a quoted cell has text after its closing quote (write a quote inside a cell as \"\")") from None
    except OSError as e:
        raise error(f"cannot read {path}: {e.strerror}") from None


class NotANumber(str):
    """An outcome cell that does not read as a number: the loader names it with every other row to fix."""

    def problem(self, field: str) -> str:
        return f"`{field}` is {self[:20]!r}: write the outcome as a number (1/0 correctness or a grade)"


def _semicolons(header: str) -> bool:
    """A header row separated by semicolons, as Excel and LibreOffice write "CSV" where the decimal mark is a comma:
    read as such (before session 37 it was refused as a header without `prompt`, though it named it; newuser37)."""
    names = [c.strip().strip('"').strip() for c in header.rstrip("\r\n").split(";")]
    return "prompt" in names and "prompt" not in [c.strip().strip('"') for c in header.split(",")]


def _number(text: str, decimal_comma: bool = False) -> float | NotANumber:
    t = text.strip()
    if decimal_comma and t.count(",") == 1 and "." not in t:
        t = t.replace(",", ".")  # `7,5` in a semicolon-separated file is seven and a half
    try:
        return float(t)
    except ValueError:
        return NotANumber(text)

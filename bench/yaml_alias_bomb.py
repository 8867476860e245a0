"""What an ensemble file of YAML anchors costs to parse and validate (session 22, attack-mcp): `levels` of
anchors, each a list of nine aliases of the one before, stand for 9**levels values in a few hundred bytes.
An MCP client sends such text to `validate_ensemble` / `create_ensemble`. A/B: run it once per tree.

    PYTHONPATH=src .venv/bin/python bench/yaml_alias_bomb.py --levels 5 6 7
"""

from __future__ import annotations

import argparse
import resource
import time


def bomb(levels: int) -> str:
    lines = ["l0: &l0 {type: string}"]
    lines += [f"l{i}: &l{i} {{anyOf: [{', '.join([f'*l{i - 1}'] * 9)}]}}" for i in range(1, levels + 1)]
    defs = "\n".join("        " + line for line in lines)
    return f"name: bomb\nagents:\n  - name: a\n    model: small\n    output_schema:\n      defs:\n{defs}\n      type: string\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", type=int, nargs="+", default=[5, 6, 7])
    a = ap.parse_args()
    from tierwise.ensembles.schema import parse_ensemble, structural_problems
    from tierwise.errors import ConfigError

    for n in a.levels:
        text = bomb(n)
        t0 = time.perf_counter()
        try:
            ens = parse_ensemble(text)
            structural_problems(ens)
            outcome = "accepted"
        except ConfigError as e:
            outcome = e.message.splitlines()[0][:80]
        print(f"levels {n}: {len(text)} bytes, {9 ** n:,} values expanded: {time.perf_counter() - t0:.3f} s, "
              f"{outcome} (peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB)")


if __name__ == "__main__":
    main()

"""What session 26's covers cost a weak run's start (root gateway, host read-only): the regular files at the top of
the host (`Staging.files`) and the interpreter's site-packages (`Staging.inside`). The child's setup between fork and
exec with session 25's covers and Landlock, without and with them, in interleaved pairs of spawns of `true` (weak_host_view_cost.spawn). Prints each
side's median and the per-pair ratio's median and quartiles.

    PYTHONPATH=src nice -n 5 .venv/bin/python bench/weak_top_files_cost.py [pairs]
"""

from __future__ import annotations

import statistics
import sys

from weak_host_view_cost import TRUE, compare

from tierwise.sandbox import bwrap, identity, weak


def prepared(files: bool, folder: str, user: identity.User) -> tuple:
    hide, shown = weak.masks([folder, weak.prefix(), bwrap.interpreter()])
    staging = identity.plan([weak.prefix(), *shown], user, hide, stage=identity.PROC_STAGE,
                            files=weak.top_files() if files else (), inside=weak.private_inside() if files else ())
    return (identity.switcher(user, staging, identity.run_folder(folder, {}, 1 << 20, user)),
            weak.landlock_rules(folder, TRUE, []))


def main(pairs: int) -> None:
    a, b, ratios, _ = compare(prepared, pairs)
    q = statistics.quantiles(ratios, n=4)
    print(f"{pairs} pairs: without session 26's covers median {statistics.median(a) * 1000:.2f} ms, with "
          f"{statistics.median(b) * 1000:.2f} ms; per-pair ratio median {statistics.median(ratios):.2f} "
          f"(quartiles {q[0]:.2f}-{q[2]:.2f}); files covered {len(weak.top_files())}, "
          f"folders {len(weak.private_inside())}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)

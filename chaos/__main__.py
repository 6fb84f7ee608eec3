"""``python -m chaos --schedules N [--seed S] [--workers W]``: run the chaos suite and print its figures.

Schedule ``i`` uses seed ``S + i``; without ``--seed`` the first seed is random (and printed), so every
run of the suite explores new schedules while any one of them can be replayed exactly. Exits 1 when any
schedule broke a promise (duplicates, lost, leaked, wrong plays, lease, no convergence).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

from chaos.runner import ScheduleResult
from chaos.suite import run_suite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--schedules", type=int, default=500, help="how many schedules (default 500)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the first schedule (default: random)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="processes (default 2)")
    parser.add_argument("--quiet", action="store_true", help="no progress dots")
    args = parser.parse_args(argv)
    first = args.seed if args.seed is not None else random.randrange(1, 1_000_000)
    seeds = range(first, first + args.schedules)
    print(f"chaos: seeds {first}..{first + args.schedules - 1}, {args.workers} worker(s)", flush=True)

    def progress(result: ScheduleResult) -> None:
        if not args.quiet:
            print("F" if result.failed else ".", end="", flush=True)

    began = time.perf_counter()
    suite = run_suite(seeds, workers=args.workers, progress=progress)
    if not args.quiet:
        print()
    print(f"chaos: {time.perf_counter() - began:.0f}s")
    print("\n".join(suite.report()))
    return 0 if suite.ok else 1


if __name__ == "__main__":
    sys.exit(main())

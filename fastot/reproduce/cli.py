"""The papers' experiments, side by side with the paper and the exact optimum.

    python -m fastot.reproduce --list
    python -m fastot.reproduce outlier unified --seeds 0 1 2 --budget cpu --out runs/repro

Every row of an experiment is a shipped preset plus overrides, run once per seed through
``python -m fastot.train`` (one intra-op thread per run, ``--jobs`` runs at a time). ``--budget paper``
runs the papers' schedules (the presets' own lengths unless a row says otherwise); ``--budget cpu``
runs the shorter budgets below. For every row the table gives our mean +- std over seeds, the
paper's value, and the same metric at the exact optimum of the objective being trained
(``fastot.groundtruth``), plus our distance to that optimum. An interrupted sweep continues: finished
runs are reused, and a run cut off mid-way resumes from its last checkpoint if its configuration is
unchanged. Writes ``OUT/<budget>/<experiment>.md`` and ``.png``.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastot import rundir
from fastot.reproduce.experiments import EXPERIMENTS, GROUPS, estimate_minutes
from fastot.reproduce.runner import run_dir_of, run_one
from fastot.reproduce.spec import BUDGETS, Row
from fastot.reproduce.tables import report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fastot.reproduce", description=__doc__.splitlines()[0])
    names = [*EXPERIMENTS, *GROUPS]
    p.add_argument("experiments", nargs="*", metavar="NAME", help=f"any of: {', '.join(names)}")
    p.add_argument(
        "--list", action="store_true", help="name every experiment, its source and expected CPU time"
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--budget", choices=BUDGETS, default="cpu")
    p.add_argument("--out", type=Path, default=Path("runs/repro"))
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (one thread each)")
    p.add_argument("--only", nargs="+", metavar="LABEL", help="run only the rows whose label is one of these")
    p.add_argument(
        "--finished-only",
        action="store_true",
        help="train nothing: write the tables from the runs that have finished",
    )
    args = p.parse_args(argv)
    if args.list or not args.experiments:
        print(
            f"{'name':15} {'source':52} "
            + " ".join(f"{b:>8}" for b in BUDGETS)
            + "  (min per seed, 1 thread)"
        )
        for name, exp in EXPERIMENTS.items():
            minutes = [
                f"{estimate_minutes(exp, b):8.0f}" if b in exp.budgets else f"{'—':>8}" for b in BUDGETS
            ]
            print(f"{name:15} {exp.source[:52]:52} " + " ".join(minutes))
        for group, members in GROUPS.items():
            print(f"{group:15} the group of {', '.join(members)}")
        return 0
    wanted = [m for n in args.experiments for m in GROUPS.get(n, [n])]
    unknown = [n for n in wanted if n not in EXPERIMENTS]
    if unknown:
        p.error(f"unknown experiment(s) {unknown}; choose from {names}")
    plan: list[tuple[str, list[tuple[Row, int]]]] = []
    for name in dict.fromkeys(wanted):
        exp = EXPERIMENTS[name]
        if args.budget not in exp.budgets and name not in args.experiments:  # a group's member
            print(f"{name}: not run at the {args.budget} budget", file=sys.stderr)
            continue
        if args.budget not in exp.budgets:
            p.error(f"--budget {args.budget}: {name} runs at {' or '.join(exp.budgets)}")
        rows = [r for r in exp.rows if not args.only or r.label in args.only]
        if not rows:
            p.error(f"--only matches no row of {name}: {[r.label for r in exp.rows]}")
        rows = [r for r in rows if r.budget_overrides(args.budget) is not None]
        if not rows:
            print(f"{name}: no row runs at the {args.budget} budget", file=sys.stderr)
            continue
        jobs = [(row, s) for row in rows for s in args.seeds[: row.max_seeds]]
        if args.finished_only:
            jobs = [(r, s) for r, s in jobs if rundir.is_finished(run_dir_of(args.out, args.budget, r, s))]
            if not jobs:
                print(f"{name}: no finished run in {args.out / args.budget}", file=sys.stderr)
                continue
        plan.append((name, jobs))
    # One pool for every experiment's runs, so that --jobs stays busy from one experiment to the
    # next; each table is written as soon as its own runs are done.
    pool = ThreadPoolExecutor(args.jobs)
    try:
        futures = [
            [pool.submit(run_one, row, seed, args.out, args.budget) for row, seed in jobs] for _, jobs in plan
        ]
        for (name, jobs), done in zip(plan, futures, strict=True):
            results: dict[str, list[Path]] = {}
            for (row, _), future in zip(jobs, done, strict=True):
                results.setdefault(row.label, []).append(future.result())
            report(name, results, args.out, args.budget, args.seeds)
    finally:
        pool.shutdown(cancel_futures=True)
    return 0

"""``python -m fastot.sample --run DIR --n N --out FILE.npz [--seed S]``.

Loads a run's config and latest readable checkpoint (EMA weights when the run used EMA; an
unreadable newest checkpoint is named in a warning and the previous one is used) and writes arrays
``x`` (source inputs) and ``y`` (= T(x, z)) like the run's own ``samples.npz``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from fastot.config import check_run_config, intra_op_threads
from fastot.errors import ConfigError
from fastot.sampling import load_map, report_warnings


def sample_run(run_dir: Path, n: int, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pairs (x, T(x, z)) of the run's sampling map; ``seed`` defaults to the run's eval.seed."""
    check_run_config(run_dir)
    trained = load_map(run_dir)
    threads = intra_op_threads(trained.config)
    if threads:  # the run's own setting: the trainer drew its samples on these threads
        torch.set_num_threads(threads)
    x, y = trained.generate(n, trained.config.eval.seed if seed is None else seed)
    return x.numpy(), y.numpy()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fastot.sample", description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, required=True, help="a run directory written by fastot.train")
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=None, help="default: the run's eval.seed")
    args = p.parse_args(argv)
    try:
        if args.n <= 0:
            raise ConfigError("n", f"must be positive, got {args.n}")
        with report_warnings("fastot.sample"):
            x, y = sample_run(args.run, args.n, args.seed)
    except ConfigError as e:
        print(f"fastot.sample: error: {e}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, x=x, y=y)
    print(f"wrote {len(x)} pairs to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

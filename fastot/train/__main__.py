"""``python -m fastot.train [--preset NAME] [--out DIR] [key=value ...]``, ``--list``, ``--resume DIR``.

With no arguments it trains the default toy preset on CPU. Config and divergence errors print one
line (naming the config key or the step) and exit non-zero without a traceback.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from fastot import rundir
from fastot.errors import CheckpointWriteError
from fastot.train.errors import ConfigError, DivergenceError

PROG = "fastot.train"

DESCRIPTION = """\
Train an optimal-transport generative model from a preset (see --list).

With no arguments it trains the default preset, {default} (a 1-D toy that runs on a CPU),
and writes the run to runs/{default}-<time>."""

EPILOG = """\
examples:
  python -m fastot.train                                 train the default preset
  python -m fastot.train --list                          presets, the data they need, time estimates
  python -m fastot.train --preset digits-uotm --smoke    a quick check that a preset runs
  python -m fastot.train --preset cifar10-uotm data.target.path=DIR
  python -m fastot.train train.iterations=500 optim.map.lr=2e-4    override any config key
  python -m fastot.train --resume runs/NAME              continue a run

A bad config value prints one line naming its key and exits with status 2; a run whose loss
diverges prints the step and the last good checkpoint and exits with status 1."""


def _parser() -> argparse.ArgumentParser:
    from fastot.config import DEFAULT_PRESET

    p = argparse.ArgumentParser(
        prog=f"python -m {PROG}",
        description=DESCRIPTION.format(default=DEFAULT_PRESET),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--preset", metavar="NAME", help=f"preset name (default: {DEFAULT_PRESET}; see --list)")
    p.add_argument("--out", type=Path, metavar="DIR", help="run directory (default: runs/<preset>-<time>)")
    p.add_argument("--resume", type=Path, metavar="DIR", help="continue the run in DIR")
    p.add_argument(
        "--overwrite", action="store_true", help="replace the run already in --out (its files are deleted)"
    )
    p.add_argument(
        "--list",
        action="store_true",
        help="list the presets (data they need, GPU or CPU, time estimates) and exit",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="a quick check that the preset runs: a few iterations at a tiny batch with narrow "
        "networks, through every part it uses, a checkpoint and a small evaluation",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print the resolved config and the networks, then exit"
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="config overrides, e.g. train.iterations=500 (--dry-run prints every key)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_intermixed_args(argv)
    from fastot.config import DEFAULT_PRESET, load_config

    if args.list:
        try:
            print(list_presets_table())
        except ConfigError as e:  # a preset that does not load
            print(f"{PROG}: error: {e}", file=sys.stderr)
            return 2
        return 0
    from fastot.sampling import report_warnings
    from fastot.train.resume import RunFinished
    from fastot.train.runtime import Interrupted

    try:
        if args.resume is not None:
            if args.preset:
                raise ConfigError("preset", "--resume uses the run's own config.yaml; drop --preset")
            if args.out is not None or args.overwrite:
                flag = "--out" if args.out is not None else "--overwrite"
                raise ConfigError("resume", f"--resume continues the run in its own directory; drop {flag}")
            cfg_path = rundir.config(args.resume)
            if not cfg_path.is_file():
                raise ConfigError("resume", f"{cfg_path} not found")
            cfg = load_config(None, args.overrides, path=cfg_path)
            run_dir = args.resume
        else:
            preset = args.preset or DEFAULT_PRESET
            cfg = load_config(preset, args.overrides, allow_missing=args.dry_run)
            run_dir = args.out or Path("runs") / f"{preset}-{time.strftime('%Y%m%d-%H%M%S')}"
        if args.smoke:
            from fastot.config import smoke

            cfg = smoke(cfg)
        if args.dry_run:
            _dry_run(cfg)
            return 0
        from fastot.train.loop import train

        with report_warnings(PROG):
            summary = train(cfg, run_dir, resume=args.resume is not None, overwrite=args.overwrite)
    except ConfigError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except (DivergenceError, CheckpointWriteError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except RunFinished as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 0
    except Interrupted as e:
        print(f"{PROG}: {_interrupted(e, run_dir)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:  # Ctrl-C before training started: nothing to save
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    if summary:  # ranks > 0 of a multi-process run print nothing
        print(json.dumps({"run_dir": str(run_dir), **summary}, indent=2))
    return 0


def _interrupted(e, run_dir: Path) -> str:
    """One line: which signal, where the run stopped, how to continue it."""
    what = f"interrupted by {e}"
    if e.during == "start":
        return f"{what} while starting; nothing was trained"
    if e.checkpoint is None:
        return f"{what} at step {e.step}, before the first checkpoint; nothing was saved"
    if e.during == "training":
        return f"{what} at step {e.step}; checkpoint {e.checkpoint}; continue with --resume {run_dir}"
    return f"{what} during the {e.during}; {e.checkpoint} is complete; --resume {run_dir} finishes the run"


def _dry_run(cfg) -> None:
    from omegaconf import OmegaConf

    from fastot.config import to_container
    from fastot.data import build_sampler
    from fastot.data.registry import image_shape
    from fastot.nn import build_map, build_potential
    from fastot.sampling import implied_network_args

    print(OmegaConf.to_yaml(cfg, resolve=False))
    target = to_container(cfg, "data.target")
    shape = image_shape(target)
    if shape is not None:  # image data: no need to open the dataset to know the shapes
        implied = {"channels": shape[0], "image_size": shape[1]}
    else:
        implied = implied_network_args(build_sampler(target, "data.target"))
    for key, build in (("networks.map", build_map), ("networks.potential", build_potential)):
        net = build(to_container(cfg, key), **implied)
        n = sum(p.numel() for p in net.parameters())
        print(f"{key}: {type(net).__name__}, {n:,} parameters ({n / 1e6:.2f}M)")
        print(net)


# ---------------------------------------------------------------------------- --list
# CPU time estimates. A toy iteration costs k_v potential updates (x PENALTY_FACTOR with R1 or a
# gradient penalty: a double backward) plus k_t map updates on n_z latents per sample. Seconds per
# update of 256 samples on one intra-op thread, from Run.iteration timings (median of 3 x 20
# iterations after 3 warm-up ones) of uotm-table1-1d, uotm-outlier-1d, otm-outlier-1d,
# unified-uotm-8g, unified-wgan-gp-8g, sjko-25gaussians (uotm_toy networks) and not-moons-uniform,
# knot-moons-uniform (mlp) on a 2-core x86 VM shared with other jobs.
TOY_UPDATE_SECONDS = {"uotm_toy": 0.024, "mlp": 0.004}
PENALTY_FACTOR = 1.5
# Image updates scale with samples x pixels: digits-uotm (1x16x16, batch 64, its small networks)
# took 1.7 s per iteration on one thread there. Larger networks cost more per pixel, so for other
# image presets this is a lower bound; it only decides that they need a GPU.
IMAGE_UPDATE_SECONDS_PER_PIXEL = 4.0e-5
GPU_HOURS = 24.0  # a preset estimated to take longer than this on a CPU is marked as needing a GPU


def estimate_cpu_seconds(cfg) -> float | None:
    """Estimated training time of ``cfg`` on a CPU (one thread for toys), None when unknown."""
    from fastot.algorithms import build_algorithm
    from fastot.config import to_container
    from fastot.data.registry import image_shape

    algo = build_algorithm(to_container(cfg, "algorithm"))
    total = cfg.train.iterations if cfg.train.iterations is not None else algo.default_iterations()
    penalty = PENALTY_FACTOR if algo.regularizer in ("r1", "gp") and algo.reg_weight > 0 else 1.0
    if algo.regularizer == "r1":  # lazy R1 pays the penalty's extra cost on one step in r1_every
        penalty = 1 + (penalty - 1) / algo.r1_every
    updates = algo.k_v * penalty + algo.k_t * algo.map_samples_per_input()
    shape = image_shape(to_container(cfg, "data.target"))
    if shape is None:
        per = TOY_UPDATE_SECONDS.get(cfg.networks.map.name)
        return None if per is None else total * updates * per * cfg.train.batch_size / 256
    channels, size = shape
    pixels = cfg.train.batch_size * channels * size * size
    return total * updates * IMAGE_UPDATE_SECONDS_PER_PIXEL * pixels


def _duration(seconds: float) -> str:
    for unit, length in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * length or (unit == "min" and seconds >= length):
            return f"~{seconds / length:.0f} {unit}"
    return f"~{max(seconds, 1):.0f} s"


# A sentence ends at ". " before a capital, except after these abbreviations ("App. B.1").
_SENTENCE_END = re.compile(
    r"(?<!\bApp)(?<!\bSec)(?<!\bFig)(?<!\bTab)(?<!\bEq)(?<!\bal)(?<!\bcf)(?<!\bvs)\.\s+(?=[A-Z])"
)


def _description(text: str) -> str:
    """The opening sentence of a preset's leading comment block, however many lines it spans (the
    ``Data:`` note is left out: --list shows the paths to set)."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    block = " ".join(lines).split(" Data: ")[0].strip()
    end = _SENTENCE_END.search(block)
    return block if end is None else block[: end.start() + 1]


def list_presets_table(width: int | None = None) -> str:
    """``--list``: each preset's algorithm, whether it needs data paths, where it runs with a time
    estimate, then the paths to set and its description (wrapped, not cut)."""
    import shutil
    import textwrap

    from omegaconf import OmegaConf

    from fastot.config import DEFAULT_PRESET, PRESET_DIR, list_presets, load_config

    width = width or max(shutil.get_terminal_size((100, 20)).columns, 60)
    rows = []
    for name in list_presets():
        cfg = load_config(name, [], allow_missing=True)
        seconds = estimate_cpu_seconds(cfg)
        if seconds is None or seconds > GPU_HOURS * 3600:
            where = "GPU (days on a CPU)"
        else:
            where = f"CPU, {_duration(seconds)}"
        paths = sorted(OmegaConf.missing_keys(cfg))
        label = f"{name} (default)" if name == DEFAULT_PRESET else name
        text = _description((PRESET_DIR / f"{name}.yaml").read_text())
        if paths:
            text = f"Set {' '.join(f'{k}=DIR' for k in paths)}. {text}"
        rows.append((label, cfg.algorithm.name, "path needed" if paths else "built-in", where, text))
    heads = ("preset", "algorithm", "data", "runs on (time: estimate)")
    cols = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]

    def line(cells) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, cols, strict=True)).rstrip()

    out = [line(heads)]
    for *cells, text in rows:
        out.append(line(cells))
        out += textwrap.wrap(
            text, width, initial_indent="    ", subsequent_indent="    ", break_on_hyphens=False
        )
    out += [
        "",
        "Times are estimates for a preset as shipped, from measured rates: toys on one intra-op thread",
        "(their default), images from digits-uotm's rate per pixel (a lower bound for larger networks);",
        "a preset estimated at over a day on a CPU is marked GPU.",
    ]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())

"""``python -m fastot.train [--preset NAME] [--out DIR] [key=value ...]``, ``--list``, ``--resume DIR``.

With no arguments it trains the default toy preset on CPU. Config and divergence errors print one
line (naming the config key or the step) and exit non-zero without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from fastot.train.errors import ConfigError, DivergenceError

PROG = "fastot.train"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m {PROG}", description=__doc__.splitlines()[0])
    p.add_argument("--preset", help="preset name (see --list)")
    p.add_argument("--out", type=Path, help="run directory (default: runs/<preset>-<time>)")
    p.add_argument("--resume", type=Path, metavar="DIR", help="continue the run in DIR")
    p.add_argument(
        "--overwrite", action="store_true", help="replace the run already in --out (its files are deleted)"
    )
    p.add_argument("--list", action="store_true", help="list the presets and exit")
    p.add_argument(
        "--smoke", action="store_true", help="tiny batch and narrow networks: check a preset runs on CPU"
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print the resolved config and the networks, then exit"
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_intermixed_args(argv)
    from fastot.train.config import DEFAULT_PRESET, PRESET_DIR, list_presets, load_config

    if args.list:
        for name in list_presets():
            first = (PRESET_DIR / f"{name}.yaml").read_text().splitlines()[0].lstrip("# ")
            print(f"{name:28s} {first}")
        return 0
    from fastot.train.checkpoint import report_warnings
    from fastot.train.loop import RunFinished
    from fastot.train.runtime import Interrupted

    try:
        if args.resume is not None:
            if args.preset:
                raise ConfigError("preset", "--resume uses the run's own config.yaml; drop --preset")
            if args.out is not None or args.overwrite:
                flag = "--out" if args.out is not None else "--overwrite"
                raise ConfigError("resume", f"--resume continues the run in its own directory; drop {flag}")
            cfg_path = args.resume / "config.yaml"
            if not cfg_path.is_file():
                raise ConfigError("resume", f"{cfg_path} not found")
            cfg = load_config(None, args.overrides, path=cfg_path)
            run_dir = args.resume
        else:
            preset = args.preset or DEFAULT_PRESET
            cfg = load_config(preset, args.overrides, allow_missing=args.dry_run)
            run_dir = args.out or Path("runs") / f"{preset}-{time.strftime('%Y%m%d-%H%M%S')}"
        if args.smoke:
            from fastot.train.config import smoke

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
    except DivergenceError as e:
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

    from fastot.data import build_sampler
    from fastot.data.registry import image_shape
    from fastot.nn import build_map, build_potential
    from fastot.train.config import to_container
    from fastot.train.loop import implied_network_args

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


if __name__ == "__main__":
    sys.exit(main())

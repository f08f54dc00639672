"""Everything a first GPU must show, in one pass and one report:

    python -m fastot.gpucheck --out gpucheck.md           # on a machine with a CUDA GPU
    python -m fastot.gpucheck --cpu-dry-run --out dry.md  # the same stages on a CPU (CI)
    python -m fastot.gpucheck --wheels wheels/            # first install what is missing, offline

A machine without network gets the missing packages as wheels: ``pip download -d wheels omegaconf
pytest-benchmark hypothesis ...`` on a networked machine of the same Python, then ``--wheels wheels``.

Run from the repository root. The stages, each a subprocess under its own time limit and all under
one deadline (``--budget``, 9.5 minutes by default), so that one hanging stage cannot cost the rest;
the stages before the training steps end early enough to leave them two minutes:

1. the Python packages fastot, its tests and its benches need (with the exact pip line if any is missing);
2. the CUDA kernels built in place for this GPU's architecture (``setup.py build_ext --inplace``);
3. ``python -m fastot.info --require cuda --require triton``;
4. ``pytest -m "cuda or triton"`` (the tests that need a GPU, and the compiled Triton kernels);
5. every fused op at the CelebA-HQ 256x256 shapes for eager, torch.compile, cuda and triton;
6. the training steps of the image presets at their batch sizes, and the toy step with CUDA graphs.

A stage that fails or times out is reported and the next one runs. ``--cpu-dry-run`` skips the
build, requires the C++ kernels instead, and runs each bench case once untimed: it checks that the
command itself works. The exit status is 1 when a stage failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

# pip requirement lines (the distribution names of pyproject.toml) of what the stages import.
REQUIREMENTS = (
    "torch",
    "numpy",
    "packaging",
    "omegaconf>=2.3",
    "tqdm",
    "scipy",
    "matplotlib",
    "pillow",
    "pytest>=8",
    "pytest-benchmark",
    "hypothesis",
    "triton>=3.2",
)
OPTIONAL = {"ninja": "compiles the .cu files in parallel (without it the build is serial and slower)"}
TAIL_LINES = 40  # of a failed stage's output, in the report
STEP_RESERVE_S = 120.0  # the step bench's reserve: both image presets' eager and fused steps


@dataclasses.dataclass
class Stage:
    name: str
    cmd: list[str]
    limit_s: float
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    ok_codes: tuple[int, ...] = (0,)
    json_out: Path | None = None  # a pytest-benchmark JSON the stage writes
    reserve_s: float = 0.0  # time the stages before it must leave for it under the deadline
    status: str = "not run"
    seconds: float = 0.0
    output: str = ""


def missing_requirements() -> list[str]:
    """The requirement lines whose distribution is not installed."""
    out = []
    for req in REQUIREMENTS:
        name = req.split(">")[0].split("=")[0]
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out.append(req)
    return out


def pip_line(missing: list[str]) -> str:
    quoted = " ".join(f'"{r}"' if ">" in r else r for r in missing)
    return f"pip install {quoted}"


def gpu_facts() -> dict[str, str]:
    import torch

    facts = {"torch": torch.__version__, "CUDA (torch)": str(torch.version.cuda)}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        facts |= {"GPU": p.name, "compute capability": f"{p.major}.{p.minor}"}
        facts["GPU memory"] = f"{p.total_memory / 2**30:.0f} GiB"
    try:
        facts["triton"] = importlib.metadata.version("triton")
    except importlib.metadata.PackageNotFoundError:
        facts["triton"] = "absent"
    facts |= {"CPU cores": str(os.cpu_count()), "Python": platform.python_version()}
    return facts


def commit(root: Path) -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=9", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True).stdout
    return sha + ("-dirty" if dirty.strip() else "")


def op_names() -> list[str]:
    from fastot.ops._library import op_names as names

    return names()


def stages(root: Path, work: Path, dry: bool) -> list[Stage]:
    py = sys.executable
    pytest = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    # Untimed single runs on a CPU; on a GPU each op's smaller CelebA-HQ batch, at one thread.
    timing = ["--benchmark-disable"] if dry else ["--benchmark-only"]
    ops_filter = "(B16 or n4096) and float32-forward-t1 and not Z8" if dry else "B16 or n4096"
    out = []
    if not dry:
        import torch

        major, minor = torch.cuda.get_device_capability(0)
        arch = f"{major}.{minor}"
        env = {"FASTOT_CUDA": "1", "TORCH_CUDA_ARCH_LIST": arch, "MAX_JOBS": str(os.cpu_count())}
        out.append(Stage("build the CUDA kernels", [py, "setup.py", "build_ext", "--inplace"], 330, env))
    required = ["--require", "cpp"] if dry else ["--require", "cuda", "--require", "triton"]
    out.append(Stage("fastot.info " + " ".join(required), [py, "-m", "fastot.info", *required], 60))
    marker = "cuda" if dry else "cuda or triton"
    # On a CPU every cuda test is deselected (exit 5): the dry run checks the stage runs at all.
    tests = Stage(f"pytest -m '{marker}'", [*pytest, "-m", marker, "tests"], 180)
    tests.ok_codes = (0, 5) if dry else (0,)
    out.append(tests)
    for name in ["roofline", *op_names()]:
        js = work / f"bench-{name}.json"
        flt = [] if name == "roofline" else ["-k", ops_filter]
        cmd = [*pytest, f"bench/bench_{name}.py", *timing, *flt, f"--benchmark-json={js}"]
        out.append(Stage(f"bench {name}", cmd, 60 if dry else 75, json_out=js))
    js = work / "bench-train-step.json"
    step_filter = ["-k", "image_step and cifar10"] if dry else []
    cmd = [*pytest, "bench/bench_train_step.py", *timing, *step_filter, f"--benchmark-json={js}"]
    # The training steps are what a GPU owner trains: slow op benches must not crowd them out.
    out.append(Stage("bench training steps", cmd, 180 if dry else 200, json_out=js, reserve_s=STEP_RESERVE_S))
    return out


def run_stages(todo: list[Stage], root: Path, deadline: float) -> None:
    """Run every stage in order; each must end early enough to leave the later ones their reserve."""
    for i, stage in enumerate(todo):
        run_stage(stage, root, deadline - sum(s.reserve_s for s in todo[i + 1 :]))


def run_stage(stage: Stage, root: Path, deadline: float) -> None:
    left = deadline - time.monotonic()
    if left < 5:
        stage.status = "skipped (out of time)"
        return
    limit = min(stage.limit_s, left)
    start = time.monotonic()
    try:
        proc = subprocess.run(
            stage.cmd,
            cwd=root,
            env={**os.environ, **stage.env},
            capture_output=True,
            text=True,
            timeout=limit,
        )
        stage.output = proc.stdout + proc.stderr
        stage.status = "ok" if proc.returncode in stage.ok_codes else f"FAILED (exit {proc.returncode})"
    except subprocess.TimeoutExpired as e:
        stage.output = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else ""
        stage.status = f"TIMED OUT after {limit:.0f} s"
    stage.seconds = time.monotonic() - start
    print(f"fastot.gpucheck: {stage.name}: {stage.status} ({stage.seconds:.0f} s)", flush=True)


def bench_tables(done: list[Stage]) -> str:
    """One bench_report rendering of every bench stage's results together."""
    from fastot.bench_report import render

    merged: dict | None = None
    for s in done:
        if s.json_out is None or not s.json_out.exists():
            continue
        try:
            data = json.loads(s.json_out.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if merged is None:
            merged = data
        else:
            merged["benchmarks"] += data.get("benchmarks", [])
    if merged is None or not merged.get("benchmarks"):
        return "No benchmark results were written.\n"
    return render(merged)


def summary_line(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def report(facts: dict[str, str], missing: list[str], done: list[Stage], dry: bool, sha: str) -> str:
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    title = "CPU dry run of the GPU check" if dry else "GPU check"
    lines = [f"# fastot {title}", "", f"Commit {sha}, {when}.", ""]
    lines += [f"- {k}: {v}" for k, v in facts.items()]
    lines += ["", "## Python packages", ""]
    if missing:
        lines += [f"Missing: {', '.join(missing)}. Install with `{pip_line(missing)}`", ""]
        lines += ["(Offline: `pip download` them on a networked machine and `pip install --no-index "]
        lines += ["--find-links DIR ...` here.)", ""]
    else:
        lines += ["All present.", ""]
    for name, why in OPTIONAL.items():
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            lines += [f"Optional, absent: {name} ({why}): `pip install {name}`.", ""]
    lines += ["## Stages", "", "| stage | status | seconds | last line |", "|---|---|---|---|"]
    for s in done:
        last = summary_line(s.output).replace("|", "\\|")[:120]
        lines.append(f"| {s.name} | {s.status} | {s.seconds:.0f} | {last} |")
    for s in done:
        if s.status not in ("ok", "not run") and s.output:
            tail = "\n".join(s.output.strip().splitlines()[-TAIL_LINES:])
            lines += ["", f"### {s.name}: {s.status}", "", "```", tail, "```"]
    info = next((s for s in done if s.name.startswith("fastot.info")), None)
    if info is not None and info.output:
        lines += ["", "## fastot.info", "", "```", info.output.strip(), "```"]
    lines += ["", "## Benchmarks", "", bench_tables(done)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastot.gpucheck", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpucheck.md"), help="the markdown report")
    parser.add_argument("--cpu-dry-run", action="store_true", help="run the stages on a CPU (no build)")
    parser.add_argument("--budget", type=float, default=570.0, help="seconds for all stages together")
    parser.add_argument(
        "--wheels", type=Path, help="install missing packages from this folder of wheels first (no network)"
    )
    args = parser.parse_args(argv)
    if args.budget <= 0:
        parser.error(f"--budget: must be positive, got {args.budget}")
    root = Path.cwd()
    if not (root / "setup.py").exists() or not (root / "bench").is_dir():
        parser.error(f"run it from the fastot repository root (no setup.py and bench/ in {root})")
    missing = missing_requirements()
    if missing and args.wheels is not None:
        if not args.wheels.is_dir():
            parser.error(f"--wheels: {args.wheels} is not a folder")
        offline = ["--no-index", "--find-links", str(args.wheels)]
        pip = [sys.executable, "-m", "pip", "install", *offline, *missing]
        proc = subprocess.run(pip, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"fastot.gpucheck: {' '.join(pip)} failed:\n{proc.stderr[-1500:]}", file=sys.stderr)
        missing = missing_requirements()
    if missing:
        print(f"fastot.gpucheck: missing Python packages; install with: {pip_line(missing)}", file=sys.stderr)
    import torch

    if not args.cpu_dry_run and not torch.cuda.is_available():
        parser.error("no CUDA device is visible to torch; use --cpu-dry-run on a CPU machine")
    work = args.out.resolve().parent / (args.out.stem + "-results")
    work.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.budget
    done = stages(root, work, args.cpu_dry_run)
    run_stages(done, root, deadline)
    text = report(gpu_facts(), missing, done, args.cpu_dry_run, commit(root))
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(args.out)
    print(f"fastot.gpucheck: wrote {args.out}")
    return 0 if all(s.status == "ok" for s in done) and not missing else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Markdown tables of a benchmark run: ``python -m fastot.bench_report RESULTS.json [-o OUT.md]``.

``RESULTS.json`` is what ``pytest bench/ --benchmark-only --benchmark-json=RESULTS.json`` writes.
Every op row shows the median time of each provider (eager reference, ``torch.compile`` of it and
the fused backend), the fused speedups, the fused kernel's effective bandwidth as a fraction of
the triad bandwidth measured in the same run at the same thread count, and the peak memory of
one call (eager -> fused).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import Any

from fastot.ops._library import op_names

FUSED = ("cuda", "triton", "cpp")  # preference order when several fused backends ran


def _fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def _fmt_bytes(n: float | None) -> str:
    if n is None:
        return "–"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def _ratio(num: float | None, den: float | None) -> str:
    if num is None or den is None or den <= 0:
        return "–"
    return f"{num / den:.2f}x"


def _median(bench: dict[str, Any]) -> float | None:
    stats = bench.get("stats") or {}
    return stats.get("median")


def triad_bandwidth(benchmarks: Iterable[dict[str, Any]]) -> dict[int, float]:
    """Triad GB/s by thread count, from the run's roofline benchmarks."""
    out: dict[int, float] = {}
    for b in benchmarks:
        info = b.get("extra_info", {})
        median = _median(b)
        if info.get("kind") == "roofline" and info.get("kernel") == "triad" and median:
            out[int(info["threads"])] = info["bytes"] / median / 1e9
    return out


def _rows(benchmarks: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, dict[str, Any]]]:
    """Op benchmarks keyed by (op, shape, dtype, mode, threads), then by provider."""
    rows: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
    for b in benchmarks:
        info = b.get("extra_info", {})
        if info.get("kind") != "op":
            continue
        key = (info["op"], info["shape"], info["dtype"], info["mode"], int(info["threads"]))
        rows.setdefault(key, {})[info["provider"]] = b
    return rows


def _sort_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    op, shape, dtype, mode, threads = key
    rank = op_names().index(op) if op in op_names() else len(op_names())
    return (rank, op, shape, dtype != "float32", dtype, mode != "forward", threads)


def conditions(data: dict[str, Any]) -> str:
    """The line stating where and how the numbers were measured."""
    benchmarks = data.get("benchmarks", [])
    info = benchmarks[0].get("extra_info", {}) if benchmarks else {}
    machine = data.get("machine_info", {})
    cpu = info.get("device_name") or (machine.get("cpu") or {}).get("brand_raw") or "unknown CPU"
    sha = info.get("git_sha") or (data.get("commit_info") or {}).get("id", "unknown")[:9]
    parts = [
        f"**Conditions:** {cpu}",
        f"torch {info.get('torch', '?')}" + (f", triton {info['triton']}" if info.get("triton") else ""),
        f"fastot @ {sha}",
        str(data.get("datetime", "unknown date"))[:19].replace("T", " ") + " UTC",
        f"`{info.get('command', 'pytest bench/ --benchmark-only')}`",
    ]
    line = "; ".join(parts) + "."
    if info.get("allocator"):
        line += f" Allocator: {info['allocator']}."
    line += (
        " Times are medians; 1-thread rows are the reproducible figures, 2-thread rows sit beside"
        " them. Peak memory: one call's rise above the resident memory before it."
    )
    return line


def op_table(data: dict[str, Any]) -> str:
    benchmarks = data.get("benchmarks", [])
    triad = triad_bandwidth(benchmarks)
    lines = [
        "| op | shape | dtype | mode | threads | eager | compile | fused | fused speedup vs eager"
        " | fused speedup vs compile | % of roofline | peak memory (eager → fused) |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    rows = _rows(benchmarks)
    for key in sorted(rows, key=_sort_key):
        by_provider = rows[key]
        op, shape, dtype, mode, threads = key
        eager, comp = by_provider.get("eager"), by_provider.get("compile")
        fused_name = next((p for p in FUSED if p in by_provider), None)
        fused = by_provider.get(fused_name) if fused_name else None
        t_eager = _median(eager) if eager else None
        t_comp = _median(comp) if comp else None
        t_fused = _median(fused) if fused else None
        roof = "–"
        if fused is not None and t_fused and threads in triad:
            nbytes = fused["extra_info"].get("bytes")
            if nbytes and nbytes >= (1 << 20):  # smaller: op overhead, not bandwidth, bounds it
                roof = f"{100 * nbytes / t_fused / 1e9 / triad[threads]:.0f}%"
        mem_e = eager["extra_info"].get("peak_memory_bytes") if eager else None
        mem_f = fused["extra_info"].get("peak_memory_bytes") if fused else None
        fused_cell = f"{_fmt_time(t_fused)} ({fused_name})" if fused_name else "–"
        lines.append(
            f"| {op} | {shape} | {dtype} | {mode} | {threads} | {_fmt_time(t_eager)} | {_fmt_time(t_comp)}"
            f" | {fused_cell} | {_ratio(t_eager, t_fused)} | {_ratio(t_comp, t_fused)} | {roof}"
            f" | {_fmt_bytes(mem_e)} → {_fmt_bytes(mem_f)} |"
        )
    return "\n".join(lines)


def roofline_table(data: dict[str, Any]) -> str:
    lines = ["| kernel | threads | median | GB/s |", "| --- | ---: | ---: | ---: |"]
    found = False
    for b in sorted(
        data.get("benchmarks", []),
        key=lambda b: (b.get("extra_info", {}).get("kernel", ""), b.get("extra_info", {}).get("threads", 0)),
    ):
        info, median = b.get("extra_info", {}), _median(b)
        if info.get("kind") != "roofline" or not median:
            continue
        found = True
        lines.append(
            f"| {info['kernel']} (256 MiB) | {info['threads']} | {_fmt_time(median)}"
            f" | {info['bytes'] / median / 1e9:.1f} |"
        )
    return "\n".join(lines) if found else ""


def train_table(data: dict[str, Any]) -> str:
    """Training steps: eager vs fused ops per step kind; S-JKO's phase 1 vs phase 50 iteration."""
    steps: dict[tuple[str, str, int], dict[str, float]] = {}
    for b in data.get("benchmarks", []):
        info, median = b.get("extra_info", {}), _median(b)
        if info.get("kind") == "train" and median:
            key = (str(info.get("op", "")), str(info.get("shape", "")), int(info["threads"]))
            steps.setdefault(key, {})[info["provider"]] = median
    if not steps:
        return ""
    lines = ["| step | threads | baseline | compared | ratio |", "| --- | ---: | ---: | ---: | ---: |"]
    for (op, shape, threads), by_provider in sorted(steps.items()):
        if "phase1" in by_provider or "phase50" in by_provider:  # the O(K) claim: must not grow with k
            t1, t50 = by_provider.get("phase1"), by_provider.get("phase50")
            lines.append(
                f"| S-JKO iteration, {shape} | {threads} | phase 1: {_fmt_time(t1)} | "
                f"phase 50: {_fmt_time(t50)} | {_ratio(t1, t50)} |"
            )
            continue
        fused_name = next((p for p in FUSED if p in by_provider), None)
        t_fused = by_provider.get(fused_name) if fused_name else None
        t_eager = by_provider.get("eager")
        label = op.replace("_", " ").replace("uotm step", "UOTM step") or "UOTM step"
        lines.append(
            f"| {label}, {shape} | {threads} | eager ops: {_fmt_time(t_eager)} | "
            f"{fused_name} ops: {_fmt_time(t_fused)} | {_ratio(t_eager, t_fused)} |"
        )
    return "\n".join(lines)


# The suite's speed targets: (what, baseline provider, minimum of baseline time / fused time).
OP_TARGETS = (
    (("quadratic_cost", "B=16 3x256x256", "float32", "forward+backward", 1), "compile", 1.3),
    (("r1_penalty", "B=16 3x256x256", "float32", "forward+backward", 1), "compile", 1.2),
)
OVERHEAD_TARGET = 1.5  # public call / bare torch.ops call, at most
STEP_TARGET = 1.0  # eager-ops step / fused-ops step, at least


def _overheads(benchmarks: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, float]]:
    out: dict[tuple[str, str], dict[str, float]] = {}
    for b in benchmarks:
        info, median = b.get("extra_info", {}), _median(b)
        if info.get("kind") == "overhead" and median:
            out.setdefault((info["op"], info["provider"]), {})[info["call"]] = median
    return out


def targets_table(data: dict[str, Any]) -> str:
    """Each speed target of the suite beside what this run measured, and whether it is met."""
    benchmarks = data.get("benchmarks", [])
    lines = ["| target | measured | met |", "| --- | ---: | --- |"]

    def row(what: str, value: float | None, ok: bool | None) -> None:
        cell = "–" if value is None else f"{value:.2f}x"
        lines.append(f"| {what} | {cell} | {'–' if ok is None else ('yes' if ok else 'no')} |")

    ops = _rows(benchmarks)
    for key, base, minimum in OP_TARGETS:
        by_provider = ops.get(key, {})
        fused_name = next((p for p in FUSED if p in by_provider), None)
        t_base = _median(by_provider[base]) if base in by_provider else None
        t_fused = _median(by_provider[fused_name]) if fused_name else None
        value = t_base / t_fused if t_base and t_fused else None
        op, shape, dtype, mode, threads = key
        what = f"{op} {mode} {shape} {dtype}, {threads} thread: fused ≥ {minimum}x {base}"
        row(what, value, None if value is None else value >= minimum)
    for (op, provider), calls in sorted(_overheads(benchmarks).items()):
        if "public" in calls and "bare" in calls:
            value = calls["public"] / calls["bare"]
            row(
                f"{op} ({provider}) per-call overhead: public ≤ {OVERHEAD_TARGET}x bare torch.ops",
                value,
                value <= OVERHEAD_TARGET,
            )
    interleaved = [
        b["extra_info"] for b in benchmarks if b.get("extra_info", {}).get("kind") == "train_interleaved"
    ]
    for info in sorted(interleaved, key=lambda i: (i["threads"], i["provider"])):
        value = info["eager_s"] / info["fused_s"]
        what = f"UOTM toy step ({info['provider']}), {info['threads']} threads, interleaved: fused ≥ eager"
        row(what, value, value >= STEP_TARGET)
    steps: dict[tuple[str, int], dict[str, float]] = {}
    for b in benchmarks:
        info, median = b.get("extra_info", {}), _median(b)
        if info.get("kind") == "train" and median and str(info.get("op", "")).startswith("uotm_step"):
            steps.setdefault((str(info["op"]), int(info["threads"])), {})[info["provider"]] = median
    if interleaved:  # the steps timed one after the other are then shown, not read as targets
        steps.clear()
    for (op, threads), by_provider in sorted(steps.items()):
        fused_name = next((p for p in FUSED if p in by_provider), None)
        if fused_name and "eager" in by_provider:
            value = by_provider["eager"] / by_provider[fused_name]
            label = op.replace("uotm_step", "UOTM toy step")
            row(f"{label}, {threads} threads: fused ≥ eager", value, value >= STEP_TARGET)
    return "\n".join(lines) if len(lines) > 2 else ""


def floor_table(data: dict[str, Any]) -> str:
    """The trainer's iterations beside their FLOP floor (bench_step_floor)."""
    rows = [b for b in data.get("benchmarks", []) if b.get("extra_info", {}).get("kind") == "step_floor"]
    lines = [
        "| iteration | variant | threads | time | GFLOP | floor | time / floor |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for b in rows:
        info = b["extra_info"]
        if "batched_s" in info:
            t, variant = (
                info["batched_s"],
                f"batched calls ({_ratio(info['separate_s'], info['batched_s'])} separate)",
            )
        else:
            t, variant = _median(b), info["provider"]
        floor = info.get("floor_s") or None
        flops = info.get("flops") or None
        name = info["op"].removeprefix("trainer_iteration ")
        lines.append(
            f"| {name}, {info['shape']} | {variant} | {info['threads']} | "
            f"{_fmt_time(t)} | {'–' if not flops else f'{flops / 1e9:.1f}'} | {_fmt_time(floor)} | "
            f"{_ratio(t, floor) if floor else '–'} |"
        )
    return "\n".join(lines) if rows else ""


def render(data: dict[str, Any]) -> str:
    """The markdown of a whole run: conditions, targets, op table, roofline and training step."""
    parts = [conditions(data), ""]
    goals = targets_table(data)
    if goals:
        parts += ["Speed targets (ratios within this run):", "", goals, ""]
    parts.append(op_table(data))
    roof = roofline_table(data)
    if roof:
        parts += ["", "Streaming bandwidth of this machine in the same run (the roofline):", "", roof]
    train = train_table(data)
    if train:
        parts += [
            "",
            "Training steps (ratio = baseline / compared; above 1 means the compared side is faster):",
            "",
            train,
        ]
    floors = floor_table(data)
    if floors:
        parts += [
            "",
            "Trainer iterations against their FLOP floor (the machine's conv and matmul rates):",
            "",
            floors,
        ]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fastot.bench_report", description=__doc__.splitlines()[0]
    )
    parser.add_argument("results", help="JSON written by pytest --benchmark-json")
    parser.add_argument("-o", "--output", help="write the markdown here instead of stdout")
    args = parser.parse_args(argv)
    with open(args.results) as f:
        data = json.load(f)
    text = render(data)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

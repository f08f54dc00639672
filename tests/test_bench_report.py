"""fastot.bench_report on a small hand-made pytest-benchmark JSON."""

from __future__ import annotations

import json
from pathlib import Path

from fastot import bench_report


def _bench(median: float, **info: object) -> dict[str, object]:
    return {"stats": {"median": median}, "extra_info": info}


def _op(provider: str, median: float, threads: int = 1, peak: int | None = 100 << 20) -> dict[str, object]:
    return _bench(
        median,
        kind="op",
        op="quadratic_cost",
        provider=provider,
        shape="B=64 3x256x256",
        dtype="float32",
        mode="forward+backward",
        threads=threads,
        bytes=10**9,
        peak_memory_bytes=peak,
        device_name="Test CPU",
        torch="2.13.0",
        git_sha="abc1234",
        command="pytest bench/ --benchmark-only",
        allocator="warm",
    )


RESULTS = {
    "datetime": "2026-01-02T03:04:05.000000",
    "benchmarks": [
        _op("eager", 0.040),
        _op("compile", 0.020),
        _op("cpp", 0.010, peak=50 << 20),
        _op("eager", 0.030, threads=2),
        _bench(0.1, kind="roofline", kernel="triad", threads=1, bytes=20 * 10**9 // 2),
        _bench(0.01, kind="roofline", kernel="copy", threads=1, bytes=10**9),
        _bench(0.002, kind="train", op="uotm_step", provider="eager", threads=1, shape="toy"),
        _bench(0.001, kind="train", op="uotm_step", provider="cpp", threads=1, shape="toy"),
    ],
}


def test_render_tables() -> None:
    text = bench_report.render(RESULTS)
    lines = text.splitlines()
    assert lines[0].startswith(
        "**Conditions:** Test CPU; torch 2.13.0; fastot @ abc1234; 2026-01-02 03:04:05 UTC"
    )
    assert "`pytest bench/ --benchmark-only`" in lines[0]
    row = next(line for line in lines if line.startswith("| quadratic_cost") and "| 1 |" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    # eager, compile, fused, speedups, % of the 100 GB/s triad (fused moves 1 GB in 10 ms), memory
    assert cells[5:] == [
        "40.00 ms",
        "20.00 ms",
        "10.00 ms (cpp)",
        "4.00x",
        "2.00x",
        "100%",
        "100.0 MiB → 50.0 MiB",
    ]
    row2 = next(line for line in lines if line.startswith("| quadratic_cost") and "| 2 |" in line)
    assert "30.00 ms" in row2 and row2.count("–") >= 4  # no fused / compile / roofline at 2 threads
    assert "| triad (256 MiB) | 1 | 100.00 ms | 100.0 |" in text
    assert "| UOTM step, toy | 1 | eager ops: 2.00 ms | cpp ops: 1.00 ms | 2.00x |" in text


def test_main_writes_markdown(tmp_path: Path) -> None:
    src, out = tmp_path / "r.json", tmp_path / "r.md"
    src.write_text(json.dumps(RESULTS))
    assert bench_report.main([str(src), "-o", str(out)]) == 0
    assert out.read_text() == bench_report.render(RESULTS)


def _target_op(op: str, provider: str, median: float) -> dict[str, object]:
    return _bench(
        median,
        kind="op",
        op=op,
        provider=provider,
        shape="B=16 3x256x256",
        dtype="float32",
        mode="forward+backward",
        threads=1,
    )


def test_targets_table_compares_each_target_with_the_run() -> None:
    results = {
        "benchmarks": [
            _target_op("quadratic_cost", "compile", 0.0028),
            _target_op("quadratic_cost", "cpp", 0.0020),  # 1.40x compile: met
            _target_op("r1_penalty", "compile", 0.0012),
            _target_op("r1_penalty", "cpp", 0.0011),  # 1.09x: not met
            _bench(3e-6, kind="overhead", op="psi_star", provider="cpp", call="public", threads=1),
            _bench(2e-6, kind="overhead", op="psi_star", provider="cpp", call="bare", threads=1),
            _bench(0.002, kind="train", op="uotm_step", provider="eager", threads=2, shape="toy"),
            _bench(0.0025, kind="train", op="uotm_step", provider="cpp", threads=2, shape="toy"),
        ]
    }
    rows = {
        line.split(" | ")[0].lstrip("| "): line for line in bench_report.targets_table(results).splitlines()
    }
    qc = next(v for k, v in rows.items() if k.startswith("quadratic_cost"))
    assert "≥ 1.3x compile" in qc and "| 1.40x | yes |" in qc
    assert "| 1.09x | no |" in next(v for k, v in rows.items() if k.startswith("r1_penalty"))
    assert "| 1.50x | yes |" in next(v for k, v in rows.items() if k.startswith("psi_star (cpp)"))
    step = next(v for k, v in rows.items() if k.startswith("UOTM toy step, 2 threads"))
    assert "| 0.80x | no |" in step
    assert "Speed targets" in bench_report.render(results)


def test_toy_step_target_reads_the_interleaved_case_when_the_run_has_it() -> None:
    sequential = [
        _bench(0.002, kind="train", op="uotm_step", provider="eager", threads=1, shape="toy"),
        _bench(0.0025, kind="train", op="uotm_step", provider="cpp", threads=1, shape="toy"),
    ]
    interleaved = _bench(
        0.004,
        kind="train_interleaved",
        op="uotm_step",
        provider="cpp",
        threads=1,
        eager_s=0.0021,
        fused_s=0.002,
    )
    table = bench_report.targets_table({"benchmarks": [*sequential, interleaved]})
    step_rows = [line for line in table.splitlines() if "UOTM toy step" in line]
    assert len(step_rows) == 1 and "interleaved" in step_rows[0] and "| 1.05x | yes |" in step_rows[0]
    # Without it, the sequential pair is the target (0.80x: not met).
    alone = bench_report.targets_table({"benchmarks": sequential})
    assert "| 0.80x | no |" in next(line for line in alone.splitlines() if "UOTM toy step" in line)


def test_the_floor_table_shows_time_over_floor_and_the_batched_ratio():
    from fastot.bench_report import floor_table

    def bench(info, median):
        return {"extra_info": {"kind": "step_floor", **info}, "stats": {"median": median}}

    data = {
        "benchmarks": [
            bench(
                {
                    "op": "trainer_iteration digits-uotm",
                    "provider": "default",
                    "threads": 1,
                    "shape": "B=64",
                    "flops": 42e9,
                    "floor_s": 0.1,
                },
                0.3,
            ),
            bench(
                {
                    "op": "trainer_iteration uotm-outlier-1d",
                    "provider": "batched",
                    "threads": 1,
                    "shape": "B=256",
                    "flops": 3.4e9,
                    "floor_s": 0.02,
                    "separate_s": 0.05,
                    "batched_s": 0.04,
                },
                0.04,
            ),
        ]
    }
    table = floor_table(data)
    assert "| digits-uotm, B=64 | default | 1 | 300.00 ms | 42.0 | 100.00 ms | 3.00x |" in table
    assert "batched calls (1.25x separate)" in table and "| 2.00x |" in table
    assert floor_table({"benchmarks": []}) == ""

"""``train.compile=step``: the potential and map losses compile whole (no graph break) and train
like the eager ones; R1 and the gradient penalty stay outside, on the uncompiled potential."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch._dynamo.testing

from fastot.config import load_config
from fastot.train.errors import ConfigError
from fastot.train.run import Run

FAST = ["train.progress=false", "train.threads=1", "train.batch_size=16", "train.ema.enabled=false"]

# (preset, overrides, iterations before the losses are traced)
CASES = {
    "uotm": ("uotm-outlier-1d", [], 0),
    "uotm-r1": ("uotm-outlier-1d", ["algorithm.regularizer=r1", "algorithm.reg_weight=0.2"], 0),
    "otm": ("otm-outlier-1d", [], 0),
    "wgan-gp": ("unified-wgan-gp-8g", [], 0),
    "wgan-clip": ("unified-wgan-8g", [], 0),
    "sjko-phase0": ("sjko-25gaussians", [], 0),
    "sjko-phase2": (
        "sjko-25gaussians",
        ["algorithm.init_iterations=1", "algorithm.phase_iterations=1", "algorithm.real_noise=0.1"],
        2,
    ),
    "sjko-jsd": ("sjko-jsd-25gaussians", ["algorithm.init_iterations=1"], 1),
    "not": ("not-moons-uniform", ["algorithm.k_t=1"], 0),
    "knot": ("knot-moons-uniform", ["algorithm.k_t=1"], 0),
}


def _run(preset: str, overrides: list[str], tmp_path: Any, compile: str = "false") -> Run:
    return Run(
        load_config(preset, [*FAST, "train.iterations=8", f"train.compile={compile}", *overrides]), tmp_path
    )


def _terms_inputs(run: Run, which: str) -> tuple[Any, ...]:
    """The arguments the trainer hands to ``algo.<which>_terms`` in the next update."""
    seen: dict[str, tuple[Any, ...]] = {}
    terms = getattr(run.algo, f"{which}_terms")

    def spy(*args: Any) -> Any:
        seen["args"] = args
        return terms(*args)

    run.potential.requires_grad_(which == "potential")  # as in Run.iteration
    getattr(run.algo, f"{which}_loss")(run.ctx, spy)
    return seen["args"]


@pytest.mark.parametrize("which", ["potential", "map"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_losses_trace_as_one_graph(case, which, tmp_path):
    preset, overrides, warm = CASES[case]
    run = _run(preset, overrides, tmp_path)
    for it in range(warm):
        run.iteration(it)
    run.algo.begin_iteration(warm, run.total, run.ctx)
    args = _terms_inputs(run, which)
    explained = torch._dynamo.explain(getattr(run.algo, f"{which}_terms"))(*args)
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1


def test_sjko_map_loss_compiles_twice_over_all_phases(tmp_path):
    # Phase 0 compares T(x, z) with x, later phases with T_old(x, z'): two graphs, whatever the number
    # of phases (a graph per phase would exhaust torch.compile's recompile limit of 8).
    overrides = ["algorithm.init_iterations=1", "algorithm.phase_iterations=1", "algorithm.num_phases=11"]
    run = _run("sjko-25gaussians", [*overrides, "algorithm.init_h=2.0"], tmp_path)
    counters = {k: torch._dynamo.testing.CompileCounter() for k in ("potential", "map")}
    run.potential_terms, run.map_terms = (
        torch.compile(getattr(run.algo, f"{k}_terms"), backend=counters[k], fullgraph=True, dynamic=False)
        for k in ("potential", "map")
    )
    torch._dynamo.reset()
    for it in range(11):
        run.iteration(it)
    assert run.algo.phase == 10
    assert counters["potential"].frame_count == 1 and counters["map"].frame_count == 2


def _weights(run: Run) -> dict[str, torch.Tensor]:
    return {f"map.{k}": v for k, v in run.map.state_dict().items()} | {
        f"potential.{k}": v for k, v in run.potential.state_dict().items()
    }


@pytest.mark.parametrize(
    ("preset", "overrides"),
    [
        ("uotm-outlier-1d", ["algorithm.regularizer=r1", "algorithm.reg_weight=0.2"]),  # R1 outside the graph
        ("not-moons-uniform", ["algorithm.k_t=2"]),  # a weak cost
    ],
)
def test_compiled_step_trains_like_eager(preset, overrides, tmp_path):
    # The gradients of each iteration's last updates are compared: Adam turns a rounding-level
    # difference of a near-zero gradient into a step of +-lr, so weights alone would flag rounding.
    torch._dynamo.reset()
    grads: dict[str, list[dict[str, torch.Tensor]]] = {}
    for mode in ("false", "step"):
        run = _run(preset, overrides, tmp_path / mode, compile=mode)
        assert (run.map_terms is None) == (mode == "false")
        start = {k: v.clone() for k, v in _weights(run).items()}
        grads[mode] = []
        for it in range(2):
            run.iteration(it)
            named = [*run.map.named_parameters(), *run.potential.named_parameters()]
            grads[mode].append({k: p.grad.clone() for k, p in named if p.grad is not None})
        assert run.watch.first_divergence() is None
        assert all(not torch.equal(v, start[k]) for k, v in _weights(run).items() if "weight" in k)
    for eager, compiled in zip(grads["false"], grads["step"], strict=True):
        assert eager.keys() == compiled.keys() and eager
        for k, g in eager.items():
            torch.testing.assert_close(compiled[k], g, rtol=1e-3, atol=1e-6, msg=k)


def test_per_iteration_schedules_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.compile: .*algorithm\.alpha_schedule"):
        _run("uotm-sd-8g", [], tmp_path, compile="step")
    ramp = ["algorithm.gamma_start=0.5", "algorithm.gamma_iterations=10"]
    with pytest.raises(ConfigError, match=r"train\.compile: .*algorithm\.gamma_start"):
        _run("not-moons-uniform", ramp, tmp_path, compile="step")


def test_compile_takes_true_false_or_step():
    for value, expected in (("true", True), ("false", False), ("step", "step")):
        assert load_config("uotm-outlier-1d", [f"train.compile={value}"]).train.compile == expected
    with pytest.raises(ConfigError, match=r"train\.compile: must be true, false or step"):
        load_config("uotm-outlier-1d", ["train.compile=loss"])

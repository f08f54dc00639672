"""A training update never waits for the device; the NaN guard still stops a diverged run in time.

On a GPU every read of a device value on the host (``.item()``, ``bool(t)``, ``float(t)``, ...)
waits for all queued kernels. CPU runs cannot time that, so these tests count the reads instead:
inside ``Run.iteration`` there must be none, and the training loop may only read at the steps where
it writes something (log rows, checkpoints).
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from fastot.algorithms import StepContext
from fastot.config import load_config
from fastot.data.toy import Gaussian
from fastot.rundir import list_checkpoints
from fastot.train import checkpoint as ckpt
from fastot.train import loop
from fastot.train.__main__ import main
from fastot.train.errors import DivergenceError
from fastot.train.run import LossWatch, Run, host_values

FAST = ["train.progress=false", "train.threads=1", "train.batch_size=16", "eval.plots=false"]

# Tensor methods that hand a tensor's value to Python: each one is a device sync on a GPU.
READ_METHODS = ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__", "__index__")
# Ops whose result (or output shape) the host needs before it can go on: syncs even without Python.
SYNC_OPS = ("_local_scalar_dense", "nonzero", "masked_select", "equal", "is_nonzero", "unique")


class HostReads(TorchDispatchMode):
    """Counts host reads of tensor values while active, except of the tensors ``host_side()``
    lists (the optimisers' step counters, which torch keeps on the CPU so that reading them is free)."""

    def __init__(self, host_side: Callable[[], list[torch.Tensor]] = list) -> None:
        super().__init__()
        self.host_side = host_side
        self.calls: list[str] = []

    def _exempt(self, t: object) -> bool:
        return any(t is h for h in self.host_side())

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in SYNC_OPS and not (args and self._exempt(args[0])):
            self.calls.append(f"aten.{name}")
        return func(*args, **(kwargs or {}))

    @contextlib.contextmanager
    def patched(self, monkeypatch: pytest.MonkeyPatch, ops: bool = True) -> Iterator[HostReads]:
        """Counts the Python reads and, with ``ops``, the syncing ops. A compiled graph cannot run
        under a dispatch mode, and cannot hold a Python read either (fullgraph=True)."""
        with monkeypatch.context() as m:
            for method in READ_METHODS:
                original = getattr(torch.Tensor, method)

                def counting(t, *a, _original=original, _method=method, **k):
                    if not self._exempt(t):
                        self.calls.append(f"Tensor.{_method}")
                    return _original(t, *a, **k)

                m.setattr(torch.Tensor, method, counting)
            with self if ops else contextlib.nullcontext():
                yield self


def optimizer_steps(run: Run) -> list[torch.Tensor]:
    return [s["step"] for opt in (run.opt_map, run.opt_pot) for s in opt.state.values() if "step" in s]


CASES = {
    "uotm-r1": (
        "uotm-outlier-1d",
        ["algorithm.regularizer=r1", "algorithm.reg_weight=0.2", "algorithm.k_v=2"],
    ),
    "otm": ("otm-outlier-1d", ["algorithm.k_v=2"]),
    # Past its first phase, so T_old and the real-data noise are in the step.
    "sjko": (
        "sjko-25gaussians",
        ["algorithm.init_iterations=1", "algorithm.phase_iterations=1", "algorithm.real_noise=0.1"],
    ),
    "not": ("not-moons-uniform", ["algorithm.k_t=2"]),
    "knot": (
        "knot-moons-uniform",
        ["algorithm.k_t=2", "algorithm.gamma_start=0.5", "algorithm.gamma_iterations=4"],
    ),
    "wgan-gp": ("unified-wgan-gp-8g", ["algorithm.k_v=2"]),
    "wgan-clip": ("unified-wgan-8g", ["algorithm.k_v=2"]),
    "uotm-sd-cosine": ("uotm-sd-8g", ["algorithm.alpha_schedule=cosine"]),
    # Every way a run trains: the compiled losses, the compiled networks, bf16 autocast.
    "uotm-compile-step": ("uotm-outlier-1d", ["train.compile=step", "algorithm.k_v=2"]),
    "uotm-r1-compile-networks": (
        "uotm-outlier-1d",
        ["train.compile=true", "algorithm.regularizer=r1", "algorithm.reg_weight=0.2"],
    ),
    "uotm-r1-bf16": (
        "uotm-outlier-1d",
        ["train.amp=bf16", "algorithm.regularizer=r1", "algorithm.reg_weight=0.2"],
    ),
    "ema-clip-cosine": (
        "uotm-outlier-1d",
        ["train.ema.enabled=true", "train.grad_clip=1.0", "optim.schedule=cosine"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_training_iteration_reads_nothing_back_from_the_device(case, tmp_path, monkeypatch):
    preset, overrides = CASES[case]
    run = Run(load_config(preset, [*FAST, "train.iterations=8", *overrides]), tmp_path)
    for it in range(2):  # the optimisers create their state; S-JKO enters phase 1
        run.iteration(it)
    reads = HostReads(lambda: optimizer_steps(run))
    ops = not any(o.startswith("train.compile=") for o in overrides)
    with reads.patched(monkeypatch, ops=ops):
        float(torch.ones(()))  # the counter sees a read ...
        assert reads.calls == ["Tensor.__float__", "aten._local_scalar_dense"][: 1 + ops]
        reads.calls.clear()
        for it in range(2, 4):
            logs = run.iteration(it)
    assert reads.calls == [], reads.calls  # ... and the iterations made none
    assert logs and all(isinstance(v, torch.Tensor) and not v.requires_grad for v in logs.values())
    assert run.watch.first_divergence() is None  # the losses were finite after all


def test_the_loop_reads_back_only_where_it_writes(tmp_path, monkeypatch):
    # log_every=4, ckpt_every=6, 10 steps: reads are allowed after steps 4, 6, 8 and 10 only.
    cfg = load_config(
        "uotm-outlier-1d",
        [*FAST, "train.iterations=10", "train.log_every=4", "train.ckpt_every=6", "eval.n_samples=64"],
    )
    runs: list[Run] = []
    reads = HostReads(lambda: optimizer_steps(runs[0]) if runs else [])
    after_step: dict[int, int] = {}  # reads between the end of step k and the next iteration
    iteration = Run.iteration

    def counted_iteration(run: Run, it: int) -> dict[str, torch.Tensor]:
        if it == 0:
            runs.append(run)
        else:
            after_step[it] = len(reads.calls)
        reads.calls.clear()
        logs = iteration(run, it)
        assert reads.calls == [], (it, reads.calls)
        return logs

    monkeypatch.setattr(Run, "iteration", counted_iteration)
    with reads.patched(monkeypatch):
        loop.train(cfg, tmp_path / "run")
    synced = sorted(step for step, n in after_step.items() if n)
    assert synced == [4, 6, 8], after_step  # step 10 is the last: its reads come after the loop
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [4, 8, 10]
    assert all(math.isfinite(r["loss_v"]) and math.isfinite(r["loss_T"]) for r in rows)


def test_log_rows_average_the_same_values_as_before(tmp_path):
    # The window holds device tensors; a resumed run's window holds the checkpoint's floats.
    window: dict[str, list[torch.Tensor | float]] = {
        "loss_v": [0.5, torch.tensor(1.25)],
        "cost": [torch.tensor(0.1, dtype=torch.float32), torch.tensor(2.0)],
    }
    assert host_values(window) == {"loss_v": [0.5, 1.25], "cost": [float(torch.tensor(0.1)), 2.0]}
    assert host_values({}) == {}


# ------------------------------------------------------------------------------- the NaN guard


def test_loss_watch_reports_the_first_bad_loss_once_read():
    watch = LossWatch()
    watch.add(1, "potential loss", torch.tensor(0.5))
    watch.add(2, "map loss", torch.tensor(math.inf))
    watch.add(3, "potential loss", torch.tensor(math.nan))
    assert watch.found is None  # nothing is read before the check
    assert watch.first_divergence() == (2, "map loss", math.inf)
    watch.add(4, "potential loss", torch.tensor(1.0))
    assert watch.first_divergence() == (2, "map loss", math.inf)  # the first one stays the verdict


def test_loss_watch_tolerates_a_few_skipped_fp16_steps_in_a_row():
    watch = LossWatch(tolerated=2)
    nan, one = torch.tensor(math.nan), torch.tensor(1.0)
    for step, loss in enumerate([nan, nan, one, nan, nan], start=1):  # never more than 2 in a row
        watch.add(step, "potential loss", loss)
        watch.add(step, "map loss", one)
    assert watch.first_divergence() is None
    watch.add(6, "map loss", nan)  # another kind: its own count
    assert watch.first_divergence() is None
    watch.add(6, "potential loss", nan)  # the third in a row across a check
    assert watch.first_divergence() == (6, "potential loss", pytest.approx(math.nan, nan_ok=True))


def test_loss_watch_stays_bounded_without_checks(monkeypatch):
    monkeypatch.setattr(LossWatch, "STACK", 4)
    monkeypatch.setattr(LossWatch, "SCAN", 10)
    watch = LossWatch()
    for step in range(1, 24):
        watch.add(step, "map loss", torch.tensor(math.nan if step == 7 else 1.0))
        assert len(watch._recent) < 4 and len(watch._meta) < 10
    assert watch.found == (7, "map loss", pytest.approx(math.nan, nan_ok=True))  # scanned on the way


def test_divergence_found_at_a_later_checkpoint_names_its_step(nan_potential, tmp_path, capsys):
    # Step 4 diverges; nothing is read back until step 6, a checkpoint step. The error names step 4,
    # the checkpoint of step 3 stays the latest, and step 6's (of NaN weights) is never written.
    out = tmp_path / "run"
    assert main(nan_potential(out, "train.log_every=10", "train.ckpt_every=3")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("fastot.train: error: training diverged at step 4 (potential loss = nan)"), err
    assert err[-1].endswith("ckpt_00000003.pt"), err[-1]
    assert [p.name for _, p in list_checkpoints(out)] == ["ckpt_00000003.pt"]
    state = torch.load(ckpt.latest_checkpoint(out), weights_only=True)
    assert state["step"] == 3
    assert all(torch.isfinite(t).all() for net in ("map", "potential") for t in state[net].values())
    assert (out / "metrics.jsonl").read_text() == ""  # no row of NaN losses either


def test_no_checkpoint_is_written_from_non_finite_weights(nan_potential, tmp_path):
    cfg = load_config(
        None,
        ["networks.potential={name: test_nan_after, calls: 2}", "train.iterations=4", *FAST],
    )
    run = Run(cfg, tmp_path)
    run.iteration(0)  # v(T(x, z)) of the first update is NaN: the weights follow
    run.step = 1
    assert not all(torch.isfinite(p).all() for p in run.potential.parameters())
    with pytest.raises(DivergenceError, match=r"diverged at step 1 \(potential loss = nan\); no checkpoint"):
        run.save_checkpoint()
    assert ckpt.latest_checkpoint(tmp_path) is None


# ------------------------------------------------------------------------------- batches to the device


def test_batches_reach_the_device_with_non_blocking_copies(monkeypatch):
    # A blocking host-to-device copy waits for the stream; the meta device stands in for a GPU.
    copies: list[dict[str, Any]] = []
    to = torch.Tensor.to

    def spy(t, *args, **kwargs):
        copies.append(kwargs)
        return to(t, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", spy)
    meta = torch.device("meta")
    ctx = StepContext(None, None, Gaussian(2), Gaussian(2), 8, torch.Generator().manual_seed(0), meta)  # type: ignore[arg-type]
    net = torch.nn.Linear(1, 1)
    net.z_dim = 3  # type: ignore[assignment]
    drawn = [ctx.source_batch(), ctx.target_batch(), ctx.latent(8, net), ctx.rand(8, 1)]
    drawn.append(ctx.randn_like(drawn[0]))
    assert all(t is not None and t.device == meta for t in drawn)
    assert len(copies) == 5 and all(k.get("non_blocking") is True for k in copies), copies


@pytest.mark.parametrize("fused", [True, False], ids=["fused-adam", "per-tensor-adam"])
def test_under_fp16_only_the_scalers_overflow_check_reads_back(fused, tmp_path, monkeypatch):
    # torch's GradScaler.step reads its inf/NaN flag once per optimiser step (it must know whether
    # to skip the step) unless the optimiser skips on the device, as the fused Adam fastot builds
    # by default does; fastot's own loss-scale use (R1's inner gradient) adds no read.
    overrides = ["train.amp=fp16", "algorithm.regularizer=r1", "algorithm.reg_weight=0.2", "algorithm.k_v=2"]
    overrides += [f"optim.{net}.fused={str(fused).lower()}" for net in ("map", "potential")]
    run = Run(load_config("uotm-outlier-1d", [*FAST, "train.iterations=8", *overrides]), tmp_path)
    assert all(opt.defaults["fused"] is fused for opt in (run.opt_map, run.opt_pot))
    for it in range(2):
        run.iteration(it)
    reads = HostReads(lambda: optimizer_steps(run))
    with reads.patched(monkeypatch):
        for it in range(2, 4):
            run.iteration(it)
    per_step = [] if fused else ["Tensor.item", "aten._local_scalar_dense"]
    assert reads.calls == per_step * (2 * 3), reads.calls  # 2 iterations x (k_v + 1) steps

"""The papers' image claims at digits scale, and image-scale training against a closed form.

    python -m fastot.reproduce digits --budget cpu --seeds 0 1 2
    python -m fastot.reproduce gaussian-images

``digits`` is the group of four experiments below (the main comparison, outliers, the R1 and the tau
ablations); their metrics live in the digits feature space of :mod:`fastot.eval.digits`, and every
table states the floor of each metric (the held-out real digits scored the same way).
``gaussian-images`` trains the digits networks between N(0, I) and N(m, Sigma) at 1x16x16, where the
OT map and the JKO iterates are closed-form (:mod:`fastot.groundtruth_gaussian`).
"""

from __future__ import annotations

from fastot.reproduce import image_metrics as m
from fastot.reproduce.spec import Experiment, Row, iters, sjko_phases

# One thread of a 2-core CPU beside a second run, batch 64, measured with digits-uotm; for --list.
DIGITS_MS = 350.0
LONG = iters(5000)  # the long budget of the main rows: 3.3x the CPU budget's 1,500 iterations


def _main_row(label: str, preset: str, paper: str, long: list[str] | None = None, **kw) -> Row:
    return Row(label, preset, long=long if long is not None else LONG, paper_value=paper, **kw)


def _ablation(label: str, preset: str, overrides: list[str], run_as: str | None = None) -> Row:
    return Row(label, preset, overrides, max_seeds=1, run_as=run_as)


# Only the main rows have a long budget; the ablations run at the CPU budget.
_COMMON = dict(extract=m.digits_extract, floor=m.digits_floor, figure=m.figure, budgets=("cpu",), exact=False)
IMAGES: dict[str, Experiment] = {
    "digits-main": Experiment(
        "Digits: UOTM against OTM, UOTM-SD, S-JKO and WGAN-GP at equal iterations",
        "UOTM paper Table 2 (FID 2.97 UOTM, 7.68 OTM on CIFAR-10); S-JKO paper Table 2 (2.62 S-JKO)",
        [
            _main_row("UOTM", "digits-uotm", "FID 2.97 (CIFAR-10)"),
            _main_row("OTM", "digits-otm", "FID 7.68 (CIFAR-10)"),
            _main_row("UOTM-SD", "digits-uotm-sd", "FID 2.57 (CIFAR-10, unified paper)"),
            _main_row(
                "S-JKO",
                "digits-sjko",
                "FID 2.62 (CIFAR-10)",
                long=sjko_phases(6, 1500, 700),
                ms_per_iteration=450.0,
            ),
            # 5 potential steps per map step make one WGAN-GP iteration 5x the others' cost: the
            # first row keeps its schedule (one seed), the second matches UOTM's 1,500 potential steps.
            Row("WGAN-GP", "digits-wgan-gp", max_seeds=1, ms_per_iteration=1800.0),
            _main_row(
                "WGAN-GP, equal potential steps",
                "digits-wgan-gp",
                "—",
                cpu=iters(300),
                long=iters(1000),
                ms_per_iteration=1800.0,
            ),
            Row("UOTM w/o cost", "digits-uotm-nocost", max_seeds=1),
            Row("UOTM fixed source", "digits-uotm-fixed-source", max_seeds=1),
            # 2.1 s per iteration: 450 iterations keep the run near 15 minutes of one thread.
            Row(
                "UOTM 3x32x32",
                "digits32-uotm",
                cpu=[*iters(450), "train.ckpt_every=150"],
                max_seeds=1,
                ms_per_iteration=2100.0,
            ),
        ],
        ms_per_iteration=DIGITS_MS,
        **(_COMMON | {"budgets": ("cpu", "long")}),
    ),
    "digits-outlier": Experiment(
        "Digits + 1% photo patches: outlier robustness at image scale",
        "UOTM paper Fig. 3 (CIFAR-10 + 1% MNIST: ~0.2% outlier-like samples, FID 4.56 UOTM / 13.82 OTM)",
        [
            Row("OTM", "digits-outlier-otm", max_seeds=2, paper_value="FID 13.82"),
            Row("UOTM", "digits-outlier-uotm", max_seeds=2, paper_value="FID 4.56, ~0.2% outliers"),
        ],
        ms_per_iteration=DIGITS_MS,
        **(_COMMON | {"extract": m.outlier_extract}),
    ),
    "digits-r1": Experiment(
        "Digits: the R1 ablation",
        "UOTM paper Fig. 6 (OTM fails without R1, FID 152; UOTM stays reasonable at λ = 0)",
        [
            _ablation(
                f"{name} λ={lam}",
                preset,
                [f"algorithm.reg_weight={lam}"],
                run_as=name if lam == 0.2 else None,
            )
            for name, preset in (("OTM", "digits-otm"), ("UOTM", "digits-uotm"))
            for lam in (0.0, 0.2, 1.0)
        ]
        # Lazy R1 (opt-in): the penalty on one potential step in 4, weighted by 4; three seeds, to
        # set beside the main rows' three.
        + [
            Row(f"{name} λ=0.2, lazy R1 every 4", preset, ["algorithm.r1_every=4"], max_seeds=3)
            for name, preset in (("OTM", "digits-otm"), ("UOTM", "digits-uotm"))
        ],
        ms_per_iteration=DIGITS_MS,
        **_COMMON,
    ),
    "digits-tau": Experiment(
        "Digits: the τ ablation of UOTM and UOTM-SD",
        "UOTM paper Fig. 7; unified-framework paper (UOTM-SD is more robust to τ)",
        [
            _ablation(
                f"{name} τ={tau}", preset, [f"algorithm.tau={tau}"], run_as=name if tau == 1e-2 else None
            )
            for name, preset in (("UOTM", "digits-uotm"), ("UOTM-SD", "digits-uotm-sd"))
            for tau in (3e-3, 1e-2, 3e-2)
        ],
        ms_per_iteration=DIGITS_MS,
        **_COMMON,
    ),
    "gaussian-images": Experiment(
        "Image networks at d = 256 against the closed form: N(0, I) → N(m, Σ) of the digits",
        "closed form (balanced OT map; exact JKO iterates of KL)",
        [Row("OTM", "gaussian-digits-otm"), Row("S-JKO", "gaussian-digits-sjko", ms_per_iteration=450.0)],
        extract=m.gaussian_extract,
        floor=m.gaussian_floor,
        figure=m.figure,
        budgets=("cpu",),
        exact=False,
        ms_per_iteration=DIGITS_MS,
    ),
}


GROUPS = {"digits": ["digits-main", "digits-outlier", "digits-r1", "digits-tau"]}

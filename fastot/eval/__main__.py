"""``fastot.eval stats --data PATH --out FILE.npz``, ``fid --run DIR --ref REF``, ``digits --run DIR``.

``stats`` precomputes the Inception statistics (mu, sigma) of a dataset: an image folder, CIFAR-10
batches, an LMDB or an MNIST idx file (``--features`` also stores the feature matrix). ``fid``
samples a trained run (its latest checkpoint, EMA weights when kept) or reads a folder of images
(``--images``), and prints the metrics chosen by ``--metrics`` (default ``fid``; any of ``fid``,
``pr``, ``is``, comma-separated): the FID against ``--ref``, a statistics file or a dataset path
(then resized to the generated images' size); precision and recall (k-NN manifolds, ``--k``) against
the reference's features (a dataset path, or a statistics file written with ``--features``); the
Inception Score (``--is-splits``), which needs no reference. ``digits`` scores a run trained on
scikit-learn's digits in the feature space of :mod:`fastot.eval.digits` (FD, precision/recall, class
coverage, memorisation, outliers). The Inception weights are never
downloaded: see ``--inception-weights``. Errors print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fastot.config import check_run_config
from fastot.errors import ConfigError
from fastot.eval.fid import FeatureExtractor
from fastot.sampling import iter_generated, report_warnings

PROG = "fastot.eval"
METRICS = ("fid", "pr", "is")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m {PROG}", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--inception-weights",
        "--weights",
        dest="weights",
        type=Path,
        metavar="PATH",
        help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth, or a folder holding it "
        "(default: $FASTOT_FID_WEIGHTS, then torch hub's checkpoints folder); never downloaded",
    )
    common.add_argument("--device", default="cpu")
    common.add_argument("--batch-size", type=int, default=100)
    common.add_argument("--num-workers", type=int, default=0, help="DataLoader workers for datasets")

    s = sub.add_parser("stats", parents=[common], help="precompute mu/sigma of a dataset")
    s.add_argument(
        "--data", type=Path, required=True, help="dataset path (image folder, CIFAR-10, LMDB, ...)"
    )
    s.add_argument("--out", type=Path, required=True, help="statistics file to write (.npz)")
    s.add_argument("--size", type=int, default=None, help="resize images to SIZE (default: native)")
    s.add_argument("--limit", type=int, default=None, help="use at most this many images")
    s.add_argument(
        "--features", action="store_true", help="also store the feature matrix (for precision/recall)"
    )

    f = sub.add_parser(
        "fid", parents=[common], help="FID of a run's samples (or an image folder) vs a reference"
    )
    src = f.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", type=Path, help="a run directory written by fastot.train")
    src.add_argument("--images", type=Path, help="a folder of generated images instead of a run")
    f.add_argument(
        "--ref", type=Path, help="reference: statistics .npz, a dataset path or 'digits' (for fid and pr)"
    )
    f.add_argument(
        "--metrics", default="fid", help="comma-separated metrics among fid, pr, is (default: fid)"
    )
    f.add_argument("--k", type=int, default=3, help="neighbours of the precision/recall manifolds")
    f.add_argument("--is-splits", type=int, default=10, help="splits of the Inception Score")
    f.add_argument("--n", type=int, default=50000, help="number of generated images")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--out", type=Path, help="also write the result as JSON here")
    d = sub.add_parser(
        "digits",
        help="a digits run's FD, precision/recall, class coverage, memorisation and outliers "
        "in the fitted digits feature space (no Inception weights needed)",
    )
    d.add_argument("--run", type=Path, required=True, help="a run directory written by fastot.train")
    d.add_argument("--n", type=int, default=1795, help="number of generated images (at least 359)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--floor", action="store_true", help="also print the held-out real digits' scores")
    return p


def _digits(args) -> dict:
    from fastot.eval import digits
    from fastot.sampling import generate_images

    images = generate_images(args.run, args.n, 256, args.seed, "cpu")
    if images.dim() != 4:
        raise ValueError(f"run: digits metrics need image samples, got {list(images.shape)}")
    out: dict = {"n": len(images), "samples": str(args.run), **digits.digits_metrics(images)}
    if args.floor:
        out["floor"] = digits.digits_floor()
    return out


def _stats(args, extractor: FeatureExtractor) -> dict:
    from fastot.data.datasets import open_dataset
    from fastot.eval.fid import dataset_batches, extract, save_stats

    dataset = open_dataset(args.data, args.size)
    batches = dataset_batches(dataset, args.batch_size, args.num_workers)
    e = extract(batches, extractor, args.device, False, args.limit, keep_features=args.features)
    save_stats(args.out, e.mu, e.sigma, e.n, e.features)
    return {"stats": str(args.out), "n": e.n, "shape": list(dataset.shape), "dim": int(e.mu.shape[0])}


def _metrics(text: str) -> list[str]:
    names = [m.strip().lower() for m in text.split(",") if m.strip()]
    for m in names:
        if m not in METRICS:
            raise ConfigError("metrics", f"unknown metric {m!r}; choose among {', '.join(METRICS)}")
    if not names:
        raise ConfigError("metrics", "no metric given")
    return list(dict.fromkeys(names))


def _fid(args, extractor: FeatureExtractor) -> dict:
    from fastot.eval.fid import dataset_batches, extract, frechet_distance, reference_features

    if args.run is not None:
        check_run_config(args.run)
        batches = iter_generated(args.run, args.n, args.batch_size, args.seed, args.device)
        quantize = True
    else:
        from fastot.data.datasets import open_dataset

        batches = dataset_batches(open_dataset(args.images), args.batch_size, args.num_workers)
        quantize = False
    shape: list[int] = []

    def watch(it):
        for b in it:
            if b.dim() != 4:
                raise ValueError(f"FID needs images [B, C, H, W]; the samples are {list(b.shape)}")
            shape[:] = list(b.shape[1:])
            yield b

    metrics = _metrics(args.metrics)
    want_pr, want_is = "pr" in metrics, "is" in metrics
    gen = extract(
        watch(batches), extractor, args.device, quantize, args.n, keep_features=want_pr, logits=want_is
    )
    source = str(args.run if args.run is not None else args.images)
    out: dict = {"n": gen.n, "samples": source, "ref": None if args.ref is None else str(args.ref)}
    if "fid" in metrics or want_pr:
        ref = reference_features(
            args.ref, extractor, shape[-1], args.batch_size, args.num_workers, args.device, None, want_pr
        )
    if "fid" in metrics:
        out["fid"] = frechet_distance(gen.mu, gen.sigma, ref.mu, ref.sigma)
    if want_pr:
        from fastot.eval.precision_recall import precision_recall

        out.update(precision_recall(ref.features, gen.features, k=args.k))
        out.update(k=args.k, n_ref=int(ref.features.shape[0]))
    if want_is:
        from fastot.eval.inception_score import inception_score_of_logits

        out["is"], out["is_std"] = inception_score_of_logits(gen.logits, args.is_splits)
        out["is_splits"] = args.is_splits
    out["shape"] = shape
    return out


def main(argv: list[str] | None = None, extractor: FeatureExtractor | None = None) -> int:
    """Run the CLI; ``extractor`` replaces the FID Inception (a stand-in for tests)."""
    args = _parser().parse_args(argv)
    try:
        for name in ("batch_size", "n", "limit", "k", "is_splits"):
            value = getattr(args, name, None)
            if value is not None and value <= 0:
                raise ConfigError(name.replace("_", "-"), f"must be positive, got {value}")
        if args.command == "fid" and args.ref is None and set(_metrics(args.metrics)) & {"fid", "pr"}:
            raise ConfigError("ref", "a reference is needed for fid and pr (only 'is' goes without)")
        for name in ("data", "run", "images", "ref"):
            path = getattr(args, name, None)
            if path is not None and not path.exists() and str(path) != "digits":
                raise ConfigError(name, f"{path} does not exist")
        if args.command == "digits":
            check_run_config(args.run)
            with report_warnings(PROG):
                print(json.dumps(_digits(args), indent=2))
            return 0
        if extractor is None:
            from fastot.eval.fid import inception_extractor

            extractor = inception_extractor(args.weights, args.device)
        with report_warnings(PROG):
            result = _stats(args, extractor) if args.command == "stats" else _fid(args, extractor)
    except (ConfigError, FileNotFoundError, ImportError, ValueError) as e:  # ValueError: corrupt images too
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=2)
    if getattr(args, "out", None) is not None and args.command == "fid":
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

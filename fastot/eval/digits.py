"""A reference feature space for small real images: a CNN that fastot trains on scikit-learn's digits.

FID's Inception network needs downloaded weights and 299x299 inputs; the digits need neither. The
network here is fitted, seeded and deterministic, on the train split of :func:`fastot.data.digits.digit_split`
(1,438 digits) plus as many grey photo patches (an eleventh class, "not a digit"), and is scored on the
held-out 359 digits and fresh patches. It is cached by the hash of its recipe, never downloaded.

:func:`digits_metrics` scores generated images ``[N, C, H, W]`` in [-1, 1] (any size, 1 or 3 channels:
they are averaged to grey and resized to 16x16):

- ``fd``: the Frechet distance of the penultimate features (FID's recipe in this space) against the
  train digits, the mean over draws of ``FD_N`` samples (as many as the held-out digits, so that the
  floor has the same sample-size bias);
- ``precision`` / ``recall`` (k = 3) against the train digits, at the same sample size;
- ``class_tv``: total variation between the predicted-class histogram and uniform (mode coverage);
- ``outliers``: the fraction classified "not a digit";
- ``nn_ratio`` and ``close_copies``: memorisation. Each sample's pixel distance to its nearest train
  digit, as a median over the same median for held-out digits (1: as novel as real held-out digits;
  near 0: copies), and the fraction of samples nearer to a train digit than 95% of held-out digits are.

:func:`digits_floor` is every metric of the held-out real digits: the floor a perfect generator scores.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

SIZE = 16
N_CLASSES = 11  # ten digits and "not a digit" (photo patches)
OUTLIER_CLASS = 10
FEATURE_DIM = 64
COPY_QUANTILE = 0.05
RECIPE = {"version": 1, "epochs": 30, "batch": 64, "lr": 1e-3, "seed": 0, "patch_seed": 7, "shift": 1}


class DigitsNet(nn.Module):
    """conv 32 -> conv 32 -> pool -> conv 64 -> pool -> fc 64 (the features) -> 11 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 4 * 4, FEATURE_DIM), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(FEATURE_DIM, N_CLASSES)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.body(x)
        return f, self.head(f)


def to_grey16(images: Tensor) -> Tensor:
    """``[N, 1 or 3, H, W]`` in [-1, 1] -> float32 ``[N, 1, 16, 16]`` (channel mean, area resize)."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be [N, 1 or 3, H, W], got {list(images.shape)}")
    x = images.detach().float().cpu().mean(1, keepdim=True)
    if x.shape[-2:] != (SIZE, SIZE):
        x = F.interpolate(x, size=(SIZE, SIZE), mode="area")
    return x.clamp(-1, 1)


def _signed(u8: Tensor) -> Tensor:
    return u8.float() / 127.5 - 1


def _training_data() -> tuple[Tensor, Tensor]:
    from fastot.data.digits import digit_images, digit_labels, photo_patches

    digits = _signed(digit_images(SIZE, 1, "train"))
    patches = _signed(photo_patches(len(digits), SIZE, seed=RECIPE["patch_seed"]))
    labels = torch.cat([torch.from_numpy(digit_labels("train")), torch.full((len(patches),), OUTLIER_CLASS)])
    return torch.cat([digits, patches]), labels


def _shift(x: Tensor, g: torch.Generator, s: int) -> Tensor:
    """Each image moved by up to ``s`` pixels (background -1 fills in)."""
    pad = F.pad(x, (s, s, s, s), value=-1.0)
    out = torch.empty_like(x)
    offs = torch.randint(0, 2 * s + 1, (len(x), 2), generator=g)
    for i, (r, c) in enumerate(offs.tolist()):
        out[i] = pad[i, :, r : r + SIZE, c : c + SIZE]
    return out


def train_network() -> DigitsNet:
    """Fit :class:`DigitsNet` from :data:`RECIPE` (seeded; one thread, so bit-for-bit repeatable)."""
    threads, grad = torch.get_num_threads(), torch.is_grad_enabled()
    torch.set_num_threads(1)
    try:
        torch.set_grad_enabled(True)
        torch.manual_seed(RECIPE["seed"])
        g = torch.Generator().manual_seed(RECIPE["seed"])
        net = DigitsNet()
        opt = torch.optim.Adam(net.parameters(), lr=RECIPE["lr"])
        x, y = _training_data()
        for _ in range(RECIPE["epochs"]):
            perm = torch.randperm(len(x), generator=g)
            for start in range(0, len(x), RECIPE["batch"]):
                idx = perm[start : start + RECIPE["batch"]]
                _, logits = net(_shift(x[idx], g, RECIPE["shift"]))
                loss = F.cross_entropy(logits, y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        return net.eval()
    finally:
        torch.set_num_threads(threads)
        torch.set_grad_enabled(grad)


def cache_dir() -> Path:
    """``$FASTOT_CACHE`` or ``~/.cache/fastot``."""
    return Path(os.environ.get("FASTOT_CACHE", Path.home() / ".cache" / "fastot")).expanduser()


def recipe_hash() -> str:
    """The cache key: the recipe, the network's layout and the torch version that fits it."""
    spec = json.dumps({**RECIPE, "net": repr(DigitsNet()), "torch": torch.__version__}, sort_keys=True)
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


_LOADED: dict[str, DigitsNet] = {}


def load_network() -> DigitsNet:
    """The fitted network: from memory, from the cache, or fitted now (about half a minute) and cached.
    A cache file that does not load is refitted and replaced."""
    key = recipe_hash()
    if key in _LOADED:
        return _LOADED[key]
    path = cache_dir() / f"digits-features-{key}.pt"
    net = DigitsNet()
    try:
        net.load_state_dict(torch.load(path, weights_only=True))
        net.eval()
    except Exception:  # missing, truncated, bad pickle, other layout: all mean "fit it again"
        net = train_network()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:  # written whole or not at all: a reader never sees half a file
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(net.state_dict(), tmp)
            os.replace(tmp, path)
        except OSError:  # a read-only or full cache only costs the refit next time
            tmp.unlink(missing_ok=True)
    _LOADED[key] = net
    return net


@torch.no_grad()
def embed(images: Tensor, batch: int = 512) -> tuple[Tensor, Tensor]:
    """Penultimate features ``[N, 64]`` and class probabilities ``[N, 11]`` of ``images`` in [-1, 1]."""
    net = load_network()
    x = to_grey16(images)
    feats, probs = [], []
    for start in range(0, len(x), batch):
        f, logits = net(x[start : start + batch])
        feats.append(f)
        probs.append(logits.softmax(1))
    return torch.cat(feats).double(), torch.cat(probs).double()


def accuracy() -> dict[str, float]:
    """Held-out accuracy: the 359 test digits (11-way) and 1,000 fresh photo patches ("not a digit")."""
    from fastot.data.digits import digit_images, digit_labels, photo_patches

    _, p = embed(_signed(digit_images(SIZE, 1, "test")))
    digits = float((p.argmax(1).numpy() == digit_labels("test")).mean())
    _, q = embed(_signed(photo_patches(1000, SIZE, seed=12345)))
    return {"digits": digits, "patches": float((q.argmax(1) == OUTLIER_CLASS).double().mean())}


@dataclass(frozen=True)
class Reference:
    """What generated images are scored against: the train digits' features, pixels and moments,
    and the held-out digits' nearest-train distances."""

    features: Tensor
    pixels: Tensor
    mu: np.ndarray
    sigma: np.ndarray
    heldout_nn: Tensor


def _moments(f: Tensor) -> tuple[np.ndarray, np.ndarray]:
    return f.mean(0).numpy(), np.cov(f.numpy(), rowvar=False)


def _nearest(queries: Tensor, pixels: Tensor) -> Tensor:
    return torch.cdist(queries.flatten(1).double(), pixels.flatten(1).double()).min(1).values


_REFERENCE: dict[str, Reference] = {}


def reference() -> Reference:
    key = recipe_hash()
    if key not in _REFERENCE:
        from fastot.data.digits import digit_images

        pixels = _signed(digit_images(SIZE, 1, "train"))
        feats, _ = embed(pixels)
        mu, sigma = _moments(feats)
        heldout = _nearest(_signed(digit_images(SIZE, 1, "test")), pixels)
        _REFERENCE[key] = Reference(feats, pixels, mu, sigma, heldout)
    return _REFERENCE[key]


def fd_sample_size() -> int:
    from fastot.data.digits import digit_split

    return len(digit_split("test"))


def digits_metrics(images: Tensor, k: int = 3) -> dict[str, float]:
    """Every metric of the module docstring for generated ``images`` (at least 359 of them)."""
    from fastot.eval.fid import frechet_distance
    from fastot.eval.precision_recall import precision_recall

    n = fd_sample_size()
    if len(images) < n:
        raise ValueError(f"images: digits metrics need at least {n} images, got {len(images)}")
    ref = reference()
    feats, probs = embed(images)
    draws = len(images) // n
    fds, prs = [], []
    for i in range(draws):
        f = feats[i * n : (i + 1) * n]
        fds.append(frechet_distance(*_moments(f), ref.mu, ref.sigma))
        prs.append(precision_recall(ref.features, f, k=k))
    pred = probs.argmax(1)
    hist = torch.bincount(pred[pred != OUTLIER_CLASS], minlength=10)[:10].double()
    hist = hist / hist.sum().clamp_min(1)
    nn_gen = _nearest(to_grey16(images), ref.pixels)
    threshold = torch.quantile(ref.heldout_nn, COPY_QUANTILE)
    return {
        "fd": float(np.mean(fds)),
        "precision": float(np.mean([p["precision"] for p in prs])),
        "recall": float(np.mean([p["recall"] for p in prs])),
        "class_tv": float(0.5 * (hist - 0.1).abs().sum()),
        "outliers": float((pred == OUTLIER_CLASS).double().mean()),
        "nn_ratio": float(nn_gen.median() / ref.heldout_nn.median()),
        "close_copies": float((nn_gen < threshold).double().mean()),
    }


def digits_floor() -> dict[str, float]:
    """:func:`digits_metrics` of the held-out real digits: what a perfect generator would score
    (``nn_ratio`` 1 and ``close_copies`` 0.05 by construction)."""
    from fastot.data.digits import digit_images

    return digits_metrics(_signed(digit_images(SIZE, 1, "test")))

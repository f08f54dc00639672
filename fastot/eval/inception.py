"""The FID Inception v3 network (the TensorFlow FID graph of 2015-12-05) in plain PyTorch.

The architecture is Inception v3 with the FID variant's differences: average pools in the A, C
and first E blocks exclude the padding, the last E block pools with a max pool, and the
classifier has 1008 outputs. Module names follow the usual PyTorch Inception v3 naming, so the
weight file ``pt_inception-2015-12-05-6726825d.pth`` (the one pytorch-fid uses) loads as is.
Weights are never downloaded: pass the file, set ``FASTOT_FID_WEIGHTS``, or keep the file in
torch hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``), where pytorch-fid caches it.

Features are the 2048-d output of the final average pool, for inputs in [-1, 1] resized
(bilinear) to 299 x 299, as in pytorch-fid. :meth:`FIDInceptionV3.features_and_logits` adds the
1008 class logits of the ``fc`` head, which the Inception Score uses.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{WEIGHTS_NAME}"
WEIGHTS_ENV = "FASTOT_FID_WEIGHTS"
FEATURE_DIM = 2048


class WeightsError(ValueError):
    """A weight file that exists but is not the FID Inception's (the message names the file)."""


class BasicConv2d(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU."""

    def __init__(self, cin: int, cout: int, kernel_size, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _avg_pool(x: Tensor) -> Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | pool-1x1."""

    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_avg_pool(x))], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17: strided 3x3 | 1x1-3x3-strided 3x3 | max pool."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (1x7 and 7x1)."""

    def __init__(self, cin: int, channels_7x7: int) -> None:
        super().__init__()
        c = channels_7x7
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c, 1)
        self.branch7x7_2 = BasicConv2d(c, c, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c, 1)
        self.branch7x7dbl_2 = BasicConv2d(c, c, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c, c, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c, c, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for layer in (
            self.branch7x7dbl_1,
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            d = layer(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg_pool(x))], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """8x8 block with split 1x3 / 3x1 outputs; ``max_pool`` selects the FID graph's last-block pool."""

    def __init__(self, cin: int, max_pool: bool = False) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        s = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(s), self.branch3x3_2b(s)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _avg_pool(x)
        return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """``forward(x)``: images ``[B, 3, H, W]`` in [-1, 1] -> pool features ``[B, 2048]``.

    ``fc`` is the 1008-class head of the graph; :meth:`logits` and :meth:`features_and_logits` use it.
    """

    def __init__(self, resize_input: bool = True) -> None:
        super().__init__()
        self.resize_input = resize_input
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)
        # Variance-preserving random init (the real weights replace it): with PyTorch's default init
        # activations shrink layer by layer into subnormal floats, which are very slow on CPUs.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        self.eval()
        self.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images [B, 3, H, W], got {list(x.shape)}")
        if self.resize_input and x.shape[-2:] != (299, 299):
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b):
            x = block(x)
        for block in (self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b):
            x = block(x)
        x = self.Mixed_7c(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def logits(self, features: Tensor, bias: bool = False) -> Tensor:
        """The 1008 class logits of pool features ``[B, 2048]``.

        Without ``bias`` (the default) they are ``features @ fc.weight.T``: the Inception Score of
        the 2015-12-05 graph is defined on these unbiased logits, and the published scores use them.
        """
        return F.linear(features, self.fc.weight, self.fc.bias if bias else None)

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Pool features ``[B, 2048]`` and unbiased class logits ``[B, 1008]`` in one pass."""
        features = self(x)
        return features, self.logits(features)


def candidate_weight_paths() -> list[Path]:
    """Where the weight file is looked for when no path is given: $FASTOT_FID_WEIGHTS, then hub's cache."""
    out = []
    if os.environ.get(WEIGHTS_ENV):
        out.append(Path(os.environ[WEIGHTS_ENV]).expanduser())
    out.append(Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_NAME)
    return out


_WHERE = (
    f"pass --inception-weights PATH or set {WEIGHTS_ENV}. The file is {WEIGHTS_NAME}, released with "
    f"pytorch-fid ({WEIGHTS_URL}); fastot never downloads it."
)


def find_weights(path: str | os.PathLike | None = None) -> Path:
    """The weight file: ``path`` (a file, or a folder holding it) or the first existing candidate."""
    if path is not None:
        p = Path(path).expanduser()
        if p.is_dir():
            p = p / WEIGHTS_NAME
        if not p.is_file():
            raise FileNotFoundError(f"FID Inception weights {p} not found; {_WHERE}")
        return p
    for p in candidate_weight_paths():
        if p.is_file():
            return p
    looked = ", ".join(str(p) for p in candidate_weight_paths())
    raise FileNotFoundError(f"FID Inception weights not found (looked in: {looked}); {_WHERE}")


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def load_fid_inception(
    weights: str | os.PathLike | None = None, device: str | torch.device = "cpu"
) -> FIDInceptionV3:
    """The FID Inception with its pretrained weights (found as in :func:`find_weights`), in eval mode."""
    path = find_weights(weights)
    expected = f"expected {WEIGHTS_NAME} from pytorch-fid, a PyTorch file holding a dict of tensors"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # garbage bytes fail in many ways: UnpicklingError, IndexError, EOFError, ...
        # Not torch's message: it suggests weights_only=False, which would run code from the file.
        why = _first_line(e) if isinstance(e, OSError) else "not a PyTorch file of tensors, or truncated"
        raise WeightsError(f"FID Inception weights {path} cannot be read ({why}); {expected}") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise WeightsError(f"FID Inception weights {path} do not hold a dict of tensors; {expected}")
    model = FIDInceptionV3()
    own = model.state_dict()
    # Files saved before BatchNorm counted batches lack num_batches_tracked; those buffers are unused.
    for k, v in own.items():
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = v
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise WeightsError(
            f"{path} is not the FID Inception weight file: missing keys {missing[:5]}, "
            f"unexpected keys {unexpected[:5]}; {expected}"
        )
    wrong = [k for k, v in own.items() if state[k].shape != v.shape]
    if wrong:
        raise WeightsError(
            f"{path} is not the FID Inception weight file: {wrong[0]} has shape "
            f"{list(state[wrong[0]].shape)}, not {list(own[wrong[0]].shape)}; {expected}"
        )
    model.load_state_dict(state)
    return model.to(device).eval()

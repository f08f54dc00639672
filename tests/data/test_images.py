"""Image datasets and samplers on small files generated in tmp_path."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch
from image_files import (
    cifar_batches,
    image_folder,
    mirror_folder,
    mnist_images,
    png_bytes,
    rgb,
    write_idx,
    write_lmdb,
)
from PIL import Image

from fastot.data import IMAGE_SAMPLERS, SAMPLERS, build_sampler, noise
from fastot.data import dataset_samplers as samplers
from fastot.data.dataset_samplers import DATASET_SAMPLERS
from fastot.data.datasets import ImageFolderDataset, LMDBDataset, cifar10_dataset, mnist_dataset
from fastot.data.formats import CorruptImageError, DatasetError
from fastot.data.loader import CorruptImageWarning
from fastot.data.noise import NOISE_SAMPLERS
from fastot.data.transforms import hflip, random_hflip, to_signed_unit
from fastot.sampling import implied_network_args


# ---------------------------------------------------------------------------------------------- folders
def test_registered_names():
    assert set(IMAGE_SAMPLERS) == set(DATASET_SAMPLERS) | set(NOISE_SAMPLERS)
    for name in DATASET_SAMPLERS:
        assert SAMPLERS[name].__module__ == samplers.__name__
    for name in NOISE_SAMPLERS:
        assert SAMPLERS[name].__module__ == noise.__name__


def test_image_folder_shapes_range_and_trainer_args(tmp_path):
    root = image_folder(tmp_path / "imgs")
    s = build_sampler({"name": "image_folder", "path": str(root), "size": 16}, "data.target")
    assert len(s) == 6 and s.shape == (3, 16, 16)
    assert not hasattr(s, "dim")
    assert implied_network_args(s) == {"channels": 3, "image_size": 16}
    x = s.sample(5)
    assert x.shape == (5, 3, 16, 16) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    gray = samplers.image_folder(str(root), size=8, channels=1).sample(3)
    assert gray.shape == (3, 1, 8, 8)


def test_folder_lists_recursively_and_sorted(tmp_path):
    root = image_folder(tmp_path / "imgs")
    ds = ImageFolderDataset(root, size=8)
    rel = [p.relative_to(root).as_posix() for p in ds.paths]
    assert rel == sorted(rel) and any(r.startswith("sub/") for r in rel) and len(rel) == 6
    assert ds[0].shape == (3, 8, 8) and ds.load(0).dtype == torch.uint8


def test_resize_shorter_side_then_center_crop(tmp_path):
    arr = np.zeros((10, 30, 3), np.uint8)  # black | white | black, 10 columns each
    arr[:, 10:20] = 255
    Image.fromarray(arr).save(tmp_path / "wide.png")
    x = ImageFolderDataset(tmp_path, size=5)[0]
    assert x.shape == (3, 5, 5)
    assert x[:, :, 1:4].min() > 0.9  # the centre is the white band
    tall = ImageFolderDataset(tmp_path, size=10)[0]
    assert torch.equal(tall, to_signed_unit(torch.from_numpy(arr[:, 10:20]).permute(2, 0, 1)))


def test_flips(tmp_path):
    root = mirror_folder(tmp_path / "m")
    x = ImageFolderDataset(root, size=8)[0]
    s = samplers.image_folder(str(root), size=8, flip=True, seed=3)
    batch = s.sample(64)
    plain = (batch == x).flatten(1).all(1)
    flipped = (batch == x.flip(-1)).flatten(1).all(1)
    assert bool((plain | flipped).all()) and 10 < int(flipped.sum()) < 54
    assert bool((samplers.image_folder(str(root), size=8, flip=False).sample(16) == x).all())
    assert torch.equal(hflip(x), x.flip(-1))
    g = torch.Generator().manual_seed(0)
    r = random_hflip(x.expand(32, -1, -1, -1), g)
    assert 0 < int((r == x.flip(-1)).flatten(1).all(1).sum()) < 32


def test_epochs_cover_the_dataset_and_any_batch_size(tmp_path):
    root = tmp_path / "ten"
    root.mkdir()
    for i in range(10):
        Image.fromarray(np.full((4, 4, 3), 20 * i, np.uint8)).save(root / f"{i}.png")
    s = samplers.image_folder(str(root), size=4, flip=False, seed=1)
    seen = torch.cat([s.sample(7), s.sample(3)])
    assert s.epoch == 1
    values = sorted(((seen[:, 0, 0, 0] + 1) * 127.5).round().int().tolist())
    assert values == [20 * i for i in range(10)]  # one epoch: every image exactly once
    for _ in range(5):
        s.sample(4)
    assert s.epoch == 3 and s.consumed == 30
    assert s.sample(25).shape == (25, 3, 4, 4)  # larger than the dataset


def test_determinism_from_seed(tmp_path):
    root = image_folder(tmp_path / "imgs")

    def draws(seed, workers=0):
        s = samplers.image_folder(str(root), size=8, seed=seed, num_workers=workers)
        out = torch.cat([s.sample(4) for _ in range(4)])
        s.close()
        return out

    a, b = draws(0), draws(0)
    assert torch.equal(a, b)
    assert not torch.equal(a, draws(1))
    assert torch.equal(a, draws(0, workers=2))  # the same batches with worker processes
    torch.manual_seed(5)  # no seed: it follows torch's seed (the run's)
    c = samplers.image_folder(str(root), size=8).sample(8)
    torch.manual_seed(5)
    assert torch.equal(c, samplers.image_folder(str(root), size=8).sample(8))
    torch.manual_seed(6)
    assert not torch.equal(c, samplers.image_folder(str(root), size=8).sample(8))


def test_missing_empty_and_bad_paths_name_the_path(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DatasetError, match=str(missing)):
        samplers.image_folder(str(missing))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(DatasetError, match=str(empty)):
        samplers.image_folder(str(empty))
    with pytest.raises(DatasetError, match="is not a directory"):
        samplers.image_folder(str(empty / "readme.txt"))


def _corrupt_folder(root, good: int = 5):
    root.mkdir(parents=True)
    for i in range(good):
        Image.fromarray(rgb(8, 8, i)).save(root / f"ok{i}.png")
    (root / "garbage.png").write_bytes(b"definitely not a png")
    Image.fromarray(rgb(32, 32, 9)).save(root / "cut.png")
    data = (root / "cut.png").read_bytes()
    (root / "cut.png").write_bytes(data[: len(data) // 2])
    return root


def test_corrupt_files_are_skipped_and_counted(tmp_path):
    root = _corrupt_folder(tmp_path / "c")
    s = samplers.image_folder(str(root), size=8, seed=0)
    with pytest.warns(CorruptImageWarning, match="garbage.png|cut.png"):
        x = torch.cat([s.sample(5) for _ in range(4)])  # 20 images: at least two full epochs of 7
    assert x.shape == (20, 3, 8, 8) and x.abs().max() <= 1
    assert len(s.corrupt) == 2 and s.skipped >= 4
    assert any("garbage.png" in m for m in s.corrupt) and any("cut.png" in m for m in s.corrupt)


def test_corrupt_files_can_fail(tmp_path):
    root = _corrupt_folder(tmp_path / "c")
    s = samplers.image_folder(str(root), size=8, on_corrupt="error", flip=False)
    with pytest.raises(CorruptImageError, match=r"(garbage|cut)\.png"):
        for _ in range(3):
            s.sample(7)
    with pytest.raises(ValueError, match="on_corrupt"):
        samplers.image_folder(str(root), on_corrupt="ignore")


def test_all_corrupt_is_an_error(tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    for i in range(3):
        (root / f"b{i}.jpg").write_bytes(b"\xff\xd8\xff garbage")
    s = samplers.image_folder(str(root), size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorruptImageWarning)
        with pytest.raises(DatasetError, match="no readable image"):
            s.sample(2)


# ---------------------------------------------------------------------------------------------- CIFAR / MNIST
def test_cifar10_batches(tmp_path):
    root = cifar_batches(tmp_path)
    s = build_sampler({"name": "cifar10", "path": str(root)}, "data.target")
    assert len(s) == 100 and s.shape == (3, 32, 32)
    x = s.sample(8)
    assert x.shape == (8, 3, 32, 32) and -1 <= x.min() and x.max() <= 1
    test = cifar10_dataset(root / "cifar-10-batches-py", split="test")
    assert len(test) == 20
    with (root / "cifar-10-batches-py" / "test_batch").open("rb") as f:
        row = pickle.load(f, encoding="bytes")[b"data"][0]
    assert torch.equal(test.load(0), torch.from_numpy(row.reshape(3, 32, 32)))  # channel-major rows
    assert cifar10_dataset(root, size=16).shape == (3, 16, 16)


def test_cifar10_errors(tmp_path):
    with pytest.raises(DatasetError, match="data_batch"):
        samplers.cifar10(str(tmp_path))
    root = cifar_batches(tmp_path / "c")
    (root / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DatasetError, match="data_batch_3"):
        samplers.cifar10(str(root))

    class Evil:
        def __reduce__(self):
            return (print, ("side effect",))

    with (root / "cifar-10-batches-py" / "data_batch_3").open("wb") as f:
        pickle.dump({b"data": Evil()}, f, protocol=2)
    with pytest.raises(DatasetError, match="not allowed"):
        samplers.cifar10(str(root))


def test_mnist_idx_raw_gzip_and_layouts(tmp_path):
    imgs = mnist_images(12)
    write_idx(tmp_path / "a" / "train-images-idx3-ubyte", imgs)
    write_idx(tmp_path / "b" / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz", imgs[:5], gz=True)
    s = samplers.mnist(str(tmp_path / "a"))
    assert s.shape == (1, 28, 28) and len(s) == 12
    ds = mnist_dataset(tmp_path / "a")
    assert torch.equal(ds.load(3)[0], torch.from_numpy(imgs[3]))
    t = mnist_dataset(tmp_path / "b", split="test", size=32, channels=3)
    assert len(t) == 5 and t.shape == (3, 32, 32)
    x = t.load(0)
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])
    one_file = samplers.mnist(str(tmp_path / "a" / "train-images-idx3-ubyte")).sample(3)
    assert one_file.shape == (3, 1, 28, 28)


def test_mnist_errors_name_the_file(tmp_path):
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte"):
        samplers.mnist(str(tmp_path))
    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes(b"\x00\x00\x0d\x03" + b"\x00" * 20)
    with pytest.raises(DatasetError, match=str(bad)):
        samplers.mnist(str(tmp_path))
    write_idx(bad, mnist_images(2)[:, :, :5])
    bad.write_bytes(bad.read_bytes()[:-3])  # truncated body
    with pytest.raises(DatasetError, match="header says"):
        samplers.mnist(str(bad))


def test_cifar10_with_mnist_outliers(tmp_path):
    root = cifar_batches(tmp_path / "c")
    write_idx(tmp_path / "m" / "train-images-idx3-ubyte", mnist_images(30))
    s = samplers.cifar10_mnist_outlier(str(root), str(tmp_path / "m"), outlier_fraction=0.02)
    ds = s.dataset
    assert len(ds) == 102 and int(ds.outliers.sum()) == 2 and s.shape == (3, 32, 32)
    out = ds.load(101)
    assert torch.equal(out[0], out[1]) and torch.equal(out[0], out[2])  # gray replicated to 3 channels
    assert s.sample(16).shape == (16, 3, 32, 32)
    with pytest.raises(DatasetError, match="outliers requested"):
        samplers.cifar10_mnist_outlier(str(root), str(tmp_path / "m"), outlier_fraction=0.5)


# ---------------------------------------------------------------------------------------------- digits
def test_digits_default_cpu_image_data():
    pytest.importorskip("sklearn")
    s = build_sampler({"name": "digits"}, "data.target")
    assert len(s) == 1797 and s.shape == (3, 32, 32)
    x = s.sample(10)
    assert x.shape == (10, 3, 32, 32) and x.min() >= -1 and x.max() <= 1
    assert x.min() == -1 and x.max() > 0.9  # black background, bright strokes
    small = samplers.digits(size=16, channels=1)
    assert small.sample(2).shape == (2, 1, 16, 16)


# ---------------------------------------------------------------------------------------------- LMDB
def test_lmdb_ddgan_layout_raw_rgb(tmp_path):
    pytest.importorskip("lmdb")
    imgs = [rgb(16, 16, i) for i in range(6)]
    write_lmdb(tmp_path / "celeba" / "train.lmdb", {str(i).encode(): a.tobytes() for i, a in enumerate(imgs)})
    s = build_sampler({"name": "lmdb", "path": str(tmp_path / "celeba"), "size": 8}, "data.target")
    assert len(s) == 6 and s.shape == (3, 8, 8)
    x = s.sample(4)
    assert x.shape == (4, 3, 8, 8) and x.abs().max() <= 1
    full = LMDBDataset(tmp_path / "celeba", size=16)
    assert torch.equal(full.load(2), torch.from_numpy(imgs[2]).permute(2, 0, 1))
    with pytest.raises(DatasetError, match=r"validation\.lmdb"):
        LMDBDataset(tmp_path / "celeba", split="validation")


def test_lmdb_resolution_layout_workers_and_corrupt_value(tmp_path):
    pytest.importorskip("lmdb")
    items = {f"16-{i:05d}".encode(): png_bytes(rgb(16, 16, i)) for i in range(5)}
    items[b"16-00005"] = b"\x89PNG broken"
    items[b"length"] = b"6"
    write_lmdb(tmp_path / "ffhq.lmdb", items)
    ds = LMDBDataset(tmp_path / "ffhq.lmdb", size=16)
    assert ds.layout.kind == "resolution" and ds.layout.resolution == 16 and len(ds) == 6
    with pytest.raises(CorruptImageError, match="16-00005"):
        ds.load(5)
    with pytest.warns(CorruptImageWarning, match="16-00005"):
        a = samplers.lmdb_images(str(tmp_path / "ffhq.lmdb"), size=16, num_workers=2, seed=4)
        xa = torch.cat([a.sample(5) for _ in range(3)])
        a.close()
    b = samplers.lmdb_images(str(tmp_path / "ffhq.lmdb"), size=16, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorruptImageWarning)
        xb = torch.cat([b.sample(5) for _ in range(3)])
    assert torch.equal(xa, xb) and b.skipped >= 2


def test_lmdb_wrong_layout_and_missing_path(tmp_path):
    pytest.importorskip("lmdb")
    write_lmdb(tmp_path / "odd", {b"img_a": b"x", b"img_b": b"y"})
    with pytest.raises(DatasetError, match=r"odd.*unknown layout"):
        samplers.lmdb_images(str(tmp_path / "odd"))
    with pytest.raises(DatasetError, match=str(tmp_path / "none")):
        samplers.lmdb_images(str(tmp_path / "none"))
    with pytest.raises(DatasetError, match=r"train\.lmdb"):
        samplers.lmdb_images(str(tmp_path))


# ---------------------------------------------------------------------------------------------- sources
def test_image_sources_use_the_generator():
    s = build_sampler({"name": "gaussian_image", "channels": 1, "size": 8}, "data.source")
    a = s.sample(3, torch.Generator().manual_seed(0))
    assert a.shape == (3, 1, 8, 8) and s.shape == (1, 8, 8) and not hasattr(s, "dim")
    assert torch.equal(a, s.sample(3, torch.Generator().manual_seed(0)))
    u = build_sampler({"name": "noise_upsampled"}, "data.source")
    z = u.sample(64, torch.Generator().manual_seed(0))
    assert z.shape == (64, 3, 32, 32) and u.shape == (3, 32, 32)
    # upsampled from 8x8: neighbouring pixels are strongly correlated, unlike white noise
    c = torch.corrcoef(torch.stack([z[..., :-1].flatten(), z[..., 1:].flatten()]))[0, 1]
    assert c > 0.8

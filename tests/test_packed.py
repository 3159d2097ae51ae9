"""Packed datasets on generated fixtures: formats, packing, memory-mapped loading, feeds against the reference,
augmentation determinism, and clear errors."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from ablate.data import DatasetError, dataset_classes, load_dataset, packed
from ablate.data.augment import BatchAugment, make_augment
from ablate.data.feed import Feeder



def write_cifar100(root, n=20):
    root.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name in ("train", "test"):
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"fine_labels": list(rng.integers(0, 100, n)), b"coarse_labels": list(rng.integers(0, 20, n))}
        (root / name).write_bytes(pickle.dumps(batch))
    (root / "meta").write_bytes(pickle.dumps({b"fine_label_names": [f"c{i}".encode() for i in range(100)]}))


def write_images(folder, count, rng, suffix=".png"):
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(folder / f"{i}{suffix}")


def write_tiny(root, wnids=("n01", "n02", "n03"), per_class=4):
    rng = np.random.default_rng(2)
    root.mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (root / "words.txt").write_text("".join(f"{w}\tthing {w}, other\n" for w in wnids))
    for wnid in wnids:
        write_images(root / "train" / wnid / "images", per_class, rng, ".JPEG")
    write_images(root / "val" / "images", 2 * len(wnids), rng, ".JPEG")
    lines = [f"{i}.JPEG\t{wnids[i % len(wnids)]}\t0\t0\t10\t10" for i in range(2 * len(wnids))]
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")


def test_cifar100_packs_once_with_names_and_maps(tmp_path, cache):
    write_cifar100(tmp_path / "c100")
    data = load_dataset("cifar100", image_size=16, seed=0, root=tmp_path / "c100")
    assert data.num_classes == 100 == dataset_classes("cifar100", root=tmp_path / "c100")
    assert data.classes[:2] == ("c0", "c1") and len(data.train) == len(data.val) == 20
    assert isinstance(data.train.images, np.memmap) and data.train.images.dtype == np.uint8
    assert data.train.images.shape == (20, 16, 16, 3)
    labels = pickle.loads((tmp_path / "c100" / "train").read_bytes())[b"fine_labels"]
    assert data.train.labels.tolist() == labels
    again = load_dataset("cifar100", image_size=16, seed=1, root=tmp_path / "c100", n_train=5)
    assert again.key == data.key and len(again.train) == 5          # the seed cuts a subset of the same pack
    assert len(list((cache / "packs").iterdir())) == 1
    load_dataset("cifar100", image_size=32, seed=0, root=tmp_path / "c100")
    assert len(list((cache / "packs").iterdir())) == 2     # one pack per image size


def test_a_changed_source_file_makes_a_new_pack(tmp_path):
    write_cifar100(tmp_path / "c100")
    first = load_dataset("cifar100", image_size=8, root=tmp_path / "c100")
    batch = pickle.loads((tmp_path / "c100" / "test").read_bytes())
    batch[b"fine_labels"] = [0] * len(batch[b"fine_labels"])
    (tmp_path / "c100" / "test").write_bytes(pickle.dumps(batch))
    os.utime(tmp_path / "c100" / "test", ns=(1, 1))                  # same size, another modification time
    second = load_dataset("cifar100", image_size=8, root=tmp_path / "c100")
    assert second.key != first.key and second.val.labels.eq(0).all()


def test_tinyimagenet_layout(tmp_path):
    write_tiny(tmp_path / "tiny")
    data = load_dataset("tinyimagenet", image_size=12, seed=0, root=tmp_path / "tiny")
    assert data.num_classes == 3 == dataset_classes("tinyimagenet", root=tmp_path / "tiny")
    assert len(data.train) == 12 and len(data.val) == 6 and data.classes == ("thing n01", "thing n02", "thing n03")
    assert data.val.labels.tolist() == [0, 1, 2, 0, 1, 2] and data.train.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4


def test_tinyimagenet_errors_name_the_path(tmp_path):
    with pytest.raises(DatasetError, match="tinyimagenet: no path given; set data.root="):
        load_dataset("tinyimagenet")
    write_tiny(tmp_path / "tiny")
    (tmp_path / "tiny" / "val" / "images" / "4.JPEG").unlink()
    with pytest.raises(DatasetError, match="tiny/val/images/4.JPEG is listed in .*val_annotations.txt but missing"):
        load_dataset("tinyimagenet", root=tmp_path / "tiny")
    (tmp_path / "tiny" / "wnids.txt").unlink()
    with pytest.raises(DatasetError, match="tinyimagenet: .*wnids.txt is missing; expected Tiny-ImageNet's layout"):
        load_dataset("tinyimagenet", root=tmp_path / "tiny")


def test_parallel_packing_matches_serial_and_names_a_corrupt_file(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    for name in ("ant", "bee"):
        write_images(tmp_path / "bugs" / name, 6, rng)
    serial = load_dataset("imagefolder", image_size=8, root=tmp_path / "bugs")
    monkeypatch.setattr(packed, "PARALLEL_FROM", 1)                 # spawned workers, chunks of 5 files
    monkeypatch.setattr(packed.os, "cpu_count", lambda: 2)          # a pool even on a one-core machine
    monkeypatch.setattr(packed, "FILES_PER_TASK", 5)
    monkeypatch.setenv("ABLATE_CACHE", str(tmp_path / "other"))
    parallel = load_dataset("imagefolder", image_size=8, root=tmp_path / "bugs")
    assert np.array_equal(serial.train.images, parallel.train.images)
    (tmp_path / "bugs" / "bee" / "2.png").write_bytes(b"not an image")
    with pytest.raises(DatasetError, match="bugs/bee/2.png is not a readable image"):
        load_dataset("imagefolder", image_size=8, root=tmp_path / "bugs")
    assert not [p for p in (tmp_path / "other" / "packs").iterdir() if p.name.endswith(".tmp")]  # no temp left


def test_a_pack_built_twice_at_once_keeps_one_copy(tmp_path):
    def build(builder):
        builder.add("train", np.full((4, 2, 2, 3), 7, np.uint8), [0, 1, 0, 1])
        builder.empty("val")
        builder.classes = ["a", "b"]

    first = packed.ensure_pack("toy", {"v": 1}, 2, build)
    packed._build(first.path, "toy", {"v": 1}, 2, build)               # a second builder loses the rename race
    assert [p.name for p in first.path.parent.iterdir()] == [first.path.name]
    assert packed.open_pack(first.path).mean == pytest.approx((7 / 255,) * 3)


BUILD_SLOWLY = """
import os, sys, time
import numpy as np
from ablate.data import packed
def build(builder):
    with open(sys.argv[1], "a") as log:
        log.write(f"{os.getpid()}\\n")
    time.sleep(3)                                  # long enough for the other process to ask for the pack
    builder.add("train", np.full((4, 2, 2, 3), 7, np.uint8), [0, 1, 0, 1])
    builder.empty("val")
    builder.classes = ["a", "b"]
print(packed.ensure_pack("toy", {"v": 1}, 2, build).path)
"""


def test_concurrent_trials_build_a_pack_once(tmp_path, cache):
    log = tmp_path / "builds.log"
    env = {**os.environ, "ABLATE_CACHE": str(cache)}
    workers = [subprocess.Popen([sys.executable, "-c", BUILD_SLOWLY, str(log)], env=env, stdout=subprocess.PIPE,
                                text=True) for _ in range(2)]
    paths = {w.communicate(timeout=120)[0].strip() for w in workers}
    assert [w.returncode for w in workers] == [0, 0]
    assert len(paths) == 1 and len(log.read_text().splitlines()) == 1     # one decoded, the other waited


def test_channel_stats_match_numpy(monkeypatch):
    monkeypatch.setattr(packed, "STATS_CHUNK", 7)                   # several chunks, the last one short
    images = np.random.default_rng(0).integers(0, 256, (50, 4, 4, 3), dtype=np.uint8)
    mean, std = packed.channel_stats(images)
    flat = images.reshape(-1, 3) / 255.0
    assert mean == pytest.approx(flat.mean(0).tolist()) and std == pytest.approx(flat.std(0, ddof=1).tolist())


@pytest.mark.parametrize("feed", ["host", "device"])
def test_feeds_give_the_reference_batches(feed):
    data = load_dataset("fractal", seed=2, n_train=64, n_val=24)
    train_x, train_y, val_x, val_y = data.tensors()
    feeder = Feeder(data.train, data.mean, data.std, torch.device("cpu"), channels_last=True, feed=feed)
    order = torch.randperm(64, generator=torch.Generator().manual_seed(0))
    for step, (x, y) in enumerate(feeder.epoch(order, 16, 4, 0)):
        index = order[step * 16:(step + 1) * 16]
        assert torch.equal(x, train_x[index]) and torch.equal(y, train_y[index])
        assert x.is_contiguous(memory_format=torch.channels_last)
    val = Feeder(data.val, data.mean, data.std, torch.device("cpu"), channels_last=False, feed=feed)
    assert torch.equal(torch.cat([x for x, _ in val.batches(10)]), val_x)
    assert torch.equal(torch.cat([y for _, y in val.batches(10)]), val_y)


def test_augmentation_is_fixed_by_seed_and_step_alone():
    x = torch.rand(8, 3, 32, 32)
    y = torch.arange(8) % 4
    one, two = BatchAugment(32, 4, seed=5, policy=True, mix=True), BatchAugment(32, 4, seed=5, policy=True, mix=True)
    torch.manual_seed(0)
    a = one(x, y, step=3)
    torch.rand(1000)                                                   # a design that drew more numbers
    b = two(x, y, step=3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(one(x, y, step=4)[0], a[0])
    assert not torch.equal(BatchAugment(32, 4, seed=6, policy=True, mix=True)(x, y, step=3)[0], a[0])
    assert a[1].shape == (8, 4) and torch.allclose(a[1].sum(1), torch.ones(8))


def test_mixed_targets_weigh_each_image_by_its_share_of_the_pixels():
    """Constant images 0..7: after mixup or cutmix each pixel is a blend of two, and the soft target's weight on
    the second label must be the second image's share of the mean pixel value."""
    values = torch.arange(8.0) / 8
    x = values.view(8, 1, 1, 1).expand(8, 3, 16, 16).contiguous()
    y = torch.arange(8)
    mixer = BatchAugment(16, 8, seed=0, policy=False, mix=True)
    seen = set()
    for step in range(8):
        torch.manual_seed(step)
        mixed, target = mixer._mix(x, y)
        mean = mixed.mean(dim=(1, 2, 3))
        assert torch.allclose(target @ values, mean, atol=1e-5)        # sum of weight * value = mean pixel
        seen.add(bool((mixed.std(dim=(1, 2, 3)) > 1e-6).any()))        # cutmix leaves patches, mixup does not
    assert seen == {True, False}


def test_auto_augments_real_images_only():
    assert make_augment("auto", True, 32, 10, 0) is None
    assert isinstance(make_augment("auto", False, 32, 10, 0), BatchAugment)
    with pytest.raises(DatasetError, match="data.augment='heavy' is not an augmentation; valid: none, basic"):
        make_augment("heavy", False, 32, 10, 0)


def test_a_real_set_trains_with_strong_augmentation(tmp_path):
    from ablate.proxy import ProxyConfig
    from ablate.train import train_proxy
    write_tiny(tmp_path / "tiny", per_class=8)
    cfg = {"model": {"spec": "C|C|TM|T", "dim": 8, "in_dim": 8},
           "data": {"name": "tinyimagenet", "root": str(tmp_path / "tiny"), "image_size": 32, "augment": "strong"},
           "trainer": {"epochs": 1, "batch_size": 8, "eval_batch_size": 4}}
    result = train_proxy(ProxyConfig.from_dict(cfg))
    assert result.status == "ok", result.error
    assert result.epochs_done == 1 and result.history


def test_pack_command(tmp_path):
    write_cifar100(tmp_path / "c100")
    env = {**os.environ, "ABLATE_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "ablate.data", "pack", "cifar100", f"root={tmp_path / 'c100'}",
                           "image_size=16"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "cifar100: pack cifar100-" in done.stdout and "100 classes" in done.stdout
    assert len(list((tmp_path / "cache" / "packs").glob("cifar100-*/meta.json"))) == 1
    bad = subprocess.run([sys.executable, "-m", "ablate.data", "pack", "cifar100", f"root={tmp_path / 'none'}"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "cifar100: directory" in bad.stderr and "does not exist" in bad.stderr

"""Training from ImageFolder trees: unreadable files skipped and counted, bad trees refused before
training, and the tensor cache (the GPU data path) built and trained on the CPU."""

import json

import pytest

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from archc.runtime.cache import cache_pool, resize_square
from archc.runtime.config import TrainConfig
from archc.runtime.data import DataError, folder_pool, load_image
from archc.runtime.run import train
from archc.cli import main
from test_train import TINY, quiet, tiny_net

COLOURS = {"blue": (30, 60, 200), "green": (40, 180, 60), "red": (200, 40, 30)}
RGB_NET = TINY.replace("input 1 x 16 x 16", "input 3 x 16 x 16")


def image_tree(root, per_class=8, layout="flat"):
    """Small noisy images of one colour per class; JPEG and PNG mixed; sizes vary."""
    g = torch.Generator().manual_seed(0)
    for c, (name, rgb) in enumerate(COLOURS.items()):
        for i in range(per_class):
            split = "" if layout == "flat" else ("val/" if i % 4 == 0 else "train/")
            folder = root / f"{split}{name}"
            folder.mkdir(parents=True, exist_ok=True)
            h, w = 24 + 2 * i, 30 + c
            noise = torch.randint(-25, 26, (h, w, 3), generator=g)
            pixels = (torch.tensor(rgb) + noise).clamp(0, 255).to(torch.uint8).numpy()
            Image.fromarray(pixels).save(folder / f"{i}.{'jpg' if i % 2 else 'png'}")
    return root


@pytest.mark.parametrize("cache", ["off", "auto"])
def test_corrupt_and_non_image_files_are_skipped_and_counted(tmp_path, cache):
    """By PIL in DataLoader workers (--cache off) and by the cache (the default, where it fits)."""
    data = image_tree(tmp_path / "data")
    (data / "red" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (data / "green" / "notes.txt").write_text("taken on a phone")
    (data / "blue" / ".DS_Store").write_bytes(b"\0")  # hidden files are not data
    summary = train(tiny_net(tmp_path, RGB_NET), TrainConfig(data=str(data), epochs=1, batch=8, workers=0,
                                                             cache=cache, out=str(tmp_path / "run")), log=quiet)
    assert summary["data_cached"] == (cache == "auto")
    assert summary["skipped_files"] == 2
    assert {s["file"].rsplit("/", 1)[1] for s in summary["skipped"]} == {"broken.jpg", "notes.txt"}
    assert summary["train_images"] + summary["val_images"] == 24
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["skipped_files"] == 2


def test_the_tensor_cache_path_trains_on_cpu_and_skips_the_same_files(tmp_path):
    data = image_tree(tmp_path / "data", layout="split")
    (data / "train" / "red" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    summary = train(tiny_net(tmp_path, RGB_NET), TrainConfig(data=str(data), epochs=2, batch=8, cache="memory",
                                                             input="3x16x16", out=str(tmp_path / "run")), log=quiet)
    assert summary["data_cached"] and summary["skipped_files"] == 1
    assert (summary["train_images"], summary["val_images"]) == (18, 6)  # the tree's own split
    assert summary["val_accuracy"] > 0.5  # three colours: learnable in two epochs


def test_on_a_cpu_the_default_caches_a_folder_only_when_it_fits(tmp_path, monkeypatch):
    """24 images as 3×18×18 uint8 squares take 23,328 bytes: cached when a quarter of the available memory
    holds them, read by PIL workers otherwise; the two runs train alike."""
    from archc.runtime import cache, run

    assert cache.free_memory(torch.device("cpu")) > 10**6  # this machine's MemAvailable, read
    data = image_tree(tmp_path / "data")
    net = tiny_net(tmp_path, RGB_NET)
    seen = []
    for free in (4 * 23_328 + 4, 4 * 23_328 - 4):
        monkeypatch.setattr(run, "free_memory", lambda device, processes=1, free=free: free)
        summary = train(net, TrainConfig(data=str(data), epochs=2, batch=8, workers=0, input="3x16x16",
                                         out=str(tmp_path / f"run-{free}")), log=quiet)
        seen.append(summary["data_cached"])
        assert summary["train_images"] + summary["val_images"] == 24 and summary["val_accuracy"] > 0.5
    assert seen == [True, False]


def test_an_empty_class_folder_is_a_clear_error_before_training(tmp_path, capsys):
    data = image_tree(tmp_path / "data")
    (data / "yellow").mkdir()
    assert main(["train", str(tiny_net(tmp_path, RGB_NET)), "--data", str(data), "--out", str(tmp_path / "run")]) == 1
    assert f"the class folder {data / 'yellow'} is empty" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_train_and_val_trees_with_different_classes_are_refused(tmp_path):
    data = image_tree(tmp_path / "data", layout="split")
    (data / "val" / "green").rename(data / "val" / "grey")
    with pytest.raises(DataError, match="only in train: green; only in val: grey"):
        folder_pool(data)


def test_a_class_whose_files_are_all_unreadable_is_an_error(tmp_path):
    data = image_tree(tmp_path / "data")
    for path in (data / "blue").iterdir():
        path.write_bytes(b"nothing")
    with pytest.raises(DataError, match="no readable image in the class folder blue"):
        folder_pool(data)


def test_the_cache_holds_eval_views_like_the_pil_path(tmp_path):
    data = image_tree(tmp_path / "data", per_class=2)
    pool = folder_pool(data, check_decode=False)
    cached = cache_pool(pool, 18, torch.device("cpu"), workers=2)
    assert cached.images.shape == (6, 3, 18, 18) and cached.images.dtype == torch.uint8
    # the square's centre 16×16, normalised, is what eval gives the file
    ckpt = {"input": [3, 16, 16], "eval_resize": 18, "normalize": {"mean": [0.0] * 3, "std": [1.0] * 3}}
    expected = load_image(pool.files[0], ckpt)
    assert (cached.images[0, :, 1:17, 1:17] / 255 - expected).abs().max() < 2 / 255
    # and the tensor resize (used after nvjpeg) agrees with PIL's to a couple of levels
    from torchvision.transforms.functional import pil_to_tensor

    tensor = pil_to_tensor(Image.open(pool.files[0]).convert("RGB"))
    assert (resize_square(tensor, 18).int() - cached.images[0].int()).abs().float().mean() < 3

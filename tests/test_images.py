"""runtime/images.py, the one image reader: regular files only, decoded no larger than needed (JPEG draft,
PIL's reduce), PIL's decompression-bomb warning said in words; and what that does to cam's memory."""

import os
import sys
import warnings

import pytest
import torch
from archc.runtime.data import load_view
from archc.runtime.files import NotRegularFile
from archc.runtime.images import REDUCING_GAP, ImageTooLarge, decode, short_side_to
from conftest import ROOT
from PIL import Image
from test_predict import NORMALIZE, make_checkpoint, random_image
from torchvision import transforms as T

CKPT = {"input": [3, 32, 32], "eval_resize": 36, "normalize": NORMALIZE}


def smooth_image(path, size, **save):
    """A smooth picture (gradients and a disc), as photos are smooth at the scale of a reduction."""
    x = torch.linspace(0, 1, size[0])[None, :].expand(size[1], size[0])
    y = torch.linspace(0, 1, size[1])[:, None].expand(size[1], size[0])
    disc = (((x - 0.6) ** 2 + (y - 0.4) ** 2) < 0.05).float()
    rgb = torch.stack([x, y, 0.3 + 0.7 * disc], dim=-1)
    Image.fromarray((rgb * 255).round().to(torch.uint8).numpy()).save(path, **save)
    return path


def full_view(path):
    """torchvision's eval view of the fully decoded file: what the reduced decode must stay close to."""
    view = T.CenterCrop(32)(T.Resize(36)(Image.open(path).convert("RGB")))
    return T.Normalize(NORMALIZE["mean"], NORMALIZE["std"])(T.ToTensor()(view))


@pytest.mark.parametrize("name, save", [("big.png", {}), ("big.jpg", {"quality": 95})])
def test_a_large_image_is_decoded_reduced_and_gives_nearly_the_full_view(tmp_path, name, save):
    path = smooth_image(tmp_path / name, (1600, 1200), **save)
    decoded = decode(path, "RGB", short_side_to(36))
    assert decoded.full_size == (1600, 1200)
    assert min(decoded.image.size) >= REDUCING_GAP * 36 and min(decoded.image.size) <= 2 * REDUCING_GAP * 36
    # the view's pixels move by at most a few grey levels (of 255) against a full decode
    difference = (load_view(path, CKPT).input - full_view(path)).abs() * torch.tensor(NORMALIZE["std"])[:, None, None]
    assert float(difference.max()) < 6 / 255


def test_an_image_smaller_than_four_times_the_view_is_read_whole_and_exactly(tmp_path):
    path = random_image(tmp_path / "small.png", seed=3, size=(140, 100))
    assert decode(path, "RGB", short_side_to(36)).image.size == (140, 100)
    assert torch.equal(load_view(path, CKPT).input, full_view(path))


def test_modes_pil_cannot_reduce_are_converted_first(tmp_path):
    Image.new("P", (800, 600), 7).save(tmp_path / "palette.png")
    Image.new("1", (800, 600), 1).save(tmp_path / "bits.png")
    assert decode(tmp_path / "palette.png", target=short_side_to(36)).image.mode == "RGBA"
    assert decode(tmp_path / "bits.png", "L", short_side_to(36)).image.size == (100, 75)


def test_the_bomb_warning_is_said_in_words_not_raised(tmp_path, monkeypatch):
    path = random_image(tmp_path / "x.png", seed=1, size=(50, 40))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1500)
    with warnings.catch_warnings(record=True) as seen:
        decoded = decode(path, "RGB")
    assert not [w for w in seen if issubclass(w.category, Image.DecompressionBombWarning)]
    assert decoded.note == (f"{path} is 50×40 pixels (0.002 megapixels, over the 0.0015 at which PIL warns of a "
                            "decompression bomb); it was decoded once and reduced at once to the size needed")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 900)  # twice that is below 2,000 pixels: PIL refuses
    with pytest.raises(ImageTooLarge, match=r"has more pixels than PIL decodes \(1,800\)"):
        decode(path, "RGB")


def test_a_fifo_named_like_an_image_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "x.jpg")
    with pytest.raises(NotRegularFile, match="is a FIFO, not a file"):
        decode(tmp_path / "x.jpg", "RGB")


def test_the_cam_picture_is_the_views_size_whatever_the_images(tmp_path):
    from archc.runtime.cam import cam_for_image

    checkpoint, _ = make_checkpoint(tmp_path)
    small, large = random_image(tmp_path / "s.png", 1, (60, 40)), smooth_image(tmp_path / "l.png", (3000, 2000))
    cam_for_image(checkpoint, small, tmp_path / "small.png")
    cam_for_image(checkpoint, large, tmp_path / "large.png")
    assert Image.open(tmp_path / "small.png").size == Image.open(tmp_path / "large.png").size


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the peak memory from Linux's /proc")
def test_cam_of_a_12000_pixel_square_png_stays_small(tmp_path):
    """Issue 12's reproducer: this peaked at 7.3 GB (the map drawn at the image's full size)."""
    import subprocess

    checkpoint, _ = make_checkpoint(tmp_path)
    Image.new("RGB", (12000, 12000), (120, 30, 200)).save(tmp_path / "big.png", compress_level=1)
    # the peak of this process's own memory (VmHWM): ru_maxrss would count the forking pytest process's too
    program = ("import re, sys; from archc.cli import main; code = main(sys.argv[1:]); "
               "status = open('/proc/self/status').read(); "
               "print('peak', int(re.search(r'VmHWM:\\s+(\\d+)', status).group(1)) // 1024); sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", program, "cam", str(checkpoint), str(tmp_path / "big.png"),
                             "-o", str(tmp_path / "cam.png")], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    peak_mb = int(result.stdout.split("peak")[-1])
    # torch and torchvision take about 800 MB here, the decoded PNG 576 MB (PIL keeps RGB in 4 bytes a pixel)
    assert peak_mb < 2000, peak_mb
    assert "DecompressionBombWarning" not in result.stderr and "144 megapixels" in result.stderr

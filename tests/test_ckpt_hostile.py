"""Crafted checkpoints (issue 12): files that load with weights_only=True but hold bad fields, and files
that are not checkpoints at all. eval, predict and cam each give one clear error naming the field
(exit 1), never a traceback, a hang or a huge allocation."""

import os

import pytest
import torch
from archc.runtime.checkpoint import CheckpointError, load_checkpoint
from conftest import run_archc
from test_predict import make_checkpoint, random_image

from archc.cli import main


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A good checkpoint, an image and a labelled folder to point eval, predict and cam at."""
    root = tmp_path_factory.mktemp("hostile")
    checkpoint, _ = make_checkpoint(root)
    image = random_image(root / "photo.png", seed=1)
    for name in ("cat", "dog", "fox"):
        (root / "data" / name).mkdir(parents=True)
        random_image(root / "data" / name / "0.png", seed=len(name))
    return root, checkpoint, image


def crafted(base, tmp_path, change):
    """The good checkpoint with `change(payload)` applied, written with torch.save as it is."""
    _, checkpoint, _ = base
    payload = torch.load(checkpoint, weights_only=True)
    change(payload)
    path = tmp_path / "crafted.pt"
    torch.save(payload, path)
    return path


def fails_everywhere(base, path, capsys, expected):
    """eval, predict and cam of `path` exit 1 with `expected` in the one error line."""
    root, _, image = base
    for command in (["eval", str(path), "--data", str(root / "data")], ["predict", str(path), str(image)],
                    ["cam", str(path), str(image), "-o", str(root / "cam.png")]):
        assert main(command) == 1, command
        err = capsys.readouterr().err
        assert err.startswith("archc: error: ") and expected in err, (command, err)
    assert not (root / "cam.png").exists()


class Planted:
    """An object a weights-only load must refuse to build."""


def _set(key, value):
    return lambda payload: payload.__setitem__(key, value)


def _drop(key):
    return lambda payload: payload.pop(key)


@pytest.mark.parametrize("change, expected", [
    (lambda p: p["params"].update(input=3), "params: 'input' is not a network parameter archc can set"),
    (lambda p: p["params"].update(path="x"), "params: 'path' is not a network parameter archc can set"),
    (_set("params", [1, 2]), "params: Input should be a valid dictionary (it holds [1, 2])"),
    (_set("classes", 3), "classes: Input should be a valid list (it holds 3)"),
    (_drop("input"), "input: missing"),
    (_drop("classes"), "classes: missing"),
    (_drop("normalize"), "normalize: missing"),
    (_set("eval_resize", 0), "eval_resize: 0 is below the input's larger side (32)"),
    (_set("eval_resize", 1_000_000), "eval_resize: 1000000 is above 2× the input's larger side (32)"),
    (_set("input", [3, 100_000, 100_000]), "input: [3, 100000, 100000]: each side must be 1 to 4096 pixels"),
    (_set("input", [5, 32, 32]), "input: [5, 32, 32]: images are read with 1 (grey) or 3 (RGB) channels"),
    (_set("normalize", {"mean": [0.5] * 3, "std": [0.0] * 3}),
     "normalize.std: [0.0, 0.0, 0.0]: every standard deviation must be above 0"),
    (_set("classes", ["cat", "cat", "dog"]), "classes: names a class twice: cat"),
    (_set("classes", ["cat", "dog\x1b[2J", "fox"]), "holds a control character"),
    (_set("model", {"weight": "not a tensor"}), "model: holds str under 'weight'"),
    (_set("arch_sources", {"tiny.arch": "x" * 100_001}), "arch_sources.tiny.arch: String should have at most 100000"),
    (_set("arch_file", "other.arch"), "arch_file: 'other.arch' is not among the stored sources"),
    (_set("arch_sources", {"../tiny.arch": "network x()"}), "names a source file outside its folder: '../tiny.arch'"),
])
def test_a_bad_field_is_named_by_eval_predict_and_cam(base, tmp_path, capsys, change, expected):
    fails_everywhere(base, crafted(base, tmp_path, change), capsys, expected)


def test_classes_that_do_not_match_the_outputs_are_refused(base, tmp_path, capsys):
    path = crafted(base, tmp_path, _set("classes", ["a", "b", "c", "d", "e"]))
    root, _, image = base
    assert main(["predict", str(path), str(image)]) == 1
    assert "the network gives 3 values per image, but the checkpoint names 5 classes" in capsys.readouterr().err
    assert main(["cam", str(path), str(image), "-o", str(tmp_path / "cam.png")]) == 1
    assert "the checkpoint names 5 classes, but its network outputs 3 values per image" in capsys.readouterr().err


def test_stored_source_that_does_not_compile_gets_the_compilers_diagnostic(base, tmp_path, capsys):
    def broken(payload):
        text = payload["arch_sources"]["tiny.arch"]
        payload["arch_sources"]["tiny.arch"] = text.replace("    relu()\n\nclassifier", "    rleu()\n\nclassifier")

    path = crafted(base, tmp_path, broken)
    _, _, image = base
    assert main(["predict", str(path), str(image)]) == 1
    err = capsys.readouterr().err
    assert "the network stored in the checkpoint (tiny) does not compile" in err
    assert "(stored) tiny.arch:10:5: error[E200]" in err and "10 |     rleu()" in err and "did you mean 'relu'" in err
    assert "archc-ckpt-" not in err  # the temporary folder's path is not shown


@pytest.mark.parametrize("content, expected", [
    (b"hello", "it is not a file torch.save wrote (neither a zip archive nor a pickle)"),
    (b"", "the file is empty"),
    (None, "is a folder, not a file"),
    ("truncated", "its zip archive is damaged or cut short"),
    ("objects", "it holds Python objects besides tensors and plain values"),
    (b"\x80\x02}q\x00.", "it is a pickle, but not one torch.save wrote"),
])
def test_files_that_are_not_checkpoints_are_said_in_words(base, tmp_path, content, expected):
    path = tmp_path / "x.pt"
    if content is None:
        path.mkdir()
    elif content == "truncated":
        data = base[1].read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif content == "objects":
        torch.save({"format": "archc-checkpoint", "planted": Planted()}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match="is not a readable checkpoint: ") as error:
        load_checkpoint(path)
    assert expected in str(error.value)


def test_a_fifo_as_checkpoint_or_image_is_refused_not_waited_on(base, tmp_path):
    _, checkpoint, _ = base
    fifo = tmp_path / "x.pt"
    os.mkfifo(fifo)
    image = tmp_path / "y.jpg"
    os.mkfifo(image)
    result = run_archc("predict", str(fifo), str(image), timeout=60)
    assert result.returncode == 1 and "x.pt is not a readable checkpoint: is a FIFO, not a file" in result.stderr
    result = run_archc("predict", str(checkpoint), str(image), timeout=60)
    assert result.returncode == 1 and "y.jpg: skipped: " in result.stdout and "is a FIFO, not a file" in result.stdout
    assert "Traceback" not in result.stderr + result.stdout

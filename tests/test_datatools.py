"""archc data split / resize (seed 000's split script and one-time resize)."""

import os
from pathlib import Path

import pytest
from archc.runtime.datatools import (
    DataToolError,
    resize_tree,
    split_dataset,
)
from conftest import run_archc
from PIL import Image, ImageOps

CLASSES = {"cloth_mask": 20, "face_no_mask": 9, "surgical_mask": 3}


def _tree(root: Path, classes=CLASSES, size=(64, 48)) -> Path:
    for index, (name, n) in enumerate(classes.items()):
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", size, (index * 80, i * 10 % 256, 0)).save(root / name / f"{i:03d}.jpg")
    return root


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_split_is_stratified_complete_and_disjoint(tmp_path):
    src = _tree(tmp_path / "ori_photo")
    report = split_dataset(src, tmp_path / "data", val=0.2, test=0.1, seed=0)
    data = tmp_path / "data"
    for name, n in CLASSES.items():
        parts = {s: {p.name for p in (data / s / name).iterdir()} for s in ("train", "val", "test")}
        assert len(parts["val"]) == int(n * 0.2 + 0.5) and len(parts["test"]) == int(n * 0.1 + 0.5)
        assert report.counts[name] == {s: len(v) for s, v in parts.items()}
        assert parts["train"] | parts["val"] | parts["test"] == {f"{i:03d}.jpg" for i in range(n)}
        assert not (parts["train"] & parts["val"]) and not (parts["train"] & parts["test"])
    copied = min((data / "val" / "cloth_mask").iterdir())
    assert copied.read_bytes() == (src / "cloth_mask" / copied.name).read_bytes()


def test_split_is_deterministic_per_seed_and_per_class(tmp_path):
    src = _tree(tmp_path / "src")
    split_dataset(src, tmp_path / "a", val=0.3, seed=7)
    split_dataset(src, tmp_path / "b", val=0.3, seed=7)
    split_dataset(src, tmp_path / "c", val=0.3, seed=8)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert _files(tmp_path / "a") != _files(tmp_path / "c")
    # a new class does not reshuffle the others
    _tree(tmp_path / "src", {"zebra": 5})
    split_dataset(src, tmp_path / "d", val=0.3, seed=7)
    assert {f for f in _files(tmp_path / "d") if "zebra" not in f} == _files(tmp_path / "a")


def test_split_links_instead_of_copying(tmp_path):
    src = _tree(tmp_path / "src", {"a": 4, "b": 4})
    split_dataset(src, tmp_path / "out", val=0.25, mode="link")
    linked = sorted((tmp_path / "out").rglob("*.jpg"))
    assert len(linked) == 8 and all(p.is_symlink() and p.resolve().parent.parent == src.resolve() for p in linked)


def test_split_refuses_a_non_empty_destination_and_leaves_it_alone(tmp_path):
    src = _tree(tmp_path / "src", {"a": 4, "b": 4})
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst" / "keep.txt").write_text("mine")
    result = run_archc("data", "split", str(src), str(tmp_path / "dst"))
    assert result.returncode == 2 and "not empty" in result.stderr and "Traceback" not in result.stderr
    assert _files(tmp_path / "dst") == {"keep.txt"}
    (tmp_path / "empty").mkdir()  # an empty folder is fine
    assert split_dataset(src, tmp_path / "empty", val=0.5).counts == {"a": {"train": 2, "val": 2, "test": 0},
                                                                      "b": {"train": 2, "val": 2, "test": 0}}


@pytest.mark.parametrize("setup, message", [
    (lambda src: None, "no such folder"),
    (lambda src: (src.mkdir(), Image.new("RGB", (4, 4)).save(src / "x.png")), "no class folders"),
    (lambda src: (_tree(src, {"a": 2}), (src / "empty").mkdir()), "'empty' has no images"),
])
def test_split_errors_name_the_problem(tmp_path, setup, message):
    setup(tmp_path / "src")
    with pytest.raises(DataToolError, match=message):
        split_dataset(tmp_path / "src", tmp_path / "dst")
    assert not (tmp_path / "dst").exists()  # nothing half-written


def test_split_cli_reports_counts_per_class(tmp_path):
    src = _tree(tmp_path / "src")
    result = run_archc("data", "split", str(src), str(tmp_path / "data"), "--val", "0.2", "--seed", "3")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()}
    assert rows["cloth_mask"] == ["16", "4"] and rows["face_no_mask"] == ["7", "2"] and rows["total"] == ["25", "7"]
    assert run_archc("data", "split", str(src), str(tmp_path / "x"), "--val", "1.5").returncode == 2


def test_resize_keeps_aspect_skips_and_counts_bad_files(tmp_path):
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    Image.new("RGB", (1000, 750), "red").save(src / "a" / "wide.jpg")
    Image.new("RGB", (300, 1200), "blue").save(src / "a" / "tall.png")
    Image.new("RGB", (400, 300), "green").save(src / "a" / "small.jpg")
    (src / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    good = (src / "a" / "wide.jpg").read_bytes()
    (src / "a" / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (src / "a" / "labels.csv").write_text("x")

    report = resize_tree(src, max_side=500, out=tmp_path / "out")
    out = tmp_path / "out" / "a"
    assert Image.open(out / "wide.jpg").size == (500, 375)
    assert Image.open(out / "tall.png").size == (125, 500)
    assert (out / "small.jpg").read_bytes() == (src / "a" / "small.jpg").read_bytes()  # copied untouched
    assert (report.resized, report.unchanged, report.skipped) == (2, 1, 3)
    assert {p.name for p, _ in report.corrupt} == {"broken.jpg", "truncated.jpg"}
    assert [p.name for p in report.not_images] == ["labels.csv"]
    assert sorted(p.name for p in out.iterdir()) == ["small.jpg", "tall.png", "wide.jpg"]
    assert Image.open(src / "a" / "wide.jpg").size == (1000, 750)  # the source is untouched with -o


def test_resize_applies_exif_orientation_in_place(tmp_path):
    image = Image.new("RGB", (800, 400), "white")
    image.paste((255, 0, 0), (0, 0, 400, 400))  # left half red as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90° clockwise: red on top
    (tmp_path / "c").mkdir()
    path = tmp_path / "c" / "phone.jpg"
    image.save(path, exif=exif)
    expected = ImageOps.exif_transpose(Image.open(path)).resize((100, 200))

    report = resize_tree(tmp_path, max_side=200)
    assert report.resized == 1
    resized = Image.open(path)
    assert resized.size == (100, 200) and resized.getexif().get(0x0112, 1) == 1
    assert resized.getpixel((50, 20))[0] > 200 and resized.getpixel((50, 20))[2] < 60  # red on top
    assert resized.getpixel((50, 180)) > (200, 200, 200)  # white below
    assert max(abs(a - b) for a, b in zip(resized.getpixel((50, 20)), expected.getpixel((50, 20)))) < 20


def test_resize_cli_errors_and_summary(tmp_path):
    _tree(tmp_path / "src", {"a": 2}, size=(900, 600))
    result = run_archc("data", "resize", str(tmp_path / "src"), "--max-side", "300", "-o", str(tmp_path / "o"))
    assert result.returncode == 0 and "resized 2 images to at most 300 px into" in result.stdout
    assert Image.open(tmp_path / "o" / "a" / "000.jpg").size == (300, 200)
    for args in (["nope"], [str(tmp_path / "src"), "--max-side", "0"], [str(tmp_path / "src"), "-o", str(tmp_path / "o")],
                 [str(tmp_path / "src"), "-o", str(tmp_path / "src" / "inside")]):
        bad = run_archc("data", "resize", *args)
        assert bad.returncode == 2 and "archc: error:" in bad.stderr and "Traceback" not in bad.stderr, args


# --- links, FIFOs and the one walker (issue 12), modes and split trees (issue 15) ------------------------------


def _linked_tree(root: Path) -> Path:
    """Two classes of one image each, with the hostile entries of issue 12 beside them: a link to the tree
    itself, a link to the other class, a loop of two links, a FIFO named like an image, a broken link."""
    _tree(root, {"a": 1, "b": 1})
    (root / "a" / "self").symlink_to(root)
    (root / "a" / "to_b").symlink_to(root / "b")
    (root / "b" / "loop1").symlink_to(root / "b" / "loop2")
    (root / "b" / "loop2").symlink_to(root / "b" / "loop1")
    os.mkfifo(root / "b" / "pipe.jpg")
    (root / "b" / "gone.jpg").symlink_to(root / "nowhere.jpg")
    (root / "b" / "alias.jpg").symlink_to(root / "b" / "000.jpg")  # a link to a file is a file
    return root


def test_split_and_resize_follow_no_folder_links_and_agree_with_training(tmp_path):
    from archc.runtime.data import folder_pool

    src = _linked_tree(tmp_path / "src")
    report = split_dataset(src, tmp_path / "out", val=0.0)
    assert report.counts == {"a": {"train": 1, "val": 0, "test": 0}, "b": {"train": 2, "val": 0, "test": 0}}
    assert _files(tmp_path / "out") == {"train/a/000.jpg", "train/b/000.jpg", "train/b/alias.jpg"}
    reasons = {p.name: why for p, why in report.not_followed}
    assert reasons == {"self": "a link to a folder: not followed", "to_b": "a link to a folder: not followed",
                       "loop1": "a loop of links", "loop2": "a loop of links", "gone.jpg": "a broken link",
                       "pipe.jpg": "a FIFO: not a regular file"}

    pool = folder_pool(src, check_decode=False)  # training lists the same images, and skips the same entries
    assert sorted(str(p.relative_to(src)) for p in pool.files) == ["a/000.jpg", "b/000.jpg", "b/alias.jpg"]
    assert {Path(name).name for name, _ in pool.skipped} == set(reasons)

    resized = run_archc("data", "resize", str(src), "--max-side", "32", timeout=60)  # no hang on the FIFO
    assert resized.returncode == 0, resized.stderr
    # the link to b/000.jpg is that image: rewritten once, through the file, and still a link to it
    assert "resized 2 images" in resized.stdout and "1 already small" in resized.stdout
    assert "not regular files" in resized.stdout
    assert Image.open(src / "a" / "000.jpg").size == Image.open(src / "b" / "000.jpg").size == (32, 24)
    assert (src / "b" / "alias.jpg").is_symlink() and Image.open(src / "b" / "alias.jpg").size == (32, 24)


def test_a_linked_class_folder_is_reported_not_followed(tmp_path):
    src = _tree(tmp_path / "src", {"a": 2, "b": 2})
    _tree(tmp_path / "elsewhere", {"c": 2})
    (src / "c").symlink_to(tmp_path / "elsewhere" / "c")
    report = split_dataset(src, tmp_path / "out", val=0.5)
    assert set(report.counts) == {"a", "b"} and [p.name for p, _ in report.not_followed] == ["c"]
    result = run_archc("data", "split", str(src), str(tmp_path / "cli"))
    assert result.returncode == 0 and "links to folders are not followed" in result.stdout


def test_resize_keeps_each_files_mode(tmp_path):
    src = _tree(tmp_path / "src", {"a": 2}, size=(900, 600))
    (src / "a" / "000.jpg").chmod(0o644)
    (src / "a" / "001.jpg").chmod(0o640)
    resize_tree(src, max_side=300, out=tmp_path / "out")
    resize_tree(src, max_side=300)  # in place
    for root in (src, tmp_path / "out"):
        assert (root / "a" / "000.jpg").stat().st_mode & 0o777 == 0o644
        assert (root / "a" / "001.jpg").stat().st_mode & 0o777 == 0o640
        assert Image.open(root / "a" / "000.jpg").size == (300, 200)


def test_split_refuses_a_tree_that_is_split_already(tmp_path):
    src = _tree(tmp_path / "src", {"a": 4, "b": 4})
    split_dataset(src, tmp_path / "data", val=0.5)
    result = run_archc("data", "split", str(tmp_path / "data"), str(tmp_path / "again"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{tmp_path / 'data'}: is split already (train/, val/ hold the class folders a, b)" in result.stderr
    assert not (tmp_path / "again").exists()
    # a class that happens to be called "train" beside others is not a split tree
    _tree(tmp_path / "odd", {"train": 2, "val": 2})
    assert set(split_dataset(tmp_path / "odd", tmp_path / "odd_out", val=0.5).counts) == {"train", "val"}

"""archc eval and archc predict on a tiny checkpoint, against torch computing the same thing directly.

(runtime/infer.py's tests; tests/test_infer.py is the static shape inference's.)
"""

import json

import pytest
import torch
from archc.runtime.checkpoint import arch_sources, save_checkpoint
from archc.runtime.infer import InferError, evaluate, format_evaluation, predict
from conftest import run_archc
from oracles import randomise
from PIL import Image
from torchvision import transforms as T

import archc
from archc.cli import main

CLASSES = ["cat", "dog", "fox"]
TINY = """
network tiny(num_classes = 3)
input 3 x 32 x 32

features:
    conv(8, 3, stride = 2)
    batchnorm()
    relu()
    conv(16, 3)
    relu()

classifier:
    global_avgpool()
    flatten()
    dropout(0.2)
    linear(num_classes)
"""
NORMALIZE = {"mean": [0.5, 0.4, 0.3], "std": [0.25, 0.2, 0.3]}


def make_checkpoint(folder, text=TINY, classes=CLASSES, seed=0):
    """A checkpoint as archc train writes one, of a network with seeded random weights; (path, model)."""
    arch = folder / "tiny.arch"
    arch.write_text(text, encoding="utf-8")
    model = randomise(archc.build(arch), seed=seed).eval()
    main, sources = arch_sources(arch)
    path = folder / "run" / "best.pt"
    save_checkpoint(path, {"network": "tiny", "arch_file": main, "arch_sources": sources, "variant": None,
                           "params": {}, "input": [3, 32, 32], "classes": classes, "normalize": NORMALIZE,
                           "eval_resize": 36, "model": model.state_dict(), "epoch": 3, "config": {}, "metrics": {}})
    return path, model


def random_image(path, seed, size=(44, 38)):
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (size[1], size[0], 3), generator=g, dtype=torch.uint8)
    Image.fromarray(pixels.numpy()).save(path)
    return path


def direct_logits(model, path):
    """torch and torchvision, by hand: the eval view of one file, then the model."""
    view = T.Compose([T.Resize(36), T.CenterCrop(32), T.ToTensor(), T.Normalize(NORMALIZE["mean"], NORMALIZE["std"])])
    with torch.no_grad():
        return model(view(Image.open(path).convert("RGB"))[None])[0]


@pytest.fixture
def tree(tmp_path):
    """data/train and data/val, 6 images per class in val (eval must pick val/)."""
    files = []
    for split, n in (("train", 1), ("val", 6)):
        for label, name in enumerate(CLASSES):
            (tmp_path / "data" / split / name).mkdir(parents=True)
            for i in range(n):
                path = random_image(tmp_path / "data" / split / name / f"{i}.png", seed=100 * label + i)
                if split == "val":
                    files.append((path, label))
    return tmp_path / "data", files


def test_eval_equals_a_direct_torch_computation(tmp_path, tree):
    checkpoint, model = make_checkpoint(tmp_path)
    data, files = tree
    (data / "val" / "dog" / "broken.png").write_bytes(b"\x89PNG not an image")
    result = evaluate(checkpoint, data, batch=4)

    confusion = torch.zeros(3, 3, dtype=torch.int64)
    for path, label in files:
        confusion[label, int(direct_logits(model, path).argmax())] += 1
    assert result["confusion"] == confusion.tolist()
    assert result["images"] == 18 and result["skipped"] == 1 and result["data"] == str(data / "val")
    assert result["accuracy"] == pytest.approx(int(confusion.diag().sum()) / 18)
    assert [row["accuracy"] for row in result["per_class"]] == pytest.approx(
        [int(confusion[i, i]) / 6 for i in range(3)])
    text = format_evaluation(result)
    assert f"accuracy {result['accuracy']:.2%}" in text and "confusion matrix" in text


def test_eval_refuses_classes_the_network_does_not_know(tmp_path, tree):
    checkpoint, _ = make_checkpoint(tmp_path)
    data, _ = tree
    (data / "val" / "owl").mkdir()
    random_image(data / "val" / "owl" / "0.png", 7)
    with pytest.raises(InferError, match="not trained on: owl"):
        evaluate(checkpoint, data)


def test_predict_top1_is_the_argmax_of_the_logits(tmp_path):
    checkpoint, model = make_checkpoint(tmp_path)
    images = [random_image(tmp_path / f"{i}.jpg", seed=i, size=(60 + i, 40)) for i in range(5)]
    results = predict(checkpoint, [*images, tmp_path / "missing.jpg"], top=2)
    for path, result in zip(images, results):
        logits = direct_logits(model, path)
        probabilities = torch.softmax(logits, dim=0)
        assert result["top"][0]["index"] == int(logits.argmax())
        assert result["top"][0]["class"] == CLASSES[int(logits.argmax())]
        assert [t["probability"] for t in result["top"]] == pytest.approx(probabilities.sort(descending=True)[0][:2].tolist(),
                                                                         abs=1e-5)
    assert results[-1] == {"image": str(tmp_path / "missing.jpg"), "error": "no such file"}  # an error, not a crash
    assert len(predict(checkpoint, images[:1], top=10)[0]["top"]) == 3  # capped at the class count


def test_cli_eval_json_and_predict(tmp_path, tree, capsys):
    checkpoint, model = make_checkpoint(tmp_path)
    data, files = tree
    assert main(["eval", str(checkpoint), "--data", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["confusion"] == evaluate(checkpoint, data)["confusion"]

    image = files[0][0]
    shown = run_archc("predict", str(checkpoint), str(image), "--top", "1")  # once through the console entry
    assert shown.returncode == 0, shown.stderr
    assert CLASSES[int(direct_logits(model, image).argmax())] in shown.stdout.splitlines()[1]

    for args in (["eval", str(tmp_path / "nope.pt"), "--data", str(data)],
                 ["predict", str(image), str(image)],  # an image is not a checkpoint
                 ["eval", str(checkpoint), "--data", str(tmp_path / "nowhere")],
                 ["predict", str(checkpoint), str(image), "--top", "0"]):
        assert main(args) == 1, args
        assert "archc: error:" in capsys.readouterr().err


def test_predict_a_folder_with_csv_output(tmp_path):
    import csv

    checkpoint, model = make_checkpoint(tmp_path)
    folder = tmp_path / "photos"
    (folder / "inner").mkdir(parents=True)
    images = [random_image(folder / "b.png", seed=1), random_image(folder / "inner" / "a.jpg", seed=2),
              random_image(folder / "c.jpg", seed=3)]
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    (folder / "loop").symlink_to(folder)  # not followed, as training does not
    result = run_archc("predict", str(checkpoint), str(folder), "--top", "2", "--csv", str(tmp_path / "out.csv"))
    assert result.returncode == 1, result.stderr  # one image is unreadable
    assert f"wrote {tmp_path / 'out.csv'}: 3 images predicted, 1 unreadable, 2 skipped" in result.stdout
    rows = list(csv.DictReader((tmp_path / "out.csv").open()))
    assert [row["image"] for row in rows] == [str(folder / name) for name in
                                              ("b.png", "broken.png", "c.jpg", "inner/a.jpg", "notes.txt", "loop")]
    for path in images:  # in path order: b.png, c.jpg, inner/a.jpg
        row = next(row for row in rows if row["image"] == str(path))
        probabilities = torch.softmax(direct_logits(model, path), dim=0)
        best = probabilities.sort(descending=True)
        assert [row["class_1"], row["class_2"]] == [CLASSES[int(i)] for i in best.indices[:2]]
        assert float(row["probability_1"]) == pytest.approx(float(best.values[0]), abs=1e-5) and row["error"] == ""
    errors = {row["image"].rsplit("/", 1)[-1]: row["error"] for row in rows if row["error"]}
    assert errors == {"broken.png": "not in an image format PIL reads", "notes.txt": "not an image file",
                      "loop": "a link to a folder: not followed"}


def test_predict_folder_batches_give_the_single_image_logits(tmp_path):
    checkpoint, model = make_checkpoint(tmp_path)
    images = [random_image(tmp_path / f"{i}.png", seed=i, size=(40 + i, 50)) for i in range(7)]
    batched = [r for r in predict(checkpoint, [tmp_path], top=3, batch=3) if "skipped" not in r]  # not tiny.arch
    single = [predict(checkpoint, [path], top=3)[0] for path in images]
    assert [r["image"] for r in batched] == [str(p) for p in images]
    for a, b in zip(batched, single):
        assert [t["index"] for t in a["top"]] == [t["index"] for t in b["top"]]
        assert [t["probability"] for t in a["top"]] == pytest.approx([t["probability"] for t in b["top"]], abs=1e-5)


def test_a_csv_cell_is_never_read_as_a_formula(tmp_path):
    import io

    from archc.runtime.infer import write_csv

    out = io.StringIO()
    write_csv([{"image": "=HYPERLINK(1).png", "top": [{"class": "@cat", "index": 0, "probability": 0.5}]}], out)
    assert out.getvalue().splitlines()[1] == "'=HYPERLINK(1).png,'@cat,0.500000,"


def test_json_of_a_checkpoint_with_nan_weights_is_json(tmp_path, tree, capsys):
    """Python's json prints NaN, which no JSON reader accepts: every --json goes through archc.jsontext."""
    checkpoint, _ = make_checkpoint(tmp_path)
    state = torch.load(checkpoint, weights_only=True)
    state["model"] = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state["model"].items()}
    torch.save(state, checkpoint)
    data, files = tree
    for args in (["predict", str(checkpoint), str(files[0][0]), "--json"], ["eval", str(checkpoint), "--data", str(data), "--json"]):
        assert main(args) == 0, args
        text = capsys.readouterr().out
        assert "NaN" not in text and ('"nan"' in text or args[0] == "eval")  # eval's figures are counts
        json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in {args[0]} --json"))

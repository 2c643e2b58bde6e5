"""graph, port and export take the trainer's checkpoints (issue 15): the checkpoint's network at its settings,
its classes and normalisation in the ONNX metadata, and weights that do not fit explained with the
--variant or num_classes that would fit, found by building (not guessed)."""

import json
import warnings

import pytest
import torch
from archc.runtime.checkpoint import arch_sources, save_checkpoint
from oracles import randomise
from test_predict import NORMALIZE, make_checkpoint

import archc
from archc.cli import main

SMALL = """
block unit(out "#out"):
    conv(out, 3, bias = false)
    batchnorm()
    relu()

network small(num_classes = 10, n = 1)
input 3 x 16 x 16

variant one(n = 1)
variant three(n = 3)

features:
    | operator | #out | n |
    | unit     | 8    | n |

classifier:
    global_avgpool()
    flatten()
    linear(num_classes)
"""


def small_checkpoint(folder, variant="three", classes=("a", "b", "c", "d")):
    """A checkpoint as archc train writes one, of small.arch at `variant` with one class per name."""
    arch = folder / "small.arch"
    arch.write_text(SMALL)
    model = randomise(archc.build(arch, variant=variant, num_classes=len(classes)), seed=1)
    main_file, sources = arch_sources(arch)
    path = folder / "run" / "best.pt"
    save_checkpoint(path, {"network": "small", "arch_file": main_file, "arch_sources": sources, "variant": variant,
                           "params": {"num_classes": len(classes)}, "input": [3, 16, 16], "classes": list(classes),
                           "normalize": NORMALIZE, "eval_resize": 18, "model": model.state_dict(), "epoch": 1,
                           "config": {}, "metrics": {}})
    return arch, path, model


@pytest.mark.parametrize("how", ["checkpoint as FILE", "--weights"])
def test_export_of_a_trainer_checkpoint_carries_its_classes_and_normalisation(tmp_path, capsys, how):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    checkpoint, model = make_checkpoint(tmp_path)
    out = tmp_path / "tiny.onnx"
    args = [str(checkpoint)] if how == "checkpoint as FILE" else [str(tmp_path / "tiny.arch"), "--weights",
                                                                   str(checkpoint)]
    assert main(["export", *args, "--onnx", str(out)]) == 0
    assert "classes, normalisation and view" in capsys.readouterr().out
    session = ort.InferenceSession(str(out))
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["classes"]) == ["cat", "dog", "fox"] and json.loads(meta["normalize"]) == NORMALIZE
    assert meta["eval_resize"] == "36" and json.loads(meta["input"]) == [3, 32, 32] and meta["network"] == "tiny"
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    (logits,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        expected = model(x)
    assert (torch.from_numpy(logits) - expected).abs().max() <= 1e-4 * expected.abs().max()


def test_export_with_the_wrong_variant_says_which_settings_fit(tmp_path, capsys):
    arch, checkpoint, _ = small_checkpoint(tmp_path)
    assert main(["export", str(arch), "--variant", "one", "--weights", str(checkpoint), "--onnx",
                 str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert "the model has 8 tensors, the reference 20" in err and "Missing key" not in err and len(err) < 400
    assert "the checkpoint holds small (variant three, num_classes=4)" in err
    assert err.rstrip().endswith("the weights fit small.arch with --variant three --set num_classes=4")
    assert not (tmp_path / "x.onnx").exists()


def test_port_suggests_the_variant_whose_tensor_count_fits(tmp_path, capsys):
    arch, _, model = small_checkpoint(tmp_path, variant="three", classes=[str(i) for i in range(10)])
    torch.save(model.state_dict(), tmp_path / "state.pt")
    assert main(["port", str(arch), "--from", str(tmp_path / "state.pt"), "-o", str(tmp_path / "out.pt")]) == 1
    err = capsys.readouterr().err
    assert err == ("archc: error: the model has 8 tensors, the reference 20; "
                   "the weights fit small.arch with --variant three\n")
    assert main(["port", str(arch), "--variant", "three", "--from", str(tmp_path / "state.pt"), "-o",
                 str(tmp_path / "out.pt")]) == 0
    state = torch.load(tmp_path / "out.pt", weights_only=True)
    assert all(torch.equal(a, b) for a, b in zip(state.values(), model.state_dict().values()))
    other = tmp_path / "other.arch"
    other.write_text(SMALL.replace("unit     | 8", "unit     | 6"))
    assert main(["port", str(other), "--from", str(tmp_path / "state.pt"), "-o", str(tmp_path / "o.pt")]) == 1
    assert "no variant of other.arch has their 20 tensors ((default): 8, one: 8, three: 20)" in capsys.readouterr().err


def test_port_takes_a_trainer_checkpoint_at_its_settings(tmp_path, capsys):
    arch, checkpoint, model = small_checkpoint(tmp_path)
    assert main(["port", str(arch), "--from", str(checkpoint), "-o", str(tmp_path / "out.pt")]) == 0
    assert "with the checkpoint's settings: --variant three --set num_classes=4 --input 3x16x16" in \
        capsys.readouterr().out
    state = torch.load(tmp_path / "out.pt", weights_only=True)
    assert all(torch.equal(a, b) for a, b in zip(state.values(), model.state_dict().values()))


def test_graph_draws_a_checkpoints_network(tmp_path):
    _, checkpoint, _ = small_checkpoint(tmp_path)
    assert main(["graph", str(checkpoint), "-o", str(tmp_path / "g.dot")]) == 0
    dot = (tmp_path / "g.dot").read_text()
    assert dot.count("conv") >= 3  # variant three: three units, as the checkpoint was trained
    assert main(["graph", str(checkpoint), "--variant", "one", "-o", str(tmp_path / "h.dot")]) == 2


def test_check_and_build_say_a_checkpoint_is_not_arch_text(tmp_path, capsys):
    _, checkpoint, _ = small_checkpoint(tmp_path)
    torch.save({"w": torch.zeros(2)}, tmp_path / "state.pt")
    for command in ("check", "build"):
        assert main([command, str(checkpoint)]) == 2
        err = capsys.readouterr().err
        assert f"{checkpoint} is an archc checkpoint, not .arch text" in err and "PK" not in err
    assert main(["check", str(tmp_path / "state.pt")]) == 2
    assert "is a zip archive (as torch.save writes), not .arch text" in capsys.readouterr().err


def test_no_future_warning_leaks_from_torchvisions_googlenet():
    from archc.compiler.export import torchvision_reference

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        torchvision_reference("googlenet")
    assert not [w for w in seen if issubclass(w.category, FutureWarning)]


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"archc {archc.__version__} (Python ")
    from importlib import metadata

    assert metadata.version("archc") == archc.__version__  # pyproject.toml reads archc.__version__


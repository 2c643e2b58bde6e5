"""Issue 15's rough edges in `archc check`: seed 000's largest batch, units that must be written, sizes in
the wrong order, a misspelt heading, a missing stride, an unknown op with nothing close."""

import json

import pytest
from conftest import ZOO, run_archc

import archc
from archc.compiler.pipeline import UsageError


def test_seed_000s_largest_batch_on_its_6_gb_card_is_448():
    # Seed 000: 32 × floor((6144 − 7.96 − 19.27) / 416.31) = 448, torchinfo's MB (10⁶ bytes) at batch 32
    report = archc.check(ZOO / "nin_v2.arch", num_classes=3, batch=32, memory="6144MB", batch_multiple=32)
    assert (report.memory.params_mb, report.memory.input_mb, report.memory.forward_backward_mb) == (7.96, 19.27, 416.31)
    assert report.max_batch == 448
    assert archc.check(ZOO / "nin_v2.arch", num_classes=3, batch=32, memory="6144MB").max_batch == 450
    assert archc.check(ZOO / "nin_v2.arch", num_classes=3, memory="6GiB", batch_multiple=32).max_batch % 32 == 0


def test_the_batch_multiple_on_the_command_line():
    result = run_archc("check", "architectures/nin_v2.arch", "--set", "num_classes=3", "--batch", "32",
                       "--memory", "6144MB", "--batch-multiple", "32")
    assert result.returncode == 0, result.stderr
    assert "largest batch in 5.72 GiB: 448 (a multiple of 32)" in result.stdout
    data = json.loads(run_archc("check", "architectures/nin_v2.arch", "--memory", "6GiB", "--batch-multiple", "64",
                                "--json").stdout)
    assert data["max_batch"] % 64 == 0 and data["batch_multiple"] == 64 and data["training"]["max_batch"] % 64 == 0


@pytest.mark.parametrize("memory", ["6", "0", "6144"])
def test_a_memory_size_needs_its_unit(memory):
    result = run_archc("check", "architectures/nin_v2.arch", "--memory", memory)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no unit" in result.stderr or "out of range" in result.stderr
    assert archc.check(ZOO / "nin_v2.arch", memory="4096B").max_batch == 0  # B says bytes


def test_an_input_written_height_width_channels_is_refused_and_said_the_right_way():
    result = run_archc("check", "architectures/nin_v2.arch", "--input", "224x224x3")
    assert result.returncode == 2 and "C×H×W" in result.stderr and "3x224x224" in result.stderr
    with pytest.raises(UsageError):
        archc.check(ZOO / "nin_v2.arch", input="64x64x1")
    assert archc.check(ZOO / "nin_v2.arch", input="3x64x64").input == [3, 64, 64]  # the right order still reads


def test_an_input_line_written_height_width_channels_is_e209_with_the_fix():
    text = (ZOO / "nin_v2.arch").read_text(encoding="utf-8").replace("input 3 x 224 x 224", "input 224 x 224 x 3")
    report = archc.check(ZOO / "nin_v2.arch", text=text)
    (error,) = [d for d in report.diagnostics if d.severity == "error"]
    assert error.code == "E209" and "input 3 x 224 x 224" in error.hint

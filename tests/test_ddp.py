"""DDP on CPU (gloo): `torchrun --nproc_per_node 2 -m archc train` matches one process.

Each process takes half of every global batch, and the random crops are drawn
for the global batch, so with a network without batch norm (whose statistics
would be per process) two processes compute the same steps as one, up to the
order of float additions.
"""

import json
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from conftest import ROOT, run_archc

PLAIN = """\
network plain(num_classes = 10)
input 1 x 16 x 16

features:
    conv(16, 3)
    relu()
    conv(32, 3, stride = 2)
    relu()

head:
    global_avgpool()
    flatten()
    linear(num_classes)
"""
ARGS = ["--input", "1x16x16", "--epochs", "2", "--batch", "32", "--optimizer", "sgd", "--lr", "0.05",
        "--warmup", "0"]


@pytest.mark.parametrize("compile_flags", [[], ["--compile", "auto"]], ids=["eager", "compile-auto"])
def test_two_gloo_processes_match_one(tmp_path, compile_flags):
    """With --compile auto the two processes also run the compile trial (real inductor, about 10 s more):
    both time the same steps, decide on the sums, and their training still matches one eager process."""
    net = tmp_path / "plain.arch"
    net.write_text(PLAIN)
    one = run_archc("train", str(net), *ARGS, "--out", str(tmp_path / "one"), timeout=300)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "archc", "train", str(net), *ARGS, *compile_flags, "--out", str(tmp_path / "two")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert two.returncode == 0, two.stderr
    if compile_flags:
        compiled = json.loads((tmp_path / "two" / "summary.json").read_text())["compile"]
        assert compiled["mode"] == "auto" and compiled["decided"], compiled
        assert two.stdout.count("torch.compile trial:") == 1  # said once, by rank 0
    assert "× 2 processes" in two.stdout and two.stdout.count("epoch 2/2") == 1  # rank 0 alone reports
    expected = torch.load(tmp_path / "one" / "last.pt", weights_only=True)
    actual = torch.load(tmp_path / "two" / "last.pt", weights_only=True)
    for key, value in expected["model"].items():
        assert torch.allclose(value, actual["model"][key], rtol=1e-3, atol=1e-5), key
    for a, b in zip(expected["metrics"], actual["metrics"]):
        assert abs(a["val_accuracy"] - b["val_accuracy"]) <= 1 / 360  # at most one of the 360 images differs
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)

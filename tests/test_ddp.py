"""DDP on CPU (gloo): `torchrun --nproc_per_node 2 -m archc train` matches one process.

Each process takes half of every global batch, and the random crops are drawn
for the global batch, so with a network without batch norm (whose statistics
would be per process) two processes compute the same steps as one, up to the
order of float additions. The run learns (0.94 validation accuracy in two
epochs), so the weights move by about their own scale, and the comparison is
made at a tolerance derived from float32 rounding (TOLERANCE below).
"""

import json
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

import archc
from conftest import ROOT, run_archc

PLAIN = """\
network plain(num_classes = 10)
input 1 x 16 x 16

features:
    conv(16, 3)
    tanh()
    conv(32, 3, stride = 2)
    tanh()

head:
    flatten()
    linear(num_classes)
"""
ARGS = ["--input", "1x16x16", "--epochs", "2", "--batch", "32", "--optimizer", "sgd", "--lr", "0.05",
        "--warmup", "0"]

# How far the two runs may drift apart, as a fraction of each tensor's largest magnitude. One process sums a
# step's gradient over the 32 images in one order; two sum 16 + 16 and gloo adds the halves; inductor's fused
# kernels (--compile auto) reorder further. The conv weights' gradients are reductions over N·H·W = 32·16·16 =
# 8,192 products, and rounding errors of a sum of n terms taken in two orders differ by about √n·u of its
# magnitude (they add as a random walk; u = 2⁻²⁴ ≈ 6.0e-8 for float32): ≈ 90·u ≈ 5.4e-6 of each step. In a
# stable run (the loss falls every epoch) these per-step differences add up along the path the weights travel,
# about their own scale here (asserted below), so the runs should agree to ≈ 5e-6 of the weights' scale — if the
# activations are smooth, hence tanh: at ReLU's kink a pre-activation within rounding of 0 falls on the other
# side in one run, and that step's gradients part by a whole image's share. With ReLU the eager runs differed by
# 1.5e-7 after one epoch but 3.8e-4 after two on an Intel Xeon (the test failed there), by 1.2e-6 on an AMD EPYC;
# with tanh by 2.1e-6 on the Xeon. The tolerance allows 10× the estimate; a real mistake (a shard trained twice,
# gradients summed instead of averaged, crops drawn per process) moves the weights by a sizeable part of their
# scale, thousands of times more.
TOLERANCE = 5e-5


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The network and one eager process's run of it: what both DDP runs below are compared with."""
    folder = tmp_path_factory.mktemp("one")
    net = folder / "plain.arch"
    net.write_text(PLAIN)
    one = run_archc("train", str(net), *ARGS, "--out", str(folder / "one"), timeout=300)
    assert one.returncode == 0, one.stderr
    return net, folder / "one"


@pytest.mark.slow
@pytest.mark.parametrize("compile_flags", [[], ["--compile", "auto"]], ids=["eager", "compile-auto"])
def test_two_gloo_processes_match_one(tmp_path, compile_flags, one_process):
    """With --compile auto the two processes also run the compile trial (real inductor, about 10 s more):
    both time the same steps, decide on the sums, and their training still matches one eager process."""
    net, one = one_process
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "archc", "train", str(net), *ARGS, *compile_flags, "--out", str(tmp_path / "two")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert two.returncode == 0, two.stderr
    if compile_flags:
        compiled = json.loads((tmp_path / "two" / "summary.json").read_text())["compile"]
        assert compiled["mode"] == "auto" and compiled["decided"], compiled
        assert two.stdout.count("torch.compile trial:") == 1  # said once, by rank 0
    assert "× 2 processes" in two.stdout and two.stdout.count("epoch 2/2") == 1  # rank 0 alone reports
    expected = torch.load(one / "last.pt", weights_only=True)
    actual = torch.load(tmp_path / "two" / "last.pt", weights_only=True)
    assert expected["metrics"][-1]["val_accuracy"] > 0.9  # it learns: the comparison is of trained weights
    torch.manual_seed(0)  # the trainer's seed: the weights both runs started from
    start = archc.build(net, input=(1, 16, 16), num_classes=10).state_dict()
    for key, value in expected["model"].items():
        scale = value.abs().max()
        assert (value - start[key]).abs().max() > 0.3 * scale, key  # trained: each tensor moved that far
        assert (value - actual["model"][key]).abs().max() <= TOLERANCE * scale, key
    for a, b in zip(expected["metrics"], actual["metrics"]):
        assert abs(a["val_accuracy"] - b["val_accuracy"]) <= 1 / 360  # at most one of the 360 images differs
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)

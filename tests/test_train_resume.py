"""A run killed mid-training and resumed ends with exactly the weights of an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch")

from conftest import ROOT, run_archc
from test_train import TINY, tiny_net

# stochastic on purpose: dropout draws from the global RNG (restored from last.pt), crops from the epoch's generator
DROPOUT_NET = TINY.replace("    flatten()\n", "    flatten()\n    dropout(0.3)\n")
ARGS = ["--input", "1x16x16", "--epochs", "4", "--batch", "32", "--lr", "0.003",
        "--schedule", "plateau", "--seed", "3"]


def weights(path):
    return torch.load(path, weights_only=True)["model"]


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path):
    net = tiny_net(tmp_path, DROPOUT_NET)
    whole = run_archc("train", str(net), *ARGS, "--out", str(tmp_path / "whole"), timeout=300)
    assert whole.returncode == 0, whole.stderr

    killed = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "archc", "train", str(net), *ARGS, "--out", str(killed)],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not (killed / "last.pt").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    interrupted_at = torch.load(killed / "last.pt", weights_only=True)["epoch"]
    assert interrupted_at < 4  # the kill came mid-run

    (killed / ".last.pt.x7k2q9.tmp").write_bytes(b"half a checkpoint")  # as a kill during the write leaves
    resumed = run_archc("train", str(net), "--out", str(killed), "--resume", timeout=300)  # settings from the run
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {killed} after epoch {interrupted_at} of 4" in resumed.stdout
    expected, actual = weights(tmp_path / "whole" / "last.pt"), weights(killed / "last.pt")
    assert expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key
    def losses(run):  # epoch, train loss and accuracy, val loss and accuracy: not the timings
        return [row.split(",")[:5] for row in (run / "metrics.csv").read_text().splitlines()]

    assert losses(killed) == losses(tmp_path / "whole") and len(losses(killed)) == 5
    assert not list(killed.glob(".*.tmp"))  # the stale temp file is gone, and the run left none

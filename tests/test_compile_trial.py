"""The trainer's `compile = "auto"` (runtime/compile_trial.py): eager and compiled steps timed on the
run's first steps, the faster kept. The decision logic on a fake clock; then real runs on the digits,
with a slowed stand-in for torch.compile and with torch.compile itself (inductor, on the CPU)."""

import json
import time

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from archc.runtime import compile_trial
from archc.runtime.compile_trial import COMPILED, EAGER, CompileTrial, Runners
from archc.runtime.config import ConfigError, TrainConfig, load_config, merge
from archc.runtime.run import compile_mode, train, tune_backends
from test_train import FAST, quiet, tiny_net

from archc.cli import main


class FakeClock:
    """Time moves only when a step runs: each runner's steps cost what `cost` says."""

    def __init__(self, cost: dict[str, float]):
        self.now, self.cost = 0.0, cost

    def __call__(self) -> float:
        return self.now


def run_steps(trial: CompileTrial, clock: FakeClock, count: int, images: int = 8) -> list[str]:
    names = []
    for _ in range(count):
        name = trial.next()
        clock.now += clock.cost[name]
        trial.done(images)
        names.append(name)
    return names


@pytest.mark.parametrize("eager_s, compiled_s, expected", [(2.0, 1.0, COMPILED), (1.0, 1.5, EAGER)])
def test_the_faster_runner_is_kept(eager_s, compiled_s, expected):
    clock = FakeClock({EAGER: eager_s, COMPILED: compiled_s})
    trial = CompileTrial(clock=clock)
    names = run_steps(trial, clock, trial.steps_needed)
    # compile first (untimed), then eager's warm-up, then blocks of 5 in alternating order
    assert names == [COMPILED, EAGER] + [EAGER] * 5 + [COMPILED] * 10 + [EAGER] * 10 + [COMPILED] * 5
    assert trial.steps_needed == 32 and trial.chosen == expected
    assert trial.rates() == {EAGER: pytest.approx(8 / eager_s), COMPILED: pytest.approx(8 / compiled_s)}
    assert run_steps(trial, clock, 7) == [expected] * 7


def test_undecided_until_the_last_block_ends():
    clock = FakeClock({EAGER: 1.0, COMPILED: 2.0})
    trial = CompileTrial(clock=clock)
    run_steps(trial, clock, trial.steps_needed - 1)
    assert trial.chosen is None and trial.report() == {"chosen": EAGER, "decided": False}
    assert "ended before the trial did (it needs 32 steps)" in trial.message()


def test_a_block_cut_by_the_end_of_an_epoch_is_timed_again():
    clock = FakeClock({EAGER: 1.0, COMPILED: 1.0})
    trial = CompileTrial(clock=clock)
    run_steps(trial, clock, 2 + 3)  # warm-up, then 3 of the first eager block's 5 steps
    clock.now += 100.0  # validation between epochs: must not count
    trial.new_epoch()
    names = run_steps(trial, clock, 6 * 5)  # all six blocks: the cut one again, then the five after it
    assert names[:5] == [EAGER] * 5  # the cut block, from its start
    assert trial.chosen is not None and trial.seconds[EAGER] == [5.0, 5.0, 5.0]


def test_every_process_decides_on_the_sums_over_processes():
    """Here compiled is a little faster, but the other process (its figures added by `reduce`, as all_sum
    does) finds eager much faster: the sums choose eager, and the rates are over both processes."""
    clock = FakeClock({EAGER: 1.0, COMPILED: 0.9})
    other = torch.tensor([1.0] * 3 + [4.0] * 3 + [40.0] * 6, dtype=torch.float64)  # its seconds, then images
    trial = CompileTrial(clock=clock, reduce=lambda totals: totals + other)
    run_steps(trial, clock, trial.steps_needed)
    assert trial.chosen == EAGER
    assert trial.rates() == {EAGER: pytest.approx(80 / 6.0), COMPILED: pytest.approx(80 / 8.5)}


class Slowed(torch.nn.Module):
    """A stand-in for torch.compile's module that computes the same, slower."""

    def __init__(self, module, delay: float):
        super().__init__()
        self.module, self.delay = module, delay

    def forward(self, x):
        time.sleep(self.delay)
        return self.module(x)


def test_runners_follow_the_mode():
    module = torch.nn.Linear(2, 2)
    off, on = Runners(module, "off"), Runners(module, "on", log=quiet)
    assert off.for_step() is module and off.for_eval() is module and COMPILED not in off.runners
    assert on.for_step() is on.runners[COMPILED] is on.for_eval() and on.runners[COMPILED] is not module
    assert on.report() == {"mode": "on", "chosen": COMPILED}
    assert [compile_mode(s, cuda) for s, cuda in [(None, True), (None, False), ("auto", False), (True, False),
                                                  (False, True)]] == ["auto", "off", "auto", "on", "off"]


def test_a_slower_compiled_module_is_dropped_by_a_real_run(tmp_path, monkeypatch):
    monkeypatch.setattr(compile_trial.torch, "compile", lambda module: Slowed(module, 0.05))
    said = []
    summary = train(tiny_net(tmp_path), TrainConfig(epochs=2, out=str(tmp_path / "run"), compile="auto", **FAST),
                    log=said.append)
    chosen = summary["compile"]
    assert chosen["mode"] == "auto" and chosen["decided"] and chosen["chosen"] == EAGER
    assert chosen["eager_images_per_s"] > chosen["compiled_images_per_s"]  # 32 images in ≥ 0.25 s a block
    assert any(line.startswith("torch.compile trial: eager") and line.endswith("training eager from here")
               for line in said)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["compile"] == chosen


def test_torch_compile_itself_trains_in_the_trial(tmp_path):
    """inductor on the CPU: the trial's alternating eager and compiled steps share weights and optimizer,
    and the run learns (about 20 s, most of it compiling)."""
    summary = train(tiny_net(tmp_path), TrainConfig(epochs=3, out=str(tmp_path / "run"), compile="auto", **FAST),
                    log=quiet)
    chosen = summary["compile"]
    assert chosen["decided"] and chosen["eager_images_per_s"] > 0 and chosen["compiled_images_per_s"] > 0
    faster = max((EAGER, COMPILED), key=lambda name: chosen[f"{name}_images_per_s"])
    assert chosen["chosen"] == faster
    assert summary["val_accuracy"] >= 0.8  # eager alone: about 0.95 after 3 epochs


@pytest.mark.parametrize("flags, expected", [(["--compile", "auto"], "auto"), (["--compile"], True),
                                             (["--no-compile"], False), ([], None)])
def test_compile_flags(tmp_path, monkeypatch, flags, expected):
    seen = {}
    monkeypatch.setattr("archc.runtime.run.train", lambda file, cfg, resume: seen.setdefault("cfg", cfg))
    assert main(["train", str(tiny_net(tmp_path)), *flags]) == 0
    assert seen["cfg"].compile == expected


def test_compile_auto_in_a_toml_file(tmp_path):
    config = tmp_path / "train.toml"
    config.write_text('compile = "auto"\n')
    assert merge(load_config(config), {}).compile == "auto"
    config.write_text('compile = "sometimes"\n')
    with pytest.raises(ConfigError, match=":1: compile"):
        load_config(config)


def test_a_bad_compile_value_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["train", str(tiny_net(tmp_path)), "--compile", "maybe"])
    assert exit.value.code == 2
    assert "'maybe': write --compile (always), --compile auto or --no-compile" in capsys.readouterr().err


def test_cudnn_times_its_algorithms_on_a_gpu_only(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    tune_backends(torch.device("cpu"))
    assert torch.backends.cudnn.benchmark is False
    tune_backends(torch.device("cuda"))  # a device object: no GPU needed to decide
    assert torch.backends.cudnn.benchmark is True


class Recording(torch.nn.Module):
    """A stand-in for torch.compile's module that notes the batch sizes it is given."""

    def __init__(self, module, sizes: list):
        super().__init__()
        self.module, self.sizes = module, sizes

    def forward(self, x):
        self.sizes.append(len(x))
        return self.module(x)


def test_validations_last_smaller_batch_runs_eager_not_compiled_again(tmp_path, monkeypatch):
    """torch.compile sees a new batch size as a new graph: validation's last batch (the digits' 360 images
    in batches of 32 end with 8) would compile the network a third time, with dynamic shapes. The
    compiled module gets the full batches only; the summary's accuracy still counts every image."""
    sizes = []
    monkeypatch.setattr(compile_trial.torch, "compile", lambda module: Recording(module, sizes))
    summary = train(tiny_net(tmp_path), TrainConfig(epochs=1, out=str(tmp_path / "run"), compile=True, **FAST),
                    log=quiet)
    val = summary["val_images"]
    assert summary["compile"]["chosen"] == COMPILED and val % 32 == 8
    # training's steps, then two validations' (the epoch's, and the confusion matrix's) full batches
    assert sizes == [32] * (summary["steps_per_epoch"] + 2 * (val // 32))
    assert sum(map(sum, summary["confusion"])) == val

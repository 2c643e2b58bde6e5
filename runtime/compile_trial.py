"""`torch.compile`, or not: time both on the run's first steps and keep the faster.

Compiling is not always a gain. On the lent H100 (issue 5's reference figures, batch 256, bf16)
it makes ResNet-50 42% faster but MobileNetV3-Small 15% slower (10,589 eager vs 9,022 img/s),
and where the line falls depends on the network, the batch, the input and the GPU. So the
trainer's default on a GPU (`compile = "auto"`) decides by measuring, on the real training steps:

    step 1        compiled (compiles; not timed)
    step 2        eager (cuDNN's autotuning; not timed)
    then          BLOCKS rounds of BLOCK_STEPS eager steps and BLOCK_STEPS compiled steps, each
                  block timed with the device synchronised at both ends, the order swapped each
                  round so drift in the machine's speed falls on both alike

then keeps the runner with the higher median block rate. Every trial step is a training step
(eager and compiled compute the same function on the same weights), so the trial costs only the
compile, which `compile = true` pays too, and a few synchronisations. A block cut by the end
of an epoch (validation runs in between) is dropped and timed again in the next epoch; a run
too short to finish the trial keeps eager. Under DDP every process times its own blocks and
the sums over processes decide, so all processes keep the same runner.

`CompileTrial` only counts and times; its caller runs the steps (the trainer through `Runners`,
benchmarks/train_throughput.py directly):

    trial = CompileTrial(sync=lambda: torch.cuda.synchronize())
    while ...:
        runner = runners[trial.next()]     # "eager" or "compiled"
        ...one training step with runner...
        trial.done(batch_images)
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

BLOCKS = 3  # timed blocks of each runner
BLOCK_STEPS = 5  # steps in a block
EAGER, COMPILED = "eager", "compiled"


class CompileTrial:
    def __init__(self, *, sync: Callable[[], None] = lambda: None, clock: Callable[[], float] = time.perf_counter,
                 blocks: int = BLOCKS, block_steps: int = BLOCK_STEPS,
                 reduce: Callable[[torch.Tensor], torch.Tensor] = lambda totals: totals):
        self.sync, self.clock, self.reduce = sync, clock, reduce
        self.block_steps = block_steps
        # the trial's schedule: two untimed warm-up steps, then the blocks in alternating order
        self.plan: list[tuple[str, bool]] = [(COMPILED, False), (EAGER, False)]
        for k in range(blocks):
            for name in ((EAGER, COMPILED) if k % 2 == 0 else (COMPILED, EAGER)):
                self.plan.append((name, True))
        self.seconds: dict[str, list[float]] = {EAGER: [], COMPILED: []}
        self.images: dict[str, list[int]] = {EAGER: [], COMPILED: []}
        self.chosen: str | None = None
        self._stage = 0  # index into self.plan
        self._done_in_stage = 0  # steps of the current stage already run
        self._started: float | None = None
        self._block_images = 0

    @property
    def steps_needed(self) -> int:
        """Steps the trial takes when no block is cut by the end of an epoch."""
        return sum(self.block_steps if timed else 1 for _, timed in self.plan)

    def next(self) -> str:
        """The runner for the next step."""
        if self.chosen is not None:
            return self.chosen
        name, timed = self.plan[self._stage]
        if timed and self._done_in_stage == 0:
            self.sync()
            self._started = self.clock()
            self._block_images = 0
        return name

    def done(self, images: int) -> None:
        """The step that `next()` asked for has been run, on `images` images."""
        if self.chosen is not None:
            return
        name, timed = self.plan[self._stage]
        self._done_in_stage += 1
        self._block_images += images
        if timed and self._done_in_stage < self.block_steps:
            return
        if timed:
            self.sync()
            self.seconds[name].append(self.clock() - self._started)
            self.images[name].append(self._block_images)
        self._stage, self._done_in_stage = self._stage + 1, 0
        if self._stage == len(self.plan):
            self._decide()

    def new_epoch(self) -> None:
        """Validation runs between epochs: a block in progress is dropped and run again."""
        self._done_in_stage = 0

    def rates(self) -> dict[str, float]:
        """Median img/s of each runner's blocks (after the sum over processes, once decided)."""
        return {name: statistics.median(n / s for n, s in zip(self.images[name], self.seconds[name]))
                for name in (EAGER, COMPILED) if self.seconds[name]}

    def _decide(self) -> None:
        # every process's block seconds and images summed, so every process sees the same figures
        flat = torch.tensor([*self.seconds[EAGER], *self.seconds[COMPILED],
                             *self.images[EAGER], *self.images[COMPILED]], dtype=torch.float64)
        flat = self.reduce(flat)
        n = len(self.seconds[EAGER])
        m = len(self.seconds[COMPILED])
        self.seconds = {EAGER: flat[:n].tolist(), COMPILED: flat[n:n + m].tolist()}
        self.images = {EAGER: [int(v) for v in flat[n + m:2 * n + m].tolist()],
                       COMPILED: [int(v) for v in flat[2 * n + m:].tolist()]}
        rates = self.rates()
        self.chosen = COMPILED if rates[COMPILED] > rates[EAGER] else EAGER

    def report(self) -> dict:
        """For summary.json: what was chosen and the two rates it was chosen on (img/s of one process)."""
        rates = self.rates() if self.chosen is not None else {}
        return {"chosen": self.chosen or EAGER, "decided": self.chosen is not None,
                **{f"{name}_images_per_s": round(rate, 1) for name, rate in rates.items()}}

    def message(self) -> str:
        if self.chosen is None:
            return ("torch.compile trial: the run ended before the trial did (it needs "
                    f"{self.steps_needed} steps); validated eager")
        rates = self.rates()
        return (f"torch.compile trial: eager {rates[EAGER]:,.0f} img/s, compiled {rates[COMPILED]:,.0f} img/s "
                f"(median of {len(self.seconds[EAGER])} blocks of {self.block_steps} steps each): "
                f"training {self.chosen} from here")


class Runners:
    """The module the trainer's steps run, by `compile`: "off" eager, "on" compiled, "auto" the trial's pick."""

    def __init__(self, module: torch.nn.Module, mode: str, *, sync: Callable[[], None] = lambda: None,
                 reduce: Callable[[torch.Tensor], torch.Tensor] = lambda totals: totals,
                 log: Callable[[str], None] = print):
        self.mode, self.log = mode, log
        self.runners = {EAGER: module}
        if mode in ("on", "auto"):
            self.runners[COMPILED] = torch.compile(module)
        self.trial = CompileTrial(sync=sync, reduce=reduce) if mode == "auto" else None

    def for_step(self) -> torch.nn.Module:
        if self.trial is not None:
            return self.runners[self.trial.next()]
        return self.runners[COMPILED if self.mode == "on" else EAGER]

    def done(self, images: int) -> None:
        """After each training step: the trial counts it, and says once what it chose."""
        if self.trial is None or self.trial.chosen is not None:
            return
        self.trial.done(images)
        if self.trial.chosen is not None:
            self.log(self.trial.message())

    def train(self) -> None:
        """Training mode on every wrapper (DDP's own flag included), and a new epoch for the trial."""
        for runner in self.runners.values():
            runner.train()
        if self.trial is not None:
            self.trial.new_epoch()

    def end(self) -> None:
        """Says so if the run ended before the trial did."""
        if self.trial is not None and self.trial.chosen is None:
            self.log(self.trial.message())

    @property
    def eager(self) -> torch.nn.Module:
        """The module itself: validation's last, smaller batch runs on it (evaluate's `partial`)."""
        return self.runners[EAGER]

    def for_eval(self) -> torch.nn.Module:
        """Validation runs what training runs from here on (eager while the trial is under way)."""
        if self.trial is not None:
            return self.runners[self.trial.chosen or EAGER]
        return self.runners[COMPILED if self.mode == "on" else EAGER]

    def report(self) -> dict:
        if self.trial is None:
            return {"mode": self.mode, "chosen": COMPILED if self.mode == "on" else EAGER}
        return {"mode": self.mode, **self.trial.report()}

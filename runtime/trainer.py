"""The training loop of one split: epochs, checkpoints, resume, and the faults that stop a run.

`fit(plan, source, train, val, folder)` trains `plan`'s network on the
positions `train`, validates on `val` after every epoch, and leaves in `folder`:
last.pt (every epoch, with the RNG states, for --resume), best.pt (the best
validation accuracy so far), metrics.csv, TensorBoard events, curves.png,
confusion.png (best.pt on the validation set) and summary.json.

A non-finite loss, a validation loss or a tensor that is not finite after an
epoch, or CUDA running out of memory raises `TrainingStopped` with the message
for the user; last.pt then holds the last good epoch (runtime/run_state.py).
Ctrl-C raises `TrainingInterrupted`, which says where the last checkpoint is.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .bn_stats import needs_recompute, recompute, spread
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .compile_trial import Runners
from .config import TrainConfig
from .distributed import Dist, all_sum, barrier
from .finetune import Frozen, InitReport, freeze, head_groups, load_init
from .outputs import Events, plot_confusion, plot_curves, write_json, write_metrics_csv
from .progress import EpochProgress, report_epoch
from .run_state import rng_state, seed_everything, set_rng_state, why_not_good
from .runfolder import remove_stale_temp_files
from .schedule import Schedule, choose_batch, choose_warmup, decay_and_no_decay, make_optimizer

SUMMARY_CLASSES = 100  # summary.json lists the classes and the confusion matrix up to this many classes
NAN_CHECK_STEPS = 50  # on a GPU, look at the running loss every this many steps (each look waits for the GPU)


class TrainingStopped(Exception):
    """The run cannot go on (a non-finite loss, out of memory); the message says why and what to try."""


class TrainingInterrupted(Exception):
    """Ctrl-C: the run stopped; `checkpoint` (None if no epoch finished) holds `epoch` of `epochs`."""

    def __init__(self, checkpoint: Path | None, epoch: int, epochs: int):
        super().__init__(f"interrupted after epoch {epoch} of {epochs}")
        self.checkpoint, self.epoch, self.epochs = checkpoint, epoch, epochs


@dataclass
class Plan:
    """Everything about a run that does not depend on the split."""

    cfg: TrainConfig
    arch_file: Path
    network: str  # the file's stem
    title: str  # the network as the user named it (variant or stem)
    params: dict[str, Any]  # parameters set on the network (num_classes and --set)
    input: tuple[int, int, int]
    classes: list[str]
    normalize: dict
    eval_resize: int
    arch_main: str
    arch_sources: dict[str, str]
    device: torch.device
    dist: Dist = field(default_factory=Dist)
    amp: bool = False
    compile: str = "off"  # "off", "on", or "auto": time both on the first steps, keep the faster
    log: Any = print
    init_state: dict | None = None  # --init's state dict, read once for every fold (runtime/finetune.py)
    said: set = field(default_factory=set)  # messages already logged once for the run (not again per fold)

    def once(self, message: str) -> None:
        """Log `message` the first time only: K folds make the same decisions K times."""
        if message not in self.said:
            self.said.add(message)
            self.log(message)

    def payload(self) -> dict:
        """The checkpoint fields that describe the network and its data (runtime/checkpoint.py)."""
        return {"network": self.network, "arch_file": self.arch_main, "arch_sources": self.arch_sources,
                "variant": self.cfg.variant, "params": dict(self.params), "input": list(self.input),
                "classes": list(self.classes), "normalize": self.normalize, "eval_resize": self.eval_resize,
                "config": self.cfg.model_dump()}


def build_model(plan: Plan) -> torch.nn.Module:
    import archc

    model = archc.build(plan.arch_file, variant=plan.cfg.variant, input=plan.input, **plan.params)
    model = model.to(plan.device)
    if plan.device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model


def fit(plan: Plan, source, train: list[int], val: list[int], folder: Path, resume: bool = False) -> dict:
    """Train on `train`, validate on `val`; returns this split's summary (also written to folder/summary.json)."""
    cfg, dist = plan.cfg, plan.dist
    folder.mkdir(parents=True, exist_ok=True)
    if dist.main:
        remove_stale_temp_files(folder)  # the run folder is locked (runtime/runfolder.py): no live write is there
    train_positions, val_positions = torch.tensor(train), torch.tensor(val)
    try:
        batch, warning = choose_batch(cfg.batch, len(train), dist.world)
    except ValueError as error:
        raise TrainingStopped(str(error)) from None
    steps = len(train) // batch
    warmup = choose_warmup(cfg.warmup, cfg.epochs)
    plan.once(_recipe(plan, len(train), batch, steps, warmup))
    if warning:
        plan.once(f"warning: {warning}")
    if cfg.warmup is not None and cfg.schedule not in ("none", "onecycle") and cfg.warmup >= cfg.epochs:
        plan.once(f"warning: --warmup {cfg.warmup:g} covers the whole {cfg.epochs}-epoch run: the learning rate "
                  "only rises, and never decays")
    seed_everything(cfg.seed)
    model = build_model(plan)
    init, frozen = _fine_tune(plan, model)
    groups = head_groups(decay_and_no_decay(model, cfg.weight_decay), model, init.reinitialised if init else [],
                         cfg.lr_head)
    optimizer = make_optimizer(cfg.optimizer, groups, cfg.lr, cfg.momentum, cfg.nesterov, cfg.weight_decay,
                               fused=plan.device.type == "cuda")
    schedule = Schedule(cfg.schedule, cfg.lr, cfg.epochs, steps, warmup)
    metrics: list[dict] = []
    start = 0
    last = folder / "last.pt"
    if resume and last.is_file():
        start, metrics = _resume(last, plan, model, optimizer, schedule)
        plan.log(f"resuming {folder} after epoch {start} of {cfg.epochs}")
    elif resume:
        plan.log(f"nothing to resume in {folder} (no last.pt): starting from the first epoch")
    runner = model
    if dist.world > 1:
        runner = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[plan.device.index] if plan.device.type == "cuda" else None)
    cuda = plan.device.type == "cuda"
    runners = Runners(runner, plan.compile, log=plan.log,  # plan.log says nothing on ranks other than 0
                      sync=(lambda: torch.cuda.synchronize(plan.device)) if cuda else lambda: None,
                      reduce=lambda totals: all_sum(totals, dist))
    events = Events(folder, start) if dist.main else None
    if events is not None and events.note and start == 0:
        plan.log(events.note)
    best = max((row["val_accuracy"] for row in metrics), default=-1.0)
    recomputed = 0  # validations preceded by recomputed batch-norm statistics (runtime/bn_stats.py)
    saved = start  # the epoch last.pt holds
    out_of_memory = False
    try:
        for epoch in range(start, cfg.epochs):
            began = time.perf_counter()
            train_loss, train_accuracy = _train_epoch(plan, runners, model, frozen, source, train_positions, batch,
                                                      epoch, steps, optimizer, schedule, last)
            seconds = time.perf_counter() - began
            if needs_recompute(model, (epoch + 1) * steps, cfg.recompute_bn, skip=frozen.norms):
                seen = recompute(model, _on_device(plan, source.eval_batches(spread(train_positions), batch)),
                                 dist, lambda: _autocast(plan), skip=frozen.norms)
                if not recomputed:
                    plan.log(f"batch norm: running statistics recomputed from {seen * dist.world:,} training images "
                             f"before validating (their moving averages had not caught up after {(epoch + 1) * steps}"
                             " steps; --recompute-bn never keeps them)")
                recomputed += 1
            val_loss, val_accuracy, _ = evaluate(plan, runners.for_eval(), source, val_positions, batch,
                                                    partial=runners.eager)
            _stop_unless_good(plan, val_loss, model, optimizer, epoch, last if saved else None)
            schedule.end_epoch(val_loss)
            row = {"epoch": epoch + 1, "train_loss": train_loss, "train_accuracy": train_accuracy,
                   "val_loss": val_loss, "val_accuracy": val_accuracy, "lr": schedule.lr((epoch + 1) * steps - 1),
                   "seconds": round(seconds, 3), "images_per_s": round(steps * batch / seconds, 1)}
            metrics.append(row)
            if dist.main:
                state = {**plan.payload(), "model": model.state_dict(), "scheduler": schedule.state_dict(),
                         "epoch": epoch + 1, "rng": rng_state(), "metrics": metrics}
                if val_accuracy > best:  # before last.pt: a run killed between the two redoes this epoch
                    save_checkpoint(folder / "best.pt", {**state, "optimizer": None})
                save_checkpoint(last, {**state, "optimizer": optimizer.state_dict()})
                saved = epoch + 1  # at once: Ctrl-C from here on says this epoch
                write_metrics_csv(folder, metrics)
                events.epoch(row)
                report_epoch(plan, row)
            saved = epoch + 1
            best = max(best, val_accuracy)
            barrier(dist)
    except torch.cuda.OutOfMemoryError:
        out_of_memory = True  # measured below, once the failed step's tensors are released with its frames
    except KeyboardInterrupt:
        raise TrainingInterrupted(last if saved else None, saved, cfg.epochs) from None
    finally:
        if events is not None:
            events.close()
    runners.end()
    if out_of_memory:
        optimizer.zero_grad(set_to_none=True)
        raise TrainingStopped(_out_of_memory(plan, batch))
    summary = _finish(plan, runners, model, source, val_positions, batch, folder, metrics, recomputed,
                      extra={"batch": batch, "steps_per_epoch": steps, "warmup_epochs": warmup,
                             **({"init": init.summary()} if init else {}),
                             **({"freeze": frozen.summary()} if frozen.patterns else {})})
    return summary


def _recipe(plan: Plan, images: int, batch: int, steps: int, warmup: float) -> str:
    """The start of a run in one line: how an epoch is cut, and the learning rate's course."""
    cfg = plan.cfg
    shape = {"cosine": "then cosine to 0", "step": "then ÷10 at 1/2 and 3/4 of the run",
             "plateau": "then ÷10 on a plateau", "none": "then constant", "onecycle": "one cycle"}[cfg.schedule]
    warm = f"{warmup:g} epoch{'s' if warmup != 1 else ''} of warmup " if warmup and cfg.schedule != "onecycle" else ""
    per = f" ({batch // plan.dist.world} per process)" if plan.dist.world > 1 else ""
    return (f"{images} training images: {steps} step{'s' if steps != 1 else ''} an epoch at batch {batch}{per}; "
            f"{cfg.optimizer} at lr {cfg.lr:g}, {warm}{shape}, {cfg.epochs} epoch{'s' if cfg.epochs != 1 else ''}")


def _fine_tune(plan: Plan, model) -> tuple[InitReport | None, Frozen]:
    """--init's weights into the freshly built model, then --freeze; each said once for the run."""
    init = None
    if plan.init_state is not None:
        init = load_init(model, plan.init_state, plan.cfg.init)
        plan.once(init.message())
        if plan.cfg.lr_head is not None and init.reinitialised:
            plan.once(f"--lr-head {plan.cfg.lr_head:g}: the {len(init.reinitialised)} re-initialised tensors train "
                      f"at {plan.cfg.lr_head:g} × the learning rate")
    frozen = freeze(model, list(plan.cfg.freeze))
    if frozen.patterns:
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        plan.once(f"--freeze {' '.join(frozen.patterns)}: {len(frozen.names)} tensors frozen ({len(frozen.norms)} "
                  f"batch norms kept in eval mode); {trainable:,} parameters train")
    return init, frozen


def _stop_unless_good(plan: Plan, val_loss: float, model, optimizer, epoch: int, last: Path | None) -> None:
    """Raise TrainingStopped before an epoch that is not good (runtime/run_state.py) is saved."""
    why = why_not_good(val_loss, model.state_dict(), optimizer.state_dict())
    verdicts = all_sum(torch.tensor([float(why is not None)], dtype=torch.float64, device=plan.device), plan.dist)
    if not verdicts.item():
        return
    why = why or "another process's tensors are not finite"
    kept = f"the last good checkpoint is {last} (epoch {epoch})" if last else "no checkpoint was written"
    raise TrainingStopped(f"after epoch {epoch + 1} {why}: the run stops and this epoch is not saved; {kept}. "
                          "Try a lower --lr, --clip-grad 1.0 or --no-amp")


def _resume(last: Path, plan: Plan, model, optimizer, schedule) -> tuple[int, list[dict]]:
    ckpt = load_checkpoint(last)
    if ckpt.get("network") != plan.network or list(ckpt.get("input", [])) != list(plan.input):
        raise CheckpointError(f"{last} is a checkpoint of {ckpt.get('network')} at input {ckpt.get('input')}, "
                              f"not of {plan.network} at {list(plan.input)}: resume with the same network and data")
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    schedule.load_state_dict(ckpt["scheduler"])
    set_rng_state(ckpt["rng"])
    return int(ckpt["epoch"]), list(ckpt["metrics"])


def _autocast(plan: Plan):
    if not plan.amp:
        return nullcontext()
    return torch.autocast(device_type=plan.device.type, dtype=torch.bfloat16)


def _loss(plan: Plan, output, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the loss to minimise, the main head's logits): aux heads add aux_weight × their losses."""
    logits, aux = (output[0], output[1:]) if isinstance(output, tuple) else (output, ())
    smoothing = plan.cfg.label_smoothing
    loss = F.cross_entropy(logits.float(), labels, label_smoothing=smoothing)
    for head in aux:
        loss = loss + plan.cfg.aux_weight * F.cross_entropy(head.float(), labels, label_smoothing=smoothing)
    return loss, logits


def _train_epoch(plan: Plan, runners: Runners, model, frozen: Frozen, source, positions, batch: int, epoch: int,
                 steps: int, optimizer, schedule: Schedule, last: Path) -> tuple[float, float]:
    cfg, device = plan.cfg, plan.device
    runners.train()
    frozen.keep_norms_in_eval()
    totals = torch.zeros(2, device=device, dtype=torch.float64)  # loss × n, correct
    count = 0
    check_every = 1 if device.type == "cpu" else NAN_CHECK_STEPS
    progress = EpochProgress(plan, f"epoch {epoch + 1}/{cfg.epochs}", steps)
    with progress:
        for step, (images, labels) in enumerate(source.train_epoch(positions, batch, epoch, cfg.seed)):
            lr = schedule.lr(epoch * steps + step)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)  # --lr-head's groups
            images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            if device.type == "cuda":
                images = images.contiguous(memory_format=torch.channels_last)
            with _autocast(plan):
                loss, logits = _loss(plan, runners.for_step()(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip_grad:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            optimizer.step()
            runners.done(len(labels))
            totals += torch.stack([loss.detach().double() * len(labels), (logits.argmax(1) == labels).sum().double()])
            count += len(labels)
            if (step + 1) % check_every == 0 or step + 1 == steps:
                _stop_if_not_finite(plan, totals[0].clone(), epoch, step, lr, last)
            progress.advance(step, totals[0], count)
    loss_sum, correct, count = all_sum(torch.cat([totals, totals.new_tensor([count])]), plan.dist).tolist()
    return loss_sum / count, correct / count


def _stop_if_not_finite(plan: Plan, loss_sum: torch.Tensor, epoch: int, step: int, lr: float, last: Path) -> None:
    loss_sum = all_sum(loss_sum, plan.dist)
    if torch.isfinite(loss_sum):
        return
    kept = f"the last good checkpoint is {last} (epoch {epoch})" if last.is_file() else \
        "no checkpoint was written (the first epoch did not finish)"
    raise TrainingStopped(f"the training loss became {float(loss_sum)} in epoch {epoch + 1} (by step {step + 1}, "
                          f"learning rate {lr:.3g}): the run stops; {kept}. Try a lower --lr, "
                          f"--clip-grad 1.0 or --no-amp")


@torch.no_grad()
def evaluate(plan: Plan, runner, source, positions: torch.Tensor, batch: int, confusion: bool = False,
             partial=None) -> tuple[float, float, torch.Tensor | None]:
    """(mean loss, accuracy, confusion matrix if asked) over `positions`, summed over every process. A last
    batch smaller than `batch` runs on `partial` where one is given: the eager module beside a compiled
    `runner`, which would otherwise compile the whole network again for that one size (with dynamic shapes)."""
    device, classes = plan.device, len(plan.classes)
    partial = partial if partial is not None else runner
    runner.eval()
    partial.eval()
    totals = torch.zeros(2, device=device, dtype=torch.float64)  # loss, correct
    count = 0
    matrix = torch.zeros(classes * classes, device=device, dtype=torch.int64) if confusion else None
    for images, labels in _on_device(plan, source.eval_batches(positions, batch)):
        with _autocast(plan):
            logits = (runner if len(labels) == batch else partial)(images)
        loss = F.cross_entropy(logits.float(), labels, reduction="sum")
        predicted = logits.argmax(1)
        totals += torch.stack([loss.double(), (predicted == labels).sum().double()])
        count += len(labels)
        if matrix is not None:
            matrix += torch.bincount(labels * classes + predicted, minlength=classes * classes)
    loss_sum, correct, count = all_sum(torch.cat([totals, totals.new_tensor([count])]), plan.dist).tolist()
    if matrix is not None:
        matrix = all_sum(matrix, plan.dist).view(classes, classes).cpu()
    return loss_sum / max(1, count), correct / max(1, count), matrix


def _on_device(plan: Plan, batches):
    """(images, labels) moved to the training device, images channels_last on a GPU."""
    for images, labels in batches:
        images, labels = images.to(plan.device, non_blocking=True), labels.to(plan.device, non_blocking=True)
        if plan.device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        yield images, labels


def _finish(plan: Plan, runners: Runners, model, source, val_positions, batch: int, folder: Path,
            metrics: list[dict], recomputed: int, extra: dict) -> dict:
    """Confusion of best.pt on the validation set, the curves, and this split's summary."""
    best_row = max(metrics, key=lambda row: row["val_accuracy"])
    barrier(plan.dist)
    model.load_state_dict(load_checkpoint(folder / "best.pt")["model"])
    _, _, matrix = evaluate(plan, runners.for_eval(), source, val_positions, batch, confusion=True,
                            partial=runners.eager)
    summary = {
        "network": plan.title, "file": str(plan.arch_file), "variant": plan.cfg.variant, "params": plan.params,
        "input": list(plan.input), "epochs": len(metrics), "val_accuracy": best_row["val_accuracy"],
        "best_epoch": best_row["epoch"], "final_val_accuracy": metrics[-1]["val_accuracy"],
        "final_val_loss": metrics[-1]["val_loss"],
        "train_images_per_s": round(sum(r["images_per_s"] * r["seconds"] for r in metrics)
                                    / max(1e-9, sum(r["seconds"] for r in metrics)), 1),
        "seconds_per_epoch": round(sum(r["seconds"] for r in metrics) / len(metrics), 3),  # training, not validation
        "classes": plan.classes if len(plan.classes) <= SUMMARY_CLASSES else len(plan.classes),
        "compile": runners.report(),
        "bn_recomputed_epochs": recomputed,  # validations after recomputing batch-norm statistics
        **extra,
    }
    if len(plan.classes) <= SUMMARY_CLASSES:
        summary["confusion"] = matrix.tolist()
    if plan.dist.main:
        plot_curves(folder / "curves.png", metrics, f"{plan.title}: {folder.name}")
        plot_confusion(folder / "confusion.png", matrix.tolist(), plan.classes,
                       f"{plan.title}: best.pt (epoch {best_row['epoch']}) on the validation set")
        write_json(folder / "summary.json", summary)
    return summary


def _out_of_memory(plan: Plan, batch: int) -> str:
    import gc

    import archc

    gc.collect()
    torch.cuda.empty_cache()
    free, _total = torch.cuda.mem_get_info(plan.device)
    report = archc.check(plan.arch_file, variant=plan.cfg.variant, input=plan.input, memory=int(free), **plan.params)
    per_process = batch // plan.dist.world
    estimate = report.max_batch
    advice = (f"the checker estimates that a batch of up to {estimate} fits the {_bytes(free)} free now "
              f"(float32, torchinfo's convention): try --batch {max(1, estimate) * plan.dist.world}"
              if estimate else "the checker estimates that not even a batch of 1 fits: try a smaller --input")
    return f"CUDA ran out of memory at a batch of {per_process} per GPU; {advice}"


def _bytes(count: int) -> str:
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.0f} MiB"

"""Where a study's runs go: one after the other in this process, side by side in processes of their
own (one per GPU), or as Ray tasks.

A `Job` is one network's `archc train` run, as plain data (the file, its TrainConfig as a dict, and
whether to resume), so it travels to a subprocess as JSON or to a Ray worker as a task argument, and
`run_job` does the same thing everywhere. A job in a process of its own writes its log to its run
folder's train.log and its result to the run folder's summary.json, as every run does.

    python -m archc.runtime.study_jobs RUN_FOLDER/job.json     # what a parallel job's process runs

    >>> job = Job("nin_v2", "architectures/nin_v2.arch", {"epochs": 1, "kfold": 5, "out": "runs/s/nin_v2"})
    >>> json.loads(json.dumps(asdict(job))) == asdict(job)  # it travels as JSON, or as a Ray task's argument
    True
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from .config import ConfigError


@dataclass
class Job:
    label: str
    file: str
    config: dict  # TrainConfig's fields; its `out` is the run folder
    resume: bool = False


def run_job(job: Job | dict, log=print) -> dict:
    """Train one network of the study; its summary (as written to its run folder's summary.json)."""
    from .config import TrainConfig
    from .run import train

    job = job if isinstance(job, Job) else Job(**job)
    return train(Path(job.file), TrainConfig(**job.config), resume=job.resume, log=log)


def run_jobs(jobs: list[Job], *, parallel: int | None, ray: str | None, device: str, log) -> dict[str, dict]:
    """{label: summary} of every job, run where the study asked (see the module's docstring)."""
    if not jobs:
        return {}
    if ray:
        return _on_ray(jobs, ray, log)
    slots = _local_slots(parallel, device)
    if len(slots) == 1:
        results = {}
        for job in jobs:
            log(f"{job.label}: {'resuming' if job.resume else 'training'} into {job.config['out']}")
            results[job.label] = run_job(job, log=lambda message, label=job.label: log(_prefixed(label, message)))
        return results
    return _in_processes(jobs, slots, log)


def _prefixed(label: str, message: str) -> str:
    return "\n".join(f"[{label}] {line}" for line in str(message).splitlines())


def _local_slots(parallel: int | None, device: str) -> list[dict[str, str]]:
    """The environments of the runs that may go at once: one per GPU (CUDA_VISIBLE_DEVICES) where there are
    several, else `parallel` runs sharing the CPU's threads; a single slot means this process."""
    import torch

    gpus = torch.cuda.device_count() if device != "cpu" and torch.cuda.is_available() else 0
    if parallel is not None and parallel < 1:
        raise ConfigError(f"--parallel {parallel}: give 1 or more runs at a time")
    count = parallel or max(1, gpus)
    if gpus >= 1 and count > 1:
        if count > gpus:
            raise ConfigError(f"--parallel {count}: this machine has {gpus} GPU{'s' if gpus != 1 else ''}, one per run")
        return [{"CUDA_VISIBLE_DEVICES": str(g)} for g in range(count)]
    threads = max(1, (os.cpu_count() or 1) // count)
    return [{"OMP_NUM_THREADS": str(threads)} for _ in range(count)]


def _in_processes(jobs: list[Job], slots: list[dict[str, str]], log) -> dict[str, dict]:
    """Each job in a process of its own, as many at once as there are slots (GPUs)."""
    free: queue.Queue = queue.Queue()
    for slot in slots:
        free.put(slot)

    def launch(job: Job) -> tuple[str, dict]:
        slot = free.get()
        try:
            folder = Path(job.config["out"])
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "job.json").write_text(json.dumps(asdict(job)))
            where = ", ".join(f"{k}={v}" for k, v in slot.items())
            log(f"{job.label}: {'resuming' if job.resume else 'training'} in a process of its own ({where}); its log: "
                f"{folder / 'train.log'}")
            with (folder / "train.log").open("a") as out:
                done = subprocess.run([sys.executable, "-m", "archc.runtime.study_jobs", str(folder / "job.json")],
                                      env={**os.environ, **slot}, stdout=out, stderr=subprocess.STDOUT, check=False)
            if done.returncode != 0:
                tail = (folder / "train.log").read_text(errors="replace").strip().splitlines()[-3:]
                raise StudyRunFailed(f"{job.label}: the run failed (exit {done.returncode}); the end of "
                                     f"{folder / 'train.log'}:\n" + "\n".join(tail))
            summary = json.loads((folder / "summary.json").read_text())
            log(f"{job.label}: finished")
            return job.label, summary
        finally:
            free.put(slot)

    with ThreadPoolExecutor(max_workers=len(slots)) as pool:
        return dict(pool.map(launch, jobs))


class StudyRunFailed(Exception):
    """One of the study's runs failed in its own process or Ray task; the message says which and why."""


def _on_ray(jobs: list[Job], address: str, log) -> dict[str, dict]:
    """Each job a Ray task: one GPU each where the cluster has GPUs, else one CPU each. `address` "local" starts
    a Ray instance on this machine; anything else is passed to ray.init (a head node, "auto", "ray://...")."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray: pip install 'archc[ray]'") from None
    started = not ray.is_initialized()
    if started:
        if address == "local":
            ray.init(include_dashboard=False, log_to_driver=True)
        else:
            ray.init(address=address, log_to_driver=True)
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        task = ray.remote(num_gpus=1 if gpus >= 1 else 0, num_cpus=0 if gpus >= 1 else 1)(_ray_task)
        pending = {task.remote(asdict(job)): job for job in jobs}
        log(f"submitted {len(jobs)} run{'s' if len(jobs) != 1 else ''} to Ray at {address} "
            f"({'one GPU' if gpus >= 1 else 'one CPU'} each)")
        results = {}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ready[0])
            try:
                results[job.label] = ray.get(ready[0])
            except ray.exceptions.RayTaskError as error:
                raise StudyRunFailed(f"{job.label}: the Ray task failed: {error.cause or error}") from None
            log(f"{job.label}: finished (Ray)")
        return results
    finally:
        if started:
            ray.shutdown()


def _ray_task(job: dict) -> dict:
    """The body of a study's Ray task (on the worker: its log goes to the driver through Ray)."""
    return run_job(job, log=lambda message: print(_prefixed(job["label"], message), flush=True))


def main(argv: list[str] | None = None) -> int:
    """A parallel job's process: run the job in the file named; exit 0, 1 (the run failed) or 2 (usage)."""
    from ..cli import EXIT_USAGE, Usage
    from ..cli_train import Failures

    args = argv if argv is not None else sys.argv[1:]
    job = Job(**json.loads(Path(args[0]).read_text()))
    try:
        with Failures() as failed:
            run_job(job, log=lambda message: print(message, flush=True))
    except Usage as error:
        print(f"archc: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return failed.status


if __name__ == "__main__":
    sys.exit(main())

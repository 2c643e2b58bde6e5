"""`archc study`: several networks, one recipe, seed 000's comparison (runtime/study.py).

    archc study FILE[:VARIANT]... [--data DIR] [--kfold K] [--epochs N] [--memory SIZE] [--out DIR]
                [--parallel N] [--ray ADDRESS] [every recipe flag of archc train]

Exit status: 0 every run finished and the comparison is written; 1 a network or a run failed;
2 a usage error; 130 interrupted (run the same command again to continue the study).
"""

from __future__ import annotations

import argparse
import sys



def add_arguments(study: argparse.ArgumentParser) -> None:
    from .cli_train import add_recipe_arguments

    study.add_argument("files", nargs="+", metavar="FILE[:VARIANT]")
    study.add_argument("--out", metavar="DIR", help="the study's folder, a run folder per network in it "
                                                    "(default runs/study-<time>); again to resume the study")
    study.add_argument("--memory", metavar="SIZE", help="a memory budget such as 6GiB: each network's largest batch")
    study.add_argument("--parallel", type=int, metavar="N", help="runs at once, each in a process of its own "
                                                                 "(default: one per GPU where there are several)")
    study.add_argument("--ray", metavar="ADDRESS", help="each run a Ray task (pip install 'archc[ray]'): a cluster's "
                                                        "address, auto, or local to start Ray here")
    add_recipe_arguments(study)


def study(args) -> int:
    from .cli_train import RECIPE, Failures, config_from
    from .runtime.study import run
    from .runtime.trainer import TrainingInterrupted

    with Failures() as failed:
        cfg = config_from(args, RECIPE)
        try:
            run(args.files, cfg, out=args.out, memory=args.memory, parallel=args.parallel, ray=args.ray)
        except (KeyboardInterrupt, TrainingInterrupted):  # the study, not the one run, is what resumes
            print("archc: study interrupted; run the same command again (with the same --out) to continue it: "
                  "finished runs are kept, the interrupted one resumes", file=sys.stderr)
            return 130
    return failed.status

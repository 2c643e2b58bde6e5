"""`archc diff A.arch[:VARIANT] B.arch[:VARIANT] [--set-a|--set-b NAME=VALUE]... [--json]`: per section and row, what changed between two
networks (compiler/diff.py), as `git diff --stat` or JSON; needs no torch.

`archc diff FILE[:VARIANT] --weights CKPT.pt [--json]`: which tensors of a checkpoint (a torchvision or
timm state dict, or an archc checkpoint) load into the network, and why the others do not; imports torch
to read the file (weights_only).
"""

from __future__ import annotations

import sys

from .jsontext import dumps


def add_arguments(command) -> None:
    command.add_argument("files", nargs="+", metavar="FILE[:VARIANT]", help="two networks, or one with --weights")
    command.add_argument("--weights", metavar="CKPT.pt", help="a checkpoint or state dict to match against FILE")
    command.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                         help="a network parameter, for every network that has it")
    for side in ("a", "b"):
        command.add_argument(f"--set-{side}", action="append", default=[], metavar="NAME=VALUE",
                             help=f"a parameter of the {'first' if side == 'a' else 'second'} network only")
    command.add_argument("--json", action="store_true", help="print JSON instead of the stat lines")


def diff(args) -> int:
    from .cli import EXIT_ERRORS, EXIT_OK, Usage, _overrides, network_file
    from .compare import split_spec

    specs = [split_spec(f) for f in args.files]
    if args.weights is not None:
        if len(specs) != 1:
            raise Usage("archc diff --weights takes one network")
        return _weights(args, *specs[0])
    if len(specs) != 2:
        raise Usage("archc diff takes two networks (or one with --weights)")
    from .compiler.check import UsageError, check
    from .compiler.diff import network_diff, render_stat

    reports = []
    for (path, variant), own in zip(specs, (args.set_a, args.set_b)):
        network_file(path)
        try:
            params = {**_known(path, _overrides(args.set)), **_overrides(own)}
            report = check(path, variant=variant, **params)
        except (UsageError, ValueError) as error:
            raise Usage(str(error)) from None
        if not report.ok:
            from .report import print_report

            print_report(report)
            return EXIT_ERRORS
        reports.append(report)
    result = network_diff(*reports, *args.files)
    print(dumps(result.model_dump()) if args.json else render_stat(result))
    return EXIT_OK


def _known(path: str, params: dict) -> dict:
    """The --set values the network has (as archc compare applies them)."""
    from .compare import _parameter_names

    names = _parameter_names(path)
    return {k: v for k, v in params.items() if k in names}


def _weights(args, path: str, variant: str | None) -> int:
    from .cli import EXIT_ERRORS, EXIT_OK, Usage, _overrides, network_file
    from .cli_torch import _weights_of
    from .compiler.check import UsageError, build_graph
    from .compiler.diff import weights_diff
    from .compiler.emit_torch import build_module
    from .dsl.diagnostics import ArchError

    network_file(path)
    try:
        graph = build_graph(path, variant=variant, **_overrides(args.set))
    except (UsageError, ValueError) as error:
        raise Usage(str(error)) from None
    except ArchError as error:
        from .compiler.check import sources_of

        sources = sources_of(error.diagnostics, path, None)
        for diagnostic in error.diagnostics:
            print(diagnostic.render(sources.get(diagnostic.file, "")), file=sys.stderr)
        return EXIT_ERRORS
    state, _ = _weights_of(args.weights)
    tensors = build_module(graph).state_dict()
    ours = {k: tuple(v.shape) for k, v in tensors.items()}
    theirs = {k: tuple(v.shape) for k, v in state.items()}
    from .compiler.weights import match_by_position

    head = graph.result if graph.layer(graph.result).op == "linear" else None
    result = weights_diff(ours, theirs, head=head)
    by_position = match_by_position(tensors, state)
    if by_position.counts_agree:
        rule = (f"by position (archc port and train --init): {len(by_position.loaded)} load, "
                f"{len(by_position.misfits)} keep the network's initialisation")
    else:
        rule = (f"by position (archc port and train --init): refused, {by_position.count_message()}; the "
                "network must be built as the checkpoint was")
    if args.json:
        print(dumps({"network": path, "weights": args.weights, "tensors": len(ours),
                          "checkpoint_tensors": len(theirs), "loads": result.count("loads"),
                          "by_position": {"counts_agree": by_position.counts_agree,
                                          "loads": len(by_position.loaded) if by_position.counts_agree else 0},
                          "entries": [{"kind": e.kind, "key": e.key, "checkpoint_key": e.source_key,
                                       "shape": e.shape, "checkpoint_shape": e.source_shape, "why": e.why()}
                                      for e in result.entries]}))
        return EXIT_OK
    loads = result.count("loads")
    print(f"{loads} of the network's {len(ours)} tensors correspond to {args.weights}'s ({len(theirs)} tensors) "
          f"in place and shape; {rule}")
    for entry in result.entries:
        if entry.kind != "loads":
            print(f"  {entry.key or entry.source_key}: {entry.why()}")
    return EXIT_OK

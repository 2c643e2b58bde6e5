"""The `archc` command line. Exit status: 0 ok, 1 the file has errors, 2 usage.

    archc check FILE [--variant V] [--set NAME=VALUE]... [--input CxHxW] [--batch N] [--memory SIZE] [--json] [--compact]
                [--convention torchinfo|thop|fvcore|ptflops|calflops|calflops-flops|all] [--explain FIGURE]
                [--rf] [--taps] [--optimizer sgd|adam|adamw|rmsprop] [--momentum M] [--[no-]amp] [--[no-]channels-last]
    archc diff A.arch[:VARIANT] B.arch[:VARIANT] [--json]; archc diff FILE --weights CKPT.pt   (archc/cli_diff.py)
    archc fmt FILE... [--check]
    archc build FILE [-o OUT.py] [--variant V] [--set NAME=VALUE]... [--input CxHxW]
    archc graph FILE -o OUT.svg|OUT.png|OUT.dot [--depth N] [--variant V] [--set NAME=VALUE]... [--input CxHxW]
    archc port FILE --from torchvision:NAME|FILE.pt -o OUT.pt [--pretrained] [--variant V] [--set ...]
    archc export FILE --onnx OUT.onnx [--weights FILE.pt] [--variant V] [--set ...]
    archc compare FILE[:VARIANT]... [--set NAME=VALUE]... [--input CxHxW] [--batch N] [--memory SIZE] [--json]
                  [--convention torchinfo|thop|fvcore]
    archc lsp                                     (a language server over stdio; archc/lsp/)
    archc data split|resize ..., archc eval|predict|cam CHECKPOINT ...   (archc/cli_tools.py)
    archc train FILE [--data DIR] [--epochs N] [--kfold K] [--out DIR] [--resume] ...   (archc/cli_train.py)
    archc study FILE[:VARIANT]... [--data DIR] [--kfold K] [--memory SIZE] [--out DIR] ...   (archc/cli_study.py)
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import sys
import types
from pathlib import Path

from .jsontext import dumps, dumps_rows

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2
MAX_SET_INT = 1 << 62  # compiler/evaluate.py's bound on integers


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own usage errors exit 2 too, without a traceback
        self.print_usage(sys.stderr)
        print(f"archc: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


class _Version(argparse.Action):
    """--version: archc's, Python's and torch's where installed (without importing torch)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print archc's version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        import platform
        from importlib import metadata

        from . import __version__

        try:
            torch = f"torch {metadata.version('torch')}"
        except metadata.PackageNotFoundError:
            torch = "no torch (archc check, compare, fmt and build need none)"
        print(f"archc {__version__} (Python {platform.python_version()}, {torch})")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="archc", description="A declarative language and compiler for convolutional networks.")
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    check = sub.add_parser("check", help="infer every shape, parameter count, MAC count and memory figure")
    _network_arguments(check)
    check.add_argument("--batch", type=_batch, default=1, help="batch size for MACs and memory (default 1)")
    check.add_argument("--memory", help="memory budget such as 6GiB (6·2³⁰ bytes) or 6GB (6·10⁹): report the largest "
                       "batch that fits (the report's MB are 10⁶ bytes, as torchinfo's)")
    check.add_argument("--batch-multiple", type=_batch, default=1, metavar="M",
                       help="round the largest batch down to a multiple of M (default 1)")
    check.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    check.add_argument("--compact", action="store_true",
                       help="one line per table row (and per statement outside a table), without the layers")
    _convention_argument(check, every=True)
    check.add_argument("--explain", metavar="FIGURE",
                       help="a published cost such as 0.122993904G: say which convention, multiplier and batch give it")
    check.add_argument("--rf", action="store_true", help="show each layer's and row's receptive field (size and jump)")
    check.add_argument("--taps", action="store_true", help="show the feature taps: the maps a backbone yields")
    training = check.add_argument_group("training memory (the trainer's settings; default: as it runs on a GPU)")
    training.add_argument("--optimizer", default="adamw", metavar="sgd|adam|adamw|rmsprop",
                          help="whose state the step holds (default adamw)")
    training.add_argument("--momentum", type=float, default=0.9, help="SGD's and RMSprop's (default 0.9; 0: none)")
    training.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True,
                          help="bfloat16 autocast (default on)")
    training.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                          help="channels_last tensors (default on; changes no size)")

    fmt = sub.add_parser("fmt", help="rewrite files in the canonical layout, table columns aligned")
    fmt.add_argument("files", nargs="+")
    fmt.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file is not formatted")

    compare = sub.add_parser("compare", help="a row per network: params, mult-adds, memory, largest batch")
    compare.add_argument("files", nargs="+", metavar="FILE[:VARIANT]")
    compare.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                         help="a network parameter, for every network that has it")
    compare.add_argument("--input", help="input size CxHxW for every network (default: each file's `input`)")
    compare.add_argument("--batch", type=_batch, default=1, help="batch size for MACs and memory (default 1)")
    compare.add_argument("--memory", help="memory budget such as 6GiB: the largest batch that fits each network")
    compare.add_argument("--json", action="store_true", help="print a JSON list instead of the table")
    _convention_argument(compare)

    build = sub.add_parser("build", help="write the network as a PyTorch file that imports only torch")
    _network_arguments(build)
    build.add_argument("-o", "--output", metavar="OUT.py", help="where to write it (default: print it)")

    graph = sub.add_parser("graph", help="draw the network: a node per layer, a frame per block instance")
    _network_arguments(graph, checkpoint=True)
    graph.add_argument("-o", "--output", required=True, metavar="OUT",
                       help="OUT.svg, OUT.png (needs Graphviz's dot) or OUT.dot")
    graph.add_argument("--depth", type=_depth, metavar="N",
                       help="draw block instances nested deeper than N frames as one node each (1: a node per block "
                            "instance of a section); default: every layer, or the depth that fits one picture")

    port = sub.add_parser("port", help="take a reference's weights into the archc network, and compare the logits")
    _network_arguments(port)
    port.add_argument("--from", dest="source", required=True, metavar="torchvision:NAME|FILE.pt",
                      help="a torchvision builder (randomly initialised unless --pretrained), a state-dict file, "
                           "or a checkpoint from archc train")
    port.add_argument("--pretrained", action="store_true", help="download torchvision's DEFAULT weights")
    port.add_argument("-o", "--output", required=True, metavar="OUT.pt", help="where to write the ported state dict")

    export = sub.add_parser("export", help="write the network for other runtimes")
    _network_arguments(export, checkpoint=True)
    export.add_argument("--onnx", required=True, metavar="OUT.onnx", help="ONNX, with a dynamic batch dimension")
    export.add_argument("--weights", metavar="FILE.pt",
                        help="weights to load first: a checkpoint from archc train (RUN/best.pt) or a state dict "
                             "(from archc port)")

    lsp = sub.add_parser("lsp", help="a language server for editors, over stdin and stdout (needs archc[lsp])")
    lsp.add_argument("--stdio", action="store_true", help="accepted for editors that pass it; stdio is the only transport")

    from . import cli_diff  # two networks, or a network and a checkpoint

    cli_diff.add_arguments(sub.add_parser("diff", help="what differs between two networks, or which tensors of a "
                                                        "checkpoint load into a network"))

    from . import cli_tools  # data, eval, predict, cam

    cli_tools.add_commands(sub)

    from . import cli_train  # imports no torch until it runs

    cli_train.add_arguments(sub.add_parser("train", help="train the network on the digits or an image folder"))

    from . import cli_study  # imports no torch until it runs

    cli_study.add_arguments(sub.add_parser("study", help="train several networks with one recipe and compare them"))
    return parser


def _network_arguments(command: argparse.ArgumentParser, checkpoint: bool = False) -> None:
    if checkpoint:
        command.add_argument("file", metavar="FILE",
                             help="a .arch file, or a checkpoint from archc train (RUN/best.pt): its network at its "
                                  "settings")
    else:
        command.add_argument("file")
    command.add_argument("--variant", help="a named variant of the network (e.g. resnet50)")
    command.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                         help="override a network parameter: a number, true/false or a name")
    command.add_argument("--input", help="input size CxHxW (default: the file's `input`)")


def _convention_argument(command: argparse.ArgumentParser, every: bool = False) -> None:
    # the names are checked by check(), which knows them (compiler/conventions.py)
    names = "torchinfo|thop|fvcore|ptflops|calflops|calflops-flops" + ("|all" if every else "")
    command.add_argument("--convention", default="torchinfo", metavar=names,
                         help="count MACs as torchinfo 1.8 (default), thop 0.1.1, fvcore 0.1.5, ptflops 0.7.5 or "
                              "calflops 0.3.2 (its MACs, or its FLOPs) count them"
                              + ("; all: every one side by side, per kind of layer" if every else ""))


def _depth(text: str) -> int:
    if not text.isdigit() or not text.isascii() or len(text) > 3:
        raise argparse.ArgumentTypeError(f"the depth is a whole number from 0, got {_cut(text)}")
    return int(text)


def _batch(text: str) -> int:
    from .compiler.sizes import parse_batch

    try:
        return parse_batch(text)
    except ValueError as error:  # argparse then says it as a usage error, exit 2
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_value(text: str):
    """`--set` values: integers, decimals, true/false/none, else a name. A number must be one a
    .arch file could hold: finite, and an integer within 2⁶² (as the evaluator bounds them)."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "-"):
        return None
    for kind in (int, float):
        try:
            value = kind(text)
        except ValueError:  # also Python's refusal of an integer of more than 4,300 digits
            continue
        if not math.isfinite(value) or abs(value) > MAX_SET_INT:
            raise ValueError(f"cannot use {_cut(text)}: a number must be finite and within ±2⁶²")
        return value
    if not text.isidentifier():
        raise ValueError(f"cannot read {_cut(text)}: give a number, true, false or a name")
    return text


def _cut(text: str) -> str:
    return repr(text if len(text) <= 40 else f"{text[:20]}…{text[-8:]}")


def _overrides(pairs: list[str]) -> dict:
    values = {}
    for pair in pairs:
        name, eq, value = pair.partition("=")
        if not eq or not name.strip().isidentifier():
            raise ValueError(f"--set takes NAME=VALUE, got {pair!r}")
        values[name.strip()] = parse_value(value)
    return values


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "check":
            return _check(args)
        if args.command == "fmt":
            return _fmt(args)
        if args.command == "compare":
            return _compare(args)
        if args.command == "build":
            return _build(args)
        if args.command == "diff":
            from . import cli_diff

            return cli_diff.diff(args)
        if args.command == "lsp":
            return _lsp()
        if args.command == "train":
            from . import cli_train

            return cli_train.train(args)
        if args.command == "study":
            from . import cli_study

            return cli_study.study(args)
        if args.command in ("data", "eval", "predict", "cam"):
            from . import cli_tools

            return cli_tools.run(args)
        from . import cli_torch  # graph, port, export

        return getattr(cli_torch, args.command)(args)
    except Usage as error:
        print(f"archc: error: {error}", file=sys.stderr)
        return EXIT_USAGE


class Usage(Exception):
    """A bad command line: exit status 2."""


def network_file(path: str, accept_checkpoint: bool = False) -> str:
    """"arch" for a file to compile, "checkpoint" for an archc checkpoint where the command takes one; Usage
    for a missing file, or for a checkpoint or other binary file where .arch text belongs (their bytes
    would otherwise be shown as the diagnostic's source line)."""
    from .runtime.ckpt_format import sniff

    if not Path(path).is_file():
        raise Usage(f"no such file: {path}")
    kind = sniff(path)
    if kind is None:
        return "arch"
    if kind == "an archc checkpoint":
        if accept_checkpoint:
            return "checkpoint"
        raise Usage(f"{path} is an archc checkpoint, not .arch text: archc eval, predict and cam use it, "
                    "archc graph and export take it in place of the .arch file")
    raise Usage(f"{path} is {kind}, not .arch text")


def _check(args) -> int:
    from .compiler.check import UsageError, check
    from .compiler.train_memory import Recipe
    from .dsl.diagnostics import in_reading_order
    from .dsl.record import replace

    network_file(args.file)
    recipe = Recipe(amp=args.amp, channels_last=args.channels_last, optimizer=args.optimizer, momentum=args.momentum)
    try:
        report = check(args.file, variant=args.variant, input=args.input, batch=args.batch, memory=args.memory,
                       convention=args.convention, recipe=recipe, explain=args.explain,
                       batch_multiple=args.batch_multiple, **_overrides(args.set))
    except (UsageError, ValueError) as error:
        raise Usage(str(error)) from None
    report = replace(report, diagnostics=in_reading_order(report.diagnostics, report.sources))
    if args.json:
        print(dumps_rows(report.as_json()))
    else:
        from .report import print_report

        print_report(report, compact=args.compact, rf=args.rf, taps=args.taps)
    return EXIT_OK if report.ok else EXIT_ERRORS


def _lsp() -> int:
    from . import lsp

    if not lsp.available():
        raise Usage(f"archc lsp needs pygls and lsprotocol: {lsp.INSTALL}")
    return lsp.serve()


def _build(args) -> int:
    """Write the generated source: needs no torch, like `check`."""
    from .compiler.check import UsageError, build_graph
    from .compiler.emit_source import emit
    from .dsl.diagnostics import ArchError

    network_file(args.file)
    try:
        text = emit(build_graph(args.file, variant=args.variant, input=args.input, **_overrides(args.set)))
    except (UsageError, ValueError) as error:
        raise Usage(str(error)) from None
    except ArchError as error:
        from .compiler.check import sources_of
        from .dsl.diagnostics import render_all

        print(render_all(error.diagnostics, sources_of(error.diagnostics, args.file, None)), file=sys.stderr)
        return EXIT_ERRORS
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as error:
        raise Usage(f"cannot write {args.output}: {error.strerror or error}") from None
    print(f"wrote {args.output}")
    return EXIT_OK


def _compare(args) -> int:
    from .compare import compare, print_table
    from .compiler.check import UsageError

    try:
        rows = compare(args.files, batch=args.batch, memory=args.memory, input=args.input, convention=args.convention,
                       params=_overrides(args.set))
    except (UsageError, ValueError) as error:
        raise Usage(str(error)) from None
    if args.json:
        print(dumps(rows))
    else:
        print_table(rows, args.memory)
        for row in rows:
            for error in row["errors"]:
                print(f"{row['spec']}: {error}", file=sys.stderr)
    return EXIT_OK if all(row["ok"] for row in rows) else EXIT_ERRORS


def _fmt(args) -> int:
    from .dsl.diagnostics import ArchError, render_all
    from .dsl.printer import format_source
    from .dsl.source import read_source

    status = EXIT_OK
    for name in args.files:
        path = Path(name)
        try:
            text = read_source(path)  # as check reads it: no universal newlines, at most the size limit
        except (OSError, UnicodeDecodeError) as error:
            raise Usage(f"cannot read {name}: {error}") from None
        try:
            formatted = format_source(text, file=name)
        except ArchError as error:
            print(render_all(error.diagnostics, {name: text}), file=sys.stderr)
            status = EXIT_ERRORS
            continue
        if formatted == text:
            continue
        if args.check:
            print(f"{name}: not formatted", file=sys.stderr)
            status = EXIT_ERRORS
        else:
            path.write_text(formatted, encoding="utf-8", newline="")
            print(f"formatted {name}")
    return status


def _no_plugin_loader() -> None:
    """With every plugin disabled, pydantic's plugin loader (`pydantic.plugin._loader`, imported when the
    first validator is made) still imports importlib.metadata, and email, zipfile and csv with it, only
    to read that setting: 35 ms of every command. Its one function, answered as the setting says."""
    if "pydantic.plugin._loader" not in sys.modules:
        loader = types.ModuleType("pydantic.plugin._loader")
        loader.get_plugins = lambda: ()
        sys.modules["pydantic.plugin._loader"] = loader


def run() -> None:
    """Console-script entry: never a traceback for what a user typed."""
    if sys.argv[1:2] in (["check"], ["compare"], ["fmt"]):
        # These build the AST, the graph and the report, which live until the process ends, and hold no
        # garbage cycles: the cyclic collector's passes over them were a tenth of an EfficientNet-B7 check.
        gc.disable()
    # The command line is archc's own process and loads no pydantic plugin: without this, the first
    # model validated scans every installed distribution's entry points for one (a twentieth of a check).
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if os.environ["PYDANTIC_DISABLE_PLUGINS"] in ("__all__", "1", "true"):
        _no_plugin_loader()
    try:
        code = main()
        if not sys.stdout.closed:  # archc lsp's transport closes it when the client leaves
            sys.stdout.flush()
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:  # `archc check ... | head`: the reader has what it wanted
        code = EXIT_OK
    # Leave without tearing the interpreter down: nothing is left to clean up
    # (every file is closed), and the teardown of the imported modules would
    # be a fifth of a check's time.
    try:
        sys.stderr.flush()
    finally:
        os._exit(code)

"""The `archc` command line. Exit status: 0 ok, 1 the file has errors, 2 usage.

    archc check FILE [--variant V] [--set NAME=VALUE]... [--input CxHxW] [--batch N] [--memory SIZE] [--json]
    archc fmt FILE... [--check]
    archc graph FILE -o OUT.svg|OUT.png|OUT.dot [--variant V] [--set NAME=VALUE]... [--input CxHxW]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own usage errors exit 2 too, without a traceback
        self.print_usage(sys.stderr)
        print(f"archc: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="archc", description="A declarative language and compiler for convolutional networks.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    check = sub.add_parser("check", help="infer every shape, parameter count, MAC count and memory figure")
    check.add_argument("file")
    check.add_argument("--variant", help="a named variant of the network (e.g. resnet50)")
    check.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                       help="override a network parameter: a number, true/false or a name")
    check.add_argument("--input", help="input size CxHxW (default: the file's `input`)")
    check.add_argument("--batch", type=int, default=1, help="batch size for MACs and memory (default 1)")
    check.add_argument("--memory", help="memory budget such as 6GiB: report the largest batch that fits")
    check.add_argument("--json", action="store_true", help="print one JSON object instead of tables")

    fmt = sub.add_parser("fmt", help="rewrite files in the canonical layout, table columns aligned")
    fmt.add_argument("files", nargs="+")
    fmt.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file is not formatted")

    graph = sub.add_parser("graph", help="draw the network: a node per layer, a frame per block instance")
    graph.add_argument("file")
    graph.add_argument("-o", "--output", required=True, metavar="OUT",
                       help="OUT.svg, OUT.png (needs Graphviz's dot) or OUT.dot")
    graph.add_argument("--variant", help="a named variant of the network (e.g. resnet50)")
    graph.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                       help="override a network parameter: a number, true/false or a name")
    graph.add_argument("--input", help="input size CxHxW (default: the file's `input`)")
    return parser


def parse_value(text: str):
    """`--set` values: integers, decimals, true/false/none, else a name."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "-"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if not text.isidentifier():
        raise ValueError(f"cannot read {text!r}: give a number, true, false or a name")
    return text


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
        if args.command == "graph":
            return _graph(args)
        return _fmt(args)
    except _Usage as error:
        print(f"archc: error: {error}", file=sys.stderr)
        return EXIT_USAGE


class _Usage(Exception):
    pass


def _check(args) -> int:
    from .compiler.check import UsageError, check

    if not Path(args.file).is_file():
        raise _Usage(f"no such file: {args.file}")
    try:
        report = check(args.file, variant=args.variant, input=args.input, batch=args.batch, memory=args.memory,
                       **_overrides(args.set))
    except (UsageError, ValueError) as error:
        raise _Usage(str(error)) from None
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        from .report import print_report

        print_report(report)
    return EXIT_OK if report.ok else EXIT_ERRORS


def _fmt(args) -> int:
    from .dsl.diagnostics import ArchError
    from .dsl.printer import format_source

    status = EXIT_OK
    for name in args.files:
        path = Path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise _Usage(f"cannot read {name}: {error}") from None
        try:
            formatted = format_source(text, file=name)
        except ArchError as error:
            for diagnostic in error.diagnostics:
                print(diagnostic.render(text), file=sys.stderr)
            status = EXIT_ERRORS
            continue
        if formatted == text:
            continue
        if args.check:
            print(f"{name}: not formatted", file=sys.stderr)
            status = EXIT_ERRORS
        else:
            path.write_text(formatted, encoding="utf-8")
            print(f"formatted {name}")
    return status


def _graph(args) -> int:
    """Draw the checked graph with Graphviz's dot when installed, else with the built-in SVG layout."""
    from .compiler.check import UsageError, build_graph
    from .compiler.emit_graph import GraphUsageError, check_output, render
    from .dsl.diagnostics import ArchError

    if not Path(args.file).is_file():
        raise _Usage(f"no such file: {args.file}")
    try:
        check_output(args.output)
        graph = build_graph(args.file, variant=args.variant, input=args.input, **_overrides(args.set))
    except (UsageError, ValueError) as error:  # GraphUsageError too
        raise _Usage(str(error)) from None
    except ArchError as error:
        sources: dict[str, str | None] = {}
        for diagnostic in error.diagnostics:
            if diagnostic.file not in sources:
                try:
                    sources[diagnostic.file] = Path(diagnostic.file).read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    sources[diagnostic.file] = None
            print(diagnostic.render(sources[diagnostic.file]), file=sys.stderr)
        return EXIT_ERRORS
    title = " ".join([Path(args.file).name] + ([f"--variant {args.variant}"] if args.variant else [])
                     + [f"--set {pair}" for pair in args.set] + ([f"--input {args.input}"] if args.input else []))
    try:
        renderer = render(graph, args.output, title=title)
    except GraphUsageError as error:
        raise _Usage(str(error)) from None
    except OSError as error:
        raise _Usage(f"cannot write {args.output}: {error.strerror or error}") from None
    except RuntimeError as error:  # Graphviz itself failed
        print(f"archc: error: {error}", file=sys.stderr)
        return EXIT_ERRORS
    note = " (laid out without Graphviz; install graphviz for its layout)" if renderer == "python" else ""
    print(f"wrote {args.output}{note}")
    return EXIT_OK


def run() -> None:
    """Console-script entry: never a traceback for what a user typed."""
    try:
        code = main()
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

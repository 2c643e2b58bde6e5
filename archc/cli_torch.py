"""The commands that build the network: `graph`, `port`, `export`.

Kept apart from cli.py so that `archc check` and `archc fmt` never import them
(port and export import torch).
"""

from __future__ import annotations

import sys
from pathlib import Path

from .cli import EXIT_ERRORS, EXIT_OK, Usage, _overrides


def _graph_or_report(args):
    """The checked graph of args.file, or None after printing the file's diagnostics."""
    from .compiler.check import UsageError, build_graph, sources_of
    from .dsl.diagnostics import ArchError, render_all

    if not Path(args.file).is_file():
        raise Usage(f"no such file: {args.file}")
    try:
        return build_graph(args.file, variant=args.variant, input=args.input, **_overrides(args.set))
    except (UsageError, ValueError) as error:
        raise Usage(str(error)) from None
    except ArchError as error:
        print(render_all(error.diagnostics, sources_of(error.diagnostics, args.file, None)), file=sys.stderr)
        return None


def _title(args) -> str:
    return " ".join([Path(args.file).name] + ([f"--variant {args.variant}"] if args.variant else [])
                    + [f"--set {pair}" for pair in args.set] + ([f"--input {args.input}"] if args.input else []))


def graph(args) -> int:
    """Draw the checked graph with Graphviz's dot when installed, else with the built-in SVG layout."""
    from .compiler.emit_graph import GraphUsageError, check_output, render

    try:
        check_output(args.output)
    except GraphUsageError as error:
        raise Usage(str(error)) from None
    checked = _graph_or_report(args)
    if checked is None:
        return EXIT_ERRORS
    notes: list[str] = []
    try:
        renderer = render(checked, args.output, title=_title(args), depth=args.depth, notes=notes)
    except GraphUsageError as error:
        raise Usage(str(error)) from None
    except OSError as error:
        raise Usage(f"cannot write {args.output}: {error.strerror or error}") from None
    except RuntimeError as error:  # Graphviz itself failed
        print(f"archc: error: {error}", file=sys.stderr)
        return EXIT_ERRORS
    for note in notes:
        print(f"archc: note: {note}", file=sys.stderr)
    note = " (laid out without Graphviz; install graphviz for its layout)" if renderer == "python" else ""
    print(f"wrote {args.output}{note}")
    return EXIT_OK


def _network(args):
    from .compiler.emit_torch import Network

    checked = _graph_or_report(args)
    return None if checked is None else (Network(checked, name=Path(args.file).stem), checked)


def port(args) -> int:
    """Port a reference's weights; with a torchvision builder, check that the logits agree."""
    import torch

    from .compiler.emit_torch import port as port_weights
    from .compiler.export import port_and_compare, torchvision_reference

    built = _network(args)
    if built is None:
        return EXIT_ERRORS
    model, checked = built
    kind, colon, name = args.source.partition(":")
    try:
        if colon and kind == "torchvision":
            difference = port_and_compare(model, torchvision_reference(name, args.pretrained), checked.input_shape)
            verdict = "agree" if difference <= 1e-4 else "DISAGREE"
            print(f"eval logits {verdict} with torchvision's {name}: largest difference {difference:.2e} of their scale")
            if difference > 1e-4:
                return EXIT_ERRORS
        else:
            if not Path(args.source).is_file():
                raise Usage(f"--from takes torchvision:NAME or a state-dict file; no such file: {args.source}")
            port_weights(model, torch.load(args.source, map_location="cpu", weights_only=True))
    except ValueError as error:  # a tensor that does not fit, or an unknown torchvision model
        print(f"archc: error: {error}", file=sys.stderr)
        return EXIT_ERRORS
    except OSError as error:  # --pretrained without a network
        raise Usage(f"cannot fetch the reference's weights: {error}") from None
    torch.save(model.state_dict(), args.output)
    print(f"wrote {args.output} ({sum(p.numel() for p in model.parameters()):,} parameters)")
    return EXIT_OK


def export(args) -> int:
    """Write the network as ONNX (with the weights of --weights, else its initial ones)."""
    import torch

    from .compiler.emit_torch import port as port_weights
    from .compiler.export import export_onnx

    built = _network(args)
    if built is None:
        return EXIT_ERRORS
    model, checked = built
    if args.weights:
        try:
            model.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
        except (OSError, RuntimeError) as error:
            try:  # a reference's state dict: take it position by position
                port_weights(model, torch.load(args.weights, map_location="cpu", weights_only=True))
            except (OSError, ValueError, RuntimeError):
                raise Usage(f"cannot load weights from {args.weights}: {error}") from None
    try:
        export_onnx(model, checked.input_shape, args.onnx)
    except ImportError as error:
        raise Usage(f"ONNX export needs the onnx extra (pip install 'archc[onnx]'): {error}") from None
    print(f"wrote {args.onnx}")
    return EXIT_OK

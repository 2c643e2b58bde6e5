"""The commands that build the network: `graph`, `port`, `export`.

Each takes the trainer's checkpoints where a network or weights go: `archc graph RUN/best.pt` and
`archc export RUN/best.pt` draw and export the network a checkpoint holds, at its settings;
`--weights RUN/best.pt` (export) and `--from RUN/best.pt` (port) take its weights. Weights that
do not fit the network are explained with the settings that would fit, found by building them.

Kept apart from cli.py so that `archc check` and `archc fmt` never import them
(port and export import torch).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .cli import EXIT_ERRORS, EXIT_OK, Usage, _overrides, network_file


class _Checked:
    """The network a command works on: the checked graph, and where its settings and weights came from."""

    def __init__(self, graph, name: str, ckpt: dict | None = None):
        self.graph, self.name, self.ckpt = graph, name, ckpt


def _settings_given(args) -> bool:
    return bool(args.variant or args.set or args.input)


def _load(path: str) -> dict:
    from .runtime.checkpoint import CheckpointError, load_checkpoint

    try:
        return load_checkpoint(path)
    except CheckpointError as error:
        raise Usage(str(error)) from None


def _checked(args, weights: dict | None = None) -> _Checked | None:
    """args.file's checked graph (or a checkpoint's network); None after printing the file's diagnostics.

    `weights`: a checkpoint whose weights go into args.file's network: its settings are taken when the
    command line gives none and the file is the checkpoint's network.
    """
    from .compiler.check import UsageError, build_graph, sources_of
    from .dsl.diagnostics import ArchError, render_all

    if network_file(args.file, accept_checkpoint=True) == "checkpoint":
        if _settings_given(args):
            raise Usage(f"{args.file} is a checkpoint: its network's variant, parameters and input are its own "
                        "(leave out --variant, --set and --input)")
        ckpt = _load(args.file)
        from .runtime.checkpoint import CheckpointError, graph_of_checkpoint

        try:
            return _Checked(graph_of_checkpoint(ckpt), ckpt["network"], ckpt)
        except CheckpointError as error:
            print(f"archc: error: {args.file}: {error}", file=sys.stderr)
            return None
    variant, input, params = args.variant, args.input, _overrides(args.set)
    if weights is not None and not _settings_given(args) and Path(args.file).stem == weights["network"]:
        variant, input, params = weights["variant"], tuple(weights["input"]), dict(weights["params"])
        shown = " ".join(([f"--variant {variant}"] if variant else []) + [f"--set {k}={v}" for k, v in params.items()]
                         + [f"--input {'x'.join(map(str, input))}"])
        print(f"with the checkpoint's settings: {shown}")
    try:
        return _Checked(build_graph(args.file, variant=variant, input=input, **params), Path(args.file).stem)
    except (UsageError, ValueError) as error:
        raise Usage(str(error)) from None
    except ArchError as error:
        print(render_all(error.diagnostics, sources_of(error.diagnostics, args.file, None)), file=sys.stderr)
        return None


def _title(args, checked: _Checked) -> str:
    if checked.ckpt is not None:
        return f"{Path(args.file).name}: {checked.name}" + (f" {checked.ckpt['variant']}" if checked.ckpt["variant"]
                                                            else "")
    return " ".join([Path(args.file).name] + ([f"--variant {args.variant}"] if args.variant else [])
                    + [f"--set {pair}" for pair in args.set] + ([f"--input {args.input}"] if args.input else []))


def graph(args) -> int:
    """Draw the checked graph with Graphviz's dot when installed, else with the built-in SVG layout."""
    from .compiler.emit_graph import GraphUsageError, check_output, render

    try:
        check_output(args.output)
    except GraphUsageError as error:
        raise Usage(str(error)) from None
    checked = _checked(args)
    if checked is None:
        return EXIT_ERRORS
    notes: list[str] = []
    try:
        renderer = render(checked.graph, args.output, title=_title(args, checked), depth=args.depth, notes=notes)
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


def _module(checked: _Checked):
    from .compiler.emit_torch import build_module

    return build_module(checked.graph)


def _weights_of(path: str) -> tuple[dict, dict | None]:
    """(a state dict, the checkpoint it came from or None) from an archc checkpoint or a state-dict file."""
    import torch

    from .runtime.ckpt_format import sniff

    if not Path(path).is_file():
        raise Usage(f"no such file: {path}")
    if sniff(path) == "an archc checkpoint":
        ckpt = _load(path)
        return ckpt["model"], ckpt
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - as load_checkpoint, in its words
        from .runtime.checkpoint import _unreadable

        raise Usage(f"{path} is not a readable state dict: {_unreadable(path, error)}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise Usage(f"{path} holds no state dict (a dict of tensors, as archc port writes)")
    return state, None


def _what_fits(args, state: dict, ckpt: dict | None, checked: _Checked) -> str:
    """Which settings of args.file would take `state`, for a message (built, not guessed)."""
    from .compiler.export import fitting_settings

    if checked.ckpt is not None:
        return ""
    input = checked.graph.input_shape if args.input else None
    params = {k: v for k, v in _overrides(args.set).items() if k != "num_classes"}
    fits, counts = fitting_settings(args.file, state, params, input)
    trained = ""
    if ckpt is not None:
        settings = ([f"variant {ckpt['variant']}"] if ckpt["variant"] else []) + \
                   [f"{k}={v}" for k, v in ckpt["params"].items()]
        trained = f"; the checkpoint holds {ckpt['network']} ({', '.join(settings) or 'its defaults'})"
    if fits:
        default = fits[0] == "the file's defaults" or fits[0].startswith("--set")
        shown = [fits[0] + (" (and no --variant)" if args.variant else "")] if default else fits
        return f"{trained}; the weights fit {Path(args.file).name} with {' or '.join(shown)}"
    listed = ", ".join(f"{variant}: {n}" for variant, n in counts.items()) if len(counts) > 1 else \
        f"it has {next(iter(counts.values()), 0)}"
    return f"{trained}; no variant of {Path(args.file).name} has their {len(state)} tensors ({listed})"


def port(args) -> int:
    """Port a reference's weights; with a torchvision builder, check that the logits agree."""
    import torch

    from .compiler.emit_torch import port as port_weights
    from .compiler.export import port_and_compare, torchvision_reference

    kind, colon, name = args.source.partition(":")
    from_torchvision = colon and kind == "torchvision"
    state, ckpt = (None, None) if from_torchvision else _weights_of(args.source)
    checked = _checked(args, weights=ckpt)
    if checked is None:
        return EXIT_ERRORS
    model = _module(checked)
    try:
        if from_torchvision:
            reference = torchvision_reference(name, args.pretrained)
            state = reference.state_dict()
            difference = port_and_compare(model, reference, checked.graph.input_shape)
            verdict = "agree" if difference <= 1e-4 else "DISAGREE"
            print(f"eval logits {verdict} with torchvision's {name}: largest difference {difference:.2e} "
                  "of their scale")
            if difference > 1e-4:
                return EXIT_ERRORS
        else:
            port_weights(model, state)
    except ValueError as error:  # a tensor that does not fit, or an unknown torchvision model
        fits = _what_fits(args, state, ckpt, checked) if state is not None else ""
        print(f"archc: error: {error}{fits}", file=sys.stderr)
        return EXIT_ERRORS
    except OSError as error:  # --pretrained without a network
        raise Usage(f"cannot fetch the reference's weights: {error}") from None
    torch.save(model.state_dict(), args.output)
    print(f"wrote {args.output} ({sum(p.numel() for p in model.parameters()):,} parameters)")
    return EXIT_OK


def export(args) -> int:
    """Write the network as ONNX (with the weights of --weights or of a checkpoint FILE, else its initial ones);
    a checkpoint's classes, normalisation and view go into the ONNX metadata."""
    from .compiler.emit_torch import port as port_weights
    from .compiler.export import export_onnx

    state, ckpt = _weights_of(args.weights) if args.weights else (None, None)
    checked = _checked(args, weights=ckpt)
    if checked is None:
        return EXIT_ERRORS
    model = _module(checked)
    if checked.ckpt is not None:
        state, ckpt = (state, ckpt) if args.weights else (checked.ckpt["model"], checked.ckpt)
    if state is not None:
        try:
            model.load_state_dict(state)
        except RuntimeError:
            try:  # a reference's state dict: take it position by position
                port_weights(model, state)
            except ValueError as error:
                source = args.weights or args.file
                raise Usage(f"the weights of {source} do not fit: {error}{_what_fits(args, state, ckpt, checked)}") \
                    from None
    try:
        export_onnx(model, checked.graph.input_shape, args.onnx, metadata=_metadata(checked, ckpt))
    except ImportError as error:
        raise Usage(f"ONNX export needs the onnx extra (pip install 'archc[onnx]'): {error}") from None
    print(f"wrote {args.onnx}" + (f" (classes, normalisation and view of {args.weights or args.file} in its metadata)"
                                  if ckpt is not None else ""))
    return EXIT_OK


def _metadata(checked: _Checked, ckpt: dict | None) -> dict[str, str]:
    """The ONNX model's metadata_props: the network, and from a checkpoint how to prepare an image for it."""
    from . import __version__

    graph = checked.graph
    meta = {"archc_version": __version__, "network": checked.name, "input": json.dumps(list(graph.input_shape))}
    if ckpt is not None:
        _, height, width = ckpt["input"]
        meta.update(classes=json.dumps(ckpt["classes"]), normalize=json.dumps(ckpt["normalize"]),
                    eval_resize=str(ckpt["eval_resize"]), variant=ckpt["variant"] or "",
                    params=json.dumps(ckpt["params"]),
                    view=f"RGB or grey as input[0] says, values in [0, 1]: the short side resized to eval_resize "
                         f"(bilinear, antialiased), centre crop {height}x{width}, then (x - mean) / std")
    return meta

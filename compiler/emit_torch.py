"""The in-memory module: the generated source (compiler/emit_source.py), compiled.

    >>> import torch, archc
    >>> model = archc.build(archc.zoo_path("nin.arch")).eval()
    >>> model(torch.zeros(2, 1, 224, 224)).shape
    torch.Size([2, 10])
    >>> type(model.features[1]).__name__
    'MaxPool2d'

As torch.fx does with the code it generates, `archc.build` runs the file that
`archc build` writes, so the module and the source are one thing: the same
classes, attribute names, state_dict keys and forward. The file is made of
identifiers the grammar allows and literals the compiler writes, never of user
text (which reaches it only in comments), so nothing a user writes is executed.
The module of each distinct file is registered once under a name of its own,
so its classes pickle and `inspect.getsource` finds them.
"""

from __future__ import annotations

import hashlib
import linecache
import sys
import types

import torch
from torch import nn

from .emit_source import emit
from .graph import Graph


def build_module(graph: Graph) -> nn.Module:
    """The network of `graph` with fresh weights: `build()` of its generated file."""
    return load_source(emit(graph)).build()


def load_source(text: str) -> types.ModuleType:
    """The generated file as a Python module (one per distinct text)."""
    name = "archc_generated_" + hashlib.sha256(text.encode()).hexdigest()[:16]
    module = sys.modules.get(name)
    if module is None:
        filename = f"<archc {name}>"
        module = types.ModuleType(name)
        module.__file__ = filename
        code = compile(text, filename, "exec")
        linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
        exec(code, module.__dict__)  # noqa: S102 - archc's own output: identifiers and literals, no user text
        sys.modules[name] = module
    return module


def port(model: nn.Module, reference: dict[str, torch.Tensor] | nn.Module) -> list[tuple[str, str]]:
    """Copy a reference's weights into `model`, tensor by tensor in registration order.

    Returns the (model key, reference key) pairs. Raises ValueError naming the
    first tensor whose shape does not fit, or when the counts differ.
    """
    from .weights import strict_pairs

    theirs = reference.state_dict() if isinstance(reference, nn.Module) else reference
    pairs = strict_pairs(model.state_dict(), theirs)  # WeightMismatch, a ValueError, names the misfit
    new_state = {key: theirs[ref_key].detach().clone() for key, ref_key in pairs}
    model.load_state_dict(new_state)
    return pairs

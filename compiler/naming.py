"""The names of the modules inside a block, fixed by its source text.

Inside a block, a layer or nested block is named after what the statement
calls (`conv`, `conv2d`, `nl`); a name that occurs more than once in the same
module gets its occurrence as a suffix, counted in source order over every
branch of every `if` (`conv2d_0`, `conv2d_1`, `conv2d_2` in bneck). So a
layer's name does not depend on which conditions hold, and the emitted source
can say `self.conv2d_1` in both `__init__` and `forward`. Residual and gate
bodies add no level; a shortcut (`shortcut`) and each concat branch
(`branch_0`, `branch_1`, …) are modules of their own, named here too.

Network sections keep positional names (`features.3`), as a torch Sequential.

Names that would shadow an attribute of torch.nn.Module (`eval`, `to`,
`training`), a Python keyword or a name the emitted code uses get a trailing
underscore, so the same names work as Python attributes.
"""

from __future__ import annotations

import keyword
import re
from collections import Counter

from ..dsl import ast

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# Attributes of torch.nn.Module (torch 2.x; tests/test_emit_source.py checks this
# covers dir(nn.Module)), and the names the emitted code itself uses.
MODULE_ATTRIBUTES = frozenset(["T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children", "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer", "get_extra_state", "get_parameter", "get_submodule", "half", "ipu", "load_state_dict", "modules", "mtia", "named_buffers", "named_children", "named_modules", "named_parameters", "parameters", "register_backward_hook", "register_buffer", "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook", "register_full_backward_pre_hook", "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook", "register_module", "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_", "set_extra_state", "set_submodule", "share_memory", "smart_apply", "state_dict", "to", "to_empty", "train", "training", "type", "xpu", "zero_grad"])
EMITTED = frozenset({"self"})  # module attributes are `self.NAME`: only the few attributes the code sets itself
# (`use_*` flags, kept apart when lowering) could clash

# The classes of torch.nn (torch 2.14; tests/test_emit_source.py checks this covers dir(nn)): a
# generated class is not named like one, nor like the start of one (GoogLeNet's `max` block is
# not `Max`, which reads as MaxPool2d).
NN_CLASSES = frozenset([
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveLogSoftmaxWithLoss",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "AlphaDropout", "AvgPool1d", "AvgPool2d",
    "AvgPool3d", "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "Bilinear", "Buffer",
    "CELU", "CTCLoss", "ChannelShuffle", "CircularPad1d", "CircularPad2d", "CircularPad3d", "ConstantPad1d",
    "ConstantPad2d", "ConstantPad3d", "Container", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d",
    "ConvTranspose2d", "ConvTranspose3d", "CosineEmbeddingLoss", "CosineSimilarity", "CrossEntropyLoss",
    "CrossMapLRN2d", "DataParallel", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "ELU", "Embedding",
    "EmbeddingBag", "FeatureAlphaDropout", "Flatten", "Fold", "FractionalMaxPool2d", "FractionalMaxPool3d", "GELU",
    "GLU", "GRU", "GRUCell", "GaussianNLLLoss", "GroupNorm", "Hardshrink", "Hardsigmoid", "Hardswish", "Hardtanh",
    "HingeEmbeddingLoss", "HuberLoss", "Identity", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
    "KLDivLoss", "L1Loss", "LPPool1d", "LPPool2d", "LPPool3d", "LSTM", "LSTMCell", "LayerNorm", "LazyBatchNorm1d",
    "LazyBatchNorm2d", "LazyBatchNorm3d", "LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d",
    "LazyConvTranspose2d", "LazyConvTranspose3d", "LazyInstanceNorm1d", "LazyInstanceNorm2d", "LazyInstanceNorm3d",
    "LazyLinear", "LeakyReLU", "Linear", "LinearCrossEntropyLoss", "LinearCrossEntropyOptions", "LocalResponseNorm",
    "LogSigmoid", "LogSoftmax", "MSELoss", "MarginRankingLoss", "MaxPool1d", "MaxPool2d", "MaxPool3d",
    "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d", "Mish", "Module", "ModuleDict", "ModuleList",
    "MultiLabelMarginLoss", "MultiLabelSoftMarginLoss", "MultiMarginLoss", "MultiheadAttention", "NLLLoss",
    "NLLLoss2d", "PReLU", "PairwiseDistance", "Parameter", "ParameterDict", "ParameterList", "PixelShuffle",
    "PixelUnshuffle", "PoissonNLLLoss", "RMSNorm", "RNN", "RNNBase", "RNNCell", "RNNCellBase", "RReLU", "ReLU",
    "ReLU6", "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d", "ReplicationPad2d",
    "ReplicationPad3d", "SELU", "Sequential", "SiLU", "Sigmoid", "SmoothL1Loss", "SoftMarginLoss", "Softmax",
    "Softmax2d", "Softmin", "Softplus", "Softshrink", "Softsign", "SyncBatchNorm", "Tanh", "Tanhshrink",
    "Threshold", "Transformer", "TransformerDecoder", "TransformerDecoderLayer", "TransformerEncoder",
    "TransformerEncoderLayer", "TripletMarginLoss", "TripletMarginWithDistanceLoss", "Unflatten", "Unfold",
    "UninitializedBuffer", "UninitializedParameter", "Upsample", "UpsamplingBilinear2d", "UpsamplingNearest2d",
    "ZeroPad1d", "ZeroPad2d", "ZeroPad3d"
])


def class_name(name: str, taken: set[str]) -> str:
    """A block's name as a Python class: CamelCase, not a torch.nn name, not one already `taken`."""
    text = "".join(part[:1].upper() + part[1:] for part in name.split("_") if part) or "Block"
    like_torch = any(n == text or n.startswith(text) and not n[len(text)].islower() for n in NN_CLASSES)
    if like_torch or keyword.iskeyword(text):
        text += "Block"
    while text in taken:
        text += "_"
    return text


def python_name(name: str) -> str:
    """`name` as a safe Python attribute or variable name."""
    if keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in MODULE_ATTRIBUTES or name in EMITTED \
            or name.startswith("_"):
        return name + "_"
    return name


def scope_names(body: list) -> dict[tuple[str, int], str]:
    """The module names a block body gives, keyed by (role, id(node)).

    Roles: "call" (a call statement), "depth" (a residual's stochastic depth),
    "shortcut" (a residual's shortcut), "branch" (a concat branch), "layers" (a table's or
    a repeat's Sequential).
    """
    entries: list[tuple[tuple[str, int], str]] = []
    _collect(body, entries)
    totals = Counter(base for _key, base in entries)
    seen: Counter = Counter()
    names = {}
    for key, base in entries:
        if totals[base] > 1:
            names[key] = python_name(f"{base}_{seen[base]}")
            seen[base] += 1
        else:
            names[key] = python_name(base)
    return names


def _collect(body: list, entries: list) -> None:
    for stmt in body:
        kind = getattr(stmt, "kind", None)
        if kind == "call_stmt":  # `op.conv(...)` is named `conv`, as `conv(...)` is
            entries.append((("call", id(stmt)), stmt.call.func.rsplit(".", 1)[-1]))
        elif kind == "if":
            _collect(stmt.then, entries)
            _collect(stmt.other, entries)
        elif kind == "residual":
            _collect(stmt.body, entries)
            if any(k.name == "stochastic_depth" for k in stmt.kwargs):
                entries.append((("depth", id(stmt)), "stochastic_depth"))
            if stmt.shortcut is not None:
                entries.append((("shortcut", id(stmt)), "shortcut"))
        elif kind == "multiply":
            _collect(stmt.body, entries)
        elif kind == "concat":
            for branch in stmt.branches:
                entries.append((("branch", id(branch)), "branch"))
        elif kind in ("table", "repeat"):  # its modules are an nn.Sequential
            entries.append((("layers", id(stmt)), "layers"))


def body_names(body: list, cache: dict[int, dict]) -> dict[tuple[str, int], str]:
    """`scope_names`, computed once per body (the AST lives as long as the program)."""
    key = id(body)
    if key not in cache:
        cache[key] = scope_names(body)
    return cache[key]


__all__ = ["IDENTIFIER", "NN_CLASSES", "ast", "body_names", "class_name", "python_name", "scope_names"]

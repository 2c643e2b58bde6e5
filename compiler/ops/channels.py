"""Ops over the channels of a feature map: ConvNeXt's layer norm, linear layers and layer scale
(Liu et al. 2022, torchvision's CNBlock and LayerNorm2d), and ShuffleNetV2's channel split and
shuffle (Ma et al. 2018)."""

from __future__ import annotations

from math import prod

from pydantic import Field

from .base import Arg, Attrs, Op, Saved, ShapeError, check_dims, free, always, keeps_nothing, pointwise


class LayerNormAttrs(Attrs):
    eps: float = Field(default=1e-5, gt=0)


def _fvcore_layernorm(layer, batch: int) -> int:
    # fvcore's norm_flop_jit on aten::layer_norm (affine): 5 per input element
    return batch * 5 * prod(layer.in_shapes[0])


def _ptflops_layernorm(layer, batch: int) -> int:
    # ptflops 0.7.5 hooks nn.LayerNorm by exact type, one per input element: the vector form; it has no
    # rule for LayerNorm2d, the subclass (measured on the live tool)
    shape = layer.in_shapes[0]
    return batch * prod(shape) if len(shape) == 1 else 0


def _five(layer, batch: int) -> int:
    # calflops' patch of F.layer_norm: 5 FLOPs per input element when affine, no MACs
    return batch * 5 * prod(layer.in_shapes[0])


def _layernorm_saved(layer, in_place: bool) -> tuple[Saved, ...]:
    # native_layer_norm's backward: its input (a permuted view of it), and a float32 mean and inverse
    # standard deviation per position normalised
    positions = layer.in_shapes[0][1:] or (1,)
    stat = Saved("new", shape=positions, dtype="float32")
    return (Saved("input"), stat, stat)


class LayerNorm(Op):
    name = "layernorm"
    Attrs = LayerNormAttrs
    category = "norm"
    doc = "layernorm(eps=1e-5): over the channels at each position (LayerNorm2d); over the features of a vector"
    module, module_vector, channels = "LayerNorm2d", "nn.LayerNorm", True
    args = (Arg("eps", "eps", default=1e-5),)
    thop = staticmethod(free)  # thop 0.1.1 has no rule for LayerNorm
    fvcore = staticmethod(_fvcore_layernorm)
    ptflops, calflops, calflops_flops = staticmethod(_ptflops_layernorm), staticmethod(free), staticmethod(_five)
    window, saved = staticmethod(pointwise), staticmethod(_layernorm_saved)
    autocast = "float32"  # torch's autocast runs layer_norm in float32
    defines = '''class LayerNorm2d(nn.LayerNorm):
    """torchvision's LayerNorm2d: a layer norm over the channels at each position of a map."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)'''

    def infer(self, a, inputs):
        return check_dims(inputs[0])

    def param_shapes(self, a, inputs):
        c = inputs[0][0]
        return {"weight": (c,), "bias": (c,)}


class ChannelLinearAttrs(Attrs):
    out: int = Field(gt=0)
    bias: bool = True


def _thop_channel_linear(layer, batch: int) -> int:
    return 0  # a class of the file's own, which thop has no rule for


def _fvcore_channel_linear(layer, batch: int) -> int:
    # linear_flop_jit on aten::linear: input elements × out_features; no bias
    return batch * prod(layer.in_shapes[0]) * layer.out_shape[0]


def _ptflops_channel_linear(layer, batch: int) -> int:
    # ptflops hooks nn.Linear by exact type (in × out, plus out for the bias): the vector form only; calflops
    # patches F.linear, input elements × out_features MACs, no bias, as fvcore counts
    shape = layer.in_shapes[0]
    if len(shape) != 1:
        return 0
    return batch * (shape[0] * layer.out_shape[0] + (layer.out_shape[0] if "bias" in layer.params else 0))


def _channel_linear_saved(layer, in_place: bool) -> tuple[Saved, ...]:
    # addmm's backward keeps its two matrices: on a map, the permuted input made contiguous (a copy of the
    # input's size) and the weight; on a vector (nn.Linear), the input itself
    shape = layer.in_shapes[0]
    return ((Saved("new", shape=shape) if len(shape) == 3 else Saved("input")), Saved("weight"))


class ChannelLinear(Op):
    name = "channel_linear"
    Attrs = ChannelLinearAttrs
    category = "linear"
    keeps_inputs_only = True
    doc = "channel_linear(out, bias=true): a linear layer over the channels at each position (ConvNeXt's MLP)"
    module, module_vector, channels = "ChannelLinear", "nn.Linear", True
    out_attr = "out"
    args = (Arg("out_features", "out", positional=True), Arg("bias", "bias", default=True))
    thop, fvcore = staticmethod(_thop_channel_linear), staticmethod(_fvcore_channel_linear)
    ptflops, calflops = staticmethod(_ptflops_channel_linear), staticmethod(_fvcore_channel_linear)
    calflops_flops = staticmethod(lambda layer, batch: 2 * _fvcore_channel_linear(layer, batch))
    window, saved = staticmethod(pointwise), staticmethod(_channel_linear_saved)
    autocast = "lower"
    defines = '''class ChannelLinear(nn.Linear):
    """nn.Linear over the channels at each position of a map (torchvision's Permute, Linear, Permute)."""

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)'''

    def infer(self, a, inputs):
        return check_dims((a.out, *inputs[0][1:]))

    def param_shapes(self, a, inputs):
        shapes = {"weight": (a.out, inputs[0][0])}
        if a.bias:
            shapes["bias"] = (a.out,)
        return shapes


class LayerScaleAttrs(Attrs):
    init: float = 1e-6
    first: bool = False  # registered before the block's other modules, as torchvision's CNBlock registers it


class LayerScale(Op):
    name = "layer_scale"
    Attrs = LayerScaleAttrs
    category = "norm"
    doc = "layer_scale(init=1e-6, first=false): a learnable scale per channel (CaiT, ConvNeXt), C×1×1"
    keeps_inputs_only = True  # x * weight: its backward needs x and the weight, not the product
    module, channels = "LayerScale", True
    args = (Arg("init", "init", positional=True),)
    thop = fvcore = staticmethod(free)  # an elementwise product
    ptflops = calflops = calflops_flops = staticmethod(free)
    # x * weight keeps both (each for the other's gradient); under autocast a bfloat16 x times the float32
    # weight is float32
    window, saved = staticmethod(pointwise), staticmethod(lambda layer, in_place: (Saved("input"), Saved("weight")))
    autocast = "float32"
    defines = '''class LayerScale(nn.Module):
    """A learnable scale per channel (torchvision's CNBlock.layer_scale), initialised to `init`."""

    def __init__(self, c, init):
        super().__init__()
        self.weight = nn.Parameter(torch.full((c, 1, 1), float(init)))

    def forward(self, x):
        return x * self.weight'''

    def infer(self, a, inputs):
        if len(inputs[0]) != 3:
            raise ShapeError("layer_scale scales a C×H×W feature map", code="E306")
        return inputs[0]

    def param_shapes(self, a, inputs):
        return {"weight": (inputs[0][0], 1, 1)}

    def macs(self, a, inputs, out):
        return 0  # torchinfo: a parameter of the block, not of a layer it counts


class ChunkAttrs(Attrs):
    parts: int = Field(gt=0, le=1 << 20)
    index: int = Field(ge=0)


class Chunk(Op):
    name = "chunk"
    Attrs = ChunkAttrs
    category = "shape"
    identity_at_eval = False
    doc = "chunk(parts, index): the index-th of `parts` equal parts of the channels (torch.chunk)"
    module = "Chunk"
    args = (Arg("parts", "parts", positional=True), Arg("index", "index", positional=True))
    thop = fvcore = ptflops = calflops = calflops_flops = staticmethod(free)
    window, saved = staticmethod(pointwise), staticmethod(keeps_nothing)
    returns_input = staticmethod(always)  # a view of its input's storage: what keeps it keeps the whole
    defines = '''class Chunk(nn.Module):
    """One of `parts` equal parts of the channels: torch.chunk(x, parts, 1)[index]."""

    def __init__(self, parts, index):
        super().__init__()
        self.parts, self.index = parts, index

    def forward(self, x):
        return x.chunk(self.parts, 1)[self.index]'''

    def out_channels(self, c, attrs):
        from ..pyexpr import binary

        return binary("//", c, attrs["parts"]) if c is not None and attrs.get("parts") is not None else None

    def infer(self, a, inputs):
        c = inputs[0][0]
        if c % a.parts or a.index >= a.parts:
            raise ShapeError(f"chunk({a.parts}, {a.index}): {c} channels do not split into {a.parts} equal parts"
                             if c % a.parts else f"chunk({a.parts}, {a.index}): the index is 0 to {a.parts - 1}",
                             code="E300")
        return (c // a.parts, *inputs[0][1:])


class ShuffleAttrs(Attrs):
    groups: int = Field(gt=0, le=1 << 20)


class ChannelShuffle(Op):
    name = "channel_shuffle"
    Attrs = ShuffleAttrs
    category = "shape"
    doc = "channel_shuffle(groups): ShuffleNet's interleaving of the channels of `groups` groups"
    module = "ShuffleChannels"  # torchvision's reshape and transpose (nn.ChannelShuffle's result is laid out
    # otherwise in memory, so the next conv would round differently)
    args = (Arg("groups", "groups", positional=True),)
    thop = fvcore = ptflops = calflops = calflops_flops = staticmethod(free)
    window, saved = staticmethod(pointwise), staticmethod(keeps_nothing)  # views, a transpose and a copy
    defines = '''class ShuffleChannels(nn.Module):
    """ShuffleNet's channel shuffle, as torchvision computes it: groups of channels interleaved."""

    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        n, c, h, w = x.shape
        x = x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).contiguous()
        return x.view(n, c, h, w)'''

    def infer(self, a, inputs):
        if len(inputs[0]) != 3 or inputs[0][0] % a.groups:
            raise ShapeError(f"channel_shuffle({a.groups}) needs a map whose channels divide into {a.groups} groups",
                             code="E300")
        return inputs[0]

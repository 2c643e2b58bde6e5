"""The constructs issue 11 adds to the language, each against torch: ConvNeXt's block (layer norm and
linear layers over the channels, layer scale registered first), ShuffleNetV2's unit (a channel split,
a shuffle), RegNet's residual (its projection registered before the body) and DenseNet's dense block (a
loop) port torchvision's weights position by position and give its outputs; named tensors, `op.NAME`,
powers and logarithms, and the table forms (roles in brackets, the paper's spellings, numbered flags,
thousands separators, output rows, exact cells) check, build and equal the IR run directly."""

import math

import pytest
from oracles import assert_same_network, randomise

import archc
from archc.compiler.check import build_graph

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
torchinfo = pytest.importorskip("torchinfo")
from torch import nn  # noqa: E402


def write(tmp_path, text: str, name: str = "net.arch"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def network(blocks: str, body: str, size: str, params: str = "") -> str:
    return f"{blocks}\nnetwork net({params})\ninput {size}\n\nblocks:\n{body}"


def ports(path, reference: nn.Module, shape, **kwargs) -> None:
    """The network is the checked graph, takes the reference's tensors by position, and then computes what
    the reference does (to float rounding: the two lay their permutes and sums out differently)."""
    graph = build_graph(path, **kwargs)
    model = archc.build(path, **kwargs)
    assert_same_network(graph, model, graph.input_shape)
    reference = randomise(reference, seed=4).eval()
    assert len(archc.port(model, reference)) == len(reference.state_dict())
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ours, theirs = model.eval()(x), reference(x)
    assert ours.shape == theirs.shape
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-5 * theirs.abs().max().item())


CN_BLOCK = """\
block cn_block(dim, p = 0):
    residual(stochastic_depth = p):
        conv(dim, 7, groups = dim)
        layernorm(eps = 1e-6)
        channel_linear(4 * dim)
        gelu()
        channel_linear(dim)
        layer_scale(1e-6, first = true)
"""


def test_convnext_block_is_torchvisions_cnblock(tmp_path):
    from torchvision.models.convnext import CNBlock

    path = write(tmp_path, network(CN_BLOCK, "    cn_block(16)\n", "16 x 8 x 8"))
    ports(path, nn.Sequential(CNBlock(16, 1e-6, 0.0)), (16, 8, 8))
    model = archc.build(path)
    assert list(model.state_dict())[0] == "blocks.0.layer_scale.weight"  # before the conv, as torchvision's
    summary = torchinfo.summary(CNBlock(16, 1e-6, 0.0), input_size=(1, 16, 8, 8), verbose=0)
    assert archc.check(path).macs == summary.total_mult_adds  # layer scale is the block's, uncounted


def test_convnext_layer_norm_over_channels_is_layernorm2d(tmp_path):
    from torchvision.models.convnext import LayerNorm2d

    path = write(tmp_path, network("", "    layernorm(eps = 1e-6)\n", "8 x 5 x 5"))
    ports(path, nn.Sequential(LayerNorm2d(8, eps=1e-6)), (8, 5, 5))


SHUFFLE = """\
block cbr(out, k = 1, s = 1, g = 1, act = relu):
    conv(out, k, stride = s, groups = g, bias = false)
    batchnorm()
    act()

block shuffle_unit(out, s = 1):
    if s == 1:
        concat:
            branch: chunk(2, 0)
            branch:
                chunk(2, 1)
                cbr(out // 2)
                cbr(out // 2, 3, g = out // 2, act = none)
                cbr(out // 2)
    else:
        concat:
            branch:
                cbr(in.c, 3, s = s, g = in.c, act = none)
                cbr(out // 2)
            branch:
                cbr(out // 2)
                cbr(out // 2, 3, s = s, g = out // 2, act = none)
                cbr(out // 2)
    channel_shuffle(2)
"""


@pytest.mark.parametrize("stride", [1, 2])
def test_shufflenet_unit_is_torchvisions(tmp_path, stride):
    from torchvision.models.shufflenetv2 import InvertedResidual

    path = write(tmp_path, network(SHUFFLE, f"    shuffle_unit(24, s = {stride})\n", "24 x 8 x 8"))
    ports(path, nn.Sequential(InvertedResidual(24, 24, stride)), (24, 8, 8))


REGNET = """\
block cna(out, k = 1, s = 1, g = 1, act = relu):
    conv(out, k, stride = s, groups = g, bias = false)
    batchnorm()
    act()

block res_bottleneck(w, s = 1, group = 8):
    residual(shortcut_first = true):
        cna(w)
        cna(w, 3, s = s, g = w // group)
        cna(w, act = none)
    shortcut if s != 1 or in.c != w:
        cna(w, s = s, act = none)
    relu()
"""


def test_regnet_registers_its_projection_before_the_body(tmp_path):
    from torchvision.models.regnet import ResBottleneckBlock

    path = write(tmp_path, network(REGNET, "    res_bottleneck(32, s = 2)\n    res_bottleneck(32)\n", "16 x 8 x 8"))
    reference = nn.Sequential(ResBottleneckBlock(16, 32, 2, nn.BatchNorm2d, nn.ReLU, 8, 1.0, None),
                              ResBottleneckBlock(32, 32, 1, nn.BatchNorm2d, nn.ReLU, 8, 1.0, None))
    ports(path, reference, (16, 8, 8))
    assert list(archc.build(path).state_dict())[0] == "blocks.0.shortcut.cna.conv.weight"


DENSE = """\
block dense_layer(growth):
    concat:
        branch: identity()
        branch:
            batchnorm()
            relu()
            conv(4 * growth, 1, bias = false)
            batchnorm()
            relu()
            conv(growth, 3, bias = false)

block dense_block(n, growth = 8):
    repeat n:
        dense_layer(growth)
"""


def test_a_loop_builds_densenets_dense_block(tmp_path):
    from torchvision.models.densenet import _DenseBlock

    path = write(tmp_path, network(DENSE, "    dense_block(3)\n    dense_block(2, growth = 4)\n", "16 x 8 x 8"))
    reference = nn.Sequential(_DenseBlock(3, 16, 4, 8, 0.0), _DenseBlock(2, 40, 4, 4, 0.0))
    ports(path, reference, (16, 8, 8))
    text = archc.source(path)
    assert "*[DenseLayer(in_c + i * growth, growth) for i in range(n)]" in text


def test_named_tensors_make_a_dag_in_a_block(tmp_path):
    blocks = ("block tree(c):\n    conv(c, 3)\n    keep a\n    conv(c, 3)\n    relu()\n    keep b\n"
              "    concat a, b\n    conv(c, 1)\n    keep m\n    from a\n    conv(c, 3)\n    add a, m\n")
    path = write(tmp_path, network(blocks, "    tree(8)\n    tree(4)\n", "3 x 8 x 8"))
    graph = build_graph(path)
    assert_same_network(graph, archc.build(path), graph.input_shape)
    joins = [l for l in graph.layers() if l.op in ("concat", "add")]
    assert [(l.op, l.out_shape) for l in joins] == [("concat", (16, 8, 8)), ("add", (8, 8, 8)),
                                                    ("concat", (8, 8, 8)), ("add", (4, 8, 8))]
    assert "x = torch.cat([a_t, b_t], 1)" in archc.source(path)


def test_a_named_tensor_must_be_kept_first_and_stands_in_a_block(tmp_path):
    path = write(tmp_path, network("block t():\n    conv(4, 3)\n    from a\n", "    t()\n", "3 x 8 x 8"))
    (diagnostic,) = [d for d in archc.check(path).diagnostics if d.severity == "error"]
    assert (diagnostic.code, diagnostic.span.line) == ("E200", 3) and "keep" in diagnostic.hint
    path = write(tmp_path, network("", "    conv(4, 3)\n    keep a\n", "3 x 8 x 8"))
    (diagnostic,) = [d for d in archc.check(path).diagnostics if d.severity == "error"]
    assert diagnostic.code == "E209" and "stand in a block" in diagnostic.message


def test_op_names_the_op_a_block_hides(tmp_path):
    """SqueezeNet's file may call a block `conv`: inside it, `op.conv` is still the primitive."""
    blocks = "block conv(out):\n    op.conv(out, 3, bias = false)\n    batchnorm()\n    relu()\n"
    path = write(tmp_path, network(blocks, "    conv(8)\n    conv(4)\n", "3 x 8 x 8"))
    graph = build_graph(path)
    assert [l.name for l in graph.layers()][:3] == ["blocks.0.conv", "blocks.0.batchnorm", "blocks.0.relu"]
    assert_same_network(graph, archc.build(path), graph.input_shape)
    path = write(tmp_path, network("", "    op.nope(3)\n", "3 x 8 x 8"))
    (diagnostic,) = [d for d in archc.check(path).diagnostics if d.severity == "error"]
    assert diagnostic.code == "E201" and "nope" in diagnostic.message


def test_round_even_rounds_half_to_even_as_torch_does(tmp_path):
    """torchvision quantises RegNet's widths with torch.round: RegNetX-1.6GF's 80 · 2.25 / 8 = 22.5 goes to 22,
    where `round` (half up, as papers round) gives 23; the generated source computes the same."""
    values = [22.5, 23.5, -2.5, 7.25]
    path = write(tmp_path, network("", "".join(f"    conv(round_even(a + {v}) + 10, 1)\n" for v in values), "3 x 4 x 4",
                                   "a = 0.0"))
    widths = [l.out_shape[0] for l in build_graph(path).layers()]
    assert widths == [int(torch.round(torch.tensor(v)).item()) + 10 for v in values] == [32, 34, 8, 17]
    assert_same_network(build_graph(path), archc.build(path), (3, 4, 4))


def test_powers_and_logarithms_give_regnets_widths(tmp_path):
    """RegNetY-400MF's quantised widths (Radosavovic et al. 2020, eq. 2-4) from w0, wa, wm, in the language."""
    w0, wa, wm, q = 48, 27.89, 2.09, 8
    lets = "".join(f"let width{j} = round(w0 * wm ** round(log((w0 + wa * {j}) / w0) / log(wm)) / q) * q\n"
                   for j in range(16))
    path = write(tmp_path, f"let w0 = {w0}\nlet wa = {wa}\nlet wm = {wm}\nlet q = {q}\n{lets}\n" + network(
        "", "".join(f"    conv(width{j}, 1)\n" for j in range(16)), "3 x 4 x 4"))
    widths = [l.out_shape[0] for l in build_graph(path).layers()]
    expected = [int(round(w0 * wm ** round(math.log((w0 + wa * j) / w0) / math.log(wm)) / q) * q) for j in range(16)]
    assert widths == expected
    text = archc.source(path)
    assert "nn.Conv2d(3, 48, 1)" in text and "nn.Conv2d(208, 440, 1)" in text and widths[-1] == 440


def test_table_roles_spellings_flags_and_exact_cells(tmp_path):
    blocks = ('block vgg_conv(k, out) "conv{k}-{out}":\n    conv(out, k)\n    relu()\n\n'
              'block fc(out) "FC-{out}":\n    linear(out)\n\n'
              'block fused(expand, k, out "#channels", s = 1, se "SE{}" = 0) "Fused-MBConv{expand}":\n'
              '    conv(in.c * expand, k, stride = s)\n    if se > 0:\n        conv(max(1, round(in.c * se)), 1)\n'
              '    conv(out, 1)\n')
    text = f"""{blocks}
network v(num_classes = 10, width = 1.0)
input 3 x 32 x 32

features where out = round(out * width):
    | operator                    | #channels | n [param] | d [repeat] | params |
    | conv3-64                    | -         | -         | -          | -      |
    | maxpool, 2x2/2              | -         | -         | -          | -      |
    | Fused-MBConv1, k3x3         | 24        | -         | 2          | -      |
    | Fused-MBConv4, k3x3, SE0.25 | 48        | -         | 1          | 21,750 |
    | output mid                  | -         | -         | -          | -      |

classifier:
    global_avgpool()
    flatten()
    | operator | #out          |
    | FC-128   | = 128 * 2     |
    | fc       | = num_classes |
"""
    path = write(tmp_path, text)
    report = archc.check(path, width=2.0)
    assert report.ok, [d.message for d in report.diagnostics]
    graph = build_graph(path, width=2.0)
    convs = [(l.name, l.out_shape[0]) for l in graph.layers() if l.op == "conv"]
    assert convs[0] == ("features.0.conv", 64)  # conv3-64: no where rewrites a spelling's numbers
    assert [c for n, c in convs if n.startswith("features.2.")] == [64, 48]  # Fused-MBConv1: 64 -> 24 * 2
    assert [c for n, c in convs if n.startswith("features.4.")] == [192, 12, 96]  # SE0.25: a quarter of 48
    assert [l.out_shape for l in graph.layers() if l.op == "linear"] == [(256,), (10,)]  # exact cells: no where
    assert graph.shape_of(graph.outputs["mid"]) == (96, 16, 16)
    assert_same_network(graph, archc.build(path, width=2.0), graph.input_shape)


def test_index_and_count_number_the_rows_that_repeat(tmp_path):
    blocks = "block drop(p):\n    dropout(p)\n"
    body = ("    | operator | p              | n |\n    | drop     | 0.5            | - |\n"
            "    | drop     | index / count  | 2 |\n    | drop     | index / count  | 2 |\n"
            "    | drop     | index / count  | - |\n")
    path = write(tmp_path, network(blocks, body, "3 x 4 x 4"))
    ps = [l.attrs.p for l in build_graph(path).layers()]
    assert ps == [0.5, 0.0, 0.25, 0.5, 0.75, 1.0]  # the - rows are not counted: the last sees index 4 = count


def test_an_operator_cell_reads_the_same_separated_by_spaces_or_commas(tmp_path):
    """`Fused-MBConv4 k3x3 SE0.25` is `Fused-MBConv4, k3x3, SE0.25`: a word of atoms written without a space
    (`SE0` and `.25`) is one flag, and the spelling is the first word, not the whole part."""
    blocks = ('block fused(expand, k, out "#channels", s = 1, se "SE{}" = 0) "Fused-MBConv{expand}":\n'
              '    conv(in.c * expand, k, stride = s)\n    if se > 0:\n        conv(max(1, round(in.c * se)), 1)\n'
              '    conv(out, 1)\n')
    graphs = []
    for cell in ("Fused-MBConv4, k3x3, SE0.25", "Fused-MBConv4 k3x3 SE0.25", "Fused-MBConv4 k3x3, SE0.25"):
        path = write(tmp_path, f"{blocks}\nnetwork v()\ninput 3 x 32 x 32\n\nfeatures:\n"
                               f"    | operator | #channels |\n    | {cell} | 48 |\n")
        report = archc.check(path)
        assert report.ok, (cell, [d.message for d in report.diagnostics])
        graphs.append([(l.name, l.out_shape, l.param_count) for l in build_graph(path).layers()])
    assert graphs[0] == graphs[1] == graphs[2] and [s[0] for _, s, _ in graphs[0] if len(s) == 3] == [12, 1, 48]


def test_a_spelling_may_be_written_with_spaces(tmp_path):
    """`conv3 - 16` is the spelling conv{k}-{out} as `conv3-16` is: the whole first part is tried before its
    first word."""
    path = write(tmp_path, 'block vgg_conv(k, out) "conv{k}-{out}":\n    conv(out, k)\n\nnetwork v()\ninput 3 x 16 x 16\n\n'
                           "features:\n    | operator   |\n    | conv3 - 16 |\n    | conv3-8 3x3 |\n")
    report = archc.check(path)
    assert report.ok, [d.message for d in report.diagnostics]
    assert [l.params for l in report.layers if l.op == "conv"] == [3 * 9 * 16 + 16, 16 * 9 * 8 + 8]

"""The language features of PRODUCT.md, each on a small network, checked by
hand-computed figures or by an equivalent torch stack."""


import pytest

import archc
from conftest import ZOO

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402


def check(text, **kw):
    return archc.check(ZOO / "test.arch", text=text, **kw)


def errors(report):
    return [d for d in report.diagnostics if d.severity == "error"]


def params_of(*modules):
    return sum(p.numel() for m in modules for p in m.parameters())


REPEAT = """\
block cbr(out "#out", s = 1):
    conv(out, 3, stride = s, bias = false)
    batchnorm()
    relu()

network r(num_classes = 10, depth = 1.0)
input 3 x 32 x 32

stages where n = ceil(n * depth):
    | input   | operator | #out | n | s |
    | 32² × 3 | cbr      | 8    | 1 | 1 |
    | 32² × 8 | cbr      | 16   | 3 | 2 |
    | 16² × 16| cbr      | 32   | 2 | 2 |
"""


def test_repeat_column_strides_only_the_first_repeat():
    report = check(REPEAT)
    assert not errors(report)
    convs = [l for l in report.layers if l.op == "conv"]
    assert [tuple(l.output_shape) for l in convs] == [(8, 32, 32), (16, 16, 16), (16, 16, 16), (16, 16, 16),
                                                        (32, 8, 8), (32, 8, 8)]
    ref = nn.Sequential(*[nn.Conv2d(i, o, 3, s, 1, bias=False) for i, o, s in
                          [(3, 8, 1), (8, 16, 2), (16, 16, 1), (16, 16, 1), (16, 32, 2), (32, 32, 1)]],
                        *[nn.BatchNorm2d(c) for c in (8, 16, 16, 16, 32, 32)])
    assert report.params == params_of(ref)


def test_where_scales_the_repeat_column_and_skips_size_assertions():
    report = check(REPEAT, depth=2.0)
    assert len([l for l in report.layers if l.op == "conv"]) == 12  # ceil(n * 2) per row
    assert any(d.code == "N001" for d in report.diagnostics)
    assert not errors(report)


def test_repeat_of_a_billion_is_an_error_not_an_attempt():
    report = check(REPEAT.replace("| 16   | 3 | 2 |", "| 16   | 1000000000 | 2 |"))
    assert [d.code for d in errors(report)] == ["E400"]
    assert errors(report)[0].span.line == 12


RESOLUTION = """\
block mb(out "#Channels", s = 1):
    conv(out, 3, stride = s)

network e()
input 3 x 224 x 224

stages:
    | Stage | Operator | Resolution | #Channels | #Layers |
    | 1     | mb       | 224 × 224  | 32        | 1       |
    | 2     | mb       | 112 × 112  | 16        | 1       |
    | 3     | mb       | 112 × 112  | 24        | 2       |
    | 4     | mb       | 56 × 56    | 40        | 2       |
"""


def test_strides_are_derived_from_the_resolution_column():
    report = check(RESOLUTION)
    assert not errors(report), errors(report)
    assert [tuple(l.output_shape) for l in report.layers] == [(32, 112, 112), (16, 112, 112), (24, 56, 56),
                                                               (24, 56, 56), (40, 56, 56), (40, 56, 56)]


def test_a_wrong_resolution_is_reported_at_its_cell():
    report = check(RESOLUTION.replace("| 2     | mb       | 112 × 112", "| 2     | mb       | 100 × 100"))
    assert [(d.code, d.span.line) for d in errors(report)] == [("E209", 9), ("E209", 10)]


VARIANTS = """\
block basic(out "#out", s = 1):
    residual:
        conv(out, 3, stride = s, bias = false)
        batchnorm()
        relu()
        conv(out, 3, bias = false)
        batchnorm()
    shortcut if s != 1 or in.c != out:
        conv(out, 1, stride = s, bias = false)
        batchnorm()
    relu()

network tiny(num_classes = 10, n2 = 1, n3 = 1, block = basic)
input 3 x 32 x 32
variant deeper(n2 = 2, n3 = 3)

stem:
    conv(16, 3, bias = false)
    batchnorm()
    relu()

stages:
    | input    | operator | #out | n  | s |
    | 32² × 16 | block    | 16   | n2 | 1 |
    | 32² × 16 | block    | 32   | n3 | 2 |

head:
    global_avgpool()
    output features
    flatten()
    linear(num_classes)
"""


class Basic(nn.Module):
    def __init__(self, cin, out, s):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(cin, out, 3, s, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(),
                               nn.Conv2d(out, out, 3, 1, 1, bias=False), nn.BatchNorm2d(out))
        self.b = nn.Sequential(nn.Conv2d(cin, out, 1, s, bias=False), nn.BatchNorm2d(out)) if s != 1 or cin != out \
            else nn.Identity()

    def forward(self, x):
        return torch.relu(self.a(x) + self.b(x))


def tiny(n2, n3, num_classes=10):
    blocks = [Basic(16, 16, 1) for _ in range(n2)] + [Basic(16, 32, 2)] + [Basic(32, 32, 1) for _ in range(n3 - 1)]
    return nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), *blocks,
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, num_classes))


@pytest.mark.parametrize("variant,n2,n3", [(None, 1, 1), ("deeper", 2, 3)])
def test_variants_and_a_block_chosen_by_a_parameter(variant, n2, n3):
    report = check(VARIANTS, variant=variant)
    assert not errors(report), errors(report)
    assert report.params == params_of(tiny(n2, n3))
    assert report.outputs["features"] == [32, 1, 1]
    assert report.output_shape == [10]


def test_set_overrides_a_variant():
    report = check(VARIANTS, variant="deeper", n3=1, num_classes=3)
    assert report.params == params_of(tiny(2, 1, 3))


def test_residual_without_a_shortcut_on_a_shape_change_is_located():
    text = VARIANTS.replace("    shortcut if s != 1 or in.c != out:\n        conv(out, 1, stride = s, bias = false)\n"
                            "        batchnorm()\n", "")
    found = errors(check(text))
    assert found and found[0].code == "E303" and found[0].span.line == 2


AUX = """\
block head(n):
    avgpool(5, stride = 3)
    conv(8, 1)
    flatten()
    linear(n)

network g(num_classes = 4, aux = true)
input 3 x 32 x 32

features:
    conv(16, 3)
    aux aux1 = head(num_classes) if aux
    conv(16, 3)

classifier:
    global_avgpool()
    flatten()
    linear(num_classes)
"""


def test_aux_heads_count_in_params_but_not_in_eval_macs_or_memory():
    with_aux, without = check(AUX), check(AUX, aux=False)
    assert not errors(with_aux) and not errors(without)
    head = nn.Sequential(nn.AvgPool2d(5, 3), nn.Conv2d(16, 8, 1), nn.Flatten(), nn.Linear(8 * 10 * 10, 4))
    assert with_aux.params - without.params == params_of(head)
    assert with_aux.macs == without.macs
    assert with_aux.memory == without.memory
    assert any(l.aux for l in with_aux.layers) and not any(l.aux for l in without.layers)


PARTIAL = """\
let NBN_ = true
block mbconv(expand, k, out "#out", nbn "NBN" = false):
    conv(in.c * expand, 1, bias = nbn)
    conv(in.c * expand, k, groups = in.c * expand)
    conv(out, 1)
let MBConv6 = mbconv(expand = 6)

network p()
input 8 x 16 x 16

f:
    | operator        | #out |
    | MBConv6, k5x5   | 8    |
    | MBConv6 3x3 NBN | 4    |
"""


def test_partials_kernels_and_flags_from_the_operator_cell():
    report = check(PARTIAL)
    assert not errors(report), errors(report)
    convs = [l for l in report.layers if l.op == "conv"]
    ref = [nn.Conv2d(8, 48, 1), nn.Conv2d(48, 48, 5, padding=2, groups=48), nn.Conv2d(48, 8, 1),
           nn.Conv2d(8, 48, 1, bias=True), nn.Conv2d(48, 48, 3, padding=1, groups=48), nn.Conv2d(48, 4, 1)]
    ref[0] = nn.Conv2d(8, 48, 1, bias=False)  # first row: NBN absent, so bias = nbn = false
    assert [l.params for l in convs] == [params_of(m) for m in ref]


def test_an_unknown_flag_is_located_with_the_parameters_listed():
    found = errors(check(PARTIAL.replace("3x3 NBN", "3x3 NBX")))
    assert found[0].code == "E203" and found[0].span.line == 14 and "expand" in found[0].hint


def test_stochastic_depth_and_multiply():
    text = """\
block se_res(p):
    residual(stochastic_depth = p):
        conv(in.c, 3)
        multiply:
            global_avgpool()
            conv(2, 1)
            relu()
            conv(in.c, 1)
            sigmoid()

network s()
input 4 x 8 x 8

f:
    se_res(0.2)
"""
    report = check(text)
    assert not errors(report), errors(report)
    assert [l.op for l in report.layers] == ["conv", "global_avgpool", "conv", "relu", "conv", "sigmoid", "multiply",
                                             "stochastic_depth", "add"]
    assert report.params == params_of(nn.Conv2d(4, 4, 3), nn.Conv2d(4, 2, 1), nn.Conv2d(2, 4, 1))


def test_paper_params_column_is_checked_to_its_rounding():
    text = """\
network g()
input 3 x 224 x 224

f:
    | type | patch size/stride | output size  | params | ops  |
    | conv | 7×7/2             | 112×112×64   | 9.5K   | 119M |
"""
    # conv 7×7, 3→64, bias: 9,472 params (9.5K); 9,472 × 112² = 118,816,768 MACs (119M)
    assert not errors(check(text))
    report = check(text.replace("9.5K", "2.7K"))
    assert [(d.code, d.span.line, d.span.col) for d in errors(report)] == [("E305", 6, 49)]
    assert [d.code for d in errors(check(text.replace("119M", "34M")))] == ["E305"]


def test_all_errors_of_a_file_in_one_run():
    text = REPEAT.replace("| cbr      | 8    |", "| cbrr     | 8    |").replace("| 16² × 16| cbr      | 32   |",
                                                                           "| 16² × 16| cbr      | 3.5  |")
    codes = [d.code for d in errors(check(text))]
    assert "E201" in codes and "E209" in codes


def test_defaults_follow_the_variant_and_set():
    text = "network n(k = 4, width = 2 * k)\ninput 3 x 16 x 16\nf:\n    conv(width, 3)\n"
    assert check(text).output_shape == [8, 16, 16]
    assert check(text, k=3).output_shape == [6, 16, 16]


def test_size_cells_are_checked_as_printed_whatever_the_settings():
    text = "network n(c = 8)\ninput 3 x 16 x 16\nf:\n    | input   | op   | out | k |\n    | 16² × 3 | conv | c   | 3 |\n" \
           "    | 16² × 9 | conv | 4   | 1 |\n"
    for settings in ({}, {"c": 9}):  # the table is wrong as printed (8 ≠ 9), even where c = 9 would fit it
        assert [d.code for d in errors(check(text, **settings))] == ["E302"]


@pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel")
@pytest.mark.parametrize("k", [2, 3, 4])
def test_non_square_kernels_and_same_padding_follow_torch(k):
    text = f"network n()\ninput 3 x 17 x 15\nf:\n    conv(8, 1x{k}, padding = \"same\")\n    conv(8, {k}x1, padding = 0x1)\n"
    model = nn.Sequential(nn.Conv2d(3, 8, (1, k), padding="same"), nn.Conv2d(8, 8, (k, 1), padding=(0, 1)))
    report = check(text)
    assert not errors(report)
    assert report.output_shape == list(model(torch.zeros(1, 3, 17, 15)).shape[1:])
    assert report.params == params_of(model)


def test_a_none_parameter_leaves_its_call_out_but_does_not_hide_an_op():
    text = "block b(act = none):\n    conv(4, 3)\n    act()\n\nnetwork n(dropout = none)\ninput 3 x 8 x 8\nf:\n" \
           "    b()\n    dropout(0.1)\n"
    report = check(text)
    assert not errors(report)
    assert [l.op for l in report.layers] == ["conv", "dropout"]


def test_op_arguments_are_strict():
    found = errors(check("network n()\ninput 3 x 8 x 8\nf:\n    conv(4, 3, bias = 1)\n"))
    assert [(d.code, d.span.line) for d in found] == [("E209", 4)]


def test_a_parameter_without_a_default_takes_the_value_given():
    text = "network n(c, w = 2 * c)\ninput 3 x 8 x 8\nf:\n    | input  | op   | out | k |\n    | 8² × 3 | conv | w   | 3 |\n"
    assert check(text, c=3).output_shape == [6, 8, 8]
    with pytest.raises(archc.UsageError):
        check(text)


@pytest.mark.parametrize("line", ["input 224²", "input 3 x 224²", "input 224² × 3 × 2"])
def test_malformed_input_sizes_are_errors(line):
    assert [d.code for d in errors(check(f"network n()\n{line}\nf:\n    relu()\n"))] == ["E209"]


def test_a_stride_after_a_slash_is_only_for_table_cells():
    assert [d.code for d in errors(check("network n()\ninput 3 x 8 x 8\nf:\n    conv(8, 7x7/2)\n"))] == ["E209"]
    text = "network n()\ninput 3 x 16 x 16\nf:\n    | op   | out | kernel |\n    | conv | 8   | 3      |\n" \
           "    | conv | 8   | 3x3/2  |\n"
    assert check(text).output_shape == [8, 8, 8]


def test_none_means_the_default():
    report = check("network n()\ninput 3 x 8 x 8\nf:\n    conv(4, 3, stride = none, padding = none)\n"
                   "    maxpool(2, stride = none)\n")
    assert report.output_shape == [4, 4, 4]


def test_variants_are_checked_even_when_not_chosen():
    found = errors(check("network n(a = 1)\ninput 3 x 8 x 8\nvariant v(b = 2, a = a)\nf:\n    relu()\n"))
    assert [(d.code, d.span.line) for d in found] == [("E202", 3), ("E200", 3)]


def test_cells_see_the_block_index_and_count():
    # EfficientNet's stochastic depth: 0.2 × (index of the block) / (number of blocks), repeats included
    text = """\
block b(out "#out", p):
    residual(stochastic_depth = p):
        conv(out, 3)

network e()
input 4 x 8 x 8

f:
    | op | #out | n | p                   |
    | b  | 4    | 2 | 0.2 * index / count |
    | b  | 4    | 3 | 0.2 * index / count |
"""
    report = check(text)
    assert not errors(report), errors(report)
    from archc.compiler.check import build_graph

    graph = build_graph(ZOO / "e.arch", text=text)
    drops = [l.attrs.p for l in graph.layers() if l.op == "stochastic_depth"]
    assert drops == pytest.approx([0.2 * i / 5 for i in range(1, 5)])  # the first block has p = 0: no layer


GOOGLENET_ORDER = """\
block head(n):
    global_avgpool()
    flatten()
    linear(n)

network g(num_classes = 4, aux = true)
input 3 x 16 x 16

features:
    conv(8, 3)
    output a4
    conv(8, 3)

heads:
    aux aux1 = head(num_classes) from a4 if aux

classifier:
    global_avgpool()
    flatten()
    linear(num_classes)
"""


def test_an_aux_head_can_branch_off_an_earlier_output():
    report = check(GOOGLENET_ORDER)
    assert not errors(report), errors(report)
    names = [l.name for l in report.layers]
    assert names.index("aux1.linear") < names.index("classifier.2")  # aux1 is the head itself, as in torchvision  # registered between features and classifier
    assert report.output_shape == [4]
    assert [d.code for d in errors(check(GOOGLENET_ORDER.replace("from a4", "from a5")))] == ["E200"]

"""Whole .arch programs that nobody here wrote: a hypothesis strategy for the differential tests.

Each program has a few blocks (parameters with defaults in any order, ops and partials as
parameter values, `none` arguments, nested block calls, `if`/`else` over comparisons and
`and`/`or`/`not`, residuals with and without shortcuts and stochastic depth, concats, gates,
tables with repeats inside blocks, `in.c`/`in.h`, `round`/`ceil`/`min`/`max`/`make_divisible`),
and a network with variants whose sections hold tables with repeat and `where` columns, calls,
and a residual standing in a section. They are built to check: shapes are kept where they must
be (a residual's body keeps its input's size unless a shortcut projects it), strides are few.
"""

from __future__ import annotations

from hypothesis import strategies as st

ACTIVATIONS = ["relu", "relu6", "hardswish", "silu", "sigmoid", "tanh", "gelu", "leaky_relu(negative_slope = 0.2)"]


def _params(draw, params: list[str]) -> str:
    """The parameters in a drawn order: a default may come before one without (item 3 of issue 10)."""
    return ", ".join(draw(st.permutations(params)))


@st.composite
def unit_block(draw) -> str:
    """conv + norm + activation, with ops as values and `none` meaning the default."""
    conv = draw(st.sampled_from([
        "conv(c, k, stride = s, bias = false)",
        "conv(round(c * 1.5), k, stride = s, bias = false)",
        "conv(c, k, stride = s, padding = none, dilation = 1, bias = false)",
        "conv(c, k, stride = s, groups = 2 if c % 2 == 0 and in.c % 2 == 0 else 1, bias = false)",
    ]))
    norm = draw(st.sampled_from(["batchnorm(eps = eps)", "norm()", "if use_bn:\n        batchnorm()", "batchnorm()"]))
    act = draw(st.sampled_from(["act()", "if act_on:\n        act()\n    else:\n        identity()"]))
    params = ["c", "k = 3", "s = 1", "act = ACT", "eps = none", "norm = NORM", "use_bn = true", "act_on = true"]
    return f"block unit({_params(draw, params)}):\n    {conv}\n    {norm}\n    {act}\n"


@st.composite
def res_block(draw) -> str:
    """A residual: a projection shortcut when the shape changes, stochastic depth, a condition."""
    cond = draw(st.sampled_from(["s == 1 and in.c == c", "not (s != 1 or in.c != c)", "(s == 1) == (in.c == c) and s == 1"]))
    depth = draw(st.sampled_from(["", "(stochastic_depth = p)"]))
    shortcut = draw(st.booleans())
    inner = draw(st.sampled_from(["unit(c = c, s = s)\n        unit(c = c, act = none)",
                                  "unit(c = c, s = s, k = 1)\n        unit(c = c, k = 3, eps = 0.001)"]))
    text = f"block res({_params(draw, ['c', 's = 1', 'p = 0'])}):\n"
    if shortcut:
        text += f"    residual{depth}:\n        {inner}\n    shortcut if s != 1 or in.c != c:\n" \
                "        conv(c, 1, stride = s, bias = false)\n        batchnorm()\n"
    else:
        text += f"    residual{depth} if {cond}:\n        {inner}\n"
    text += draw(st.sampled_from(["    relu()\n", "", "    if (s or 0) == 1:\n        relu()\n"]))
    return text


@st.composite
def mix_block(draw) -> str:
    """Parallel branches joined along channels, one with a nested concat."""
    branches = ["        branch: unit(c = a, k = 1)\n",
                "        branch:\n            unit(c = b, k = 1)\n            unit(c = b, k = 3)\n",
                "        branch:\n            maxpool(3, stride = 1, padding = 1)\n            conv(a, 1)\n",
                "        branch:\n            conv(b, 1)\n            concat:\n                branch: conv(a, 1x3, padding = 0x1)\n"
                "                branch: conv(a, 3x1, padding = 1x0)\n"]
    chosen = draw(st.lists(st.sampled_from(branches), min_size=2, max_size=3))
    params = _params(draw, ['a "c"', "b = 4"])  # `a` takes the tables' column `c`
    return f"block mix({params}):\n    concat:\n" + "".join(chosen)


@st.composite
def gate_block(draw) -> str:
    """Squeeze-and-excitation: a gate computed from the input scales it."""
    squeeze = draw(st.sampled_from(["max(1, in.c // 4)", "make_divisible(in.c // 4, 8)", "ceil(in.c / 3)"]))
    return f"block gate():\n    multiply:\n        global_avgpool()\n        conv({squeeze}, 1)\n        relu()\n" \
           "        conv(in.c, 1)\n        hardsigmoid()\n"


@st.composite
def stage_block(draw) -> str:
    """A table inside a block, its repeat count a parameter, a cell reading `index` and `count`."""
    return f"block stage({_params(draw, ['c', 'reps = 2', 's = 2'])}):\n" \
           "    | operator | c | k | n    | s |\n" \
           "    | unit     | c | 3 | 1    | s |\n" \
           "    | unit     | c | 1 | reps | 1 |\n"


@st.composite
def logic_block(draw) -> str:
    """and/or/not and `none`: booleans in the checker, and so in the file (items 4 and 5 of issue 10)."""
    return f"block logic({_params(draw, ['a = 0', 'c2 = 2', 's = 1', 'e = none'])}):\n" \
           "    let d = s == 1 and 0.5\n" \
           "    if (a or c2) == 1:\n        relu()\n" \
           "    if d == true:\n        batchnorm(eps = e)\n    else:\n        identity()\n" \
           "    if not a and c2 > 1 or s == 3:\n        relu6()\n"


@st.composite
def newer_blocks(draw) -> str:
    """Issue 11's constructs: a loop, named tensors, ops over the channels, a split and a shuffle, `op.NAME`,
    powers and logarithms, a projection registered first, the paper's spellings and numbered flags."""
    growth = draw(st.sampled_from(["growth", "growth + 0", "max(growth, 2)"]))
    dense = f"block dense(n = 2, growth = 4):\n    repeat n:\n        concat:\n            branch: identity()\n" \
            f"            branch:\n                batchnorm()\n                relu()\n                conv({growth}, 3)\n"
    dag = "block dag(c):\n    op.conv(c, 3)\n    keep a\n    relu()\n    keep b\n    " + \
        draw(st.sampled_from(["concat a, b\n    conv(c, 1)\n", "add a, b\n", "from a\n    conv(c, 3)\n    add a, b\n"]))
    convnext = "block cn(p = 0):\n    residual(stochastic_depth = p):\n        conv(in.c, 3, groups = in.c)\n" \
               "        layernorm(eps = 1e-6)\n        channel_linear(2 * in.c)\n        gelu()\n" \
               "        channel_linear(in.c)\n        layer_scale(0.5, first = " + \
               draw(st.sampled_from(["true", "false"])) + ")\n"
    shuffle = "block shuf():\n    concat:\n        branch: chunk(2, 0)\n        branch:\n            chunk(2, 1)\n" \
              "            conv(in.c // 2, 1)\n    channel_shuffle(2)\n"
    proj = "block proj(c, s = 1):\n    residual(shortcut_first = " + draw(st.sampled_from(["true", "false"])) + \
           "):\n        conv(c, 3, stride = s)\n    shortcut if s != 1 or in.c != c:\n        conv(c, 1, stride = s)\n"
    spelled = 'block spelled(k, out, se "SE{}" = 0) "conv{k}-{out}":\n    conv(out, k)\n    if se > 0:\n' \
              "        conv(max(1, round(out * se)), 1)\n        conv(out, 1)\n"
    loop2 = "block loop2(c, reps = 2):\n    repeat reps:\n        conv(c, 3)\n        relu()\n"
    return "\n".join([dense, dag, convnext, shuffle, proj, spelled, loop2])


@st.composite
def programs(draw) -> str:
    """A whole program: constants, blocks, a network with variants and three sections."""
    act = draw(st.sampled_from(ACTIVATIONS))
    norm = draw(st.sampled_from(["batchnorm", "batchnorm(eps = 0.001, momentum = 0.01)"]))
    text = f"let ACT = {act}\nlet NORM = {norm}\nlet UNIT3 = unit(k = 3)\n\n"
    text += draw(unit_block()) + "\n" + draw(res_block()) + "\n" + draw(mix_block()) + "\n" + draw(gate_block())
    text += "\n" + draw(stage_block()) + "\n" + draw(logic_block()) + "\n"
    text += "block fch(n):\n    linear(n * in.h)\n\n" + draw(newer_blocks()) + "\n"
    width = draw(st.sampled_from(["1.0", "0.5", "1.5"]))
    depth = draw(st.sampled_from(["1.0", "2.0"]))
    text += f"network net(num_classes = {draw(st.integers(2, 6))}, width = {width}, depth = {depth}, " \
            f"p = {draw(st.sampled_from(['0', '0.1']))})\ninput 3 x 16 x 16\n\n"
    text += "variant wide(width = 2.0)\nvariant deep(depth = 3.0, p = 0.2)\n\n"
    text += "stem:\n    " + draw(st.sampled_from(["unit(c = 8, s = 2)", "UNIT3(c = 8, s = 2)", "conv(8, 3, stride = 2)"])) + "\n"
    text += "    logic(s = " + draw(st.sampled_from(["1", "2"])) + ", a = " + draw(st.sampled_from(["0", "1"])) + ")\n\n"
    rows = draw(st.lists(st.sampled_from([
        "| res   | 8  | 1  | 1 |", "| res   | 16 | 1  | 2 |", "| res   | 8  | 2  | 1 |", "| mix   | 4  | 1  | - |",
        "| gate  | -  | 1  | - |", "| stage | 8  | 1  | 2 |", "| unit  | 12 | 2  | 1 |", "| UNIT3 | 8  | 1  | 1 |",
        "| dense | -  | 2  | - |", "| dag   | 8  | 1  | - |", "| cn    | -  | 2  | - |", "| shuf  | -  | 1  | - |",
        "| proj  | 8  | 1  | 2 |", "| conv3-8 | - | 1 | - |", "| conv1-8, SE0.5 | - | 1 | - |", "| loop2 | 8 | 1 | - |",
    ]), min_size=2, max_size=6))
    strides = sum(r.endswith("| 2 |") for r in rows)
    if strides > 2:  # 16 -> 8 in the stem; two more halvings at most
        rows = [r.replace("| 2 |", "| 1 |") for r in rows]
    text += "body where c = make_divisible(c * width, 4), n = ceil(n * depth):\n"
    text += "    | operator | c  | n  | s |\n" + "".join(f"    {r}\n" for r in rows)
    text += draw(st.sampled_from(["", "    repeat 2:\n        relu()\n",
                                  "    identity()\n    | operator | c [param] |\n    | dag      | = 2 ** 3  |\n"]))
    if draw(st.booleans()):  # a residual standing in a section (item 7 of issue 10)
        text += "    residual(stochastic_depth = p):\n        batchnorm()\n        relu()\n"
    text += "\nhead:\n    global_avgpool()\n    flatten()\n"
    text += draw(st.sampled_from(["    linear(num_classes)\n", "    dropout(0.25)\n    fch(num_classes)\n",
                                  "    fch(num_classes)\n    relu()\n    linear(num_classes)\n"]))
    return text

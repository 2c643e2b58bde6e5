"""`archc compare`: a row per network, the same figures as `archc check`."""

import json

import archc
from archc.compare import compare, split_spec
from archc.dsl.record import as_data
from conftest import ZOO, run_archc


def test_rows_carry_the_check_figures():
    rows = compare([str(ZOO / "nin_v1.arch"), str(ZOO / "resnet.arch") + ":resnet50"], batch=32, memory="6GiB",
                   params={"num_classes": 3})
    v1 = archc.check(ZOO / "nin_v1.arch", batch=32, memory="6GiB", num_classes=3)
    r50 = archc.check(ZOO / "resnet.arch", variant="resnet50", batch=32, memory="6GiB", num_classes=3)
    assert [(r["params"], r["macs"], r["max_batch"], r["memory"]) for r in rows] == [
        (v1.params, v1.macs, v1.max_batch, as_data(v1.memory)),
        (r50.params, r50.macs, r50.max_batch, as_data(r50.memory))]
    assert rows[0]["params"] == 965635 and rows[0]["macs"] == 349713373184  # seed 000
    assert rows[1]["variant"] == "resnet50"


def test_specs_split_a_variant_off_the_path():
    assert split_spec("architectures/resnet.arch:resnet50") == ("architectures/resnet.arch", "resnet50")
    assert split_spec("c:/nets/x.arch") == ("c:/nets/x.arch", None)


def test_compare_command_table_json_and_usage():
    table = run_archc("compare", "architectures/nin_v1.arch", "architectures/nin_v2.arch", "--batch", "32",
                      "--memory", "6GiB")
    assert table.returncode == 0, table.stderr
    assert "965,635" in table.stdout and "1,991,003" in table.stdout and "largest batch" in table.stdout
    data = json.loads(run_archc("compare", "architectures/nin.arch", "architectures/mobilenet_v3_small.arch",
                                "--json", "--set", "dropout=0.1").stdout)
    assert [row["network"] for row in data] == ["nin", "mobilenet_v3_small"]
    assert run_archc("compare", "architectures/nin.arch", "--set", "depth=2").returncode == 2
    assert run_archc("compare", "architectures/nin.arch:nope").returncode == 2

"""dsl/cache.py: a parsed file comes back from the cache only while its text and archc's parser are
unchanged; a damaged, missing or unwritable cache means parsing, never an error; and a check whose
files are all cached does not import lark."""

import os
import random
import subprocess
import sys

import pytest
from archc.dsl import cache
from archc.dsl import parse as parse_module
from archc.dsl.diagnostics import ArchError
from conftest import ROOT, ZOO

FILES = sorted(ZOO.glob("*.arch")) + sorted((ZOO / "blocks").glob("*.arch"))


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHC_CACHE_DIR", str(tmp_path / "cache"))
    cache._directory.cache_clear()
    yield tmp_path / "cache" / "parsed"
    cache._directory.cache_clear()


def no_parsing(monkeypatch):
    def refuse(text, file):
        raise AssertionError(f"{file} was parsed, not taken from the cache")

    monkeypatch.setattr(parse_module, "parse", refuse)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_a_cached_module_equals_a_fresh_parse(path, cache_dir, monkeypatch):
    text = path.read_text(encoding="utf-8")
    fresh = parse_module.parse(text, str(path))
    assert cache.cached_parse(text, str(path)) == fresh  # parsed and stored
    no_parsing(monkeypatch)
    assert cache.cached_parse(text, str(path)) == fresh  # from the cache


def test_changed_text_is_parsed_again(cache_dir):
    cache.cached_parse("let width = 1.0\n", "net.arch")
    module = cache.cached_parse("let width = 2.0\n", "net.arch")
    assert module.items[0].value.value == 2.0
    assert len(list(cache_dir.iterdir())) == 1  # one entry per file, overwritten


def test_another_parser_version_is_a_miss(cache_dir, monkeypatch):
    cache.cached_parse("let width = 1.0\n", "net.arch")
    monkeypatch.setattr(cache, "_salt", lambda: b"a different grammar or pydantic")
    parsed = []
    real = parse_module.parse
    monkeypatch.setattr(parse_module, "parse", lambda text, file: parsed.append(file) or real(text, file))
    assert cache.cached_parse("let width = 1.0\n", "net.arch").items[0].value.value == 1.0
    assert parsed == ["net.arch"]


@pytest.mark.parametrize("damage", [b"", b"not a pickle", b"\x80\x05K\x01.", random.Random(0).randbytes(64)],
                         ids=["empty", "text", "a truncated pickle", "random bytes"])
def test_a_damaged_entry_is_parsed_again_and_replaced(damage, cache_dir, monkeypatch):
    cache.cached_parse("let width = 1.0\n", "net.arch")
    (entry,) = cache_dir.iterdir()
    entry.write_bytes(damage)
    assert cache.cached_parse("let width = 1.0\n", "net.arch").items[0].name == "width"
    no_parsing(monkeypatch)
    assert cache.cached_parse("let width = 1.0\n", "net.arch").items[0].name == "width"


def test_syntax_errors_are_not_cached(cache_dir):
    for _ in range(2):
        with pytest.raises(ArchError):
            cache.cached_parse("let = 1\n", "bad.arch")
    assert not any(cache_dir.iterdir())


def test_an_empty_cache_dir_setting_turns_it_off(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHC_CACHE_DIR", "")
    cache._directory.cache_clear()
    try:
        assert cache.cached_parse("let width = 1.0\n", "net.arch").items[0].name == "width"
        assert cache._directory() is None
    finally:
        cache._directory.cache_clear()


def test_an_unusable_cache_dir_is_no_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory would go")
    monkeypatch.setenv("ARCHC_CACHE_DIR", str(blocker))
    cache._directory.cache_clear()
    try:
        assert cache.cached_parse("let width = 1.0\n", "net.arch").items[0].name == "width"
    finally:
        cache._directory.cache_clear()


def test_a_check_of_cached_files_does_not_import_lark(tmp_path):
    env = dict(os.environ, ARCHC_CACHE_DIR=str(tmp_path / "cache"))
    probe = ("import sys, archc\n"
             "report = archc.check(archc.zoo_path('efficientnet.arch'), variant='b7')\n"
             "print(report.params, 'lark' in sys.modules)\n")
    runs = [subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=False,
                           timeout=120) for _ in range(2)]
    assert [r.stdout.split() for r in runs] == [["66347960", "True"], ["66347960", "False"]], runs[-1].stderr

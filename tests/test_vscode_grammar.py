"""The VS Code extension's TextMate grammar (editors/vscode/syntaxes/) against its fixture files
(editors/vscode/test/*.arch, each line's scopes asserted in vscode-tmgrammar-test's notation).
Needs Node and `npm ci` in editors/vscode (.ci/run does it); skipped with the reason where they are absent."""

import json
import shutil
import subprocess

import pytest

from conftest import ROOT

EXTENSION = ROOT / "editors" / "vscode"
RUNNER = EXTENSION / "node_modules" / ".bin" / "vscode-tmgrammar-test"
FIXTURES = sorted((EXTENSION / "test").glob("*.arch"))


def run_grammar_test(*files):
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed: the grammar test needs it (.ci/run installs it from Debian)")
    if not RUNNER.exists():
        pytest.skip("vscode-tmgrammar-test is not installed: run `npm ci` in editors/vscode (.ci/run does)")
    return subprocess.run([str(RUNNER), "-g", "syntaxes/arch.tmLanguage.json", *map(str, files)], cwd=EXTENSION,
                          capture_output=True, text=True, timeout=120)


def test_the_grammar_gives_every_asserted_scope():
    assert len(FIXTURES) >= 2
    proc = run_grammar_test(*FIXTURES)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("run successfuly") == len(FIXTURES)  # (sic: the runner's own spelling)


def test_a_wrong_scope_fails(tmp_path):
    wrong = tmp_path / "wrong.arch"
    wrong.write_text('# SYNTAX TEST "source.arch" "a size is not a comment"\n'
                     "    | 112² × 16 | bneck, 3x3  |\n"
                     "#     ^^^^^^^^^ comment.line.number-sign.arch\n", encoding="utf-8")
    proc = run_grammar_test(wrong)
    assert proc.returncode != 0 and "missing required scopes: comment.line.number-sign.arch" in proc.stdout


def test_the_extension_registers_the_grammar_and_starts_archc_lsp():
    manifest = json.loads((EXTENSION / "package.json").read_text())
    (grammar,) = manifest["contributes"]["grammars"]
    assert (EXTENSION / grammar["path"]).is_file() and grammar["scopeName"] == "source.arch"
    assert manifest["contributes"]["languages"][0]["extensions"] == [".arch"]
    assert manifest["contributes"]["configuration"]["properties"]["archc.command"]["default"] == ["archc", "lsp"]
    assert json.loads((EXTENSION / "syntaxes" / "arch.tmLanguage.json").read_text())["scopeName"] == "source.arch"

"""One error handler for every command (hpc_fed/errors.py): a user's mistake ends any command with
one line `hpc-fed <command>: error: <what and the fix>` and exit status 2, and no module prints
error lines of its own."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from hpc_fed.cli import PASS_THROUGH, main
from hpc_fed.errors import HpcFedError, UsageError, command

PACKAGE = Path(__file__).parents[1] / "hpc_fed"
MISSING = "/nonexistent/run.yaml"

# command -> arguments that fail on a user error before anything heavy starts
BAD = {
    "train": ["--config", MISSING],
    "launch": ["--config", MISSING],
    "eval": ["--config", MISSING],
    "predict": ["--config", MISSING, "--question", "what shape?"],
    "benchmark": ["--config", MISSING, "--list"],
    "sweep": ["--config", MISSING, "--list"],
    "prepare": ["--config", MISSING],
    "bench": ["--config", MISSING],
    "download": ["--config", MISSING],
    "config": ["show", "--config", MISSING],
    "report": ["/nonexistent/runs", "--out", "/nonexistent/report"],
    "data": ["describe", "--config", MISSING],
}


def test_every_command_is_in_the_table():
    assert sorted(BAD) == sorted({*PASS_THROUGH, "data"})


@pytest.mark.parametrize("name", sorted(BAD))
@pytest.mark.filterwarnings("ignore:Unable to enable fault handler")
def test_a_user_error_is_one_line_naming_the_command(name, capsys, monkeypatch):
    monkeypatch.delenv("HPC_FED_DEBUG", raising=False)
    assert main([name, *BAD[name]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"hpc-fed {name}: error: "), err
    assert "/nonexistent" in err[0]


def test_make_tiny_model_refuses_an_existing_folder_in_one_line(tmp_path, capsys):
    assert main(["make-tiny-model", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"hpc-fed make-tiny-model: error: {tmp_path} exists; pass --force to rebuild it"]


def test_the_handler_keeps_the_exit_code_and_the_traceback_when_asked(capsys, monkeypatch):
    class Lost(HpcFedError):
        exit_code = 1

    @command("hpc-fed demo")
    def demo(error):
        raise error

    monkeypatch.delenv("HPC_FED_DEBUG", raising=False)
    assert demo(Lost("rank 1 has gone")) == 1
    assert capsys.readouterr().err == "hpc-fed demo: error: rank 1 has gone\n"
    with pytest.raises(ZeroDivisionError):  # not a user error: the traceback stays
        demo(ZeroDivisionError("bug"))
    monkeypatch.setenv("HPC_FED_DEBUG", "1")
    with pytest.raises(UsageError):
        demo(UsageError("bad flag"))


def test_no_module_prints_an_error_line_of_its_own():
    """Only errors.print_error writes `...: error:`; a command raises instead."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "errors.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print" and \
                    re.search(r"error: ", ast.unparse(node)):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert found == []

"""The documentation site builds with every link and anchor resolved, and the README stays short."""

from __future__ import annotations

import importlib.util
import logging

import pytest
from cli_helpers import ROOT

README_MAX_LINES = 250


def test_the_readme_is_short():
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines < README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None
                    or importlib.util.find_spec("material") is None,
                    reason="mkdocs-material is not installed (pip install -e '.[dev]')")
def test_the_docs_site_builds_strictly(tmp_path, monkeypatch, caplog):
    """mkdocs.yml's validation turns a broken link or anchor into a warning, and strict mode makes
    any warning abort the build, as `mkdocs build --strict` does."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import Abort

    monkeypatch.setenv("NO_MKDOCS_2_WARNING", "1")
    config = load_config(str(ROOT / "mkdocs.yml"), strict=True, site_dir=str(tmp_path / "site"))
    with caplog.at_level(logging.WARNING, logger="mkdocs"):
        try:
            build(config)
        except Abort as exc:
            warnings = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
            pytest.fail(f"mkdocs build --strict failed: {exc}\n{warnings}")
    assert (tmp_path / "site" / "index.html").is_file()

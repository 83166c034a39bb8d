"""Sphinx configuration: ``python -m sphinx -W -b html docs docs/_build``.

The API reference is generated from the docstrings (numpydoc format). Every page is
self-contained: the formulas are plain text, so no MathJax is loaded from the network.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.util import logging

import gradcheck
from gradcheck.cli import build_parser

project = "gradcheck"
author = "the gradcheck developers"
copyright = "2026, the gradcheck developers"
version = release = gradcheck.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
]

root_doc = "index"
exclude_patterns = ["_build"]
templates_path: list[str] = []

# numpydoc renders the Parameters/Returns/... sections; autosummary writes one page per
# documented name into api/generated (rebuilt on every build, not kept in git).
autosummary_generate = True
# Stubs of names no longer documented would warn (-W): start from none.
shutil.rmtree(Path(__file__).parent / "api" / "generated", ignore_errors=True)
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()

html_theme = "alabaster"
html_title = f"gradcheck {release}"
html_static_path: list[str] = []
html_show_sphinx = False  # no footer links out of the pages
html_theme_options = {"description": "Is your hand-written gradient right?", "page_width": "1140px"}
# ``::`` blocks are output and shell lines; Python examples say ``.. code-block:: python``.
highlight_language = "text"


class CommandHelp(Directive):
    """``.. gradcheck-help:: [SUBCOMMAND]``: the command's ``--help`` text, as it prints it."""

    optional_arguments = 1

    def run(self) -> list[nodes.Node]:
        os.environ["COLUMNS"] = "92"  # argparse wraps at the terminal's width
        text = io.StringIO()
        with contextlib.redirect_stdout(text), contextlib.suppress(SystemExit):
            build_parser().parse_args([*self.arguments, "--help"])
        return [nodes.literal_block(text.getvalue(), text.getvalue())]


#: A script, style sheet, image or frame fetched from another host.
REMOTE_ASSET = re.compile(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=[\"'](?:https?:)?//")


def refuse_remote_assets(app: object, exception: Exception | None) -> None:
    """Every page opens offline: a build whose pages load anything from the network warns."""
    if exception is not None:
        return
    for page in sorted(Path(app.outdir).rglob("*.html")):  # type: ignore[attr-defined]
        if REMOTE_ASSET.search(page.read_text(encoding="utf-8")):
            logging.getLogger(__name__).warning("%s loads an asset from the network", page)


def setup(app: object) -> None:
    app.add_directive("gradcheck-help", CommandHelp)  # type: ignore[attr-defined]
    app.connect("build-finished", refuse_remote_assets)  # type: ignore[attr-defined]

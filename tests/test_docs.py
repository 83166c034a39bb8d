"""The documentation's Python examples run, and print what the pages say they print.

Every ``.. code-block:: python`` of a page under ``docs/`` runs, the page's blocks in order in
one namespace (as a reader types them), in a scratch directory.  A ``print(...)`` line's
comment, and the comment lines right below it, are the output the page promises: each piece
between ``...`` must appear in what the page printed, in order.  The pytest tutorial's blocks
form a test file, which is run by pytest with the plugin.

The build itself (``python -m sphinx -W``) runs in ``.ci/run``; here a few properties of the
sources that a build would not catch are checked: every page is in a toctree, and no page loads
anything from the network or points outside the repository.
"""

from __future__ import annotations

import contextlib
import io
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GENERATED = {DOCS / "_build", DOCS / "api" / "generated"}
PAGES = sorted(
    path for path in DOCS.rglob("*.rst") if not any(part in path.parents for part in GENERATED)
)
PYTEST_PAGE = DOCS / "tutorial" / "pytest.rst"

_DIRECTIVE = re.compile(r"^(\s*)\.\. code-block:: python\s*$")
_PRINT = re.compile(r"^\s*print\(.*\)\s+#\s?(.*)$")
_COMMENT = re.compile(r"^\s*#\s?(.*)$")


def python_blocks(text: str) -> list[str]:
    """The source of every ``.. code-block:: python`` in reStructuredText ``text``, dedented."""
    lines = text.splitlines()
    blocks = []
    for number, line in enumerate(lines):
        match = _DIRECTIVE.match(line)
        if match is None:
            continue
        indent = len(match.group(1))
        body = []
        for following in lines[number + 1 :]:
            stripped = following.strip()
            if stripped and len(following) - len(following.lstrip()) <= indent:
                break
            if not body and stripped.startswith(":"):  # the directive's options
                continue
            body.append(following)
        blocks.append(textwrap.dedent("\n".join(body)).strip("\n") + "\n")
    return blocks


def promised_output(block: str) -> list[str]:
    """The pieces of output a block's ``print`` comments promise, in order."""
    pieces: list[str] = []
    lines = block.splitlines()
    for number, line in enumerate(lines):
        match = _PRINT.match(line)
        if match is None:
            continue
        promised = [match.group(1)]
        for following in lines[number + 1 :]:
            comment = _COMMENT.match(following)
            if comment is None:
                break
            promised.append(comment.group(1))
        for text in promised:
            pieces.extend(piece.strip() for piece in text.split("...") if piece.strip())
    return pieces


def assert_printed_in_order(out: str, pieces: list[str]) -> None:
    position = 0
    for piece in pieces:
        found = out.find(piece, position)
        assert found >= 0, f"promised output {piece!r} not printed (after {position}):\n{out}"
        position = found + len(piece)


def run_page(path: Path) -> str:
    """Run a page's Python blocks in order in one namespace; what they printed."""
    namespace: dict = {"__name__": f"docs_{path.stem}"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in python_blocks(path.read_text()):
            exec(compile(block, str(path), "exec"), namespace)  # noqa: S102 - our own docs
    return out.getvalue()


PAGES_WITH_CODE = [path for path in PAGES if python_blocks(path.read_text())]


@pytest.mark.parametrize("path", PAGES_WITH_CODE, ids=lambda p: str(p.relative_to(DOCS)))
def test_the_pages_python_examples_run_and_print_what_they_promise(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # examples that write reports write them here
    out = run_page(path)
    promised = [
        piece for block in python_blocks(path.read_text()) for piece in promised_output(block)
    ]
    assert_printed_in_order(out, promised)


def test_the_examples_cover_the_tutorial_and_the_how_to_guides() -> None:
    covered = {path.relative_to(DOCS).as_posix() for path in PAGES_WITH_CODE}
    assert {
        "tutorial/first-check.rst",
        "tutorial/layer-backward.rst",
        "tutorial/pytest.rst",
        "howto/training-step.rst",
        "howto/derivatives.rst",
        "howto/float32.rst",
        "howto/large-models.rst",
        "howto/custom-references.rst",
        "howto/reports.rst",
        "seed.rst",
    } <= covered


def test_the_pytest_tutorial_is_a_test_file_that_passes(pytester: pytest.Pytester) -> None:
    source = "\n\n".join(python_blocks(PYTEST_PAGE.read_text()))
    pytester.makepyfile(test_model=source)
    result = pytester.runpytest("-q")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*4 check(s) made through the gradcheck fixture: 4 passed*"])


def test_a_promise_that_is_not_printed_fails() -> None:
    block = 'print("gradcheck: PASSED (3 checks)")  # gradcheck: FAILED ...\n'
    with pytest.raises(AssertionError, match="FAILED"):
        assert_printed_in_order("gradcheck: PASSED (3 checks)\n", promised_output(block))
    assert_printed_in_order("gradcheck: FAILED (3 checks)\n", promised_output(block))


def test_every_page_is_in_a_toctree() -> None:
    sources = "\n".join(path.read_text() for path in PAGES)
    for path in PAGES:
        name = path.relative_to(DOCS).with_suffix("").as_posix()
        if name == "index":
            continue
        leaf = name.rsplit("/", 1)[-1]
        assert re.search(rf"^\s+(\S+/)?{re.escape(leaf)}\s*$", sources, flags=re.M), name


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_no_page_loads_from_the_network_or_points_outside_the_repository(path: Path) -> None:
    text = path.read_text()
    assert "../shared" not in text
    assert not re.search(r"\.\. (math|raw|image|figure)::", text)  # MathJax, remote assets
    for target in re.findall(r"\.\. literalinclude:: (\S+)", text):
        assert (path.parent / target).resolve().is_relative_to(ROOT), target
        assert (path.parent / target).exists(), target

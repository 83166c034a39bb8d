"""HTML reports at the parser level: valid, self-contained, escaped, atomic, with the right content.

The browser-level tests (headless Chromium) are in ``test_report_browser.py``.  Cost: about
8 s in all, most of it matplotlib rendering and the seed demonstration (module fixtures).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gradcheck
from gradcheck.errors import InvalidParameterError, ParameterTypeError
from gradcheck.problem.objective import Objective
from gradcheck.problem.space import ParameterSpace
from gradcheck.references.sweep import reference_agreement, step_sweep
from gradcheck.report import (
    DEFAULT_DIR,
    IndexEntry,
    render_check_report,
    render_seed_report,
    write,
    write_check_report,
    write_index,
    write_seed_report,
)
from gradcheck.report._render import atomic_write
from gradcheck.report.plots import mpl_text, ratio_picture
from gradcheck.report.seed_page import POST_URL
from gradcheck.runner.evidence import with_evidence

HOSTILE = "<script>alert(1)</script>"
DOLLAR = 'w$_2$ & "q" \\'


# -- a small model with hostile parameter names --------------------------------------------------
def _model() -> tuple[Any, Any, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 3))
    y = rng.normal(size=(6, 2))
    params = {
        "W1": rng.normal(size=(3, 5)),
        HOSTILE: rng.normal(size=5),
        DOLLAR: rng.normal(size=(5, 2)),
    }

    def loss(p: dict[str, np.ndarray]) -> Any:
        hidden = np.tanh(x @ p["W1"] + p[HOSTILE])
        return 0.5 * np.sum((hidden @ p[DOLLAR] - y) ** 2)

    def grad(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        hidden = np.tanh(x @ p["W1"] + p[HOSTILE])
        delta_out = hidden @ p[DOLLAR] - y
        delta_hidden = (delta_out @ p[DOLLAR].T) * (1 - hidden**2)
        return {
            "W1": x.T @ delta_hidden,
            HOSTILE: delta_hidden.sum(axis=0),
            DOLLAR: hidden.T @ delta_out,
        }

    return loss, grad, params


def _wrong_row_grad(grad: Any) -> Any:
    def wrong(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        g = {k: np.array(v, copy=True) for k, v in grad(p).items()}
        g[DOLLAR][1] *= -1.0  # one wrong row of the output weights
        return g

    return wrong


@pytest.fixture(scope="module")
def case() -> dict[str, Any]:
    loss, grad, params = _model()
    good = gradcheck.check(loss, grad, params, rng=1)
    bad = gradcheck.check(loss, _wrong_row_grad(grad), params, rng=1)
    assert good.passed and not bad.passed
    return {"loss": loss, "grad": grad, "params": params, "good": good, "bad": bad}


@pytest.fixture(scope="module")
def demo() -> Any:
    from gradcheck.demo.seed import demonstrate

    return demonstrate()


@pytest.fixture(scope="module")
def pages(
    case: dict[str, Any], demo: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("reports")
    out = {
        "bad": write_check_report(
            with_evidence(case["bad"], case["loss"], case["params"]),
            root / "checks" / "bad.html",
            title=HOSTILE,
            back_link="../index.html",
        ),
        "good": write_check_report(case["good"], root / "checks" / "good.html"),
        "seed": write_seed_report(demo, root / "seed.html"),
    }
    out["index"] = write_index(
        [
            IndexEntry("correct " + HOSTILE, case["good"], "checks/good.html", True, "backprop"),
            IndexEntry("wrong row", case["bad"], "checks/bad.html", False, "planted bug"),
            IndexEntry("surprise", case["bad"], None, True, "a failure nobody expected"),
        ],
        root / "index.html",
        seed_demo=demo,
        seconds=1.5,
    )
    return out


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# -- structure -----------------------------------------------------------------------------------
class _Collector(HTMLParser):
    """Collects tags, attributes, headings and text; checks that non-void tags are balanced."""

    VOID = {"meta", "br", "hr", "img", "input", "link", "col", "wbr", "source", "area", "base"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.attributes: list[tuple[str, str, str | None]] = []
        self.headings: list[str] = []
        self._heading: list[str] | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            self.attributes.append((tag, name, value))
        if tag in ("h1", "h2", "h3"):
            self._heading = []
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            self.attributes.append((tag, name, value))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h1", "h2", "h3") and self._heading is not None:
            self.headings.append(" ".join("".join(self._heading).split()))
            self._heading = None
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unbalanced </{tag}> (open: {self.stack[-3:]})")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._heading is not None:
            self._heading.append(data)


def _parse(text: str) -> _Collector:
    collector = _Collector()
    collector.feed(text)
    collector.close()
    return collector


@pytest.mark.parametrize("kind", ["bad", "good", "seed", "index"])
def test_report_is_valid_html(pages: dict[str, Path], kind: str) -> None:
    text = _text(pages[kind])
    assert text.startswith("<!DOCTYPE html>")
    import html5lib

    html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(text)
    collector = _parse(text)
    assert collector.errors == []
    assert collector.stack == []


@pytest.mark.parametrize("kind", ["bad", "good", "seed", "index"])
def test_ids_are_unique_and_references_resolve(pages: dict[str, Path], kind: str) -> None:
    text = _text(pages[kind])
    attributes = _parse(text).attributes
    ids = [value for _, name, value in attributes if name == "id"]
    duplicates = sorted({i for i in ids if ids.count(i) > 1 and i is not None})
    assert duplicates == []
    if kind == "seed":
        assert text.count("<svg") >= 2  # the case the ids collided in: two figures on one page
    targets = {v[1:] for _, name, v in attributes if name.endswith("href") and v and v[:1] == "#"}
    targets |= set(re.findall(r"url\(#([^)]+)\)", text))
    assert targets - set(ids) == set()


@pytest.mark.parametrize("kind", ["bad", "good", "seed", "index"])
def test_report_is_self_contained(pages: dict[str, Path], kind: str) -> None:
    text = _text(pages[kind])
    # Nothing is loaded from outside; the one address in any page is the seed post's, cited
    # as a link to follow.
    outside = set(re.findall(r"https?://[^\s\"'<>)]*", text))
    assert outside <= ({POST_URL} if kind == "seed" else set())
    assert re.findall(r'<a href="(https?://[^"]*)"', text) == ([POST_URL] if kind == "seed" else [])
    assert not re.search(r"<\s*(script|link|iframe|object|embed)\b", text, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?(?!#|data:)", text, re.I)
    for tag, name, value in _parse(text).attributes:
        if name in ("src", "href", "xlink:href", "action", "poster"):
            assert value is not None
            if tag == "a" and value == POST_URL:
                continue
            assert value.startswith(("#", "data:")) or not re.match(r"^[a-z]+:|^//", value), (
                f"<{tag} {name}={value!r}> points outside the file"
            )
            assert not value.startswith("//")
    assert kind == "index" or "<svg" in text  # the figures are inline (the index has none)


@pytest.mark.parametrize("kind", ["bad", "good", "seed", "index"])
def test_every_table_scrolls_in_its_own_box(pages: dict[str, Path], kind: str) -> None:
    """A table wider than a phone scrolls inside its box, never the page (issue 14, item 1)."""
    text = _text(pages[kind])
    tables = [m.start() for m in re.finditer(r"<table\b", text)]
    assert tables
    for start in tables:
        before = text[max(0, start - 40) : start]
        assert re.search(r'<div class="scroll">\s*$', before), text[start - 80 : start + 40]
    assert "white-space: nowrap; }" not in text.split("code {", 1)[1].split("}", 1)[0] + "}"


def test_hostile_names_are_escaped(pages: dict[str, Path]) -> None:
    for kind in ("bad", "good", "index"):
        text = _text(pages[kind])
        assert HOSTILE not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
        assert "<script" not in text.lower()
    bad = _text(pages["bad"])
    # The name with $ and quotes reached the table and the figure (mathtext escaped, XML escaped).
    assert "w$_2$ &amp; &#34;q&#34;" in bad or "w$_2$ &amp; &quot;q&quot;" in bad
    assert mpl_text("a$b\\") == "a\\$b\\\\"


def test_check_report_content(pages: dict[str, Path], case: dict[str, Any]) -> None:
    collector = _parse(_text(pages["bad"]))
    text = " ".join(" ".join(collector.text).split())
    for heading in (
        "Parameters",
        "Where the errors are",
        "Error against step size",
        "Do the references agree?",
        "Diagnosis and hazards",
        "Environment",
    ):
        assert heading in collector.headings
    assert "The gradient is wrong" in text
    assert "Wrong elements in " + DOLLAR in text
    # One table row per parameter, the failing one marked with its count.
    assert "2 of 10 fail" in text
    for name in ("W1", DOLLAR):
        assert name in text
    # Tolerance source, environment and reproduction seed.
    assert "Tolerance" in text and "NumPy" in text and "SciPy" in text
    assert f"rng={case['bad'].seed}" in text
    # The evidence sections were computed (loss given), with every reference.
    for reference in (
        "central difference",
        "Richardson",
        "complex step",
        "SciPy approx_fprime",
        "SciPy differentiate",
    ):
        assert reference in text
    assert "Not computed" not in text
    assert _text(pages["bad"]).count('<svg class="heat"') == 3  # one error map per parameter
    # The step curves: one small figure per sampled element, laid out by the page.
    assert _text(pages["bad"]).count('<svg class="plot"') == 4


def test_passing_report_without_loss(pages: dict[str, Path]) -> None:
    text = " ".join(" ".join(_parse(_text(pages["good"])).text).split())
    assert "The gradient matches the references" in text
    assert "Not computed" in text  # no loss given: says how to get the extra sections


def test_heatmap_shows_the_wrong_row(case: dict[str, Any]) -> None:
    picture = ratio_picture(case["bad"][DOLLAR])
    assert picture.shape == (5, 2)
    assert np.all(picture[1] > 0)  # the negated row fails...
    assert np.all(np.delete(picture, 1, axis=0) < 0)  # ...and nothing else does
    assert np.all(ratio_picture(case["good"]["W1"]) < 0)
    assert ratio_picture(case["good"][HOSTILE]).shape == (1, 5)


def test_error_map_cells_are_red_exactly_in_the_wrong_row(pages: dict[str, Path]) -> None:
    text = _text(pages["bad"])
    cells = re.findall(r'<rect [^>]*fill="#([0-9a-f]{6})"[^>]*><title>([^<]*)</title>', text)
    assert len(cells) == 15 + 5 + 10  # every element, with its tooltip
    for colour, title in cells:
        red, green = int(colour[:2], 16), int(colour[2:4], 16)
        wrong_row = title.startswith("w$_2$ &amp; &#34;q&#34; \\[1, ")
        assert (red > green + 60) == wrong_row, (title, colour)


def test_seed_report_content(pages: dict[str, Path]) -> None:
    collector = _parse(_text(pages["seed"]))
    text = " ".join(" ".join(collector.text).split())
    assert collector.headings[0] == "Why a_prev.T @ delta, and why +?"
    for heading in (
        "The code in question",
        "Where a_prev.T @ delta comes from",
        "Training curves",
        "The shape coincidence",
        "The corrected loop",
    ):
        assert heading in collector.headings
    assert "a2 = [0.028 0.925 0.925 0.090]" in text  # the post's output, reproduced
    assert "weight2 = weight2 + lr * np.dot(a1.T, dC_dw2)" in text  # the post's code
    assert "dL_dW2 = a1.T @ delta2" in text  # the derivation and the corrected loop
    assert "a2 = [0.028 0.925 0.925 0.09 ]" in text  # the corrected loop, run
    assert "9 of 9 claims" in text
    assert "operands could not be broadcast together with shapes (5,1) (4,1) (5,1)" in text
    assert _text(pages["seed"]).count("<svg") == 2


def test_seed_page_links_back_and_cites_the_post(pages: dict[str, Path], demo: Any) -> None:
    anchors = _parse(_text(pages["seed"])).attributes
    links = [value for tag, name, value in anchors if tag == "a" and name == "href"]
    assert "index.html" in links  # back to the index gradcheck run writes beside it
    assert POST_URL == "https://ai.stackexchange.com/questions/26920" and POST_URL in links
    assert "ai.stackexchange.com/questions/26920</a>" in _text(pages["seed"])
    assert "../shared" not in _text(pages["seed"])
    alone = render_seed_report(demo, back_link=None)
    assert 'href="index.html"' not in alone and f'href="{POST_URL}"' in alone


def test_index_content(pages: dict[str, Path]) -> None:
    text = " ".join(" ".join(_parse(_text(pages["index"])).text).split())
    assert "1 of 3 checks did not give the expected verdict" in text
    assert "Planted bugs caught: 1 of 1" in text
    assert "expected pass" in text  # the surprise is flagged
    links = [v for tag, name, v in _parse(_text(pages["index"])).attributes if name == "href"]
    assert {"seed.html", "checks/good.html", "checks/bad.html"} <= set(links)
    back = [v for tag, name, v in _parse(_text(pages["bad"])).attributes if name == "href"]
    assert "../index.html" in back


# -- bad input -----------------------------------------------------------------------------------
def test_bad_input_is_named(case: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ParameterTypeError, match="result"):
        write_check_report({"passed": True}, tmp_path / "x.html")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="path"):
        write_check_report(case["good"], tmp_path / "x.txt")
    with pytest.raises(ParameterTypeError, match="path"):
        write_check_report(case["good"], 42)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="loss, params"):
        with_evidence(case["good"], case["loss"], None)
    with pytest.raises(InvalidParameterError, match="params"):
        with_evidence(case["good"], case["loss"], {"W1": np.zeros((3, 5))})
    with pytest.raises(InvalidParameterError, match="samples"):
        with_evidence(case["good"], case["loss"], case["params"], samples=0)
    with pytest.raises(ParameterTypeError, match=r"entries\[0\]"):
        write_index([case["good"]], tmp_path / "i.html")  # type: ignore[list-item]
    with pytest.raises(ParameterTypeError, match="demo"):
        write_seed_report(object(), tmp_path / "s.html")
    assert not list(tmp_path.iterdir())  # nothing half-written on the way


def test_default_path_and_directory(
    case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    written = write(case["good"])
    assert written == DEFAULT_DIR / "check.html" and written.exists()
    assert write_check_report(case["good"], tmp_path).name == "check.html"


def test_user_arrays_and_matplotlib_state_untouched(case: dict[str, Any], tmp_path: Path) -> None:
    import matplotlib

    before = dict(matplotlib.rcParams)
    params = {k: v.copy() for k, v in case["params"].items()}
    write_check_report(
        with_evidence(case["bad"], case["loss"], params, samples=1), tmp_path / "r.html"
    )
    for name, value in params.items():
        np.testing.assert_array_equal(value, case["params"][name])
    assert dict(matplotlib.rcParams) == before


# -- atomic writes -------------------------------------------------------------------------------
def test_interrupted_write_keeps_the_old_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.html"
    atomic_write(target, "<p>good</p>")

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, "<p>half" + "x" * 100_000)
    assert target.read_text() == "<p>good</p>"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary left behind


def test_render_failure_leaves_no_file(
    case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gradcheck.report import plots

    def broken(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("disk of figures full")

    monkeypatch.setattr(plots, "ratio_colors", broken)
    with pytest.raises(RuntimeError):
        write_check_report(case["good"], tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


# -- the evidence helpers ------------------------------------------------------------------------
def test_step_sweep_has_the_v_shape() -> None:
    x0 = np.array([0.3, -1.2, 2.0])
    space = ParameterSpace(x0)
    objective = Objective(lambda w: np.sum(np.exp(w) * np.sin(3 * w)), space)
    sigma = float(np.finfo(float).eps * abs(objective.value0))
    sweep = step_sweep(objective, np.arange(3), sigma=sigma)
    truth = np.exp(x0) * (np.sin(3 * x0) + 3 * np.cos(3 * x0))
    np.testing.assert_allclose(sweep.truth, truth, rtol=1e-9)
    error = sweep.error
    best = np.min(error, axis=1)
    # Both ends of the ladder are far worse than the bottom: truncation right, roundoff left.
    assert np.all(error[:, 0] > 1e3 * best) and np.all(error[:, -1] > 1e3 * best)
    # The default step sits near the bottom of the V.
    ratio = sweep.default_step / sweep.best_step
    assert np.all((ratio > 1e-2) & (ratio < 1e2))
    assert sweep.n_evaluations >= 2 * 3 * len(sweep.steps)  # the ladder plus the truth


def test_reference_agreement_on_smooth_and_non_analytic_losses() -> None:
    x0 = np.array([0.3, -1.2])
    space = ParameterSpace(x0)
    objective = Objective(lambda w: np.sum(np.cosh(w) ** 2), space)
    sigma = float(np.finfo(float).eps * objective.value0)
    agreement = reference_agreement(objective, np.arange(2), sigma=sigma, complex_ok=True)
    assert set(agreement.estimates) == {
        "central difference",
        "Richardson",
        "complex step",
        "SciPy approx_fprime",
        "SciPy differentiate",
    }
    truth = 2 * np.cosh(x0) * np.sinh(x0)
    for name, estimate in agreement.estimates.items():
        if name == "central difference":  # its error estimate is roundoff only, no truncation
            np.testing.assert_allclose(estimate.derivative, truth, rtol=1e-8)
        else:
            assert np.all(np.abs(estimate.derivative - truth) <= estimate.error), name
    np.testing.assert_allclose(agreement.consensus, truth, rtol=1e-12)
    skipped = reference_agreement(objective, np.arange(2), sigma=sigma, complex_ok=False)
    assert "complex step" in skipped.skipped and "complex step" not in skipped.estimates


def test_importing_gradcheck_does_not_import_matplotlib() -> None:
    # jinja2 is the report's renderer, so only ``import gradcheck`` must leave it out;
    # matplotlib waits until a plot is drawn, also after ``import gradcheck.report``.
    code = (
        "import sys, gradcheck; "
        "assert 'jinja2' not in sys.modules, 'jinja2 imported'; "
        "import gradcheck.report; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(gradcheck.__file__).parents[1]))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_render_check_report_returns_text(case: dict[str, Any]) -> None:
    text = render_check_report(case["good"], title="t")
    assert text.startswith("<!DOCTYPE html>") and "<h1>t</h1>" in text


def test_large_sampled_parameter_is_drawn_in_blocks() -> None:
    big = {"big": np.random.default_rng(0).normal(size=(70, 70))}
    result = gradcheck.check(
        lambda p: np.sum(np.sin(p["big"])),
        lambda p: {"big": np.cos(p["big"])},
        big,
        elements=5,
        rng=0,
    )
    text = render_check_report(result)
    assert text.count('<svg class="heat"') == 1 and "data:image/png" not in text
    assert "aggregated: each cell is a block of 2 × 2 elements" in text
    assert "5 of 4900 sampled" in text


# -- the report only renders ---------------------------------------------------------------------
PACKAGE = Path(gradcheck.__file__).parent


def _gradcheck_imports(path: Path) -> list[tuple[str, bool]]:
    """Every ``gradcheck...`` module ``path`` imports, and whether only for type checkers."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only |= {id(inner) for inner in ast.walk(node)}
    found = []
    for node in ast.walk(tree):  # module level and inside functions alike
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [(name, id(node) in typing_only) for name in names if name.startswith("gradcheck")]
    return found


def test_the_report_imports_nothing_of_the_core() -> None:
    allowed = ("gradcheck.results", "gradcheck.errors", "gradcheck.report")
    for path in sorted((PACKAGE / "report").glob("*.py")):
        for module, typing_only in _gradcheck_imports(path):
            if typing_only and module == "gradcheck.demo.seed":
                continue  # the SeedDemonstration type, for annotations
            assert module == "gradcheck" or module.startswith(allowed), (path.name, module)
        calls = {
            node.func.id
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        }
        assert not calls & {"exec", "eval", "compile"}, path.name


def test_results_do_not_import_the_report() -> None:
    for module, typing_only in _gradcheck_imports(PACKAGE / "results.py"):
        assert typing_only and not module.startswith("gradcheck.report"), module
    assert not hasattr(gradcheck.CheckResult, "to_html")


def test_evidence_travels_in_the_result(case: dict[str, Any]) -> None:
    import json

    result = with_evidence(case["bad"], case["loss"], case["params"], samples=2)
    assert case["bad"].evidence is None  # the original is left as it was
    evidence = result.evidence
    assert evidence is not None and len(evidence.labels) == 2
    assert evidence.labels[0].startswith(DOLLAR)  # the failing parameter's worst element first
    assert evidence.analytic_wrong[0] and evidence.n_evaluations > 0
    data = json.loads(json.dumps(result.to_dict()))
    assert data["evidence"]["elements"] == list(evidence.labels)
    assert json.loads(json.dumps(case["bad"].to_dict()))["evidence"] is None
    text = render_check_report(result)  # rendering uses the evidence, spends nothing
    assert "Not computed" not in text and "SciPy differentiate" in text


# -- counts that add up ----------------------------------------------------------------------------
def _kinked() -> tuple[Any, Any, dict[str, np.ndarray]]:
    """A loss with kinks (|.|, relu at 0) and a scalar: every counting phase runs."""
    x = np.random.default_rng(0).normal(size=(8, 4))

    def loss(p: dict[str, np.ndarray]) -> Any:
        relu = np.sum(np.maximum(p["b"], 0))
        return np.sum(np.abs(x @ p["w"])) + relu + 0.5 * float(p["s"]) ** 2

    def grad(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {
            "w": x.T @ np.sign(x @ p["w"]),
            "b": (p["b"] > 0).astype(float),
            "s": np.asarray(p["s"], dtype=float),
        }

    params = {"w": np.linspace(-1, 1, 12).reshape(4, 3), "b": np.array([0.0, 1, -1, 0]), "s": 0.7}
    return loss, grad, params


@pytest.mark.parametrize("mode", ["full", "sampled", "directional"])
@pytest.mark.parametrize("wrong", [False, True])
def test_per_parameter_evaluations_add_up_to_at_most_the_total(mode: str, wrong: bool) -> None:
    loss, grad, params = _kinked()
    bad = (lambda p: {**grad(p), "w": -grad(p)["w"]}) if wrong else grad
    tolerances = {"atol": 1e-5, "rtol": 1e-4} if mode == "sampled" else {}
    result = gradcheck.check(loss, bad, params, mode=mode, **tolerances)  # type: ignore[arg-type]
    assert not (wrong and result.passed)
    assert sum(p.n_evaluations for p in result.parameters) <= result.n_evaluations


def test_planted_bug_checks_of_the_battery_count_honestly() -> None:
    """The case the issue saw (345 per parameter against 332 in all): the kink probes were
    counted as 8 per element, whatever they spent."""
    from gradcheck.demo.battery import run_battery

    battery = run_battery(rng=0, quick=True)
    results = [bug.result for bug in battery.bugs]
    assert results
    for result in results:
        assert sum(p.n_evaluations for p in result.parameters) <= result.n_evaluations


# -- a scalar parameter is named alone -----------------------------------------------------------
def test_a_scalar_parameter_is_named_without_brackets() -> None:
    def loss(p: dict[str, Any]) -> Any:
        return 0.5 * float(p["scale"]) ** 2 + np.sum(p["w"] ** 2)

    def wrong(p: dict[str, Any]) -> dict[str, Any]:
        return {"scale": 2.0 * np.asarray(p["scale"], dtype=float), "w": 2 * p["w"]}

    result = gradcheck.check(loss, wrong, {"scale": 0.7, "w": np.ones(3)})
    assert not result.passed
    scale = next(p for p in result.parameters if p.name == "scale")
    text = str(result) + scale.summary_line() + "".join(e.label for e in result.failing_elements())
    assert "FAIL scale:" in scale.summary_line()
    assert "scale[]" not in text and "scale" in text
    page = render_check_report(result)
    assert "scale[]" not in page
    assert re.search(r'<span class="mono">scale</span>', page)


# -- advice that keeps a check reproducible ------------------------------------------------------
@pytest.mark.parametrize("rng", [None, 7, "generator"])
def test_reproduction_advice_names_the_seed_never_rng_none(case: dict[str, Any], rng: Any) -> None:
    given = np.random.default_rng(3) if rng == "generator" else rng
    result = gradcheck.check(case["loss"], case["grad"], case["params"], rng=given)
    page = render_check_report(result)
    assert "rng=None" not in page
    if rng == "generator":
        assert result.seed is None and "no seed was recorded" in page
    else:
        assert f"<code>rng={result.seed}</code>" in page
        assert result.seed == (0 if rng is None else 7)


def test_no_page_advises_rng_none(pages: dict[str, Path]) -> None:
    for path in pages.values():
        assert "rng=None" not in _text(path)


# -- colour scales that say where they stop ------------------------------------------------------
def _far_off(shape: tuple[int, ...]) -> Any:
    """A check whose element (0, 1) is about 10^10 times its tolerance off."""

    def loss(p: dict[str, np.ndarray]) -> Any:
        return 0.5 * np.sum(p["w"] ** 2)

    def grad(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        g = np.array(p["w"], copy=True)
        g[0, 1] += 1e10 * 1e-8  # (tolerances here are about 1e-8)
        return {"w": g}

    params = {"w": np.linspace(0.5, 1.5, int(np.prod(shape))).reshape(shape)}
    return gradcheck.check(loss, grad, params)


def test_error_map_marks_clipping_and_writes_the_true_exponent() -> None:
    result = _far_off((2, 3))
    assert not result.passed
    w = result["w"]
    exponent = round(float(np.log10(w.abs_error[0, 1] / w.tolerance[0, 1])))
    assert exponent >= 8  # far beyond the scale's end at 10^3
    page = render_check_report(result)
    assert "≥10<sup>3</sup>" in page and "≤10<sup>−5</sup>" in page
    labels = re.findall(r'<text [^>]*text-anchor="middle" font-size="10"[^>]*>([^<]*)</text>', page)
    assert str(exponent) in labels  # the cell's own power of ten, not the clipped "3"
    assert "3" not in labels


def test_scales_mark_their_clipped_ends() -> None:
    from gradcheck.report.plots import ratio_tick_labels

    assert ratio_tick_labels()[0] == "≤10⁻⁵" and ratio_tick_labels()[-1] == "≥10³"
    page = render_check_report(_far_off((40, 60)))
    assert "≥10<sup>3</sup>" in page and "≤10<sup>−5</sup>" in page

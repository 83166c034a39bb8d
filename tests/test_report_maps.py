"""Error maps of large matrices, the top-failing table, the derivative kinds' pages, the index's
matrix and links (issue 14, items 2, 4 and 6), at the HTML level; the seed page's way back and
citation are tested in ``test_report.py``, beside its other content.

The same pages measured in Chromium (width, text size) are in ``test_report_browser.py``.
Cost: about 2 s.
"""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gradcheck
from gradcheck.report import IndexEntry, render_check_report, render_index
from gradcheck.report.plots import MAP_CELLS_MAX, block_map
from gradcheck.results import CheckResult, ParameterResult

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def big_weight_result(
    wrong: tuple[int, int] = (500, 77), shape: tuple[int, int] = (784, 128)
) -> CheckResult:
    """A 784x128 weight checked in full with one wrong element, built without 100,352 loss
    evaluations: the result the check returns, every other element well within tolerance."""
    rng = np.random.default_rng(0)
    reference = rng.normal(scale=1e-2, size=shape)
    analytic = reference + rng.uniform(-1, 1, size=shape) * 1e-11
    analytic[wrong] += 1e-4
    parameter = ParameterResult.from_arrays(
        name="layers[0].weight",
        analytic=analytic,
        reference=reference,
        error_estimate=np.full(shape, 1e-12),
        tolerance=np.full(shape, 1e-9),
        checked=np.ones(shape, dtype=bool),
        step=np.full(shape, np.nan),
        method="complex",
        tolerance_source="derived",
        n_evaluations=reference.size,
    )
    return CheckResult(parameters=(parameter,), n_evaluations=reference.size, seed=0)


def _with_analytic(p: ParameterResult, analytic: np.ndarray) -> ParameterResult:
    """``p`` with another analytic gradient, everything else as it was."""
    return ParameterResult.from_arrays(
        name=p.name,
        analytic=analytic,
        reference=p.reference,
        error_estimate=p.error_estimate,
        tolerance=p.tolerance,
        checked=p.checked,
        step=p.step,
        method=p.method,
        tolerance_source=p.tolerance_source,
        n_evaluations=p.n_evaluations,
    )


def _failing_cells(page: str) -> list[tuple[float, float, str]]:
    """The outlined failing cells of the maps: (x, y, tooltip)."""
    found = re.findall(
        r'<rect class="failing" x="([-0-9.]+)" y="([-0-9.]+)"[^>]*><title>([^<]*)</title>', page
    )
    return [(float(x), float(y), unescape(title)) for x, y, title in found]


# -- large matrices ----------------------------------------------------------------------------
@pytest.mark.parametrize("wrong", [(500, 77), (0, 0), (783, 127), (13, 2)])
def test_one_wrong_element_of_a_784x128_weight_is_a_failing_block(wrong: tuple[int, int]) -> None:
    result = big_weight_result(wrong)
    assert result.n_failing_elements == 1
    bm = block_map(result.parameters[0])
    assert bm.block == (13, 2) and bm.exponent.shape == (61, 64)  # at most 64 a side
    assert max(bm.exponent.shape) <= MAP_CELLS_MAX
    cell = (wrong[0] // 13, wrong[1] // 2)
    assert np.argwhere(bm.failing).tolist() == [list(cell)]  # the block, and only it, fails
    assert bm.exponent[cell] == pytest.approx(5.0, abs=0.01)  # its WORST element's 10^5
    assert np.nanmax(np.delete(bm.exponent.ravel(), np.ravel_multi_index(cell, (61, 64)))) < -1

    page = render_check_report(result)
    assert "aggregated: each cell is a block of 13 × 2 elements" in page
    (x, y, title), *others = _failing_cells(page)
    assert others == []
    size = float(re.search(r'<rect x="0.0" y="0.0" width="[0-9.]+" height="([0-9.]+)"', page)[1])
    assert (round((y + 2) / size), round((x + 2) / size)) == cell  # drawn at the right block
    name = f"layers[0].weight[{wrong[0]}, {wrong[1]}]"
    assert title.startswith(name + ": analytic")
    # The top-failing table lists that element first, with its numbers.
    top = page[page.index('id="top-failing"') :]
    assert re.search(r'<td class="mono">([^<]*)</td>', top)[1] == name
    assert "1 failing element(s)" in unescape(top)


def test_block_map_keeps_the_worst_element_and_its_place() -> None:
    """The buggy twin a mean or a first-element aggregation would be: it loses the outlier."""
    result = big_weight_result((100, 50))
    bm = block_map(result.parameters[0])
    i, j = bm.cell_of(100 * 128 + 50)
    assert bm.worst[i, j] == 100 * 128 + 50
    mean = np.log10(
        np.mean(result.parameters[0].abs_error[91:104, 50:52] / 1e-9)
    )  # the block's mean would read 10^3.9, hiding that one element is 10^5 off
    assert bm.exponent[i, j] > mean + 1


def test_small_matrix_is_not_aggregated() -> None:
    result = big_weight_result((3, 4), shape=(10, 64))
    bm = block_map(result.parameters[0])
    assert bm.block == (1, 1) and not bm.aggregated
    page = render_check_report(result)
    assert "aggregated" not in page
    failing = re.findall(r'<rect [^>]*class="failing"[^>]*><title>([^<]*)</title>', page)
    assert failing == [] or all("[3, 4]" in t for t in failing)


def test_top_failing_table_is_capped_and_says_so() -> None:
    result = big_weight_result()
    p = result.parameters[0]
    analytic = p.analytic.copy()
    analytic[:30, 0] += np.linspace(1e-6, 5e-5, 30)  # 30 more wrong elements, growing
    dense = CheckResult(parameters=(_with_analytic(p, analytic),))
    page = unescape(render_check_report(dense))
    assert dense.n_failing_elements == 31
    assert "The 20 worst of 31 failing element(s)" in page
    assert "the table stops at 20" in page
    top = page[page.index('id="top-failing"') : page.index("</table>", page.index("top-failing"))]
    names = re.findall(r'<td class="mono">([^<]*)</td>', top)
    assert len(names) == 20  # the worst first:
    assert names[:3] == [f"layers[0].weight[{i}]" for i in ("500, 77", "29, 0", "28, 0")]
    assert "All 31 failing element(s), parameter by parameter in index order" in page


# -- the derivative kinds -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kinds() -> dict[str, CheckResult]:
    import sys

    sys.path.insert(0, str(EXAMPLES))
    try:
        import layer_targets as t
    finally:
        sys.path.remove(str(EXAMPLES))
    x, w, b = t.inputs()

    def jacobian(v: Any) -> Any:
        out = t.tanh_jacobian(v)
        out[2, 1] += 0.3
        return out

    def hessp(v: Any, p: Any, a: Any, lam: float) -> Any:
        return t.hess_no_regulariser(v, a, lam) @ p

    return {
        "vjp": gradcheck.check_vjp(t.forward, t.backward_sign_flip, (x, w, b)),
        "jvp": gradcheck.check_jvp(t.forward, lambda v, *a: 1.01 * t.jvp(v, *a), (x, w, b)),
        "jacobian": gradcheck.check_jacobian(np.tanh, jacobian, t.tanh_inputs()),
        "hessian": gradcheck.check_hessian(t.grad, t.hess_no_regulariser, t.x0(), args=t.args()),
        "hvp": gradcheck.check_hvp(t.grad, hessp, t.x0(), args=t.args()),
    }


def _top_rows(page: str) -> list[list[str]]:
    start = page.index('id="top-failing"')
    table = page[start : page.index("</table>", start)]
    found = []
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        if cells:  # not the header
            found.append([unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in cells])
    return found


HEADINGS = {
    "vjp": ("vector-Jacobian product", "vjp(dout, *inputs)"),
    "jvp": ("Jacobian-vector product", "jvp(tangents, *inputs)"),
    "jacobian": ("Jacobian", "out.shape + input.shape"),
    "hessian": ("Hessian", "SciPy's hess(x, *args): H[i, j] = d grad[i] / d x[j]"),
    "hvp": ("Hessian-vector product", "SciPy's hessp(x, p, *args)"),
}


@pytest.mark.parametrize("kind", sorted(HEADINGS))
def test_derivative_page_names_inputs_and_outputs_as_the_text_does(
    kinds: dict[str, CheckResult], kind: str
) -> None:
    result = kinds[kind]
    assert result.status == "failed"
    page = render_check_report(result)
    text = unescape(re.sub(r"<[^>]+>", "", page))
    what, convention = HEADINGS[kind]
    assert f"Derivative checked: the {what} of {result.outputs[0]} with respect to" in text
    flat = " ".join(text.split())
    assert "Convention: " in flat and convention in flat[flat.index("Convention: ") :]
    rows = _top_rows(page)
    assert rows, "no failing entries listed"
    said = result.text(elements=None)  # every failing element, as --verbose prints them
    for entry in result.entries:  # every wrong entry of str(result), named the same way
        assert f"wrong entry d {entry.output} / d {entry.input}:" in said
        assert [entry.input, entry.output] in [row[:2] for row in rows]
    for element, output, *_ in rows:
        if output.startswith("<u,"):  # an input element checked through the cotangent
            assert f" {element}: analytic" in said or f"FAIL {element}:" in said
        else:
            assert re.fullmatch(r"(out|grad)(\[[0-9, ]+\])?", output), output
            assert any(element.startswith(name + "[") for name in result.inputs), element
    ratios = [float(row[2].replace("×10", "e").replace("−", "-")) for row in rows]
    assert ratios == sorted(ratios, reverse=True)  # worst first


def test_jacobian_block_elements_are_named_as_entries(kinds: dict[str, CheckResult]) -> None:
    """``d out / d inputs[0]`` element [2, 1] is the entry ``d out[2] / d inputs[0][1]``."""
    rows = _top_rows(render_check_report(kinds["jacobian"]))
    assert [row[:2] for row in rows] == [["inputs[0][1]", "out[2]"]]  # once, not twice
    page = render_check_report(kinds["jacobian"])
    assert "rows: output elements, columns: input elements" in page
    worst = re.search(r'<td><span class="mono">([^<]*)</span>', page)  # the parameters table
    assert worst is not None and unescape(worst[1]) == "d out[2] / d inputs[0][1]"


# -- the index ------------------------------------------------------------------------------------
class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href, self._text = dict(attrs).get("href") or "", []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((" ".join("".join(self._text).split()), self._href))
            self._href = None


def links_of(page: str) -> list[tuple[str, str]]:
    parser = _Links()
    parser.feed(page)
    return parser.links


def _battery_entries() -> list[IndexEntry]:
    def loss(p: Any) -> Any:
        return float(np.sum(np.sin(p) ** 2))

    def grad(p: Any) -> Any:
        return np.sin(2 * p)

    x = np.linspace(0.1, 1.0, 4)
    good = gradcheck.check(loss, grad, x)
    bad = gradcheck.check(loss, lambda p: -grad(p), x)
    entries = []
    for network in ("3-4-1 sigmoid", "4-6-2 tanh", "5-3 linear"):
        for k, method in enumerate(("auto", "complex", "central")):
            wrong = network == "4-6-2 tanh" and method == "central"  # an unexpected failure
            entries.append(
                IndexEntry(
                    f"{network} / {method}",
                    bad if wrong else good,
                    f"checks/{network}-{method}.html" if k == 0 or wrong else None,
                    True,
                )
            )
    for bug in ("sign flipped", "one element off"):
        entries.append(IndexEntry(f"planted bug / {bug}", bad, f"checks/bug-{bug}.html", False))
    return entries


def test_index_puts_unexpected_and_failed_first_in_a_linked_matrix() -> None:
    page = render_index(_battery_entries(), seed_href="seed.html")
    text = unescape(re.sub(r"<[^>]+>", " ", page))
    # The failed-and-unexpected table comes before the matrix, the seed and the full list.
    order = [page.index(f'id="{a}"') for a in ("attention", "battery", "seed", "checks")]
    assert order == sorted(order)
    attention = page[order[0] : order[1]]
    labels = re.findall(r"<b>([^<]*)</b>", attention)
    assert labels[0] == "4-6-2 tanh / central"  # the unexpected one first
    assert set(labels[1:]) == {"planted bug / sign flipped", "planted bug / one element off"}
    # The matrix: 3 networks x 3 references, the row with the unexpected failure first.
    matrix = page[order[1] : order[2]]
    assert re.findall(r'<th scope="row">([^<]*)</th>', matrix)[0] == "4-6-2 tanh"
    cells = re.findall(r'<a class="cell[^"]*" href="([^"]*)"', matrix)
    assert len(cells) == 9  # every cell links: to its page, or to its row below
    for href in cells:
        assert href.startswith("checks/") or f'id="{href[1:]}"' in page
    assert "planted bug" not in matrix  # their columns are not shared: listed, not a matrix
    assert "1 of 11 checks did not give the expected verdict" in " ".join(text.split())


def test_index_link_texts_are_unique_per_target() -> None:
    page = render_index(_battery_entries(), seed_href="seed.html")
    targets: dict[str, set[str]] = {}
    for text, href in links_of(page):
        assert text, f"a link to {href} without text"
        targets.setdefault(text, set()).add(href)
    assert {t: h for t, h in targets.items() if len(h) > 1} == {}
    assert "open" not in targets


def test_index_link_check_catches_repeated_texts() -> None:
    """The buggy twin (the old index: every link said 'open')."""
    repeated = '<a href="a.html">open</a><a href="b.html">open</a>'
    assert {h for t, h in links_of(repeated) if t == "open"} == {"a.html", "b.html"}


def test_nothing_in_the_report_package_points_at_shared() -> None:
    package = Path(gradcheck.__file__).parent / "report"
    for path in package.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".j2"):
            assert "../shared" not in path.read_text(encoding="utf-8"), path


def test_new_pages_are_valid_html_with_unique_ids(kinds: dict[str, CheckResult]) -> None:
    import html5lib

    pages = [
        render_index(_battery_entries(), seed_href="seed.html"),
        render_check_report(big_weight_result()),
    ]
    pages += [render_check_report(result) for result in kinds.values()]
    for page in pages:
        html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(page)
        ids = re.findall(r'\sid="([^"]+)"', page)
        assert len(ids) == len(set(ids))
        targets = set(re.findall(r'href="#([^"]+)"', page))
        assert targets <= set(ids)


def test_a_dense_failure_is_red_without_hundreds_of_outlines() -> None:
    result = big_weight_result()
    p = result.parameters[0]
    dense = CheckResult(parameters=(_with_analytic(p, -p.analytic),))
    page = render_check_report(dense)
    assert _failing_cells(page) == []
    assert "; 3904 failing blocks</span>" in page
    colours = re.findall(
        r'<rect x="[0-9.]+" y="[0-9.]+" width="[0-9.]+" height="[0-9.]+" fill="#([0-9a-f]{6})"',
        page,
    )
    assert colours and all(int(c[:2], 16) > int(c[2:4], 16) + 60 for c in colours)  # all red

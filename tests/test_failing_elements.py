"""Failing elements, listed: ``str(result)`` shows the first few per parameter and their count;
``result.text(elements=None)`` (``gradcheck check --verbose``), ``to_dict()`` and the HTML report
list them all, up to :data:`gradcheck.results.FAILING_LIMIT` with the cap stated.

Cost: two dense checks of 1200 elements (~1 s each), a few small ones, two CLI runs (~2 s each).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradcheck
from gradcheck.report import render_check_report
from gradcheck.results import FAILING_LIMIT, FAILING_SHOWN

ROOT = Path(__file__).resolve().parent.parent
DENSE = 1200  # elements of the densely wrong parameter: more than FAILING_LIMIT


def loss(p: dict) -> float:
    return float(np.sum(np.sin(p["w"])) + np.sum(p["b"] ** 2))


def grad(p: dict) -> dict:
    return {"w": np.cos(p["w"]), "b": 2 * p["b"]}


def one_wrong(p: dict) -> dict:
    g = grad(p)
    g["w"][1, 2] += 1e-3
    return g


def sign_flipped(p: dict) -> dict:
    return {k: -v for k, v in grad(p).items()}


SMALL = {"w": np.linspace(-1, 1, 12).reshape(3, 4), "b": np.array([0.5, -0.3, 0.2])}
LARGE = {"w": np.linspace(-1, 1, DENSE).reshape(30, 40), "b": np.array([0.5, -0.3, 0.2])}


@pytest.fixture(scope="module")
def dense() -> gradcheck.CheckResult:
    """Every element of both parameters wrong: 1203 failing elements."""
    return gradcheck.check(loss, sign_flipped, LARGE, mode="full")


def test_a_one_element_bug_names_that_element_everywhere() -> None:
    result = gradcheck.check(loss, one_wrong, SMALL, mode="full")
    assert result.status == "failed" and result.n_failing_elements == 1
    (element,) = result.failing_elements()
    assert (element.parameter, element.index, element.label) == ("w", (1, 2), "w[1, 2]")
    assert element.analytic == pytest.approx(np.cos(SMALL["w"][1, 2]) + 1e-3, rel=1e-12)
    assert element.reference == pytest.approx(np.cos(SMALL["w"][1, 2]), rel=1e-9)
    assert element.error > element.tolerance
    text = str(result)
    assert "FAIL w[1, 2]: analytic" in text and "(1 of 12 elements fail)" in text
    assert "      w[1, 2]" not in text  # on the parameter's line, not repeated below it
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["n_failing_elements"] == 1 and data["failing_elements_cap"] == FAILING_LIMIT
    (listed,) = data["failing_elements"]
    assert listed["parameter"] == "w" and listed["index"] == [1, 2]
    assert listed["error"] > listed["tolerance"]
    page = render_check_report(result)
    assert 'id="failing"' in page and "All 1 failing element(s)" in page
    assert '<td class="mono">w[1, 2]</td>' in page


def test_str_lists_the_first_few_per_parameter_and_counts_the_rest(dense) -> None:
    text = str(dense)
    lines = text.splitlines()
    w_line = next(i for i, line in enumerate(lines) if line.startswith("  FAIL w["))
    listed = lines[w_line + 1 : w_line + 1 + FAILING_SHOWN]
    assert [line.split(":")[0].strip() for line in listed] == ["w[0, 0]", "w[0, 1]", "w[0, 2]"]
    for line, (i, j) in zip(listed, [(0, 0), (0, 1), (0, 2)], strict=True):
        value = np.cos(LARGE["w"][i, j])
        assert f"analytic {-value:.6g}" in line and f"{value:.6g}" in line
        assert "|error|" in line and "> tolerance" in line
    assert lines[w_line + 1 + FAILING_SHOWN].strip() == (
        f"... and {DENSE - FAILING_SHOWN} more (all {DENSE} in gradcheck check --verbose, "
        "result.failing_elements() and the HTML report)"
    )
    assert f"({DENSE} of {DENSE} elements fail)" in lines[w_line]
    assert "  FAIL b[" in text and "b[0]: analytic" in text  # b's three are all listed
    assert "... and 0 more" not in text


def test_every_failing_element_is_listed_up_to_the_cap_with_the_cap_stated(dense) -> None:
    assert dense.n_failing_elements == DENSE + 3
    elements = dense.failing_elements()
    assert len(elements) == FAILING_LIMIT
    assert [e.label for e in elements[:2]] == ["w[0, 0]", "w[0, 1]"]  # index order
    assert all(e.parameter == "w" for e in elements)  # parameter by parameter
    assert len(dense.failing_elements(None)) == DENSE + 3
    verbose = dense.text(elements=None).splitlines()
    assert sum(line.startswith("      w[") for line in verbose) == FAILING_LIMIT
    assert sum(line.startswith("      b[") for line in verbose) == 0
    assert (
        f"      ... and {DENSE - FAILING_LIMIT} more (the list stops at {FAILING_LIMIT} failing "
        "elements in all)"
    ) in verbose
    assert "      ... and 3 more (the list stops at" in "\n".join(verbose)  # b, past the cap


def test_to_dict_lists_them_capped_and_keeps_its_keys(dense) -> None:
    data = json.loads(json.dumps(dense.to_dict(), allow_nan=False))
    assert data["n_failing_elements"] == DENSE + 3
    assert data["failing_elements_cap"] == FAILING_LIMIT
    assert len(data["failing_elements"]) == FAILING_LIMIT
    first = data["failing_elements"][0]
    assert set(first) == {"parameter", "index", "analytic", "reference", "error", "tolerance"}
    assert first["parameter"] == "w" and first["index"] == [0, 0]
    for key in ("passed", "status", "parameters", "diagnosis", "hazards", "seed", "evidence"):
        assert key in data
    assert data["parameters"][0]["n_failed"] == DENSE


def test_the_html_report_lists_them_capped_with_the_cap_stated(dense) -> None:
    page = render_check_report(dense)
    assert '<a href="#failing">Failing elements</a>' in page
    assert (
        f"The first {FAILING_LIMIT} of the {DENSE + 3} failing elements (the list stops at "
        f"{FAILING_LIMIT})"
    ) in page
    table = page.split('id="failing"', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr><td") == FAILING_LIMIT
    assert '<td class="mono">w[0, 0]</td>' in table


def test_a_passed_check_lists_nothing() -> None:
    result = gradcheck.check(loss, grad, SMALL, mode="full")
    assert result.passed and result.failing_elements() == ()
    assert "..." not in str(result) and len(str(result).splitlines()) == 3
    data = result.to_dict()
    assert data["n_failing_elements"] == 0 and data["failing_elements"] == []
    assert 'id="failing"' not in render_check_report(result)


def test_non_finite_values_stay_json_safe() -> None:
    def nan_grad(p: dict) -> dict:
        g = grad(p)
        g["w"][0, 1] = np.nan
        return g

    result = gradcheck.check(loss, nan_grad, SMALL, mode="full")
    (element,) = result.failing_elements()
    assert element.label == "w[0, 1]" and np.isnan(element.analytic)
    listed = json.loads(json.dumps(result.to_dict(), allow_nan=False))["failing_elements"]
    assert listed[0]["analytic"] is None and listed[0]["error"] == "inf"
    assert "w[0, 1]" in str(result)


# -- the command line ----------------------------------------------------------------------------
TARGETS = f"""
import numpy as np

def loss(p):
    return float(np.sum(np.sin(p["w"])) + np.sum(p["b"] ** 2))

def grad(p):
    return {{"w": -np.cos(p["w"]), "b": 2 * p["b"]}}

def params():
    return {{"w": np.linspace(-1, 1, {DENSE}).reshape(30, 40), "b": np.array([0.5, -0.3, 0.2])}}
"""


def _gradcheck(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    target = tmp_path / "targets.py"
    target.write_text(TARGETS)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = ["check", f"{target}:loss", f"{target}:grad", "--params", f"{target}:params"]
    return subprocess.run(
        [sys.executable, "-m", "gradcheck", *command, "--mode", "full", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_verbose_lists_every_failing_element_up_to_the_cap(tmp_path: Path) -> None:
    verbose = _gradcheck(tmp_path, "--verbose")
    assert verbose.returncode == 1, verbose.stderr
    lines = verbose.stdout.splitlines()
    assert lines[0].startswith("gradcheck: FAILED")
    assert sum(line.startswith("      w[") for line in lines) == FAILING_LIMIT
    assert f"and {DENSE - FAILING_LIMIT} more (the list stops at {FAILING_LIMIT}" in verbose.stdout
    plain = _gradcheck(tmp_path)
    assert sum(line.startswith("      w[") for line in plain.stdout.splitlines()) == FAILING_SHOWN
    assert f"and {DENSE - FAILING_SHOWN} more (all {DENSE} in" in plain.stdout

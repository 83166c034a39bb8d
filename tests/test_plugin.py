"""The pytest plugin, end to end with ``pytester``: fixture, marker, options, header, summary,
HTML, xdist.

Cost: in-process runs ~0.3 s each; the xdist run starts two workers (~5 s).
"""

from __future__ import annotations

import os
from importlib.metadata import entry_points
from pathlib import Path

import pytest

# Imported here so pytester's in-process runs find them loaded (numpy cannot be loaded twice).
import gradcheck.plugin  # noqa: F401
import gradcheck.report  # noqa: F401
import gradcheck.runner.update  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["pytester"]


def plugin_args() -> list[str]:
    """``-p gradcheck.plugin`` unless the installed entry point already loads it."""
    installed = any(e.name == "gradcheck" for e in entry_points(group="pytest11"))
    return [] if installed else ["-p", "gradcheck.plugin"]


PROBLEM = """
import numpy as np
import pytest

W = np.array([[0.3, -0.2], [0.5, 0.1], [-0.4, 0.7]])

def loss(p):
    return np.sum(np.tanh(p["layers"][1]["weight"] @ p["layers"][0]["weight"]) ** 2)

def grad(p, bug=False):
    w0, w1 = p["layers"][0]["weight"], p["layers"][1]["weight"]
    t = np.tanh(w1 @ w0)
    d = 2 * t * (1 - t ** 2)
    if bug:
        d = 2 * t  # forgot tanh'
    return {"layers": [{"weight": w1.T @ d}, {"weight": d @ w0.T}]}

def params():
    return {"layers": [{"weight": W.copy()}, {"weight": W.T.copy()}]}
"""


@pytest.fixture
def tests_file(pytester: pytest.Pytester) -> Path:
    pytester.makepyfile(problem=PROBLEM)
    return pytester.makepyfile(
        test_user="""
        import pytest
        from problem import loss, grad, params

        def test_right(gradcheck):
            result = gradcheck.assert_check(loss, grad, params())
            assert result.passed and result.seed == gradcheck.settings["seed"]

        def test_wrong(gradcheck):
            gradcheck.assert_check(loss, lambda p: grad(p, bug=True), params(), label="no tanh'")

        def test_step(gradcheck):
            def step(p):
                g = grad(p)
                return {"layers": [{"weight": l["weight"] - 0.1 * gl["weight"]}
                                   for l, gl in zip(p["layers"], g["layers"])]}
            gradcheck.assert_update(step, loss, params(), 0.1)

        def test_ascent(gradcheck):
            def step(p):
                g = grad(p)
                return {"layers": [{"weight": l["weight"] + 0.1 * gl["weight"]}
                                   for l, gl in zip(p["layers"], g["layers"])]}
            gradcheck.assert_update(step, loss, params(), 0.1)

        @pytest.mark.gradcheck(method="central", seed=7)
        def test_marker(gradcheck):
            result = gradcheck.check(loss, grad, params())
            assert result.seed == 7
            assert all("central" in p.method for p in result.parameters)
            assert gradcheck.check(loss, grad, params(), seed=11).seed == 11
    """
    )


def test_fixture_marker_header_and_summary(pytester: pytest.Pytester, tests_file: Path) -> None:
    result = pytester.runpytest(*plugin_args(), "-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=3, failed=2)
    # the header names the settings
    result.stdout.fnmatch_lines(["gradcheck: method=auto, tolerance=derived, seed=0"])
    # the failure message is the readable report: parameter, element, values, tolerance
    result.stdout.fnmatch_lines(
        [
            "*GradientMismatchError: gradcheck: FAILED*",
            "*FAIL layers[[]0[]].weight[[]*[]]: analytic *, * |error| * > tolerance *",
        ]
    )
    result.stdout.fnmatch_lines(["*gradcheck update: FAILED: gradient ascent*"])
    # the summary at the end
    result.stdout.fnmatch_lines(
        [
            "*= gradcheck =*",
            "6 check(s) made through the gradcheck fixture: 4 passed, 2 failed",
            "  test_user.py::test_wrong [[]no tanh'[]]: gradcheck: FAILED*",
            "  test_user.py::test_ascent [[]update 1[]]: gradcheck update: FAILED*",
        ]
    )


def test_command_line_and_ini_options(pytester: pytest.Pytester, tests_file: Path) -> None:
    pytester.makeini("[pytest]\ngradcheck_seed = 5\ngradcheck_method = central\n")
    result = pytester.runpytest(*plugin_args(), "-p", "no:cacheprovider", "-k", "right")
    result.stdout.fnmatch_lines(["gradcheck: method=central, tolerance=derived, seed=5"])
    result.assert_outcomes(passed=1)  # the fixture's settings carry seed 5 into the check
    result = pytester.runpytest(
        *plugin_args(),
        "-p",
        "no:cacheprovider",
        "-k",
        "wrong",
        "--gradcheck-seed=9",
        "--gradcheck-atol=10",
        "--gradcheck-quiet",
    )
    # command line beats ini; an absurd atol hides the bug (the user's explicit choice)
    result.stdout.fnmatch_lines(["gradcheck: method=central, atol=10, rtol=0, seed=9"])
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gradcheck-method=magic"], "--gradcheck-method: 'magic' is not one of"),
        (["--gradcheck-rtol=-1"], "--gradcheck-rtol: must be finite and >= 0"),
        (["--gradcheck-seed=x"], "--gradcheck-seed: expected an integer"),
    ],
)
def test_bad_options_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest(*plugin_args(), *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_bad_marker_is_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.gradcheck(atl=1e-6)
        def test_typo(gradcheck):
            pass

        @pytest.mark.gradcheck(method="magic")
        def test_bad_value(gradcheck):
            pass
    """)
    result = pytester.runpytest(*plugin_args(), "-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*unknown option 'atl' (options are method, atol, rtol, seed, "
            "elements, mode, budget, workers)*"
        ]
    )
    result.stdout.fnmatch_lines(["*@pytest.mark.gradcheck(method=...): 'magic' is not one of*"])


def test_html_report_of_the_session(pytester: pytest.Pytester, tests_file: Path) -> None:
    result = pytester.runpytest(
        *plugin_args(), "-p", "no:cacheprovider", "-k", "right or wrong", "--gradcheck-html=report"
    )
    result.assert_outcomes(passed=1, failed=1)
    index = pytester.path / "report" / "index.html"
    result.stdout.fnmatch_lines([f"HTML report: {index}"])
    pages = sorted((pytester.path / "report" / "checks").glob("*.html"))
    assert len(pages) == 2
    text = index.read_text()
    assert all(page.name in text for page in pages) and "test_wrong" in text


def test_xdist_workers_report_to_the_controller(
    pytester: pytest.Pytester, tests_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("xdist")
    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join(
            filter(None, [str(ROOT), str(pytester.path), os.environ.get("PYTHONPATH")])
        ),
    )
    result = pytester.runpytest_subprocess(
        *plugin_args(),
        "-p",
        "xdist",
        "-n",
        "2",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:benchmark",
        "-k",
        "not marker",
        "--gradcheck-html=report",
        timeout=240,
    )
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "4 check(s) made through the gradcheck fixture: 2 passed, 2 failed",
            "HTML report: *index.html",
        ]
    )
    pages = list((pytester.path / "report" / "checks").glob("*.html"))
    assert len(pages) == 4  # written by the workers, linked by the controller's index
    index = (pytester.path / "report" / "index.html").read_text()
    assert all(page.name in index for page in pages)


LAYER = """
import numpy as np
import pytest

X = np.array([[0.5, -1.2, 0.3], [0.9, 0.4, -0.7]])
W = np.array([[0.2, -0.5], [0.8, 0.1], [-0.3, 0.6]])

def forward(x, w):
    return np.tanh(x @ w)

def backward(dout, x, w, bug=False):
    t = np.tanh(x @ w)
    d = dout * (1 - t ** 2)
    dw = x.T @ d
    if bug:
        dw = -dw  # sign flip
    return d @ w.T, dw

def test_vjp_right(gradcheck):
    assert gradcheck.assert_vjp(forward, backward, (X, W), label="tanh layer").passed

def test_vjp_wrong(gradcheck):
    gradcheck.assert_vjp(forward, lambda g, x, w: backward(g, x, w, bug=True), (X, W))

def test_jacobian_right(gradcheck):
    def jac(x):
        return np.diag(1 - np.tanh(x) ** 2)
    gradcheck.assert_jacobian(np.tanh, jac, (X[0].copy(),))

def test_jvp_right(gradcheck):
    def jvp(tangents, x, w):
        dx, dw = tangents
        t = np.tanh(x @ w)
        return (1 - t ** 2) * (dx @ w + x @ dw)
    gradcheck.assert_jvp(forward, jvp, (X, W))

def quad_grad(x, a):
    return a @ x + x ** 3

def quad_hess(x, a):
    return a + np.diag(3 * x ** 2)

A = np.array([[2.0, 0.5], [0.5, 1.0]])

def test_hessian_right(gradcheck):
    gradcheck.assert_hessian(quad_grad, quad_hess, np.array([0.3, -0.4]), args=(A,))

def test_hvp_wrong(gradcheck):
    gradcheck.assert_hvp(quad_grad, lambda x, v, a: a @ v, np.array([0.3, -0.4]), args=(A,))

@pytest.mark.gradcheck(method="central", seed=3)
def test_vjp_marker(gradcheck):
    result = gradcheck.vjp(forward, backward, (X, W))
    assert result.passed and result.seed == 3
"""


def test_derivative_checks_through_the_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_layer=LAYER)
    result = pytester.runpytest(
        *plugin_args(), "-p", "no:cacheprovider", "-p", "no:randomly", "--gradcheck-html=report"
    )
    result.assert_outcomes(passed=5, failed=2)
    result.stdout.fnmatch_lines(
        ["*GradientMismatchError: gradcheck*FAILED*", "*FAIL inputs[[]1[]][[]*[]]: analytic *"]
    )
    result.stdout.fnmatch_lines(
        [
            "7 check(s) made through the gradcheck fixture: 5 passed, 2 failed",
            "  test_layer.py::test_vjp_wrong [[]vjp 1[]]: gradcheck*FAILED*",
            "  test_layer.py::test_hvp_wrong [[]hvp 1[]]: gradcheck*FAILED*",
        ]
    )
    pages = sorted((pytester.path / "report" / "checks").glob("*.html"))
    assert len(pages) == 7
    index = (pytester.path / "report" / "index.html").read_text()
    assert "tanh layer" in index and "test_vjp_wrong" in index

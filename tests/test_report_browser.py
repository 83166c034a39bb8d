"""Each kind of HTML report rendered by a real browser (headless Chromium).

One Chromium run per report takes the screenshot and dumps the rendered DOM.  The test checks
that the page rendered (the screenshot is far from blank: many colours, much non-white area)
and that the expected headings are in the DOM.  Skipped when Chromium is not installed
(``.ci/run`` installs the Debian package ``chromium``).  Cost: about 3 s per report, the
three run in parallel.

Layout (the second half): every kind of page is measured at 390x844 (a phone) and 1366x900 (a
laptop): the document is no wider than the viewport (``document.documentElement.scrollWidth``;
wide tables scroll in their own box, the page does not), and every text of every figure is at
least 9 px high as rendered (its font size times the figure's scale on screen).  Headless
Chromium will not make a window narrower than 500 px, so each page is laid out in an
``<iframe srcdoc>`` of the viewport's size, whose document the host page measures and writes
into its own DOM for ``--dump-dom``: one Chromium launch per viewport size for all pages.  The
pages are the ones gradcheck writes: ``gradcheck run``'s index, seed page and check pages
(through the CLI's own ``write_run_report``, on a two-network battery), a ``gradcheck check
--html`` page, the five derivative kinds (two through their commands' ``--html``, three through
``gradcheck.report.write``) and a 784x128 weight's page; a buggy twin (a nowrap line, a figure
shrunk to half size) is measured beside them and must fail both checks.  Cost of the whole
file: about 13 s of CPU (pages about 4 s, each Chromium launch 1-4 s), 21 s wall-clock on two
cores shared with other work.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from html import unescape
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import gradcheck
from gradcheck.cli import main as cli_main
from gradcheck.cli import write_run_report
from gradcheck.report import IndexEntry, write, write_check_report, write_index, write_seed_report
from gradcheck.runner.evidence import with_evidence


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium)"
)

HOSTILE = "<script>alert(1)</script>"


def _render(page: Path, out: Path) -> tuple[Path, str]:
    """Screenshot ``page`` to ``out`` and return it with the rendered DOM."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        completed = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--screenshot={out}",
                "--window-size=1280,2000",
                "--dump-dom",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.exists(), f"no screenshot; chromium said: {completed.stderr[-2000:]}"
    return out, completed.stdout


@pytest.fixture(scope="module")
def demo() -> Any:
    from gradcheck.demo.seed import demonstrate

    return demonstrate()


@pytest.fixture(scope="module")
def rendered(demo: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    root = tmp_path_factory.mktemp("browser")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 1))
    params = {"weight1": rng.normal(size=(3, 4)), HOSTILE: rng.normal(size=(4, 1))}

    def loss(p: dict[str, np.ndarray]) -> Any:
        return 0.5 * np.sum((np.tanh(x @ p["weight1"]) @ p[HOSTILE] - y) ** 2)

    def grad(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        hidden = np.tanh(x @ p["weight1"])
        delta = hidden @ p[HOSTILE] - y
        g1 = x.T @ ((delta @ p[HOSTILE].T) * (1 - hidden**2))
        g1[2, 1] += 1e-3  # one wrong element
        return {"weight1": g1, HOSTILE: hidden.T @ delta}

    result = gradcheck.check(loss, grad, params, rng=0)
    assert not result.passed
    pages = {
        "check": write_check_report(
            with_evidence(result, loss, params, samples=2), root / "check.html"
        ),
        "seed": write_seed_report(demo, root / "seed.html"),
        "index": write_index(
            [IndexEntry("one wrong element", result, "check.html", False)],
            root / "index.html",
            seed_demo=demo,
        ),
    }
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {
            kind: pool.submit(_render, page, root / f"{kind}.png") for kind, page in pages.items()
        }
        return {kind: future.result() for kind, future in futures.items()}


def _headings(dom: str) -> list[str]:
    found = re.findall(r"<h([123])[^>]*>(.*?)</h\1>", dom, re.S)
    return [" ".join(unescape(re.sub(r"<[^>]+>", "", text)).split()) for _, text in found]


def _assert_not_blank(png: Path) -> None:
    from matplotlib.image import imread

    image = imread(png)[..., :3]
    assert image.shape[0] >= 1000 and image.shape[1] == 1280
    quantized = (image * 31).round().astype(np.int32)
    colours = np.unique(quantized[..., 0] * 1024 + quantized[..., 1] * 32 + quantized[..., 2])
    assert len(colours) > 40, f"only {len(colours)} distinct colours: a blank page?"
    non_white = np.mean(np.any(image < 0.95, axis=-1))
    assert non_white > 0.05, f"only {non_white:.1%} of the page is drawn"


EXPECTED = {
    "check": [
        "Parameters",
        "Where the errors are",
        "Error against step size",
        "Do the references agree?",
        "Diagnosis and hazards",
        "Environment",
    ],
    "seed": [
        "Why a_prev.T @ delta, and why +?",
        "The code in question",
        "Where a_prev.T @ delta comes from",
        "Training curves",
        "The shape coincidence",
        "The corrected loop",
    ],
    "index": ["Failed and unexpected results", "Every check", "Environment"],
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_report_renders_in_chromium(rendered: dict[str, tuple[Path, str]], kind: str) -> None:
    png, dom = rendered[kind]
    _assert_not_blank(png)
    headings = _headings(dom)
    for heading in EXPECTED[kind]:
        assert heading in headings, f"{heading!r} not among {headings}"
    assert kind == "index" or dom.count("<svg") >= 1  # the figures are in the rendered DOM
    assert "<script>alert" not in dom  # the hostile name stayed text


def test_verdict_banner_is_visible(rendered: dict[str, tuple[Path, str]]) -> None:
    """The failed check's banner is red near the top of the page: the verdict at a glance."""
    from matplotlib.image import imread

    png, dom = rendered["check"]
    assert 'class="banner failed"' in dom
    top = imread(png)[:400, :, :3]
    reddish = (top[..., 0] > 0.7) & (top[..., 1] < 0.35) & (top[..., 2] < 0.35)
    assert reddish.sum() > 500  # the red verdict mark


# -- layout: every page on a phone and a laptop --------------------------------------------------
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SIZES = {"phone": (390, 844), "laptop": (1366, 900)}
#: The smallest text a figure may show, in CSS px as rendered (issue 14: "at least ~9 px").
MIN_TEXT_PX = 8.95


def _network(seed: int, hidden: int) -> tuple[Any, Any, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    params = {"weight1": rng.normal(size=(3, hidden)), "weight2": rng.normal(size=(hidden, 2))}

    def loss(p: dict[str, np.ndarray]) -> Any:
        return 0.5 * np.sum((np.tanh(x @ p["weight1"]) @ p["weight2"] - y) ** 2)

    def grad(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        hidden_ = np.tanh(x @ p["weight1"])
        delta = hidden_ @ p["weight2"] - y
        return {
            "weight1": x.T @ ((delta @ p["weight2"].T) * (1 - hidden_**2)),
            "weight2": hidden_.T @ delta,
        }

    return loss, grad, params


def _negated(grad: Any) -> Any:
    return lambda p: {k: -v for k, v in grad(p).items()}


def _battery(demo: Any) -> Any:
    """A two-network, two-reference battery with one planted bug, shaped as run_battery's."""
    cases = []
    bugs = []
    for seed, hidden in ((0, 4), (1, 6)):
        loss, grad, params = _network(seed, hidden)
        name = f"3-{hidden}-2 tanh, half-SSE"
        checks = {m: gradcheck.check(loss, grad, params, method=m) for m in ("auto", "central")}
        cases.append(SimpleNamespace(case=SimpleNamespace(name=name), checks=checks, loss=loss,
                                     params=params))  # fmt: skip
        if seed == 0:
            flipped = gradcheck.check(loss, _negated(grad), params)
            bugs.append(SimpleNamespace(bug="sign flipped (y - a2 for a2 - y)", result=flipped,
                                        loss=loss, params=params, case=name))  # fmt: skip
    return SimpleNamespace(methods=["auto", "central"], cases=cases, bugs=bugs,
                           seed=demo, seconds=1.0)  # fmt: skip


def _big_weight_result() -> gradcheck.CheckResult:
    """The 784x128 weight with one wrong element of ``test_report_maps.py`` (loaded by path:
    test modules are not importable by name under ``--import-mode=importlib``)."""
    import importlib.util

    path = Path(__file__).with_name("test_report_maps.py")
    spec = importlib.util.spec_from_file_location("_report_maps", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result: gradcheck.CheckResult = module.big_weight_result()
    return result


def _derivative_pages(root: Path) -> dict[str, Path]:
    import sys

    sys.path.insert(0, str(EXAMPLES))
    try:
        import layer_targets as t
    finally:
        sys.path.remove(str(EXAMPLES))
    x, w, b = t.inputs()
    pages = {}
    targets = str(EXAMPLES / "layer_targets.py")
    for kind, arguments in {
        "vjp": ["vjp", f"{targets}:forward", f"{targets}:backward_sign_flip",
                "--inputs", f"{targets}:inputs"],
        "hessian": ["hessian", f"{targets}:grad", f"{targets}:hess_no_regulariser",
                    "--params", f"{targets}:x0", "--args", f"{targets}:args"],
    }.items():  # fmt: skip
        pages[kind] = root / f"{kind}.html"
        assert cli_main([*arguments, "--quiet", "--html", str(pages[kind])]) == 1

    def jvp(tangents: Any, *inputs: Any) -> Any:
        return 1.01 * t.jvp(tangents, *inputs)

    def jacobian(v: Any) -> Any:
        out = t.tanh_jacobian(v)
        out[2, 1] += 0.3
        return out

    def hessp(v: Any, p: Any, a: Any, lam: float) -> Any:
        return t.hess_no_regulariser(v, a, lam) @ p

    results = {
        "jvp": gradcheck.check_jvp(t.forward, jvp, (x, w, b)),
        "jacobian": gradcheck.check_jacobian(np.tanh, jacobian, t.tanh_inputs()),
        "hvp": gradcheck.check_hvp(t.grad, hessp, t.x0(), args=t.args()),
    }
    for kind, result in results.items():
        assert result.status == "failed", kind
        pages[kind] = write(result, root / f"{kind}.html")
    return pages


@pytest.fixture(scope="module")
def all_pages(demo: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("layout")
    index = write_run_report(_battery(demo), root / "run")
    checks = sorted((root / "run" / "checks").glob("*.html"))
    pages = {
        "index": index,
        "seed": root / "run" / "seed.html",
        "run check passed": next(p for p in checks if "auto" in p.name),
        "run check failed": next(p for p in checks if "bug" in p.name),
    }
    cli = root / "check.html"
    example = str(EXAMPLES / "custom_gradient.py")
    status = cli_main(["check", f"{example}:loss", f"{example}:grad", "--params",
                       f"{example}:params", "--quiet", "--html", str(cli)])  # fmt: skip
    assert status == 1
    pages["check --html"] = cli
    pages["784x128 weight"] = write(_big_weight_result(), root / "big.html")
    pages.update(_derivative_pages(root))
    return pages


# -- measuring in Chromium -----------------------------------------------------------------------
_MEASURE = """
window.addEventListener('load', () => {
  const found = {};
  for (const frame of document.querySelectorAll('iframe')) {
    const doc = frame.contentDocument, win = frame.contentWindow;
    let smallest = Infinity, where = '', texts = 0;
    for (const text of doc.querySelectorAll('svg text')) {
      const box = text.getBoundingClientRect();
      if (!box.width && !box.height) continue;  // not displayed (a closed <details>)
      const m = text.getScreenCTM();
      const px = parseFloat(win.getComputedStyle(text).fontSize) * (m ? Math.hypot(m.a, m.b) : 1);
      texts += 1;
      if (px < smallest) { smallest = px; where = text.textContent.slice(0, 40); }
    }
    found[frame.name] = {scrollWidth: doc.documentElement.scrollWidth, width: win.innerWidth,
                         smallest: smallest === Infinity ? null : smallest, where, texts};
  }
  const out = document.createElement('pre');
  out.id = 'measured';
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
});
"""


def measure(pages: dict[str, Path], width: int, height: int) -> dict[str, dict[str, Any]]:
    """Lay every page out in a ``width`` x ``height`` viewport; what each measured."""
    assert CHROMIUM is not None
    frames = "".join(
        f'<iframe name="{html.escape(name)}" width="{width}" height="{height}" '
        f'srcdoc="{html.escape(path.read_text(encoding="utf-8"))}"></iframe>'
        for name, path in pages.items()
    )
    host = f"<!DOCTYPE html><html><head><script>{_MEASURE}</script></head><body>{frames}</body>"
    with tempfile.TemporaryDirectory() as work:
        page = Path(work) / "host.html"
        page.write_text(host, encoding="utf-8")
        completed = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={work}/profile", "--window-size=1400,1000",
             "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    match = re.search(r'<pre id="measured">(.*?)</pre>', completed.stdout, re.S)
    assert match, f"no measurement; chromium said: {completed.stderr[-2000:]}"
    return json.loads(html.unescape(match.group(1)))


#: The buggy twin of a page: a nowrap line wider than a phone, and a figure shrunk to half its
#: size (10 px text drawn at 5 px).  The measurement must see both.
TOO_WIDE = (
    '<!DOCTYPE html><html><body><p style="white-space:nowrap">' + "word " * 200 + "</p>"
    '<svg viewBox="0 0 600 100" style="width:300px"><text x="0" y="50" font-size="10">'
    "small</text></svg></body></html>"
)


@pytest.fixture(scope="module")
def measured(
    all_pages: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, dict[str, Any]]]:
    twin = tmp_path_factory.mktemp("twin") / "wide.html"
    twin.write_text(TOO_WIDE, encoding="utf-8")
    pages = {**all_pages, "buggy twin": twin}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {size: pool.submit(measure, pages, *wh) for size, wh in SIZES.items()}
        return {size: future.result() for size, future in futures.items()}


PAGES = [
    "index",
    "seed",
    "run check passed",
    "run check failed",
    "check --html",
    "784x128 weight",
    "vjp",
    "jvp",
    "jacobian",
    "hessian",
    "hvp",
]


@pytest.mark.parametrize("size", sorted(SIZES))
@pytest.mark.parametrize("page", PAGES)
def test_page_fits_the_screen_and_its_figures_are_legible(
    measured: dict[str, dict[str, dict[str, Any]]], size: str, page: str
) -> None:
    found = measured[size][page]
    width = SIZES[size][0]
    assert found["width"] == width  # the viewport really was this wide
    assert found["scrollWidth"] <= width, f"{page} is {found['scrollWidth']} px wide at {width}"
    if page == "index":  # the battery is a table of links, not a figure
        return
    assert found["texts"] > 0  # every other page draws a map or a plot with text in it
    assert found["smallest"] >= MIN_TEXT_PX, (
        f"{page} at {width} px: {found['where']!r} is {found['smallest']:.1f} px high"
    )


def test_measurement_catches_a_page_too_wide(
    measured: dict[str, dict[str, dict[str, Any]]],
) -> None:
    """The buggy twin: a nowrap line and a shrunken figure are seen as such."""
    found = measured["phone"]["buggy twin"]
    assert found["scrollWidth"] > 390
    assert found["smallest"] == pytest.approx(5.0, abs=0.1)

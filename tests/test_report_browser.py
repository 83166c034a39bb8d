"""Each kind of HTML report rendered by a real browser (headless Chromium).

One Chromium run per report takes the screenshot and dumps the rendered DOM.  The test checks
that the page rendered (the screenshot is far from blank: many colours, much non-white area)
and that the expected headings are in the DOM.  Skipped when Chromium is not installed
(``.ci/run`` installs the Debian package ``chromium``).  Cost: about 3 s per report, the
four run in parallel.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from html import unescape
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gradcheck
from gradcheck.report import IndexEntry, write_check_report, write_index, write_seed_report
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
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
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

    from gradcheck.demo.seed import demonstrate

    demo = demonstrate()
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
    "index": ["Battery of gradient checks", "Environment"],
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_report_renders_in_chromium(rendered: dict[str, tuple[Path, str]], kind: str) -> None:
    png, dom = rendered[kind]
    _assert_not_blank(png)
    headings = _headings(dom)
    for heading in EXPECTED[kind]:
        assert heading in headings, f"{heading!r} not among {headings}"
    assert dom.count("<svg") >= 1  # the figures are in the rendered DOM
    assert "<script>alert" not in dom  # the hostile name stayed text


def test_verdict_banner_is_visible(rendered: dict[str, tuple[Path, str]]) -> None:
    """The failed check's banner is red near the top of the page: the verdict at a glance."""
    from matplotlib.image import imread

    png, dom = rendered["check"]
    assert 'class="banner failed"' in dom
    top = imread(png)[:400, :, :3]
    reddish = (top[..., 0] > 0.7) & (top[..., 1] < 0.35) & (top[..., 2] < 0.35)
    assert reddish.sum() > 500  # the red verdict mark

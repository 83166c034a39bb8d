"""The README's Python example runs as written, its set-up commands and links hold."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_example_passes_the_correct_gradient_and_diagnoses_the_planted_bug(capsys):
    assert len(_blocks()) == 1  # one example: the rest lives in docs/
    namespace: dict = {}
    exec(_blocks()[0], namespace)  # noqa: S102 - our own README
    assert namespace["result"].passed
    out = capsys.readouterr().out
    assert out.startswith("True\n")
    assert "FAILED" in out and "FAIL w[2]: analytic -1.52026, complex 1.52026" in out
    assert "likely cause: w: the sign is flipped (analytic = -reference)" in out


def test_quickstart_has_exactly_two_setup_commands():
    quickstart = README.read_text().split("## Quickstart", 1)[1].split("##", 1)[0]
    commands = re.findall(r"```bash\n(.*?)```", quickstart, flags=re.S)[0].strip().splitlines()
    assert [c.split("#")[0].strip() for c in commands] == [
        "pip install -e . && gradcheck run",
        "pip install -e '.[test]' && pytest",
    ]


def test_every_link_resolves_inside_the_repository_or_is_the_original_post():
    links = re.findall(r"\]\(([^)]+)\)", README.read_text())
    assert "https://ai.stackexchange.com/questions/26920" in links
    for link in links:
        if link.startswith("https://"):
            continue
        assert not link.startswith("../"), link
        assert (ROOT / link).exists(), link


def test_the_measured_table_links_the_benchmark_results():
    measured = README.read_text().split("## Measured", 1)[1].split("\n## ", 1)[0]
    for name in ("benchmarks/results/latest.md", "benchmarks/results/scale.md"):
        assert f"]({name})" in measured
        assert (ROOT / name).exists()

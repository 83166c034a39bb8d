"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_python_api_example_runs_and_passes(capsys):
    namespace: dict = {}
    exec(_blocks()[0], namespace)  # noqa: S102 - our own README
    assert namespace["result"].passed
    assert "True" in capsys.readouterr().out


def test_the_planted_bug_example_is_diagnosed(capsys):
    namespace: dict = {}
    exec(_blocks()[0], namespace)  # noqa: S102
    exec(_blocks()[1], namespace)  # noqa: S102
    out = capsys.readouterr().out
    assert "FAILED" in out and "sign is flipped" in out


def test_quickstart_has_exactly_two_setup_commands():
    quickstart = README.read_text().split("## Quickstart", 1)[1].split("##", 1)[0]
    commands = re.findall(r"```bash\n(.*?)```", quickstart, flags=re.S)[0].strip().splitlines()
    assert [c.split("#")[0].strip() for c in commands] == [
        "pip install -e . && gradcheck run",
        "pip install -e '.[test]' && pytest",
    ]


def test_the_fast_at_scale_example_runs_directionally(capsys):
    block = next(b for b in _blocks() if "784, 128, 10" in b)
    namespace: dict = {}
    exec(block, namespace)  # noqa: S102
    assert namespace["result"].passed
    assert namespace["result"].mode == "directional"
    assert capsys.readouterr().out.startswith("directional")

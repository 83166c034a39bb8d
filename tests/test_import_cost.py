"""``import gradcheck`` stays cheap, and what it exports lazily still resolves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gradcheck


def test_every_public_name_resolves() -> None:
    # The lazily exported names point at modules by path: a moved module must not
    # leave ``gradcheck.check_update`` (or ``from gradcheck import ...``) broken.
    for name in gradcheck.__all__:
        assert getattr(gradcheck, name) is not None, name
    from gradcheck import Network, check_update, run_battery  # noqa: F401


#: numpy too: the plugin is imported by every pytest session, and needs none of it to load.
HEAVY = ("numpy", "scipy", "matplotlib", "jinja2", "tqdm", "hypothesis")

_FRESH_IMPORT = """
import sys
import gradcheck, gradcheck.plugin
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
assert not heavy, f"imported at start-up: {{heavy}}"

import numpy as np
result = gradcheck.check(lambda w: float(np.sum(w**3)), lambda w: 3 * w**2, np.arange(3.0))
assert result.passed, str(result)
assert isinstance(gradcheck.METHODS, tuple) and callable(gradcheck.assert_check)
print("ok")
"""


def test_import_loads_no_heavy_module() -> None:
    """``import gradcheck`` and the pytest plugin (imported by every pytest session where
    gradcheck is installed) load none of the heavy optional dependencies; checks still work."""
    code = _FRESH_IMPORT.format(heavy=HEAVY)
    env = dict(os.environ, PYTHONPATH=str(Path(gradcheck.__file__).parents[1]))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"

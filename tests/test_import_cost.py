"""``import gradcheck`` stays cheap, and what it exports lazily still resolves."""

from __future__ import annotations

import gradcheck


def test_every_public_name_resolves() -> None:
    # The lazily exported names point at modules by path: a moved module must not
    # leave ``gradcheck.check_update`` (or ``from gradcheck import ...``) broken.
    for name in gradcheck.__all__:
        assert getattr(gradcheck, name) is not None, name
    from gradcheck import Network, check_update, run_battery  # noqa: F401

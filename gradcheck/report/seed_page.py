"""The seed report: why ``a_prev.T @ delta``, and why ``+``."""

from __future__ import annotations

from typing import Any

__all__ = ["headline_facts", "render_seed_report"]


def headline_facts(demo: Any) -> list[tuple[str, str]]:
    return []


def render_seed_report(demo: Any, **options: Any) -> str:
    raise NotImplementedError

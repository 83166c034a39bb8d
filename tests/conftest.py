"""Shared test configuration: hypothesis profiles.

``GRADCHECK_HYPOTHESIS_PROFILE=thorough`` runs the property tests with many more examples
(the default ``ci`` profile keeps the suite within its time budget).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# The CI profile is derandomized: the same examples every run, so the suite's verdict is
# reproducible; the thorough profile explores new examples each time.
settings.register_profile(
    "ci",
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.load_profile(os.environ.get("GRADCHECK_HYPOTHESIS_PROFILE", "ci"))

"""Shared test settings: Hypothesis without wall-clock deadlines (the machine is noisy),
and the ``msm_backend`` fixture that runs a test once per multiscalar backend."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from privacy import msm

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=100
)
settings.register_profile(
    "ci",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    max_examples=100,
    derandomize=True,
    print_blob=True,
)
settings.load_profile(
    "ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "default")
)


# --- multiscalar backends (privacy.msm) -----------------------------------------
# Tests that use the ``msm_backend`` fixture run once per backend. Without the
# native backend built, its runs are skipped with the reason; with
# VEIL_MSM_REQUIRE_NATIVE=1 (CI sets it) they fail instead, so CI cannot pass
# without building and testing it.

MSM_BACKENDS = ("native", "libsodium")


def pytest_report_header() -> str:
    reason = msm.native_unavailable_reason()
    if reason is None:
        return f"privacy.msm: backends {', '.join(msm.available_backends())}"
    return f"privacy.msm: native backend NOT available ({reason}); the libsodium one is tested"


@pytest.fixture(params=MSM_BACKENDS)
def msm_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    name: str = request.param
    if name not in msm.available_backends():
        reason = f"native msm backend unavailable: {msm.native_unavailable_reason()}"
        if os.environ.get("VEIL_MSM_REQUIRE_NATIVE") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    with msm.use_backend(name):
        yield name

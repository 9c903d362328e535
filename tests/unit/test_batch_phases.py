"""benchmarks.batch_phases: its phases add up to the batch; a failing batch is no benchmark."""

from __future__ import annotations

from dataclasses import replace

import pytest

from benchmarks import batch_phases
from privacy.bench import _make_statements


def test_the_phases_add_up_to_the_batch() -> None:
    statements = _make_statements(2, 64, 2)
    phases = batch_phases.time_phases(statements)
    assert set(phases) == set(batch_phases.PHASES)
    parts = sum(seconds for phase, seconds in phases.items() if phase != "total")
    assert parts == pytest.approx(phases["total"], abs=1e-9)
    assert phases["msm"] > 0


def test_a_batch_that_fails_is_refused() -> None:
    statements = _make_statements(2, 64, 2)
    swapped = [replace(statements[0], commitments=statements[1].commitments), statements[1]]
    with pytest.raises(RuntimeError, match="failed batch verification"):
        batch_phases.time_phases(swapped)

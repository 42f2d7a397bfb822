"""The misconfigured-id cases judge observed outcomes against what each case expects; the GRU reference is the
exported file itself, so a state carried wrongly changes its outputs."""

from __future__ import annotations

import numpy as np
import pytest

from workloads.sequences import gru
from workloads.sequences.experiments.sequence_ids import CASES, NO_ID, NO_START, _agrees
from workloads.serving.repository import model_cache

BY = {c.name: c for c in CASES}


@pytest.mark.parametrize(
    ("case", "kind", "observed", "want"),
    [
        ("no sequence id", "error", f"StatusCode.INVALID_ARGUMENT inference request to model 'm' {NO_ID}", "yes"),
        ("no sequence id", "ok", "ok: STEP 1", "NO"),
        ("first request without START", "error", f"StatusCode.INVALID_ARGUMENT ... {NO_ID}", "NO"),
        ("first request without START", "error", f"StatusCode.INVALID_ARGUMENT ... {NO_START}", "yes"),
        ("START again on a live id", "ok", "STEP 1, 2; after the second START 1, 2", "yes"),
        ("START again on a live id", "ok", "STEP 1, 2; after the second START 3, 4", "NO"),
        ("two conversations share one id", "ok", "no error; 5 of 6 outputs of conversation A differ", "yes"),
        ("two conversations share one id", "ok", "no error; 0 of 6 outputs of conversation A differ", "NO"),
        ("sequence flags to the stateless model", "error", "StatusCode.INVALID_ARGUMENT x", "NO"),
    ],
)
def test_each_case_is_judged_against_its_expected_outcome(case, kind, observed, want):
    assert _agrees(BY[case], kind, observed) == want


def test_reference_depends_on_the_carried_state():
    ref = gru.Reference(gru.export(model_cache()))
    xs = gru.conversation(5, 4)
    ys = ref.run(xs)
    assert ys.shape == (4, gru.OUTPUTS)
    assert np.array_equal(gru.conversation(5, 4), xs)  # conversations are reproducible from their seed
    restarted = ref.run(xs[2:])  # the same inputs from a zero state: different outputs
    assert not np.allclose(restarted[0], ys[2], atol=1e-4)

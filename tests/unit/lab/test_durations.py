"""ailab.contract.durations: Prometheus' duration notation, read once for the platform's option checks and the
runners' scrape intervals."""

from __future__ import annotations

import pytest

from ailab.contract import durations
from ailab.local import registry
from ailab.local.services.prometheus import duration_s


@pytest.mark.parametrize(("text", "secs"), [("500ms", 0.5), ("1s", 1.0), ("1h30m", 5400.0), ("15d", 1296000.0)])
def test_prometheus_durations_in_seconds(text, secs):
    assert durations.seconds(text) == secs


@pytest.mark.parametrize("bad", ["0.5s", "500", "1 s", "", "5x"])
def test_a_bad_duration_names_the_text_and_what_is_allowed(bad):
    with pytest.raises(ValueError, match="not a duration") as err:
        durations.seconds(bad)
    assert repr(bad) in str(err.value) and "ms, s, m, h, d, w or y" in str(err.value)
    with pytest.raises(registry.PlatformError, match=r"option prometheus\.retention") as err2:
        duration_s("prometheus.retention", bad)  # the platform's check names its option on top
    assert repr(bad) in str(err2.value) and "ms, s, m, h, d, w or y" in str(err2.value)

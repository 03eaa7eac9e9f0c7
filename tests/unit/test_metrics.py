"""The counters behind /metrics count what they say, whatever they keep for speed."""

from __future__ import annotations

from vedika.metrics import Metrics


def test_each_answers_end_is_counted_under_its_status() -> None:
    m = Metrics()
    for status in ("complete", "complete", "error", "superseded", "complete"):
        m.finished(status)

    def count(status: str) -> float | None:
        return m.registry.get_sample_value("vedika_generations_finished_total", {"status": status})

    assert (count("complete"), count("error"), count("superseded")) == (3.0, 1.0, 1.0)
    assert count("stopped") is None

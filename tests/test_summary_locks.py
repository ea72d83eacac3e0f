"""Concurrent writers keep the summary tables exact and never deadlock on them.

Re-labelling writes each item's summary changes in one batch, in one lock order (label, then
histogram bin, then totals). Written piecemeal, two writers with crossing label sets (one drops
Cat and adds Dog while the other drops Dog and adds Cat) each held a label_stats row the other
needed next, and PostgreSQL aborted one of them as a deadlock.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, func, select

from catalog.labelling import DetectedLabel, LabelResult
from catalog.sources import SourceObject
from catalog.store.engine import open_catalogue
from catalog.store.media import store_result
from catalog.store.schema import Detection, LabelHistogram, LabelStat
from catalog.store.units import histogram_bin

ROUNDS = 30


def _obj(key: str, version: int) -> SourceObject:
    return SourceObject(
        "s3", "bucket", key, 1000, f"etag-{version}", datetime(2024, 5, 1, tzinfo=UTC)
    )


def _result(*names: str) -> LabelResult:
    return LabelResult("rekognition", "3.0", 50.0, labels=[DetectedLabel(n, 91.0) for n in names])


def _summaries(sessions: Any) -> tuple[dict[int, int], dict[tuple[int, int], int]]:
    with sessions() as session:
        stats = {
            label_id: n
            for label_id, n in session.execute(select(LabelStat.label_id, LabelStat.media_count))
            if n
        }
        bins = {
            (label_id, bin_): n
            for label_id, bin_, n in session.execute(
                select(LabelHistogram.label_id, LabelHistogram.bin, LabelHistogram.media_count)
            )
            if n
        }
    return stats, bins


def _recounted(sessions: Any) -> tuple[dict[int, int], dict[tuple[int, int], int]]:
    with sessions() as session:
        stats = dict(
            session.execute(
                select(Detection.label_id, func.count()).group_by(Detection.label_id)
            ).all()
        )
        bins: dict[tuple[int, int], int] = {}
        for label_id, conf in session.execute(
            select(Detection.label_id, Detection.confidence_x100)
        ):
            key = (label_id, histogram_bin(conf))
            bins[key] = bins.get(key, 0) + 1
    return stats, bins


def test_writers_relabelling_with_crossing_labels_neither_deadlock_nor_drift(db_url):
    _, sessions = open_catalogue(db_url)
    plans = {  # each item swaps between the two label sets, in opposite phase
        "a.jpg": [("Cat", "Tree"), ("Dog", "Tree")],
        "b.jpg": [("Dog", "Sky"), ("Cat", "Sky")],
    }
    for key, sets in plans.items():
        with sessions.begin() as session:
            store_result(session, _obj(key, 0), "image", _result(*sets[0]), sync_run_id=None)
    barrier = threading.Barrier(len(plans))
    errors: list[BaseException] = []

    def writer(key: str, sets: list[tuple[str, ...]]) -> None:
        try:
            for round_ in range(1, ROUNDS + 1):
                barrier.wait(timeout=30)
                with sessions.begin() as session:
                    result = _result(*sets[round_ % 2])
                    store_result(session, _obj(key, round_), "image", result, sync_run_id=None)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=writer, args=item) for item in plans.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[0]
    assert _summaries(sessions) == _recounted(sessions)


def test_restoring_the_same_labels_touches_no_summary_row(tmp_path):
    engine, sessions = open_catalogue(f"sqlite:///{tmp_path / 'c.db'}")
    with sessions.begin() as session:
        store_result(session, _obj("a.jpg", 0), "image", _result("Cat"), sync_run_id=None)
    written: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("INSERT INTO label_stats") or "label_histograms" in statement:
            written.append(statement)

    event.listen(engine, "before_cursor_execute", capture)
    with sessions.begin() as session:  # new bytes, same labels: nothing to add or take away
        store_result(session, _obj("a.jpg", 1), "image", _result("Cat"), sync_run_id=None)
    assert written == []
    with sessions.begin() as session:
        store_result(session, _obj("a.jpg", 2), "image", _result("Dog"), sync_run_id=None)
    assert len(written) == 2  # one batch for label_stats, one for the histogram bins
    assert _summaries(sessions) == _recounted(sessions)

"""Parents, aliases and categories are kept as each response gave them, per model version.

The results below copy the shapes of captured responses (awscli 2.0, carbon-amazon 3.0, the
dog-walking 3.0 runs with parents excluded, chalice-workshop before 2019, pfeilbr 2.0 video).
"""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from catalog.labelling import BoundingBox, DetectedLabel, Instance, LabelResult, Moment
from catalog.read.details import get_media_detail
from catalog.read.labels import list_labels
from catalog.read.search import matching_media_ids
from catalog.sources import SourceObject
from catalog.store.engine import (
    alembic_config,
    head_revision,
    make_engine,
    open_catalogue,
    upgrade_to_head,
)
from catalog.store.media import store_result
from catalog.store.reads import load_result
from catalog.store.schema import (
    Detection,
    Label,
    LabelAlias,
    LabelCategory,
    LabelParent,
    LabelStat,
    Media,
)
from catalog.store.vocabulary import vocabulary

BOX = (Instance(BoundingBox(0.1, 0.2, 0.3, 0.4), 97.5),)


def person_2_0() -> DetectedLabel:
    return DetectedLabel("Person", 99.8, BOX)


def person_3_0() -> DetectedLabel:
    return DetectedLabel("Person", 99.1, BOX, (), ("Human",), ("Person Description",))


def result(model_version: str | None, *labels: DetectedLabel) -> LabelResult:
    return LabelResult("rekognition", model_version, 50.0, labels=list(labels))


def store(sessions: sessionmaker[Session], key: str, labels: LabelResult) -> str:
    obj = SourceObject("s3", "bucket", key, 100, f"etag-{key}")
    with sessions.begin() as session:
        store_result(session, obj, "image", labels, sync_run_id=None)
    return obj.uri


def shown(sessions: sessionmaker[Session], uri: str) -> dict[str, tuple[Any, ...]]:
    """label -> (parents, aliases, categories) as `catalog show` gives them."""
    with sessions() as session:
        detail = get_media_detail(session, uri)
    return {label.name: (label.parents, label.aliases, label.categories) for label in detail.labels}


def found(sessions: sessionmaker[Session], query: str) -> set[str]:
    with sessions() as session:
        ids = set(session.scalars(matching_media_ids(query, session=session)))
        return {media.key for media in session.query(Media).filter(Media.id.in_(ids))}


@pytest.fixture
def sessions(db_url: str) -> sessionmaker[Session]:
    vocabulary.forget()  # each test starts with a cold per-process vocabulary
    return open_catalogue(db_url)[1]


# -- 1. taxonomy from later responses is stored ----------------------------------------------------


def test_a_later_response_adds_aliases_and_categories_to_a_known_label(sessions: Any) -> None:
    store(sessions, "street.jpg", result("2.0", person_2_0()))
    store(sessions, "crowd.jpg", result("2.0", person_2_0()))  # Person is now a known name
    store(sessions, "portrait.jpg", result("3.0", person_3_0()))
    with sessions() as session:
        person = {row.name: row for row in list_labels(session)}["Person"]
    assert person.aliases == ("Human",)
    everyone = {"street.jpg", "crowd.jpg", "portrait.jpg"}
    assert found(sessions, "Human") == everyone
    assert found(sessions, 'category:"Person Description"') == everyone


def test_a_label_first_seen_as_a_parent_gets_its_own_parents_later(sessions: Any) -> None:
    dog = DetectedLabel("Dog", 90.0, (), ("Animal", "Canine", "Mammal", "Pet"))
    store(sessions, "dog.jpg", result("3.0", dog))
    store(sessions, "puppy.jpg", result("3.0", dog))  # Canine is now a known name
    canine = DetectedLabel("Canine", 91.0, (), ("Animal", "Mammal"))
    store(sessions, "wolf.jpg", result("3.0", canine))
    assert shown(sessions, "s3://bucket/wolf.jpg")["Canine"][0] == ["Animal", "Mammal"]
    assert found(sessions, "Mammal") == {"dog.jpg", "puppy.jpg", "wolf.jpg"}


def test_a_response_that_repeats_a_known_taxonomy_writes_nothing_new(sessions: Any) -> None:
    store(sessions, "a.jpg", result("3.0", person_3_0()))
    store(sessions, "b.jpg", result("3.0", person_3_0()))
    with sessions() as session:
        assert session.query(LabelAlias).count() == 1
        taxonomy_ids = set(
            session.scalars(Detection.__table__.select().with_only_columns(Detection.taxonomy_id))
        )
    assert len(taxonomy_ids) == 1


# -- 2. each item shows its own model version's taxonomy ---------------------------------------


def test_an_item_shows_only_the_taxonomy_its_own_response_gave(sessions: Any) -> None:
    old = store(sessions, "2018.jpg", result(None, DetectedLabel("Dog", 93.0)))
    two = store(sessions, "2019.jpg", result("2.0", person_2_0()))
    three = store(
        sessions,
        "2024.jpg",
        result("3.0", person_3_0(), DetectedLabel("Dog", 95.0, (), ("Animal", "Pet"))),
    )
    assert shown(sessions, old) == {"Dog": ([], [], [])}
    assert shown(sessions, two) == {"Person": ([], [], [])}
    assert shown(sessions, three) == {
        "Person": ([], ["Human"], ["Person Description"]),
        "Dog": (["Animal", "Pet"], [], []),
    }


def test_parents_keep_the_order_the_response_gave(sessions: Any) -> None:
    deer = DetectedLabel("Deer", 80.0, (), ("Wildlife", "Mammal", "Animal"))
    uri = store(sessions, "deer.jpg", result("2.0", deer))
    assert shown(sessions, uri)["Deer"][0] == ["Wildlife", "Mammal", "Animal"]


def test_a_video_shows_the_taxonomy_of_each_labels_first_moment(sessions: Any) -> None:
    first = DetectedLabel("Rabbit", 70.0, (), ("Mammal", "Rodent", "Animal"))
    later = DetectedLabel("Rabbit", 80.0, (), ("Animal", "Mammal", "Rodent"))
    labels = LabelResult("rekognition", "2.0", 50.0, moments=[Moment(0, first), Moment(200, later)])
    obj = SourceObject("s3", "bucket", "clip.mp4", 100, "etag-clip")
    with sessions.begin() as session:
        store_result(session, obj, "video", labels, sync_run_id=None)
    assert shown(sessions, obj.uri)["Rabbit"][0] == ["Mammal", "Rodent", "Animal"]


def test_a_name_finds_labels_whose_response_named_it_as_a_parent(sessions: Any) -> None:
    # dog-walking: LabelExclusionFilters removed Animal from the list, Dog still names it.
    dog = DetectedLabel("Dog", 96.0, (), ("Animal", "Canine", "Mammal", "Pet"))
    store(sessions, "husky.jpg", result("3.0", dog))
    store(sessions, "cat.jpg", result("3.0", DetectedLabel("Animal", 99.0)))
    assert found(sessions, "Animal") == {"husky.jpg", "cat.jpg"}
    assert found(sessions, "animal > 98") == {"cat.jpg"}
    assert found(sessions, "NOT Animal") == set()
    assert found(sessions, "Dog") == {"husky.jpg"}


# -- 3. thresholds compare at the stored precision --------------------------------------------


@pytest.mark.parametrize(
    ("query", "selected"),
    [
        ("Adult > 98.37744140625", False),
        ("Adult >= 98.37744140625", True),
        ("Adult > 98.37", True),
        ("Adult > 98.38", False),
        ("Adult = 98.38", True),
        ("Adult < 98.37744140625", False),
        ("Adult <= 98.37744140625", True),
        ("Abies >= 59.13471984863281", True),
        ("Abies > 59.13471984863281", False),
        ("Abies < 59.134", False),
        ("Abies < 59.136", True),
    ],
)
def test_a_threshold_compares_at_the_precision_confidences_are_stored(
    sessions: Any, query: str, selected: bool
) -> None:
    store(
        sessions,
        "a.jpg",
        result(
            "3.0", DetectedLabel("Adult", 98.37744140625), DetectedLabel("Abies", 59.13471984863281)
        ),
    )
    assert found(sessions, query) == ({"a.jpg"} if selected else set())


# -- migrating a catalogue made before revision 0002 -----------------------------------------


def test_a_catalogue_from_revision_0001_keeps_its_taxonomy_after_upgrade(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(engine, connection), "0001")
    with engine.begin() as connection:  # rows as revision 0001's code wrote them
        names = ("Car", "Vehicle", "Transportation")
        connection.execute(insert(Label), [{"name": n, "name_folded": n.lower()} for n in names])
        ids = dict(connection.execute(select(Label.name, Label.id)).all())
        car = ids["Car"]
        connection.execute(
            insert(LabelParent),
            [{"label_id": car, "parent_id": ids[n]} for n in ("Vehicle", "Transportation")],
        )
        connection.execute(
            insert(LabelAlias),
            [{"label_id": car, "alias": "Automobile", "alias_folded": "automobile"}],
        )
        connection.execute(
            insert(LabelCategory),
            [
                {
                    "label_id": car,
                    "category": "Vehicles and Automotive",
                    "category_folded": "vehicles and automotive",
                }
            ],
        )
        connection.exec_driver_sql(
            "INSERT INTO media (source, bucket, key, size_bytes, kind, status, attempts,"
            " first_seen_at, updated_at) VALUES ('s3', 'bucket', 'car.jpg', 10, 'image',"
            " 'labelled', 1, '2026-11-01 00:00:00', '2026-11-01 00:00:00')"
        )
        media_id = connection.execute(select(Media.id)).scalar_one()
        connection.exec_driver_sql(
            "INSERT INTO detections (label_id, media_id, confidence_x100, instance_count,"
            f" detection_count) VALUES ({car}, {media_id}, 9512, 0, 1)"
        )
        connection.execute(
            insert(LabelStat),
            [
                {
                    "label_id": car,
                    "media_count": 1,
                    "image_count": 1,
                    "video_count": 0,
                    "detection_count": 1,
                    "confidence_sum_x100": 9512,
                }
            ],
        )
    assert upgrade_to_head(engine) == ("0001", head_revision())
    sessions = open_catalogue(db_url)[1]
    vocabulary.forget()
    assert shown(sessions, "s3://bucket/car.jpg") == {
        "Car": (["Transportation", "Vehicle"], ["Automobile"], ["Vehicles and Automotive"])
    }
    assert found(sessions, "Automobile") == {"car.jpg"}
    assert found(sessions, "Vehicle") == {"car.jpg"}
    assert found(sessions, 'category:"Vehicles and Automotive"') == {"car.jpg"}
    with sessions() as session:
        assert {row.name: row.aliases for row in list_labels(session)} == {"Car": ("Automobile",)}
    # A new response for the label teaches, and the old item keeps what it had.
    store(
        sessions, "new.jpg", result("3.0", DetectedLabel("Car", 90.0, (), ("Vehicle",), ("Auto",)))
    )
    assert shown(sessions, "s3://bucket/new.jpg") == {"Car": (["Vehicle"], ["Auto"], [])}
    assert shown(sessions, "s3://bucket/car.jpg")["Car"][1] == ["Auto", "Automobile"]


def test_a_copied_result_keeps_the_taxonomy_of_the_item_it_was_copied_from(sessions: Any) -> None:
    deer = DetectedLabel("Deer", 80.0, BOX, ("Wildlife", "Mammal", "Animal"))
    source = store(sessions, "deer.jpg", result("2.0", deer, person_2_0()))
    store(sessions, "elk.jpg", result("3.0", DetectedLabel("Deer", 81.0, (), ("Animal",))))
    with sessions.begin() as session:
        media_id = session.scalars(select(Media.id).where(Media.key == "deer.jpg")).one()
        copied = load_result(session, media_id)
        obj = SourceObject("s3", "bucket", "copy.jpg", 100, "etag-deer.jpg")
        store_result(session, obj, "image", copied, sync_run_id=None, reused_from_media_id=media_id)
    assert shown(sessions, obj.uri) == shown(sessions, source)
    assert shown(sessions, obj.uri)["Deer"][0] == ["Wildlife", "Mammal", "Animal"]

"""Typed records, projections as dataclasses and DataFrames, and proofs verified here."""

from __future__ import annotations

import dataclasses

import grpc
import pytest

from diplog import (
    Channel,
    Client,
    FailedPrecondition,
    InvalidArgument,
    NewEvent,
    TimelineEntry,
    VerificationError,
    pb,
)

pytestmark = pytest.mark.usefixtures("founding")


def call(day: str, *actors: str) -> dict:
    return {
        "occurred": {"day": day, "time_zone": "Europe/Moscow"},
        "sources": [
            {
                "source": "rus.mfa",
                "language": "ru",
                "quotes": [{"text": "Состоялся телефонный разговор"}],
            }
        ],
        "call_held": {"participants": [{"actor": a} for a in actors], "topics": ["ukraine-settlement"]},
    }


def test_a_recorded_call_is_on_the_timeline_and_in_the_dataframe(client: Client, unique: str) -> None:
    stream = f"occurrence-pytest-{unique}"
    result = client.record(stream, [call("2025-03-01", "sergey-lavrov", "marco-rubio")])
    (event_id,) = result.event_ids
    record = client.get_event(event_id)
    assert record.kind == "call_held" and record.stream_id == stream

    timeline = client.timeline("sergey-lavrov", min_position=result.last_position)
    assert timeline.position >= result.last_position
    ours = [e for e in timeline if e.origin and e.origin.event_id == event_id]
    assert len(ours) == 1 and isinstance(ours[0], TimelineEntry)
    assert ours[0].kind == "CallHeld" and str(ours[0].occurred) == "2025-03-01 (Europe/Moscow)"
    assert {p.actor for p in ours[0].participants} == {"sergey-lavrov", "marco-rubio"}

    frame = timeline.to_dataframe()
    assert len(frame) == len(timeline)
    row = frame[frame["origin_event_id"] == event_id].iloc[0]
    assert row["kind"] == "CallHeld" and row["occurred"] == "2025-03-01 (Europe/Moscow)"
    assert "Sergey Lavrov" in row["participants"] and row["topics"] == "ukraine-settlement"


def test_a_record_retried_after_a_lost_answer_writes_once(client: Client, unique: str) -> None:
    stream = f"occurrence-pytest-{unique}"
    message = pb.DiplomaticEvent()
    from google.protobuf import json_format

    json_format.ParseDict(call("2025-03-02", "sergey-lavrov", "marco-rubio"), message)
    first = client.record(stream, [message])
    message.id = first.event_ids[0]
    again = client.record(stream, [message])
    assert again.idempotent_replay and again.positions == first.positions


def test_refused_records_name_the_field(client: Client, unique: str) -> None:
    stream = f"occurrence-pytest-{unique}"
    with pytest.raises(FailedPrecondition) as raised:
        client.record(stream, [call("2025-03-01", "sergey-lavrov", f"nobody-{unique}")])
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert raised.value.field == "events[0].call_held.participants[1].actor"
    assert raised.value.violations[0].type == "UNKNOWN_ACTOR"

    with pytest.raises(InvalidArgument) as raised_invalid:
        client.record(stream, [call("2025-03-01", "sergey-lavrov")])
    assert raised_invalid.value.field == "events[0].call_held.participants"


def test_every_projection_answers_dataclasses_and_dataframes(client: Client) -> None:
    channels = client.channels(states=("RUS", "USA"))
    assert channels and all(isinstance(c, Channel) for c in channels)
    assert {"key", "parties", "status", "last_contact_on"} <= set(channels.to_dataframe().columns)
    key = channels[0].key
    assert client.channel(key).key == key

    summits = client.summits(pending_only=True)
    assert any(s.key == "summit-rus-usa-2025" for s in summits)
    assert client.summit("summit-rus-usa-2025").stage
    commitments = client.commitments(status=["PENDING", "SCHEDULED", "LAPSED"])
    assert commitments.to_dataframe()["what"].str.len().min() > 0
    assert client.commitment(commitments[0].key).what == commitments[0].what

    (relations,) = client.relations("RUS", "USA")
    assert relations.states == ["RUS", "USA"] and relations.contacts >= 2
    assert any(r.states == ["RUS", "USA"] for r in client.relations())

    divergence = client.divergence("occurrence-2025-02-15-rubio-lavrov-call")
    assert len(divergence.reports) >= 2
    assert client.divergences(actor="RUS").to_dataframe().shape[0] >= 1

    assert {s.name for s in client.projection_status()} >= {"channels", "timeline"}
    hits = client.search("контакты", limit=5)
    assert hits and "\ue000" in hits[0].highlighted
    assert dataclasses.asdict(hits[0])["text"] == hits[0].text

    on_the_eve = client.channels(on="2025-02-12")
    assert all(c.key != "rus.foreign-minister+usa.secretary-of-state" for c in on_the_eve)


def test_proofs_are_verified_locally(client: Client, unique: str) -> None:
    old = client.tree_head()
    result = client.append(f"py-{unique}", [NewEvent("Noted", {"n": 1}, metadata={"k": "v"})])
    (event,) = list(client.read_stream(f"py-{unique}"))

    head = client.verify_event(event)
    assert head.tree_size >= event.position
    assert client.verify_event(result.event_ids[0]).tree_size >= event.position
    assert client.verify_consistency(old).tree_size >= head.tree_size

    forged = dataclasses.replace(event, data='{"n": 2}')
    with pytest.raises(VerificationError, match="does not hash"):
        client.verify_event(forged)
    rewritten = dataclasses.replace(old, root_hash=bytes(32)) if old.tree_size else None
    if rewritten is not None:
        with pytest.raises(VerificationError, match="rewritten"):
            client.verify_consistency(rewritten)


def test_a_head_signed_by_another_key_is_refused(server_url: str) -> None:
    with Client(server_url, public_key=bytes(range(32))) as pinned:
        with pytest.raises(VerificationError, match="signature"):
            pinned.tree_head()

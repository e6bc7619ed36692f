"""Appends, reads and subscriptions against the real server, including retries that keep
event ids and iterators that resume after a cut connection."""

from __future__ import annotations

import grpc
import pytest

from conftest import Consumer, Proxy, RestartableServer, Secured
from diplog import (
    NO_STREAM,
    Checkpoint,
    Client,
    InvalidArgument,
    NewEvent,
    Unauthenticated,
    RecordedEvent,
    WrongExpectedVersion,
)


def test_an_append_reads_back_exactly(client: Client, unique: str) -> None:
    stream = f"py-{unique}"
    result = client.append(
        stream,
        [
            NewEvent("Noted", {"quote": "Лавров"}, metadata={"source": "mid.ru"}),
            {"type": "Noted", "data": '{"raw":  1.0}'},
        ],
        expected_version=NO_STREAM,
    )
    assert result.stream_version == 2 and not result.idempotent_replay
    events = list(client.read_stream(stream))
    assert [e.id for e in events] == result.event_ids
    assert [e.position for e in events] == result.positions
    assert events[0].json() == {"quote": "Лавров"} and events[0].metadata == {"source": "mid.ru"}
    assert events[1].data == '{"raw":  1.0}'
    assert [e.stream_version for e in client.read_stream(stream, backward=True)] == [2, 1]


def test_a_stale_expected_version_raises_with_the_current_version(client: Client, unique: str) -> None:
    stream = f"py-{unique}"
    client.append(stream, [NewEvent("Noted")])
    with pytest.raises(WrongExpectedVersion) as raised:
        client.append(stream, [NewEvent("Noted")], expected_version=NO_STREAM)
    assert raised.value.code == grpc.StatusCode.ABORTED
    assert raised.value.reason == "WRONG_EXPECTED_VERSION"
    assert raised.value.current_version == 1


def test_invalid_input_raises_naming_the_field(client: Client, unique: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        client.append(f"py-{unique}", [NewEvent("Noted"), NewEvent("Noted", id="nope")])
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.field == "events[1].id"
    assert "events[1].id" in str(raised.value)


class _LostAnswer(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "the answer was lost on the way"

    def trailing_metadata(self) -> tuple:
        return ()


def test_an_append_whose_answer_is_lost_is_retried_with_the_same_ids(
    client: Client, unique: str
) -> None:
    stream = f"py-{unique}"
    real = client._log.Append
    sent: list[list[str]] = []

    def append_then_lose_the_first_answer(request, **kwargs):  # type: ignore[no-untyped-def]
        sent.append([event.id for event in request.events])
        response = real(request, **kwargs)
        if len(sent) == 1:
            raise _LostAnswer()
        return response

    client._log.Append = append_then_lose_the_first_answer  # type: ignore[method-assign]
    result = client.append(stream, [NewEvent("Noted", {"n": 1}), NewEvent("Noted", {"n": 2})], NO_STREAM)
    assert len(sent) == 2 and sent[0] == sent[1] == result.event_ids
    # The server wrote them once, on the first attempt, and answered the retry with its positions.
    assert result.idempotent_replay
    assert [e.id for e in client.read_stream(stream)] == result.event_ids


def test_read_all_resumes_after_a_cut_connection_without_duplicates_or_gaps(
    client: Client, proxied: Client, proxy: Proxy, unique: str
) -> None:
    prefix = f"py-bulk-{unique}-"
    padding = "x" * 300
    for batch in range(4):
        client.append(prefix + str(batch), [NewEvent("Bulk", {"i": i, "pad": padding}) for i in range(100)])
    expected = [e.position for e in client.read_all(stream_prefix=prefix)]
    assert len(expected) == 400

    proxy.cut_after(40_000)  # mid-read: about a quarter of the events' bytes
    positions = [e.position for e in proxied.read_all(stream_prefix=prefix)]
    assert proxy.cuts == 1 and proxy.accepted >= 2, (proxy.cuts, proxy.accepted)
    assert positions == expected

    proxy.cut_after(40_000)
    backward = [e.position for e in proxied.read_all(stream_prefix=prefix, backward=True, limit=350)]
    assert backward == expected[::-1][:350]


def test_read_stream_resumes_after_a_cut_connection(
    client: Client, proxied: Client, proxy: Proxy, unique: str
) -> None:
    stream = f"py-{unique}"
    client.append(stream, [NewEvent("Bulk", {"i": i, "pad": "y" * 400}) for i in range(300)])
    proxy.cut_after(30_000)
    versions = [e.stream_version for e in proxied.read_stream(stream)]
    assert proxy.cuts == 1
    assert versions == list(range(1, 301))


def test_a_subscription_resumes_after_its_connection_drops(
    client: Client, proxied: Client, proxy: Proxy, unique: str
) -> None:
    prefix = f"py-sub-{unique}-"
    first = client.append(prefix + "a", [NewEvent("Tick", {"n": n}) for n in range(5)])
    subscription = Consumer(
        proxied.subscribe(after=first.positions[0] - 1, stream_prefix=prefix, checkpoints=True)
    )
    got = [e for e in subscription.take(6) if isinstance(e, RecordedEvent)]
    assert [e.position for e in got] == first.positions

    # The connection goes down while the subscription waits; events commit meanwhile.
    assert proxy.drop_all() >= 1
    second = client.append(prefix + "b", [NewEvent("Tick", {"n": n}) for n in range(5, 10)])
    third = client.append(prefix + "a", [NewEvent("Tick", {"n": 10})])

    later: list[RecordedEvent] = []
    while len(later) < 6:
        item = subscription.take(1)[0]
        if isinstance(item, RecordedEvent):
            later.append(item)
        else:
            assert isinstance(item, Checkpoint)
    assert [e.position for e in later] == second.positions + third.positions
    assert [e.json()["n"] for e in got + later] == list(range(11))
    assert proxy.accepted >= 2


def test_a_subscription_from_a_position_catches_up_then_says_so(client: Client, unique: str) -> None:
    stream = f"py-{unique}"
    result = client.append(stream, [NewEvent("Tick"), NewEvent("Tick")])
    subscription = Consumer(
        client.subscribe(after=result.positions[0] - 1, stream_prefix=stream, checkpoints=True)
    )
    items = subscription.take(3)
    assert [i.position for i in items[:2]] == result.positions
    assert isinstance(items[2], Checkpoint) and items[2].caught_up


def test_a_subscription_resumes_across_a_server_killed_and_restarted(
    client: Client, restartable: RestartableServer, unique: str
) -> None:
    prefix = f"py-restart-{unique}-"
    first = client.append(prefix + "a", [NewEvent("Tick", {"n": n}) for n in range(3)])
    with Client(restartable.url) as through_restart:
        subscription = Consumer(
            through_restart.subscribe(after=first.positions[0] - 1, stream_prefix=prefix)
        )
        assert [e.position for e in subscription.take(3)] == first.positions

        restartable.kill()
        # Written through the main server while the subscription's server is down.
        second = client.append(prefix + "b", [NewEvent("Tick", {"n": n}) for n in range(3, 6)])
        restartable.start()
        third = client.append(prefix + "a", [NewEvent("Tick", {"n": n}) for n in range(6, 8)])

        later = subscription.take(5, timeout=60)
    assert [e.position for e in later] == second.positions + third.positions
    assert [e.json()["n"] for e in later] == list(range(3, 8))


def test_tls_and_a_token_reach_a_server_that_requires_them(secured: Secured, unique: str) -> None:
    url, ca = secured.server.url, secured.ca
    with Client(url, token=secured.token, ca_cert=ca) as client:
        result = client.append(f"py-{unique}", [NewEvent("Noted")])
        (event,) = list(client.read_stream(f"py-{unique}"))
        assert event.appended_by == secured.token_name and event.position == result.last_position
        assert client.verify_event(event).tree_size >= event.position
    with Client(url, ca_cert=ca.read_bytes()) as anonymous:
        with pytest.raises(Unauthenticated) as raised:
            anonymous.head()
        assert raised.value.code == grpc.StatusCode.UNAUTHENTICATED

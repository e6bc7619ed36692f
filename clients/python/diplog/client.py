"""`Client`: the typed layer over diplog's gRPC API.

- Writes (`append`, `record`, `record_many`) give every event its id here, once, before the
  first attempt, and retry on UNAVAILABLE and DEADLINE_EXCEEDED with the same ids: the server
  answers a repeated append with the positions of the original (`idempotent_replay`) and writes
  nothing, so a retry after a lost answer cannot write an event twice.
- Reads (`read_stream`, `read_all`, `read_events`, `subscribe`) are iterators. When the
  connection drops, they open the call again from just after the last item they yielded (a
  position, or a stream version), so the caller sees each event once, in order, none skipped.
- Projection queries answer dataclasses (`Answer[Channel]`, …), every page fetched;
  `Answer.to_dataframe()` gives a pandas DataFrame.
- Audit: tree heads, inclusion and consistency proofs are fetched and checked here (see
  `proofs`), never taken on the server's word; a bad one raises `VerificationError`.
- A refused call raises a `DiplogError` subclass with the status code and the fields the
  server names (`errors`).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar, Union
from urllib.parse import urlparse

import grpc
from google.protobuf import empty_pb2, json_format
from google.protobuf.timestamp_pb2 import Timestamp

from . import proofs
from .errors import NotFound, OutOfRange, VerificationError, from_rpc_error
from .models import (
    Answer,
    AppendResult,
    Channel,
    Checkpoint,
    Commitment,
    DiplomaticRecord,
    Divergence,
    NewEvent,
    ProjectionStatus,
    RecordedEvent,
    Relations,
    SearchHit,
    SignedTreeHead,
    Summit,
    TimelineEntry,
    from_proto,
)
from .v1 import (
    audit_pb2,
    audit_pb2_grpc,
    diplomacy_pb2,
    diplomacy_pb2_grpc,
    log_pb2,
    log_pb2_grpc,
    projections_pb2,
    projections_pb2_grpc,
)

__all__ = ["Client", "RetryPolicy", "ANY", "NO_STREAM", "STREAM_EXISTS", "Expected"]

T = TypeVar("T")

ANY = "any"
NO_STREAM = "no_stream"
STREAM_EXISTS = "exists"
Expected = Union[int, str, None]
"""An expected version: a version number (0: the stream must not exist), `ANY` (or None),
`NO_STREAM` or `STREAM_EXISTS`."""

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# A subscription is also ended with RESOURCE_EXHAUSTED when it stalls the server's queue; what
# it received is complete up to its last position, so it resumes from there.
RESUMABLE = RETRYABLE + (grpc.StatusCode.RESOURCE_EXHAUSTED,)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently calls are retried: up to `attempts` tries, waiting from
    `initial_backoff` doubling up to `max_backoff` seconds (with jitter) in between. A stream
    that made progress since its last failure starts counting again."""

    attempts: int = 5
    initial_backoff: float = 0.1
    max_backoff: float = 5.0

    def backoff(self, attempt: int) -> float:
        ceiling = min(self.max_backoff, self.initial_backoff * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)


def _expected(value: Expected) -> log_pb2.ExpectedVersion:
    expected = log_pb2.ExpectedVersion()
    if value is None or value == ANY:
        expected.any.SetInParent()
    elif value == NO_STREAM:
        expected.no_stream.SetInParent()
    elif value == STREAM_EXISTS:
        expected.stream_exists.SetInParent()
    elif isinstance(value, int) and not isinstance(value, bool):
        expected.exact = value
    else:
        raise ValueError(f"not an expected version: {value!r}")
    return expected


def _timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    stamp.FromDatetime(value.astimezone(timezone.utc))
    return stamp


def _read_options(
    min_position: int = 0, as_of: int | datetime | str | None = None, on: date | str | None = None
) -> projections_pb2.ReadOptions:
    read = projections_pb2.ReadOptions(min_position=min_position)
    if isinstance(as_of, int):
        read.as_of_position = as_of
    elif isinstance(as_of, datetime):
        read.as_of_time.CopyFrom(_timestamp(as_of))
    elif isinstance(as_of, str):
        read.as_of_time.CopyFrom(_timestamp(datetime.fromisoformat(as_of)))
    if on is not None:
        read.on_day = on.isoformat() if isinstance(on, date) else on
    return read


_RECORDS = {
    "both": projections_pb2.RECORDS_BOTH,
    "readouts": projections_pb2.RECORDS_READOUTS,
    "coded": projections_pb2.RECORDS_CODED,
}


def _pem(value: str | Path | bytes | None) -> bytes | None:
    """PEM bytes as given, or read from a path."""
    if value is None or isinstance(value, bytes):
        return value
    return Path(value).read_bytes()


def _public_key_bytes(key: bytes | str) -> bytes:
    """A pinned key: 32 raw bytes, 64 hex digits, or a PEM `PUBLIC KEY`."""
    if isinstance(key, bytes) and len(key) == 32:
        return key
    text = key.decode() if isinstance(key, bytes) else key
    if "BEGIN PUBLIC KEY" in text:
        from cryptography.hazmat.primitives import serialization

        public = serialization.load_pem_public_key(text.encode())
        return public.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    return bytes.fromhex(text.strip())


class Client:
    """A connection to a diplog server.

    >>> client = Client("http://127.0.0.1:50051")                      # doctest: +SKIP
    >>> client = Client("https://log.example.org", token="…", ca_cert="ca.pem")  # doctest: +SKIP

    `token` is sent as `authorization: Bearer <token>` on every call; `ca_cert` (a path or PEM
    bytes) is the CA that an `https://` server's certificate must chain to (default: the
    system's); `client_cert` and `client_key` (paths or PEM) are presented to a server that
    verifies clients (mutual TLS). `public_key` pins the key tree heads must be signed by (raw bytes, hex or PEM);
    without it, the key the server serves is used. `timeout` bounds each unary call (seconds).
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:50051",
        *,
        token: str | None = None,
        ca_cert: str | Path | bytes | None = None,
        client_cert: str | Path | bytes | None = None,
        client_key: str | Path | bytes | None = None,
        public_key: bytes | str | None = None,
        retry: RetryPolicy = RetryPolicy(),
        timeout: float | None = 30.0,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        parsed = urlparse(url if "://" in url else f"http://{url}")
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"not a server URL (http://host:port or https://…): {url!r}")
        secure = parsed.scheme == "https"
        target = f"{parsed.hostname}:{parsed.port or (443 if secure else 50051)}"
        if secure:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_pem(ca_cert),
                private_key=_pem(client_key),
                certificate_chain=_pem(client_cert),
            )
            self._channel = grpc.secure_channel(target, credentials, options=list(options))
        else:
            self._channel = grpc.insecure_channel(target, options=list(options))
        self.url = url
        self.retry = retry
        self.timeout = timeout
        self._metadata = [("authorization", f"Bearer {token}")] if token else []
        self._pinned_key = _public_key_bytes(public_key) if public_key is not None else None
        self._served_key: bytes | None = None
        self._log = log_pb2_grpc.EventLogStub(self._channel)
        self._diplomacy = diplomacy_pb2_grpc.DiplomacyStub(self._channel)
        self._projections = projections_pb2_grpc.ProjectionsStub(self._channel)
        self._audit = audit_pb2_grpc.AuditStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------------------
    # Calls

    def _unary(self, method: Callable[..., T], request: Any, retry: bool = True) -> T:
        """One unary call, retried on UNAVAILABLE and DEADLINE_EXCEEDED when `retry`; a refusal
        as a `DiplogError`."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return method(request, metadata=self._metadata, timeout=self.timeout)
            except grpc.RpcError as error:
                if not retry or error.code() not in RETRYABLE or attempt >= self.retry.attempts:
                    raise from_rpc_error(error) from None
                time.sleep(self.retry.backoff(attempt))

    def _resumable(
        self,
        open_call: Callable[[], Any],
        on_message: Callable[[Any], Iterable[T]],
        resumable: tuple[grpc.StatusCode, ...] = RETRYABLE,
        done: Callable[[], bool] = lambda: False,
        patience: float | None = None,
    ) -> Iterator[T]:
        """Runs a server-streaming call and, on a dropped connection, `open_call` again (which
        builds its request from what `on_message` has seen), until the call ends by itself.
        It gives up after `retry.attempts` failures in a row without a message, or, with
        `patience`, once the failures have lasted that many seconds."""
        attempt = 0
        failing_since: float | None = None
        while not done():
            call = open_call()
            try:
                for message in call:
                    attempt, failing_since = 0, None
                    yield from on_message(message)
                return
            except grpc.RpcError as error:
                attempt += 1
                now = time.monotonic()
                failing_since = failing_since or now
                if patience is None:
                    exhausted = attempt >= self.retry.attempts
                else:
                    exhausted = now - failing_since > patience
                if error.code() not in resumable or exhausted:
                    raise from_rpc_error(error) from None
                time.sleep(self.retry.backoff(min(attempt, 16)))
            finally:
                call.cancel()

    # ---------------------------------------------------------------------------------------
    # The log

    def head(self) -> int:
        """The last committed position (0 for an empty log)."""
        return self._unary(self._log.GetHead, empty_pb2.Empty()).position

    def append(
        self,
        stream: str,
        events: Sequence[NewEvent | Mapping[str, Any]],
        expected_version: Expected = ANY,
    ) -> AppendResult:
        """Appends `events` atomically to `stream`.

        Each event's id is fixed before the first attempt (a `NewEvent` makes one when it is
        created; a mapping may give `id`). On UNAVAILABLE or DEADLINE_EXCEEDED the append is
        sent again with the same ids: the server's idempotency answers a repeat of an append it
        already wrote with the original positions (`idempotent_replay`) and writes nothing,
        whatever the expected version, so the retry is safe.

        Raises `WrongExpectedVersion` (ABORTED) for a stale `expected_version`,
        `InvalidArgument` naming the field (`events[2].id`), `AlreadyExists` for an id reused
        with other content.
        """
        batch = [NewEvent.of(event) for event in events]
        request = log_pb2.AppendRequest(
            stream_id=stream,
            expected_version=_expected(expected_version),
            events=[
                log_pb2.NewEvent(
                    id=event.id,
                    type=event.type,
                    data=event.data_text(),
                    metadata=log_pb2.Metadata(
                        correlation_id=event.correlation_id,
                        causation_id=event.causation_id,
                        values=event.metadata,
                    ),
                )
                for event in batch
            ],
        )
        response = self._unary(self._log.Append, request)
        return AppendResult(
            response.stream_version,
            list(response.positions),
            response.idempotent_replay,
            [event.id for event in batch],
        )

    def read_stream(
        self,
        stream: str,
        *,
        from_version: int | None = None,
        backward: bool = False,
        limit: int = 0,
    ) -> Iterator[RecordedEvent]:
        """One stream's events in version order (newest first when `backward`). A dropped
        connection is resumed after the last version yielded. `NotFound` if the stream does
        not exist."""
        last: int | None = None
        yielded = 0

        def open_call() -> Any:
            request = log_pb2.ReadStreamRequest(
                stream_id=stream,
                direction=log_pb2.DIRECTION_BACKWARD if backward else log_pb2.DIRECTION_FORWARD,
                limit=limit - yielded if limit else 0,
            )
            start = from_version if last is None else (last - 1 if backward else last + 1)
            if start is not None:
                request.from_version = start
            return self._log.ReadStream(request, metadata=self._metadata)

        def on_message(message: Any) -> Iterator[RecordedEvent]:
            nonlocal last, yielded
            event = RecordedEvent.from_proto(message)
            last, yielded = event.stream_version, yielded + 1
            yield event

        def done() -> bool:
            return (limit > 0 and yielded >= limit) or (backward and last == 1)

        return self._resumable(open_call, on_message, done=done)

    def read_all(
        self,
        *,
        from_position: int | None = None,
        backward: bool = False,
        limit: int = 0,
        event_types: Sequence[str] = (),
        stream_prefix: str = "",
    ) -> Iterator[RecordedEvent]:
        """The global log in position order (newest first when `backward`), optionally only
        some event types and streams; a forward read ends at the head as of its start. A
        dropped connection is resumed after the last position yielded."""
        last: int | None = None
        yielded = 0

        def open_call() -> Any:
            request = log_pb2.ReadAllRequest(
                direction=log_pb2.DIRECTION_BACKWARD if backward else log_pb2.DIRECTION_FORWARD,
                limit=limit - yielded if limit else 0,
                event_types=event_types,
                stream_prefix=stream_prefix,
            )
            start = from_position if last is None else (last - 1 if backward else last + 1)
            if start is not None:
                request.from_position = start
            return self._log.ReadAll(request, metadata=self._metadata)

        def on_message(message: Any) -> Iterator[RecordedEvent]:
            nonlocal last, yielded
            event = RecordedEvent.from_proto(message)
            last, yielded = event.position, yielded + 1
            yield event

        def done() -> bool:
            return (limit > 0 and yielded >= limit) or (backward and last == 1)

        return self._resumable(open_call, on_message, done=done)

    def subscribe(
        self,
        *,
        after: int | None = None,
        now: bool = False,
        event_types: Sequence[str] = (),
        stream_prefix: str = "",
        actor: str = "",
        checkpoints: bool = False,
        checkpoint_interval_ms: int = 0,
        checkpoint_every: int = 0,
        reconnect_for: float = 60.0,
    ) -> Iterator[RecordedEvent | Checkpoint]:
        """Follows the log: the events after `after` (default: from the start; `now`: only
        those committed from now on), then each as it commits. It does not end by itself.

        When the connection drops (or the server restarts, or ends a stalled subscriber), it
        subscribes again after the last position it received, an event's or a checkpoint's,
        so each event is yielded exactly once and in order. Checkpoints are yielded too when
        `checkpoints` is set. With `now`, a drop before the first checkpoint subscribes `now`
        again (nothing was delivered yet). It gives up, raising `Unavailable`, only when
        reconnecting has failed for `reconnect_for` seconds (a server restart takes a few).
        """
        last = after

        def open_call() -> Any:
            request = log_pb2.SubscribeRequest(
                filter=log_pb2.SubscriptionFilter(
                    event_types=event_types, stream_prefix=stream_prefix, actor=actor
                ),
                checkpoint_interval_ms=checkpoint_interval_ms,
                checkpoint_every=checkpoint_every,
            )
            if last is not None:
                request.after_position = last
            elif now:
                request.now.SetInParent()
            else:
                request.start.SetInParent()
            return self._log.Subscribe(request, metadata=self._metadata)

        def on_message(message: Any) -> Iterator[RecordedEvent | Checkpoint]:
            nonlocal last
            if message.HasField("event"):
                event = RecordedEvent.from_proto(message.event)
                last = event.position
                yield event
            else:
                checkpoint = Checkpoint(message.checkpoint.position, message.checkpoint.caught_up)
                last = checkpoint.position
                if checkpoints:
                    yield checkpoint

        return self._resumable(open_call, on_message, resumable=RESUMABLE, patience=reconnect_for)

    # ---------------------------------------------------------------------------------------
    # Typed diplomatic events

    @staticmethod
    def _diplomatic_events(
        events: Sequence[diplomacy_pb2.DiplomaticEvent | Mapping[str, Any]],
    ) -> list[diplomacy_pb2.DiplomaticEvent]:
        """Copies of `events` (a mapping is the proto3 JSON form, as in scenarios), each with an
        id: the caller's, else a fresh UUID fixed now for every retry."""
        out = []
        for event in events:
            message = diplomacy_pb2.DiplomaticEvent()
            if isinstance(event, diplomacy_pb2.DiplomaticEvent):
                message.CopyFrom(event)
            else:
                json_format.ParseDict(dict(event), message)
            if not message.id:
                message.id = str(uuid4())
            out.append(message)
        return out

    def record(
        self,
        stream: str,
        events: Sequence[diplomacy_pb2.DiplomaticEvent | Mapping[str, Any]],
        expected_version: Expected = ANY,
    ) -> AppendResult:
        """Records typed diplomatic events atomically in `stream` (`Diplomacy.Record`), checked
        by the domain's rules. Events are `DiplomaticEvent` messages or their proto3 JSON form:

            client.record("occurrence-2025-03-01-call", [{
                "occurred": {"day": "2025-03-01"},
                "sources": [{"source": "rus.mfa", "quotes": [{"text": "…"}]}],
                "call_held": {"participants": [{"actor": "sergey-lavrov"},
                                               {"actor": "marco-rubio"}]},
            }])

        Ids are given here once, and UNAVAILABLE / DEADLINE_EXCEEDED are retried with the same
        ids: safe, because the server answers a repeated record with the original positions
        and writes nothing. Raises `InvalidArgument` or `FailedPrecondition` naming the field
        (`events[0].call_held.participants`).
        """
        batch = self._diplomatic_events(events)
        request = diplomacy_pb2.RecordRequest(
            stream_id=stream, expected_version=_expected(expected_version), events=batch
        )
        response = self._unary(self._diplomacy.Record, request)
        return AppendResult(
            response.stream_version,
            list(response.positions),
            response.idempotent_replay,
            [event.id for event in batch],
        )

    def record_many(
        self,
        records: Sequence[tuple[str, Sequence[Any]] | tuple[str, Sequence[Any], Expected]],
    ) -> list[AppendResult]:
        """Records in several streams in one transaction, all or nothing (`RecordMany`); each
        record is `(stream, events)` or `(stream, events, expected_version)`. Retried like
        `record`, with the same ids."""
        requests = []
        for record in records:
            stream, events = record[0], record[1]
            expected = record[2] if len(record) > 2 else ANY
            requests.append(
                diplomacy_pb2.RecordRequest(
                    stream_id=stream,
                    expected_version=_expected(expected),
                    events=self._diplomatic_events(events),
                )
            )
        response = self._unary(
            self._diplomacy.RecordMany, diplomacy_pb2.RecordManyRequest(records=requests)
        )
        return [
            AppendResult(
                answer.stream_version,
                list(answer.positions),
                answer.idempotent_replay,
                [event.id for event in request.events],
            )
            for answer, request in zip(response.appends, requests)
        ]

    def read_events(
        self,
        *,
        stream: str = "",
        stream_prefix: str = "",
        kinds: Sequence[str] = (),
        actor: str = "",
        after_position: int = 0,
        limit: int = 0,
    ) -> Iterator[DiplomaticRecord]:
        """Typed events in log order, filtered; resumed after the last position on a drop."""
        last = after_position
        yielded = 0

        def open_call() -> Any:
            request = diplomacy_pb2.ReadEventsRequest(
                stream_id=stream,
                stream_prefix=stream_prefix,
                kinds=kinds,
                actor=actor,
                after_position=last,
                limit=limit - yielded if limit else 0,
            )
            return self._diplomacy.ReadEvents(request, metadata=self._metadata)

        def on_message(message: Any) -> Iterator[DiplomaticRecord]:
            nonlocal last, yielded
            record = DiplomaticRecord.from_proto(message)
            last, yielded = record.position, yielded + 1
            yield record

        return self._resumable(
            open_call, on_message, done=lambda: limit > 0 and yielded >= limit
        )

    def get_event(self, event_id: str) -> DiplomaticRecord:
        message = self._unary(
            self._diplomacy.GetEvent, diplomacy_pb2.GetEventRequest(event_id=event_id)
        )
        return DiplomaticRecord.from_proto(message)

    # ---------------------------------------------------------------------------------------
    # Projections

    def _list(
        self,
        method: Callable[..., Any],
        request: Any,
        attribute: str,
        item: type[T],
    ) -> Answer[T]:
        items: list[T] = []
        while True:
            answer = self._unary(method, request)
            items += [from_proto(item, message) for message in getattr(answer, attribute)]
            if not answer.info.next_page_token:
                break
            request.page_token = answer.info.next_page_token
        info = answer.info
        reference = from_proto_time(info.reference_time) if info.HasField("reference_time") else None
        return Answer(items, info.position, reference, info.total or len(items))

    @staticmethod
    def _list_request(
        actor: str = "",
        states: tuple[str, str] | None = None,
        status: Sequence[str] = (),
        pending_only: bool = False,
        records: str = "both",
        min_position: int = 0,
        as_of: int | datetime | str | None = None,
        on: date | str | None = None,
    ) -> projections_pb2.ListRequest:
        request = projections_pb2.ListRequest(
            read=_read_options(min_position, as_of, on),
            actor=actor,
            status=status,
            pending_only=pending_only,
            page_size=1000,
            records=_RECORDS[records],
        )
        if states is not None:
            request.state_pair.a, request.state_pair.b = states
        return request

    def _get_request(
        self, key: str, min_position: int, as_of: Any, on: Any
    ) -> projections_pb2.GetRequest:
        return projections_pb2.GetRequest(read=_read_options(min_position, as_of, on), key=key)

    def channels(self, **filters: Any) -> Answer[Channel]:
        """Channels between actors. Filters (all optional, as in every list): `actor`,
        `states=("RUS", "USA")`, `status=["ACTIVE"]`, `min_position` (read your writes: wait
        until the projection reflects it), `as_of` (a position, or a datetime: what the log had
        recorded then), `on` (a date: the state of affairs on that day)."""
        return self._list(
            self._projections.ListChannels, self._list_request(**filters), "channels", Channel
        )

    def channel(self, key: str, *, min_position: int = 0, as_of: Any = None, on: Any = None) -> Channel:
        """One channel by its key (`party+party`) or `channel-…` stream; `NotFound` if none."""
        return self._one(
            self._projections.GetChannel, self._get_request(key, min_position, as_of, on), "channels", Channel, key
        )

    def summits(self, **filters: Any) -> Answer[Summit]:
        """Summits (`pending_only=True`: neither held nor cancelled); filters as `channels`."""
        return self._list(
            self._projections.ListSummits, self._list_request(**filters), "summits", Summit
        )

    def summit(self, key: str, *, min_position: int = 0, as_of: Any = None, on: Any = None) -> Summit:
        return self._one(
            self._projections.GetSummit, self._get_request(key, min_position, as_of, on), "summits", Summit, key
        )

    def commitments(self, **filters: Any) -> Answer[Commitment]:
        return self._list(
            self._projections.ListCommitments,
            self._list_request(**filters),
            "commitments",
            Commitment,
        )

    def commitment(self, key: str, *, min_position: int = 0, as_of: Any = None, on: Any = None) -> Commitment:
        return self._one(
            self._projections.GetCommitment,
            self._get_request(key, min_position, as_of, on),
            "commitments",
            Commitment,
            key,
        )

    def timeline(self, actor: str, **filters: Any) -> Answer[TimelineEntry]:
        """An actor's interactions in the order they happened (a state's: through its people
        and offices); `records` is "both", "readouts" or "coded"."""
        return self._list(
            self._projections.GetTimeline,
            self._list_request(actor=actor, **filters),
            "entries",
            TimelineEntry,
        )

    def relations(self, a: str | None = None, b: str | None = None, **filters: Any) -> Answer[Relations]:
        """The relations of the states `a` and `b`, or with neither every pair of states."""
        if (a is None) != (b is None):
            raise ValueError("relations takes two states or none")
        if a is not None and b is not None:
            return self._list(
                self._projections.GetRelations,
                self._list_request(states=(a, b), **filters),
                "relations",
                Relations,
            )
        return self._list(
            self._projections.ListRelations, self._list_request(**filters), "relations", Relations
        )

    def divergences(self, **filters: Any) -> Answer[Divergence]:
        return self._list(
            self._projections.ListDivergences,
            self._list_request(**filters),
            "divergences",
            Divergence,
        )

    def divergence(self, key: str, *, min_position: int = 0, as_of: Any = None, on: Any = None) -> Divergence:
        """One occurrence's sources side by side, by its event id or stream."""
        return self._one(
            self._projections.GetDivergence,
            self._get_request(key, min_position, as_of, on),
            "divergences",
            Divergence,
            key,
        )

    def projection_status(self) -> list[ProjectionStatus]:
        answer = self._unary(self._projections.GetStatus, empty_pb2.Empty())
        return [from_proto(ProjectionStatus, p) for p in answer.projections]

    def search(
        self,
        query: str,
        *,
        kinds: Sequence[str] = (),
        actor: str = "",
        occurred_from: datetime | None = None,
        occurred_to: datetime | None = None,
        records: str = "both",
        min_position: int = 0,
        limit: int = 100,
    ) -> Answer[SearchHit]:
        """Full-text search, best hits first (web search syntax: words, "a phrase", `or`,
        `-word`); at most `limit` hits."""
        request = projections_pb2.SearchRequest(
            query=query,
            kinds=kinds,
            actor=actor,
            read=_read_options(min_position),
            page_size=min(limit, 1000),
            records=_RECORDS[records],
        )
        if occurred_from is not None:
            request.occurred_from.CopyFrom(_timestamp(occurred_from))
        if occurred_to is not None:
            request.occurred_to.CopyFrom(_timestamp(occurred_to))
        answer = self._unary(self._projections.Search, request)
        hits = [from_proto(SearchHit, hit) for hit in answer.hits][:limit]
        info = answer.info
        reference = from_proto_time(info.reference_time) if info.HasField("reference_time") else None
        return Answer(hits, info.position, reference, info.total)

    def _one(self, method: Callable[..., Any], request: Any, attribute: str, item: type[T], key: str) -> T:
        answer = self._unary(method, request)
        found = getattr(answer, attribute)
        if not found:
            raise NotFound(grpc.StatusCode.NOT_FOUND, f"{attribute}: nothing under {key!r}")
        return from_proto(item, found[0])

    # ---------------------------------------------------------------------------------------
    # Audit

    def public_key(self) -> bytes:
        """The 32-byte Ed25519 key tree heads must be signed by: the pinned one, else the one
        the server serves (fetched once: trust on first use)."""
        if self._pinned_key is not None:
            return self._pinned_key
        if self._served_key is None:
            answer = self._unary(self._audit.GetPublicKey, empty_pb2.Empty())
            self._served_key = bytes(answer.ed25519)
        return self._served_key

    def _head(self, message: Any) -> SignedTreeHead:
        head = SignedTreeHead(
            message.tree_size,
            bytes(message.root_hash),
            message.timestamp_ms,
            bytes(message.signature),
            message.checkpoint,
        )
        proofs.verify_tree_head(head, self.public_key())
        return head

    def tree_head(self, size: int = 0) -> SignedTreeHead:
        """The signed tree head of `size` (0: the current one), its signature checked."""
        message = self._unary(self._audit.GetTreeHead, audit_pb2.GetTreeHeadRequest(tree_size=size))
        return self._head(message)

    def _event_at(self, position: int) -> RecordedEvent:
        for event in self.read_all(from_position=position, limit=1):
            if event.position == position:
                return event
        raise NotFound(grpc.StatusCode.NOT_FOUND, f"no event at position {position}")

    def verify_event(
        self,
        event: RecordedEvent | int | str,
        *,
        tree_size: int = 0,
        wait: float = 5.0,
    ) -> SignedTreeHead:
        """Proves that `event` (a `RecordedEvent`, a position or an event id) is in the log, with
        the leaf computed here from the event as read: fetches the inclusion proof for the tree
        of `tree_size` (0: the current head), checks the head's signature and the proof's path
        to its root, and answers the head. The tree trails the appends by moments, so an event
        not in it yet is waited for (up to `wait` seconds). Raises `VerificationError`."""
        if isinstance(event, str):
            request = audit_pb2.InclusionProofRequest(event_id=event, tree_size=tree_size)
        else:
            position = event if isinstance(event, int) else event.position
            request = audit_pb2.InclusionProofRequest(position=position, tree_size=tree_size)
        deadline = time.monotonic() + wait
        while True:
            try:
                proof = self._unary(self._audit.GetInclusionProof, request)
                break
            except OutOfRange:
                if tree_size or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        recorded = event if isinstance(event, RecordedEvent) else self._event_at(proof.position)
        if recorded.position != proof.position:
            raise VerificationError(
                f"the proof is for position {proof.position}, not {recorded.position}"
            )
        leaf = proofs.leaf_hash(proofs.canonical_bytes(recorded))
        if leaf != bytes(proof.leaf_hash):
            raise VerificationError(
                f"the event at position {recorded.position} does not hash to the server's leaf"
            )
        head = self._head(proof.tree_head)
        proofs.verify_inclusion(
            leaf, recorded.position - 1, head.tree_size, list(proof.audit_path), head.root_hash
        )
        return head

    def verify_consistency(self, old: SignedTreeHead | int, new_size: int = 0) -> SignedTreeHead:
        """Proves that the log of `new_size` (0: the current head) extends `old`: a head saved
        earlier (whose root must then be the one proved, else the log was rewritten) or a size.
        Checks both heads' signatures and the RFC 9162 proof; answers the new head. Raises
        `VerificationError`."""
        old_size = old if isinstance(old, int) else old.tree_size
        answer = self._unary(
            self._audit.GetConsistencyProof,
            audit_pb2.ConsistencyProofRequest(old_size=old_size, new_size=new_size),
        )
        old_head = self._head(answer.old_head)
        new_head = self._head(answer.new_head)
        if isinstance(old, SignedTreeHead) and old.root_hash != old_head.root_hash:
            raise VerificationError(
                f"the log's tree of size {old_size} is not the one saved: it was rewritten"
            )
        if old_head.tree_size != old_size:
            raise VerificationError(f"asked for size {old_size}, given {old_head.tree_size}")
        proofs.verify_consistency(
            old_head.tree_size,
            new_head.tree_size,
            old_head.root_hash,
            new_head.root_hash,
            list(answer.proof),
        )
        return new_head


def from_proto_time(value: Timestamp) -> datetime:
    return value.ToDatetime(tzinfo=timezone.utc)


def uuid4() -> str:
    import uuid

    return str(uuid.uuid4())

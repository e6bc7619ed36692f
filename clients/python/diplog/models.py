"""The typed values the client answers: plain dataclasses built from the protobuf messages.

Projection items (`Channel`, `Summit`, `TimelineEntry`, …) mirror projections.proto field for
field; `from_proto` fills any of them by its type hints. Lists come as an `Answer`, which says
the log position they reflect and turns into a pandas DataFrame (`to_dataframe`, with the
`pandas` extra installed).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Generic, Iterator, Mapping, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

T = TypeVar("T")


def _timestamp(value: Timestamp) -> datetime:
    return datetime.fromtimestamp(value.seconds, tz=timezone.utc).replace(
        microsecond=value.nanos // 1000
    )


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    """`X | None` -> (X, True); anything else -> (hint, False)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


def from_proto(cls: type[T], message: Any) -> T:
    """A dataclass of this module from the message of the same shape: fields by name, nested
    messages as dataclasses (None when unset and the hint allows it), repeated fields as lists,
    maps as dicts, timestamps as aware UTC datetimes."""
    if "from_proto" in cls.__dict__:
        return cls.from_proto(message)  # type: ignore[attr-defined]
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        hint: Any
        hint, optional = _unwrap_optional(hints[f.name])
        value = getattr(message, f.name)
        origin = typing.get_origin(hint)
        if origin is list:
            item: Any = typing.get_args(hint)[0]
            values[f.name] = [
                from_proto(typing.cast(Any, item), v) if dataclasses.is_dataclass(item) else v
                for v in value
            ]
        elif origin is dict:
            values[f.name] = dict(value)
        elif hint is datetime:
            values[f.name] = _timestamp(value) if message.HasField(f.name) else None
        elif dataclasses.is_dataclass(hint):
            present = message.HasField(f.name)
            nested = typing.cast(Any, hint)
            values[f.name] = from_proto(nested, value) if present or not optional else None
        elif optional:
            values[f.name] = value if message.HasField(f.name) else None
        else:
            values[f.name] = value
    return cls(**values)


# -------------------------------------------------------------------------------------------
# The log


@dataclass
class NewEvent:
    """An event to append. Its `id` is generated here, once, so every retry of the append
    sends the same id and the server's idempotency makes the retry safe."""

    type: str
    data: Any = field(default_factory=dict)
    """Any JSON value (sent as its JSON text), or a `str` that is JSON text already (sent byte
    for byte)."""
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    metadata: dict[str, str] = field(default_factory=dict)
    correlation_id: str = ""
    causation_id: str = ""

    @classmethod
    def of(cls, value: "NewEvent | Mapping[str, Any]") -> "NewEvent":
        if isinstance(value, NewEvent):
            return value
        return cls(**dict(value))

    def data_text(self) -> str:
        return self.data if isinstance(self.data, str) else json.dumps(self.data, ensure_ascii=False)


@dataclass(frozen=True)
class RecordedEvent:
    position: int
    stream_id: str
    stream_version: int
    id: str
    type: str
    data: str
    """The payload exactly as appended (JSON text); `json()` parses it."""
    metadata: dict[str, str]
    correlation_id: str
    causation_id: str
    recorded_at: datetime
    recorded_at_micros: int
    """`recorded_at` in microseconds since the epoch, exactly as the log holds it."""
    appended_by: str

    def json(self) -> Any:
        return json.loads(self.data)

    @classmethod
    def from_proto(cls, message: Any) -> "RecordedEvent":
        ts = message.recorded_at
        return cls(
            position=message.position,
            stream_id=message.stream_id,
            stream_version=message.stream_version,
            id=message.id,
            type=message.type,
            data=message.data,
            metadata=dict(message.metadata.values),
            correlation_id=message.metadata.correlation_id,
            causation_id=message.metadata.causation_id,
            recorded_at=_timestamp(ts),
            recorded_at_micros=ts.seconds * 1_000_000 + ts.nanos // 1000,
            appended_by=message.appended_by,
        )


@dataclass(frozen=True)
class AppendResult:
    stream_version: int
    positions: list[int]
    idempotent_replay: bool
    """True when the events were already written by an earlier, identical call (such as a
    retried call whose first answer was lost): nothing was written again."""
    event_ids: list[str]

    @property
    def last_position(self) -> int:
        return self.positions[-1]


@dataclass(frozen=True)
class Checkpoint:
    """Every selected event up to `position` was delivered (`caught_up`: the catch-up ended)."""

    position: int
    caught_up: bool


@dataclass(frozen=True)
class DiplomaticRecord:
    """A typed event as the log recorded it; `event` is the `DiplomaticEvent` message."""

    position: int
    stream_id: str
    stream_version: int
    recorded_at: datetime
    appended_by: str
    event: Any
    kind: str

    @classmethod
    def from_proto(cls, message: Any) -> "DiplomaticRecord":
        return cls(
            position=message.position,
            stream_id=message.stream_id,
            stream_version=message.stream_version,
            recorded_at=_timestamp(message.recorded_at),
            appended_by=message.appended_by,
            event=message.event,
            kind=message.event.WhichOneof("kind") or "",
        )


# -------------------------------------------------------------------------------------------
# Audit


@dataclass(frozen=True)
class SignedTreeHead:
    tree_size: int
    root_hash: bytes
    timestamp_ms: int
    signature: bytes
    checkpoint: str
    """The same head as a C2SP checkpoint (signed note)."""


# -------------------------------------------------------------------------------------------
# Projections


@dataclass(frozen=True)
class FuzzyTime:
    """When something happened, at the precision the source gives: an instant, a day
    (`YYYY-MM-DD`) or a month (`YYYY-MM`), with its IANA time zone when known."""

    instant: datetime | None = None
    day: str = ""
    month: str = ""
    time_zone: str = ""

    def __str__(self) -> str:
        text = self.instant.isoformat() if self.instant else (self.day or self.month)
        return f"{text} ({self.time_zone})" if self.time_zone and text else text


@dataclass(frozen=True)
class Place:
    name: str
    country: str

    def __str__(self) -> str:
        return f"{self.name} ({self.country})" if self.country else self.name


@dataclass(frozen=True)
class Party:
    id: str
    name: str
    state: str
    holder: str
    holder_name: str


@dataclass(frozen=True)
class Channel:
    key: str
    parties: list[Party]
    status: str
    established_on: FuzzyTime | None
    established_by: str
    last_contact_on: FuzzyTime | None
    last_contact_by: str
    contacts: int
    evidence: list[str]
    stream_id: str


@dataclass(frozen=True)
class Summit:
    key: str
    parties: list[Party]
    stage: str
    pending: bool
    since: FuzzyTime | None
    latest_step: str
    latest_step_by: str
    latest_step_on: FuzzyTime | None
    scheduled_for: FuzzyTime | None
    place: Place | None
    evidence: list[str]
    proposed_place: Place | None
    expected: FuzzyTime | None
    expected_text: str


@dataclass(frozen=True)
class Commitment:
    key: str
    parties: list[Party]
    what: str
    status: str
    stated_on: FuzzyTime | None
    stated_by: str
    due: FuzzyTime | None
    due_text: str
    age_days: int
    scheduled_for: FuzzyTime | None
    place: Place | None
    fulfilled_by: str
    evidence: list[str]


@dataclass(frozen=True)
class EventOrigin:
    event_id: str
    position: int
    stream_id: str
    recorded_at: datetime | None


@dataclass(frozen=True)
class TimelineParticipant:
    actor: str
    name: str
    acting_as: str
    acting_as_name: str
    state: str
    role: str


@dataclass(frozen=True)
class CodedRecord:
    plover_type: str
    mode: str
    quad_class: str
    location: str
    event_text: str
    publication: str
    publication_name: str
    external_id: str


@dataclass(frozen=True)
class TimelineEntry:
    origin: EventOrigin | None
    kind: str
    occurred: FuzzyTime | None
    level: str
    participants: list[TimelineParticipant]
    place: Place | None
    topics: list[str]
    format: str
    track: str
    round: int
    level_derived: bool
    coded: CodedRecord | None


@dataclass(frozen=True)
class PairContact:
    event_id: str
    kind: str
    level: str
    occurred: FuzzyTime | None
    level_derived: bool
    format: str
    place: Place | None
    plover_type: str
    quad_class: str
    coded: bool


@dataclass(frozen=True)
class Relations:
    states: list[str]
    state_names: list[str]
    contacts: int
    contacts_by_level: dict[str, int]
    last_contact: PairContact | None
    open_channels: list[Channel]
    pending_summits: list[Summit]
    pending_commitments: list[Commitment]
    contacts_by_plover_type: dict[str, int]
    contacts_by_quad_class: dict[str, int]
    coded_contacts: int


@dataclass(frozen=True)
class Quote:
    text: str
    language: str
    translation: str


@dataclass(frozen=True)
class SourceWording:
    source: str
    source_name: str
    text: str


@dataclass(frozen=True)
class ClaimSources:
    key: str
    kind: str
    sources: list[SourceWording]


@dataclass(frozen=True)
class SourceReport:
    source: str
    source_name: str
    reported_by: str
    language: str
    published_at: datetime | None
    url: str
    quotes: list[Quote]


@dataclass(frozen=True)
class Divergence:
    occurrence: str
    stream_id: str
    kind: str
    occurred: FuzzyTime | None
    reports: list[SourceReport]
    shared: list[ClaimSources]
    single_source: list[ClaimSources]


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    version: int
    generation: int
    position: int
    head: int
    lag: int
    rebuilding_at: int | None
    rebuild_requested: bool
    holder: str
    updated_at: datetime | None


@dataclass(frozen=True)
class TextRange:
    start: int
    end: int


@dataclass(frozen=True)
class SearchHit:
    event_id: str
    kind: str
    occurred: FuzzyTime | None
    field: str
    config: str
    language: str
    rank: float
    text: str
    matches: list[TextRange]
    highlighted: str
    occurrence_id: str
    position: int
    stream_id: str


# -------------------------------------------------------------------------------------------
# Answers and DataFrames


def _label(value: Any) -> str:
    for attribute in ("name", "source_name", "actor", "key", "text", "id", "event_id"):
        text = getattr(value, attribute, "")
        if text:
            return str(text)
    return str(value)


def flatten(item: Any, prefix: str = "") -> dict[str, Any]:
    """One row for a DataFrame: nested dataclasses as `outer_inner` columns, times and places
    as their text, lists of parties or participants as their names joined by " – ", other
    lists joined by ", ", maps as they are."""
    row: dict[str, Any] = {}
    for f in dataclasses.fields(item):
        name = prefix + f.name
        value = getattr(item, f.name)
        if isinstance(value, (FuzzyTime, Place)):
            row[name] = str(value)
        elif dataclasses.is_dataclass(value):
            row.update(flatten(value, name + "_"))
        elif value is None:
            row[name] = None
        elif isinstance(value, list):
            if value and dataclasses.is_dataclass(value[0]):
                separator = " – " if isinstance(value[0], (Party, TimelineParticipant)) else "; "
                row[name] = separator.join(_label(v) for v in value)
            else:
                row[name] = ", ".join(str(v) for v in value)
        else:
            row[name] = value
    return row


@dataclass(frozen=True)
class Answer(Generic[T]):
    """A projection's answer: every item (all pages fetched), the log position it reflects and
    the time its time-derived statuses are judged at."""

    items: list[T]
    position: int
    reference_time: datetime | None
    total: int

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> T:
        return self.items[index]

    def rows(self) -> list[dict[str, Any]]:
        return [flatten(item) for item in self.items]

    def to_dataframe(self) -> Any:
        """The items as a pandas DataFrame, one row each (see `flatten`); needs the `pandas`
        extra (`pip install 'diplog[pandas]'`)."""
        try:
            import pandas
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ImportError(
                "to_dataframe needs pandas: pip install 'diplog[pandas]'"
            ) from error
        frame = pandas.DataFrame(self.rows())
        frame.attrs["position"] = self.position
        return frame

"""diplog: a typed Python client for diplog, the event-sourced diplomacy log.

    from diplog import Client
    client = Client("http://127.0.0.1:50051")
    client.timeline("sergey-lavrov").to_dataframe()

The generated protobuf modules are `diplog.v1.*_pb2` (built from the repository's proto/);
`diplog.pb` is the one most callers need, with `DiplomaticEvent` and its kinds.
"""

from .client import ANY, NO_STREAM, STREAM_EXISTS, Client, RetryPolicy
from .errors import (
    AlreadyExists,
    DeadlineExceeded,
    DiplogError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    VerificationError,
    Violation,
    WrongExpectedVersion,
)
from .models import (
    Answer,
    AppendResult,
    Channel,
    Checkpoint,
    Commitment,
    DiplomaticRecord,
    Divergence,
    FuzzyTime,
    NewEvent,
    Party,
    Place,
    ProjectionStatus,
    RecordedEvent,
    Relations,
    SearchHit,
    SignedTreeHead,
    Summit,
    TimelineEntry,
)
from .v1 import diplomacy_pb2 as pb

__all__ = [
    "ANY",
    "NO_STREAM",
    "STREAM_EXISTS",
    "Client",
    "RetryPolicy",
    "pb",
    "AlreadyExists",
    "DeadlineExceeded",
    "DiplogError",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "Unauthenticated",
    "Unavailable",
    "VerificationError",
    "Violation",
    "WrongExpectedVersion",
    "Answer",
    "AppendResult",
    "Channel",
    "Checkpoint",
    "Commitment",
    "DiplomaticRecord",
    "Divergence",
    "FuzzyTime",
    "NewEvent",
    "Party",
    "Place",
    "ProjectionStatus",
    "RecordedEvent",
    "Relations",
    "SearchHit",
    "SignedTreeHead",
    "Summit",
    "TimelineEntry",
]

"""Exceptions of the typed layer: every refused call becomes a `DiplogError` carrying the gRPC
status code, the server's message and the fields it names.

The server attaches `google.rpc` details to its errors (src/grpc/status.rs): `BadRequest`
(INVALID_ARGUMENT: each field at fault), `PreconditionFailure` (FAILED_PRECONDITION: the rule
broken as `type`, the field as `subject`) and `ErrorInfo` (a `reason` such as
`WRONG_EXPECTED_VERSION`, with metadata). They are read from the `grpc-status-details-bin`
trailer and exposed as `violations`, `field`, `reason` and `metadata`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import grpc
from google.rpc import error_details_pb2, status_pb2

__all__ = [
    "Violation",
    "DiplogError",
    "InvalidArgument",
    "FailedPrecondition",
    "WrongExpectedVersion",
    "AlreadyExists",
    "NotFound",
    "OutOfRange",
    "Unavailable",
    "DeadlineExceeded",
    "Unauthenticated",
    "PermissionDenied",
    "VerificationError",
]


@dataclass(frozen=True)
class Violation:
    """One problem the server names: the field at fault (`events[0].call_held.participants`),
    why, and for a precondition the rule broken (`UNKNOWN_ACTOR`)."""

    field: str
    description: str
    type: str = ""


class DiplogError(Exception):
    """A call the server refused (or could not be reached for)."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        violations: tuple[Violation, ...] = (),
        reason: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.violations = violations
        self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})
        super().__init__(str(self))

    @property
    def field(self) -> str | None:
        """The first field the server names, if any."""
        return self.violations[0].field if self.violations else None

    @property
    def fields(self) -> list[str]:
        return [v.field for v in self.violations]

    def __str__(self) -> str:
        text = f"{self.code.name}: {self.message}"
        for violation in self.violations:
            text += f"\n  field {violation.field}: {violation.description}"
        if self.reason:
            text += f"\n  reason {self.reason}"
        return text


class InvalidArgument(DiplogError):
    """INVALID_ARGUMENT: input wrong in itself; nothing was written."""


class FailedPrecondition(DiplogError):
    """FAILED_PRECONDITION: input that contradicts the log (an unknown actor, …)."""


class WrongExpectedVersion(DiplogError):
    """ABORTED: the stream's version was not the one expected; read it again and redo."""

    @property
    def current_version(self) -> int | None:
        value = self.metadata.get("current_version")
        return int(value) if value is not None else None


class AlreadyExists(DiplogError):
    """ALREADY_EXISTS: an event id reused with other content, or a partial retry."""


class NotFound(DiplogError):
    pass


class OutOfRange(DiplogError):
    pass


class Unavailable(DiplogError):
    """UNAVAILABLE: the server or its database is out of reach (after the retries)."""


class DeadlineExceeded(DiplogError):
    pass


class Unauthenticated(DiplogError):
    pass


class PermissionDenied(DiplogError):
    pass


_BY_CODE: dict[grpc.StatusCode, type[DiplogError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ABORTED: WrongExpectedVersion,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRange,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
}


class VerificationError(Exception):
    """A proof or a signature that does not check out: the server's answer cannot be trusted."""


def from_rpc_error(error: grpc.RpcError) -> DiplogError:
    """The typed exception for a failed call, with the details the server attached."""
    code: grpc.StatusCode = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message: str = error.details() if hasattr(error, "details") else str(error)
    violations: list[Violation] = []
    reason = ""
    metadata: dict[str, str] = {}
    trailers = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for key, value in trailers or ():
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations += [Violation(v.field, v.description) for v in bad.field_violations]
            elif detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
                failure = error_details_pb2.PreconditionFailure()
                detail.Unpack(failure)
                violations += [
                    Violation(v.subject, v.description, v.type) for v in failure.violations
                ]
            elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
                metadata.update(info.metadata)
    kind = _BY_CODE.get(code, DiplogError)
    return kind(code, message or "", tuple(violations), reason, metadata)

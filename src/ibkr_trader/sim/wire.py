"""The TWS API socket protocol's basics, server side: framing, the handshake, versions.

Bytes in -> client events out (:class:`ServerProtocol`); fields -> bytes (:func:`frame`).
The server versions spoken (``MIN_SERVER_VERSION``..``SERVER_VERSION``) and the one table of
the fields whose presence depends on the negotiated version (``VERSIONED_FIELDS``) live here
because both directions read it: :mod:`.requests` (placeOrder) and :mod:`.responses`.
Nothing here touches a socket or a clock.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

SERVER_VERSION: Final = 178
MIN_SERVER_VERSION: Final = 176  # the oldest version whose layouts this codec writes and reads
MIN_CLIENT_VERSION: Final = MIN_SERVER_VERSION  # kept for callers of the old name
MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
API_PREFIX: Final = b"API\0"
UNSET_DOUBLE_TEXT: Final = "1.7976931348623157E308"
UNSET_INTEGER: Final = 2**31 - 1
NY: Final = ZoneInfo("America/New_York")

Field = str | int | float | bool | None


# --------------------------------------------------------------------------- versions


@dataclass(frozen=True)
class VersionedField:
    """A field that exists only from ``since`` and/or only below ``until`` (server versions)."""

    message: str
    name: str
    since: int | None = None
    until: int | None = None
    where: str = ""

    def present(self, version: int) -> bool:
        return (self.since is None or version >= self.since) and (
            self.until is None or version < self.until
        )


# Every field whose presence depends on the negotiated server version, in one place, for
# every version the codec speaks (MIN_SERVER_VERSION..SERVER_VERSION). Checked against the
# encoders and decoders of ib_async 2.1.0, ib_insync 0.9.86 and ibapi 10.50.2 in the tests.
# Thresholds at or below MIN_SERVER_VERSION are constant over the supported range and are
# written unconditionally: 156 tickAttrib in tickOptionComputation (no version field), 164
# SIZE_RULES in contractData (no version field; minSize...), 166 advancedOrderRejectJson in
# errors and advancedErrorOverride in placeOrder, 169 manualOrderTime / manualCancelOrderTime,
# 170 PEG BEST/MID fields, 176 issuerId in reqContractDetails.
VERSIONED_FIELDS: Final[dict[str, VersionedField]] = {
    f.message + "." + f.name: f
    for f in (
        # FA_PROFILE_DESUPPORT (177): faProfile is gone from the order messages
        VersionedField("placeOrder", "faProfile", until=177, where="after faPercentage"),
        VersionedField("openOrder", "faProfile", until=177, where="after faPercentage"),
        VersionedField("completedOrder", "faProfile", until=177, where="after faPercentage"),
        # PENDING_PRICE_REVISION (178)
        VersionedField("execDetails", "pendingPriceRevision", since=178, where="last"),
    )
}


def has_field(key: str, version: int) -> bool:
    """Does ``message.field`` exist at this server version? (KeyError for unknown keys)"""
    return VERSIONED_FIELDS[key].present(version)


class FramingError(Exception):
    """The peer sent bytes that are not the TWS API protocol."""


# --------------------------------------------------------------------------- framing


def fmt(value: Field) -> str:
    """One field as IB writes it: ints plain, floats without exponent or trailing zeros."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if math.isinf(value) or abs(value) >= 1e300:
            return UNSET_DOUBLE_TEXT
        text = f"{value:.8f}".rstrip("0").rstrip(".")
        return "0" if text in ("", "-0") else text
    return value


def frame(fields: Sequence[Field]) -> bytes:
    """A message as it travels: 4-byte big-endian length, then NUL-terminated fields."""
    payload = "".join(fmt(f) + "\0" for f in fields).encode()
    return struct.pack(">I", len(payload)) + payload


def split_frames(buffer: bytearray) -> list[list[str]]:
    """Remove every complete length-prefixed message from ``buffer`` and return its fields."""
    out: list[list[str]] = []
    while len(buffer) >= 4:
        (size,) = struct.unpack(">I", buffer[:4])
        if size > MAX_MESSAGE_BYTES:
            raise FramingError(f"message of {size} bytes")
        if len(buffer) < 4 + size:
            break
        payload = bytes(buffer[4 : 4 + size])
        del buffer[: 4 + size]
        fields = payload.decode(errors="backslashreplace").split("\0")
        if fields and fields[-1] == "":
            fields.pop()
        out.append(fields)
    return out


@dataclass(frozen=True)
class Handshake:
    """The client's opening: ``API\\0`` and its supported version range."""

    min_version: int
    max_version: int
    options: str = ""


@dataclass(frozen=True)
class Message:
    """One decoded client message (its raw fields)."""

    fields: tuple[str, ...]

    @property
    def msg_id(self) -> int:
        try:
            return int(self.fields[0])
        except (IndexError, ValueError):
            return -1


ClientEvent = Handshake | Message


class ServerProtocol:
    """Server side of one connection: feed bytes, get the handshake then messages."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._prefix_seen = False
        self._handshake_done = False

    @property
    def handshake_done(self) -> bool:
        return self._handshake_done

    def receive_data(self, data: bytes) -> list[ClientEvent]:
        self._buffer += data
        events: list[ClientEvent] = []
        if not self._prefix_seen:
            if len(self._buffer) < len(API_PREFIX):
                if not API_PREFIX.startswith(bytes(self._buffer)):
                    raise FramingError("not an API client")
                return events
            if bytes(self._buffer[: len(API_PREFIX)]) != API_PREFIX:
                raise FramingError("not an API client")
            del self._buffer[: len(API_PREFIX)]
            self._prefix_seen = True
        for fields in split_frames(self._buffer):
            if not self._handshake_done:
                events.append(parse_version_range("\0".join(fields)))
                self._handshake_done = True
            else:
                events.append(Message(tuple(fields)))
        return events

    @staticmethod
    def handshake_reply(now: datetime, server_version: int = SERVER_VERSION) -> bytes:
        return frame([server_version, connection_time(now)])

    @staticmethod
    def send(fields: Sequence[Field]) -> bytes:
        return frame(fields)


def parse_version_range(text: str) -> Handshake:
    """``v157..178`` (optionally followed by a space and connect options)."""
    head, _, options = text.partition(" ")
    if not head.startswith("v"):
        raise FramingError(f"bad version range {text!r}")
    low, sep, high = head[1:].partition("..")
    try:
        lo = int(low)
        hi = int(high) if sep else lo
    except ValueError as exc:
        raise FramingError(f"bad version range {text!r}") from exc
    return Handshake(lo, hi, options)


def negotiate_version(handshake: Handshake) -> int | None:
    """The version to announce, or None when the client cannot speak any of ours."""
    version = min(handshake.max_version, SERVER_VERSION)
    if version < max(handshake.min_version, MIN_SERVER_VERSION):
        return None
    return version


UNSUPPORTED_VERSION: Final = (
    506,
    f"Unsupported version: the client's maximum API version is below {MIN_SERVER_VERSION}",
)


def unsupported_version_reply() -> bytes:
    """What goes back to a client too old for us before the socket is closed: an error with
    reqId -1 (IB's "Unsupported version", 506) instead of the two-field handshake reply."""
    code, text = UNSUPPORTED_VERSION
    return frame([4, 2, -1, code, text, ""])  # an error message (see responses.enc_error)


def connection_time(now: datetime) -> str:
    """``yyyyMMdd HH:mm:ss <zone name>`` in New York time, as TWS writes it."""
    local = now.astimezone(NY)
    return f"{local:%Y%m%d %H:%M:%S} {local:%Z}"

"""structlog configuration, with account ids redacted from every event.

structlog is imported at the first log call or configuration, not when a module asks for a
logger: every module holds one, and a command such as ``halt`` or ``journal`` that never logs
must not pay for structlog (and the rich tracebacks it loads) at start-up. A command that may
log configures with ``on_first_use=True``: structlog is configured (and imported) right before
the first event, or never if nothing is logged.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

from ibkr_trader.redaction import redact

__all__ = [
    "RedactingFilter",
    "configure_logging",
    "drop_pending_configuration",
    "get_logger",
    "install_record_redaction",
    "install_redaction",
    "redact",
]


def _redact_processor(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if isinstance(value, str):
            event_dict[key] = redact(value)
    return event_dict


class RedactingFilter(logging.Filter):
    """A stdlib logging filter that masks account ids in every record (ib_async logs them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave the record as it is
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


def _redact_rendered(_logger: Any, _name: str, rendered: Any) -> Any:
    return redact(rendered) if isinstance(rendered, str) else rendered


_factory_installed = False


def install_record_redaction() -> None:
    """Redact every stdlib record at creation (so every handler, on any logger, sees only
    the masked text): ib_async logs whole Trade and Position reprs with the account in them."""
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _REDACTOR.filter(record)
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True


_REDACTOR = RedactingFilter()


def install_redaction(logger: logging.Logger | None = None) -> None:
    """Mask account ids in stdlib logging: at record creation for every logger, and on the
    handlers of ``logger`` (the root logger by default)."""
    install_record_redaction()
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


class _StderrLogger:
    """Prints to the stream stderr was when logging was configured, or to the current
    ``sys.stderr`` once that stream is closed (never to a dead stream)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def msg(self, message: str) -> None:
        stream = self._stream
        if stream is None or getattr(stream, "closed", False):
            stream = sys.stderr
        print(message, file=stream, flush=True)

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


class _StderrLoggerFactory:
    def __init__(self) -> None:
        self._stream = sys.stderr

    def __call__(self, *_args: Any) -> _StderrLogger:
        return _StderrLogger(self._stream)


# the structlog configuration asked for with on_first_use=True, not applied yet
_pending: list[Callable[[], None]] = []
# configure_logging(plain=True): events rendered here, structlog never imported
_plain: list[_PlainLogger] = []

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "critical": 50}
_LEVEL_NAMES = {"warn": "warning", "fatal": "critical"}  # exception: structlog's traceback
_EVENT_WIDTH = 30  # structlog's ConsoleRenderer pads the event to this
_LEVEL_WIDTH = 9  # and the level


def _plain_value(value: Any) -> str:
    """A value as structlog's ConsoleRenderer shows it (``repr_native_str=False``)."""
    if isinstance(value, str):
        if set(value) & {" ", "\t", "=", "\r", "\n", '"', "'"}:
            return repr(value)
        return value
    return repr(value)


class _PlainLogger:
    """Renders an event as ``structlog.dev.ConsoleRenderer(colors=False)`` does (timestamp,
    padded level and event, sorted ``key=value``), masked, without importing structlog: a
    short command (``halt``, ``resume``) that logs one line must not pay ~0.2 s for structlog
    and the rich tracebacks it loads."""

    def __init__(self, level: str, stream: _StderrLoggerFactory) -> None:
        self._min = _LEVELS.get(level.lower(), 20)
        self._factory = stream

    def render(self, level: str, event: str, fields: dict[str, Any]) -> str:
        from datetime import UTC, datetime

        stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        parts = [stamp, f"[{level.ljust(_LEVEL_WIDTH)}]", event.ljust(_EVENT_WIDTH)]
        line = " ".join(parts)
        pairs = " ".join(f"{k}={_plain_value(v)}" for k, v in sorted(fields.items()))
        return redact(f"{line} {pairs}" if pairs else line.rstrip())

    def method(self, name: str) -> Callable[..., None]:
        level = _LEVEL_NAMES.get(name, name)

        def log(event: str = "", *args: Any, **fields: Any) -> None:
            if _LEVELS.get(level, 20) < self._min:
                return
            text = event % args if args else event
            self._factory().msg(self.render(level, str(text), fields))

        return log


def configure_logging(
    level: str = "INFO", json: bool = False, *, on_first_use: bool = False, plain: bool = False
) -> None:
    """Configure structlog and stdlib logging once for the process (CLI entry points).

    Everything goes to stderr (so ``--json`` output on stdout stays clean), and account ids
    are masked in structlog events and in stdlib records (ib_async's own logs) alike.
    ``on_first_use``: stdlib logging now, structlog at the first event of a logger from
    :func:`get_logger` (the stream is the one ``sys.stderr`` is now, as without it).
    ``plain``: the events are rendered in the same format without structlog (a short command
    that logs a line or two); not with ``json``.
    """
    logging.basicConfig(stream=sys.stderr, level=level.upper(), format="%(message)s")
    logging.getLogger().setLevel(level.upper())
    install_redaction()
    factory = _StderrLoggerFactory()
    _pending.clear()
    _plain.clear()
    if plain and not json:  # anything but a plain event (bind, exception) gets structlog
        _plain.append(_PlainLogger(level, factory))
    if on_first_use or _plain:
        _pending.append(lambda: _configure_structlog(level, json, factory))
    else:
        _configure_structlog(level, json, factory)


def drop_pending_configuration() -> None:
    """Forget a configuration asked for with ``on_first_use`` and not applied yet (the command
    that asked is over: a later event, a test's, must not pick it up)."""
    _pending.clear()
    _plain.clear()


def _configure_structlog(level: str, json: bool, factory: _StderrLoggerFactory) -> None:
    import structlog

    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact_processor,
            renderer,
            _redact_rendered,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )


class _Logger:
    """A structlog logger for one component, made at its first use (module docstring)."""

    __slots__ = ("_name", "_target")

    def __init__(self, name: str) -> None:
        self._name = name
        self._target: Any = None

    def __getattr__(self, attr: str) -> Any:
        if _plain and (attr in _LEVELS or attr in _LEVEL_NAMES):
            return _plain[0].method(attr)
        if _pending:
            _pending.pop()()
        target = self._target
        if target is None:
            import structlog

            # structlog's own proxy: it follows a later configure() (tests capture with it)
            target = self._target = structlog.get_logger(self._name)
        return getattr(target, attr)


def get_logger(name: str) -> Any:
    """A structlog logger bound to a component name."""
    return _Logger(name)

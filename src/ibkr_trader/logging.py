"""structlog configuration, with account ids redacted from every event.

structlog is imported at the first log call or configuration, not when a module asks for a
logger: every module holds one, and a command such as ``halt`` or ``journal`` that never logs
must not pay for structlog (and the rich tracebacks it loads) at start-up.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

from ibkr_trader.redaction import redact

__all__ = [
    "RedactingFilter",
    "configure_logging",
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


def configure_logging(level: str = "INFO", json: bool = False) -> None:
    """Configure structlog and stdlib logging once for the process (CLI entry points).

    Everything goes to stderr (so ``--json`` output on stdout stays clean), and account ids
    are masked in structlog events and in stdlib records (ib_async's own logs) alike.
    """
    logging.basicConfig(stream=sys.stderr, level=level.upper(), format="%(message)s")
    logging.getLogger().setLevel(level.upper())
    install_redaction()
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
        logger_factory=_StderrLoggerFactory(),
        cache_logger_on_first_use=False,
    )


class _Logger:
    """A structlog logger for one component, made at its first use (module docstring)."""

    __slots__ = ("_name", "_target")

    def __init__(self, name: str) -> None:
        self._name = name
        self._target: Any = None

    def __getattr__(self, attr: str) -> Any:
        target = self._target
        if target is None:
            import structlog

            # structlog's own proxy: it follows a later configure() (tests capture with it)
            target = self._target = structlog.get_logger(self._name)
        return getattr(target, attr)


def get_logger(name: str) -> Any:
    """A structlog logger bound to a component name."""
    return _Logger(name)

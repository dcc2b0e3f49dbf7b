"""Account ids never reach the logs: structlog events and stdlib (ib_async) records alike."""

from __future__ import annotations

import io
import logging

import structlog

from ibkr_trader.logging import RedactingFilter, configure_logging, get_logger, redact


def test_redact_masks_paper_and_live_account_ids() -> None:
    text = "accounts DU1234567,U7654321 and F1234567 but not PDU12 or order 1234567"
    assert redact(text) == "accounts DU***567,U***321 and F***567 but not PDU12 or order 1234567"


def test_stdlib_record_with_account_in_args_is_redacted() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("test.redaction.stdlib")
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("position: Position(account=%r, position=%s)", "DU1234567", 1.0)
    finally:
        logger.removeHandler(handler)
    assert "DU1234567" not in stream.getvalue()
    assert "DU***567" in stream.getvalue()


def test_structlog_event_with_nested_account_is_redacted(capsys: object) -> None:
    configure_logging("INFO")
    try:
        get_logger("test").info("connected", detail={"account": "DU1234567"}, accounts=["U1234567"])
        err = capsys.readouterr().err  # type: ignore[attr-defined]
    finally:
        structlog.reset_defaults()
    assert "DU1234567" not in err and "U1234567" not in err
    assert "connected" in err


def _after_timestamp(line: str) -> str:
    return line.split(" ", 1)[1]


def test_a_plain_event_is_rendered_as_structlog_renders_it(capsys: object) -> None:
    """A short command's events skip structlog (and rich) but read the same."""
    from ibkr_trader.logging import drop_pending_configuration

    fields = {
        "cause": "kill switch /x/HALT: operator halt via CLI: news",
        "origin": "kill_switch",
        "previous": "ACTIVE",
        "count": 3,
        "detail": {"account": "DU1234567"},
    }
    configure_logging("INFO", plain=True)
    try:
        get_logger("test").warning("trading_state_changed", **fields)
        plain = capsys.readouterr().err.strip()  # type: ignore[attr-defined]
    finally:
        drop_pending_configuration()
    configure_logging("INFO")
    try:
        get_logger("test").warning("trading_state_changed", **fields)
        reference = capsys.readouterr().err.strip()  # type: ignore[attr-defined]
    finally:
        structlog.reset_defaults()
    assert _after_timestamp(plain) == _after_timestamp(reference)
    assert plain.split(" ", 1)[0].endswith("Z") and "DU1234567" not in plain


def test_a_plain_configuration_filters_by_level(capsys: object) -> None:
    from ibkr_trader.logging import drop_pending_configuration

    configure_logging("WARNING", plain=True)
    try:
        get_logger("test").info("not shown")
        assert capsys.readouterr().err == ""  # type: ignore[attr-defined]
    finally:
        drop_pending_configuration()

import json
import logging

from marketplace.core.logging import JsonFormatter


def test_json_log_lines_carry_time_level_logger_message_and_extras():
    record = logging.LogRecord("settlement.tasks", logging.WARNING, __file__, 1, "settle %s failed", (42,), None)
    record.booking_id = 42  # as passed with extra={"booking_id": 42}
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "WARNING" and entry["logger"] == "settlement.tasks"
    assert entry["message"] == "settle 42 failed" and entry["booking_id"] == 42
    assert entry["time"].endswith("+00:00")


def test_exceptions_are_included():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert "ValueError: boom" in json.loads(JsonFormatter().format(record))["exception"]

"""One structured line per attempt, JSON when configured, secrets masked."""

import io
import json
import logging

from callbacks.delivery.instruments.accounting import attempts_recorded
from monitoring.logs import JsonFormatter, MaskSecretsFilter
from tests.factories import make_attempts, make_monitored_task


def test_each_attempt_logs_one_masked_json_line(tenant):
    task = make_monitored_task(tenant=tenant, url="http://127.0.0.1:9001/a", trace_id="trace-77")
    attempts = make_attempts(task=task, count=12, seed=9)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(MaskSecretsFilter())
    logger = logging.getLogger("callbacks.attempts")
    logger.addHandler(handler)
    try:
        attempts_recorded(attempts, {task.id: task})
    finally:
        logger.removeHandler(handler)

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == len(attempts)
    for line, attempt in zip(lines, attempts, strict=True):
        assert line["logger"] == "callbacks.attempts" and line["level"] == "INFO"
        assert line["task_id"] == str(task.id) and line["trace_id"] == "trace-77"
        assert line["tenant_id"] == str(tenant.id) and line["host"] == "127.0.0.1"
        assert (line["outcome"], line["status"]) == (attempt.outcome, attempt.status_code)
        assert line["ms"] == (round(attempt.duration_ms, 1) if attempt.duration_ms is not None else None)
    assert "s3cretTOKEN" not in stream.getvalue()
    assert any("error" in line for line in lines)

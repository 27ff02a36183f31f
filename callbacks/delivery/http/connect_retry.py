"""Retries inside one attempt: urllib3 retries the connection phase only (nothing was sent yet).
Real retries are durable, scheduled by callbacks.delivery.retry in the database."""

import time

from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError
from urllib3.util.retry import Retry

from callbacks.delivery.http.deadline import current_watch


class ConnectPhaseRetry(Retry):
    """urllib3 retries for failures before any byte of the request was sent, and nothing else.

    A refused or reset connect, or a failed DNS lookup, is often a receiver restarting or a
    brief network blip: trying again a moment later, inside the same attempt, saves a durable
    retry that would wait a second or more. The waits start small (0.1 s) and grow x1.5, capped
    at 1 s, because a worker thread sleeps through them; urllib3's own formula would wait 0
    first and then double. A connect that timed out is not retried (it already used its time)
    and no retry starts past the attempt's deadline. Read errors are re-raised unchanged
    (read=False) rather than counted, so requests still reports a read timeout as a timeout,
    and a request body is never sent twice within one attempt.
    """

    BACKOFF_BASE = 0.1
    BACKOFF_GROWTH = 1.5
    BACKOFF_CAP = 1.0

    @classmethod
    def for_connect_phase(cls, retries: int) -> "ConnectPhaseRetry":
        return cls(
            total=retries,
            connect=retries,
            read=False,
            status=0,
            redirect=0,
            other=0,
            allowed_methods=None,  # every method: nothing was sent
            raise_on_redirect=False,
            raise_on_status=False,
            respect_retry_after_header=False,
        )

    def get_backoff_time(self) -> float:
        return self._backoff_for(len(self.history))

    def _backoff_for(self, retry_number: int) -> float:
        if retry_number <= 0:
            return 0.0
        return min(self.BACKOFF_CAP, self.BACKOFF_BASE * self.BACKOFF_GROWTH ** (retry_number - 1))

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        if error is not None and self._is_connection_error(error) and not self._worth_retrying(error):
            raise MaxRetryError(_pool, url, error) from error
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def _worth_retrying(self, error: Exception) -> bool:
        if isinstance(error, ConnectTimeoutError) and not isinstance(error, NewConnectionError):
            return False
        watch = current_watch()
        if watch is None:
            return True
        return time.monotonic() + self._backoff_for(len(self.history) + 1) < watch.deadline

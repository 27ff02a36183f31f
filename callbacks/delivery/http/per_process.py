"""One object per process, made on first use: what the HTTP client's threads hold (the deadline
watchdog, the count of lookups running) does not survive a fork, so a forked worker makes its own."""

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerProcess(Generic[T]):
    def __init__(self, make: Callable[[], T]):
        self._make = make
        self._value: T | None = None
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forget)

    def get(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._make()
                value = self._value
        return value

    def _forget(self) -> None:
        # What the parent made belongs to the parent (its threads are gone here).
        self._value = None
        self._lock = threading.Lock()

"""The benchmark's wait for a burst (bench/polling.py): done when the count is reached, given up at the
timeout, and asked less often while much is left."""

import pytest

from bench import polling


class Clock:
    """time.monotonic and time.sleep of a run whose rows are made at `rate` per second."""

    def __init__(self, rate: float):
        self.now, self.rate, self.pauses = 0.0, rate, []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds

    def count(self) -> int:
        return int(self.now * self.rate)


@pytest.fixture
def clock(monkeypatch):
    made = Clock(rate=1000.0)
    monkeypatch.setattr(polling.time, "monotonic", made.monotonic)
    monkeypatch.setattr(polling.time, "sleep", made.sleep)
    return made


def test_the_wait_ends_once_the_count_is_reached(clock):
    assert polling.wait_for_count(clock.count, 5000, timeout=60)
    assert 5000 <= clock.count() < 5000 + clock.rate * polling.LONGEST


def test_the_count_is_asked_seldom_while_much_is_left_and_often_near_the_end(clock):
    polling.wait_for_count(clock.count, 100_000, timeout=600)

    assert clock.pauses[1:4] == [polling.LONGEST] * 3
    assert clock.pauses[-1] == polling.SHORTEST
    assert len(clock.pauses) < 100_000 / clock.rate / polling.SHORTEST / 4


def test_the_wait_gives_up_at_the_timeout(clock):
    clock.rate = 0.0

    assert not polling.wait_for_count(clock.count, 10, timeout=3)
    assert clock.now == pytest.approx(3.0)

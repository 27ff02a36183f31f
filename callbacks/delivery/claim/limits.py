"""Respect for targets: what the dispatcher may claim for each origin right now.

- Concurrency: at most MAX_CONCURRENCY_PER_ORIGIN callbacks in flight per origin, across every
  worker on every machine; a tenant's max_concurrency_per_origin caps its own tasks' share of an
  origin. Counted in slots: the widths of the origin's live lanes (claim/lanes.py), which the
  leader reads in one grouped query at every claim and grants only within the limit.
- Rate: RATE_LIMIT_PER_ORIGIN requests per second per origin (0: off) and a tenant's
  rate_limit_per_origin for its own share, as token buckets in the leader's memory. Exact too,
  because only the leader claims; a new leader starts with full buckets, so a change of leader
  allows at most one extra burst (a bucket holds one second's worth, at least one token).
  Claims, not sends, are counted: a claimed task is sent within milliseconds.
- Breakers: the gate says which origins wait and which may send one probe, and the
  concurrency of origins slowed down because they answered 429 or 503 (below the limit).

Tenants share what is common: the outstanding budget (DISPATCH_MAX_OUTSTANDING) equally among
the tenants with due work (Round.share_budget), and a half-open breaker's probes in turn
(Round._probe_turn). Otherwise limits are per origin.

Fairness: a flood of due tasks for an origin at its limit must not fill the claim's candidate
window. Origins (and tenant shares) known to be full, rate-limited or held by a breaker are
left out in SQL, so candidates come from origins with room; an origin that fills up while the
window is being read is left out of the next read, for a few reads per claim at most.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from functools import reduce
from math import ceil
from operator import or_

from django.db import connection
from django.db.models import Q

from callbacks import conf
from callbacks.delivery.claim import candidates as candidate_rows
from callbacks.delivery.claim import lanes
from callbacks.delivery.claim.candidates import Candidate
from callbacks.delivery.claim.gate import Gate, probes_started
from callbacks.delivery.claim.gate import gate as read_gate
from callbacks.delivery.claim.rates import RateBuckets

# Candidate rows read per claimable row, and reads per claim: enough for origins that fill up
# mid-window to be replaced by others, bounded so a claim stays a few queries.
WINDOW_FACTOR = 2
MAX_READS = 3
# How often the leader reads which tenants have due work (a semi-join per tenant).
TENANTS_SECONDS = 1.0


class TargetLimits:
    """The leader's memory across claims: rate buckets, and what the last claim held back.

    `saturated` is True when the last claim took everything the targets had room for and due
    work was left waiting for room, a token or a probe: the dispatcher then sleeps until a
    wake-up (a recorded attempt NOTIFYs), `retry_in` (the next rate token) or its poll, rather
    than spinning on due work it may not claim. `holding`: besides, it read due work it had no room
    for (not merely nothing left to claim).
    """

    def __init__(self):
        self.buckets = RateBuckets()
        self.saturated = False
        self.holding = False
        self.retry_in: float | None = None
        # Rate-limited keys (origins, (origin, tenant) shares) a lane paced at the last claim -> rate.
        self.paced: dict = {}
        # The last claim stopped at the outstanding limit (max_in_flight): nothing more may be
        # claimed until an attempt is recorded, which wakes the dispatcher.
        self.full = False
        # Tenants with due work, read at most every TENANTS_SECONDS (they share the budget).
        self.due_tenants: set = set()
        self.due_tenants_at: float | None = None
        # Origin -> the tenant whose task took its last breaker probe (probes go round the tenants).
        self.last_probe: dict = {}

    def tenants_due(self, at: float, *, now: datetime, served_queues, fresh: bool = False) -> set:
        if (
            fresh
            or self.due_tenants_at is None
            or at - self.due_tenants_at >= TENANTS_SECONDS
            or at < self.due_tenants_at
        ):
            self.due_tenants = candidate_rows.tenants_with_due_work(now, served_queues=served_queues)
            self.due_tenants_at = at
        return self.due_tenants


DEFAULT = TargetLimits()  # for callers that do not keep their own (tests, one-off claims)


@dataclass
class Round:
    """One claim's bookkeeping."""

    now: datetime
    targets: TargetLimits
    at: float = 0.0  # now, in seconds, for the rate buckets
    by_origin: Counter = field(default_factory=Counter)
    by_share: Counter = field(default_factory=Counter)  # (origin, tenant id) -> in flight
    closed_origins: set = field(default_factory=set)
    closed_shares: set = field(default_factory=set)
    retry_in: float | None = None
    gate: Gate | None = None
    probes: set = field(default_factory=set)
    origin_limit: int = 0
    served_queues: set | None = None  # None: every queue (no live worker to tell)
    by_tenant: Counter = field(default_factory=Counter)  # tenant id -> slots held
    closed_tenants: set = field(default_factory=set)
    tenant_cap: int | None = None  # a tenant's share of the outstanding budget, in slots

    def load(self) -> None:
        """Slots in use first, breakers second (see gate.gate). The limit as it is this instant: a
        lowered one must stop new grants at once, as it stops the lanes' refills."""
        self.origin_limit = conf.current("MAX_CONCURRENCY_PER_ORIGIN")
        origin_rate = conf.get("RATE_LIMIT_PER_ORIGIN")
        paced_now = {}
        for origin, tenant_id, share_limit, share_rate, slots, paced in lanes.in_use(now=self.now):
            share = (origin, tenant_id)
            self.by_origin[origin] += slots
            self.by_share[share] += slots
            self.by_tenant[tenant_id] += slots
            if share_limit and slots >= share_limit:
                self.closed_shares.add(share)
            if paced:
                # A lane holds this rate and paces it: nothing more of it here.
                if share_rate:
                    paced_now[share] = share_rate
                    self.closed_shares.add(share)
                if origin_rate:
                    paced_now[origin] = origin_rate
                    self.closed_origins.add(origin)
        # The leader's bucket of a paced key starts empty from the moment it sees the lane gone, so
        # the lane's last sends are not followed by a burst of the bucket's own.
        for key, rate in {**self.targets.paced, **paced_now}.items():
            self.targets.buckets.drain(key, rate, self.at)
        self.targets.paced = paced_now
        self.gate = read_gate(now=self.now)
        self.closed_origins.update(
            origin for origin, count in self.by_origin.items() if count >= self.limit_of(origin)
        )
        self.closed_origins |= self.gate.blocked
        for key, wait in self.targets.buckets.empty(self.at).items():
            if isinstance(key, tuple):
                self.closed_shares.add(key)
            elif conf.get("RATE_LIMIT_PER_ORIGIN"):
                self.closed_origins.add(key)
            else:
                continue
            self._retry_at_most(wait)

    def limit_of(self, origin: str) -> int:
        """The origin's concurrency limit now: the installation's, or less while it is slowed down."""
        return min(self.origin_limit, self.gate.slowed.get(origin, self.origin_limit))

    def room_of(self, origin: str) -> int:
        """Slots the origin has free in this claim: no more of its rows can be admitted."""
        return max(0, self.limit_of(origin) - self.by_origin[origin])

    def share_budget(self, max_in_flight: int, *, sendable: int | None = None) -> None:
        """Each tenant with due work or slots held may hold an equal share of the outstanding budget:
        however many, however urgent (priority) or however slow its callbacks, one tenant cannot take
        the slots another's callbacks need. A tenant over its share (it took the budget while alone)
        gets nothing more until its lanes end (LANE_SECONDS) and give the slots back.

        Nor more than `sendable`, what the workers can send at once (their sender threads): the
        budget is larger so that lanes wait in the workers while others send, but slots of one
        tenant beyond every thread only wait, and while alone a tenant must leave room in the budget
        for the next tenant's callbacks to be claimed at once, not when its own sends end."""
        due = self.targets.tenants_due(self.at, now=self.now, served_queues=self.served_queues)
        tenants = due | {tenant for tenant, slots in self.by_tenant.items() if slots > 0}
        self.tenant_cap = max(1, ceil(max_in_flight / max(1, len(tenants))))
        if sendable:
            self.tenant_cap = min(self.tenant_cap, sendable)
        self.closed_tenants = {tenant for tenant, slots in self.by_tenant.items() if slots >= self.tenant_cap}
        waiting = any(self.by_tenant[tenant] < self.tenant_cap for tenant in due)
        over = {tenant for tenant, slots in self.by_tenant.items() if slots > self.tenant_cap}
        if waiting and over:
            # Its lanes would refill themselves for up to LANE_SECONDS: some stop refilling now and
            # drain as their responses come in, each slot freed for good (the origins' limits stay
            # exact), until the tenant is back within its share.
            lanes.drain(over, keep=self.tenant_cap, now=self.now)

    def only_closed_tenants_due(self) -> bool:
        """Every tenant with due work holds its share of the budget, so nothing is claimable now. A
        read would not know it before walking the whole due backlog (its tenants are left out row
        by row): 16 ms a claim with 20,000 due. The tenants with due work are asked again when the
        cached answer says so, so a tenant whose first callbacks just fell due is not kept waiting
        for the cache to age."""
        cached = self.targets.due_tenants
        if not cached or not cached <= self.closed_tenants:
            return False
        due = self.targets.tenants_due(self.at, now=self.now, served_queues=self.served_queues, fresh=True)
        return bool(due) and due <= self.closed_tenants

    def narrow(self, queryset):
        """Leave out in SQL what may not be claimed now, so the window holds claimable rows."""
        if self.served_queues is not None:
            queryset = queryset.filter(queue__in=sorted(self.served_queues))
        if self.closed_tenants:
            queryset = queryset.exclude(tenant_id__in=sorted(self.closed_tenants))
        if self.closed_origins:
            queryset = queryset.exclude(origin__in=sorted(self.closed_origins))
        if self.closed_shares:
            queryset = queryset.exclude(
                reduce(or_, (Q(origin=origin, tenant_id=tenant) for origin, tenant in self.closed_shares))
            )
        return queryset

    def read(self, candidates, *, exclude: list, window: int) -> list[Candidate]:
        """The next `window` Candidates with room, leaving out `exclude`; `candidates()` makes
        the due tasks' queryset in claim order (for the ORM's form)."""
        if connection.vendor == "postgresql":
            return candidate_rows.claimable_window(
                now=self.now,
                window=window,
                closed_origins=sorted(self.closed_origins),
                closed_shares=sorted(self.closed_shares),
                closed_tenants=sorted(self.closed_tenants),
                served_queues=self.served_queues,
                exclude=exclude,
                room_of=self.room_of,
            )
        return candidate_rows.orm_window(self.narrow(candidates()), exclude=exclude, window=window)

    @property
    def in_flight(self) -> int:
        """Slots held everywhere, as load() counted them."""
        return sum(self.by_origin.values())

    def closed(self) -> int:
        return len(self.closed_origins) + len(self.closed_shares) + len(self.closed_tenants)

    def admit(self, row: Candidate) -> bool:
        """Room, tokens and breaker allow this row? Takes its place if so; closes what is full."""
        origin, share_limit, share_rate = row.origin, row.share_limit, row.share_rate
        share = (origin, row.tenant_id)
        if (
            origin in self.closed_origins
            or share in self.closed_shares
            or row.tenant_id in self.closed_tenants
        ):
            return False
        if origin in self.gate.probe and not self._probe_turn(origin, row.tenant_id):
            return False
        if not self._tokens_for(origin, share, share_rate):
            return False
        self.by_origin[origin] += 1
        self.by_share[share] += 1
        self.by_tenant[row.tenant_id] += 1
        if self.tenant_cap is not None and self.by_tenant[row.tenant_id] >= self.tenant_cap:
            self.closed_tenants.add(row.tenant_id)
        self._take_tokens(origin, share, share_rate)
        if self.by_origin[origin] >= self.limit_of(origin):
            self.closed_origins.add(origin)
        if share_limit and self.by_share[share] >= share_limit:
            self.closed_shares.add(share)
        if origin in self.gate.probe:
            self.probes.add(origin)  # exactly one probe per origin
            self.closed_origins.add(origin)
            self.targets.last_probe[origin] = row.tenant_id
        return True

    def _probe_turn(self, origin, tenant_id) -> bool:
        """A half-open origin's probes go round its tenants: the tenant that took the last one waits
        while another has due work there (its share is left out of this claim's reads, so the other's
        rows come up), so one tenant's urgent failing callbacks cannot take every probe."""
        if self.targets.last_probe.get(origin) != tenant_id:
            return True
        if not candidate_rows.others_due_at(
            origin, tenant_id, now=self.now, served_queues=self.served_queues
        ):
            return True
        self.closed_shares.add((origin, tenant_id))
        return False

    def _tokens_for(self, origin, share, share_rate) -> bool:
        buckets, rate = self.targets.buckets, conf.get("RATE_LIMIT_PER_ORIGIN")
        if rate and buckets.tokens(origin, rate, self.at) < 1.0:
            self.closed_origins.add(origin)
            self._retry_at_most(buckets.wait(origin, rate, self.at))
            return False
        if share_rate and buckets.tokens(share, share_rate, self.at) < 1.0:
            self.closed_shares.add(share)
            self._retry_at_most(buckets.wait(share, share_rate, self.at))
            return False
        return True

    def _take_tokens(self, origin, share, share_rate) -> None:
        rate = conf.get("RATE_LIMIT_PER_ORIGIN")
        if rate:
            self.targets.buckets.take(origin, rate, self.at)
        if share_rate:
            self.targets.buckets.take(share, share_rate, self.at)

    def _retry_at_most(self, seconds: float) -> None:
        self.retry_in = seconds if self.retry_in is None else min(self.retry_in, seconds)


def key_of(row: Candidate) -> tuple:
    """The (queue, origin, tenant id) whose lanes carry the row."""
    return (row.queue, row.origin, row.tenant_id)


@dataclass
class Chosen:
    """The rows a claim locked, the origins whose breaker probe is among them, and the slots it
    admitted per key (`key_of`), those of rows it then could not lock included."""

    rows: list[Candidate]
    probes: set
    admitted: Counter = field(default_factory=Counter)


def claimable(
    candidates,
    *,
    limit: int,
    now: datetime,
    targets: TargetLimits | None = None,
    max_in_flight: int | None = None,
    sendable: int | None = None,
    served_queues: set | None = None,
) -> "Chosen":
    """Lock and return up to `limit` Candidates of `candidates()` (due tasks in claim order) that the targets have room for, marking the probes taken. Call inside the
    claim's transaction. With `max_in_flight`, no more than brings the callbacks queued or
    running everywhere to that (the dispatcher's backpressure, from the same count), each tenant
    within its share of it and within `sendable` (Round.share_budget). With `served_queues`, only tasks of those queues:
    work claimed for a queue no cluster serves would sit in the broker holding slots others need.

    Candidates are read unlocked and only the chosen rows are locked (SKIP LOCKED): a row taken
    meanwhile (cancelled, retried by hand) is simply not claimed this time.
    """
    targets = targets or DEFAULT
    state = Round(now=now, targets=targets, at=now.timestamp(), served_queues=served_queues)
    state.load()
    room = limit if max_in_flight is None else max_in_flight - state.in_flight
    if max_in_flight is not None:
        state.share_budget(max_in_flight, sendable=sendable)
    targets.full = room <= 0
    if targets.full:
        targets.saturated, targets.retry_in = True, None  # a lane narrowing wakes the dispatcher
        targets.holding = False  # not read: no room at all
        return Chosen(rows=[], probes=set())
    if max_in_flight is not None and state.only_closed_tenants_due():
        # Due work waits for its tenants' lanes to narrow (they NOTIFY) or end.
        targets.saturated = targets.holding = True
        targets.retry_in = None
        return Chosen(rows=[], probes=set())
    chosen = _choose(candidates, state, limit=min(limit, room))
    targets.full = len(chosen) >= room
    if not chosen:
        return Chosen(rows=[], probes=set())
    # Still due and claimable, checked on the table alone: the queue and ordering-key filters of
    # the candidates were read a few milliseconds ago in this transaction.
    locked = candidate_rows.still_claimable([row.id for row in chosen], now=now)
    # A row not locked was mostly started meanwhile by a lane of its own key, whose refills take
    # the same first due tasks: its slot was admitted all the same and goes to the key's lane.
    admitted = Counter(key_of(row) for row in chosen)
    chosen = [row for row in chosen if row.id in locked]
    probes = {row.origin for row in chosen if row.origin in state.probes}
    probes_started(probes, now=now)
    return Chosen(rows=chosen, probes=probes, admitted=admitted)


def _choose(candidates, state: Round, *, limit: int) -> list[Candidate]:
    window = limit * WINDOW_FACTOR + 10
    chosen = []
    more = held = False
    for _ in range(MAX_READS):
        closed_before = state.closed()
        rows = state.read(candidates, exclude=[row.id for row in chosen], window=window)
        for row in rows:
            if len(chosen) >= limit:
                break
            if state.admit(row):
                chosen.append(row)
            else:
                held = True
        more = len(rows) == window
        if len(chosen) >= limit or not more or state.closed() == closed_before:
            break
    targets = state.targets
    targets.saturated = len(chosen) < limit and not more
    targets.holding = targets.saturated and held
    targets.retry_in = state.retry_in
    targets.buckets.prune(state.at)
    return chosen

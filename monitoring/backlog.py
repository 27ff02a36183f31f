"""What waits to be sent, and why: ready to be claimed, held back, or waiting for its time.

A task waiting for its time is one whose first or next attempt lies ahead. A due task is taken by
the leading dispatcher unless something holds it back, and the reasons are the claim's own
(callbacks.delivery.claim): its queue paused or served by no live worker, its tenant deactivated,
an earlier task of its ordering key unfinished (candidates.claimable_tasks), its origin's breaker
open until the probe time or half-open with the probe out (gate), its origin, or its tenant's
share of it, at the concurrency or rate limit (limits.Round.load). This reads those decisions
with a Round of its own, so the counts follow the engine's rules rather than a copy of them.

A task held by an open breaker has its next_attempt_at moved to the probe time
(breaker.holding) while due_at keeps the time it became due: "due" reads both.
"""

from collections import defaultdict
from datetime import datetime
from functools import reduce
from operator import or_

from django.db.models import Case, CharField, Count, Q, Value, When
from django.utils import timezone

from callbacks import conf, queues
from callbacks.delivery.claim.candidates import claimable_tasks
from callbacks.delivery.claim.limits import Round, TargetLimits
from callbacks.delivery.dispatcher import SERVED_WITHIN_BEATS
from callbacks.domain.vocabulary import CLAIMABLE_STATUSES
from callbacks.models import CallbackTask, QueueState

READY = "ready"
WAITING = "waiting for its time"
QUEUE_PAUSED = "queue paused"
NOT_SERVED = "no live worker serves its queue"
TENANT_INACTIVE = "tenant deactivated"
BREAKER = "breaker open"
AT_LIMIT = "origin at its concurrency or rate limit"
BEHIND_KEY = "behind an earlier task of its ordering key"
# In the order the reasons are told: a task held for several reasons counts under the first.
HELD_REASONS = (QUEUE_PAUSED, NOT_SERVED, TENANT_INACTIVE, BREAKER, AT_LIMIT, BEHIND_KEY)


def limits_now(*, now: datetime) -> Round:
    """The claim's view of the targets this instant: slots in use per origin and share, the
    breakers' gate, the origins and shares closed (full, paced by a rate-limited lane, or held by
    a breaker), each origin's concurrency limit (Round.limit_of). Rate tokens live in the leader's
    memory: an origin short of tokens for a moment does not show here, a paced one does."""
    state = Round(now=now, targets=TargetLimits(), at=now.timestamp())
    state.load()
    return state


def narrowed(tasks, tenant=None, queue: str = "", origin: str = ""):
    """Tasks of one tenant, queue and origin, each when given: the console's filters."""
    if tenant is not None:
        tasks = tasks.filter(tenant=tenant)
    if queue:
        tasks = tasks.filter(queue=queue)
    if origin:
        tasks = tasks.filter(origin=origin)
    return tasks


def backlog(
    *, now: datetime | None = None, tenant=None, queue: str = "", origin: str = "", by: str = "queue"
) -> dict:
    """Unfinished tasks not yet claimed, counted by why they wait, in total and per queue (or per
    origin, `by`): {"ready", "held", "waiting", "reasons": {reason: n}, "groups": [{"name", "ready",
    "held", "waiting", "reasons"}]}, "held" being the sum of HELD_REASONS ("held_because" lists
    the reasons that hold any)."""
    if by not in ("queue", "origin"):
        raise ValueError(f"backlog groups by queue or origin, not {by!r}")
    now = now or timezone.now()
    tasks = narrowed(CallbackTask.objects.filter(status__in=CLAIMABLE_STATUSES), tenant, queue, origin)
    rows = tasks.annotate(reason=_reason(now)).values(by, "reason").annotate(n=Count("id")).order_by()
    groups: dict = defaultdict(lambda: defaultdict(int))
    for row in rows:
        groups[row[by]][row["reason"]] += row["n"]
    total: dict = defaultdict(int)
    for counts in groups.values():
        for reason, n in counts.items():
            total[reason] += n
    return {
        **_summary(total),
        "groups": [{"name": name, **_summary(counts)} for name, counts in sorted(groups.items())],
    }


def _summary(counts: dict) -> dict:
    return {
        "ready": counts.get(READY, 0),
        "waiting": counts.get(WAITING, 0),
        "held": sum(counts.get(reason, 0) for reason in HELD_REASONS),
        "reasons": {reason: counts.get(reason, 0) for reason in HELD_REASONS},
        "held_because": [(reason, counts[reason]) for reason in HELD_REASONS if counts.get(reason)],
    }


def _reason(now: datetime) -> Case:
    state = limits_now(now=now)
    served = queues.served_queues(now=now, within_seconds=SERVED_WITHIN_BEATS * conf.get("HEARTBEAT_SECONDS"))
    at_limit = [Q(origin__in=sorted(state.closed_origins - state.gate.blocked))] + [
        Q(origin=origin, tenant_id=tenant_id) for origin, tenant_id in state.closed_shares
    ]
    keyed_claimable = claimable_tasks(now).exclude(ordering_key="").values("pk")
    whens = [
        When(Q(next_attempt_at__gt=now) & (Q(due_at__gt=now) | Q(due_at__isnull=True)), then=Value(WAITING)),
        When(queue__in=QueueState.objects.filter(paused=True).values("name"), then=Value(QUEUE_PAUSED)),
    ]
    if served is not None:  # None: no worker alive at all, which the processes table tells
        whens.append(When(~Q(queue__in=sorted(served)), then=Value(NOT_SERVED)))
    whens += [
        When(tenant__is_active=False, then=Value(TENANT_INACTIVE)),
        When(origin__in=sorted(state.gate.blocked), then=Value(BREAKER)),
        When(reduce(or_, at_limit), then=Value(AT_LIMIT)),
        When(~Q(ordering_key="") & ~Q(pk__in=keyed_claimable), then=Value(BEHIND_KEY)),
    ]
    return Case(*whens, default=Value(READY), output_field=CharField())

"""Claiming work: everything the leading dispatcher decides when it takes due tasks.

- candidates: which tasks may be claimed, in what order (the ORM's definition and the same in
  hand-written SQL for PostgreSQL, side by side), as `Candidate` rows;
- limits: what the targets have room for (per-origin concurrency and rate, tenants' shares);
- rates: the leader's token buckets;
- gate: what the circuit breakers let through (blocked origins, one probe each);
- leases: the claim itself and a task's lease from claim to start, give-back and take-back.
"""

"""Circuit breakers per target origin: closed -> open -> half_open -> closed.

One CircuitBreaker row per origin (scheme://host:port), shared by every process through the
database, created only when an origin first fails:

- machine: the state machine, pure.
- recording: workers move breakers as they record attempts (called by outcomes.record inside
  the transaction that records the attempts), so the dispatcher never sees an attempt's result
  without the breaker state it caused: thresholds are exact and only one probe goes out at a
  time.
- callbacks.delivery.claim.gate: the leading dispatcher reads them when it claims. An open
  breaker's origin gets no claims until its probe time, then exactly one (the probe) while
  half-open.
- holding: tasks wait without using an attempt; the leader's sweep moves their next_attempt_at
  to the probe time (recording the hold once per task) and buries those held past
  BREAKER_MAX_DEFER_SECONDS.

What counts. A failure says the receiver is down or overloaded: timeout, connection, tls,
http_5xx, and 429. A response the receiver chose to give (2xx, 3xx, other 4xx, a status the
task does not accept, a body over the limit) shows it is up: it ends a streak of failures and
a probe that gets one closes the breaker. Attempts that never reached the receiver or say
nothing about it (ssrf_blocked, whitelist_denied, interrupted, error) are ignored.

Thresholds. Each attempt carries its tenant's policy (Tenant.breaker_failure_threshold and
breaker_open_seconds, else the installation's). When tenants calling one origin disagree, the
policy of the attempt that tips the breaker decides: a failure opens it when the streak
reaches that attempt's tenant's threshold, and its open period starts from that tenant's
base. Simple, and a tenant with a low threshold protects the origin for everyone.

Slowing down. A 429 or 503 also asks for less: it halves the origin's concurrency_limit (down
to 1) and each healthy answer gives one more, back up to the configured limit, when it is empty
again. The claim (claim/gate, claim/limits) and the lanes' refills (claim/lanes) obey it.

The open period doubles at each opening without a full recovery (open_count), from the base
up to BREAKER_OPEN_MAX_SECONDS; a successful probe closes the breaker and resets open_count.
While open, late answers of attempts sent before it opened are counted as failures but never
close it: the probe decides.
"""

"""The delivery engine: claim due callbacks, send them, record what happened.

Packages: claim (what the leading dispatcher takes, and the leases), http (the tuned session and one
attempt within a total deadline), breaker (a circuit breaker per target origin) and instruments (the
engine's metrics, roll-ups, attempt log lines and heartbeats). The engine sits above the services:
it creates tasks (schedule fires, failure notifications) through them, as every caller does.
"""

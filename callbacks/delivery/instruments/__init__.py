"""The engine's own instruments: Prometheus metrics (and the housekeeping of their multiprocess
files), attempt accounting (metrics, roll-ups, one log line per attempt), and the heartbeats of
workers and dispatchers.

The engine writes them; monitoring reads and exports them (/metrics, stats, readiness, the
dashboard) and is never imported from here.
"""

"""The HTTP client: one tuned requests.Session per process, and `send`, which makes one attempt
within a hard total deadline and keeps at most `body_limit` bytes.

- deadline: the watchdog thread that enforces the total deadline;
- pools: connection pools that count connections in use, retire stale keep-alive connections
  and report sockets to the watchdog;
- connect_retry: urllib3 retries of the connection phase only;
- resolver: name lookups given up at the attempt's deadline (getaddrinfo has no timeout);
- heads: response heads read within RESPONSE_HEADERS_LIMIT bytes and MAX_RESPONSE_HEADERS lines;
- per_process: what each process makes once (a forked worker makes its own);
- session: the per-process session, rebuilt after a fork or a change of pool settings;
- attempt: `send`, one request.

Why it looks like this:
- requests has no total timeout: its read timeout is per recv, so a receiver that trickles a
  byte now and then holds a worker indefinitely. A watchdog thread shuts the socket down at
  the deadline, whether the receiver is slow to read our body, to send its headers or to
  send its body; the body loop also checks the deadline between chunks.
- `pool_connections` counts per-host pools, not connections; `pool_maxsize` is connections
  kept per host. Non-blocking pools open an extra connection beyond maxsize when needed
  (requests gives blocking pools no timeout, so they could wait forever).
- urllib3 retries only the connection phase (nothing was sent yet); real retries are durable,
  scheduled by retry.py in the database.
- Redirects are never followed (a 3xx is an outcome), proxies from the environment are
  ignored (trust_env False: a proxy would hide the target from the SSRF guard), TLS
  verification is always on.
"""

from callbacks.delivery.http.attempt import CHUNK_SIZE, RawResponse, send
from callbacks.delivery.http.connect_retry import ConnectPhaseRetry
from callbacks.delivery.http.deadline import TotalTimeout
from callbacks.delivery.http.session import abort_in_flight, get_session, pool_state

__all__ = [
    "CHUNK_SIZE",
    "ConnectPhaseRetry",
    "RawResponse",
    "TotalTimeout",
    "abort_in_flight",
    "get_session",
    "pool_state",
    "send",
]

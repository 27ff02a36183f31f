"""A fast HTTP/1.1 receiver for the benchmark: keep-alive, answers 200 "ok" to everything.

Small and asyncio-based so that it costs far less CPU per request than the senders being
measured. Optional --delay makes every answer wait (the in-flight scenario); --record keeps the
arrival times of each X-Callback-Task-Id; --origins N listens on N ports of 127.0.0.1, N receiver
origins served by one process (the counters are their sum). It prints its ports on one line of
stdout, then serves until killed; SIGUSR1 writes its state to --state as JSON.
"""

import argparse
import asyncio
import json
import os
import signal
import sys
import time

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class Stats:
    requests = 0
    in_flight = 0
    max_in_flight = 0
    record = False
    received: dict = {}  # task id -> [arrival times], when --record is on


def task_id_of(head: bytes) -> str | None:
    for line in head.split(b"\r\n"):
        if line[:19].lower() == b"x-callback-task-id:":
            return line[19:].strip().decode()
    return None


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:].strip())
            if length:
                await reader.readexactly(length)
            Stats.requests += 1
            if Stats.record:
                Stats.received.setdefault(task_id_of(head), []).append(time.time())
            Stats.in_flight += 1
            Stats.max_in_flight = max(Stats.max_in_flight, Stats.in_flight)
            try:
                if delay:
                    await asyncio.sleep(delay)
                writer.write(RESPONSE)
                await writer.drain()
            finally:
                Stats.in_flight -= 1
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


def dump(path: str) -> None:
    """Write counters (and what was received, with --record) as JSON to `path`, atomically."""
    state = {"requests": Stats.requests, "max_in_flight": Stats.max_in_flight, "received": Stats.received}
    with open(path + ".tmp", "w") as f:
        json.dump(state, f)
    os.replace(path + ".tmp", path)


async def main(port: int, origins: int, delay: float, state_path: str) -> None:
    servers = [
        await asyncio.start_server(lambda r, w: handle(r, w, delay), "127.0.0.1", port, backlog=4096)
        for port in ([port] if origins == 1 else [0] * origins)
    ]
    sys.stdout.write(" ".join(str(server.sockets[0].getsockname()[1]) for server in servers) + "\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    # SIGUSR1: write the state file now (the benchmark reads it); SIGUSR2: reset the counters.
    loop.add_signal_handler(signal.SIGUSR1, dump, state_path)
    loop.add_signal_handler(signal.SIGUSR2, reset)
    await asyncio.gather(*(server.serve_forever() for server in servers))


def reset() -> None:
    Stats.requests = 0
    Stats.max_in_flight = Stats.in_flight
    Stats.received = {}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0, help="with one origin; several get free ports")
    parser.add_argument("--origins", type=int, default=1, help="ports to listen on, each an origin")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--state", required=True, help="file written on SIGUSR1")
    parser.add_argument("--record", action="store_true", help="keep each task id's arrival times")
    args = parser.parse_args()
    Stats.record = args.record
    asyncio.run(main(args.port, args.origins, args.delay, args.state))

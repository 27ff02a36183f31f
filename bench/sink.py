"""A fast HTTP/1.1 receiver for the benchmark: keep-alive, answers 200 "ok" to everything.

Small and asyncio-based so that it costs far less CPU per request than the senders being
measured. Optional --delay makes every answer wait (the in-flight scenario). It prints its
port on stdout, then serves until killed; SIGUSR1 prints counters.
"""

import argparse
import asyncio
import signal
import sys

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class Stats:
    requests = 0
    in_flight = 0
    max_in_flight = 0


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


async def main(port: int, delay: float) -> None:
    server = await asyncio.start_server(lambda r, w: handle(r, w, delay), "127.0.0.1", port, backlog=4096)
    sys.stdout.write(f"{server.sockets[0].getsockname()[1]}\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(
        signal.SIGUSR1,
        lambda: print(f"requests={Stats.requests} max_in_flight={Stats.max_in_flight}", flush=True),
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    asyncio.run(main(args.port, args.delay))

"""A TLS receiver for the benchmark that offers HTTP/2 and HTTP/1.1 through ALPN (hypercorn), so
both protocols are measured against the same server: answers 200 "ok" to everything.

Its certificate comes from a CA made at start (trustme), written as ca.pem into --dir for the
service's CALLBACKS_CA_BUNDLE. --origins N listens on N ports of 127.0.0.1. It prints its ports on
one line of stdout, then serves until killed.
"""

import argparse
import asyncio
import logging
import socket
import sys
from pathlib import Path

import trustme
from hypercorn.asyncio import serve
from hypercorn.config import Config


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            kind = (await receive())["type"]
            await send({"type": kind + ".complete"})
            if kind == "lifespan.shutdown":
                return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--origins", type=int, default=1)
    args = parser.parse_args()
    directory = Path(args.dir)
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(directory / "server.pem"))
    sockets = []
    for _ in range(args.origins):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        sockets.append(sock)
    config = Config()
    config.bind = [f"fd://{sock.fileno()}" for sock in sockets]
    config.certfile = config.keyfile = str(directory / "server.pem")
    config.alpn_protocols = ["h2", "http/1.1"]
    config.accesslog = None
    config.errorlog = logging.getLogger("tls_sink")
    config.keep_alive_timeout = 120
    # Hypercorn ends a connection after 1,000 requests by default, and over HTTP/2 it does so by a
    # GOAWAY that names the streams in flight as accepted, then never answers them: every thousandth
    # callback or so would wait out its deadline. A benchmark's connections are never retired, for
    # both protocols alike, so the figures describe the sender.
    config.keep_alive_max_requests = 2**62
    print(" ".join(str(sock.getsockname()[1]) for sock in sockets), flush=True)
    sys.stdout.close()
    asyncio.run(serve(app, config))


if __name__ == "__main__":
    main()

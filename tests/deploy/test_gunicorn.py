"""The production web server (deploy/gunicorn.conf.py) keeps answering while many clients trickle.

A real gunicorn with the shipped configuration on 127.0.0.1; slow clients each send a request line and
then one byte of a header every second, never finishing it (slowloris). Sync workers, as `gunicorn -w 4`
ran, are each held by one such connection: four took /healthz down.
"""

import http.client
import os
import socket
import threading
import time

from tests.deploy.web import Gunicorn

SLOW_CLIENTS = 300


def _healthz(port: int) -> tuple[int, float]:
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status, time.monotonic() - started
    finally:
        connection.close()


def test_healthz_answers_while_hundreds_of_clients_trickle(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(
        DJANGO_SETTINGS_MODULE="taskcenter.settings",
        CALLBACKS_VAR_DIR=str(tmp_path / "var"),
        SECRET_KEY="gunicorn-test-key-" * 4,
    )
    slow: list[socket.socket] = []
    stop = threading.Event()
    with Gunicorn(env, tmp_path / "gunicorn.log") as server:
        server.wait_ready()
        try:
            for _ in range(SLOW_CLIENTS):
                client = socket.create_connection(("127.0.0.1", server.port), timeout=5)
                client.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                slow.append(client)
            trickled = threading.Event()

            def trickle():
                while not stop.wait(1.0):
                    for client in slow:
                        try:
                            client.sendall(b"x")
                        except OSError:
                            pass
                    trickled.set()

            threading.Thread(target=trickle, daemon=True).start()
            assert trickled.wait(30)  # every slow client holds whatever it can get

            answers = [_healthz(server.port) for _ in range(5)]
            assert [status for status, _ in answers] == [200] * 5
            # Measured figures, for the record (`pytest -s`); no timing is asserted.
            print(
                f"{SLOW_CLIENTS} slow clients: /healthz in "
                + ", ".join(f"{t * 1000:.0f} ms" for _, t in answers)
            )
            assert server.proc.poll() is None
        finally:
            stop.set()
            for client in slow:
                client.close()

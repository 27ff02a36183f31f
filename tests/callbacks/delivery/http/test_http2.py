"""HTTP/2 over TLS (callbacks/delivery/http/http2.py): negotiated through ALPN with real hypercorn
receivers on 127.0.0.1 holding certificates of a test CA; HTTP/1.1-only receivers still reached;
the deadline, the body cap, no redirects and the SSRF guard as on HTTP/1.1."""

import socket
import ssl
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import pytest

from callbacks.delivery import http, worker
from callbacks.delivery.instruments import metrics
from callbacks.delivery.ssrf import SsrfBlocked
from tests.callbacks.delivery.http.sending import forget_pools, send
from tests.receivers import Reply
from tests.tls_receivers import header

pytestmark = pytest.mark.usefixtures("fresh_pools")


@pytest.fixture
def fresh_pools():
    forget_pools()
    yield
    forget_pools()


BODY = '{"name": "Zoë", "note": "byte for byte — kept"}'.encode()


def test_a_receiver_offering_h2_is_reached_over_http2_byte_for_byte(tls_receiver):
    receiver = tls_receiver()
    raw = send(
        receiver.url(path="/hook?x=1&y=%20"), body=BODY, headers={"X-Custom": "a  b\t c", "X-Empty": ""}
    )
    [got] = receiver.wait_for(1)
    assert raw.status_code == 200 and raw.http_version == "2"
    assert got.http_version == "2"
    assert got.path == "/hook?x=1&y=%20"
    assert got.body == BODY
    assert header(got, "x-custom") == "a  b\t c"
    assert header(got, "content-length") == str(len(BODY))
    names = {name for name, _ in got.headers}
    assert not names & {b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"te"}


def test_an_http11_only_tls_receiver_is_reached_over_http11_and_remembered(tls_receiver):
    receiver = tls_receiver(alpn=("http/1.1",))
    first = send(receiver.url())
    second = send(receiver.url())
    assert [item.http_version for item in receiver.wait_for(2)] == ["1.1", "1.1"]
    assert first.http_version == second.http_version == "1.1"
    state = http.pool_state()
    # The second attempt went straight to the HTTP/1.1 pool: one kept-alive connection, no HTTP/2.
    assert state["http2"]["connections"] == 0
    assert state["idle"] == 1


def sends_at_once(receiver, count: int) -> tuple[list, dict]:
    """After one attempt (the origin is known to speak HTTP/2), `count` at once to a slow receiver:
    their results, and the HTTP/2 pool state while all of them were at the receiver."""
    send(receiver.url())
    results = []
    threads = [threading.Thread(target=lambda: results.append(send(receiver.url()))) for _ in range(count)]
    for thread in threads:
        thread.start()
    receiver.wait_for(count + 1)
    during = http.pool_state()["http2"]
    for thread in threads:
        thread.join()
    return results, during


def test_concurrent_attempts_to_one_origin_are_streams_of_one_connection(tls_receiver):
    receiver = tls_receiver(respond=Reply(delay=0.5))
    results, during = sends_at_once(receiver, 8)
    assert [r.status_code for r in results] == [200] * 8
    assert receiver.max_in_flight == 8
    assert during["connections"] == 1 and during["streams"] == 8 and during["active"] == 1
    assert http.pool_state()["http2"] == {"connections": 1, "active": 0, "idle": 1, "streams": 0}


def test_past_the_receivers_stream_limit_a_second_connection_opens(tls_receiver):
    receiver = tls_receiver(respond=Reply(delay=0.5), max_streams=3)
    results, during = sends_at_once(receiver, 7)
    assert [r.status_code for r in results] == [200] * 7
    assert during["connections"] == 3 and during["streams"] == 7
    assert receiver.max_in_flight == 7


def test_a_mixed_batch_reaches_each_receiver_over_its_protocol(tls_receiver):
    modern, legacy = tls_receiver(), tls_receiver(alpn=("http/1.1",))
    results = {}

    def attempt(index):
        target = modern if index % 2 else legacy
        results[index] = send(target.url(path=f"/{index}"), body=f"call {index}".encode())

    threads = [threading.Thread(target=attempt, args=(index,)) for index in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {results[i].http_version for i in range(1, 10, 2)} == {"2"}
    assert {results[i].http_version for i in range(0, 10, 2)} == {"1.1"}
    assert {item.http_version for item in modern.wait_for(5)} == {"2"}
    assert {item.http_version for item in legacy.wait_for(5)} == {"1.1"}
    assert sorted(item.body for item in modern.received) == sorted(
        f"call {i}".encode() for i in range(1, 10, 2)
    )


def test_the_total_deadline_cuts_a_trickling_stream_and_spares_the_others(tls_receiver):
    def respond(got):
        return Reply(body=b"0123456789" * 10, trickle=0.2) if got.path == "/slow" else Reply(delay=0.3)

    receiver = tls_receiver(respond=respond)
    send(receiver.url())
    outcome = {}

    def slow():
        try:
            send(receiver.url(path="/slow"), total_timeout=1.0)
        except Exception as exc:
            outcome["slow"] = exc

    thread = threading.Thread(target=slow)
    thread.start()
    receiver.wait_for(2)
    beside = send(receiver.url(path="/beside"))
    thread.join(10)
    assert isinstance(outcome["slow"], http.TotalTimeout)
    assert beside.status_code == 200 and beside.http_version == "2"
    # The cut stream left its connection up for the others.
    assert http.pool_state()["http2"]["connections"] == 1


def test_the_body_cap_keeps_the_first_bytes_and_the_connection_goes_on(tls_receiver):
    receiver = tls_receiver(respond=Reply(body_size=2_000_000))
    raw = send(receiver.url(), body_limit=1000)
    assert raw.truncated and raw.body == b"x" * 1000 and raw.http_version == "2"
    receiver.respond = Reply(body=b"small")
    again = send(receiver.url())
    assert again.body == b"small" and not again.truncated
    assert http.pool_state()["http2"]["connections"] == 1


def test_a_redirect_is_an_answer_not_followed(tls_receiver):
    receiver = tls_receiver(respond=Reply(status=302, headers={"Location": "https://127.0.0.1:1/elsewhere"}))
    raw = send(receiver.url())
    assert raw.status_code == 302 and raw.http_version == "2"
    assert raw.headers["location"] == "https://127.0.0.1:1/elsewhere"
    assert len(receiver.wait_for(1)) == 1


def test_the_ssrf_guard_refuses_a_name_resolving_inward(tls_receiver, guard_strict, monkeypatch):
    receiver = tls_receiver()
    real = socket.getaddrinfo

    # getaddrinfo answers for a made-up name: what is under test is what the guard does with it.
    def inward(host, *args, **kwargs):
        return real("127.0.0.1" if host == "inward.test" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", inward)
    with pytest.raises(SsrfBlocked, match="inward.test resolves to 127.0.0.1"):
        send(receiver.url(host="inward.test"))
    assert receiver.received == []


def test_with_http2_off_every_receiver_gets_http11(tls_receiver, callbacks_settings):
    callbacks_settings(HTTP2=False)
    receiver = tls_receiver()
    raw = send(receiver.url())
    assert raw.http_version == "1.1"
    assert receiver.wait_for(1)[0].http_version == "1.1"


def test_the_workers_gauges_split_connections_and_requests_by_protocol(tls_receiver):
    receiver = tls_receiver(respond=Reply(delay=0.5))
    legacy = tls_receiver(respond=Reply(delay=0.5), alpn=("http/1.1",))
    send(receiver.url())
    send(legacy.url())
    threads = [threading.Thread(target=send, args=(target.url(),)) for target in (receiver, receiver, legacy)]
    for thread in threads:
        thread.start()
    receiver.wait_for(3)
    legacy.wait_for(2)
    exported = worker._pool_state()
    gauges = {
        (state, protocol): metrics.POOL_CONNECTIONS.labels(state, protocol)._value.get()
        for state in ("active", "idle")
        for protocol in ("1.1", "2")
    }
    in_flight = {
        protocol: metrics.REQUESTS_IN_FLIGHT.labels(protocol)._value.get() for protocol in ("1.1", "2")
    }
    for thread in threads:
        thread.join()
    assert exported["http2"]["streams"] == 2
    assert gauges[("active", "2")] == 1 and gauges[("active", "1.1")] == 1
    assert in_flight == {"1.1": 1, "2": 2}


class H2Receiver:
    """An HTTP/2 receiver (h2 over Python's ssl on 127.0.0.1) of the test CA, each connection served
    by a thread of its own; `_exchange` says what one connection does. `received` counts the
    requests each connection got, in the order the connections came."""

    def __init__(self, server_cert):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_cert.configure_cert(context)
        context.set_alpn_protocols(["h2"])
        self._context = context
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.received: list[int] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/hook"

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed: the test is over
            self.received.append(0)
            threading.Thread(target=self._serve, args=(client, len(self.received) - 1), daemon=True).start()

    def _serve(self, client, index):
        try:
            with client, self._context.wrap_socket(client, server_side=True) as tls:
                self._exchange(tls, index)
        except (OSError, h2.exceptions.ProtocolError) as exc:
            self._failed(exc)

    def _failed(self, exc):
        pass  # the client left (it closes a connection once nothing is left on it)

    def _exchange(self, tls, index):
        raise NotImplementedError

    @staticmethod
    def _server(max_streams: int | None = None) -> h2.connection.H2Connection:
        """The server side of one connection, its SETTINGS ready to send (allowing `max_streams`)."""
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
        if max_streams is not None:
            conn.local_settings = h2.settings.Settings(
                client=False, initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: max_streams}
            )
        conn.initiate_connection()
        return conn

    def _take(self, conn, data, index) -> list[int]:
        """The streams whose requests `data` completed."""
        ended = []
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self.received[index] += 1
                ended.append(event.stream_id)
        return ended

    @staticmethod
    def _answer(conn, stream_id):
        conn.send_headers(stream_id, [(b":status", b"200"), (b"content-length", b"2")])
        conn.send_data(stream_id, b"ok", end_stream=True)

    def close(self):
        self._listener.close()


class RetiringReceiver(H2Receiver):
    """Retires its first connection as servers do after so many requests: once two streams are open
    on it, it answers the first and sends a GOAWAY accepting that one alone; every later connection
    answers whatever it gets."""

    def _exchange(self, tls, index):
        conn = self._server()
        tls.sendall(conn.data_to_send())
        pending = []
        while data := tls.recv(65536):
            pending += self._take(conn, data, index)
            if index > 0 or self.received[index] == 1:
                for stream_id in pending:
                    self._answer(conn, stream_id)
                pending.clear()
            elif len(pending) == 2:
                self._answer(conn, pending[0])
                conn.close_connection(last_stream_id=pending[0])
                pending.clear()
            tls.sendall(conn.data_to_send())


class LateSettingsReceiver(H2Receiver):
    """Allows one stream a connection, enforced from its first byte as hypercorn does: a second open
    stream ends the connection (`broken` counts those). Its second connection says so late, a
    second after the handshake; every request is answered after `delay` seconds."""

    def __init__(self, server_cert, delay=0.5):
        super().__init__(server_cert)
        self.delay = delay
        self.broken = 0

    def _failed(self, exc):
        if isinstance(exc, h2.exceptions.TooManyStreamsError):
            self.broken += 1

    def _exchange(self, tls, index):
        conn = self._server(max_streams=1)
        if index == 1:
            time.sleep(1.0)  # what the client sends meanwhile waits in the socket
        tls.sendall(conn.data_to_send())
        while data := tls.recv(65536):
            ended = self._take(conn, data, index)
            for stream_id in ended:  # grows with the requests that came meanwhile
                time.sleep(self.delay)
                # What the client sent meanwhile counts before the answer: a stream opened past
                # the limit ends the connection.
                tls.settimeout(0)
                try:
                    while more := tls.recv(65536):
                        ended += self._take(conn, more, index)
                except (ssl.SSLWantReadError, BlockingIOError):
                    pass
                finally:
                    tls.settimeout(None)
                self._answer(conn, stream_id)
                tls.sendall(conn.data_to_send())


def test_a_new_connection_takes_no_second_stream_before_the_receiver_says_how_many(test_ca, trusting_test_ca):
    receiver = LateSettingsReceiver(test_ca[1])
    try:
        send(receiver.url())  # the origin speaks HTTP/2 and allows one stream a connection
        results = []
        threads = [threading.Thread(target=lambda: results.append(send(receiver.url()))) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [r.status_code for r in results] == [200] * 3
        assert receiver.broken == 0
        # One went on the first connection, one opened the second, whose settings came late; the
        # third waited for them rather than take a second stream there, and opened a third.
        assert receiver.received == [2, 1, 1]
    finally:
        forget_pools()
        receiver.close()


class SilentFirstReceiver(H2Receiver):
    """Its first connection completes the TLS handshake and then sends nothing at all, not even its
    SETTINGS; every later connection answers whatever it gets at once."""

    def __init__(self, server_cert):
        super().__init__(server_cert)
        self.first_heard = threading.Event()

    def _exchange(self, tls, index):
        if index == 0:
            while tls.recv(65536):
                self.first_heard.set()
            return
        conn = self._server()
        tls.sendall(conn.data_to_send())
        while data := tls.recv(65536):
            for stream_id in self._take(conn, data, index):
                self._answer(conn, stream_id)
            tls.sendall(conn.data_to_send())


def test_a_connection_whose_settings_never_come_is_waited_for_once(test_ca, trusting_test_ca):
    receiver = SilentFirstReceiver(test_ca[1])
    first = {}

    def first_attempt():
        try:
            send(receiver.url(), total_timeout=3.0)
        except Exception as exc:
            first["error"] = exc

    try:
        stuck = threading.Thread(target=first_attempt)
        stuck.start()
        assert receiver.first_heard.wait(5)
        # Six more, each allowed half a second to connect and two seconds in all. Waiting in turn
        # for the silent connection's settings, half a second each, the last would start past its
        # deadline; one wait tells them all to pass it by.
        results = []
        threads = [
            threading.Thread(
                target=lambda: results.append(send(receiver.url(), connect_timeout=0.5, total_timeout=2.0))
            )
            for _ in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stuck.join()
        assert [r.status_code for r in results] == [200] * 6
        assert receiver.received == [0, 6]
        assert isinstance(first["error"], http.TotalTimeout)
    finally:
        forget_pools()
        receiver.close()


def test_a_stream_the_receiver_refused_with_goaway_is_sent_again_on_a_new_connection(
    test_ca, trusting_test_ca
):
    receiver = RetiringReceiver(test_ca[1])
    try:
        assert send(receiver.url()).http_version == "2"  # the first connection's first stream
        results = []
        threads = [threading.Thread(target=lambda: results.append(send(receiver.url()))) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # The refused stream was never processed: it went again, on a second connection, and succeeded.
        assert [r.status_code for r in results] == [200, 200]
        assert receiver.received == [3, 1]
    finally:
        forget_pools()
        receiver.close()

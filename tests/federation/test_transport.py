"""The HTTP client to peers (``federation.transport`` → ``plumbing.outbound.kept_alive_post``): one connection
kept open between messages to a peer, and a message posted once more when a kept connection turns out to be
closed (the door answers a message id it saw with its first answer)."""

from __future__ import annotations

import contextlib
import http.server
import threading

import pytest
import requests

from federation import transport


class _Door(http.server.BaseHTTPRequestHandler):
    """Answers every POST with 200 ``ok`` over HTTP/1.1 (the connection stays open); ``close_after``: the
    server closes each connection after that many answers, without saying so (as an idle timeout does)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802 — http.server's name
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        self.server.posts += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
        self.answered += 1
        if self.server.close_after and self.answered >= self.server.close_after:
            self.close_connection = (
                True  # no "Connection: close" header: the client learns it on its next use
            )

    def setup(self):
        super().setup()
        self.answered = 0
        self.server.connections += 1

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _serving(close_after: int = 0):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Door)
    server.posts = server.connections = 0
    server.close_after = close_after
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}/federation/v1/messages/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def loopback(settings):
    settings.FEDERATION_ALLOW_PRIVATE_URLS = True
    settings.FEDERATION_TIMEOUT_SECONDS = 5


def test_messages_to_a_peer_share_one_kept_connection(loopback):
    with _serving() as (server, url):
        for _ in range(3):
            assert (
                transport.post(url, data=b"{}", headers={"content-type": "application/json"}).status_code
                == 200
            )
    assert (server.posts, server.connections) == (3, 1)


def test_a_kept_connection_the_peer_closed_is_replaced_and_the_message_posted_again(loopback, monkeypatch):
    with _serving(close_after=1) as (server, url):
        # The pool would notice most closed connections before using them: make it trust a closed one, as it
        # must when the peer closes it at the very moment it is reused.
        monkeypatch.setattr("urllib3.connectionpool.is_connection_dropped", lambda conn: False)
        for _ in range(3):
            assert (
                transport.post(url, data=b"{}", headers={"content-type": "application/json"}).status_code
                == 200
            )
    assert server.posts == 3 and server.connections == 3


def test_a_peer_that_refuses_the_connection_is_tried_once(loopback, monkeypatch):
    with _serving() as (server, url):
        pass  # closed: nothing listens on its port any more
    attempts = []
    request = requests.Session.request

    def counted(self, *args, **kwargs):
        attempts.append(args)
        return request(self, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", counted)
    with pytest.raises(requests.ConnectionError):
        transport.post(url, data=b"{}", headers={})
    assert len(attempts) == 1


def test_private_addresses_stay_refused_unless_allowed(settings):
    settings.FEDERATION_ALLOW_PRIVATE_URLS = False
    with _serving() as (server, url), pytest.raises(requests.RequestException):
        transport.post(url, data=b"{}", headers={})
    assert server.posts == 0

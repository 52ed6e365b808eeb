"""The webhook transport connects to the address it checked: even when the URL check is passed (as a DNS
rebinding between the check and the connection would make it), a private or loopback target is refused at
connection time unless development allows private URLs. A real local HTTP server stands in for a partner."""

from __future__ import annotations

import http.server
import threading

import pytest
import requests

from notifications import channels


@pytest.fixture
def local_server():
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 — the http.server API
            hits.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_port}/hook", hits
    server.shutdown()
    server.server_close()


def test_a_loopback_target_is_refused_at_connection_time_in_production(settings, local_server):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    url, hits = local_server
    with pytest.raises(requests.RequestException):
        channels.http_post(url, data=b"{}", headers={"content-type": "application/json"}, timeout=5)
    assert hits == []


def test_development_may_post_to_a_local_receiver(settings, local_server):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    url, hits = local_server
    response = channels.http_post(
        url, data=b'{"a":1}', headers={"content-type": "application/json"}, timeout=5
    )
    assert response.status_code == 204
    assert hits == [b'{"a":1}']


def test_redirects_are_never_followed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    redirected = []

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            redirected.append(self.path)
            self.send_response(307)
            self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        response = channels.http_post(
            f"http://127.0.0.1:{server.server_port}/", data=b"{}", headers={}, timeout=5
        )
    finally:
        server.shutdown()
        server.server_close()
    assert response.status_code == 307
    assert redirected == ["/"]

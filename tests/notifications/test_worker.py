"""End to end with a REAL Celery worker on Redis and PostgreSQL (issue 5, "Done when").

A dedicated redis-server is started on a free port (so it can be stopped and restarted), the worker
runs as a subprocess against the test database, webhooks go to a local http.server receiver.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from celery.signals import before_task_publish
from django.db import connection, transaction
from standardwebhooks.webhooks import Webhook

from config.celery import app as celery_app
from notifications import services
from notifications.models import Delivery, Notification, OutboxMessage
from referrals import services as rs
from referrals.models import Referral
from tests.factories import subject_data

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
PERSONAL = [v for v in subject_data().values() if isinstance(v, str) and len(v) > 3] + [
    "Motivo confidencial",
    "Nota privada del caso",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=30.0, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class RedisServer:
    def __init__(self):
        self.port = free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_for(lambda: self._up(), 10)

    def _up(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"


class Receiver:
    """A webhook receiver: records every request; ``plan`` lists status codes to answer (then 200);
    ``hold`` makes the first request wait (so the worker can be killed while it is in flight)."""

    def __init__(self):
        self.requests, self.plan, self.hold = [], [], None
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.requests.append(
                    {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                )
                receiver.arrived.set()
                if receiver.hold is not None:
                    hold, receiver.hold = receiver.hold, None
                    hold.wait(20)
                code = receiver.plan.pop(0) if receiver.plan else 200
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self):
        self.server.shutdown()


class Worker:
    def __init__(self, redis_url, tmp_path):
        self.redis_url, self.tmp = redis_url, tmp_path
        self.emails = tmp_path / "emails"
        self.emails.mkdir(exist_ok=True)
        self.log = tmp_path / "worker.log"
        self.proc = None

    def start(self):
        db = connection.settings_dict
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.notifications.worker_settings",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "REDIS_URL": self.redis_url,
            "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
            "TEST_EMAIL_DIR": str(self.emails),
            "PYTHONPATH": str(ROOT),
        }
        celery = str(Path(sys.executable).with_name("celery"))
        self.proc = subprocess.Popen(
            [
                celery,
                "-A",
                "config",
                "worker",
                "--loglevel=INFO",
                "--concurrency=1",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"test-{os.getpid()}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert wait_for(lambda: b"ready" in self.log.read_bytes(), 40), self.log.read_text()[-3000:]

    def kill(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)

    def mails(self) -> list[str]:
        """Every message the worker wrote. Django's file backend names a file by the second and the
        connection object's id, and ends each message with a line of 79 dashes: two messages sent in
        the same second by two short-lived connections can share one file."""
        separator = "\n" + "-" * 79 + "\n"
        messages = []
        for path in sorted(self.emails.iterdir()):
            messages += [m for m in path.read_text(errors="replace").split(separator) if m.strip()]
        return messages


@pytest.fixture
def published():
    """Every task message the test process publishes (to scan its arguments)."""
    messages = []

    def record(sender=None, body=None, headers=None, **kwargs):
        messages.append(
            json.dumps(
                {"task": sender, "body": body, "argsrepr": (headers or {}).get("argsrepr")}, default=str
            )
        )

    before_task_publish.connect(record, weak=False)
    yield messages
    before_task_publish.disconnect(record)


@pytest.fixture
def stack(transactional_db, tmp_path, settings, published):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    redis = RedisServer()
    redis.start()
    old = celery_app.conf.broker_url
    celery_app.conf.broker_url = redis.url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    worker = Worker(redis.url, tmp_path)
    worker.start()
    receiver = Receiver()
    yield redis, worker, receiver
    receiver.close()
    worker.stop()
    redis.stop()
    celery_app.conf.broker_url = old
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def parties(iom, dp, make_user):
    from accounts.actor import actor_for_user
    from accounts.choices import Role

    iom_cw = make_user(iom, Role.CASEWORKER, username="iom.cw", email="iom.cw@example.org")
    make_user(dp, Role.CASEWORKER, username="dp.cw", email="dp.cw@example.org", language="es")
    make_user(dp, Role.SUPERVISOR, username="dp.sup", email="dp.sup@example.org", language="en")
    return actor_for_user(iom_cw)


def send(make_referral, actor, dp):
    return make_referral(actor, dp, path=[(actor, "send")])


def delivered(referral):
    qs = Delivery.objects.filter(outbox__referral=referral)
    return qs.exists() and not qs.exclude(state="succeeded").exists()


def scan(texts):
    for text in texts:
        for value in PERSONAL:
            assert value not in text, "personal data found"


def test_sent_referral_is_delivered_by_the_worker_then_a_note_and_no_personal_data(
    stack, parties, dp, make_referral, published
):
    redis, worker, receiver = stack
    _, secret = services.webhook_create(
        institution=dp, url=receiver.url, events=["referral.requested", "referral.note_added"]
    )
    referral = send(make_referral, parties, dp)
    assert wait_for(lambda: delivered(referral) and len(receiver.requests) == 1), worker.log.read_text()[
        -3000:
    ]
    assert set(Notification.objects.filter(referral=referral).values_list("user__username", flat=True)) == {
        "dp.cw",
        "dp.sup",
    }
    mails = worker.mails()
    assert len(mails) == 2 and any(referral.reference in m for m in mails)
    payload = Webhook(secret).verify(receiver.requests[0]["body"], receiver.requests[0]["headers"])
    assert payload["data"]["reference"] == referral.reference
    # a note: the webhook and the other side are told, the body never is
    dp_actor = __import__("accounts.actor", fromlist=["x"]).actor_for_user(
        __import__("accounts.models", fromlist=["x"]).User.objects.get(username="dp.cw")
    )
    rs.note_create(actor=dp_actor, referral_id=referral.pk, body="Nota privada del caso")
    assert wait_for(lambda: len(receiver.requests) == 2 and delivered(referral))
    scan(worker.mails())
    scan(r["body"].decode() + json.dumps(r["headers"]) for r in receiver.requests)
    scan(published)
    assert published, "tasks were published"
    scan([worker.log.read_text(errors="replace")])


def test_rolled_back_transaction_sends_nothing(stack, parties, dp, make_referral):
    redis, worker, receiver = stack
    services.webhook_create(institution=dp, url=receiver.url, events=["referral.requested"])
    with pytest.raises(RuntimeError), transaction.atomic():
        send(make_referral, parties, dp)
        raise RuntimeError("rollback")
    assert not Referral.objects.exists()
    # a sweep runs on the worker: still nothing to send
    from notifications.tasks import sweep_outbox

    sweep_outbox.delay()
    time.sleep(3)
    assert receiver.requests == [] and worker.mails() == [] and not OutboxMessage.objects.exists()
    assert not Notification.objects.exists()


def test_redis_down_while_sending_then_delivered_after_it_returns(stack, parties, dp, make_referral):
    redis, worker, receiver = stack
    services.webhook_create(institution=dp, url=receiver.url, events=["referral.requested"])
    redis.stop()
    started = time.monotonic()
    referral = send(make_referral, parties, dp)
    assert time.monotonic() - started < 15  # the request is not held up by the broker
    assert Referral.objects.filter(pk=referral.pk, status="requested").exists()
    assert OutboxMessage.objects.get(referral=referral).state == "pending"
    redis.start()  # same port: the worker reconnects
    from notifications.tasks import sweep_outbox

    assert wait_for(lambda: _try_delay(sweep_outbox) and True, 20)
    assert wait_for(lambda: delivered(referral) and len(receiver.requests) == 1, 40), worker.log.read_text()[
        -3000:
    ]
    assert len(worker.mails()) == 2


def _try_delay(task):
    try:
        task.delay()
        return True
    except Exception:
        return False


def test_worker_killed_mid_delivery_delivers_once(stack, parties, dp, make_referral):
    redis, worker, receiver = stack
    _, secret = services.webhook_create(institution=dp, url=receiver.url, events=["referral.requested"])
    receiver.hold = threading.Event()
    referral = send(make_referral, parties, dp)
    assert receiver.arrived.wait(30), worker.log.read_text()[-3000:]
    worker.kill()
    worker.start()
    from notifications.tasks import sweep_outbox

    sweep_outbox.delay()
    assert wait_for(lambda: delivered(referral), 40), worker.log.read_text()[-3000:]
    time.sleep(2)
    delivery = Delivery.objects.get(outbox__referral=referral, channel="webhook")
    assert delivery.state == "succeeded"
    assert [a.succeeded for a in delivery.attempt_log.all()] == [True]
    # every request the receiver saw is the same message: a receiver deduplicating on webhook-id acts once
    assert len({r["headers"]["webhook-id"] for r in receiver.requests}) == 1
    for r in receiver.requests:
        Webhook(secret).verify(r["body"], r["headers"])
    assert Notification.objects.filter(referral=referral).count() == 2
    assert len(worker.mails()) == 2


def test_receiver_failing_twice_then_succeeding(stack, parties, dp, make_referral):
    redis, worker, receiver = stack
    _, secret = services.webhook_create(institution=dp, url=receiver.url, events=["referral.requested"])
    receiver.plan = [500, 502]
    referral = send(make_referral, parties, dp)
    assert wait_for(lambda: delivered(referral), 40), worker.log.read_text()[-3000:]
    delivery = Delivery.objects.get(outbox__referral=referral, channel="webhook")
    assert [a.succeeded for a in delivery.attempt_log.all()] == [False, False, True]
    assert [a.status_code for a in delivery.attempt_log.all()] == [500, 502, 200]
    assert len(receiver.requests) == 3
    assert len({r["headers"]["webhook-id"] for r in receiver.requests}) == 1
    for r in receiver.requests:
        Webhook(secret).verify(r["body"], r["headers"])

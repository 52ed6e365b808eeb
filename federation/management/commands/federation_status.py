"""``manage.py federation_status``: this node, its peers, last contact, the outbox (messages waiting, since
when, the last error class, the next try), failures, messages the peer answered with a problem."""

from django.conf import settings
from django.core.management.base import BaseCommand

from federation import keys, services


def _when(value) -> str:
    return value.isoformat(timespec="seconds") if value else "never"


def _queue(row) -> str:
    """The outbox's head: since when messages wait, the last error class, the next try."""
    if not row["waiting"]:
        return ""
    parts = [f"since {_when(row['oldest_waiting_at'])}"]
    if row["last_error"]:
        parts.append(f"last error {row['last_error']}")
    parts.append(f"next try {_when(row['next_attempt_at']) if row['next_attempt_at'] else 'now'}")
    return " (" + ", ".join(parts) + ")"


def _witnessed(row: dict) -> str:
    """The witnessing of the peer's audit log: the last checkpoint cosigned, the last one refused."""
    size = row["witnessed_tree_size"]
    text = f"witnessed {size} ({_when(row['witnessed_at'])})" if size is not None else "witnessed never"
    if row["checkpoint_conflict_at"]:
        text += f"  CHECKPOINT CONFLICT {_when(row['checkpoint_conflict_at'])}"
    return text


class Command(BaseCommand):
    help = "List the peers (by URL): fingerprint, last contact, messages waiting, failures."

    def handle(self, *args, **options):
        if keys.enabled():
            card = services.own_card()
            self.stdout.write(f"this node: {settings.NODE_URL}  fingerprint {card.fingerprint}")
        else:
            self.stdout.write("this node: federation off (NODE_URL not set)")
        rows = services.status_rows()
        if not rows:
            self.stdout.write("no peers")
        for row in rows:
            self.stdout.write(
                f"{row['url']}  fingerprint {row['fingerprint']}  "
                f"institutions {','.join(row['institutions']) or '-'}  "
                f"last contact {_when(row['last_contact_at'])}  waiting {row['waiting']}{_queue(row)}  "
                f"failures {row['failures']} (last {_when(row['last_failure_at'])})  "
                f"answered with a problem {row['rejected']}  {_witnessed(row)}"
            )

"""``manage.py audit_witness URL --token T --state FILE [--init VKEY]``: witness a partner's audit log
(contract §7.3). Verifies the latest checkpoint's signature against the pinned key and its consistency
with the last one witnessed, cosigns it, posts the cosignature, stores it; exit 1 and no cosignature on any
inconsistency. Run it hourly from cron (docs/audit.md)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit import witness


class Command(BaseCommand):
    help = "Witnesses a partner's audit log: verifies, cosigns and stores its latest checkpoint."

    def add_arguments(self, parser):
        parser.add_argument("url", help="The log's site (https://host[:port]) or its /api/v1/ base.")
        parser.add_argument("--token", required=True, help="A bearer token with the scope audit:read.")
        parser.add_argument("--state", required=True, metavar="FILE", help="The witness's state (JSON).")
        parser.add_argument(
            "--init",
            metavar="VKEY",
            help="Create FILE pinning the log's verifier key (GET /api/v1/audit/checkpoints/key/ → vkey, "
            "checked out of band), with a new witness key.",
        )
        parser.add_argument(
            "--name", help="With --init: the witness's key name (default: host/audit-witness)."
        )

    def handle(self, *args, **options):
        path = Path(options["state"])
        try:
            if options["init"]:
                state = witness.init(path, options["init"], options["name"])
                self.stdout.write(f"state created in {path}; witness key: {witness.witness_vkey(state)}")
            summary = witness.run(witness.Log(options["url"], options["token"]), path)
        except witness.WitnessError as exc:
            raise CommandError(f"refused, nothing cosigned: {exc}", returncode=1) from None
        previous = summary["previous_tree_size"]
        since = (
            f"consistent with tree size {previous}" if previous is not None else "first checkpoint witnessed"
        )
        self.stdout.write(f"cosigned tree size {summary['tree_size']} ({since}) as {summary['witness']}")

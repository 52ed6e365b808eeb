"""The queue's ``event_id`` loses its unique index (issue 21: the cost of an append).

Every audited request INSERTs one queue row; the unique index on ``event_id`` (a random UUID) was a second
B-tree to update on each of them, and nothing reads the queue by ``event_id``. Event ids stay unique where
it matters: ``audit_auditevent``'s primary key, when the sequencer seals them (a forged duplicate in the
queue would stop the sealing there, and ``verify_audit`` reports the stalled queue, as it would for a
forged row carrying the id of an event already sealed, which the index never prevented).

SQLite rebuilds the table to drop the index, which drops its triggers: they are created again, exactly as
migration 0008 made them (and again on the way back).
"""

import importlib

from django.db import migrations, models

_queue = importlib.import_module("audit.migrations.0008_audit_queue")


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0008_audit_queue"),
    ]

    operations = [
        # (on the way back, after the table's rebuild)
        migrations.RunPython(migrations.RunPython.noop, _queue.create_triggers, elidable=False),
        migrations.AlterField(
            model_name="auditqueue",
            name="event_id",
            field=models.UUIDField(),
        ),
        migrations.RunPython(_queue.create_triggers, migrations.RunPython.noop, elidable=False),
    ]

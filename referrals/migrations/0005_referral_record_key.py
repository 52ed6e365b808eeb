"""Every referral gets its fixed random record key (contract §7.5), existing ones included.

The field is added nullable, each existing referral is given its own random key (a default on ``AddField``
would give every existing row the same one), then the field becomes required.
"""

from django.db import migrations, models

import referrals.models

BATCH = 2000


def assign_record_keys(apps, schema_editor):
    Referral = apps.get_model("referrals", "Referral")
    pending = Referral.objects.using(schema_editor.connection.alias).filter(record_key__isnull=True)
    while True:
        batch = list(pending.only("pk").order_by("pk")[:BATCH])
        if not batch:
            return
        for referral in batch:
            referral.record_key = referrals.models.new_record_key()
        Referral.objects.using(schema_editor.connection.alias).bulk_update(batch, ["record_key"])


class Migration(migrations.Migration):
    dependencies = [
        ("referrals", "0004_reference_counter_without_foreign_key"),
    ]

    operations = [
        migrations.AddField(
            model_name="referral",
            name="record_key",
            field=models.PositiveSmallIntegerField(editable=False, null=True),
        ),
        migrations.RunPython(assign_record_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="referral",
            name="record_key",
            field=models.PositiveSmallIntegerField(default=referrals.models.new_record_key, editable=False),
        ),
    ]

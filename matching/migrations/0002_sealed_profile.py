"""The per-token profile is sealed (AES-GCM under a key derived from BLIND_INDEX_KEY) instead of stored as
plain JSON of keyed integers. Existing profiles are dropped here: ``manage.py match_backfill`` recomputes
them (until then a case is found by its blocking tokens but not scored)."""

from django.db import migrations, models


def drop_profiles(apps, schema_editor):
    apps.get_model("matching", "MatchProfile").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("matching", "0001_initial")]

    operations = [
        migrations.RunPython(drop_profiles, migrations.RunPython.noop),
        migrations.RemoveField(model_name="matchprofile", name="data"),
        migrations.AddField(
            model_name="matchprofile", name="sealed", field=models.TextField(default=""), preserve_default=False
        ),
    ]

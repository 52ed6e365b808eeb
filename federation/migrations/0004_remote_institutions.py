"""Peers pinned before remote institutions existed: their institutions become remote institutions here."""

from django.db import migrations


def forwards(apps, schema_editor):
    Institution = apps.get_model("accounts", "Institution")
    Peer = apps.get_model("federation", "Peer")
    for peer in Peer.objects.all():
        for code in peer.institutions:
            institution, created = Institution.objects.get_or_create(
                code=code, defaults={"name": code, "node": peer.url}
            )
            if not created and institution.node != peer.url:
                institution.node = peer.url
                institution.save(update_fields=["node"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_institution_node"),
        ("federation", "0003_peer_witnessing"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]

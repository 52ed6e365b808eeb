"""Keep a user's institution groups in line with their role (only services grant object permissions)."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import User
from .services import sync_user_groups


@receiver(post_save, sender=User)
def _sync_groups(sender, instance: User, raw: bool = False, **kwargs):
    if not raw:
        sync_user_groups(user=instance)

from django.apps import AppConfig


class MatchingConfig(AppConfig):
    """Finding the same person across cases, over keyed tokens only (issue 13, contract §6.2)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "matching"
    verbose_name = "Case matching"

from django.apps import AppConfig


class MatchingConfig(AppConfig):
    """Finding the same person across cases, over keyed tokens only (issue 13, contract §6.2)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "matching"
    verbose_name = "Case matching"

    def ready(self):
        from referrals import reads, signals
        from referrals.models import Subject

        from . import indexing, matcher

        signals.subject_saved.connect(
            indexing.on_subject_saved, sender=Subject, dispatch_uid="matching-index"
        )
        signals.subject_erased.connect(
            indexing.on_subject_erased, sender=Subject, dispatch_uid="matching-forget"
        )
        signals.blind_index_key_changed.connect(indexing.on_key_changed, dispatch_uid="matching-reindex")
        reads.register_duplicate_finder(matcher.probable_duplicates)

"""How matches read in the web pages: translated reasons, a percentage, no personal data."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from .matcher import Match

REASON_LABELS = {
    "document_number": _("same document number"),
    "name_exact": _("same name"),
    "name_similar": _("similar name"),
    "date_of_birth": _("same date of birth"),
    "date_of_birth_close": _("close date of birth"),
    "sex": _("same sex"),
    "nationality": _("same nationality"),
}


def match_rows(matches: list[Match]) -> list[dict]:
    """One row per match: the case, its reference, the score in percent and the reasons in words."""
    return [
        {
            "case_id": m.case_id,
            "reference": m.reference,
            "percent": round(m.score * 100),
            "probable": m.probable,
            "reasons": [str(REASON_LABELS[r]) for r in m.reasons],
        }
        for m in matches
    ]

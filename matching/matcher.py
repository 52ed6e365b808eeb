"""Finding the cases that may be the same person as a query — the one core behind the API's
``POST /api/v1/cases/match/``, the case form's duplicate check, the search page and "possible duplicates".

Two queries, whatever the number of cases: (1) the query's blocking tokens are looked up in the
(institution, token) index, restricted to the cases the actor may see, and the cases with the most
tokens in common are kept; (2) their keyed profiles are read and scored (``matching.scoring``).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef

from accounts.actor import Actor
from audit.recorder import record
from referrals.selectors import cases_visible_to

from . import encoding
from .models import MatchProfile, MatchToken
from .scoring import Query, score

#: Scores at or above this mean "probably the same person" (contract §6.2).
THRESHOLD = 0.5
#: Candidates scored per query (those sharing the most blocking tokens with it).
CANDIDATES = 30
MAX_RESULTS = 10
#: The terms a query may carry (every one optional).
TERMS = ("given_name", "family_name", "date_of_birth", "sex", "nationality", "document_number")


@dataclass(frozen=True)
class Match:
    """A case that may be the query's person: ids, score and reasons — no personal data."""

    case_id: object
    reference: str
    score: float
    reasons: tuple[str, ...]

    @property
    def probable(self) -> bool:
        return self.score >= THRESHOLD


def encode_query(
    *,
    given_name: str | None = None,
    family_name: str | None = None,
    date_of_birth: datetime.date | None = None,
    sex: str | None = None,
    nationality: str | None = None,
    document_number: str | None = None,
) -> Query:
    """The query's keyed encodings (computed in memory, never stored)."""
    count, units = encoding.name_units(given_name, family_name)
    document, digits = encoding.document_forms(document_number)
    return Query(
        count=count,
        units=[[u.part, list(u.members), u.exact, u.sp, u.ny, u.bloom] for u in units],
        dob=encoding.dob_variants(date_of_birth) if date_of_birth else None,
        year=encoding.year_token(date_of_birth.year) if date_of_birth else None,
        jan1=bool(date_of_birth and (date_of_birth.month, date_of_birth.day) == (1, 1)),
        sex=encoding.keyed("sex", sex) if sex and sex != "unknown" else None,
        nationality=encoding.keyed("nationality", nationality) if nationality else None,
        document=encoding.keyed("document", document) if document else None,
        digits=encoding.keyed("document_digits", digits) if digits else None,
    )


def find_matches(
    actor: Actor,
    *,
    given_name: str | None = None,
    family_name: str | None = None,
    date_of_birth: datetime.date | None = None,
    sex: str | None = None,
    nationality: str | None = None,
    document_number: str | None = None,
    exclude=None,
    limit: int = MAX_RESULTS,
    min_score: float = 0.0,
) -> list[Match]:
    """The best-scoring cases the actor may see (each once, best first, at most ``limit``)."""
    date_of_birth = encoding.as_date(date_of_birth)
    tokens = encoding.query_blocking_tokens(
        given=given_name, family=family_name, date_of_birth=date_of_birth, document_number=document_number
    )
    if not tokens:
        return []
    query = encode_query(
        given_name=given_name,
        family_name=family_name,
        date_of_birth=date_of_birth,
        sex=sex,
        nationality=nationality,
        document_number=document_number,
    )
    visible = cases_visible_to(actor).filter(pk=OuterRef("case_id"), erased_at__isnull=True)
    hits = MatchToken.objects.filter(institution=actor.institution, token__in=tokens)
    if exclude is not None:
        hits = hits.exclude(case_id=exclude)
    candidates = list(
        hits.filter(Exists(visible))
        .values("case_id")
        .annotate(hits=Count("id"))
        .order_by("-hits", "case_id")
        .values_list("case_id", flat=True)[:CANDIDATES]
    )
    if not candidates:
        return []
    rows = MatchProfile.objects.filter(case_id__in=candidates).values_list(
        "case_id", "case__reference", "sealed"
    )
    matches = []
    for case_id, reference, sealed in rows:
        try:
            profile = encoding.open_profile(case_id, sealed)
        except encoding.crypto.KeyUnavailable:
            continue  # computed under another BLIND_INDEX_KEY: found again once reindexed (rotate_keys)
        probability, reasons, _levels = score(query, profile)
        if probability >= min_score:
            matches.append(Match(case_id, reference, round(probability, 3), tuple(reasons)))
    matches.sort(key=lambda m: (-m.score, m.reference))
    return matches[:limit]


def search(actor: Actor, *, by: str, terms: dict, exclude=None, min_score: float = 0.0) -> list[Match]:
    """``find_matches`` and its audit event ``case.searched`` (how and how many — never the terms)."""
    matches = find_matches(actor, exclude=exclude, min_score=min_score, **terms)
    record(
        actor=actor,
        action="case.searched",
        object_type="case",
        institutions=[actor.institution],
        detail={
            "by": by,
            "fields": sorted(name for name, value in terms.items() if value),
            "matches": len(matches),
            "probable": sum(1 for m in matches if m.probable),
        },
    )
    return matches


def probable_duplicates(actor: Actor, *, terms: dict, by: str, exclude=None) -> list[Match]:
    """The cases probably of the same person (score ≥ ``THRESHOLD``), the search recorded — registered as
    the core's duplicate finder (``referrals.reads.possible_duplicates``)."""
    return search(
        actor, by=by, terms={name: terms.get(name) for name in TERMS}, exclude=exclude, min_score=THRESHOLD
    )

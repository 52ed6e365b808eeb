"""A Fellegi–Sunter score over keyed encodings: agreement levels per field, log2(m/u) weights, a prior.

The weights are log-likelihood ratios ``log2(m/u)`` — m: how often true matches show the level, u: how often
non-matches among the blocked candidates do — measured on the labelled set of ``bench/matching.py`` (which
prints the measured ratios next to these) and rounded. The sum with the prior is turned into a probability,
so ``score ≥ 0.5`` reads "more likely the same person than not" (contract §6.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Odds, before comparing anything, that a blocked candidate is the person (log2).
PRIOR = -7.0

NAME_WEIGHTS = {"exact": 7.5, "strong": 6.0, "good": 4.0, "partial": -1.5, "none": -7.0, "missing": 0.0}
DOB_WEIGHTS = {"exact": 5.0, "close": 3.0, "same_year": -3.0, "different": -7.0, "missing": 0.0}
DOCUMENT_WEIGHTS = {"exact": 10.0, "digits": 8.0, "different": -2.0, "missing": 0.0}
SEX_WEIGHTS = {"agree": 0.5, "disagree": -2.0, "missing": 0.0}
NATIONALITY_WEIGHTS = {"agree": 0.7, "disagree": -1.5, "missing": 0.0}

#: Similarity of two name units that share a keyed phonetic code but not the exact token.
PHONETIC_SIMILARITY = 0.92
#: Below this bigram similarity two tokens are unrelated.
MIN_BLOOM_SIMILARITY = 0.55


@dataclass
class Query:
    """A query's keyed encodings (``matching.matcher.encode_query``)."""

    count: int
    units: list  # [part, members, exact, sp, ny, bloom]
    dob: dict[int, str] | None  # full-date token → "exact" | "close"
    year: int | None
    jan1: bool  # the query's date is 1 January (perhaps a placeholder for "only the year is known")
    sex: int | None
    nationality: int | None
    document: int | None
    digits: int | None


def name_level(query_count: int, query_units: list, count: int, units: list) -> str:
    """Align the two names token by token (greedy, best pairs first; joined tokens count for both of
    their members; the parts are ignored so that given and family names may be swapped), then grade.

    Two units are alike when their keyed exact tokens are equal (1.0), else when a keyed phonetic code is
    (``PHONETIC_SIMILARITY``), else by the Dice coefficient of their keyed bigram Bloom filters.
    """
    if not query_count:
        return "missing"
    if not count:
        return "none"
    pairs = []
    for qu in query_units:
        _qp, q_members, q_exact, q_sp, q_ny, q_bloom = qu
        q_bits = q_bloom.bit_count()
        for cu in units:
            if q_exact == cu[2]:
                similarity = 1.0
            elif q_sp == cu[3] or q_ny == cu[4]:
                similarity = PHONETIC_SIMILARITY
            else:
                c_bloom = cu[5]
                similarity = 2 * (q_bloom & c_bloom).bit_count() / (q_bits + c_bloom.bit_count() or 1)
                if similarity < MIN_BLOOM_SIMILARITY:
                    continue
            pairs.append((similarity, len(q_members) + len(cu[1]), qu, cu))
    pairs.sort(key=lambda p: (-p[0], p[1]))
    used_q: dict[int, float] = {}
    used_c: dict[int, float] = {}
    all_exact_in_part = True
    for similarity, _size, qu, cu in pairs:
        if any(m in used_q for m in qu[1]) or any(m in used_c for m in cu[1]):
            continue
        for m in qu[1]:
            used_q[m] = similarity
        for m in cu[1]:
            used_c[m] = similarity
        if similarity < 1.0 or qu[0] != cu[0] or len(qu[1]) != len(cu[1]):
            all_exact_in_part = False
    covered_q = sum(used_q.values()) / query_count
    covered_c = sum(used_c.values()) / count
    if all_exact_in_part and len(used_q) == query_count and len(used_c) == count:
        return "exact"
    best, worst = max(covered_q, covered_c), min(covered_q, covered_c)
    matched = min(len(used_q), len(used_c))
    if best >= 0.88 and (matched >= 2 or worst >= 0.88):
        return "strong"
    if best >= 0.75 and worst >= 0.4:
        return "good"
    if best >= 0.3:
        return "partial"
    return "none"


def dob_level(query: Query, profile: dict) -> str:
    stored = profile.get("d")
    if query.dob is None or stored is None:
        return "missing"
    found = query.dob.get(stored)
    if found:
        return found
    if profile.get("y") == query.year:
        # Only the year is known on one side (1 January placeholder) or the day differs.
        return "close" if query.jan1 else "same_year"
    return "different"


def _pair_level(a, b, *, agree="agree") -> str:
    if a is None or b is None:
        return "missing"
    return agree if a == b else "disagree"


def score(query: Query, profile: dict) -> tuple[float, list[str], dict]:
    """``(probability, reasons, levels)`` of the query and one case's profile being the same person."""
    levels = {
        "name": name_level(query.count, query.units, profile["n"], profile["u"]),
        "dob": dob_level(query, profile),
        "sex": _pair_level(query.sex, profile.get("s")),
        "nationality": _pair_level(query.nationality, profile.get("c")),
    }
    if query.document is not None and profile.get("doc") is not None:
        if query.document == profile["doc"]:
            levels["document"] = "exact"
        elif query.digits is not None and query.digits == profile.get("dig"):
            levels["document"] = "digits"
        else:
            levels["document"] = "different"
    else:
        levels["document"] = "missing"
    weight = (
        PRIOR
        + NAME_WEIGHTS[levels["name"]]
        + DOB_WEIGHTS[levels["dob"]]
        + DOCUMENT_WEIGHTS[levels["document"]]
        + SEX_WEIGHTS[levels["sex"]]
        + NATIONALITY_WEIGHTS[levels["nationality"]]
    )
    probability = 1.0 / (1.0 + math.pow(2.0, -weight))
    reasons = []
    if levels["document"] in ("exact", "digits"):
        reasons.append("document_number")
    if levels["name"] == "exact":
        reasons.append("name_exact")
    elif levels["name"] in ("strong", "good"):
        reasons.append("name_similar")
    if levels["dob"] == "exact":
        reasons.append("date_of_birth")
    elif levels["dob"] == "close":
        reasons.append("date_of_birth_close")
    if levels["sex"] == "agree":
        reasons.append("sex")
    if levels["nationality"] == "agree":
        reasons.append("nationality")
    return probability, reasons, levels

"""Turning a person's identifying data into keyed tokens — the only form in which matching ever sees it.

Nothing here is stored or logged in clear. Every output is an HMAC-SHA256 under a key derived (HKDF, the
same derivation as the blind indexes in ``referrals.crypto``) from ``BLIND_INDEX_KEY`` with its own label
per field and per index, truncated:

* **names** are normalized (accents, case, hyphens, apostrophes, spacing; Spanish particles dropped) and
  split into tokens; each token gives an exact token, a Spanish-aware phonetic code (``spanish_code``) and
  NYSIIS (``jellyfish``), each keyed, and a 64-bit keyed Bloom filter of its letter bigrams (typos);
  adjacent tokens of one part are also joined (``Jean-Baptiste`` = ``Jeanbaptiste``);
* **the date of birth** gives a keyed full-date token and a one-byte keyed year token; the *query* side
  derives the tolerated variants (day/month swap, year ± 1, 1 January placeholder) from its own date;
* **the document number** gives a keyed token of its normalized form and of its digits;
* **blocking tokens** (indexed rows, ``models.MatchToken``) combine a name token's Spanish-aware phonetic
  code with the year of birth, so that a lookup reads only people of about the same age with a similar
  name token (NYSIIS and the Bloom filters serve the scoring, not the lookup: fewer rows per case).

See docs/confidentiality.md ("Matching: what the keyed indexes leak") for what these reveal without keys.
"""

from __future__ import annotations

import datetime
import hmac
import json
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

import jellyfish
from django.conf import settings

from referrals import crypto

#: Parts of a name.
GIVEN, FAMILY = 0, 1

#: Small words that are dropped or added freely ("de la Cruz", "del Carmen", "y").
PARTICLES = frozenset({"de", "del", "la", "las", "los", "y", "e", "da", "das", "do", "dos", "van", "von"})

BLOOM_BITS = 64
BLOOM_HASHES = 2

#: Kinds of blocking tokens (each under its own key).
BLOCK_NAME_YEAR = 1  # phonetic code of a name token + year of birth
BLOCK_NAME = 2  # phonetic code of a name token (queries without a date of birth)
BLOCK_NAME_NO_DOB = 3  # phonetic code of a name token of a person without a recorded date of birth
BLOCK_DOCUMENT = 4  # normalized document number
BLOCK_DOCUMENT_DIGITS = 5  # its digits only (``V-12.345.678`` = ``12345678``)


# --- keys ------------------------------------------------------------------------------------------


def key_for(index: str) -> bytes:
    """The key of one index, derived from BLIND_INDEX_KEY like every blind index (its own HKDF label)."""
    if not settings.BLIND_INDEX_KEY:
        raise crypto.KeyUnavailable("BLIND_INDEX_KEY is not configured")
    return crypto.derive_index_key(f"match:{index}", settings.BLIND_INDEX_KEY)


def seal_profile(case_id, profile: dict) -> str:
    """The profile, encrypted (AES-256-GCM, ``referrals.crypto``'s format) under the ``match:profile`` key
    and bound to its case: whoever holds the database sees the blocking tokens only, not the per-token
    encodings a frequency or pattern-mining attack would work on."""
    raw = json.dumps(profile, separators=(",", ":")).encode()
    return crypto.encrypt_value(key_for("profile"), raw, f"matching.profile:{case_id}")


def open_profile(case_id, sealed: str) -> dict:
    """The profile back (``KeyUnavailable`` under another key or when moved to another case)."""
    return json.loads(crypto.decrypt_value(key_for("profile"), sealed, f"matching.profile:{case_id}"))


def key_version() -> str:
    """Names the BLIND_INDEX_KEY the indexes were computed with (a hash prefix; reveals nothing about it)."""
    if not settings.BLIND_INDEX_KEY:
        raise crypto.KeyUnavailable("BLIND_INDEX_KEY is not configured")
    return crypto.key_fingerprint(settings.BLIND_INDEX_KEY)


def keyed(index: str, value: str, *, nbytes: int = 4) -> int:
    """A truncated HMAC as a signed integer (4 bytes: fits a 32-bit column)."""
    digest = hmac.digest(key_for(index), value.encode(), "sha256")
    return int.from_bytes(digest[:nbytes], "big", signed=nbytes == 4)


@lru_cache(maxsize=65536)
def _bigram_bits(root: bytes, bigram: str) -> int:
    digest = hmac.digest(crypto.derive_index_key("match:bloom", root), bigram.encode(), "sha256")
    bits = 0
    for i in range(BLOOM_HASHES):
        bits |= 1 << (digest[i] % BLOOM_BITS)
    return bits


def bloom(token: str) -> int:
    """A keyed Bloom filter of the token's letter bigrams, padded (``_jose_``): 64 bits, 2 bits a bigram."""
    root = settings.BLIND_INDEX_KEY
    padded = f"_{token}_"
    bits = 0
    for i in range(len(padded) - 1):
        bits |= _bigram_bits(root, padded[i : i + 2])
    return bits


def bloom_dice(a: int, b: int) -> float:
    total = a.bit_count() + b.bit_count()
    return 2 * (a & b).bit_count() / total if total else 0.0


# --- normalization -----------------------------------------------------------------------------------

_NON_LETTERS = re.compile(r"[^a-z]+")


def name_tokens(value: str | None) -> list[str]:
    """Accent- and case-free tokens; hyphens, apostrophes and dots separate; particles dropped."""
    decomposed = unicodedata.normalize("NFKD", value or "")
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    stripped = stripped.replace("ß", "ss").replace("æ", "ae").replace("ø", "o")
    tokens = [t for t in _NON_LETTERS.split(stripped) if t]
    kept = [t for t in tokens if t not in PARTICLES]
    return kept or tokens


def document_forms(value: str | None) -> tuple[str, str]:
    """The normalized document number (``referrals.crypto``; dots and slashes stripped as the contract
    says — a no-op once that function strips them itself) and its digits (when there are at least 5)."""
    normalized = re.sub(r"[./]+", "", crypto.normalize_document_number(value))
    digits = re.sub(r"\D+", "", normalized)
    return normalized, digits if len(digits) >= 5 else ""


# --- phonetic codes ------------------------------------------------------------------------------------

_VOWELS = frozenset("aeiou")


def spanish_code(token: str) -> str:
    """A phonetic key for names as written in Latin America and Haiti.

    Sounds that spellings mix up share one letter: b/v/w → B; c(e,i)/s/z/x → S; c/k/q(u)/ck → K;
    j/y/ll/g(e,i) → Y (``Yeferson`` = ``Jefferson``, ``Yulieth`` = ``Julieth``); ph → F; h is silent;
    doubled letters count once; vowels are dropped after the first letter (a leading vowel is ``A``).
    """
    s = token
    n = len(s)
    out: list[str] = []
    i = 0
    while i < n:
        c = s[i]
        nxt = s[i + 1] if i + 1 < n else ""
        code = ""
        step = 1
        if c in _VOWELS:
            code = "A" if not out else ""
        elif c == "y":
            code = "Y" if nxt in _VOWELS else ("A" if not out else "")
        elif c == "h":
            code = "A" if not out and nxt in _VOWELS else ""
        elif c == "c":
            if nxt == "h":
                code, step = "X", 2
            elif nxt in ("e", "i"):
                code = "S"
            elif nxt in ("k", "c", "q"):
                code, step = "K", 2
            else:
                code = "K"
        elif c == "q":
            code = "K"
            if nxt == "u":
                step = 2
        elif c == "k":
            code = "K"
        elif c == "g":
            after = s[i + 2] if i + 2 < n else ""
            if nxt == "u" and after in ("e", "i"):
                code, step = "G", 2
            elif nxt in ("e", "i"):
                code = "Y"
            else:
                code = "G"
        elif c == "j":
            code = "Y"
        elif c == "l" and nxt == "l":
            code, step = "Y", 2
        elif c in ("b", "v", "w"):
            code = "B"
        elif c in ("s", "z", "x"):
            code = "S"
        elif c == "p" and nxt == "h":
            code, step = "F", 2
        elif c == "t" and nxt == "h":
            code, step = "T", 2
        else:
            code = c.upper()
        if code and (not out or out[-1] != code or code == "A"):
            out.append(code)
        i += step
    return "".join(out) or token[:1].upper()


def nysiis(token: str) -> str:
    return jellyfish.nysiis(token)


# --- encodings of a person ---------------------------------------------------------------------------


@dataclass
class NameUnit:
    """A name token, or two adjacent tokens of one part written as one (``jean`` + ``baptiste``)."""

    part: int
    members: tuple[int, ...]
    exact: int
    sp: int
    ny: int
    bloom: int
    codes: tuple[str, str] = field(default=("", ""), repr=False)


def _unit(part: int, members: tuple[int, ...], token: str, *, keep_codes: bool) -> NameUnit:
    sp, ny = spanish_code(token), nysiis(token)
    return NameUnit(
        part=part,
        members=members,
        exact=keyed("name_exact", token),
        sp=keyed("name_sp", sp),
        ny=keyed("name_ny", ny),
        bloom=bloom(token),
        codes=(sp, ny) if keep_codes else ("", ""),
    )


def name_units(given: str | None, family: str | None, *, keep_codes: bool = False) -> tuple[int, list]:
    """``(number of tokens, units)``: every token, then the joined adjacent pairs of each part."""
    units: list[NameUnit] = []
    index = 0
    for part, value in ((GIVEN, given), (FAMILY, family)):
        tokens = name_tokens(value)
        start = index
        for token in tokens:
            units.append(_unit(part, (index,), token, keep_codes=keep_codes))
            index += 1
        for j in range(len(tokens) - 1):
            joined = tokens[j] + tokens[j + 1]
            units.append(_unit(part, (start + j, start + j + 1), joined, keep_codes=keep_codes))
    return index, units


def dob_token(value: datetime.date) -> int:
    return keyed("dob", value.isoformat())


def year_token(year: int) -> int:
    """One byte only: enough to tell "same year" for the 1 January placeholder, little for an attacker."""
    return keyed("dob_year", str(year), nbytes=1)


def _safe_date(year: int, month: int, day: int) -> datetime.date | None:
    try:
        return datetime.date(year, month, day)
    except ValueError:
        return None


def dob_variants(value: datetime.date) -> dict[int, str]:
    """Full-date tokens a query tolerates, to ``exact`` or ``close``: day/month swap, year ± 1, 1 January."""
    variants: dict[int, str] = {}
    close = [
        _safe_date(value.year, value.day, value.month),
        _safe_date(value.year - 1, value.month, value.day),
        _safe_date(value.year + 1, value.month, value.day),
        datetime.date(value.year, 1, 1),
    ]
    for candidate in close:
        if candidate is not None and candidate != value:
            variants[dob_token(candidate)] = "close"
    variants[dob_token(value)] = "exact"
    return variants


def as_date(value) -> datetime.date | None:
    """A stored or submitted date of birth (a ``date``, or an ISO string as some callers pass it)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    return datetime.date.fromisoformat(str(value))


def encode_subject(subject) -> tuple[dict, set[tuple[int, int]]]:
    """What a case's index holds: its profile (all keyed; a query is scored against it) and its blocking
    tokens ``(kind, token)`` (indexed rows that let a query find the case)."""
    count, units = name_units(subject.given_name, subject.family_name, keep_codes=True)
    dob = as_date(subject.date_of_birth)
    document, digits = document_forms(subject.document_number)
    sex = subject.sex if subject.sex and subject.sex != "unknown" else ""
    profile = {
        "n": count,
        "u": [[u.part, list(u.members), u.exact, u.sp, u.ny, u.bloom] for u in units],
        "d": dob_token(dob) if dob else None,
        "y": year_token(dob.year) if dob else None,
        "s": keyed("sex", sex) if sex else None,
        "c": keyed("nationality", subject.nationality) if subject.nationality else None,
        "doc": keyed("document", document) if document else None,
        "dig": keyed("document_digits", digits) if digits else None,
    }
    tokens: set[tuple[int, int]] = set()
    for code in {unit.codes[0] for unit in units}:
        tokens.add((BLOCK_NAME, _block(BLOCK_NAME, code)))
        if dob:
            tokens.add((BLOCK_NAME_YEAR, _block(BLOCK_NAME_YEAR, f"{code}|{dob.year}")))
        else:
            tokens.add((BLOCK_NAME_NO_DOB, _block(BLOCK_NAME_NO_DOB, code)))
    if document:
        tokens.add((BLOCK_DOCUMENT, _block(BLOCK_DOCUMENT, document)))
    if digits:
        tokens.add((BLOCK_DOCUMENT_DIGITS, _block(BLOCK_DOCUMENT_DIGITS, digits)))
    return profile, tokens


def _block(kind: int, value: str) -> int:
    return keyed(f"block:{kind}", value)


def query_blocking_tokens(*, given, family, date_of_birth, document_number) -> list[int]:
    """The tokens to look up for a query: its name codes for the years around its year of birth (or any
    year without one), people without a recorded date of birth, and its document number."""
    tokens: set[int] = set()
    codes = set()
    if given or family:
        codes = {unit.codes[0] for unit in name_units(given, family, keep_codes=True)[1]}
    for code in codes:
        if date_of_birth:
            for year in (date_of_birth.year - 1, date_of_birth.year, date_of_birth.year + 1):
                tokens.add(_block(BLOCK_NAME_YEAR, f"{code}|{year}"))
            tokens.add(_block(BLOCK_NAME_NO_DOB, code))
        else:
            tokens.add(_block(BLOCK_NAME, code))
    document, digits = document_forms(document_number)
    if document:
        tokens.add(_block(BLOCK_DOCUMENT, document))
    if digits:
        tokens.add(_block(BLOCK_DOCUMENT_DIGITS, digits))
    return sorted(tokens)

"""Country and language names for people, from maintained sources (never a hand-made table).

The codes stay ISO (the API, the database): ISO 3166-1 alpha-3 for nationality, ISO 639 (alpha-2, or
alpha-3 when a language has no alpha-2 code) for languages. The *names* come from the Unicode CLDR
through Babel (``Venezuela``, ``criollo haitiano``), in the page's language; the code lists and the
alpha-3 → alpha-2 mapping from pycountry (ISO's own data, with its translations as a fallback for the
few languages CLDR does not name).

Pickers list the region's common nationalities and languages first (the people who cross the Darién and
reach Panama), then every other one in alphabetical order of the name in the reader's language.
"""

from __future__ import annotations

import gettext
from functools import cache

import pycountry
from babel import Locale
from django.utils.translation import get_language

#: Nationalities most often met by IOM and the Defensoría in Panama, in this order.
COMMON_NATIONALITIES = ("VEN", "COL", "ECU", "HTI", "CUB", "CHN", "PER", "PAN", "IND", "AFG", "CMR", "NIC")
#: Languages most often spoken by them (Spanish, Haitian Creole, French, English, Portuguese, Chinese…).
COMMON_LANGUAGES = ("es", "ht", "fr", "en", "pt", "zh", "yue", "ar", "hi", "ps", "fa", "wo")
#: Indigenous languages of Panama and the Darién (ISO 639-3 codes, no alpha-2) and Cantonese.
EXTRA_LANGUAGES = ("yue", "guc", "cuk", "gym", "emp", "noa")


def _language() -> str:
    code = (get_language() or "es").split("-")[0]
    return code if code in ("es", "en") else "es"


@cache
def _locale(language: str) -> Locale:
    return Locale.parse(language)


@cache
def _iso_translation(domain: str, language: str):
    return gettext.translation(domain, pycountry.LOCALES_DIR, languages=[language], fallback=True)


@cache
def _country_alpha2() -> dict[str, str]:
    return {c.alpha_3: c.alpha_2 for c in pycountry.countries}


def country_name(code: str | None, language: str | None = None) -> str:
    """``VEN`` → ``Venezuela`` (es/en); an unknown code is returned as it is."""
    if not code:
        return ""
    language = language or _language()
    alpha2 = _country_alpha2().get(code.upper())
    if alpha2 is None:
        return code
    name = _locale(language).territories.get(alpha2)
    if name:
        return name
    country = pycountry.countries.get(alpha_3=code.upper())
    return _iso_translation("iso3166-1", language).gettext(country.name)


def language_name(code: str | None, language: str | None = None) -> str:
    """``ht`` → ``criollo haitiano`` / ``Haitian Creole``; an unknown code is returned as it is."""
    if not code:
        return ""
    language = language or _language()
    base = code.split("-")[0].lower()
    name = _locale(language).languages.get(base)
    if name:
        return name
    lookup = {"alpha_2": base} if len(base) == 2 else {"alpha_3": base}
    record = pycountry.languages.get(**lookup)
    if record is None:
        return code
    return _iso_translation("iso639-3", language).gettext(record.name)


def language_names(codes, language: str | None = None) -> str:
    return ", ".join(language_name(c, language) for c in codes or [])


@cache
def _language_codes() -> tuple[str, ...]:
    codes = [lang.alpha_2 for lang in pycountry.languages if hasattr(lang, "alpha_2")]
    return tuple(dict.fromkeys([*codes, *EXTRA_LANGUAGES]))


def _sorted_by_name(pairs):
    from unicodedata import normalize

    def key(pair):
        return normalize("NFKD", pair[1]).encode("ascii", "ignore").decode().casefold()

    return sorted(pairs, key=key)


def country_choices(language: str | None = None) -> list:
    """Grouped choices for a ``<select>``: the region's common nationalities, then all the others."""
    language = language or _language()
    from django.utils.translation import gettext as _

    common = [(code, country_name(code, language)) for code in COMMON_NATIONALITIES]
    others = _sorted_by_name(
        (c.alpha_3, country_name(c.alpha_3, language))
        for c in pycountry.countries
        if c.alpha_3 not in COMMON_NATIONALITIES
    )
    return [("", "—"), (_("Most frequent"), common), (_("All countries"), others)]


def language_choices(language: str | None = None) -> list:
    """Grouped choices: the common languages first, then every ISO 639 language with a code we keep."""
    language = language or _language()
    from django.utils.translation import gettext as _

    common = [(code, language_name(code, language)) for code in COMMON_LANGUAGES]
    others = _sorted_by_name(
        (code, language_name(code, language)) for code in _language_codes() if code not in COMMON_LANGUAGES
    )
    return [(_("Most frequent"), common), (_("All languages"), others)]


def is_country_code(code: str) -> bool:
    return code.upper() in _country_alpha2()


def is_language_code(code: str) -> bool:
    return code.lower() in _language_codes()


# --- provinces of Panama (contract §7.2: ISO 3166-2:PA) ------------------------------------------------


@cache
def _subdivision_names() -> dict[str, str]:
    return {s.code: s.name for s in pycountry.subdivisions.get(country_code="PA") or ()}


def province_name(code: str | None, language: str | None = None) -> str:
    """``PA-5`` → ``Darién``: ISO 3166-2's name from pycountry, through its translations in the page's
    language (CLDR names no subdivisions); the official name of ``accounts.choices.Province`` otherwise."""
    if not code:
        return ""
    from accounts.choices import Province

    name = _subdivision_names().get(code)
    if name is None:
        return str(dict(Province.choices).get(code, code))
    return _iso_translation("iso3166-2", language or _language()).gettext(name)


def province_choices(language: str | None = None) -> list[tuple[str, str]]:
    """Every province and comarca of Panama (the codes of ``accounts.choices.Province``) by name."""
    from accounts.choices import Province

    language = language or _language()
    return _sorted_by_name((code, province_name(code, language)) for code in Province.values)

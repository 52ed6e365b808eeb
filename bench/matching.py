"""Case matching (issue 13): quality on a labelled set, latency at 100,000 cases, cost of indexing.

    .venv/bin/python bench/matching.py                 # labelled set + 100,000 cases on SQLite (temp dir)
    .venv/bin/python bench/matching.py --cases 20000   # smaller population for the latency part
    .venv/bin/python bench/matching.py --quality-only  # the labelled set only (seconds)

The labelled set is generated with a fixed seed: people of the region's nationalities (Venezuela first,
Colombia, Ecuador, Haiti, China, Cuba, Afghanistan) registered once, then queried again as a second
registration point would write them — every variant kind of the issue — plus people who are not in the
register, people with the same name born years apart, and relatives who share family names. The keyed
matcher (the real code path: services create the cases, ``matching.matcher.find_matches`` answers) is
printed next to a plaintext fuzzy matcher (Jaro–Winkler on clear names, dates compared in clear) run on the
same set. Prints recall and precision at ``score ≥ 0.5``, per variant kind, and the Fellegi–Sunter ratios
measured on the set next to the weights the scorer uses.
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import statistics
import sys
import time
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEED = 20261129

NAMES = {
    "VEN": (
        "José Luis|María Gabriela|Yeferson|Yorman|Daniela|Andrés Eduardo|Génesis|Yulieth|Jhonny|Wilmer|"
        "Yusbelys|Anderson|Keiber|Dayana|Oriana|Ángel David|Jesús Alberto|Valentina|Deivis|Yorgelis|"
        "Franyelis|Luis Miguel|Carlos Eduardo|Rosmary|Yackeline|Maikel",
        "Rodríguez|Pérez|González|Hernández|García|Martínez|López|Vásquez|Ramírez|Torres|Rojas|Díaz|Mendoza|"
        "Gutiérrez|Castillo|Guerrero|Chacón|Briceño|Colmenares|Zambrano|Villalobos|Quintero|Parra|Urdaneta",
    ),
    "COL": (
        "Juan David|Camilo|Andrés Felipe|Sebastián|Laura Sofía|Yeison|Brayan|Estefanía|Luisa Fernanda|"
        "Jhon Fredy|Yuliana|Duván|Wilson|Marisol|Nicolás",
        "Gómez|Cardona|Restrepo|Ospina|Muñoz|Quintero|Vargas|Moreno|Jiménez|Suárez|Arango|Londoño|Bedoya|Giraldo",
    ),
    "ECU": (
        "Jhon|Kevin|Bryan|Alexis|Mishell|Dayanna|Jostin|Cristian|Anahí|Washington|Jefferson|Maholy",
        "Cedeño|Zambrano|Mendoza|Macías|Vera|Loor|Intriago|Chávez|Quishpe|Guamán|Cevallos|Bravo",
    ),
    "HTI": (
        "Jean|Jean-Baptiste|Mackenson|Wisly|Peterson|Rose-Merline|Marie-Claude|Jean-Claude|Wilner|Dieunel|"
        "Fabiola|Lovelie|Wideline|Roselène|Jean-Robert|Kervens",
        "Joseph|Jean-Louis|Pierre|Saint-Fleur|Dorvil|Louis|Charles|Désir|Baptiste|Thermidor|Petit-Frère|"
        "Jean-Charles|Augustin|Exantus|Métellus",
    ),
    "CHN": (
        "Wei|Fang|Li Na|Jun|Xiaoming|Yan|Hui|Jing|Haoran|Yuting|Zihan|Mingyu",
        "Wang|Zhang|Liu|Chen|Yang|Huang|Zhao|Zhou|Xu|Sun|Ma|Hu",
    ),
    "CUB": (
        "Yordanis|Yoandry|Yuniel|Dayron|Yaimara|Yudith|Osmany|Leandro|Yunior|Yanelis|Dairon|Yusimí",
        "Hernández|Fonseca|Céspedes|Cabrera|Batista|Oliva|Rivero|Sosa|Almaguer|Labrada",
    ),
    "AFG": (
        "Ahmad|Mohammad|Fatima|Zahra|Abdul Rahman|Mariam|Hamid|Nasrin",
        "Ahmadi|Hosseini|Rahimi|Karimi|Sultani|Noori|Haidari",
    ),
}
#: How often each nationality appears (Venezuela first).
WEIGHTS = {"VEN": 40, "COL": 12, "ECU": 12, "HTI": 14, "CHN": 8, "CUB": 8, "AFG": 6}

#: Spellings a second registration point may write for the same name (both directions).
SPELLINGS = [
    ("yeferson", "jefferson"),
    ("mackenson", "makenson"),
    ("vasquez", "vazquez"),
    ("jhonny", "johnny"),
    ("yulieth", "julieth"),
    ("wilmer", "vilmer"),
    ("jhon", "john"),
    ("brayan", "bryan"),
    ("yeison", "jeison"),
    ("yackeline", "jackeline"),
    ("maikel", "michael"),
    ("gonzalez", "gonsalez"),
    ("hernandez", "fernandez"),
    ("jostin", "justin"),
    ("desir", "dezir"),
    ("kervens", "kervins"),
    ("wideline", "vidline"),
    ("cespedes", "sespedes"),
    ("cevallos", "ceballos"),
    ("chavez", "chaves"),
    ("zambrano", "sambrano"),
    ("guaman", "huaman"),
    ("rojas", "roxas"),
]
SPELLING_RULES = [
    ("v", "b"),
    ("b", "v"),
    ("z", "s"),
    ("s", "z"),
    ("ll", "y"),
    ("y", "i"),
    ("j", "y"),
    ("ph", "f"),
]

VARIANTS = [
    "accents_dropped",
    "second_surname_cut",
    "names_swapped",
    "spelling",
    "hyphen_lost",
    "typo",
    "day_month_swap",
    "january_placeholder",
    "year_off_by_one",
    "document_rewritten",
]
NEGATIVES = ["not_registered", "same_name_years_apart", "relative"]


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _pick(rng, pool: str, count: int = 1) -> str:
    choices = pool.split("|")
    return " ".join(rng.sample(choices, count))


def _document(rng, nationality: str) -> tuple[str, str]:
    if nationality == "VEN":
        n = rng.randint(10_000_000, 32_000_000)
        return "national_id", f"V-{n // 1_000_000}.{n // 1000 % 1000:03d}.{n % 1000:03d}"
    if nationality == "COL":
        return "national_id", str(rng.randint(1_000_000_000, 1_199_999_999))
    if nationality == "HTI":
        return "passport", f"PP{rng.randint(1_000_000, 9_999_999)}"
    if nationality == "CHN":
        return "passport", f"E{rng.randint(10_000_000, 99_999_999)}"
    return "passport", f"{nationality[0]}{rng.randint(100_000, 999_999)}"


def make_person(rng, nationality: str | None = None, *, family: str | None = None, born=None) -> dict:
    nationality = nationality or rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
    given_pool, family_pool = NAMES[nationality]
    if nationality == "CHN":
        family_name = family or _pick(rng, family_pool)
        given_name = _pick(rng, given_pool)
    else:
        given_name = _pick(rng, given_pool, rng.choice([1, 1, 2]))
        family_name = family or _pick(rng, family_pool, 2 if rng.random() < 0.8 else 1)
    dob = born or datetime.date(rng.randint(1960, 2008), rng.randint(1, 12), rng.randint(1, 28))
    document_type, document = _document(rng, nationality) if rng.random() < 0.75 else ("none", "")
    return {
        "given_name": given_name,
        "family_name": family_name,
        "date_of_birth": dob,
        "sex": rng.choice(["female", "male"]),
        "nationality": nationality,
        "document_type": document_type,
        "document_number": document,
    }


def _typo(rng, word: str) -> str:
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(["swap", "drop", "double", "replace"])
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    letters = "aeioulnrst"
    return word[:i] + rng.choice([c for c in letters if c != word[i]]) + word[i + 1 :]


def _respell(rng, text: str) -> str | None:
    plain = strip_accents(text).lower()
    for a, b in SPELLINGS:
        for x, y in ((a, b), (b, a)):
            if x in plain.split():
                return " ".join(y if w == x else w for w in plain.split()).title()
    tokens = plain.split()
    for _ in range(10):
        j = rng.randrange(len(tokens))
        x, y = rng.choice(SPELLING_RULES)
        if x in tokens[j][1:]:
            head, tail = tokens[j][0], tokens[j][1:]
            tokens[j] = head + tail.replace(x, y, 1)
            return " ".join(tokens).title()
    return None


def make_query(rng, person: dict, kind: str) -> dict | None:
    """The person as another registration point would write them, or None when the kind does not apply."""
    q = {k: person[k] for k in ("given_name", "family_name", "date_of_birth", "sex", "nationality")}
    dob = person["date_of_birth"]
    if kind == "accents_dropped":
        if strip_accents(q["given_name"] + q["family_name"]) == q["given_name"] + q["family_name"]:
            return None
        q["given_name"] = strip_accents(q["given_name"]).upper()
        q["family_name"] = strip_accents(q["family_name"]).upper()
    elif kind == "second_surname_cut":
        parts = q["family_name"].split()
        if len(parts) < 2:
            return None
        q["family_name"] = parts[0]
    elif kind == "names_swapped":
        q["given_name"], q["family_name"] = q["family_name"], q["given_name"]
    elif kind == "spelling":
        field = rng.choice(["given_name", "family_name"])
        respelled = _respell(rng, q[field])
        if respelled is None:
            return None
        q[field] = respelled
    elif kind == "hyphen_lost":
        field = "given_name" if "-" in q["given_name"] else "family_name"
        if "-" not in q[field]:
            return None
        q[field] = q[field].replace("-", rng.choice([" ", ""]))
    elif kind == "typo":
        field = rng.choice(["given_name", "family_name"])
        words = q[field].split()
        j = max(range(len(words)), key=lambda k: len(words[k]))
        if len(words[j]) < 4:
            return None
        words[j] = _typo(rng, words[j])
        q[field] = " ".join(words)
    elif kind == "day_month_swap":
        if dob.day > 12 or dob.day == dob.month:
            return None
        q["date_of_birth"] = dob.replace(month=dob.day, day=dob.month)
    elif kind == "january_placeholder":
        q["date_of_birth"] = datetime.date(dob.year, 1, 1)
    elif kind == "year_off_by_one":
        q["date_of_birth"] = dob.replace(year=dob.year + rng.choice([-1, 1]))
    elif kind == "document_rewritten":
        number = person["document_number"]
        if not number:
            return None
        plain = "".join(c for c in number if c.isalnum())
        q["document_number"] = rng.choice(
            [plain.lower(), " ".join([plain[:3], plain[3:]]), "-".join([plain[:1], plain[1:]]), plain]
        )
        if rng.random() < 0.5:  # the number only, or with names written as usual
            q = {"document_number": q["document_number"]}
    if rng.random() < 0.15:
        q.pop("sex", None)
    return q


def build_set(seed: int = SEED, people: int = 180, per_kind: int = 30):
    """``(register, queries)``: queries are ``(kind, query, index of the true person or None)``."""
    rng = random.Random(seed)
    register = [make_person(rng) for _ in range(people)]
    # Relatives in the register too: a sibling or parent sharing the family names.
    for base in rng.sample(register[:people], 20):
        born = base["date_of_birth"].replace(
            year=base["date_of_birth"].year + rng.choice([-25, -4, 3, 6, 22])
        )
        register.append(make_person(rng, base["nationality"], family=base["family_name"], born=born))
    queries = []
    for kind in VARIANTS:
        made = 0
        for index in rng.sample(range(len(register)), len(register)):
            if made == per_kind:
                break
            query = make_query(rng, register[index], kind)
            if query is not None:
                queries.append((kind, query, index))
                made += 1
        if made < per_kind and kind == "hyphen_lost":  # not enough hyphenated names drawn: add Haitians
            while made < per_kind:
                person = make_person(rng, "HTI")
                person["given_name"] = rng.choice(
                    ["Jean-Baptiste", "Jean-Claude", "Rose-Merline", "Jean-Robert"]
                )
                register.append(person)
                queries.append((kind, make_query(rng, person, kind), len(register) - 1))
                made += 1
    for _ in range(per_kind + 10):
        queries.append(("not_registered", make_query(rng, make_person(rng), "accents_dropped") or {}, None))
    for index in rng.sample(range(len(register)), per_kind):
        twin = dict(register[index])
        dob = twin["date_of_birth"]
        twin["date_of_birth"] = dob.replace(year=dob.year + rng.choice([-12, -7, -4, -3, 3, 5, 9, 15]))
        queries.append(
            ("same_name_years_apart", {k: v for k, v in twin.items() if k != "document_number"}, None)
        )
    for index in rng.sample(range(len(register)), per_kind):
        base = register[index]
        born = base["date_of_birth"].replace(
            year=base["date_of_birth"].year + rng.choice([-24, -3, 2, 5, 20])
        )
        relative = make_person(rng, base["nationality"], family=base["family_name"], born=born)
        if relative["given_name"] == base["given_name"]:
            continue
        relative.pop("document_number")
        queries.append(("relative", relative, None))
    queries = [(kind, {k: v for k, v in q.items() if k != "document_type"}, t) for kind, q, t in queries if q]
    return register, queries


# --- the plaintext baseline ------------------------------------------------------------------------


def _clear(text) -> str:
    return " ".join(strip_accents(text or "").lower().replace("-", " ").split())


def plaintext_score(query: dict, person: dict) -> float:
    """A plaintext fuzzy matcher as case managers have it: Jaro–Winkler on clear names (either order),
    dates compared in clear (exact, day/month swap, year ± 1, 1 January), the document number exact."""
    import jellyfish

    from matching.encoding import document_forms

    number, stored = query.get("document_number"), person["document_number"]
    if number and stored and document_forms(number)[0] == document_forms(stored)[0]:
        return 1.0
    if not query.get("given_name"):
        return 0.0
    q_given, q_family = _clear(query["given_name"]), _clear(query["family_name"])
    p_given, p_family = _clear(person["given_name"]), _clear(person["family_name"])
    name = max(
        jellyfish.jaro_winkler_similarity(f"{q_given} {q_family}", f"{p_given} {p_family}"),
        jellyfish.jaro_winkler_similarity(f"{q_family} {q_given}", f"{p_given} {p_family}"),
    )
    qd, pd = query.get("date_of_birth"), person["date_of_birth"]
    if name < 0.85:
        return 0.0
    if qd is None:
        factor = 0.6
    elif qd == pd:
        factor = 1.0
    elif (
        (qd.year == pd.year and (qd.month, qd.day) == (pd.day, pd.month))
        or (abs(qd.year - pd.year) == 1 and (qd.month, qd.day) == (pd.month, pd.day))
        or (qd.year == pd.year and (1, 1) in ((qd.month, qd.day), (pd.month, pd.day)))
    ):
        factor = 0.9
    else:
        factor = 0.3
    return name * factor


# --- evaluation ---------------------------------------------------------------------------------


def evaluate(results_of, queries, case_of_person):
    """Recall and precision at score ≥ 0.5; ``results_of(query)`` → ``[(case, score)]``."""
    per_kind = defaultdict(lambda: [0, 0])  # kind → [hits, total] (positives) or [false alarms, total]
    true_positive = predicted = positives = found = 0
    for kind, query, truth in queries:
        probable = [case for case, value in results_of(query) if value >= 0.5]
        predicted += len(probable)
        expected = case_of_person.get(truth) if truth is not None else None
        if expected is not None:
            positives += 1
            hit = expected in probable
            found += hit
            per_kind[kind][0] += hit
        else:
            per_kind[kind][0] += bool(probable)
        true_positive += sum(1 for case in probable if case == expected)
        per_kind[kind][1] += 1
    recall = found / positives if positives else 0.0
    precision = true_positive / predicted if predicted else 1.0
    return recall, precision, per_kind, predicted


def _setup_django(database_url: str | None) -> None:
    from bench.setup import setup_django

    setup_django(database_url, prefix="rcm-match-")
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _actor():
    from accounts.actor import actor_for_api_client
    from accounts.services import api_client_create, institution_create

    institution, _ = institution_create(code="IOM", name="IOM")
    client, _token = api_client_create(
        institution=institution, name=f"bench-{time.time()}", scopes=["referrals:read", "referrals:write"]
    )
    return actor_for_api_client(client)


def quality(actor, seed: int = SEED) -> dict:
    from django.db.models.signals import post_save  # noqa: F401 - keeps Django loaded first

    from matching import matcher
    from referrals import services

    register, queries = build_set(seed)
    case_of_person = {}
    for index, person in enumerate(register):
        subject = dict(person, languages=[], is_minor=False)
        if not subject["document_number"]:
            subject["document_type"] = "none"
        case = services.case_create(actor=actor, subject=subject, summary="")
        case_of_person[index] = case.pk
    by_kind = Counter(kind for kind, _q, _t in queries)
    print(f"labelled set: {len(register)} registered people, {len(queries)} queries")
    print("  " + ", ".join(f"{k} {v}" for k, v in by_kind.items()))
    print(
        "  nationalities: "
        + ", ".join(f"{k} {v}" for k, v in Counter(p["nationality"] for p in register).items())
    )

    def keyed(query):
        return [(m.case_id, m.score) for m in matcher.find_matches(actor, **query)]

    person_case = list(case_of_person.items())

    def plaintext(query):
        scored = [(case, plaintext_score(query, register[i])) for i, case in person_case]
        return sorted(scored, key=lambda x: -x[1])[:10]

    rows = {}
    for label, fn in (("keyed (this design)", keyed), ("plaintext Jaro-Winkler", plaintext)):
        started = time.perf_counter()
        recall, precision, per_kind, predicted = evaluate(fn, queries, case_of_person)
        elapsed = time.perf_counter() - started
        rows[label] = (recall, precision, per_kind)
        print(
            f"{label:>24}: recall {recall:.3f}  precision {precision:.3f}  "
            f"({predicted} results ≥ 0.5; {elapsed / len(queries) * 1000:.2f} ms/query)"
        )
    print("  per kind (positives: found/total; negatives: queries with a result ≥ 0.5 / total):")
    for kind in VARIANTS + NEGATIVES:
        cells = "  ".join(f"{rows[label][2][kind][0]:>3}/{rows[label][2][kind][1]:<3}" for label in rows)
        print(f"    {kind:<24} {cells}")
    _ratios(actor, queries, case_of_person)
    return rows


def _ratios(actor, queries, case_of_person) -> None:
    """Fellegi–Sunter: log2(m/u) of each level, measured on the blocked candidate pairs of the set."""
    import math

    from matching import encoding, matcher, scoring
    from matching.models import MatchProfile

    profiles = {
        case_id: encoding.open_profile(case_id, sealed)
        for case_id, sealed in MatchProfile.objects.values_list("case_id", "sealed")
    }
    m_counts, u_counts = defaultdict(Counter), defaultdict(Counter)
    for _kind, query, truth in queries:
        encoded = matcher.encode_query(**query)
        expected = case_of_person.get(truth) if truth is not None else None
        for match in matcher.find_matches(actor, limit=matcher.CANDIDATES, **query):
            _p, _r, levels = scoring.score(encoded, profiles[match.case_id])
            counts = m_counts if match.case_id == expected else u_counts
            for field, level in levels.items():
                counts[field][level] += 1
    print("  measured log2(m/u) on blocked pairs (weight used):")
    tables = {
        "name": scoring.NAME_WEIGHTS,
        "dob": scoring.DOB_WEIGHTS,
        "document": scoring.DOCUMENT_WEIGHTS,
        "sex": scoring.SEX_WEIGHTS,
        "nationality": scoring.NATIONALITY_WEIGHTS,
    }
    for field, weights in tables.items():
        m_total, u_total = sum(m_counts[field].values()) or 1, sum(u_counts[field].values()) or 1
        cells = []
        for level, weight in weights.items():
            if level == "missing":
                continue
            m = (m_counts[field][level] + 0.5) / m_total
            u = (u_counts[field][level] + 0.5) / u_total
            cells.append(f"{level} {math.log2(m / u):+.1f} ({weight:+.1f})")
        print(f"    {field:<12} " + "  ".join(cells))


def latency(actor, population: int, queries_to_run: int = 200) -> None:
    """Bulk-load ``population`` cases (keyed indexes, permissions) and time ``find_matches``."""
    from django.contrib.auth.models import Permission
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from accounts.choices import GroupKind
    from matching import encoding, matcher
    from matching.indexing import index_case
    from matching.models import MatchProfile, MatchToken
    from referrals import services
    from referrals.models import Case, CaseGroupObjectPermission

    rng = random.Random(SEED + 1)
    institution = actor.institution
    group = institution.group(GroupKind.SERVICE)
    view = Permission.objects.get(codename="view_case", content_type__app_label="referrals")
    existing = Case.objects.count()
    started = time.perf_counter()
    batch = 5000
    for offset in range(existing, population, batch):
        cases, perms, profiles, tokens = [], [], [], []
        for i in range(offset, min(offset + batch, population)):
            person = SimpleNamespace(**make_person(rng))
            case = Case(reference=f"IOM-BENCH-{i:07d}", institution=institution)
            cases.append(case)
            perms.append(CaseGroupObjectPermission(group=group, permission=view, content_object=case))
            data, blocking = encoding.encode_subject(person)
            profiles.append(
                MatchProfile(
                    case=case,
                    institution=institution,
                    sealed=encoding.seal_profile(case.pk, data),
                    key_version=encoding.key_version(),
                )
            )
            tokens += [
                MatchToken(case=case, institution=institution, kind=kind, token=token)
                for kind, token in blocking
            ]
        with transaction.atomic():
            Case.objects.bulk_create(cases)
            CaseGroupObjectPermission.objects.bulk_create(perms)
            MatchProfile.objects.bulk_create(profiles)
            MatchToken.objects.bulk_create(tokens, batch_size=5000)
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("ANALYZE")
    loaded = time.perf_counter() - started
    print(
        f"population: {Case.objects.count()} cases, {MatchToken.objects.count()} token rows "
        f"({MatchToken.objects.count() / max(Case.objects.count(), 1):.1f} a case); loaded in {loaded:.0f} s"
    )
    _register, queries = build_set()
    sample = [q for _k, q, _t in queries][:queries_to_run]
    timings, counts = [], set()
    for query in sample:
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            matcher.find_matches(actor, **query)
            timings.append((time.perf_counter() - t0) * 1000)
        counts.add(len(captured.captured_queries))
    timings.sort()
    print(
        f"one match at {Case.objects.count()} cases ({connection.vendor}): "
        f"median {statistics.median(timings):.1f} ms, "
        f"p95 {timings[int(len(timings) * 0.95)]:.1f} ms, max {timings[-1]:.1f} ms; "
        f"queries per match: {sorted(counts)}"
    )
    with CaptureQueriesContext(connection) as captured:
        matcher.search(actor, by="match", terms=sample[0])
    print(f"  with its audit event (matcher.search): {len(captured.captured_queries)} queries")

    # Indexing cost: cases created through the service with and without the hook, interleaved (so that
    # WAL checkpoints and caches weigh on both alike), and the hook alone inside a transaction.
    from referrals import signals
    from referrals.models import Subject

    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    from matching.indexing import on_subject_saved

    def hook(on: bool) -> None:
        signals.subject_saved.disconnect(sender=Subject, dispatch_uid="matching-index")
        if on:
            signals.subject_saved.connect(on_subject_saved, sender=Subject, dispatch_uid="matching-index")

    hooked, bare, hook_only = [], [], []
    for i in range(400):
        person = make_person(rng)
        subject = dict(
            person,
            languages=[],
            is_minor=False,
            document_type="passport" if person["document_number"] else "none",
        )
        with_hook = i % 2 == 0
        hook(with_hook)
        try:
            t0 = time.perf_counter()
            case = services.case_create(actor=actor, subject=subject)
            (hooked if with_hook else bare).append((time.perf_counter() - t0) * 1000)
        finally:
            hook(True)
        if with_hook:
            with transaction.atomic():
                t0 = time.perf_counter()
                index_case(case=case, subject=case.subject)
                hook_only.append((time.perf_counter() - t0) * 1000)
    added = statistics.median(hooked) - statistics.median(bare)
    print(
        f"creating a case: median {statistics.median(hooked):.2f} ms with the matching index, "
        f"{statistics.median(bare):.2f} ms without (+{added:.2f} ms); "
        f"index_case alone (re-indexing, inside a transaction): median {statistics.median(hook_only):.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--quality-only", action="store_true")
    parser.add_argument(
        "--seed", type=int, default=SEED, help="another labelled set (default: the reference)"
    )
    args = parser.parse_args()
    _setup_django(os.environ.get("BENCH_DATABASE_URL"))
    actor = _actor()
    quality(actor, args.seed)
    if not args.quality_only:
        latency(actor, args.cases)


if __name__ == "__main__":
    main()

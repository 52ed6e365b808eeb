"""The project's own HSDS 3.0 conformance check for ``GET /api/v1/directory/hsds/`` (tests only).

A small JSON Schema (draft 2020-12) per object the export emits, written here from the Open Referral
documentation, plus the links between the export's lists. The specification's official JSON schema files
are **not** vendored in this repository: this workplace's rule keeps material brought in from public
repositories out of commits. A maintainer can validate a real response against the official schemas
outside the repository with Open Referral's own tools (the schemas live in the ``schema/`` directory of
https://github.com/openreferral/specification, branch ``3.0``). That was done on 2026-12-03 (branch
``3.0`` at commit 279fd2e, the per-object files ``organization.json``, ``service.json``, ``location.json``
and ``service_at_location.json`` with the files they reference, draft 2020-12, formats checked): this
test's export validated with no error, and the required properties below are the official ones (this check
adds the flat export's foreign keys, as said below).

Where each rule comes from (HSDS 3.0 documentation, docs.openreferral.org, version 3.0):

* Required properties, their types and formats: the field tables of the Schema Reference,
  https://docs.openreferral.org/en/v3.0/hsds/schema_reference.html — sections ``organization`` (``id``,
  ``name``, ``description`` required), ``service`` (``id``, ``name``, ``status`` required), ``location``
  (``id``, ``location_type`` required), ``service_at_location`` (``id`` required),
  ``organization_identifier`` (``id``, ``identifier_type``, ``identifier`` required), ``language``,
  ``service_area`` (``id`` required), ``attribute`` and ``taxonomy_term`` (``id``, ``name``,
  ``description`` required). Every other property the export emits is typed as that table types it.
* Every ``id`` is a string of format ``uuid``: Changelog, v3.0, "All ``id`` fields now have format
  ``uuid``", https://docs.openreferral.org/en/v3.0/hsds/changelog.html#v3-0 (checked with the
  ``jsonschema`` FormatChecker, so "not-a-uuid" fails).
* ``service.status`` is one of ``active``, ``inactive``, ``defunct``, ``temporarily closed``: Schema
  Reference, ``service`` (the same list the earlier tabular package had, see the maintainers in
  https://github.com/openreferral/specification/issues/221).
* ``location.location_type`` is one of ``physical``, ``postal``, ``virtual``: Schema Reference,
  ``location``; Changelog v3.0 ("added ``location_type`` to express if ``physical`` or ``virtual``").
* The links: the Logical Model, https://docs.openreferral.org/en/v3.0/hsds/logical_model.html — a
  service and a location belong to an organization, a service_at_location joins a service and a
  location, an attribute joins any object through ``link_id`` and a taxonomy term through
  ``taxonomy_term_id``. HSDS 3.0 JSON may nest these objects instead; our export is flat (four lists),
  so here the foreign keys are **required** (a rule of ours, stricter than the schema) and each must
  name an object present in the export; a nested object's key must name the object it is nested in.
* Properties HSDS does not define are allowed (Extending HSDS,
  https://docs.openreferral.org/en/v3.0/hsds/extending.html: the schemas permit additional
  properties), so no ``additionalProperties: false`` here either.
"""

from __future__ import annotations

import jsonschema

DIALECT = "https://json-schema.org/draft/2020-12/schema"
UUID = {"type": "string", "format": "uuid"}
TEXT = {"type": "string"}


def _object(required: list[str], properties: dict) -> dict:
    return {"type": "object", "required": required, "properties": properties}


def _list(item: dict) -> dict:
    return {"type": "array", "items": item}


LANGUAGE = _object(
    ["id"],
    {
        "id": UUID,
        "service_id": UUID,
        "location_id": UUID,
        "phone_id": UUID,
        "name": TEXT,
        "code": TEXT,
        "note": TEXT,
    },
)
ORGANIZATION_IDENTIFIER = _object(
    ["id", "identifier_type", "identifier"],
    {
        "id": UUID,
        "organization_id": UUID,
        "identifier_scheme": TEXT,
        "identifier_type": TEXT,
        "identifier": TEXT,
    },
)
SERVICE_AREA = _object(
    ["id"],
    {
        "id": UUID,
        "service_id": UUID,
        "name": TEXT,
        "description": TEXT,
        "extent": TEXT,
        "extent_type": TEXT,
        "uri": TEXT,
    },
)
TAXONOMY_TERM = _object(
    ["id", "name", "description"],
    {
        "id": UUID,
        "code": TEXT,
        "name": TEXT,
        "description": TEXT,
        "parent_id": UUID,
        "taxonomy": TEXT,
        "language": TEXT,
        "taxonomy_id": UUID,
        "term_uri": TEXT,
    },
)
ATTRIBUTE = _object(
    ["id", "link_id", "taxonomy_term_id"],
    {
        "id": UUID,
        "link_id": UUID,
        "taxonomy_term_id": UUID,
        "link_type": TEXT,
        "link_entity": TEXT,
        "value": TEXT,
        "taxonomy_term": TAXONOMY_TERM,
    },
)

#: The export's four lists and the schema of each list's objects.
SCHEMAS = {
    "organizations": _object(
        ["id", "name", "description"],
        {
            "id": UUID,
            "name": TEXT,
            "alternate_name": TEXT,
            "description": TEXT,
            "organization_identifiers": _list(ORGANIZATION_IDENTIFIER),
        },
    ),
    "services": _object(
        ["id", "organization_id", "name", "status"],
        {
            "id": UUID,
            "organization_id": UUID,
            "name": TEXT,
            "alternate_name": TEXT,
            "description": TEXT,
            "status": {"enum": ["active", "inactive", "defunct", "temporarily closed"]},
            "alert": TEXT,
            "languages": _list(LANGUAGE),
            "service_areas": _list(SERVICE_AREA),
            "attributes": _list(ATTRIBUTE),
        },
    ),
    "locations": _object(
        ["id", "organization_id", "location_type"],
        {
            "id": UUID,
            "organization_id": UUID,
            "location_type": {"enum": ["physical", "postal", "virtual"]},
            "name": TEXT,
            "alternate_name": TEXT,
            "description": TEXT,
            "external_identifier": TEXT,
            "external_identifier_type": TEXT,
            "languages": _list(LANGUAGE),
        },
    ),
    "service_at_locations": _object(
        ["id", "service_id", "location_id"],
        {"id": UUID, "service_id": UUID, "location_id": UUID, "description": TEXT},
    ),
}
SCHEMAS = {key: {"$schema": DIALECT, **schema} for key, schema in SCHEMAS.items()}


def validator(key: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        SCHEMAS[key], format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _schema_problems(body: dict) -> list[str]:
    problems = []
    for key in SCHEMAS:
        check = validator(key)
        for index, item in enumerate(body.get(key) or []):
            for error in sorted(check.iter_errors(item), key=lambda e: list(e.path)):
                where = "/".join(str(step) for step in [key, index, *error.path])
                problems.append(f"{where}: {error.message}")
    return problems


def _link_problems(body: dict) -> list[str]:
    """Every foreign key names an object of the export; a nested object's key names its parent."""
    problems = []
    known = {
        key: {item.get("id") for item in body.get(key) or [] if isinstance(item, dict)} for key in SCHEMAS
    }

    def points(where: str, value, target: str) -> None:
        if value not in known[target]:
            problems.append(f"{where}: {value!r} is no object of {target}")

    def nested(where: str, items, key: str, parent: str) -> None:
        for index, child in enumerate(items or []):
            if isinstance(child, dict) and child.get(key) != parent:
                problems.append(f"{where}/{index}/{key}: {child.get(key)!r} is not its parent {parent!r}")

    for index, org in enumerate(body.get("organizations") or []):
        nested(
            f"organizations/{index}/organization_identifiers",
            org.get("organization_identifiers"),
            "organization_id",
            org.get("id"),
        )
    for index, service in enumerate(body.get("services") or []):
        where = f"services/{index}"
        points(f"{where}/organization_id", service.get("organization_id"), "organizations")
        nested(f"{where}/languages", service.get("languages"), "service_id", service.get("id"))
        nested(f"{where}/service_areas", service.get("service_areas"), "service_id", service.get("id"))
        nested(f"{where}/attributes", service.get("attributes"), "link_id", service.get("id"))
        for number, attribute in enumerate(service.get("attributes") or []):
            term = attribute.get("taxonomy_term") if isinstance(attribute, dict) else None
            if isinstance(term, dict) and term.get("id") != attribute.get("taxonomy_term_id"):
                problems.append(f"{where}/attributes/{number}/taxonomy_term_id: not its taxonomy_term's id")
    for index, location in enumerate(body.get("locations") or []):
        points(f"locations/{index}/organization_id", location.get("organization_id"), "organizations")
        nested(f"locations/{index}/languages", location.get("languages"), "location_id", location.get("id"))
    for index, link in enumerate(body.get("service_at_locations") or []):
        points(f"service_at_locations/{index}/service_id", link.get("service_id"), "services")
        points(f"service_at_locations/{index}/location_id", link.get("location_id"), "locations")
    return problems


def problems(body) -> list[str]:
    """What keeps ``body`` (the export's JSON) from conforming: empty when it conforms."""
    if not isinstance(body, dict) or set(body) != set(SCHEMAS):
        return [f"the document is not an object of exactly {sorted(SCHEMAS)}"]
    if not all(isinstance(body[key], list) for key in SCHEMAS):
        return ["every list of the document must be an array"]
    found = _schema_problems(body)
    return found or _link_problems(body)

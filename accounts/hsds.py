"""The service directory in Open Referral HSDS 3.0 JSON (issue 20, contract §7.2).

The mapping, one row of ours to HSDS objects:

* an **institution** → an ``organization`` (its code as an ``organization_identifier``); a **remote
  institution** (hosted by a peer node, contract §7.4) is one too, with a second identifier of type
  ``referral network node`` holding its node's URL and "hosted on another node" in its description, and its
  offices as that node serves them (``federation.directory``): the export is the whole directory a sender
  here may address. Its ids are the ones its own node gives it (UUIDv5 of the codes), so the exports of two
  nodes merge by id;
* an **office** → a ``location`` (``physical``; ``external_identifier`` ``DP/DARIEN``), with its languages;
* each **service an office offers** → a ``service`` of the institution, delivered at that one location
  (one ``service_at_location``), with the office's languages, its province as the ``service_area`` and
  the service's code as a taxonomy term (``attributes``). A service per office, not one per institution
  shared by its offices, because HSDS keeps the status on the service: an office that is not accepting
  referrals now has its services ``temporarily closed``, with ``alert`` saying until when and why.

Every id is a UUIDv5 of a fixed namespace and the codes (``service:DP/DARIEN/legal_assistance``), so the
same institution, office and service keep the same ids between calls, across restarts and on every node.
Texts are in the active language (under /api/, English, as every API text); nothing here is anyone's
personal data.
"""

from __future__ import annotations

import uuid

from django.utils import timezone
from django.utils.translation import gettext as _

from .choices import Province, Service
from .models import Institution, Office

#: The namespace of every id of the export (fixed: changing it changes every id).
NAMESPACE = uuid.UUID("6f1c4a0e-9b57-5d3e-a7c2-2f9e8d4b1a60")
#: The taxonomy the services' codes come from.
TAXONOMY = "Referral network services (partner API v1, §4)"
#: The identifier naming the peer node that hosts a remote institution (contract §7.4).
NODE_IDENTIFIER_TYPE = "referral network node"


def hsds_id(kind: str, *codes: str) -> str:
    """A stable UUIDv5 for an object of the export: ``hsds_id("location", "DP", "DARIEN")``."""
    return str(uuid.uuid5(NAMESPACE, ":".join([kind, "/".join(codes)])))


def _languages(codes, *, owner: str, owner_id: str, key: tuple[str, ...]) -> list[dict]:
    return [
        {"id": hsds_id(f"language:{owner}", *key, code), f"{owner}_id": owner_id, "code": code}
        for code in codes
    ]


def _organization(institution: Institution) -> dict:
    org_id = hsds_id("organization", institution.code)
    identifiers = [
        {
            "id": hsds_id("organization_identifier", institution.code),
            "organization_id": org_id,
            "identifier_type": "referral network institution code",
            "identifier": institution.code,
        }
    ]
    description = institution.name
    if institution.node:  # a remote institution (contract §7.4): marked, and its node named
        identifiers.append(
            {
                "id": hsds_id("organization_identifier", institution.code, "node"),
                "organization_id": org_id,
                "identifier_type": NODE_IDENTIFIER_TYPE,
                "identifier": institution.node,
            }
        )
        description = _("%(name)s — hosted on another node (%(node)s)") % {
            "name": institution.name,
            "node": institution.node,
        }
    return {
        "id": org_id,
        "name": institution.name,
        "alternate_name": institution.code,
        "description": description,
        "organization_identifiers": identifiers,
    }


def _location(office: Office) -> dict:
    key = (office.institution.code, office.code)
    location_id = hsds_id("location", *key)
    return {
        "id": location_id,
        "location_type": "physical",
        "organization_id": hsds_id("organization", office.institution.code),
        "name": office.name,
        "description": f"{Province(office.province).label} ({office.province})",
        "external_identifier": office.key,
        "external_identifier_type": "referral network office",
        "languages": _languages(office.languages, owner="location", owner_id=location_id, key=key),
    }


def _alert(office: Office) -> str:
    if office.paused_until is not None:
        text = _("Not accepting referrals until %(date)s.") % {"date": office.paused_until.isoformat()}
    else:
        text = _("Not accepting referrals for now.")
    return f"{text} {office.pause_reason}" if office.pause_reason else text


def _service(office: Office, code: str, accepting: bool) -> dict:
    key = (office.institution.code, office.code, code)
    service_id = hsds_id("service", *key)
    label = str(Service(code).label) if code in Service.values else code
    term_id = hsds_id("taxonomy_term", code)
    service = {
        "id": service_id,
        "organization_id": hsds_id("organization", office.institution.code),
        "name": label,
        "description": f"{label} — {office.name}",
        "status": "active" if accepting else "temporarily closed",
        "languages": _languages(office.languages, owner="service", owner_id=service_id, key=key),
        "service_areas": [
            {
                "id": hsds_id("service_area", *key),
                "service_id": service_id,
                "name": str(Province(office.province).label),
                "description": f"ISO 3166-2:{office.province}",
            }
        ],
        "attributes": [
            {
                "id": hsds_id("attribute", *key),
                "link_id": service_id,
                "link_type": "service_type",
                "link_entity": "service",
                "taxonomy_term_id": term_id,
                "taxonomy_term": {
                    "id": term_id,
                    "code": code,
                    "name": label,
                    "description": label,
                    "taxonomy": TAXONOMY,
                },
            }
        ],
    }
    if not accepting:
        service["alert"] = _alert(office)
    return service


def directory(today=None) -> dict:
    """``{"organizations", "services", "locations", "service_at_locations"}`` of every institution and
    office, in code order (two queries)."""
    today = today or timezone.localdate()
    organizations = [_organization(i) for i in Institution.objects.order_by("code")]
    services, locations, links = [], [], []
    for office in Office.objects.select_related("institution").order_by("institution__code", "code"):
        location = _location(office)
        locations.append(location)
        accepting = office.is_accepting(today)
        for code in dict.fromkeys(office.services):
            service = _service(office, code, accepting)
            services.append(service)
            links.append(
                {
                    "id": hsds_id("service_at_location", office.institution.code, office.code, code),
                    "service_id": service["id"],
                    "location_id": location["id"],
                }
            )
    return {
        "organizations": organizations,
        "services": services,
        "locations": locations,
        "service_at_locations": links,
    }

"""Factories for simple rows; workflows go through the real services (see ``tests.workflows``)."""

import datetime

import factory

from accounts.choices import Role
from accounts.models import ApiClient, Institution, User, hash_token
from accounts.services import institution_create


class InstitutionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Institution

    code = factory.Sequence(lambda n: f"INST{n}")
    name = factory.LazyAttribute(lambda o: f"Institution {o.code}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        institution, _ = institution_create(code=kwargs["code"], name=kwargs["name"])
        return institution


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    institution = factory.SubFactory(InstitutionFactory)
    role = Role.CASEWORKER
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.org")
    password = factory.django.Password("correct-horse-battery")


def api_client_row(institution, scopes, *, name: str = "client", expires_at=None) -> tuple[ApiClient, str]:
    """Test setup: an API client row and its token, as a factory writes a user (no audit event: the tests'
    own events stay the only ones; ``accounts.services.api_client_create`` is tested for its event)."""
    token = ApiClient.new_token()
    client = ApiClient.objects.create(
        institution=institution,
        name=name,
        scopes=sorted(set(scopes)),
        token_prefix=token[:12],
        token_hash=hash_token(token),
        expires_at=expires_at,
    )
    return client, token


def subject_data(**overrides) -> dict:
    data = {
        "given_name": "María José",
        "family_name": "Pérez Rondón",
        "date_of_birth": datetime.date(1990, 5, 1),
        "sex": "female",
        "nationality": "VEN",
        "languages": ["es"],
        "document_type": "passport",
        "document_number": "V-12.345.678",
        "phone": "+507 6000-1234",
        "email": "maria@example.org",
        "current_location": "Lajas Blancas",
        "protection_needs": "Sobreviviente de violencia en la ruta",
        "is_minor": False,
    }
    data.update(overrides)
    return data


def subject_json(**overrides) -> dict:
    data = subject_data(**overrides)
    if isinstance(data.get("date_of_birth"), datetime.date):
        data["date_of_birth"] = data["date_of_birth"].isoformat()
    return data


def consent_json(categories=("identity",), given=True) -> dict:
    return {
        "given": given,
        "given_by": "self",
        "method": "verbal",
        "obtained_at": "2026-11-27T10:00:00Z",
        "data_categories": list(categories),
    }

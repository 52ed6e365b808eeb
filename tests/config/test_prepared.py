"""config.prepared: a queryset compiled once per connection gives exactly what the ORM gives."""

from __future__ import annotations

import uuid
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db.models.sql.compiler import SQLCompiler

from config.prepared import PreparedQuery
from referrals.models import Referral, ReferralGroupObjectPermission, ReferralUserObjectPermission

RELATED = ("case", "case__subject", "from_institution", "to_institution", "consent", "assignee")


def _referral_with_related(pk):
    return Referral.objects.select_related(*RELATED).filter(pk=pk).order_by()[:1]


def _grants(group_ids, user_id, object_id):
    groups = ReferralGroupObjectPermission.objects
    by_group = groups.filter(group_id__in=group_ids, content_object_id=object_id)
    by_user = ReferralUserObjectPermission.objects.filter(user_id=user_id, content_object_id=object_id)
    return by_group.values_list("permission__codename").union(by_user.values_list("permission__codename"))


@pytest.fixture
def referrals(iom_actor, dp_actor, dp, make_referral):
    return [
        make_referral(iom_actor, dp, categories=("identity", "contact"), path=[(iom_actor, "send")]),
        make_referral(iom_actor, dp, path=[(iom_actor, "send"), (dp_actor, "accept")]),
        make_referral(iom_actor, dp),
    ]


def _state(referral):
    """Every column of the referral and of each related row ``select_related`` loaded, decrypted."""
    subject = referral.case.subject
    return (
        [getattr(referral, f.attname) for f in Referral._meta.concrete_fields],
        [getattr(referral.case, f.attname) for f in referral.case._meta.concrete_fields],
        [getattr(subject, f.attname) for f in subject._meta.concrete_fields],
        [getattr(referral.consent, f.attname) for f in referral.consent._meta.concrete_fields],
        referral.from_institution.code,
        referral.to_institution.code,
        referral.assignee.username if referral.assignee_id else None,
    )


def test_objects_are_what_the_orm_returns_with_their_related_rows(referrals, django_assert_num_queries):
    prepared = PreparedQuery(_referral_with_related, ["uuid"])
    for referral in referrals:
        expected = list(_referral_with_related(referral.pk))
        with django_assert_num_queries(1):  # the related rows came with it: nothing loaded afterwards
            found = prepared.objects(referral.pk)
            assert len(found) == 1
            state = _state(found[0])
        assert state == _state(expected[0])
        assert found[0].case.subject.given_name == "María José"  # decrypts like the ORM's instance
        assert found[0]._state.adding is False and found[0]._state.db == "default"
    assert prepared.objects(uuid.uuid4()) == []
    assert prepared.objects(str(referrals[0].pk))[0].pk == referrals[0].pk  # a UUID's text works too


def test_compiled_once_per_connection_and_shape(referrals):
    prepared = PreparedQuery(_referral_with_related, ["uuid"])
    with mock.patch.object(SQLCompiler, "as_sql", autospec=True, side_effect=SQLCompiler.as_sql) as as_sql:
        for referral in referrals * 3:
            prepared.objects(referral.pk)
    assert as_sql.call_count == 1


def test_rows_of_a_union_with_a_value_used_twice_and_lists_of_any_length(referrals, dp_actor, iom_actor):
    prepared = PreparedQuery(_grants, ["int", "uuid", "uuid"])
    for referral in referrals:
        for actor in (dp_actor, iom_actor):
            for group_ids in (list(actor.group_ids), list(actor.group_ids)[:1], [*actor.group_ids, 999_999]):
                values = (group_ids, actor.user.pk, referral.pk)
                assert sorted(prepared.rows(*values)) == sorted(_grants(*values))
    received = referrals[1]
    assert {row[0] for row in prepared.rows(list(dp_actor.group_ids), dp_actor.user.pk, received.pk)} >= {
        "view_referral",
        "view_referral_personal",
    }


def test_an_empty_list_falls_back_to_the_orm(db):
    prepared = PreparedQuery(_grants, ["int", "uuid", "uuid"])
    assert prepared.rows([], uuid.uuid4(), uuid.uuid4()) == []


def test_a_value_that_is_not_of_its_kind_gets_the_orms_own_error(referrals):
    prepared = PreparedQuery(_referral_with_related, ["uuid"])
    prepared.objects(referrals[0].pk)  # compiled
    with pytest.raises(ValidationError):
        prepared.objects("not-a-uuid")


def test_a_queryset_that_does_not_use_its_value_is_not_prepared(referrals):
    """The placeholder is nowhere in the SQL's parameters: every call is the ORM's own evaluation."""
    ignores_value = PreparedQuery(lambda pk: Referral.objects.order_by("created_at")[:1], ["uuid"])
    with mock.patch.object(SQLCompiler, "as_sql", autospec=True, side_effect=SQLCompiler.as_sql) as as_sql:
        first = ignores_value.objects(uuid.uuid4())
        second = ignores_value.objects(uuid.uuid4())
    assert [r.pk for r in first] == [r.pk for r in second] == [referrals[0].pk]
    assert as_sql.call_count == 3  # the attempt, then each call's own compilation


def test_unknown_kinds_are_refused():
    with pytest.raises(ValueError, match="unknown parameter kinds"):
        PreparedQuery(_referral_with_related, ["date"])

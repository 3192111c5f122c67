from decimal import Decimal

import factory
from django.contrib.auth.models import Group, User
from django.utils import timezone

from approvals.models import ApprovalRule, RequestKind
from approvals.services import approval_policy_set
from billing import roles
from billing.models import (
    Account,
    Clinic,
    DisputeReason,
    PaymentMethod,
    PaymentMethodKind,
    Policy,
    Service,
    TaxRate,
)


class ClinicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Clinic
        django_get_or_create = ["code"]
        skip_postgeneration_save = True

    code = factory.Sequence(lambda n: f"CLINIC{n}")
    name = factory.LazyAttribute(lambda o: f"{o.code.title()} Clinic")
    currency = "OMR"
    timezone = "Asia/Muscat"

    # One approval rule for everything of each kind (approvals.ApprovalRule): `direct` (the
    # default for a new clinic) or `approval`. An existing clinic keeps its rules unless asked.
    @factory.post_generation
    def refund_policy(clinic, create, extracted, **kwargs):
        _policy_rule(clinic, create, RequestKind.REFUND, extracted)

    @factory.post_generation
    def cancellation_policy(clinic, create, extracted, **kwargs):
        _policy_rule(clinic, create, RequestKind.CANCELLATION, extracted)


def _policy_rule(clinic, create, kind, policy) -> None:
    if not create:
        return
    if policy is None and ApprovalRule.objects.filter(clinic=clinic, kind=kind).exists():
        return
    approval_policy_set(clinic=clinic, kind=kind, policy=policy or Policy.DIRECT)


def set_policy(clinic, *, refund: str | None = None, cancellation: str | None = None) -> None:
    """Give the clinic one approval rule for everything of a kind: `direct` (no approver) or
    `approval` (one approver), as the clinics' policies were before approval rules."""
    for kind, policy in [(RequestKind.REFUND, refund), (RequestKind.CANCELLATION, cancellation)]:
        if policy is not None:
            approval_policy_set(clinic=clinic, kind=kind, policy=policy)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@clinic.test")
    password = factory.django.Password("pw")

    @factory.post_generation
    def groups(self, create, extracted, **kwargs):
        for name in extracted or ():
            self.groups.add(Group.objects.get(name=name))

    @factory.post_generation
    def clinics(self, create, extracted, **kwargs):
        for clinic in extracted or ():
            clinic.members.add(self)


def clerk_factory(**kwargs):
    kwargs.setdefault("groups", [roles.BILLING_STAFF])
    return UserFactory(**kwargs)


def approver_factory(**kwargs):
    kwargs.setdefault("groups", [roles.FINANCIAL_APPROVERS])
    return UserFactory(**kwargs)


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    clinic = factory.SubFactory(ClinicFactory)
    number = factory.Sequence(lambda n: f"P{n:05d}")
    name = factory.Faker("name")


class TaxRateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TaxRate
        django_get_or_create = ["clinic", "name"]

    clinic = factory.SubFactory(ClinicFactory)
    name = "VAT 5%"
    percentage = Decimal("5")


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service

    clinic = factory.SubFactory(ClinicFactory)
    code = factory.Sequence(lambda n: f"SVC{n}")
    name = factory.Sequence(lambda n: f"Consultation {n}")
    unit_price = Decimal("10.000")
    tax_rate = factory.SubFactory(TaxRateFactory, clinic=factory.SelfAttribute("..clinic"))


class PaymentMethodFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PaymentMethod
        django_get_or_create = ["clinic", "name"]

    clinic = factory.SubFactory(ClinicFactory)
    name = "Cash"
    kind = PaymentMethodKind.MANUAL
    gateway = ""


class DisputeReasonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DisputeReason
        django_get_or_create = ["name"]

    name = "Billing error"


def now():
    return timezone.now()

"""Hostile input through the front doors: every GraphQL field with arguments drawn from the
schema's own types (now and then with an Idempotency-Key, sent twice), every billing form with
hostile field values, missing and extra fields, and the lists' search and filter forms.

Whatever arrives, the answer is never a 500 and never shows driver or Python text; a call that
is refused changes nothing; a call that is carried out did exactly what was sent or typed (ids
and amounts read strictly, as api.lookups and billing.money promise).

The GraphQL strategies are derived from `api.schema.schema`: a new mutation or query is fuzzed
without touching this file. Each example runs in a savepoint that is rolled back, so every
example meets the same data (see `Ledger`). About 300 GraphQL and 200 form examples run when CI
is set (Hypothesis then derandomizes: the same examples on every run), a fifth of that
otherwise, each time new ones."""

import json
import os
import re
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    Undefined,
    get_named_type,
    is_leaf_type,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from approvals.models import FinancialRequest, FinancialRequestLine, RequestStatus
from approvals.services import (
    cancellation_request_create,
    refund_request_create,
    request_approve,
    request_reject,
)
from billing.breakdown import CreditLineInput
from billing.models import (
    Account,
    Clinic,
    DisputeReason,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Payment,
    PaymentMethod,
    Policy,
    TaxRate,
)
from refunds.models import CreditNote, Refund, RefundStatus
from refunds.services import credit_note_create, invoice_cancel

from .api_helpers import api_state, api_token, request_of_other_clinic
from .factories import DisputeReasonFactory, PaymentMethodFactory, TaxRateFactory, set_policy

D = Decimal
IN_CI = bool(os.environ.get("CI"))
ALL_SCOPES = "billing:read billing:write approvals:write"

# Text that must never reach a client: it comes from the database driver or from Python.
LEAKS = ("Traceback", "psycopg", "sqlite", "IntegrityError", "DataError",
         "object has no attribute", "invalid literal", "OperationalError",
         "ProgrammingError", 'File "/')

# An amount as the API and the screens read it: ASCII digits and at most one point.
PLAIN_AMOUNT = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
# A row id as the API reads it: ASCII digits, within a bigint.
ROW_ID = re.compile(r"[0-9]{1,19}")


def fuzz_settings(examples: int):
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])


@contextmanager
def rolled_back():
    """Whatever the block writes is undone when it ends."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


# -- the data every example meets -------------------------------------------------------------


class Ledger:
    """The clinic in every state a call may find it in: a draft, issued, part-paid, paid (cash
    and card), refunded with the refund awaiting payout, a failed card refund, cancelled,
    partly credited; refund and cancellation requests waiting, approved (with lines) and
    rejected; and another clinic's invoice, payment method and request."""

    MODELS = (Clinic, Account, Invoice, InvoiceLine, Payment, PaymentMethod, TaxRate,
              DisputeReason, FinancialRequest, Refund, CreditNote)
    ALIASES = {"request": "financial_request"}

    def __init__(self, request):
        fixture = request.getfixturevalue
        self.clinic = fixture("clinic")
        self.clerk = fixture("clerk")
        self.approver = fixture("approver")
        outsider = fixture("outsider")
        other_invoice = fixture("other_invoice")
        fixture("vat")
        fixture("cash")
        card = fixture("online_card")
        self.reason = reason = fixture("reason")
        make, pay = fixture("make_invoice"), fixture("pay")
        DisputeReasonFactory(name="Retired reason", is_active=False)
        PaymentMethodFactory(clinic=self.clinic, name="Old cheques", is_active=False)
        TaxRateFactory(clinic=self.clinic, name="Zero rated", percentage=D("0"))
        PaymentMethodFactory(clinic=other_invoice.clinic, name="Cash")

        self.draft = make(issue=False)
        self.issued = make()
        self.part_paid = make()
        pay(self.part_paid, "10.000")
        self.paid = make()
        pay(self.paid, "28.700")
        self.card_paid = make()
        pay(self.card_paid, "28.700", method=card)
        self.refunded = make()
        pay(self.refunded, "28.700")
        self.awaiting_payout = credit_note_create(full=True, invoice=self.refunded,
                                                  dispute_reason=reason,
                                              actor=self.clerk).refunds.get()
        self.failed = make()
        pay(self.failed, "28.700", method=card, reference="fail_card")
        failed_refund = credit_note_create(full=True, invoice=self.failed, dispute_reason=reason,
                                       actor=self.clerk).refunds.get()
        Refund.objects.filter(pk=failed_refund.pk).update(status=RefundStatus.FAILED, attempts=1)
        self.cancelled = make()
        invoice_cancel(invoice=self.cancelled, remarks="Wrong patient", actor=self.clerk)
        self.credited = make()
        credit_note_create(invoice=self.credited, dispute_reason=reason, actor=self.clerk,
                           lines=[CreditLineInput(
                               self.credited.lines.order_by("position").first(), D("5"))])

        set_policy(self.clinic, refund=Policy.APPROVAL, cancellation=Policy.APPROVAL)
        self.to_refund = make()
        pay(self.to_refund, "28.700")
        request_reject(financial_request=refund_request_create(invoice=self.to_refund,
                                                               remarks="Twice",
                                                     actor=self.clerk),
                       actor=self.approver, remarks="Not covered")
        self.waiting_refund = refund_request_create(invoice=self.to_refund,
                                                    remarks="Charged twice", actor=self.clerk)
        self.to_cancel = make()
        self.waiting_cancellation = cancellation_request_create(
            invoice=self.to_cancel, remarks="Wrong patient", actor=self.clerk)
        self.approved_lines = make()
        pay(self.approved_lines, "28.700")
        line = self.approved_lines.lines.order_by("position").first()
        request_approve(financial_request=refund_request_create(
            invoice=self.approved_lines, remarks="Overcharged", actor=self.clerk,
            lines=[CreditLineInput(line,
                                   D("5.000"))]), actor=self.approver, remarks="Receipts checked")
        set_policy(self.clinic, refund=Policy.DIRECT, cancellation=Policy.DIRECT)
        request_of_other_clinic(other_invoice, outsider)
        self.open = make()

        self.tokens = {"clerk": api_token(self.clerk, ALL_SCOPES),
                       "approver": api_token(self.approver, ALL_SCOPES)}

    def _kinds(self, pools: dict) -> dict:
        pools.update({alias: pools[kind] for alias, kind in self.ALIASES.items()})
        return pools

    @cached_property
    def pools(self) -> dict[str, list[int]]:
        """The ids of every row, by kind (snake-case model name), every clinic's."""
        pools = self._kinds({snake(model.__name__): sorted(
            model.objects.values_list("pk", flat=True)) for model in self.MODELS})
        pools["any"] = sorted({pk for pks in list(pools.values()) for pk in pks})
        return pools

    @cached_property
    def ours(self) -> dict[str, list[int]]:
        """The ids of the rows our clinic's staff may name and that are in use (rows of no
        clinic included), newest first."""
        def visible(model):
            names = {field.name for field in model._meta.get_fields()}
            path = ("pk" if model is Clinic else "clinic" if "clinic" in names
                    else "invoice__clinic" if "invoice" in names else None)
            rows = model.objects.filter(**{path: self.clinic.pk}) if path else model.objects
            if "is_active" in names:
                rows = rows.filter(is_active=True)
            return list(rows.order_by("-pk").values_list("pk", flat=True))

        return self._kinds({snake(model.__name__): visible(model) for model in self.MODELS})

    @cached_property
    def by_invoice(self) -> dict[str, dict[int, list[int]]]:
        """{kind: {invoice id: ids of its rows}} for the kinds that belong to an invoice."""
        kinds = {}
        for model in self.MODELS:
            if "invoice" in {field.name for field in model._meta.get_fields()}:
                rows: dict[int, list[int]] = {}
                for pk, invoice in model.objects.values_list("pk", "invoice_id"):
                    rows.setdefault(invoice, []).append(pk)
                kinds[snake(model.__name__)] = rows
        return self._kinds(kinds)

    def targets(self, kind: str) -> list[int]:
        """Ours newest first (the ones in the most interesting states), then the others."""
        return self.ours[kind] + [pk for pk in self.pools[kind] if pk not in self.ours[kind]]

    def invoices(self) -> list[int]:
        return self.targets("invoice")

    def requests(self) -> list[int]:
        return self.targets("financial_request")

    def refunds(self) -> list[int]:
        return self.targets("refund")

    @cached_property
    def methods(self) -> list[int]:
        """The clinic's payment methods in use."""
        return sorted(PaymentMethod.objects.filter(clinic=self.clinic, is_active=True)
                      .values_list("pk", flat=True))


@pytest.fixture
def ledger(request, db):
    return Ledger(request)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def set_policies(ledger: Ledger, refund: str, cancellation: str) -> None:
    set_policy(ledger.clinic, refund=refund, cancellation=cancellation)


policies = st.tuples(st.sampled_from(Policy.values), st.sampled_from(Policy.values))


# -- hostile values ---------------------------------------------------------------------------

def weighted(usual: st.SearchStrategy, rare: st.SearchStrategy, weight: int = 9):
    """`usual` about `weight` times as often as `rare` (one_of collapses identical branches,
    so each copy is a distinct strategy)."""
    return st.one_of(*[usual.map(lambda value: value) for _ in range(weight)], rare)


# How hostile one call or one form post is, drawn once per example: not at all (so calls get
# past validation and are carried out), ids and amounts respelled in ways only a lenient reader
# takes for the same value, a hostile value here and there, or mostly hostile values.
HOSTILITY = st.shared(st.sampled_from(["none", "none", "respelled", "some", "most"]),
                      key="hostility")


def mixed(clean: st.SearchStrategy, hostile: st.SearchStrategy) -> st.SearchStrategy:
    """`clean` or `hostile`, as often as this example's hostility says."""
    levels = {"none": clean, "respelled": clean, "some": weighted(clean, hostile, 3),
              "most": weighted(hostile, clean, 2)}
    return HOSTILITY.flatmap(levels.__getitem__)


def respelled(clean: st.SearchStrategy) -> st.SearchStrategy:
    """`clean` digits written so that Python's int() or Decimal() still reads the same number:
    padded, signed, with underscores, in other scripts' digits. In a respelled example about
    half the values are."""
    spelled = st.tuples(clean.map(str), st.sampled_from(RESPELLINGS)).map(
        lambda pair: pair[1](pair[0]))
    clean = clean.map(str)
    return HOSTILITY.flatmap(lambda level: weighted(clean, spelled, 1)
                             if level == "respelled" else clean)


def other_digits(zero: int) -> Callable[[str], str]:
    return lambda text: "".join(chr(zero + int(c)) if c.isdigit() else c for c in text)


def with_underscore(text: str) -> str:
    digits = [i for i, c in enumerate(text) if c.isdigit()]
    if len(digits) < 2:
        return "0_" + text
    return text[:digits[-1]] + "_" + text[digits[-1]:]


RESPELLINGS = [lambda text: f" {text}", lambda text: f"{text} ", lambda text: f"+{text}",
               lambda text: f"\t{text}\n", with_underscore, other_digits(0x0660),
               other_digits(0x06F0), other_digits(0xFF10), other_digits(0x0966)]


SPECIAL_CHARACTERS = (
    "\x01\x07\x08\t\n\r\x0b\x0c\x1b\x7f\x85\xa0\u2028\u2029"  # control characters, line breaks
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    "\ufeff\ufffd\ufdd0\U0001F600\U0001F4A9\U0001F1F4\U0001F1F2\u0301"  # BOM, emoji, combining
    "\u0639\u0627\u0626\u0634\u0629\u05d0\u0661\u06f1\uff11"  # Arabic, Hebrew, other digits
    " aZ09'\"<>&%;\\/`$-_.,{}[]()#*"
)
WORDS = ["Charged twice", "Wrong patient", "P00001", "P09999", "Aisha Al-Balushi", "INV-MUSCAT",
         "عائشة البلوشية", "<script>alert(1)</script>", "'; DROP TABLE billing_invoice; --",
         "%s %d {0} {name}", "${jndi:x}", "null", "undefined", "0", "-1", "aisha@clinic.test",
         "+968 9999 9999", "\u202eevil\u202c", "Ω≈ç√∫", "  padded  ", "\n", ""]


def repeated(piece: str, length: int) -> str:
    return (piece * (length // len(piece) + 1))[:length]


plain_texts = st.one_of(
    st.sampled_from(["Charged twice", "Wrong patient", "Overcharged for the lab test",
                     "P09999", "Omar Al-Harthy", "عائشة البلوشية", "aisha@clinic.test"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz ABC0123456789-", min_size=1, max_size=40),
)
hostile_texts = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=SPECIAL_CHARACTERS, max_size=60),
    st.sampled_from(WORDS),
    st.builds(repeated, st.text(alphabet=SPECIAL_CHARACTERS, min_size=1, max_size=4),
              st.integers(0, 3000)),
    st.sampled_from([30, 31, 100, 101, 200, 201, 999, 1000, 1001, 3000]).map(lambda n: "r" * n),
    st.text(max_size=3).map(lambda text: text + "\x00"),
    plain_texts.map(lambda text: text[:3] + "\x00" + text[3:]),
)

VALID_AMOUNTS = ["0.001", "1", "1.000", "2", "5", "5.000", "7.333", "10", "10.000", "18.700",
                 "20.000", "28.700", "0.5", ".5", "5.", "0005.500"]
HOSTILE_AMOUNTS = [
    "0", "0.000", "30", "1_0", " 5", "5 ", "\t5", "5\n", "1e5", "1E2", "١٠", "٥", "５", "۵",
    "१०", "9" * 30, "9" * 400, "1" + "0" * 40, "999999999.999", "1000000000", "-1", "-0",
    "-0.001", "-28.700", "1.0001", "0." + "0" * 60 + "1", "5.0000", "5.0001", "NaN",
    "Infinity", "-Infinity", "sNaN", "", " ", "+5", "1,000", "1.2.3", "0x10", ".", "-", "∞",
    "½", "٫٥",
]
plain_amounts = st.one_of(st.sampled_from(VALID_AMOUNTS),
                          st.decimals(min_value=D("0.001"), max_value=8, places=3).map(str),
                          st.decimals(min_value=D("0.001"), max_value=30, places=3).map(str))
hostile_amounts = st.one_of(
    st.sampled_from(HOSTILE_AMOUNTS),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.text(alphabet="0123456789.-_e+ ,١٠５", max_size=12),
    plain_amounts,
)

HOSTILE_IDS = [" 1", "1 ", "1_0", "١", "١٢", "１", "-1", "0", "00", "9" * 30, str(2**63),
               str(2**63 - 1), str(2**64), "", " ", "1.0", "1e3", "0x1", "+1", "null", "None",
               "\u202e1", "1\n", "Ω", "💥", "1\x00", "true"]


def hostile_ids(existing: st.SearchStrategy) -> st.SearchStrategy:
    """Ids that name an `existing` row only when read leniently, and ids that name nothing."""
    return st.one_of(
        existing.map(lambda pk: f" {pk}"), existing.map(lambda pk: f"{pk} "),
        existing.map(lambda pk: f"{pk}_0"), existing.map(lambda pk: f"{pk // 10}_{pk % 10}"),
        existing.map(lambda pk: "".join(chr(0x0660 + int(digit)) for digit in str(pk))),
        existing.map(lambda pk: "".join(chr(0xFF10 + int(digit)) for digit in str(pk))),
        existing.map(lambda pk: f"0{pk}"), existing.map(lambda pk: f"{pk}.0"),
        existing.map(lambda pk: f"-{pk}"), existing.map(lambda pk: f"+{pk}"),
        st.sampled_from(HOSTILE_IDS), st.integers().map(str), st.text(max_size=8),
    )


class RawNumber(str):
    """A JSON number, written into the request body exactly as this text."""


def to_json(value, *, ascii_only: bool = True) -> str:
    """JSON text of `value`, RawNumber values written as they are."""
    if isinstance(value, RawNumber):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(key, ensure_ascii=ascii_only)}: "
                               f"{to_json(item, ascii_only=ascii_only)}"
                               for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(to_json(item, ascii_only=ascii_only) for item in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


RAW_NUMBERS = ["1", "5", "5.1", "28.7", "28.700", "0.1", "0", "-0", "-0.0", "-3", "1e5",
               "1E+2", "1e309", "1E-400", "1e-7", "1" + "0" * 40, "1" * 5000, "1.5",
               "0.0000000001", "999999999.999", "123456789012345678901234567890"]
raw_numbers = st.one_of(
    st.sampled_from(RAW_NUMBERS),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.integers().map(str),
).map(RawNumber)

odd_values = st.sampled_from([None, [], {}, "", "true", True, False, 0, -1, [None],
                              {"a": 1}]) | raw_numbers


# -- GraphQL: strategies from the schema ------------------------------------------------------

def graphql_schema():
    from api.schema import schema

    return schema._schema


def root_fields() -> list[tuple[str, str]]:
    schema = graphql_schema()
    return [(operation, name)
            for operation, root in (("mutation", schema.mutation_type),
                                    ("query", schema.query_type))
            if root is not None
            for name in root.fields]


def id_kind(hint: str, field_name: str) -> str:
    """The kind of row an ID argument names: `invoiceLineId` → invoice_line; `requestIds` (a
    list) → request; `id` → the field's own (`creditNote(id:)` → credit_note)."""
    if hint == "id":
        return snake(field_name)
    if hint.endswith("Ids"):
        hint = hint[:-1]
    return snake(hint[:-2] if hint.endswith("Id") else hint)


def clean_ids(kind: str, ledger: Ledger) -> st.SearchStrategy:
    """Ids of rows of the right kind, mostly our clinic's. One invoice is chosen per call: an
    invoice id names it, and the ids of rows that belong to invoices (lines, payments...)
    mostly name its own."""
    ours = ledger.ours.get(kind) or ledger.pools.get(kind) or ledger.pools["any"]
    anyone = ledger.pools.get(kind) or ledger.pools["any"]
    invoice = st.shared(st.sampled_from(ledger.ours["invoice"]), key="invoice")
    if kind == "invoice":
        return weighted(invoice, st.sampled_from(anyone), 9)
    of_invoice = ledger.by_invoice.get(kind)
    if of_invoice:
        return weighted(invoice.flatmap(lambda pk: st.sampled_from(of_invoice.get(pk) or ours)),
                        st.sampled_from(anyone), 4)
    return weighted(st.sampled_from(ours), st.sampled_from(anyone), 4)


def scalar_values(scalar: GraphQLScalarType, hint: str, field_name: str, ledger: Ledger,
                  hostile: bool) -> st.SearchStrategy:
    name = scalar.name
    if name == "ID":
        kind = id_kind(hint, field_name)
        if not hostile:
            return weighted(respelled(clean_ids(kind, ledger)), clean_ids(kind, ledger), 4)
        return st.one_of(
            hostile_ids(clean_ids(kind, ledger)), st.sampled_from(ledger.pools["any"]).map(str),
            st.integers(min_value=-(2**70), max_value=2**70), raw_numbers,
        )
    if name == "Decimal":
        if not hostile:
            return weighted(respelled(plain_amounts), plain_amounts.map(RawNumber), 4)
        return st.one_of(weighted(hostile_amounts, st.integers(), 4), raw_numbers)
    if name == "String":
        return hostile_texts if hostile else plain_texts
    if name == "Int":
        if not hostile:
            return st.integers(min_value=0, max_value=120)
        return st.one_of(
            st.integers(), st.integers(min_value=-5, max_value=200),
            st.sampled_from([2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63, 10**30, 10_000,
                             10_001, 100, 101]),
            raw_numbers, st.sampled_from(["1", "ten", ""]),
        )
    if name == "Boolean":
        return st.sampled_from(["true", "false", 1, 0, "", "yes"]) if hostile else st.booleans()
    return st.one_of(hostile_texts, raw_numbers, st.integers())


def values_of(gql_type, hint: str, field_name: str, ledger: Ledger) -> st.SearchStrategy:
    """Values for a variable or input field of `gql_type`: at each level, what a well-behaved
    client sends or something hostile."""
    return mixed(node_values(gql_type, hint, field_name, ledger, hostile=False),
                 node_values(gql_type, hint, field_name, ledger, hostile=True))


def node_values(gql_type, hint: str, field_name: str, ledger: Ledger, *,
                hostile: bool) -> st.SearchStrategy:
    """Hostile values are also null where null is not allowed, one value where a list is
    expected, input objects with missing or extra keys, values of another type."""
    nullable = not isinstance(gql_type, GraphQLNonNull)
    if not nullable:
        gql_type = gql_type.of_type
    if isinstance(gql_type, GraphQLList):
        item = values_of(gql_type.of_type, hint, field_name, ledger)
        if hostile:
            value = st.one_of(st.lists(item, max_size=4), item)
        else:
            value = st.lists(item, min_size=1, max_size=2)
    elif isinstance(gql_type, GraphQLInputObjectType):
        value = input_objects(gql_type, field_name, ledger, hostile=hostile)
    elif isinstance(gql_type, GraphQLEnumType):
        value = st.sampled_from(sorted(gql_type.values))
        if hostile:
            value = st.one_of(value, st.sampled_from(["", "requested", "Issued", "ISSUED ",
                                                      "FOO", "null"]), st.integers(0, 3))
    else:
        value = scalar_values(gql_type, hint, field_name, ledger, hostile)
    if hostile:
        return weighted(value, odd_values, 5)
    return weighted(value, st.none(), 5) if nullable else value


def input_objects(gql_type: GraphQLInputObjectType, field_name: str, ledger: Ledger, *,
                  hostile: bool) -> st.SearchStrategy:
    fields = {name: values_of(field.type, name, field_name, ledger)
              for name, field in gql_type.fields.items()}

    @st.composite
    def build(draw):
        value = {}
        for name, strategy in fields.items():
            field = gql_type.fields[name]
            optional = (not isinstance(field.type, GraphQLNonNull)
                        or field.default_value is not Undefined)
            if optional and draw(st.booleans()):
                continue
            if hostile and not optional and draw(st.integers(0, 9)) == 0:
                continue  # a required key missing
            value[name] = draw(strategy)
        if hostile and draw(st.integers(0, 4)) == 0:
            value[draw(st.sampled_from(["extra", "id", "__typename", "", "amount_"]))] = draw(
                odd_values)
        return value

    return build()


def selection(gql_type, operation: str) -> str:
    """A mutation payload: `errors` and the id of each object it returns, and a bulk call's
    `outcomes` (their leaf fields and the id of their object). A query: the leaf fields of what
    it returns."""
    named = get_named_type(gql_type)
    if not isinstance(named, GraphQLObjectType):
        return ""
    chosen = []
    for name, field in named.fields.items():
        if any(isinstance(arg.type, GraphQLNonNull) for arg in field.args.values()):
            continue
        target = get_named_type(field.type)
        if operation == "mutation":
            if name == "errors":
                chosen.append(name)
            elif isinstance(target, GraphQLObjectType) and "id" in target.fields:
                chosen.append(f"{name} {{ id }}")
            elif name == "outcomes":
                chosen.append(f"{name} {selection(target, 'outcome')}")
        elif operation == "outcome" and isinstance(target, GraphQLObjectType):
            chosen.append(f"{name} {{ id }}")
        elif is_leaf_type(target):
            chosen.append(name)
    return "{ " + " ".join(chosen) + " }"


@dataclass(frozen=True)
class Call:
    document: str
    variables: dict
    arguments: dict  # argument name → its GraphQL type, for those the document passes
    persona: str
    policies: tuple[str, str]
    ascii_only: bool
    idempotency_key: str | None  # sent as Idempotency-Key
    twice: bool  # sent again with the same key: a replay, which changes nothing

    def body(self) -> str:
        return ('{"query": ' + json.dumps(self.document) + ', "variables": '
                + to_json(self.variables, ascii_only=self.ascii_only) + "}")


# Header values as an HTTP server hands them on: visible ASCII, spaces and Latin-1.
idempotency_keys = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                   exclude_characters="\x7f"), min_size=1, max_size=300),
    st.sampled_from(["k1", "a" * 255, "a" * 256, " ", "null", "%00", "k1\t"]),
)


def scopes_of(field) -> set[str]:
    """The scopes the field's permission extensions ask for."""
    definition = field.extensions.get("strawberry-definition")
    return {getattr(permission, "scope", None)
            for extension in getattr(definition, "extensions", ())
            for permission in getattr(extension, "permissions", ())}


def calls(operation: str, field_name: str, ledger: Ledger) -> st.SearchStrategy:
    root = getattr(graphql_schema(), f"{operation}_type")
    field = root.fields[field_name]
    arguments = {name: (arg, values_of(arg.type, name, field_name, ledger))
                 for name, arg in field.args.items()}
    chosen_selection = selection(field.type, operation)
    # who mostly calls it: an approver when it needs the approvals scope, else a clerk
    personas = ("approver", "clerk") if "approvals:write" in scopes_of(field) else (
        "clerk", "approver")

    @st.composite
    def build(draw):
        declared, passed, variables, types = [], [], {}, {}
        for name, (arg, strategy) in arguments.items():
            optional = (not isinstance(arg.type, GraphQLNonNull)
                        or arg.default_value is not Undefined)
            if optional and draw(st.booleans()):
                continue  # left to its default
            declared.append(f"${name}: {arg.type}")
            passed.append(f"{name}: ${name}")
            types[name] = arg.type
            if not optional and draw(st.integers(0, 49)) == 0:
                continue  # a required variable that is not sent
            variables[name] = draw(strategy)
        if draw(st.integers(0, 19)) == 0:
            variables["unexpected"] = draw(odd_values | hostile_texts)
        head = f"{operation} Fuzz({', '.join(declared)})" if declared else operation
        call = f"{field_name}({', '.join(passed)})" if passed else field_name
        return Call(document=f"{head} {{ {call} {chosen_selection} }}", variables=variables,
                    arguments=types,
                    persona=draw(st.integers(0, 4).map(lambda n: personas[n == 4])),
                    policies=draw(policies), ascii_only=draw(st.booleans()),
                    idempotency_key=draw(weighted(st.none(), idempotency_keys, 3)),
                    twice=draw(st.booleans()))

    return build()


def sent_values(value, gql_type, scalar: str):
    """Every value sent for a `scalar` (by name) inside a variable of `gql_type`."""
    if value is None or value is Undefined:
        return
    if isinstance(gql_type, GraphQLNonNull):
        yield from sent_values(value, gql_type.of_type, scalar)
    elif isinstance(gql_type, GraphQLList):
        for item in value if isinstance(value, list) else [value]:
            yield from sent_values(item, gql_type.of_type, scalar)
    elif isinstance(gql_type, GraphQLInputObjectType):
        if isinstance(value, dict):
            for name, field in gql_type.fields.items():
                yield from sent_values(value.get(name), field.type, scalar)
    elif getattr(gql_type, "name", None) == scalar:
        yield value


def number_text(value) -> str:
    """The text of an amount as it was sent (a string, a JSON integer or a JSON number)."""
    return str(value)


def is_row_id(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 < value < 2**63
    return bool(ROW_ID.fullmatch(str(value))) and 0 < int(str(value)) < 2**63


def check_answer(response) -> dict:
    """Never a 5xx; JSON with `data` and/or `errors`; no driver or Python text."""
    assert response.status_code in (200, 400), (response.status_code, response.content[:2000])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    text = response.content.decode()
    for leak in LEAKS:
        assert leak not in text, text[:3000]
    body = json.loads(text)
    assert isinstance(body, dict) and body, body
    assert set(body) <= {"data", "errors", "extensions"}, body
    assert "data" in body or "errors" in body, body
    for error in body.get("errors") or []:
        assert isinstance(error.get("message"), str) and error["message"].strip(), error
    return body


# -- what a mutation that was carried out must have done ---------------------------------------

def by_line(lines) -> dict:
    """{invoice line id: amount sent} of the lines a mutation was given."""
    return {int(line["invoiceLineId"]): line.get("amount") for line in lines}


def credited_exactly_as_sent(note: CreditNote, sent_lines, remaining: dict) -> None:
    expected = {line: D(number_text(amount)) if amount is not None else remaining[line]
                for line, amount in by_line(sent_lines).items()}
    assert dict(note.lines.values_list("invoice_line_id", "net")) == expected


def check_payment_create(call: Call, payload: dict, before: dict) -> None:
    payment = Payment.objects.get(pk=payload["payment"]["id"])
    assert payment.amount == D(number_text(call.variables["amount"]))
    assert payment.invoice_id == int(call.variables["invoiceId"])
    assert payment.reference == (call.variables.get("reference") or "").strip()


def check_invoice_create(call: Call, payload: dict, before: dict) -> None:
    invoice = Invoice.objects.get(pk=payload["invoice"]["id"])
    lines = call.variables["lines"]
    lines = lines if isinstance(lines, list) else [lines]
    stored = list(invoice.lines.order_by("position").values_list("quantity", "unit_price"))
    assert stored == [(D(number_text(line["quantity"])), D(number_text(line["unitPrice"])))
                      for line in lines]
    assert invoice.account_id == int(call.variables["accountId"])


def check_credit_note_create(call: Call, payload: dict, before: dict) -> None:
    note = CreditNote.objects.get(pk=payload["creditNote"]["id"])
    lines = call.variables["lines"]
    credited_exactly_as_sent(note, lines if isinstance(lines, list) else [lines],
                             before["remaining"])
    assert note.invoice_id == int(call.variables["invoiceId"])
    assert note.description == (call.variables.get("remarks") or "").strip()


def check_refund_request_create(call: Call, payload: dict, before: dict) -> None:
    request = FinancialRequest.objects.get(pk=payload["financialRequest"]["id"])
    assert request.status == RequestStatus.REQUESTED
    assert request.remarks == call.variables["remarks"].strip()
    lines = call.variables.get("lines") or []
    lines = lines if isinstance(lines, list) else [lines]
    expected = {line: D(number_text(amount)) if amount is not None else before["remaining"][line]
                for line, amount in by_line(lines).items()}
    assert dict(FinancialRequestLine.objects.filter(request=request).values_list(
        "invoice_line_id", "amount")) == expected


def check_decision(status: str) -> Callable:
    def check(call: Call, payload: dict, before: dict) -> None:
        request = FinancialRequest.objects.get(pk=payload["financialRequest"]["id"])
        assert request.status == status
        if status in (RequestStatus.APPROVED, RequestStatus.REJECTED):
            assert request.decision_remarks == (call.variables.get("remarks") or "").strip()

    return check


def check_bulk_decision(status: str) -> Callable:
    """Each request decided was named by its row id and is now `status` (or, approved by the
    first of two approvers, still waiting), with the remarks sent."""
    def check(call: Call, payload: dict, before: dict) -> None:
        for outcome in payload["outcomes"]:
            if not outcome["ok"]:
                continue
            request = FinancialRequest.objects.get(pk=outcome["financialRequest"]["id"])
            assert int(outcome["requestId"]) == request.pk
            assert request.status == status or (
                status == RequestStatus.APPROVED and request.status == RequestStatus.REQUESTED
                and request.approvals.exists()), (outcome, request.status)
            if request.status == status:
                assert request.decision_remarks == (call.variables.get("remarks") or "").strip()

    return check


def check_outcomes(payload: dict) -> bool:
    """A bulk call's outcomes, each decided on its own: a decided one names a row id and has its
    object; a refused one says why and has none. Whether any was decided."""
    for outcome in payload["outcomes"]:
        objects = [value for key, value in outcome.items() if isinstance(value, dict | None)
                   and key != "error"]
        if outcome["ok"]:
            assert is_row_id(outcome["requestId"]), outcome
            assert outcome["error"] is None and all(value is not None for value in objects)
        else:
            assert outcome["error"].strip() and all(value is None for value in objects), outcome
    return any(outcome["ok"] for outcome in payload["outcomes"])


def check_account_create(call: Call, payload: dict, before: dict) -> None:
    account = Account.objects.get(pk=payload["account"]["id"])
    assert account.name == call.variables["name"].strip()
    assert account.number == call.variables["number"].strip()


CARRIED_OUT = {
    "paymentCreate": check_payment_create,
    "invoiceCreate": check_invoice_create,
    "creditNoteCreate": check_credit_note_create,
    "invoiceRefundRequestCreate": check_refund_request_create,
    "financialRequestApprove": check_decision(RequestStatus.APPROVED),
    "financialRequestReject": check_decision(RequestStatus.REJECTED),
    "financialRequestWithdraw": check_decision(RequestStatus.WITHDRAWN),
    "financialRequestsApprove": check_bulk_decision(RequestStatus.APPROVED),
    "financialRequestsReject": check_bulk_decision(RequestStatus.REJECTED),
    "accountCreate": check_account_create,
}


def remaining_on_lines() -> dict:
    return {line.pk: line.creditable_net for line in InvoiceLine.objects.all()}


# -- GraphQL: the test --------------------------------------------------------------------------

FIELDS = root_fields()
MUTATIONS = sum(operation == "mutation" for operation, _ in FIELDS)
QUERIES = len(FIELDS) - MUTATIONS
GRAPHQL_EXAMPLES = 300 if IN_CI else 60
# a query gets one example in eight, at least one; the mutations the rest
PER_QUERY = max(1, GRAPHQL_EXAMPLES // 8 // QUERIES)
PER_MUTATION = max(2, round((GRAPHQL_EXAMPLES - PER_QUERY * QUERIES) / MUTATIONS))


@pytest.mark.parametrize(("operation", "name"), FIELDS, ids=[name for _, name in FIELDS])
def test_graphql_field_with_hostile_arguments(ledger, client, operation, name):
    examples = PER_MUTATION if operation == "mutation" else PER_QUERY

    @fuzz_settings(examples)
    @given(calls(operation, name, ledger))
    def run(call: Call):
        with rolled_back():
            set_policies(ledger, *call.policies)
            before = api_state()
            remaining = remaining_on_lines()
            headers = {"HTTP_AUTHORIZATION": f"Bearer {ledger.tokens[call.persona]}"}
            if call.idempotency_key is not None:
                headers["HTTP_IDEMPOTENCY_KEY"] = call.idempotency_key
            response = client.post("/graphql/", data=call.body().encode(),
                                   content_type="application/json", **headers)
            body = check_answer(response)
            after = api_state()
            if call.idempotency_key is not None and call.twice:
                again = client.post("/graphql/", data=call.body().encode(),
                                    content_type="application/json", **headers)
                assert (again.status_code, again.content) == (
                    response.status_code, response.content)
                assert api_state() == after, "a retry with the same Idempotency-Key changed more"
            if operation == "query":
                assert after == before
                if not body.get("errors"):
                    assert name in body["data"], body
                return
            payload = (body.get("data") or {}).get(name)
            carried_out = (payload is not None and payload.get("errors") == []
                           and not body.get("errors"))
            bulk = carried_out and "outcomes" in payload
            if bulk:  # each id is decided or refused on its own: the ids are checked there
                carried_out = check_outcomes(payload)
            if not carried_out:
                assert after == before, body
                if payload is not None:
                    assert all(message.strip() for message in payload["errors"]), payload
                return
            objects = {key: value for key, value in payload.items() if key != "errors"}
            assert all(value is not None for value in objects.values()), payload
            assert after != before, "carried out, but nothing changed"
            for argument, gql_type in call.arguments.items():
                value = call.variables.get(argument)
                for sent in () if bulk else sent_values(value, gql_type, "ID"):
                    assert is_row_id(sent), f"carried out with {argument} id {sent!r}"
                for sent in sent_values(value, gql_type, "Decimal"):
                    assert PLAIN_AMOUNT.fullmatch(number_text(sent)), (
                        f"carried out with {argument} amount {sent!r}")
            check = CARRIED_OUT.get(name)
            if check:
                check(call, payload, {"remaining": remaining})

    run()


def test_every_root_field_is_fuzzed():
    assert {name for _, name in FIELDS} >= {"paymentCreate", "creditNoteCreate", "invoices"}
    assert MUTATIONS * PER_MUTATION + QUERIES * PER_QUERY >= GRAPHQL_EXAMPLES * 0.9


# -- the forms ------------------------------------------------------------------------------------

CHECKBOX_VALUES = ["", "true", "false", "0", "1", "off", "False", "no", "ON", "on "]
ACTIONS = ["", "CONFIRM", "confirm ", "delete", "Confirm", "preview"]
GOOD_DATETIMES = ["2030-01-02T09:30", "2024-05-01T00:00", "2030-01-02 09:30"]
DATETIMES = ["2030-01-02T09:30:59", "", "yesterday", "0001-01-01T00:00", "0001-01-01 00:00",
             "9999-12-31T23:59", "2030-02-30T09:30", "2030-13-01T09:30", "１٠30-01-02T09:30",
             "2030-01-02T25:61", "1970-01-01T00:00", "2030-01-02T09:30+05:00",
             "2030-01-02T09:30Z", "-2030-01-02T09:30", "2030-01-02T09:30:00.9999999"]


def field(draw, clean: st.SearchStrategy, hostile: st.SearchStrategy):
    """A posted field: what the screen itself sends, or a hostile value, left out (None), or
    sent twice."""
    return draw(mixed(clean, weighted(hostile, st.none() | st.lists(
        hostile | clean, min_size=2, max_size=2), 4)))


def posted(value):
    """What the view reads for a field (QueryDict.get: the last value)."""
    if isinstance(value, list):
        return value[-1]
    return value


@st.composite
def form_bodies(draw, screen, ledger: Ledger, pk: int) -> dict:
    """The screen's fields, now and then an extra one."""
    body = {key: value for key, value in screen.fields(draw, ledger, pk).items()
            if value is not None}
    if draw(st.integers(0, 4)) == 0:
        name = draw(st.sampled_from(["extra", "status", "amount", "invoice", "pk", "id",
                                     "line_0", "amount_0", "csrfmiddlewaretoken", "action",
                                     "_method"]) | st.text(min_size=1, max_size=10))
        body.setdefault(name, draw(hostile_texts))
    return body


def line_fields(draw, ledger: Ledger, invoice_pk: int) -> dict:
    """Tick boxes and amounts for the invoice's lines, and now and then another invoice's."""
    lines = list(InvoiceLine.objects.filter(invoice_id=invoice_pk).values_list("pk", flat=True))
    if draw(st.integers(0, 5)) == 0:
        lines.append(draw(st.sampled_from(ledger.pools["invoice_line"])))
    body = {}
    for line in lines:
        body[f"line_{line}"] = field(draw, st.sampled_from(["on", None]),
                                     st.sampled_from(CHECKBOX_VALUES) | hostile_texts)
        body[f"amount_{line}"] = field(draw, respelled(plain_amounts) | st.just(""),
                                       hostile_amounts)
    return body


def ticked(value) -> bool:
    """How a Django CheckboxInput reads a posted value."""
    value = posted(value)
    return value is not None and value.lower() not in ("", "false")


def typed_lines(body: dict, invoice_pk: int, remaining: dict) -> dict:
    """{line: amount} the typed tick boxes and amounts ask for (a blank amount: what remains)."""
    lines = InvoiceLine.objects.filter(invoice_id=invoice_pk).values_list("pk", flat=True)
    chosen = {}
    for line in lines:
        if ticked(body.get(f"line_{line}")):
            amount = posted(body.get(f"amount_{line}"))
            assert not amount or PLAIN_AMOUNT.fullmatch(amount), f"carried out with {amount!r}"
            chosen[line] = D(amount) if amount else remaining[line]
    return chosen


def id_field(draw, good: list[int], pool: list[int], *, blank: bool = False):
    """A select box: one of the `good` ids (or blank, when the field may be), or any other."""
    clean = respelled(st.sampled_from(good)) if good else st.just("")
    if blank and good:
        clean = weighted(clean, st.just(""), 2)
    return field(draw, clean, hostile_ids(st.sampled_from(good + pool))
                 | st.sampled_from(pool).map(str))


def remarks_field(draw):
    return field(draw, plain_texts, hostile_texts)


@dataclass(frozen=True)
class Screen:
    """A form that writes: where it is, who posts it, what it is sent, where it goes when it was
    carried out, and what must then be true."""

    url_name: str
    kwarg: str
    targets: Callable[[Ledger], list[int]]
    fields: Callable  # (draw, ledger, pk) → POST body
    done: Callable[[Ledger, int], str]  # where a form that was carried out redirects
    check: Callable[[Ledger, int, dict, dict], None]  # (ledger, pk, body, before)
    persona: str = "clerk"  # who mostly posts it; the other persona now and then
    done_is_also_refused: bool = False  # refusals redirect to the same page


def to_invoice(ledger, pk):
    return reverse("desk:invoice_detail", args=[pk])


def payment_fields(draw, ledger, pk):
    return {
        "method": id_field(draw, ledger.methods, ledger.pools["payment_method"]),
        "amount": field(draw, respelled(plain_amounts), hostile_amounts),
        "reference": field(draw, plain_texts | st.just(""), hostile_texts),
        "received_at": field(draw, st.sampled_from(GOOD_DATETIMES),
                             st.sampled_from(DATETIMES) | hostile_texts),
    }


def payment_check(ledger, pk, body, before):
    payment = Payment.objects.order_by("-pk").first()
    assert payment.pk not in before["payments"]
    assert payment.invoice_id == pk
    typed = posted(body["amount"])
    assert PLAIN_AMOUNT.fullmatch(typed), f"carried out with the amount {typed!r}"
    assert payment.amount == D(typed)
    assert payment.reference == (posted(body.get("reference")) or "").strip()
    assert payment.method.clinic_id == ledger.clinic.pk and payment.method.is_active


def credit_fields(draw, ledger, pk):
    payments = list(Payment.objects.filter(invoice_id=pk).values_list("pk", flat=True))
    return {
        "dispute_reason": id_field(draw, [ledger.reason.pk], ledger.pools["dispute_reason"]),
        "payment": id_field(draw, payments, ledger.pools["payment"], blank=True),
        "remarks": field(draw, plain_texts | st.just(""), hostile_texts),
        "action": field(draw, st.sampled_from(["confirm", "preview"]),
                        st.sampled_from(ACTIONS) | hostile_texts),
        **line_fields(draw, ledger, pk),
    }


def credit_check(ledger, pk, body, before):
    assert posted(body.get("action")) == "confirm", "a preview wrote something"
    note = CreditNote.objects.order_by("-pk").first()
    assert note.pk not in before["notes"] and note.invoice_id == pk
    assert note.description == (posted(body.get("remarks")) or "").strip()
    assert dict(note.lines.values_list("invoice_line_id", "net")) == typed_lines(
        body, pk, before["remaining"])


def cancel_check(ledger, pk, body, before):
    invoice = Invoice.objects.get(pk=pk)
    assert invoice.status == InvoiceStatus.CANCELLED
    note = CreditNote.objects.order_by("-pk").first()
    assert note.pk not in before["notes"] and note.invoice_id == pk
    assert note.description == posted(body["remarks"]).strip()


def refund_request_fields(draw, ledger, pk):
    return {"remarks": remarks_field(draw), **line_fields(draw, ledger, pk)}


def new_request(pk, before) -> FinancialRequest:
    request = FinancialRequest.objects.order_by("-pk").first()
    assert request.pk not in before["requests"] and request.invoice_id == pk
    assert request.status == RequestStatus.REQUESTED
    return request


def refund_request_check(ledger, pk, body, before):
    request = new_request(pk, before)
    assert request.kind == "refund"
    assert request.remarks == posted(body["remarks"]).strip()
    assert dict(request.lines.values_list("invoice_line_id", "amount")) == typed_lines(
        body, pk, before["remaining"])


def cancellation_request_check(ledger, pk, body, before):
    request = new_request(pk, before)
    assert request.kind == "cancellation"
    assert request.remarks == posted(body["remarks"]).strip()


def decided(status):
    def check(ledger, pk, body, before):
        request = FinancialRequest.objects.get(pk=pk)
        assert request.status == status
        assert request.decided_by_id == ledger.approver.pk
        assert request.decision_remarks == (posted(body.get("remarks")) or "").strip(), (
            "the decision was recorded without the remarks typed")

    return check


def withdrawn(ledger, pk, body, before):
    assert FinancialRequest.objects.get(pk=pk).status == RequestStatus.WITHDRAWN


def paid_out(ledger, pk, body, before):
    refund = Refund.objects.get(pk=pk)
    assert refund.status == RefundStatus.PAID_OUT and refund.paid_out_by_id == ledger.clerk.pk


def request_invoice(ledger, pk):
    return to_invoice(ledger, FinancialRequest.objects.get(pk=pk).invoice_id)


def refund_invoice(ledger, pk):
    return to_invoice(ledger, Refund.objects.get(pk=pk).invoice_id)


def remarks_only(draw, ledger, pk):
    return {"remarks": remarks_field(draw)}


def optional_remarks(draw, ledger, pk):
    return {"remarks": field(draw, plain_texts | st.just(""), hostile_texts)}


def nothing(draw, ledger, pk):
    return {}


def to_queue(ledger, pk):
    return reverse("approvals:queue")


SCREENS = {
    "payment": Screen("billing:payment_create", "pk", Ledger.invoices, payment_fields,
                      to_invoice, payment_check),
    "credit_note": Screen("refunds:credit_note_create", "pk", Ledger.invoices, credit_fields,
                          to_invoice, credit_check),
    "cancel": Screen("refunds:invoice_cancel", "pk", Ledger.invoices, remarks_only, to_invoice,
                     cancel_check),
    "refund_request": Screen("approvals:refund_request_create", "invoice_pk", Ledger.invoices,
                             refund_request_fields, to_invoice, refund_request_check),
    "cancellation_request": Screen("approvals:cancellation_request_create", "invoice_pk",
                                   Ledger.invoices, remarks_only, to_invoice,
                                   cancellation_request_check),
    "approve": Screen("approvals:request_approve", "pk", Ledger.requests, optional_remarks,
                      to_queue, decided(RequestStatus.APPROVED), persona="approver"),
    "reject": Screen("approvals:request_reject", "pk", Ledger.requests, remarks_only, to_queue,
                     decided(RequestStatus.REJECTED), persona="approver"),
    "withdraw": Screen("approvals:request_withdraw", "pk", Ledger.requests, nothing,
                       request_invoice, withdrawn),
    "refund_paid_out": Screen("refunds:refund_paid_out", "pk", Ledger.refunds, optional_remarks,
                              refund_invoice, paid_out, done_is_also_refused=True),
}
FORM_EXAMPLES = 200 if IN_CI else 40
PER_SCREEN = max(2, round(FORM_EXAMPLES / len(SCREENS)))
PER_LIST = 8 if IN_CI else 2


def form_state() -> dict:
    return {
        "state": api_state(),
        "payments": set(Payment.objects.values_list("pk", flat=True)),
        "notes": set(CreditNote.objects.values_list("pk", flat=True)),
        "requests": set(FinancialRequest.objects.values_list("pk", flat=True)),
        "remaining": remaining_on_lines(),
    }


@pytest.mark.parametrize("screen_name", SCREENS)
def test_form_with_hostile_fields(ledger, screen_name):
    screen = SCREENS[screen_name]
    browsers = {"clerk": Client(), "approver": Client()}
    browsers["clerk"].force_login(ledger.clerk)
    browsers["approver"].force_login(ledger.approver)
    other = "approver" if screen.persona == "clerk" else "clerk"
    targets = screen.targets(ledger)

    @fuzz_settings(PER_SCREEN)
    @given(st.data())
    def run(data):
        pk = data.draw(weighted(st.sampled_from(targets), st.just(2**31 - 1), 12), label="pk")
        persona = data.draw(weighted(st.just(screen.persona), st.just(other), 4),
                            label="persona")
        body = data.draw(form_bodies(screen, ledger, pk), label="body")
        with rolled_back():
            set_policies(ledger, *data.draw(policies, label="policies"))
            before = form_state()
            url = reverse(screen.url_name, kwargs={screen.kwarg: pk})
            response = browsers[persona].post(url, body)
            assert response.status_code in (200, 302, 403, 404), response.status_code
            text = response.content.decode()
            for leak in LEAKS:
                assert leak not in text, text[:3000]
            changed = api_state() != before["state"]
            done_url = screen.done(ledger, pk) if response.status_code == 302 else None
            went_to_done = done_url is not None and response["Location"] == done_url
            if not changed:
                assert not went_to_done or screen.done_is_also_refused, (
                    "redirected as carried out, but nothing changed")
                return
            assert went_to_done, (response.status_code, response.get("Location"))
            screen.check(ledger, pk, body, before)
            assert browsers[persona].get(response["Location"]).status_code == 200

    run()


# -- the lists' search and filter forms -----------------------------------------------------------

LISTS = {
    "desk:invoice_list": ("q", "status", "date_from", "date_to", "page"),
    "approvals:queue": ("q", "status", "date_from", "date_to", "page"),
    "refunds:credit_note_list": ("q", "kind", "page"),
    "refunds:cancelled_register": ("page",),
}
FILTER_VALUES = {
    "q": st.sampled_from(["INV-MUSCAT-000003", "CN-MUSCAT", "P00001", "Aisha", "INV"]),
    "status": st.sampled_from(["", "issued", "paid", "requested", "approved"]),
    "kind": st.sampled_from(["", "refund", "credit", "cancellation"]),
    "date_from": st.sampled_from(["", "2024-01-01", "2030-12-31"]),
    "date_to": st.sampled_from(["", "2024-01-01", "2030-12-31"]),
    "page": st.sampled_from(["1", "2", "last"]),
}
HOSTILE_FILTERS = st.one_of(hostile_texts, hostile_ids(st.integers(1, 50)),
                            st.sampled_from(["0", "-1", "9" * 30, "0001-01-01", "9999-12-31",
                                             "2030-02-30", "last", "NaN"]))


@pytest.mark.parametrize("url_name", LISTS)
def test_list_filters_with_hostile_values(ledger, client, url_name):
    client.force_login(ledger.clerk)
    before = api_state()

    @fuzz_settings(PER_LIST)
    @given(st.fixed_dictionaries({}, optional={
        name: field_value for name in LISTS[url_name]
        for field_value in [mixed(FILTER_VALUES[name], HOSTILE_FILTERS)]}))
    def run(query):
        response = client.get(reverse(url_name), query)
        assert response.status_code == 200, response.status_code
        text = response.content.decode()
        for leak in LEAKS:
            assert leak not in text, text[:3000]

    run()
    assert api_state() == before

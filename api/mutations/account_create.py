import strawberry
from strawberry import Info

from billing.exceptions import BusinessRuleError
from billing.services import account_create as account_create_service

from ..lookups import clinic_for, user_of
from ..types import AccountType


@strawberry.type
class AccountCreatePayload:
    account: AccountType | None = None
    errors: list[str] = strawberry.field(default_factory=list)


def account_create(info: Info, clinic_id: strawberry.ID, name: str, number: str,
                   email: str = "", phone: str = "") -> AccountCreatePayload:
    try:
        account = account_create_service(clinic=clinic_for(info, clinic_id), name=name,
                                         number=number, email=email, phone=phone,
                                         actor=user_of(info))
    except BusinessRuleError as error:
        return AccountCreatePayload(errors=[error.message])
    return AccountCreatePayload(account=account)

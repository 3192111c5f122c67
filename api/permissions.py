from typing import Any

from strawberry.permission import BasePermission, PermissionExtension


class HasScope(BasePermission):
    """The token carries the scope (a signed-in browser session has every scope; its user's
    permissions and clinics still apply in the services)."""

    def __init__(self, scope: str):
        self.scope = scope
        self.message = f"This operation needs the {scope} scope; ask for a token that has it."

    def has_permission(self, source: Any, info, **kwargs: Any) -> bool:
        return self.scope in getattr(info.context.request, "api_scopes", ())


def needs(scope: str) -> list[PermissionExtension]:
    """extensions=needs("billing:write")"""
    return [PermissionExtension(permissions=[HasScope(scope)])]

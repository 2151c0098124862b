# Owns the list of roles and the check of a role name.
"""Roles. A key holds exactly one; every route of the service is owned by exactly one, and a
key of any other role is refused there (`admin` is not a wildcard)."""

from __future__ import annotations

from childguard.errors import InputFormatError
from childguard.store.account_models import ROLES

__all__ = ["ROLES", "check_role"]


def check_role(role: str) -> str:
    """`role` if it is one of ROLES; InputFormatError naming the roles otherwise."""
    if role not in ROLES:
        raise InputFormatError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    return role

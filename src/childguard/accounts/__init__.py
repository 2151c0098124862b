# Owns accounts as plain functions: API keys and their roles (users come later).
"""Accounts: the roles and the API keys that carry them.

The service (`childguard.service.auth`) and the CLI (`childguard key ...`) both call these
functions; they are independent layers, so what they share lives here, below both.
"""

from childguard.accounts.keys import (
    KEY_PREFIX,
    ApiKeyInfo,
    KeyNotFound,
    create_key,
    hash_key,
    identify_key,
    list_keys,
    revoke_key,
)
from childguard.accounts.roles import ROLES, check_role

__all__ = [
    "KEY_PREFIX",
    "ROLES",
    "ApiKeyInfo",
    "KeyNotFound",
    "check_role",
    "create_key",
    "hash_key",
    "identify_key",
    "list_keys",
    "revoke_key",
]

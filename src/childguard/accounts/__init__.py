# Owns accounts as plain functions: API keys, users, their roles and their browser sessions.
"""Accounts: the roles, the API keys that carry one, and the users who hold several and sign
in to browser sessions.

The service (`childguard.service.auth`) and the CLI (`childguard key|user|role ...`) both call
these functions; they are independent layers, so what they share lives here, below both.
"""

from childguard.accounts.keys import (
    KEY_PREFIX,
    ApiKeyInfo,
    KeyNotFound,
    cached_key,
    create_key,
    hash_key,
    identify_key,
    list_keys,
    revoke_key,
)
from childguard.accounts.passwords import WeakPassword, check_password, hash_password
from childguard.accounts.roles import ROLES, check_role
from childguard.accounts.sessions import (
    Lifetime,
    SessionInfo,
    csrf_token_for,
    end_all_sessions,
    end_session,
    lookup_session,
)
from childguard.accounts.users import (
    FIRST_ADMIN,
    LoginFailed,
    UserExists,
    UserInfo,
    UserNotFound,
    authenticate,
    check_username,
    create_user,
    disable_user,
    enable_user,
    ensure_first_admin,
    get_user,
    get_user_by_id,
    grant_roles,
    identify_session,
    list_users,
    remove_user,
    revoke_roles,
    set_password,
    sign_in,
)

__all__ = [
    "FIRST_ADMIN",
    "KEY_PREFIX",
    "ROLES",
    "ApiKeyInfo",
    "KeyNotFound",
    "Lifetime",
    "LoginFailed",
    "SessionInfo",
    "UserExists",
    "UserInfo",
    "UserNotFound",
    "WeakPassword",
    "authenticate",
    "cached_key",
    "check_password",
    "check_role",
    "check_username",
    "create_key",
    "create_user",
    "csrf_token_for",
    "disable_user",
    "enable_user",
    "end_all_sessions",
    "end_session",
    "ensure_first_admin",
    "get_user",
    "get_user_by_id",
    "grant_roles",
    "hash_key",
    "hash_password",
    "identify_key",
    "identify_session",
    "list_keys",
    "list_users",
    "lookup_session",
    "remove_user",
    "revoke_key",
    "revoke_roles",
    "set_password",
    "sign_in",
]

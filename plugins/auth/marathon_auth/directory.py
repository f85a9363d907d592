"""Who may log in and what they may do: the users file and ``--http_credentials``.

The users file is TOML (read with the standard library's ``tomllib``)::

    [users.alice]
    password = "scrypt$16384$8$1$..."     # marathon-auth-passwd
    groups = ["readers"]
    tokens = ["sha256$..."]                # marathon-auth-passwd --token

    [[rules]]
    groups = ["readers"]                   # and/or users = ["alice"]; "*" = everyone
    actions = ["view"]                     # create, update, delete, view, "*", or
                                           # Marathon's names (ViewRunSpec, ...)
    resources = ["/prod/*", "Events"]      # path prefixes, exact paths, system
                                           # resources (Leader, Events, ...), "*"

Nothing is allowed that no rule allows. The ``--http_credentials`` user (Marathon's
single Basic user) may do everything, as in Marathon.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from marathon_auth.passwords import check_password_hash
from marathon_core.contracts.auth import Action, Resource, SystemResource
from marathon_core.errors import ConfigError

__all__ = ["Directory", "Rule", "User", "load_users_file"]

_VERBS: Mapping[str, frozenset[Action]] = {
    verb: frozenset(a for a in Action if a.value.lower().startswith(verb))
    for verb in ("create", "update", "delete", "view")
}
_SYSTEM = {r.value: r for r in SystemResource}


@attrs.frozen
class User:
    name: str
    #: A scrypt hash from the users file; None for a user who has only tokens.
    password_hash: str | None = None
    #: The ``--http_credentials`` password (kept as given; Marathon's flag is plain text).
    plain_password: str | None = None
    groups: frozenset[str] = frozenset()
    token_hashes: tuple[str, ...] = ()


def _matches_path(pattern: str, path: str) -> bool:
    if pattern.endswith("/*"):
        prefix = pattern[:-2]
        return path == (prefix or "/") or path.startswith(prefix + "/")
    return path == pattern


@attrs.frozen
class Rule:
    """Allows ``actions`` on ``resources`` to the named users and members of ``groups``."""

    users: frozenset[str]
    groups: frozenset[str]
    actions: frozenset[Action]
    resources: tuple[str, ...]

    def applies_to(self, user: User) -> bool:
        return "*" in self.users or user.name in self.users or bool(self.groups & user.groups)

    def allows(self, action: Action, resource: Resource) -> bool:
        if action not in self.actions:
            return False
        for pattern in self.resources:
            if pattern == "*":
                return True
            if isinstance(resource, SystemResource):
                if pattern == resource.value:
                    return True
            elif pattern.startswith("/") and _matches_path(pattern, resource):
                return True
        return False


#: What the ``--http_credentials`` user may do: everything.
ALLOW_ALL = Rule(frozenset(), frozenset(), frozenset(Action), ("*",))


@attrs.frozen
class Directory:
    users: Mapping[str, User]
    rules: Sequence[Rule]
    #: Users allowed everything whatever the rules say (``--http_credentials``).
    admins: frozenset[str] = frozenset()

    def may(self, user_name: str, action: Action, resource: Resource) -> bool:
        """Deny by default: True only if a rule for this user allows it."""
        user = self.users.get(user_name)
        if user is None:
            return False
        if user.name in self.admins:
            return True
        return any(r.applies_to(user) and r.allows(action, resource) for r in self.rules)


def build_directory(users_file: Path | None, http_credentials: str | None) -> Directory | None:
    """The directory from the flags; None when neither is given (the plugin stays out)."""
    if users_file is None and not http_credentials:
        return None
    users: dict[str, User] = {}
    rules: list[Rule] = []
    if users_file is not None:
        users, rules = load_users_file(users_file)
    admins: frozenset[str] = frozenset()
    if http_credentials:
        name, sep, password = http_credentials.partition(":")
        if not sep or not name or not password:
            raise ConfigError("--http_credentials must be user:password")
        if name in users:
            raise ConfigError(f"--http_credentials user {name!r} is also in {users_file}")
        users[name] = User(name, plain_password=password)
        admins = frozenset({name})
    return Directory(users, rules, admins)


def load_users_file(path: Path) -> tuple[dict[str, User], list[Rule]]:
    """Parse the users file; every mistake is a ConfigError naming the file and the entry."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"--auth_users {path}: {exc}") from None
    unknown = set(data) - {"users", "rules"}
    if unknown:
        raise ConfigError(f"--auth_users {path}: unknown tables {sorted(unknown)}")
    try:
        users = {name: _user(name, entry) for name, entry in _table(data, "users").items()}
        rules = [_rule(entry) for entry in data.get("rules", [])]
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"--auth_users {path}: {exc}") from None
    return users, rules


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ValueError(f"{key} must be a table")
    return value


def _strings(entry: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: {key} must be a list of strings")
    return value


def _user(name: str, entry: Any) -> User:
    where = f"users.{name}"
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where} must be a table")
    unknown = set(entry) - {"password", "groups", "tokens"}
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    password = entry.get("password")
    if password is not None:
        if not isinstance(password, str):
            raise ValueError(f"{where}: password must be a string")
        try:
            check_password_hash(password)
        except ValueError as exc:
            raise ValueError(f"{where}: password: {exc}") from None
    tokens = _strings(entry, "tokens", where)
    for token in tokens:
        if not token.startswith("sha256$") or len(token) != len("sha256$") + 64:
            raise ValueError(f"{where}: tokens hold sha256$<hex> (marathon-auth-passwd --token)")
    groups = frozenset(_strings(entry, "groups", where))
    return User(name, password_hash=password, groups=groups, token_hashes=tuple(tokens))


def _actions(names: Iterable[str], where: str) -> frozenset[Action]:
    actions: set[Action] = set()
    for name in names:
        if name == "*":
            actions.update(Action)
        elif name.lower() in _VERBS:
            actions.update(_VERBS[name.lower()])
        elif name in {a.value for a in Action}:
            actions.add(Action(name))
        else:
            raise ValueError(f"{where}: unknown action {name!r}")
    return frozenset(actions)


def _rule(entry: Any) -> Rule:
    where = "rules"
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: each rule must be a table")
    unknown = set(entry) - {"users", "groups", "actions", "resources"}
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    resources = _strings(entry, "resources", where)
    for pattern in resources:
        if pattern != "*" and not pattern.startswith("/") and pattern not in _SYSTEM:
            raise ValueError(
                f"{where}: resource {pattern!r} is neither a path, '*' nor one of {sorted(_SYSTEM)}"
            )
    return Rule(
        users=frozenset(_strings(entry, "users", where)),
        groups=frozenset(_strings(entry, "groups", where)),
        actions=_actions(_strings(entry, "actions", where), where),
        resources=tuple(resources),
    )

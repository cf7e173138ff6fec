"""The simulator's accounts: one generated fleet, quota and counters per AWS account, and the
temporary credentials STS issued for them.

A WorkSpaces request is served by the account of the access key it is signed with (the
``Credential=AKID/...`` of its SigV4 ``Authorization`` header): a key issued by AssumeRole belongs
to the role's account, a key configured with :meth:`AccountBook.add_access_key` to its account,
and any other key to the default account. As AWS access key ids do, an issued key carries its
account (``ASIA`` + the account in base 36 + 8 random characters), so a simulator standing for
another region, in another process, serves it from that account too (unverified: it cannot know
the session). An account can deny AssumeRole (``AccessDenied``) or
require an external id; temporary credentials expire at their ``Expiration`` (simulated clock) or
when :meth:`AccountBook.expire_sessions` says so (``ExpiredToken``).
"""

from __future__ import annotations

import random
import re
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fleetops.sim._fleet import ACCOUNT_ID, Fleet
from fleetops.sim._stats import Counters

__all__ = ["DEFAULT_ACCOUNT", "Account", "AccountBook", "Session", "access_key_of"]

DEFAULT_ACCOUNT = ACCOUNT_ID
ACCOUNT_RE = re.compile(r"^\d{12}$")
_CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/")


def access_key_of(authorization: str) -> str | None:
    """The access key id of a SigV4 ``Authorization`` header (None: unsigned or another scheme)."""
    match = _CREDENTIAL_RE.search(authorization)
    return match.group(1) if match else None


_B36 = string.digits + string.ascii_uppercase


def _base36(number: int) -> str:
    digits = ""
    for _ in range(8):
        number, digit = divmod(number, 36)
        digits = _B36[digit] + digits
    return digits


def _account_in_key(access_key: str) -> str | None:
    """The account an issued temporary key names (None: not such a key)."""
    if len(access_key) != 20 or not access_key.startswith("ASIA"):
        return None
    try:
        account = int(access_key[4:12], 36)
    except ValueError:
        return None
    return f"{account:012d}" if account < 10**12 else None


@dataclass
class Account:
    """One simulated AWS account: its fleet, its own quota buckets and counters."""

    account_id: str
    fleet: Fleet
    counters: Counters = field(default_factory=Counters)
    buckets: dict[str, Any] = field(default_factory=dict)
    deny_assume_role: bool = False
    external_id: str | None = None  # AssumeRole must carry it when set
    sts_calls: Counter[str] = field(default_factory=Counter)
    sessions_issued: int = 0


@dataclass
class Session:
    """Temporary credentials issued by AssumeRole."""

    access_key: str
    secret_key: str
    token: str
    account_id: str
    role_arn: str
    session_name: str
    expires_at: float  # simulated epoch seconds
    expired: bool = False

    @property
    def arn(self) -> str:
        role = self.role_arn.rpartition("/")[2]
        return f"arn:aws:sts::{self.account_id}:assumed-role/{role}/{self.session_name}"


class AccountBook:
    """Every account the simulator serves and every key it knows."""

    def __init__(self, default: Account, make_fleet: Callable[[str], Fleet]) -> None:
        self.default = default
        self._make_fleet = make_fleet
        self.accounts: dict[str, Account] = {default.account_id: default}
        self.static_keys: dict[str, str] = {}
        self.sessions: dict[str, Session] = {}
        self.session_seconds: float | None = None  # overrides DurationSeconds when set
        self._keys = random.Random(0x5EED)

    def add(self, account_id: str) -> Account:
        """The account ``account_id``, generating its fleet the first time."""
        if not ACCOUNT_RE.match(account_id):
            raise ValueError(f"not a 12-digit AWS account id: {account_id!r}")
        account = self.accounts.get(account_id)
        if account is None:
            account = self.accounts[account_id] = Account(account_id, self._make_fleet(account_id))
        return account

    def add_access_key(self, access_key: str, account_id: str) -> None:
        """Requests signed with ``access_key`` are served by ``account_id``."""
        self.static_keys[access_key] = self.add(account_id).account_id

    def account_for(self, access_key: str | None) -> tuple[Account, Session | None]:
        """The account serving a request signed with ``access_key``, and its STS session."""
        if access_key is None:
            return self.default, None
        session = self.sessions.get(access_key)
        if session is not None:
            return self.add(session.account_id), session
        account_id = self.static_keys.get(access_key) or _account_in_key(access_key)
        return (self.add(account_id) if account_id else self.default), None

    def issue(
        self, account: Account, role_arn: str, name: str, now: float, seconds: float
    ) -> Session:
        """New temporary credentials for ``role_arn`` in ``account``."""
        alphabet = string.ascii_uppercase + string.digits
        key = "ASIA" + _base36(int(account.account_id)) + "".join(
            self._keys.choice(alphabet) for _ in range(8)
        )
        secret = "".join(self._keys.choice(string.ascii_letters + string.digits) for _ in range(40))
        token = "FwoGZXIvYXdzE" + "".join(
            self._keys.choice(string.ascii_letters + string.digits) for _ in range(80)
        )
        lifetime = self.session_seconds if self.session_seconds is not None else seconds
        session = Session(key, secret, token, account.account_id, role_arn, name, now + lifetime)
        self.sessions[key] = session
        account.sessions_issued += 1
        return session

    def share_credentials(self, other: AccountBook) -> None:
        """Trust the keys and sessions ``other`` knows (and issues from now on): STS and IAM
        are global, fleets are regional — one book per region, credentials shared."""
        self.sessions = other.sessions
        self.static_keys = other.static_keys

    def expire_sessions(self, account_id: str | None = None) -> int:
        """Expire every temporary credential issued so far (for ``account_id``, or all)."""
        count = 0
        for session in self.sessions.values():
            if account_id is None or session.account_id == account_id:
                session.expired = True
                count += 1
        return count

"""API keys in The Things Stack's format, stored hashed in a file, and the rights they grant.

A key reads `NNSXS.<ID>.<SECRET>`: a 39-character base32 ID (24 random bytes) that names the key and is safe to
log, and a 64-character base32 secret (40 random bytes, 320 bits). Only SHA-256 of the secret is stored.

Why SHA-256 and not scrypt/PBKDF2: slow hashes protect guessable passwords; a 320-bit random secret cannot be
brute-forced whatever the hash, and a slow KDF would cost tens of milliseconds of CPU on *every* API call
(every HTTP request re-presents the key), turning auth into a denial-of-service lever. Comparison is
constant-time and an unknown ID costs the same work as a wrong secret.

The file is re-read when it changes (mtime/size/inode checked at most once per `reload_interval`), so
`gatewayserver keys create|revoke` take effect on a running daemon without a restart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from gatewayserver.errors import INVALID_ARGUMENT, PERMISSION_DENIED, UNAUTHENTICATED, GsError

from . import metrics

log = logging.getLogger(__name__)

KEY_PREFIX = "NNSXS"
ID_LENGTH = 39
SECRET_LENGTH = 64
_B32 = re.compile(r"\A[A-Z2-7]+\Z")
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()


def _right_names() -> tuple[str, ...]:
    from gatewayserver.ttnpb import rights_pb2

    return tuple(v.name for v in rights_pb2.Right.DESCRIPTOR.values if v.number != 0)


ALL_RIGHTS: frozenset[str] = frozenset(_right_names())
GATEWAY_RIGHTS: frozenset[str] = frozenset(r for r in ALL_RIGHTS if r.startswith("RIGHT_GATEWAY_"))


def expand_rights(rights: Iterable[str]) -> frozenset[str]:
    """Apply the reference's implications: *_ALL pseudo-rights grant everything below them, LINK implies INFO."""
    out = set(rights)
    if "RIGHT_ALL" in out:
        out |= ALL_RIGHTS
    if "RIGHT_GATEWAY_ALL" in out:
        out |= GATEWAY_RIGHTS
    if "RIGHT_GATEWAY_LINK" in out:
        out.add("RIGHT_GATEWAY_INFO")
    return frozenset(out)


def normalize_right(name: str) -> str:
    """`RIGHT_GATEWAY_INFO`, `gateway_info` or `right-gateway-info` → `RIGHT_GATEWAY_INFO`."""
    upper = name.strip().upper().replace("-", "_")
    if not upper.startswith("RIGHT_"):
        upper = "RIGHT_" + upper
    if upper not in ALL_RIGHTS:
        # The gateway rights are the ones this server checks (plus RIGHT_ALL, which grants them all); naming the
        # 50 other rights of the reference's enum here would hide the useful ones.
        useful = ", ".join(["RIGHT_ALL", *sorted(GATEWAY_RIGHTS)])
        raise ValueError(f"unknown right {name!r}; the rights this server checks: {useful}")
    return upper


# --- errors (names follow the reference where it has one) ---------------------------------------------------


def err_unauthenticated() -> GsError:
    return GsError("pkg/auth", "unauthenticated", "unauthenticated", code=UNAUTHENTICATED)


def err_invalid_authorization() -> GsError:
    return GsError("pkg/auth", "invalid_authorization", "invalid authorization", code=UNAUTHENTICATED)


_AUTH_TYPE = re.compile(r"\A[A-Za-z][A-Za-z0-9_-]{0,19}\Z")


def public_auth_type(auth_type: str) -> str:
    """The authorization type as it may be echoed in an error: a header without `Bearer ` has the key itself
    where the type should be, and errors end up in clients' logs."""
    return auth_type if _AUTH_TYPE.match(auth_type) else "<not shown>"


def err_unsupported_auth_type(auth_type: str) -> GsError:
    auth_type = public_auth_type(auth_type)
    return GsError(
        "pkg/auth", "auth_type", "unsupported authorization type `{auth_type}`", code=INVALID_ARGUMENT,
        attributes={"auth_type": auth_type},
    )


def err_token_rejected() -> GsError:
    return GsError("pkg/auth", "api_key_not_found", "API key not found", code=UNAUTHENTICATED)


def err_no_gateway_rights(gateway_id: str) -> GsError:
    return GsError(
        "pkg/auth/rights", "no_gateway_rights", "no rights for gateway `{uid}`", code=PERMISSION_DENIED,
        attributes={"uid": gateway_id},
    )


def err_insufficient_gateway_rights(gateway_id: str, missing: Iterable[str]) -> GsError:
    return GsError(
        "pkg/auth/rights",
        "insufficient_gateway_rights",
        "insufficient rights for gateway `{uid}`",
        code=PERMISSION_DENIED,
        attributes={"uid": gateway_id, "missing": ",".join(sorted(missing))},
    )


# --- keys ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    secret_hash: str
    rights: frozenset[str]
    gateway_ids: frozenset[str] | None = None
    created_at: str = ""

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "id": self.id,
            "name": self.name,
            "secret_sha256": self.secret_hash,
            "rights": sorted(self.rights),
        }
        if self.gateway_ids is not None:
            out["gateway_ids"] = sorted(self.gateway_ids)
        if self.created_at:
            out["created_at"] = self.created_at
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ApiKey:
        gateways = obj.get("gateway_ids")
        return cls(
            id=str(obj["id"]),
            name=str(obj.get("name", "")),
            secret_hash=str(obj["secret_sha256"]),
            rights=frozenset(normalize_right(str(r)) for r in obj.get("rights", []) or []),
            gateway_ids=frozenset(str(g) for g in gateways) if gateways is not None else None,
            created_at=str(obj.get("created_at", "")),
        )


@dataclass(frozen=True)
class Principal:
    """Who is calling and what they may do; `rights` are already expanded."""

    key_id: str
    name: str
    rights: frozenset[str]
    gateway_ids: frozenset[str] | None = None

    def rights_for(self, gateway_id: str) -> frozenset[str]:
        """Rights on one gateway: only gateway rights count, as the reference lists them per entity."""
        if self.gateway_ids is not None and gateway_id not in self.gateway_ids:
            return frozenset()
        return self.rights & GATEWAY_RIGHTS

    def rights_for_each(self, gateway_ids: Iterable[str]) -> dict[str, frozenset[str]]:
        """`rights_for` of many gateways at once, for requests naming thousands of them: the key's gateway rights
        are computed once and the same frozenset is shared by every gateway it covers, so each id costs one set
        look-up and no allocation."""
        held = self.rights & GATEWAY_RIGHTS
        none: frozenset[str] = frozenset()
        restricted = self.gateway_ids
        if restricted is None:
            return dict.fromkeys(gateway_ids, held)
        return {gateway_id: held if gateway_id in restricted else none for gateway_id in gateway_ids}

    def require(self, gateway_id: str, *required: str) -> None:
        held = self.rights_for(gateway_id)
        if not held:
            raise err_no_gateway_rights(gateway_id)
        missing = set(required) - held
        if missing:
            raise err_insufficient_gateway_rights(gateway_id, missing)


def generate_key() -> tuple[str, str, str]:
    """(full key, id, secret) with the reference's alphabet and lengths."""
    key_id = base64.b32encode(secrets.token_bytes(24)).decode().rstrip("=")
    secret = base64.b32encode(secrets.token_bytes(40)).decode()
    assert len(key_id) == ID_LENGTH and len(secret) == SECRET_LENGTH
    return f"{KEY_PREFIX}.{key_id}.{secret}", key_id, secret


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def split_key(token: str) -> tuple[str, str] | None:
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    key_id, secret = parts[1], parts[2]
    if len(key_id) != ID_LENGTH or len(secret) != SECRET_LENGTH or not _B32.match(key_id) or not _B32.match(secret):
        return None
    return key_id, secret


class KeyStore:
    """Keys from `--keys-file`, checked per call; reloaded when the file changes."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        *,
        reload_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = os.fspath(path) if path is not None else None
        self._reload_interval = reload_interval
        self._clock = clock
        self._keys: dict[str, ApiKey] = {}
        self._signature: tuple[int, int, int] | None = None
        self._checked_at = -1e18
        if self.path is not None:
            self._maybe_reload(force=True)

    # --- file ----------------------------------------------------------------------------------------------

    def _maybe_reload(self, force: bool = False) -> None:
        if self.path is None:
            return
        now = self._clock()
        if not force and now - self._checked_at < self._reload_interval:
            return
        self._checked_at = now
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self._keys:
                log.warning("keys file disappeared; no API keys are valid", extra={"path": self.path})
            self._keys, self._signature = {}, None
            return
        signature = (st.st_mtime_ns, st.st_size, st.st_ino)
        if signature == self._signature and not force:
            return
        try:
            self._keys = {k.id: k for k in load_keys_file(self.path)}
            self._signature = signature
            log.info("loaded API keys", extra={"path": self.path, "count": len(self._keys)})
        except Exception as exc:  # keep serving with the previous keys
            log.error("could not load keys file; keeping previous keys", extra={"path": self.path, "error": str(exc)})
            self._signature = signature

    def keys(self) -> list[ApiKey]:
        self._maybe_reload()
        return list(self._keys.values())

    # --- authentication ------------------------------------------------------------------------------------

    def authenticate(self, authorization: str | None, api: str = "http") -> Principal:
        """Check an `Authorization` header (or gRPC metadata) value; raise an Unauthenticated error otherwise.

        Failures are counted per API; neither the key nor its secret is ever logged, only its public ID.
        """
        try:
            if not authorization:
                raise err_unauthenticated()
            auth_type, _, token = authorization.strip().partition(" ")
            if auth_type.lower() != "bearer":
                raise err_unsupported_auth_type(auth_type)
            parts = split_key(token.strip())
            if parts is None:
                raise err_invalid_authorization()
            key_id, secret = parts
            self._maybe_reload()
            key = self._keys.get(key_id)
            presented = hash_secret(secret)
            expected = key.secret_hash if key is not None else _DUMMY_HASH
            if not hmac.compare_digest(presented, expected) or key is None:
                log.info("rejected API key", extra={"key_id": key_id, "api": api})
                raise err_token_rejected()
        except GsError:
            metrics.auth_failures.labels(api).inc()
            raise
        return Principal(key.id, key.name, expand_rights(key.rights), key.gateway_ids)


def load_keys_file(path: str) -> list[ApiKey]:
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.strip():
        return []
    doc = orjson.loads(raw)
    entries = doc.get("keys", []) if isinstance(doc, dict) else doc
    return [ApiKey.from_json(e) for e in entries]


def _keys_file_group(path: str, directory: str) -> int:
    """The group that may read the keys file: the existing file's, else its directory's."""
    try:
        return os.stat(path).st_gid
    except FileNotFoundError:
        return os.stat(directory).st_gid


def save_keys_file(path: str, keys: Iterable[ApiKey]) -> None:
    """Write atomically (temp file + rename) so a reloading daemon never reads half a file.

    Mode 0640, group kept from the file it replaces (a new file takes its directory's group): the operator runs
    `keys create` as root, the daemon runs as an unprivileged user of that group (the systemd install makes
    /etc/gatewayserver root:gatewayserver 0750). A root-only 0600 file would lock the daemon out of its own keys
    at the next reload. The file holds hashes only, and nobody outside the group gets to read it.
    """
    data = orjson.dumps({"version": 1, "keys": [k.to_json() for k in keys]}, option=orjson.OPT_INDENT_2) + b"\n"
    directory = os.path.dirname(os.path.abspath(path))
    group = _keys_file_group(path, directory)
    fd, tmp = tempfile.mkstemp(prefix=".keys-", dir=directory)
    try:
        os.fchmod(fd, 0o640)
        if os.fstat(fd).st_gid != group:
            try:
                os.fchown(fd, -1, group)
            except PermissionError:  # not root and not in that group: the file keeps the writer's group
                pass
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def create_key(
    path: str, name: str, rights: Iterable[str], gateway_ids: Iterable[str] | None = None, *, now: float | None = None
) -> tuple[str, ApiKey]:
    """Add a key to the file; returns the full key (shown once) and its stored record."""
    normalized = frozenset(normalize_right(r) for r in rights)
    if not normalized:
        raise ValueError("a key needs at least one right")
    existing = load_keys_file(path) if os.path.exists(path) else []
    token, key_id, secret = generate_key()
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now if now is not None else time.time()))
    record = ApiKey(
        id=key_id,
        name=name,
        secret_hash=hash_secret(secret),
        rights=normalized,
        gateway_ids=frozenset(gateway_ids) if gateway_ids else None,
        created_at=created,
    )
    save_keys_file(path, [*existing, record])
    return token, record


def revoke_key(path: str, id_or_name: str) -> list[ApiKey]:
    """Remove keys whose ID (or unique name) matches; returns what was removed."""
    keys = load_keys_file(path)
    removed = [k for k in keys if k.id == id_or_name]
    if not removed:
        removed = [k for k in keys if k.name == id_or_name]
        if len(removed) > 1:
            raise ValueError(f"name {id_or_name!r} is ambiguous; revoke by ID")
    if removed:
        save_keys_file(path, [k for k in keys if k not in removed])
    return removed

"""Masking credentials in anything shown or logged: settings, URLs, error strings.

A setting is rarely secret by its name alone: `VEDIKA_REDIS_URL` is an address, until
it reads `redis://:hunter2@cache:6379/0`. So every string is masked by its shape:
the password in a URL's userinfo (`scheme://user:PASSWORD@host`) and the value of
secret-looking query parameters (`?password=`, `&api_key=`, ...), wherever they are
in the string (an error message quoting a URL is masked too).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

MASK = "******"

# `scheme://user:password@host`. As URL parsers read it, the userinfo ends at the last
# `@` of the authority (which ends at the first `/`, `?` or `#`), so a password holding
# `@` is masked whole. A URL with a user and no password (`redis://name@host`) has
# nothing secret in its userinfo and is left as it is.
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*):(?P<secret>[^/?#\s]*)@")

# Query or fragment parameters whose value is a credential: any name containing one of
# these words (`password`, `db_pass`, `authToken`, `x-api-key`, `client_secret`, ...).
# Masking a harmless `sslkey=/path` too is the price of never missing a real one.
_SECRET_WORDS = r"pass|pwd|token|secret|key|auth|credential|signature|sig"
_PARAM = re.compile(
    r"(?P<head>[?&;#][A-Za-z0-9_.-]*?(?:" + _SECRET_WORDS + r")[A-Za-z0-9_.-]*=)"
    r"(?P<secret>[^&;#\s]*)",
    re.IGNORECASE,
)


def mask_secrets(text: str) -> str:
    """`text` with URL passwords and secret query values replaced by `******`."""
    if "://" not in text and "=" not in text:
        return text  # the common case: nothing URL-like, nothing to do
    text = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    return _PARAM.sub(lambda m: m["head"] + (MASK if m["secret"] else ""), text)


def mask_value(value: Any) -> Any:
    """One setting as `vedika config` shows it: secrets masked, paths as strings."""
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        # A hint of which key it is (its first characters), never enough to use it.
        return (secret[:3] + "…" + "*" * 6) if secret else ""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, list | tuple):
        return [mask_value(v) for v in value]
    if isinstance(value, dict):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, BaseModel):  # e.g. an identity provider and its client secret
        return {k: mask_value(getattr(value, k)) for k in type(value).model_fields}
    return value


def masked_settings(settings: BaseModel) -> dict[str, Any]:
    """Every setting under its environment name, each masked by `mask_value`.

    The database URL is shown as used (drivers filled in, SQLite under the data dir)."""
    out: dict[str, Any] = {}
    for name, field in type(settings).model_fields.items():
        alias = field.validation_alias
        key = alias if isinstance(alias, str) else name
        out[str(key)] = mask_value(getattr(settings, name))
    effective = getattr(settings, "effective_database_url", None)
    if isinstance(effective, str):
        out["VEDIKA_DATABASE_URL"] = mask_secrets(effective)
    return out

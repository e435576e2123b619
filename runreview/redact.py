"""Removing credentials from locations before they are shown, logged or hashed."""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

#: MLflow's credential variables: their values are scrubbed from every error shown.
CREDENTIAL_ENV = ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME")
_SECRET_QUERY_KEYS = re.compile(r"(token|secret|password|passwd|pwd|key|sig|signature|auth)", re.I)


def redact_uri(uri: str) -> str:
    """``uri`` with any user/password and secret-looking query values replaced by ``***``.

    >>> redact_uri("https://alice:S3cr3t@mlflow.corp/path?token=abc&x=1")
    'https://***@mlflow.corp/path?token=***&x=1'
    """
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<unparseable uri>"
    if len(parts.scheme) <= 1:  # a plain path (or a Windows drive letter)
        return uri
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, "***" if _SECRET_QUERY_KEYS.search(k) else v) for k, v in pairs], safe="*"
        )
    if netloc == parts.netloc and query == parts.query:
        return uri  # nothing secret; keep the exact spelling (sqlite:/// loses a slash)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str, secrets: list[str]) -> str:
    """``text`` with every non-trivial string of ``secrets`` replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


def uri_secrets(uri: str) -> list[str]:
    """The secret parts of ``uri`` (password, user, secret query values), for scrubbing."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return [uri]
    found = [s for s in (parts.password, parts.username) if s]
    found += [v for k, v in parse_qsl(parts.query) if _SECRET_QUERY_KEYS.search(k) and v]
    return found


def env_secrets() -> list[str]:
    """The values of :data:`CREDENTIAL_ENV` set in the environment, for scrubbing."""
    return [value for name in CREDENTIAL_ENV if (value := os.environ.get(name, ""))]

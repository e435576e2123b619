"""Credentials never survive redaction."""

from __future__ import annotations

import pytest

from runreview.redact import redact_text, redact_uri, uri_secrets


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("https://alice:S3cr3t@mlflow.corp", "https://***@mlflow.corp"),
        ("postgresql://u:p4ss@h/db", "postgresql://***@h/db"),
        ("https://h/x?token=abc&page=2", "https://h/x?token=***&page=2"),
        ("sqlite:///tmp/x.db", "sqlite:///tmp/x.db"),
        ("/data/mlruns", "/data/mlruns"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ],
)
def test_redact_uri(uri, expected):
    assert redact_uri(uri) == expected


def test_secrets_of_a_uri_are_scrubbed_from_text():
    uri = "https://alice:S3cr3t@mlflow.corp/?api_key=K3y"
    text = f"failed to reach {uri}"
    scrubbed = redact_text(text, uri_secrets(uri))
    assert "S3cr3t" not in scrubbed and "K3y" not in scrubbed

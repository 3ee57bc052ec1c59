"""Pure helpers of the CLI: variable naming for run/export and dotenv quoting."""

from __future__ import annotations

import subprocess

import pytest

from strongroom.cli.admin import env_name, quote_dotenv


@pytest.mark.parametrize(
    ("path", "prefix", "name"),
    [
        ("app/billing/db-password", "app/billing/", "DB_PASSWORD"),
        ("app/billing/api.key", "app/billing/", "API_KEY"),
        ("app/billing/nested/x_y", "app/billing/", "NESTED_X_Y"),
        ("database/redis/auth", "", "DATABASE_REDIS_AUTH"),
    ],
)
def test_env_name(path: str, prefix: str, name: str) -> None:
    assert env_name(path, prefix) == name


@pytest.mark.parametrize(
    "value", ["plain", "it's", "'", "''", "$HOME `id` \\", "a\nb\n", "é ü", "x'; rm -rf / #"]
)
def test_quote_dotenv_round_trips_through_sh(value: str) -> None:
    out = subprocess.run(
        ["sh", "-c", f'V={quote_dotenv(value)}; printf %s "$V"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == value

"""Run ``clarity ...`` in the test process against the test database, as a fresh shell
would: only the ``CLARITY_*`` variables given here count (``CLARITY_SHARED_DATA`` is kept:
it says where the shared data sets are)."""

from __future__ import annotations

import os

from typer.testing import CliRunner

from clarity.cli import app
from clarity.config import get_settings
from tests.conftest import TEST_SECRET


def run_clarity(database_url: str, *args: str, **extra_env: str) -> tuple[int, str]:
    """Exit status and output (stdout and stderr); an unexpected exception is raised."""
    env = {
        "CLARITY_DATABASE_URL": database_url,
        "CLARITY_SECRET_KEY": TEST_SECRET,
        "CLARITY_ENVIRONMENT": "test",
        "CLARITY_REDIS_URL": "",
        "CLARITY_LOG_LEVEL": "WARNING",
        "COLUMNS": "250",
        **extra_env,
    }
    saved = {
        k: v
        for k, v in os.environ.items()
        if k.startswith("CLARITY_") and k != "CLARITY_SHARED_DATA"
    }
    for key in saved:
        os.environ.pop(key)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, list(args), env=env)
    finally:
        get_settings.cache_clear()
        os.environ.update(saved)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout + result.stderr

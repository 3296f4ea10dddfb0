"""Structured JSON logging with PHI redaction applied before anything is written.

Every line passes through :func:`redact_phi`, which masks values of known PHI fields and
anything that looks like an email, phone number, SSN or date of birth. The request id is
bound through contextvars by the request middleware, so every line of a request has it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import orjson
import structlog

REDACTED = "[redacted]"

# Field names whose values are PHI or secrets wherever they appear.
PHI_FIELDS = frozenset(
    {
        "email",
        "password",
        "new_password",
        "current_password",
        "name",
        "given_name",
        "family_name",
        "full_name",
        "first_name",
        "last_name",
        "dob",
        "date_of_birth",
        "birth_date",
        "phone",
        "address",
        "mrn",
        "ssn",
        "note",
        "text",
        "body",
        "token",
        "access_token",
        "refresh_token",
        "authorization",
        "totp_code",
        "recovery_code",
        "secret",
    }
)

_PATTERNS = [
    re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}"),  # email
    re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),  # SSN-like
    # phone-like (a UUID whose leading groups happen to be all digits is not a phone number)
    re.compile(r"(?<![\w-])(?![0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-)\+?\d[\d\s().\-]{8,}\d\b"),
    re.compile(r"\b(?:19|20)\d{2}-\d{2}-\d{2}\b(?!T)"),  # ISO date (date of birth)
    re.compile(r"\b\d{1,2}/\d{1,2}/(?:19|20)\d{2}\b"),  # US date
]


def redact_text(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def _redact_value(key: str, value: Any) -> Any:
    if key.lower() in PHI_FIELDS:
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(key, v) for v in value]
    return value


def redact_phi(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask PHI in every field, the event message included."""
    for key in list(event_dict):
        event_dict[key] = _redact_value(key, event_dict[key])
    return event_dict


def _dumps(obj: Any, default: Any = None) -> str:
    return orjson.dumps(obj, default=default).decode()


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    """Route structlog and the standard library (uvicorn, SQLAlchemy) through one pipeline."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_phi,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        # Drop filtered-out levels before any processor (redaction is not free).
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # uvicorn's own access log prints raw paths (with ids); ours prints route templates.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("alembic").setLevel(logging.WARNING)  # schema checks run at every start
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


def dump_json_line(obj: Mapping[str, Any]) -> bytes:
    return orjson.dumps(obj) + b"\n"

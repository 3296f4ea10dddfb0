"""What a worker does: event handlers by topic, and periodic jobs.

A handler receives the event's payload (``event_id``, ``event_type``, ``partition_key``
and the event's own fields) and must be idempotent by ``event_id``: delivery is at least
once. It returns when the event is handled for good (committed); raising means "not now",
and the same event comes back, before any later event of its partition.

Handlers are added by registration hooks, functions ``hook(registry, runtime)``: the
built-in ones (:data:`BUILTIN_HOOKS`) and those named in ``CLARITY_WORKER_HANDLERS``
("module:function", comma-separated), which is how a deployment (or a test) adds its own
without touching this code. A periodic job runs in every worker, every ``seconds``: make
it safe to run concurrently (advisory lock, conditional updates).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from clarity.events import Handler

if TYPE_CHECKING:
    from clarity.runtime import Runtime

Job = Callable[[], Awaitable[None]]
Hook = Callable[["Registry", "Runtime"], None]


class HookError(ValueError):
    """A ``CLARITY_WORKER_HANDLERS`` entry that does not name a registration function."""


@dataclass(frozen=True)
class Route:
    name: str
    pattern: str  # a topic, or a shell-style pattern such as "alert.*"
    handler: Handler


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    seconds: float
    run: Job


@dataclass
class Registry:
    routes: list[Route] = field(default_factory=list)
    jobs: list[PeriodicJob] = field(default_factory=list)

    def on(self, pattern: str, handler: Handler, *, name: str) -> None:
        """Call ``handler`` for each event whose topic matches ``pattern``."""
        self.routes.append(Route(name, pattern, handler))

    def every(self, seconds: float, job: Job, *, name: str) -> None:
        if seconds <= 0:
            raise ValueError("a periodic job needs a positive interval")
        self.jobs.append(PeriodicJob(name, seconds, job))

    def routes_for(self, topic: str) -> list[Route]:
        """The handlers of ``topic``, in registration order."""
        return [route for route in self.routes if fnmatchcase(topic, route.pattern)]


def register_alerts(registry: Registry, runtime: Runtime) -> None:
    """The alert consumer: assessments and biometric batches turn into alerts."""
    from clarity.alerts.consumer import TOPICS, handle_event

    async def alerts(payload: dict[str, Any]) -> None:
        await handle_event(runtime, payload)

    for topic in TOPICS:
        registry.on(topic, alerts, name="alerts")


BUILTIN_HOOKS: tuple[Hook, ...] = (register_alerts,)


def load_hook(spec: str) -> Hook:
    """Import ``module:function``."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise HookError(f"worker handler {spec!r} is not 'module:function'")
    try:
        hook = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise HookError(f"worker handler {spec!r} cannot be imported: {exc}") from None
    if not callable(hook):
        raise HookError(f"worker handler {spec!r} is not callable")
    return hook  # type: ignore[no-any-return]


def build_registry(runtime: Runtime, *, builtin: bool = True) -> Registry:
    """The built-in handlers (unless ``builtin`` is false) plus the configured hooks."""
    registry = Registry()
    hooks = [*(BUILTIN_HOOKS if builtin else ()), *map(load_hook, runtime.settings.worker_handlers)]
    for hook in hooks:
        hook(registry, runtime)
    return registry

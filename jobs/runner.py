"""Run one declared job: resolve its function lazily and fan out over stores, each in isolation.

This is the only module allowed to catch ``Exception``: a store whose run fails is logged and
reported, and the other stores still run (DESIGN.md §2, rules of the house).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from plugin import ops_counters
from plugin.context import JobContext
from plugin.logs import log_context
from plugin.models import Store
from plugin.ops_counters import ApiMeter

log = logging.getLogger("aftercare.jobs")


class UnknownJobError(LookupError):
    """A job name that is not in the declarative list."""


class JobTargetError(ImportError):
    """A declared job whose module or function cannot be imported."""


@dataclass
class JobResult:
    """What one run of a job did: per-store counts, and the stores that failed with their error."""

    job: str
    results: dict[int | None, dict[str, Any]] = field(default_factory=dict)
    failures: dict[int | None, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Say whether every store succeeded."""
        return not self.failures


def resolve(target: str) -> Callable[..., dict[str, Any]]:
    """Import ``package.module:function`` now, raising JobTargetError with the dotted path when missing."""
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise JobTargetError(f"job target {target!r}: module {module_name!r} not found ({exc})") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise JobTargetError(f"job target {target!r}: {module_name} has no function {attr!r}")
    return fn


def store_ids(ctx: JobContext, platforms: tuple[str, ...]) -> list[int]:
    """Return the ids of active stores of the given platforms, in id order."""
    with ctx.database.session() as session:
        rows = session.scalars(
            select(Store.id).where(Store.platform.in_(platforms), Store.status == "active",
                                   Store.uninstalled_at.is_(None)).order_by(Store.id))
        return list(rows)


def run_job(ctx: JobContext, spec: Any, store_id: int | None = None) -> JobResult:
    """Run a JobSpec once: for every matching store (or the given one), or once for a global job."""
    fn = resolve(spec.target)
    # Its own meter: jobs that run at once on one scheduler share the context, never each other's API counts.
    ctx = dataclasses.replace(ctx, meter=ApiMeter())
    started = time.perf_counter()
    result = JobResult(job=spec.name)
    if not spec.per_store:
        _run_one(result, spec.name, None, lambda: fn(ctx))
    else:
        targets = [store_id] if store_id is not None else store_ids(ctx, spec.platforms)
        for sid in targets:
            _run_one(result, spec.name, sid, lambda sid=sid: fn(ctx, sid))
    result.seconds = time.perf_counter() - started
    log.info("job finished", extra={"job": spec.name, "stores": len(result.results) + len(result.failures),
                                    "failed": len(result.failures), "seconds": round(result.seconds, 3)})
    _count_run(ctx, result)
    return result


def _count_run(ctx: JobContext, result: JobResult) -> None:
    """Add the run's outcome, duration and API calls to the operator counters (plugin/ops_counters.py).

    After the stores' own transactions, in one of its own; a database that refuses it loses these counts, never
    the run's work.
    """
    increments = ops_counters.job_run_increments(result.job, result.seconds, len(result.failures), result.ok)
    increments += ctx.meter.increments()
    try:
        with ctx.database.session() as session:
            ops_counters.add(session, increments)
    except Exception:  # noqa: BLE001 - the runner's own bookkeeping must not turn a finished run into a failure
        log.exception("could not store the job's operator counters", extra={"job": result.job})


def _run_one(result: JobResult, name: str, store_id: int | None, call: Callable[[], Any]) -> None:
    with log_context(store_id=store_id, job=name):
        try:
            counts = call()
        except Exception as exc:  # noqa: BLE001 - the runner isolates stores; the error is logged and kept
            log.exception("job failed for store", extra={"job": name})
            result.failures[store_id] = f"{type(exc).__name__}: {exc}"
            return
        result.results[store_id] = dict(counts or {})

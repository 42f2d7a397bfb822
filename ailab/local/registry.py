"""Resolve a week to its services (`local:` of ailab/contract/facts/weeks.yaml) and a service name to its spec()."""

from __future__ import annotations

import importlib
import pkgutil

from ailab.contract import facts
from ailab.local import services
from ailab.local.spec import PlatformContext, ServiceSpec


class PlatformError(RuntimeError):
    """A service could not be started, found or stopped; the message names it and says why."""


def known_services() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(services.__path__))


def week_services(week: int) -> list[str]:
    """Service names for `week`, in the order weeks.yaml lists them."""
    if not 1 <= week <= 13:
        raise PlatformError(f"week {week}: allowed 1-13")
    try:
        names = facts.week(week).local
    except facts.FactsError as exc:
        raise PlatformError(str(exc)) from None
    unknown = [n for n in names if n not in known_services()]
    if unknown:
        raise PlatformError(
            f"ailab/contract/facts/weeks.yaml: weeks.{week}.local: unknown service(s) {unknown} "
            f"(known: {', '.join(known_services())})"
        )
    return list(names)


def build_spec(name: str, ctx: PlatformContext) -> ServiceSpec:
    if name not in known_services():
        raise PlatformError(f"service {name!r}: unknown (known: {', '.join(known_services())})")
    return importlib.import_module(f"ailab.local.services.{name}").spec(ctx)


def order(names: list[str], specs: dict[str, ServiceSpec]) -> list[str]:
    """Topological order by depends_on (dependencies first); a missing or cyclic dependency is an error."""
    done: list[str] = []

    def visit(n: str, path: tuple[str, ...]) -> None:
        if n in done:
            return
        if n in path:
            raise PlatformError(f"service {n!r}: dependency cycle {' -> '.join((*path, n))}")
        if n not in specs:
            raise PlatformError(f"service {path[-1]!r}: depends_on {n!r}, which this platform does not start")
        for d in specs[n].depends_on:
            visit(d, (*path, n))
        done.append(n)

    for n in names:
        visit(n, ())
    return done

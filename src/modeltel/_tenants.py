"""Tenant ids come from user input; bound what they can do to metric cardinality and span size."""

from __future__ import annotations

import threading
from typing import Any

from modeltel import _forksafe
from modeltel._names import NO_TENANT, OTHER_TENANT

MAX_TENANT_LENGTH = 64


def clean_tenant(raw: Any) -> str:
    """The tenant as recorded on spans: a string of at most 64 characters."""
    if raw is None:
        return NO_TENANT
    text = raw if type(raw) is str else str(raw)
    return text if len(text) <= MAX_TENANT_LENGTH else text[:MAX_TENANT_LENGTH]


class TenantCap:
    """Admits the first ``limit`` distinct tenants as metric values; later ones become ``__other__``.

    First come, first kept: a burst of junk ids after start-up cannot evict real tenants.
    """

    __slots__ = ("__weakref__", "_lock", "_seen", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        _forksafe.register(self)

    def metric_value(self, tenant: str) -> str:
        """The value to put in ``ml.tenant`` on metrics."""
        if tenant in self._seen:
            return tenant
        with self._lock:
            if tenant in self._seen:
                return tenant
            if len(self._seen) < self.limit:
                self._seen.add(tenant)
                return tenant
        return OTHER_TENANT

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

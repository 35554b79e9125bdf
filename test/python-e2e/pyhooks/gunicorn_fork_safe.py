"""Test-only gunicorn config: fork workers only while the OpenTelemetry metrics SDK of the arbiter is idle.

    opentelemetry-instrument gunicorn -c gunicorn_fork_safe.py --workers N app:app

opentelemetry-instrument configures the SDK in the arbiter, before gunicorn forks its workers, and the SDK's
reader thread keeps collecting there. The SDK (1.45.1) holds the lock of the meter provider's measurement
consumer for a whole collection (system-metrics callbacks included) and a reader's export lock for a whole
export, and reinitializes neither in a forked child. A worker forked while the arbiter's thread holds one of
them inherits it held, with no thread left to release it: the worker's reader thread waits for it forever and
the worker never exports a metric. On a busy machine a collection lasts long enough for the forks of the
workers to land in one now and then.

This holds those locks across each fork (taken before it, released after it in the arbiter and in the worker),
so a fork waits for a collection or export in progress to end. Everything else stays as opentelemetry-instrument
set it up. Gunicorn reads this file in the arbiter, after the SDK was configured.
"""

import os

from opentelemetry import metrics


def _sdk_locks() -> list:
    provider = metrics.get_meter_provider()
    consumer = getattr(provider, "_measurement_consumer", None)
    if consumer is None:  # no SDK meter provider: nothing collects
        return []
    # The consumer's lock first: a reader never takes it while holding its export lock.
    locks = [consumer._lock]
    for reader in provider._metric_readers:
        export_lock = getattr(reader, "_export_lock", None)
        if export_lock is not None:
            locks.append(export_lock)
    return locks


_held: list = []


def _before_fork() -> None:
    _held[:] = _sdk_locks()
    for lock in _held:
        lock.acquire()


def _after_fork() -> None:
    for lock in reversed(_held):
        lock.release()
    _held.clear()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork, after_in_child=_after_fork)

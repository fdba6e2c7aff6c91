"""Python SDK for Yardmaster, a durable background-job broker.

- :class:`Client` enqueues and inspects jobs (producers, operators).
- :class:`Worker` runs handlers for leased jobs, with heartbeats, cancellation, retries and
  graceful shutdown; ``python -m yardmaster worker module:worker`` runs one.
- Errors answered by the server are :class:`YardmasterError` subclasses, one per error code.

Standard library only; the wire protocol is docs/api.md of the Yardmaster repository.
"""

from .client import Client, JobId
from .errors import (AlreadyExists, BadRequest, Conflict, Internal, InvalidState, JobFailed,
                     NamespaceLimit, NotFound, PayloadTooLarge, PermissionDenied, QueueNotFound,
                     ResourceExhausted, SingletonConflict, StaleLease, Unauthenticated,
                     Unavailable, Unreachable, Validation, WaitTimeout, YardmasterError)
from ._http import JsonFloat
from .job import Cancelled, Job, JobTimeout, Permanent, Retry
from .worker import Handler, Worker
from ._version import __version__

__all__ = [
    "Client", "JobId", "Worker", "Handler", "Job", "Retry", "Permanent", "Cancelled", "JobTimeout",
    "JsonFloat",
    "YardmasterError", "BadRequest", "Unauthenticated", "PermissionDenied", "NotFound",
    "QueueNotFound", "Conflict", "StaleLease", "InvalidState", "SingletonConflict",
    "AlreadyExists", "PayloadTooLarge", "Validation", "ResourceExhausted", "NamespaceLimit", "Internal",
    "Unavailable", "Unreachable", "WaitTimeout", "JobFailed",
    "__version__",
]

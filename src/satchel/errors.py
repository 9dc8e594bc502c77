"""The one error tree of satchel.

Every error satchel raises on purpose is a :class:`SatchelError`. Misuse of an
argument's *type* stays a plain ``TypeError``; everything else a user can act
on is here, and every message names the thing, the reason and the fix.

deriva-ml scripts catch deriva-ml's classes, so ours are those too: every
``SatchelError`` is a :class:`DerivaMLException`, and the errors deriva-ml
has a class for are also instances of it (an unknown term is a
``DerivaMLInvalidTerm``, an unknown table a ``DerivaMLTableNotFound``...).
Those classes only add names to catch by: DerivaMLConfigurationError,
DerivaMLDataError, DerivaMLNotFoundError, DerivaMLInvalidTerm,
DerivaMLTableNotFound, DerivaMLRidsNotFound, DerivaMLTableTypeError,
DerivaMLValidationError, DerivaMLOfflineError, DerivaMLDirtyWorkflowError and
DerivaMLMaterializeLimitExceeded, under DerivaMLException as in deriva-ml.

::

    DerivaMLException                  deriva-ml's root, for scripts that catch it
    └── SatchelError
    ├── StoreError                     the local store (journal files, layout)
    │   ├── SchemaVersionError         store written by a newer satchel
    │   └── StoreBusyError             another process holds a lock we need
    ├── CacheError                     the content-addressed object cache
    │   ├── IntegrityError             bytes do not match their digest
    │   └── ObjectMissingError         the bytes are not in the cache
    ├── NotFoundError                  a RID, table, term or execution is unknown
    │   ├── UnknownRIDError
    │   ├── UnknownAssetTableError
    │   └── UnknownTermError
    ├── ExecutionError                 execution lifecycle and asset registration
    │   ├── InvalidTransitionError     status change the state machine forbids
    │   ├── DuplicateAssetError        same (table, file name) twice in one execution
    │   ├── MissingSourceError         a file to register or commit does not exist
    │   ├── FileChangedError           a file changed while it was being captured
    │   ├── CommitError                commit_output_assets could not complete
    │   └── BadNameError               a file name nothing could hold (too long, NUL, not UTF-8)
    ├── RemoteError                    talking to ERMrest / Hatrac
    │   ├── TransportError             connect, timeout, reset: no HTTP answer
    │   ├── ProtocolError              an answer that breaks the protocol
    │   ├── RequestTooLong             a request longer than DERIVA's web servers accept (not sent)
    │   └── RemoteStatusError          an HTTP answer with an error status
    │       ├── AuthenticationError    401: no or bad credentials
    │       ├── PermissionDenied       403
    │       ├── NotFound               404
    │       ├── Conflict               409
    │       └── PreconditionFailed     412
    ├── DestinationError               a download's destination cannot take the file
    ├── RemoteURLError                 a server URL satchel will not use or store
    ├── SyncError                      the sync engine
    │   ├── ConflictError              local and remote changed the same thing
    │   └── Interrupted                stopped when asked, at a safe point (the next sync goes on)
    ├── BundleError                    air-gap bundles
    └── BadArgumentError               an argument out of range or unreadable (a negative age, a size)
"""

from __future__ import annotations


# --- deriva-ml's classes, for scripts that catch them -----------------------------------


class DerivaMLException(Exception):
    """deriva-ml's root exception; every :class:`SatchelError` is one."""


class DerivaMLConfigurationError(DerivaMLException):
    """deriva-ml: configuration or initialisation."""


class DerivaMLDataError(DerivaMLException):
    """deriva-ml: data access or validation."""


class DerivaMLNotFoundError(DerivaMLDataError):
    """deriva-ml: an entity cannot be found."""


class DerivaMLInvalidTerm(DerivaMLNotFoundError):
    """deriva-ml: a vocabulary term is not found."""


class DerivaMLTableNotFound(DerivaMLNotFoundError):
    """deriva-ml: a table cannot be found."""


class DerivaMLRidsNotFound(DerivaMLNotFoundError):
    """deriva-ml: RIDs cannot be resolved."""


class DerivaMLTableTypeError(DerivaMLDataError):
    """deriva-ml: a RID or table is not of the expected kind (e.g. not an asset table)."""


class DerivaMLValidationError(DerivaMLDataError):
    """deriva-ml: data validation failed."""


class DerivaMLOfflineError(DerivaMLConfigurationError):
    """deriva-ml: an online-only operation in offline mode (satchel has none: never raised)."""


class DerivaMLDirtyWorkflowError(DerivaMLException):
    """deriva-ml: the workflow's script has uncommitted changes (satchel warns instead: never raised)."""


class DerivaMLMaterializeLimitExceeded(DerivaMLValidationError):
    """deriva-ml: a result set is larger than asked (datasets: not in satchel yet)."""


DERIVA_ML_ERRORS = (
    "DerivaMLConfigurationError", "DerivaMLDataError", "DerivaMLDirtyWorkflowError", "DerivaMLException",
    "DerivaMLInvalidTerm", "DerivaMLMaterializeLimitExceeded", "DerivaMLNotFoundError", "DerivaMLOfflineError",
    "DerivaMLRidsNotFound", "DerivaMLTableNotFound", "DerivaMLTableTypeError", "DerivaMLValidationError",
)


# --- satchel's tree ------------------------------------------------------------------------


class SatchelError(DerivaMLException):
    """Root of every error satchel raises on purpose."""


# --- local store -----------------------------------------------------------


class StoreError(SatchelError, DerivaMLConfigurationError):
    """The local store could not be opened or used."""


class SchemaVersionError(StoreError):
    """The store's journal was written by a newer satchel than this one."""


class StoreBusyError(StoreError):
    """Another process holds a lock this operation needs."""


# --- cache -----------------------------------------------------------------


class CacheError(SatchelError):
    """The content-addressed cache could not do what was asked."""


class IntegrityError(CacheError):
    """Bytes do not match the digest they are stored or announced under."""


class ObjectMissingError(CacheError):
    """The bytes an operation needs are not in the local cache."""


# --- lookups ---------------------------------------------------------------


class NotFoundError(SatchelError, LookupError, DerivaMLNotFoundError):
    """Something named by the caller is not known to the store."""


class UnknownRIDError(NotFoundError, DerivaMLRidsNotFound):
    """No asset, execution or workflow has this RID (nor has it as an alias)."""


class UnknownAssetTableError(NotFoundError, DerivaMLTableNotFound, DerivaMLTableTypeError):
    """The name is not an asset table of the catalog model."""


class UnknownTermError(NotFoundError, DerivaMLInvalidTerm):
    """The term is not in the vocabulary."""


# --- executions ------------------------------------------------------------


class ExecutionError(SatchelError):
    """An execution could not do what was asked."""


class InvalidTransitionError(ExecutionError):
    """The execution status state machine forbids this change."""


class DuplicateAssetError(ExecutionError):
    """The same (asset table, file name) was registered twice in one execution."""


class MissingSourceError(ExecutionError, FileNotFoundError):
    """A file that should exist (to register, rename or commit) does not."""


class FileChangedError(ExecutionError):
    """A file changed while satchel was capturing it."""


class CommitError(ExecutionError):
    """commit_output_assets could not complete; nothing was committed."""


class BadNameError(ExecutionError, DerivaMLValidationError, ValueError):
    """A file name (or other name) that no file system or catalog could hold: refused before anything changes."""


# --- remote ----------------------------------------------------------------


class RemoteError(SatchelError):
    """A request to the DERIVA servers failed.

    ``method`` and ``url`` name the request; ``url`` never carries secrets.
    """

    def __init__(self, message: str, *, method: str | None = None, url: str | None = None):
        super().__init__(message)
        self.method = method
        self.url = url


class TransportError(RemoteError):
    """No HTTP answer: connection refused or reset, timeout, TLS failure."""


class ProtocolError(RemoteError):
    """The server answered, but not in a way the protocol allows."""


class RequestTooLong(RemoteError):
    """A request satchel was about to send is longer than DERIVA's web servers accept; it was not sent."""

    def __init__(self, message: str, *, length: int, limit: int, method: str | None = None, url: str | None = None):
        super().__init__(message, method=method, url=url)
        self.length = length
        self.limit = limit


class RemoteStatusError(RemoteError):
    """The server answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        status: int | None = None,
        body: str | None = None,
    ):
        super().__init__(message, method=method, url=url)
        self.status = status
        self.body = body


class AuthenticationError(RemoteStatusError):
    """401: the server needs credentials we do not have or that it refused."""


class PermissionDenied(RemoteStatusError):
    """403: authenticated, but not allowed."""


class NotFound(RemoteStatusError):
    """404 from the server."""


class Conflict(RemoteStatusError):
    """409 from the server."""


class PreconditionFailed(RemoteStatusError):
    """412 from the server."""


# --- sync and bundles ------------------------------------------------------


class SyncError(SatchelError):
    """The sync engine could not do what was asked."""


class RemoteURLError(SatchelError, DerivaMLConfigurationError, ValueError):
    """A server URL satchel will not use: not http(s), no host, or with a password in it."""


class ConflictError(SyncError):
    """The same field changed locally and remotely since the last pull."""


class Interrupted(SyncError):
    """The user asked a sync to stop (Ctrl-C): it stopped at a safe point, everything confirmed is kept."""

    def __init__(self, message: str, *, result: object = None):
        super().__init__(message)
        self.result = result


class DestinationError(SatchelError):
    """A download's destination directory cannot be made or written (a file is in the way, no rights)."""


class BundleError(SatchelError):
    """An air-gap bundle is malformed, incomplete or fails verification."""


class BadArgumentError(SatchelError, DerivaMLValidationError, ValueError):
    """An argument out of its range or of the wrong kind (a negative age, an unreadable size); nothing was done."""

"""Which database failures are worth retrying."""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

# SQLSTATE classes and codes that describe the moment, not the data: connection loss, overload,
# an administrator restarting the server, serialization and deadlock victims.
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "53", "57P", "40001", "40P01", "55P03")


def is_transient_db_error(exc: BaseException) -> bool:
    """True if retrying the same statements later may succeed."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.DisconnectionError):
        return True
    if isinstance(exc, sa_exc.TimeoutError | TimeoutError | ConnectionError | OSError):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return bool(sqlstate) and str(sqlstate).startswith(_TRANSIENT_SQLSTATE_PREFIXES)
    return False

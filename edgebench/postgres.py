"""PostgreSQL connections for the team store and its board leases: which ``--store`` values are URLs, the URL as
messages may show it (never the password), and connecting with every failure said in one line.

psycopg (``pip install 'edgebench[postgresql]'``) is imported only when a URL is used. Passwords belong in
``PGPASSWORD`` or ``~/.pgpass`` (libpq reads both), not in a command line or a CI log; a URL that carries one
is accepted and shown with ``***`` in its place.
"""

from __future__ import annotations

import re
import socket
from typing import TYPE_CHECKING, Any

from edgebench.errors import EdgebenchError, ExitStatus

if TYPE_CHECKING:
    import psycopg

SCHEMES = ("postgresql://", "postgres://")
SCHEMA = "edgebench"  # the PostgreSQL schema edgebench's tables live in, beside whatever else the database holds
# Held by every transaction that creates or changes edgebench's tables (the store's, the board leases'), so that
# first users starting together create them once.
SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(hashtext('edgebench.schema'))"
CONNECT_TIMEOUT_S = 10
_PASSWORD = re.compile(r"^(postgres(?:ql)?://[^:@/?#]*):[^@/?#]*@")


def is_url(location: object) -> bool:
    """Whether a ``--store`` value names a PostgreSQL database rather than an SQLite file."""
    return isinstance(location, str) and location.strip().lower().startswith(SCHEMES)


def redact(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``: what messages, logs and stored runs show."""
    shown = _PASSWORD.sub(r"\1:***@", url.strip())
    return re.sub(r"(?i)([?&]password=)[^&#]*", r"\1***", shown)


def holder_host() -> str:
    """This machine's name, as leases and shards record who holds what."""
    return socket.gethostname() or "unknown-host"


def import_psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise EdgebenchError("a PostgreSQL store needs psycopg, which is not installed: pip install "
                             "'edgebench[postgresql]'", ExitStatus.RUNTIME_MISSING) from None
    return psycopg


def connect(url: str, application: str = "edgebench") -> "psycopg.Connection[Any]":
    """An autocommit connection to ``url`` (transactions are opened explicitly); every way it can fail is one
    :class:`EdgebenchError` (exit status 12) naming the database and the fix."""
    pg = import_psycopg()
    shown = redact(url)
    try:
        pg.conninfo.conninfo_to_dict(url.strip())
    except pg.ProgrammingError as exc:
        raise EdgebenchError(f"{shown} is not a valid PostgreSQL URL ({_first_line(exc)}): write it as "
                             "postgresql://USER@HOST:PORT/DATABASE", ExitStatus.USAGE) from None
    try:
        conn: "psycopg.Connection[Any]" = pg.connect(url.strip(), autocommit=True,
                                                          connect_timeout=CONNECT_TIMEOUT_S,
                                                          application_name=application)
    except pg.Error as exc:
        raise connect_fault(exc, shown) from None
    return conn


def connect_fault(exc: Exception, shown: str) -> EdgebenchError:
    """The one line for a connection that could not be made."""
    text = _first_line(exc)
    low = text.lower()
    if "password authentication failed" in low or "no password supplied" in low or "authentication failed" in low:
        why = "it refused the credentials"
        fix = "fix the user or password (keep the password in PGPASSWORD or ~/.pgpass, not in the URL)"
    elif "does not exist" in low and "database" in low:
        why = text
        fix = "create it (createdb NAME) or name an existing database in the URL"
    elif "role" in low and "does not exist" in low:
        why, fix = text, "create the user (createuser NAME) or name an existing one in the URL"
    elif "timeout" in low or "timed out" in low:
        why = f"no answer within {CONNECT_TIMEOUT_S} s"
        fix = "check the host and port, and that the server is up and reachable from here"
    else:
        why = text or type(exc).__name__
        fix = "check the host and port, and that the server is up and accepts connections from here"
    return EdgebenchError(f"cannot connect to the PostgreSQL store {shown}: {why}: {fix}", ExitStatus.OUTPUT)


def lost_fault(exc: Exception, shown: str, doing: str) -> EdgebenchError:
    """The one line for a connection that broke while ``doing`` something (the server restarted, the network
    went away): nothing of the statement in flight was written."""
    return EdgebenchError(f"cannot {doing} the PostgreSQL store {shown}: the connection broke "
                          f"({_first_line(exc)}): check the server and run the command again (a sweep: "
                          "--resume)", ExitStatus.OUTPUT)


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else ""

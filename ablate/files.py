"""Atomic file writes: a reader (a concurrent trial, a killed driver's successor) sees a whole file or none. And the
names of files that two layers share, so that neither imports the other for a name."""
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

# A run's audits: runs/<name>/audit/<one per audit>/audit.json, written by ablate.audit and read by the report's
# "Proxy audit" section (the audit sits above the report, which must not import it).
AUDIT_DIR, AUDIT_FILE = "audit", "audit.json"


@contextmanager
def atomic_path(path: Union[str, Path]) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to, moved over ``path`` when the block ends without error.
    Its name is unique per writer, so concurrent writers never share one; on an error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex}.tmp{path.suffix}")  # keeps the suffix
    try:
        yield temp
        os.replace(temp, path)
    finally:
        if temp.exists():
            temp.unlink()


def write_atomic(path: Union[str, Path], data: Union[bytes, str]) -> None:
    with atomic_path(path) as temp:
        temp.write_bytes(data.encode() if isinstance(data, str) else data)

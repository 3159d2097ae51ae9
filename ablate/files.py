"""Atomic file writes: a reader (a concurrent trial, a killed driver's successor) sees a whole file or none."""
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union


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

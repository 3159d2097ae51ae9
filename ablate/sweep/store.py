"""The run directory as its one driver owns it: a lock naming that driver, rows written or the sweep stopped.

A second driver on a run whose driver is alive is refused at once (host, process id, start time). A lock left
by a killed driver on this host is taken over, so resume=true always works; one from another host cannot be
checked from here and is refused with the command that removes it. A row that cannot be written (disk full,
permissions) stops the sweep with the file's name; the rows already written stay.
"""
import json
import os
import socket
import time
from pathlib import Path
from typing import List, Optional

from ..results import ResultRow, read_rows, write_row

LOCK_FILE = "driver.lock"


class SweepError(RuntimeError):
    """A sweep that cannot start or go on: the message says why and what to do."""


def _process_started(pid: int) -> Optional[float]:
    """When process ``pid`` started, so that a recycled pid is not taken for the driver (Linux: clock ticks after
    boot, from /proc; elsewhere -1, alive but not dated), or None if no such process runs."""
    try:
        return float(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])   # field 22
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None
    except (OSError, IndexError, ValueError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return -1.0


class RunStore:
    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.lock_path = self.run_dir / LOCK_FILE
        self.owner: Optional[dict] = None

    def check_writable(self) -> None:
        """Create the run directory and write a file in it, or say why not (before Ray starts)."""
        probe = self.run_dir / f".write-test.{os.getpid()}"
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            probe.write_text("ok")
            probe.unlink()
        except OSError as error:
            raise SweepError(f"runs_dir: cannot write the run directory {self.run_dir}: {error.strerror or error}; "
                             f"choose a writable runs_dir=") from None

    def lock(self) -> None:
        """Become the run's one driver, or fail with who the other driver is."""
        me = {"host": socket.gethostname(), "pid": os.getpid(), "process_started": _process_started(os.getpid()),
              "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _ in range(3):                       # a stale lock is moved aside, then the O_EXCL create is retried
            try:
                descriptor = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            with os.fdopen(descriptor, "w") as handle:
                json.dump(me, handle)
            self.owner = me
            return
        raise SweepError(f"could not lock {self.lock_path}: another driver keeps taking it")

    def _take_over_if_stale(self) -> None:
        try:
            holder = json.loads(self.lock_path.read_text())
        except (OSError, ValueError):            # being written by its driver this instant, or gone again
            time.sleep(0.1)
            return
        name = self.run_dir.name
        who = f"host {holder.get('host')}, process {holder.get('pid')}, started {holder.get('started')}"
        if holder.get("host") != socket.gethostname():
            raise SweepError(f"run {name!r} is locked by a driver on another machine ({who}); if that driver is "
                             f"no longer running, delete {self.lock_path} and start again")
        started = _process_started(int(holder.get("pid", -1)))
        recorded = holder.get("process_started")
        alive = started is not None and (recorded in (None, -1.0) or started in (-1.0, recorded))
        if alive:
            raise SweepError(f"run {name!r} is being run by another driver ({who}); wait for it to finish, "
                             f"or choose another name=")
        stale = self.lock_path.with_name(f"{LOCK_FILE}.stale.{os.getpid()}")
        try:
            os.replace(self.lock_path, stale)    # only one of two drivers taking over gets the file
            stale.unlink()
        except FileNotFoundError:
            pass

    def unlock(self) -> None:
        if self.owner is None:
            return
        try:
            holder = json.loads(self.lock_path.read_text())
            if holder.get("pid") == self.owner["pid"] and holder.get("host") == self.owner["host"]:
                self.lock_path.unlink()
        except (OSError, ValueError):
            pass
        self.owner = None

    def rows(self) -> List[ResultRow]:
        return read_rows(self.run_dir)

    def write_row(self, row: ResultRow) -> None:
        path = self.run_dir / "trials" / f"{row.trial_id}.json"
        try:
            write_row(self.run_dir, row)
        except OSError as error:
            kept = len(list((self.run_dir / "trials").glob("*.json")))
            raise SweepError(f"could not write the row of trial {row.trial_id} ({row.pattern}, seed {row.seed}) to "
                             f"{path}: {error.strerror or error}. The sweep stops here; the {kept} rows already in "
                             f"{self.run_dir / 'trials'} are kept: make room, then add resume=true") from None

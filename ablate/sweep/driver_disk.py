"""Tune's storage on the driver's own disk, reached from every node of a cluster through a Ray actor that runs on
the driver's node. A trial's checkpoint goes through Tune's checkpoint API into the driver's run directory even
when the nodes share no disk (Tune on its own would need cloud storage or NFS for that), and a trial that Tune
restarts on another node after its node was lost reads its checkpoint back from there.

Tune writes through a pyarrow filesystem; `start_driver_disk()` gives it one built on `DriverFileSystem`, an
fsspec filesystem whose operations are calls to the `DriverDisk` actor from other nodes, and the same `DriverDisk`
code run in-process on the driver's node (the driver itself and trials there: no round trip for Tune's frequent
experiment-state syncs). Paths are the driver's own absolute paths, so what Tune stores is where it would be on a
single machine."""
import io
import os
import shutil
import uuid
from pathlib import Path
from typing import List, Optional

import fsspec


class DriverDisk:
    """The actor: file operations on the driver's disk for processes anywhere in the cluster."""

    def info(self, path: str) -> Optional[dict]:
        return _info(Path(path))

    def ls(self, path: str) -> Optional[List[dict]]:
        folder = Path(path)
        if not folder.is_dir():
            return None
        found = [_info(child) for child in sorted(folder.iterdir()) if not child.name.startswith(PARTIAL)]
        return [entry for entry in found if entry is not None]      # a file deleted while listed is left out

    def read(self, path: str) -> Optional[bytes]:
        file = Path(path)
        return file.read_bytes() if file.is_file() else None

    def write(self, path: str, data: bytes) -> None:
        """Atomic: a reader (or a node lost mid-write) never sees part of a file."""
        file = Path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        partial = file.with_name(f"{PARTIAL}{uuid.uuid4().hex}-{file.name}")
        try:
            with open(partial, "xb") as out:        # the umask's permissions, as a plain write would have
                out.write(data)
            os.replace(partial, file)
        finally:
            partial.unlink(missing_ok=True)

    def mkdir(self, path: str, parents: bool) -> None:
        Path(path).mkdir(parents=parents, exist_ok=True)

    def remove(self, path: str, recursive: bool) -> None:
        target = Path(path)
        if target.is_dir() and recursive:
            shutil.rmtree(target)
        elif target.is_dir():
            target.rmdir()
        else:
            target.unlink()

    def move(self, source: str, destination: str) -> None:
        Path(destination).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, destination)

    def copy(self, source: str, destination: str) -> None:
        self.write(destination, Path(source).read_bytes())


PARTIAL = ".driver-disk-partial-"      # a file being written: not listed


def _info(path: Path) -> Optional[dict]:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    folder = path.is_dir()
    return {"name": str(path), "size": 0 if folder else stat.st_size, "type": "directory" if folder else "file"}


class DriverFileSystem(fsspec.AbstractFileSystem):
    """fsspec's view of the driver's disk: in-process on the driver's node, else through the named `DriverDisk`
    actor. It pickles as its arguments (fsspec rebuilds it from them), and each process decides which way the first
    time it needs the disk."""
    protocol = "ablate-driver"
    root_marker = "/"

    def __init__(self, actor_name: Optional[str], driver_node: str, **kwargs):
        super().__init__(**kwargs)
        self.actor_name, self.driver_node = actor_name, driver_node
        self._disk = None

    def _call(self, method: str, *args):
        import ray
        if self._disk is None:
            here = ray.get_runtime_context().get_node_id()
            self._disk = DriverDisk() if here == self.driver_node else ray.get_actor(self.actor_name)
        if isinstance(self._disk, DriverDisk):
            return getattr(self._disk, method)(*args)
        return ray.get(getattr(self._disk, method).remote(*args))

    def info(self, path, **kwargs):
        found = self._call("info", self._strip_protocol(path))
        if found is None:
            raise FileNotFoundError(path)
        return found

    def ls(self, path, detail=True, **kwargs):
        entries = self._call("ls", self._strip_protocol(path))
        if entries is None:
            raise FileNotFoundError(path)
        return entries if detail else [entry["name"] for entry in entries]

    def mkdir(self, path, create_parents=True, **kwargs):
        self._call("mkdir", self._strip_protocol(path), create_parents)

    def makedirs(self, path, exist_ok=False):
        if not exist_ok and self.exists(path):
            raise FileExistsError(path)
        self._call("mkdir", self._strip_protocol(path), True)

    def rm(self, path, recursive=False, maxdepth=None):
        for one in [path] if isinstance(path, str) else path:
            self._call("remove", self._strip_protocol(one), recursive)

    def rm_file(self, path):
        self._call("remove", self._strip_protocol(path), False)

    def mv(self, path1, path2, recursive=False, maxdepth=None, **kwargs):
        self._call("move", self._strip_protocol(path1), self._strip_protocol(path2))

    def cp_file(self, path1, path2, **kwargs):
        self._call("copy", self._strip_protocol(path1), self._strip_protocol(path2))

    def _open(self, path, mode="rb", **kwargs):
        path = self._strip_protocol(path)
        if mode == "rb":
            data = self._call("read", path)
            if data is None:
                raise FileNotFoundError(path)
            return io.BytesIO(data)
        if mode == "wb":
            return _Upload(self, path)
        raise ValueError(f"the driver's disk opens files to read (rb) or write (wb), not {mode!r}")


class _Upload(io.BytesIO):
    """A file being written: its bytes go to the driver's disk in one atomic write when it is closed."""

    def __init__(self, fs: DriverFileSystem, path: str):
        super().__init__()
        self.fs, self.path = fs, path

    def close(self):
        if not self.closed and not getattr(self, "abandoned", False):
            self.fs._call("write", self.path, self.getvalue())
        super().close()

    def __del__(self):
        self.abandoned = True       # dropped without close() (a copy that failed): its part is not written
        super().__del__()


def start_driver_disk(cluster: bool):
    """Tune's pyarrow filesystem on the driver's disk, and on a cluster the actor on the driver's node (no CPU
    taken from trials) that trials on other nodes reach it through; it lives as long as the driver's Ray job. A
    local Ray has no other node, and starts no actor (a process that would cost every sweep seconds of imports)."""
    import pyarrow.fs
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    node, actor, name = ray.get_runtime_context().get_node_id(), None, None
    if cluster:
        name = f"ablate-driver-disk-{uuid.uuid4().hex[:12]}"
        here = NodeAffinitySchedulingStrategy(node_id=node, soft=False)
        actor = ray.remote(DriverDisk).options(name=name, num_cpus=0, max_concurrency=8, scheduling_strategy=here,
                                               max_restarts=-1, max_task_retries=-1).remote()
    filesystem = pyarrow.fs.PyFileSystem(pyarrow.fs.FSSpecHandler(DriverFileSystem(name, node)))
    return actor, filesystem

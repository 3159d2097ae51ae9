import os
import sys
from types import SimpleNamespace

import pytest
import torch

# tests/official.py is a helper module, imported by name.
sys.path.insert(0, os.path.dirname(__file__))
torch.set_num_threads(min(2, os.cpu_count() or 1))

import search_spaces  # noqa: E402,F401  (registers the spaces, as run_sweep.py does)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Every test its own $ABLATE_CACHE (packed datasets, the plan's calibrations and corrections): no test reads
    what another wrote, nor the user's ~/.cache/ablate. A subprocess inherits it through os.environ."""
    path = tmp_path / "cache"
    monkeypatch.setenv("ABLATE_CACHE", str(path))
    return path


SMOKE_RUN = ("space=placement", "smoke=true", "name=s", "seeds=1", "tracking=tensorboard,mlflow")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """One real smoke sweep (2 designs x 1 seed, 2 epochs) with TensorBoard and MLflow tracking, run once for the
    tests that read it (test_sweep.py, test_tracking.py): the finished process and its directory (runs/s in it)."""
    from sweep_cli import sweep
    tmp_path = tmp_path_factory.mktemp("smoke")
    done = sweep(tmp_path, *SMOKE_RUN, timeout=600)
    return SimpleNamespace(done=done, tmp_path=tmp_path, run_dir=tmp_path / "runs" / "s")

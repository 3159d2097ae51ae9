import os
import sys

import torch

# tests/official.py is a helper module, imported by name.
sys.path.insert(0, os.path.dirname(__file__))
torch.set_num_threads(min(2, os.cpu_count() or 1))

import search_spaces  # noqa: E402,F401  (registers the spaces, as run_sweep.py does)

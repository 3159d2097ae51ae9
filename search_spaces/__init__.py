"""Search spaces: one module each, saying what varies and what is fixed (the protocol: ablate.space.Space).

Importing this package registers every space in it with ablate.space.SPACES, through which the sweep and the
report find a space by name. A new space is a module here that builds a Space and calls register_space.
"""
from ablate.space import SPACES, Design, Space, register_space  # noqa: F401  (what a new space module needs)

# each registers itself on import, in this order (the order --help and error messages list them)
from . import placement, mixer, ratio, free  # noqa: E402,F401,I001

"""The mixer registry: importing this package registers every block letter of the spec grammar."""
from . import attention, conv, cross_scan, gated, mamba  # noqa: F401  (each registers its letters)
from .registry import REGISTRY, BlockEntry, TokenBlock, build_block, get_entry

__all__ = ["REGISTRY", "BlockEntry", "TokenBlock", "build_block", "get_entry"]

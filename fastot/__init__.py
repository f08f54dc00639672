"""fastot: fused optimal-transport ops, algorithms and trainers for OT generative modeling."""

from fastot.ops import *  # noqa: F403  (fastot's public API is its ops')
from fastot.ops import __all__ as _ops_all
from fastot.ops._library import load_triton

# Last, with fastot.ops complete: the Triton kernels read their Psi* kinds from it and take
# the ops' autograd.
load_triton()

__version__ = "0.1.0"

__all__ = ["__version__", *_ops_all]

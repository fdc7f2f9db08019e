"""Plain-Python reference models. The numba kernels are tested against these (rel. 1e-9)."""

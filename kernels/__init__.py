"""numba kernels for suanli. Imports only numpy and numba.

Kernels are pure functions of flat arrays (layouts in :mod:`kernels.layout`), writing into
preallocated outputs, with integer codes for variants and status.
"""

"""numba CPU kernels: the element-wise optimizers on coherent landscapes, fused into one
pass per step with an in-kernel random number generator, and escape statistics helpers."""

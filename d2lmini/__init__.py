"""d2lmini: the small shared trainer and data layer under the book's notebooks.

Import the module of your framework, which brings the whole API:
`from d2lmini import torch as d2l` (or `tensorflow`, `jax`, `mxnet`).
"""
__version__ = '0.1.0'

"""jaxlab: a JAX/Flax research codebase for a modern deep-learning course.

Importing the package has no side effects; the submodules (`jaxlab.models`,
`jaxlab.optim`, `jaxlab.data`, `jaxlab.tasks`, `jaxlab.train`) are imported on use.
"""

__version__ = "0.1.0"

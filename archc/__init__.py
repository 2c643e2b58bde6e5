"""archc: a declarative language and compiler for convolutional networks.

    >>> import archc
    >>> report = archc.check(archc.zoo_path("nin.arch"))
    >>> report.output_shape
    [10]
"""

import gc as _gc

__version__ = "0.1.0"  # the one place: pyproject.toml reads it (tool.setuptools.dynamic)

# Importing archc builds some forty pydantic models, their validators and a lark parser: objects that
# live as long as the process. The cyclic collector's passes over them while they are built were 5% of
# a `archc check`, so it waits until the import is done (and is left as it was found).
_collecting = _gc.isenabled()
_gc.disable()
try:
    from .api import Report, UsageError, build, check, port, source, zoo_path
finally:
    if _collecting:
        _gc.enable()

__all__ = ["check", "build", "source", "port", "zoo_path", "Report", "UsageError", "__version__"]

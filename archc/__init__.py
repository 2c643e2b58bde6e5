"""archc: a declarative language and compiler for convolutional networks.

    >>> import archc
    >>> report = archc.check(archc.zoo_path("nin.arch"))
    >>> report.output_shape
    [10]
"""

from .api import Report, UsageError, build, check, port, source, zoo_path

__all__ = ["check", "build", "source", "port", "zoo_path", "Report", "UsageError"]

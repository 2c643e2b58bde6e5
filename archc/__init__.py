"""archc: a declarative language and compiler for convolutional networks.

    >>> import archc
    >>> report = archc.check(archc.zoo_path("nin.arch"))
    >>> report.output_shape
    [10]
"""

from .api import Report, UsageError, check, zoo_path

__all__ = ["check", "zoo_path", "Report", "UsageError"]

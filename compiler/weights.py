"""Which tensors of a reference state dict fit a network's: matched by position, as `archc port` does.

Every zoo network registers its tensors in the order and with the shapes of
its torchvision reference, so the k-th tensor of one state dict is the k-th of
the other whatever either calls it. `match_by_position` pairs them up and says
which pairs fit (same shape) and which do not (the classifier after
`num_classes` changed, a widened stage); it only reads `.shape`, so it works on
tensors, numpy arrays or anything shaped, and imports nothing. `port`, the
fine-tuner's `--init` and a diff of weights all decide with it.

    >>> class T:  # anything with a shape
    ...     def __init__(self, *shape): self.shape = shape
    >>> ours = {"features.0.weight": T(8, 3, 3, 3), "classifier.weight": T(5, 8)}
    >>> theirs = {"conv1.weight": T(8, 3, 3, 3), "fc.weight": T(1000, 8)}
    >>> matching = match_by_position(ours, theirs)
    >>> [p.key for p in matching.loaded], [p.key for p in matching.misfits]
    (['features.0.weight'], ['classifier.weight'])
    >>> matching.misfits[0].describe()
    'classifier.weight (5, 8), the reference has fc.weight (1000, 8)'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..dsl.record import Record


class WeightMismatch(ValueError):
    """The two state dicts cannot be matched as asked (counts differ, or a tensor does not fit)."""


class Pair(Record):
    """The tensor at one position of both state dicts."""

    key: str  # ours
    source_key: str  # the reference's
    shape: tuple[int, ...]
    source_shape: tuple[int, ...]

    @property
    def fits(self) -> bool:
        return self.shape == self.source_shape

    def describe(self) -> str:
        return f"{self.key} {self.shape}, the reference has {self.source_key} {self.source_shape}"


class Matching(Record):
    """Both state dicts zipped position by position (up to the shorter one's length)."""

    pairs: tuple[Pair, ...]
    count: int  # tensors in ours
    source_count: int  # tensors in the reference

    @property
    def counts_agree(self) -> bool:
        return self.count == self.source_count

    @property
    def loaded(self) -> list[Pair]:
        """The pairs whose shapes agree: these tensors move."""
        return [p for p in self.pairs if p.fits]

    @property
    def misfits(self) -> list[Pair]:
        """The pairs whose shapes differ: these keep the network's own initialisation."""
        return [p for p in self.pairs if not p.fits]

    def count_message(self) -> str:
        return f"the model has {self.count} tensors, the reference {self.source_count}"


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in value.shape)


def match_by_position(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> Matching:
    """Pair the k-th tensor of `ours` with the k-th of `theirs`, in their (registration) order."""
    pairs = tuple(Pair(key, source_key, _shape(mine), _shape(value))
                  for (key, mine), (source_key, value) in zip(ours.items(), theirs.items()))
    return Matching(pairs, len(ours), len(theirs))


def strict_pairs(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """`archc port`'s rule: every tensor must fit. The (our key, their key) pairs, or WeightMismatch
    naming the count difference or the first tensor that does not fit."""
    matching = match_by_position(ours, theirs)
    if not matching.counts_agree:
        raise WeightMismatch(matching.count_message())
    for pair in matching.pairs:
        if not pair.fits:
            raise WeightMismatch(f"{pair.key} {pair.shape} does not fit the reference's {pair.source_key} "
                                 f"{pair.source_shape}")
    return [(p.key, p.source_key) for p in matching.pairs]


def refit_pairs(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> Matching:
    """Fine-tuning's rule: the counts must agree (else positions mean nothing); tensors that do not fit
    are left out, to be kept at the network's own initialisation. WeightMismatch if the counts differ."""
    matching = match_by_position(ours, theirs)
    if not matching.counts_agree:
        raise WeightMismatch(f"{matching.count_message()}: tensors are matched by position, so the network "
                             "must be built as the reference was (the same variant, aux heads on or off)")
    return matching

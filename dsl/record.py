"""Records: the AST's, the diagnostics' and the compiler's values, classes that cost nothing to define.

A record is built from its fields, in order or by name; they are read from the class's annotations
(never evaluated) and their defaults from its attributes. It is frozen unless declared
`frozen=False`, and compares by value unless declared `eq=False`:

    >>> class Point(Record):
    ...     x: int
    ...     y: int = 0
    ...     tags: list[str] = []  # an empty list, dict or set default: a new one for each record
    >>> p = Point(1)
    >>> p, p == Point(x=1, y=0), fields(Point)
    (Point(x=1, y=0, tags=[]), True, ('x', 'y', 'tags'))
    >>> replace(p, y=2)
    Point(x=1, y=2, tags=[])
    >>> as_data(replace(p, tags=["a"]))
    {'x': 1, 'y': 0, 'tags': ['a']}
    >>> from functools import cached_property
    >>> class Square(Record):
    ...     side: int
    ...     @cached_property
    ...     def area(self):
    ...         return self.side ** 2
    >>> s = Square(3); s.area
    9
    >>> replace(s, side=4).area, replace(s, keep_cached=True, side=4).area  # figures computed again, or kept
    (16, 9)
    >>> Point(y=1)
    Traceback (most recent call last):
    TypeError: Point needs x
    >>> p.x = 2
    Traceback (most recent call last):
    AttributeError: Point is frozen: use replace()

Why not pydantic models or dataclasses: the parser and the elaborator make thousands of these per
check from their own well-typed values, so there is nothing to validate; and the classes' definitions
were most of what start-up spent outside imports: the AST's forty-five pydantic models took 28 ms of
every `archc check`, the compiler's sixty dataclasses (which write each class's methods with `exec`)
70 ms more. A record's methods are shared by every class. Pickling (dsl/cache.py) and copying store
the fields as they are. pydantic stays where input is untrusted: ops' arguments, configs, checkpoints.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

R = TypeVar("R", bound="Record")
_EMPTY = (list, dict, set)  # mutable defaults that are copied, as dataclasses' default_factory


class factory:  # noqa: N801 - read as a default: `counter: list[int] = factory(lambda: [0])`
    """A default made anew for each record by calling `make`."""

    def __init__(self, make: Callable[[], Any]):
        self.make = make


class Record:
    _fields: tuple[str, ...] = ()
    _defaults: dict[str, Any] = {}
    _factories: dict[str, Callable[[], Any]] = {}
    _required: frozenset[str] = frozenset()
    _known: frozenset[str] = frozenset()

    def __init_subclass__(cls, frozen: bool = True, eq: bool = True, **kwargs):
        super().__init_subclass__(**kwargs)
        names = list(cls._fields)
        defaults, factories = dict(cls._defaults), dict(cls._factories)
        for name, annotation in cls.__dict__.get("__annotations__", {}).items():
            if name.startswith("_") or str(annotation).startswith(("ClassVar", "typing.ClassVar")):
                continue
            if name not in names:
                names.append(name)
            if name in cls.__dict__:
                value = cls.__dict__[name]
                defaults.pop(name, None), factories.pop(name, None)
                if isinstance(value, factory):
                    factories[name] = value.make
                elif type(value) in _EMPTY:
                    if value:
                        raise TypeError(f"{cls.__name__}.{name}: a mutable default must be empty (it is copied)")
                    factories[name] = type(value)
                else:
                    defaults[name] = value
        cls._fields, cls._defaults, cls._factories = tuple(names), defaults, factories
        cls._known = frozenset(names)
        cls._required = cls._known - defaults.keys() - factories.keys()
        if not frozen:
            cls.__setattr__, cls.__delattr__ = object.__setattr__, object.__delattr__
        if not eq:
            cls.__eq__, cls.__hash__ = object.__eq__, object.__hash__
        elif not frozen:
            cls.__hash__ = None  # a mutable value is not hashable, as a dataclass's

    def __init__(self, *args: Any, **values: Any):
        cls, state = type(self), self.__dict__
        names = cls._fields
        if args:
            if len(args) == len(names) and not values:  # every field in order: the elaborator's way
                state.update(zip(names, args))
                return
            if len(args) > len(names):
                raise TypeError(f"{cls.__name__} takes {len(names)} fields, not {len(args)}")
            state.update(zip(names, args))
        if values:
            if not values.keys() <= cls._known or (args and not values.keys().isdisjoint(names[:len(args)])):
                self._refuse(args, values)
            state.update(values)
        if len(state) < len(names):  # the fields not given: their defaults, or a TypeError
            for name, default in cls._defaults.items():
                state.setdefault(name, default)
            for name, make in cls._factories.items():
                if name not in state:
                    state[name] = make()
            if len(state) < len(names):
                missing = [n for n in names if n not in state]
                raise TypeError(f"{cls.__name__} needs {', '.join(missing)}")

    def _refuse(self, args: tuple, values: dict):
        cls = type(self)
        unknown = sorted(values.keys() - cls._known)
        if unknown:
            raise TypeError(f"{cls.__name__} has no field {', '.join(unknown)}")
        twice = [n for n in cls._fields[:len(args)] if n in values]
        raise TypeError(f"{cls.__name__} got two values for {', '.join(twice)}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: use replace()")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        mine, theirs = self.__dict__, other.__dict__  # fields only: a cached_property lives in __dict__ too
        return all(mine[n] == theirs[n] for n in self._fields)

    def __hash__(self) -> int:
        return hash((type(self), *(self.__dict__[n] for n in self._fields)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{n}={self.__dict__[n]!r}' for n in self._fields)})"


def fields(record: Record | type[Record]) -> tuple[str, ...]:
    """The field names of a record or record class, in declaration order (a base class's first)."""
    return record._fields


def replace(record: R, /, keep_cached: bool = False, **changes: Any) -> R:
    """A copy of `record` with some fields changed (the others shared), as `dataclasses.replace`: what a
    `cached_property` kept is left behind, to be computed again from the new fields, unless `keep_cached`
    (a renamed layer's figures are its original's: compiler/reuse.py)."""
    cls = type(record)
    if not changes.keys() <= cls._known:
        raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(changes.keys() - cls._known))}")
    new, state = object.__new__(cls), record.__dict__
    new.__dict__.update(state if keep_cached else {n: state[n] for n in cls._fields})
    new.__dict__.update(changes)
    return new


_PLAIN = frozenset({int, float, str, bool, type(None)})


def as_data(value: Any) -> Any:
    """Records, lists, tuples and dicts as plain data (a record as a dict of its fields), the rest as it is."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if isinstance(value, Record):
        state = value.__dict__
        return {n: (v if type(v) in _PLAIN else as_data(v)) for n in value._fields for v in (state[n],)}
    if kind is list or kind is tuple:
        return [v if type(v) in _PLAIN else as_data(v) for v in value]
    if isinstance(value, dict):
        return {k: (v if type(v) in _PLAIN else as_data(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_data(v) for v in value]
    return value

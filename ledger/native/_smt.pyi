from collections.abc import Callable, Mapping

INTERIOR_RECORD_DEPTHS: int

def setup(leaf: type, error: type[Exception], small_depth: int = 62, /) -> None: ...
def update(
    cache: dict[int, object],
    load: Callable[[int], object],
    changes: Mapping[bytes, bytes | None],
    root: object,
    /,
) -> tuple[object, dict[int, object], list[int]]: ...
def records(
    writes: dict[int, object], replaced: frozenset[int], key_prefix: bytes, /
) -> list[tuple[bytes, bytes | None]]: ...
def apply(cache: dict[int, object], writes: dict[int, object], /) -> None: ...

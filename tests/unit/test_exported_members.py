"""The public API is what ``from fleetops import ...`` gives: every name in ``__all__`` resolves
to fleetops's own object, ``__all__`` is sorted, and nothing public is left out of it."""

from __future__ import annotations

from types import ModuleType

import fleetops


def _isort_key(name: str) -> tuple[int, str]:
    # CONSTANTS, then Classes, then functions (ruff's RUF022 order).
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


def test_all_is_sorted() -> None:
    assert fleetops.__all__ == sorted(fleetops.__all__, key=_isort_key)


def test_all_imports_are_exported() -> None:
    for name in fleetops.__all__:
        getattr(fleetops, name)  # a lazy name becomes a plain attribute
    public = {
        name
        for name, value in vars(fleetops).items()
        if (not name.startswith("_") or name == "__version__")
        and not isinstance(value, ModuleType)  # submodules are not the API
    }
    assert public == set(fleetops.__all__)
    assert set(dir(fleetops)) >= set(fleetops.__all__)


def test_exports_are_fleetops_objects() -> None:
    for name in fleetops.__all__:
        module = getattr(getattr(fleetops, name), "__module__", None)
        if module is not None and not isinstance(getattr(fleetops, name), (int, float, str)):
            assert module.startswith("fleetops"), (name, module)


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        fleetops.not_a_thing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "not_a_thing" in str(exc)
    else:
        raise AssertionError("fleetops.not_a_thing resolved")

"""Job options (how a job runs, as opposed to what it does and to which WorkSpaces)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from fleetops.errors import UsageError

__all__ = [
    "DEFAULT_BURST",
    "DEFAULT_RATE",
    "JobOptions",
    "count_or_percent",
    "error_budget",
    "over_budget",
    "parse_max_errors",
    "parse_waves",
    "wave_sizes",
]

DEFAULT_RATE = 2.0  # calls/s: the documented default WorkSpaces quota
DEFAULT_BURST = 5


def count_or_percent(raw: str) -> tuple[int | None, float | None]:
    """``"10"`` → (10, None); ``"5%"`` → (None, 5.0); anything else a ValueError (each caller
    says which bounds apply, in its own words)."""
    if raw.endswith("%"):
        return None, float(raw[:-1])
    return int(raw), None


def parse_max_errors(text: str | int | None) -> tuple[int | None, float | None]:
    """``"10"`` → (10, None); ``"5%"`` → (None, 5.0); None → (None, None)."""
    if text is None:
        return None, None
    raw = str(text).strip()
    try:
        count, pct = count_or_percent(raw)
        if (pct is not None and not 0 <= pct <= 100) or (count is not None and count < 0):
            raise ValueError
        return count, pct
    except ValueError:
        raise UsageError(
            f"--max-errors {raw!r} must be a count (e.g. 10) or a percentage from 0% to 100%"
        ) from None


#: One wave: a count of WorkSpaces, a percentage (``"25%"``) of those the scope acts on when
#: the run starts, or None for "all the rest".
Wave = int | str | None


def parse_waves(text: str | Sequence[str | int] | None) -> tuple[Wave, ...]:
    """``"5,25%,all"`` → (5, "25%", None): wave sizes, percentages, None for "all the rest"."""
    if text is None:
        return ()
    parts = text.split(",") if isinstance(text, str) else [str(p) for p in text]
    waves: list[Wave] = []
    for index, part in enumerate(p.strip() for p in parts):
        if part.lower() == "all":
            if index != len(parts) - 1:
                raise UsageError("--waves: 'all' can only be the last wave")
            waves.append(None)
            continue
        waves.append(_wave(part))
    if not waves:
        raise UsageError("--waves needs at least one wave size")
    return tuple(waves)


def _wave(part: str) -> int | str:
    try:
        count, pct = count_or_percent(part)
    except ValueError:
        raise UsageError(f"--waves: {part!r} is not a wave size (e.g. 5,25%,all)") from None
    if pct is not None:
        if not 0 < pct <= 100:
            raise UsageError(f"--waves: a percentage is above 0% and at most 100%, not {part}")
        return f"{pct:g}%"
    assert count is not None
    if count <= 0:
        raise UsageError(f"--waves: wave sizes must be positive, not {count}")
    return count


def wave_sizes(waves: Sequence[Wave], total: int) -> list[int | None]:
    """The waves as counts of ``total`` WorkSpaces: a percentage rounded up, at least one."""
    sizes: list[int | None] = []
    for wave in waves:
        if isinstance(wave, str):
            sizes.append(max(1, math.ceil(total * float(wave[:-1]) / 100)))
        else:
            sizes.append(wave)
    return sizes


def error_budget(max_errors: str | None, acted_on: int) -> int | None:
    """How many failed items a job tolerates (None: no limit): ``--max-errors N`` is N;
    ``P%`` is P % of the items the job acts on, rounded down."""
    count, pct = parse_max_errors(max_errors)
    if count is not None:
        return count
    if pct is not None:
        return int(acted_on * pct / 100)
    return None


def over_budget(failed: int, budget: int | None) -> bool:
    """Whether ``failed`` items exceed the budget (reaching it is still within it)."""
    return budget is not None and failed > budget


@dataclass(frozen=True)
class JobOptions:
    rate: float | None = DEFAULT_RATE  # None: no client-side quota
    burst: int = DEFAULT_BURST
    concurrency: int = 8
    max_errors: str | None = None
    waves: tuple[Wave, ...] = ()
    no_wait: bool = False
    verify_timeout: float = 1800.0
    include_connected: bool = False
    max_snapshot_age: float = 12.0
    ignore_snapshot_age: bool = False
    item_attempts: int = 5  # per WorkSpace, across batches, for retryable per-item failures
    read_timeout: float = 30.0  # seconds to wait for an answer before the attempt is retried
    connect_timeout: float = 5.0  # seconds to wait for a connection before the attempt is retried
    breaker: int = 5  # an operation failing the same way this many times in a row stops the job
    include_standby: bool = False  # selectors pick standby WorkSpaces too
    notify: tuple[str, ...] = ()  # webhook URLs and sns: topics told of the job's end
    window: tuple[str, ...] = ()  # maintenance windows ("SAT 22:00-SUN 04:00"); none: always
    timezone: str | None = None  # the windows' IANA time zone (None: UTC)
    # seconds a WorkSpace with a connected user is held for its user to log off (None: skipped)
    wait_for_logoff: float | None = None

    def __post_init__(self) -> None:
        if self.rate is not None and self.rate <= 0:
            raise UsageError(
                f"--rate must be a positive number of calls per second, not {self.rate}"
            )
        if self.burst < 1:
            raise UsageError(f"--burst must be at least 1, not {self.burst}")
        if self.concurrency < 1:
            raise UsageError(f"--concurrency must be at least 1, not {self.concurrency}")
        if self.verify_timeout <= 0:
            raise UsageError(f"--verify-timeout must be positive, not {self.verify_timeout}")
        if self.breaker < 1:
            raise UsageError(f"--breaker must be at least 1, not {self.breaker}")
        if self.read_timeout <= 0:
            raise UsageError(f"--read-timeout must be positive, not {self.read_timeout}")
        if self.connect_timeout <= 0:
            raise UsageError(f"--connect-timeout must be positive, not {self.connect_timeout}")
        if self.max_snapshot_age <= 0:
            raise UsageError(f"--max-snapshot-age must be positive, not {self.max_snapshot_age}")
        parse_max_errors(self.max_errors)
        if self.notify:
            from fleetops.catalogue.notify import check_target

            object.__setattr__(self, "notify", tuple(check_target(t) for t in self.notify))
        object.__setattr__(self, "window", tuple(self.window))
        given: object = self.wait_for_logoff
        if isinstance(given, str):  # "30m", "2h" as a flag or a job file gives it
            from fleetops.catalogue.cron import parse_duration

            seconds = parse_duration(given, what="--wait-for-logoff")
            object.__setattr__(self, "wait_for_logoff", seconds)
        elif self.wait_for_logoff is not None and self.wait_for_logoff <= 0:
            raise UsageError(f"--wait-for-logoff must be positive, not {self.wait_for_logoff}")
        if self.window or self.timezone:
            self.windows()  # a window that does not parse, an unknown zone: UsageError

    def windows(self) -> Any:
        """The job's maintenance windows (:class:`fleetops.catalogue.windows.Windows`); none
        given: always open."""
        from fleetops.catalogue.windows import parse_windows

        return parse_windows(self.window, self.timezone)

    def error_budget(self, eligible: int) -> int | None:
        """How many failed items the job tolerates before it is aborted (None: no limit)."""
        return error_budget(self.max_errors, eligible)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["waves"] = ["all" if w is None else w for w in self.waves]
        data["notify"] = list(self.notify)
        data["window"] = list(self.window)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobOptions:
        values = dict(data)
        if "waves" in values:
            values["waves"] = (
                parse_waves([str(w) for w in values["waves"]]) if values["waves"] else ()
            )
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})

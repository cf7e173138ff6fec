"""S1, rate-bound reboot against the evidence bound: every call of the quota worth it.

Verification on evidence needs two looks per 25 WorkSpaces (one inside the transition, one at
its end), so the honest minimum counts two polls per 25 and the bound adds one transition to the
quota's time. Three runs, figures as ratios from the same suite run: 20 calls/s (burst 50, with
the plain-boto3 peer), AWS's own 2 calls/s (burst 5), and the same 2 calls/s told ``--rate 10``
(a quota set too high must be learned from the first throttles: no slower than the right rate,
and at most 2 % of the requests throttled after the first :data:`LEARN_S` seconds, read from
the simulator's timeline of admitted and throttled requests).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fleetops.bench.scenarios import BATCH, Sizes, rate_bound, ratio, target

__all__ = ["LEARN_S", "run_s1"]

#: Told ``--rate 10`` at a 2 calls/s quota, the first throttles teach the real rate: the
#: throttled share's target counts the requests after these first seconds (the whole run's
#: share is reported beside it).
LEARN_S = 10.0


def run_s1(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    """Rate-bound reboot against the evidence bound (two looks per 25: one inside the
    transition, one at its end): at 20 calls/s (burst 50, with the peer), at AWS's own 2
    calls/s (burst 5), and at 2 calls/s told ``--rate 10`` (the quota is learned)."""
    common: dict[str, Any] = {
        "action": "reboot",
        "batch": BATCH,
        "sizes": sizes,
        "workdir": workdir,
        "polls": 2,
        "limit": 1.05,
    }
    fast = rate_bound(key="S1", title="rate-bound reboot", workspaces=sizes.s1_workspaces, **common)
    # At 2 calls/s a token comes every 0.5 s: a look inside a transition needs transitions
    # longer than that (AWS's last seconds), whatever the suite's size.
    common["transition_s"] = max(2.0, sizes.transition_s)
    aws = rate_bound(
        key="S1-aws",
        title="at AWS's quota",
        workspaces=sizes.s1_aws_workspaces,
        quota=(2.0, 5),
        peer=False,
        **common,
    )
    told = rate_bound(
        key="S1-too-high",
        title="--rate 10 at a 2 calls/s quota",
        workspaces=sizes.s1_aws_workspaces,
        quota=(2.0, 5),
        client_rate=10.0,
        peer=False,
        learn_s=LEARN_S,
        **common,
    )
    for label, part in (("at 2/s", aws), ("at 2/s told --rate 10", told)):
        fast["fleetops"][label] = part["fleetops"]
        fast["setup"][label] = {k: v for k, v in part["setup"].items() if k != "states"}
        fast["derived"].update({f"{label}: {k}": v for k, v in part["derived"].items()})
        fast["targets"] += [{**t, "name": f"{label}: {t['name']}"} for t in part["targets"]]
    wall_ratio = ratio(told["fleetops"]["wall_s"], aws["fleetops"]["wall_s"])
    fast["targets"].append(target("--rate 10 wall / --rate 2 wall", wall_ratio, 1.05))
    return fast

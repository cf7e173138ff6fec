"""The benchmark suite: fleetops against the API quota and a plain boto3 peer.

``python -m fleetops.bench run [--scenario S1,S2,…] [--quick] [--out bench/]``; see ``cli``.
"""

from __future__ import annotations

__all__: list[str] = []

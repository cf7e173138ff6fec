"""Which UNHEALTHY WorkSpaces a reboot or a restore heals: a deterministic knob.

AWS's own runbook for an UNHEALTHY WorkSpace reboots it, and restores or rebuilds it when the
reboot did not help; a simulator whose reboots always heal exercises none of that. So a reboot
(``reboot_heal_fraction``) or a restore (``restore_heal_fraction``) of a WorkSpace that was
UNHEALTHY ends AVAILABLE only for the WorkSpaces whose id, with the seed and the operation,
hashes below the fraction; the others come back UNHEALTHY. The same WorkSpace always answers the
same way (no randomness across calls or runs), and tests can ask :func:`heals` which ones will.
A rebuild always heals (it replaces the root volume from the bundle's image), unless
``rebuild_error_fraction`` makes the WorkSpaces chosen the same way end in ERROR (a broken
image: every rebuild failing is ``1.0``).
"""

from __future__ import annotations

import hashlib

__all__ = ["heals"]


def heals(seed: int, workspace_id: str, operation: str, fraction: float) -> bool:
    """Does ``operation`` (RebootWorkspaces, RestoreWorkspace) heal this UNHEALTHY WorkSpace?"""
    if fraction >= 1.0:
        return True
    if fraction <= 0.0:
        return False
    # A cryptographic digest: CRC32 is affine, so the answers of two operations would correlate.
    digest = hashlib.blake2b(f"{seed}:{operation}:{workspace_id}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big") / 2**64 < fraction

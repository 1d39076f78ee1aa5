"""Keyed hashes and rank choices: how the simulator picks things deterministically and exactly.

A choice ("which points are extra", "which points send a null kv_tags") ranks a keyed hash of each
name and takes the smallest: the count is exact and the choice stable for a seed.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]


def hash64(*parts: object) -> int:
    """A well-spread 64-bit integer of ``parts`` (their ``str``, joined by a separator)."""
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def mix(x: U64) -> U64:
    """splitmix64's finaliser: a well-spread 64-bit hash of each element."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def salted(keys: U64, salt: str) -> U64:
    """Independent hashes of the same keys for another purpose (one per ``salt``)."""
    return mix(keys ^ np.uint64(hash64("salt", salt)))


def rank_mask(hashes: list[int] | U64, count: int, eligible: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """True for the ``count`` eligible points with the smallest hash: exact counts, stable choice."""
    keys = np.asarray(hashes, dtype=np.uint64)
    candidates = np.flatnonzero(eligible)
    ranked = candidates[np.argsort(keys[candidates], kind="stable")]
    mask = np.zeros(len(keys), dtype=bool)
    mask[ranked[:count]] = True
    return mask

"""Deterministic cuid-like ids: `c` + 8 base36 chars of the creation time in ms + a 4-char
counter + a 4-char fingerprint + 8 pseudo-random chars, 25 lowercase chars in all.

That is the cuid v1 layout the vendor's ids (`cm4job789xyz...`) come from: like the real ones
they start with "cm" for instants between 2024 and 2029, and they sort roughly by creation.
The random part is a hash of (seed, namespace, serial), so a seed always yields the same ids.
"""

from __future__ import annotations

import hashlib

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)


def base36(value: int, width: int) -> str:
    """`value` in base 36, left-padded with zeros and cut to its last `width` digits."""
    # Two digits per divmod: ids are made for every simulated job, this is a hot path.
    pairs = []
    for _ in range((width + 1) // 2):
        value, pair = divmod(value, 1296)
        pairs.append(_PAIRS[pair])
    return "".join(reversed(pairs))[-width:]


def _base36_12(value: int) -> str:
    """Exactly 12 base36 digits of `value` (< 36**12), unrolled: the hot path of every id."""
    pairs = _PAIRS
    value, a = divmod(value, 1296)
    value, b = divmod(value, 1296)
    value, c = divmod(value, 1296)
    value, d = divmod(value, 1296)
    value, e = divmod(value, 1296)
    return pairs[value % 1296] + pairs[e] + pairs[d] + pairs[c] + pairs[b] + pairs[a]


class IdFactory:
    """Makes ids for one namespace ("job", "document", "folder", "user") of one seeded twin."""

    def __init__(self, seed: int, namespace: str) -> None:
        self._salt = f"{seed}:{namespace}:".encode()
        self._fingerprint = int.from_bytes(hashlib.blake2b(self._salt, digest_size=4).digest(), "big") % 36**4
        self._serial = 0

    def next(self, created_ms: int) -> str:
        self._serial += 1
        digest = hashlib.blake2b(self._salt + str(self._serial).encode(), digest_size=6).digest()
        noise = int.from_bytes(digest, "big") % 36**8
        # time (8 digits) | serial (4) | fingerprint (4) | noise (8), in two machine-size halves.
        head = created_ms % 36**8 * 36**4 + self._serial % 36**4
        tail = self._fingerprint * 36**8 + noise
        return f"c{_base36_12(head)}{_base36_12(tail)}"

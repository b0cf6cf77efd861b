"""Streaming near-duplicate detection: MinHash signatures with LSH banding, in bounded memory.

Shared by `vdata audit` (a whole dataset) and the server (flags on pending contributions). Needs numpy,
and `datasketch` (its permutations and LSH band split) when a `NearDuplicateIndex` is made.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np


class NearDuplicateIndex:
    """Streaming near-duplicate detection with MinHash signatures and LSH banding.

    Signatures are datasketch's "affine32" MinHash (its permutations, its MurmurHash3 pre-mix) with CRC-32
    shingle hashes, computed for a whole batch at once with numpy; the band/row split is datasketch's
    `MinHashLSH` optimum for the threshold. Like datasketch's LSHBloom, the index keeps only band hashes
    (`HashSet64`: 8 bytes per band per record), so it answers "was a similar record seen before?" in
    bounded memory per record. A test checks the signatures equal `datasketch.MinHash.update_batch`.
    """

    def __init__(self, threshold: float = 0.8, num_perm: int = 64, shingle: int = 3, seed: int = 1) -> None:
        from datasketch import MinHash, MinHashLSH

        template = MinHash(num_perm=num_perm, seed=seed, scheme="affine32")
        self.a, self.b = (np.asarray(x, dtype=np.uint32) for x in template.permutations)
        # Dedup cares more about missed duplicates than about a few extra flags: weight false negatives higher.
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=(0.3, 0.7))
        self.bands, self.rows = lsh.b, lsh.r
        self.shingle = shingle
        self.num_perm = num_perm
        self.threshold = threshold
        self.band_sets = [HashSet64() for _ in range(self.bands)]
        rng = np.random.RandomState(seed)
        self._band_mix = rng.randint(1, 2**62, size=(self.rows,), dtype=np.int64).astype(
            np.uint64
        ) | np.uint64(1)

    def shingles(self, tokens: Sequence[str]) -> list[bytes]:
        k = self.shingle if len(tokens) >= self.shingle else max(1, len(tokens))
        return list(dict.fromkeys(" ".join(tokens[i : i + k]).encode() for i in range(len(tokens) - k + 1)))

    def signatures(self, token_lists: Sequence[Sequence[str]]) -> np.ndarray:
        """MinHash signatures (len(token_lists) x num_perm, uint32) for a batch."""
        shingle_hashes: list[int] = []
        offsets = [0]
        for toks in token_lists:
            sh = self.shingles(toks) or [b""]
            shingle_hashes.extend(zlib.crc32(s) for s in sh)
            offsets.append(len(shingle_hashes))
        hv = _fmix32(np.asarray(shingle_hashes, dtype=np.uint32)).reshape(-1, 1)
        with np.errstate(over="ignore"):
            phv = hv * self.a + self.b  # uint32 wrap-around is the modulo 2^32 of the affine scheme
        return np.minimum.reduceat(phv, np.asarray(offsets[:-1]), axis=0)

    def band_hashes(self, sigs: np.ndarray) -> np.ndarray:
        """One 64-bit hash per band: (n x bands)."""
        n = len(sigs)
        used = sigs[:, : self.bands * self.rows].astype(np.uint64).reshape(n, self.bands, self.rows)
        with np.errstate(over="ignore"):
            return (used * self._band_mix).sum(axis=2, dtype=np.uint64)

    def check_and_add(self, token_lists: Sequence[Sequence[str]]) -> list[bool]:
        """For each record in order: True if an earlier record (this batch included) is a near duplicate,
        i.e. all rows of at least one band of their signatures agree."""
        if not token_lists:
            return []
        bands = self.band_hashes(self.signatures(token_lists))
        seen = np.zeros(len(bands), dtype=bool)
        for j, band_set in enumerate(self.band_sets):
            seen |= band_set.check_and_add(bands[:, j])
        return seen.tolist()


class HashSet64:
    """A set of 64-bit hashes in 8 bytes each: a sorted numpy array plus a small set of recent additions,
    folded into the array when it grows past `merge_at` or 1/8 of the array (amortised O(n log n))."""

    def __init__(self, merge_at: int = 50_000) -> None:
        self.sorted = np.empty(0, dtype=np.uint64)
        self.recent: set[int] = set()
        self.merge_at = merge_at

    def __len__(self) -> int:
        return len(self.sorted) + len(self.recent)

    def check_and_add(self, values: np.ndarray) -> np.ndarray:
        """For each value in order: was it already present (earlier in `values` included)? Adds them all."""
        values = np.asarray(values, dtype=np.uint64)
        out = np.zeros(len(values), dtype=bool)
        if len(self.sorted):
            pos = np.searchsorted(self.sorted, values).clip(max=len(self.sorted) - 1)
            out = self.sorted[pos] == values
        recent = self.recent
        for k, v in enumerate(values.tolist()):
            if out[k]:
                continue
            if v in recent:
                out[k] = True
            else:
                recent.add(v)
        if len(recent) >= max(self.merge_at, len(self.sorted) // 8):
            fresh = np.fromiter(recent, dtype=np.uint64, count=len(recent))
            self.sorted = np.sort(np.concatenate([self.sorted, fresh]))
            self.recent = set()
        return out


_F1 = np.uint32(0x85EBCA6B)
_F2 = np.uint32(0xC2B2AE35)


def _fmix32(h: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint32(16))
        h = h * _F1
        h = h ^ (h >> np.uint32(13))
        h = h * _F2
        return h ^ (h >> np.uint32(16))

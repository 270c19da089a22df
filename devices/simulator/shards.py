"""Several processes sharing one population: shard i of n runs the homes with index i mod n."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SHARD = re.compile(r"^(\d+)/(\d+)$")


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need 0 <= i < n")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`"1/4"` -> Shard(1, 4)."""
        match = _SHARD.match(text.strip())
        if not match:
            raise ValueError(f"shard {text!r}: expected i/n, e.g. 0/2")
        return cls(int(match[1]), int(match[2]))

    def owns(self, home_index: int) -> bool:
        return home_index % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def split(indexes: list[int], count: int) -> list[list[int]]:
    """Every index in exactly one of `count` shards."""
    return [[i for i in indexes if Shard(n, count).owns(i)] for n in range(count)]

"""A cluster's machine secret in shards, for a cloud whose secrets name their readers: on
AWS a secret's resource policy names at most `per_secret` instances
(`deploy.cloud.machine_secrets.capacity`, about 450), while a cluster may have thousands.

Each machine is given a shard before it launches: the first with room, else a new one (a
copy of the secret under `shard_key(key, n)`, made then). A shard holds its launches in
flight as well as its machines, so a batch never overfills it. The shard's index goes into
the machine's user data (which secret it reads: not a secret itself), its tags (`TAG_SHARD`)
and its job's state (`STATE_KEY`), so that a restarted gateway knows which machines each
shard holds (`known`, from the database) and a machine it adopts (`shard_of` its tags).
Shard 0 is the cluster's secret itself, where every machine of a small cluster is: its tags
and state then carry no shard at all. Each shard's policy names its own machines only, so
an instance reads only its own cluster's secret, as before.

A cloud whose secrets name no readers (GCP's broker authorizes by labels) has `per_secret`
None: one shard, whatever the cluster's size.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deploy.cloud.machine_secrets import shard_key

TAG_SHARD = "secret-shard"
STATE_KEY = "secret_shard"

Known = Mapping[int, set[str]]  # shard index -> ids of the cluster's machines the database holds


def shard_of(mapping: Mapping[str, Any] | None) -> int:
    """The shard a machine's tags (or a job's state) name; 0 when they name none."""
    return int((mapping or {}).get(TAG_SHARD) or (mapping or {}).get(STATE_KEY) or 0)


def machine_state(machine_id: str, private_ip: str | None, shard: int) -> dict:
    """A job's state for its machine, its shard named only when not the cluster's own secret."""
    state = {"machine_id": machine_id, "private_ip": private_ip}
    return {**state, STATE_KEY: shard} if shard else state


@dataclass
class _Shards:
    members: list[set[str]] = field(default_factory=list)  # per shard: the instances its policy names
    taken: list[int] = field(default_factory=list)  # per shard: its machines and launches in flight

    @classmethod
    def of(cls, known: Known) -> _Shards:
        count = max(known, default=0) + 1
        members = [set(known.get(index, ())) for index in range(count)]
        return cls(members, [len(ids) for ids in members])

    def grow(self, index: int) -> None:
        while len(self.members) <= index:
            self.members.append(set())
            self.taken.append(0)


class SecretShards:
    """The shards of every cluster this gateway runs; one writer per cluster at a time (a
    policy is rewritten whole: a concurrent write would drop ids)."""

    def __init__(self, secrets: Any, per_secret: int | None) -> None:
        self.secrets, self.per_secret = secrets, per_secret
        self._clusters: dict[str, _Shards] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _shards(self, key: str, known: Callable[[], Known]) -> _Shards:
        if key not in self._clusters:  # first use since this gateway started: from the database
            self._clusters[key] = _Shards.of(known())
        return self._clusters[key]

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def create(self, key: str, values: Mapping, tags: Mapping[str, str]) -> None:
        """The cluster's secret (shard 0), readable by the hub only until `allow`."""
        async with self._lock(key):
            await asyncio.to_thread(self.secrets.put, key, values, tags)
            self._clusters[key] = _Shards([set()], [0])

    async def reserve(self, key: str, known: Callable[[], Known], values: Callable[[], Mapping],
                      tags: Mapping[str, str]) -> int:
        """The index of a shard with room for one more machine, made if none has. `known` is
        asked only on the cluster's first use since this gateway started: a worker start must
        not walk every worker of a large cluster."""
        async with self._lock(key):
            shards = self._shards(key, known)
            for index, taken in enumerate(shards.taken):
                if self.per_secret is None or taken < self.per_secret:
                    shards.taken[index] += 1
                    return index
            index = len(shards.taken)
            await asyncio.to_thread(self.secrets.put, shard_key(key, index), values(), tags)
            shards.grow(index)
            shards.taken[index] = 1
            return index

    def release(self, key: str, index: int) -> None:
        """A reserved launch that failed: its room is free again."""
        shards = self._clusters.get(key)
        if shards is not None and index < len(shards.taken) and shards.taken[index] > len(shards.members[index]):
            shards.taken[index] -= 1

    async def allow(self, key: str, index: int, machine_ids: Sequence[str], known: Known) -> None:
        """Let shard `index`'s machines, these new ones included, read it."""
        async with self._lock(key):
            shards = self._shards(key, lambda: known)
            shards.grow(index)
            members = shards.members[index]
            members |= known.get(index, set()) | set(machine_ids)
            shards.taken[index] = max(shards.taken[index], len(members))
            await asyncio.to_thread(self.secrets.allow, shard_key(key, index), sorted(members))

    async def delete(self, key: str) -> None:
        """The cluster's secret and all its shards, those a previous gateway made included."""
        async with self._lock(key):
            if self.per_secret is None:
                await asyncio.to_thread(self.secrets.delete, key)
            else:
                await asyncio.to_thread(self.secrets.delete_shards, key)
            self._clusters.pop(key, None)
        self._locks.pop(key, None)

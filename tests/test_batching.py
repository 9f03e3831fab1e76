"""GroupCommit: queued writes go together, a failure falls back to one by one, a cancelled writer hands over."""

from __future__ import annotations

import asyncio

import pytest

from bot.services.batching import GroupCommit


class Store:
    def __init__(self) -> None:
        self.rows: list[str] = []
        self.transactions: list[list[str]] = []
        self.gate: asyncio.Event | None = None

    async def write_many(self, items: list[str]) -> list[str]:
        if self.gate is not None:
            await self.gate.wait()
        if "bad" in items:
            raise ValueError("bad item")  # the whole transaction is rolled back
        self.transactions.append(list(items))
        self.rows.extend(items)
        return [f"ok:{i}" for i in items]

    async def write_one(self, item: str) -> str:
        return (await self.write_many([item]))[0]


async def burst(group: GroupCommit[str, str], store: Store, first: str, rest: list[str]) -> list[object]:
    """`first` is being written (held at the gate) when `rest` arrive; then the gate opens."""
    store.gate = asyncio.Event()
    leader = asyncio.create_task(group.submit(first))
    await asyncio.sleep(0)
    others = [asyncio.create_task(group.submit(x)) for x in rest]
    await asyncio.sleep(0)
    store.gate.set()
    return await asyncio.gather(leader, *others, return_exceptions=True)


async def test_items_queued_while_one_is_written_go_in_the_next_transaction() -> None:
    store = Store()
    group: GroupCommit[str, str] = GroupCommit(store.write_many, store.write_one)
    assert await burst(group, store, "a", list("bcdef")) == [f"ok:{x}" for x in "abcdef"]
    assert store.transactions == [["a"], ["b", "c", "d", "e", "f"]]
    assert group.batches == 2


async def test_a_failed_batch_is_written_again_one_by_one_and_only_the_bad_item_fails() -> None:
    store = Store()
    group: GroupCommit[str, str] = GroupCommit(store.write_many, store.write_one)
    results = await burst(group, store, "a", ["b", "bad", "c"])
    assert results[:2] == ["ok:a", "ok:b"] and results[3] == "ok:c"
    assert isinstance(results[2], ValueError)
    assert store.rows == ["a", "b", "c"]


async def test_batches_are_capped() -> None:
    store = Store()
    group: GroupCommit[str, str] = GroupCommit(store.write_many, store.write_one, max_batch=3)
    store.gate = asyncio.Event()
    tasks = [asyncio.create_task(group.submit(str(i))) for i in range(8)]
    await asyncio.sleep(0)
    store.gate.set()
    await asyncio.gather(*tasks)
    assert [len(t) for t in store.transactions] == [1, 3, 3, 1]
    assert store.rows == [str(i) for i in range(8)]


async def test_a_cancelled_writer_hands_the_others_items_over_and_drops_its_own() -> None:
    store = Store()
    group: GroupCommit[str, str] = GroupCommit(store.write_many, store.write_one)
    store.gate = asyncio.Event()
    leader = asyncio.create_task(group.submit("mine"))
    await asyncio.sleep(0)
    # The leader is writing ["mine"]; two more wait. Then the leader writes all three... and is cancelled.
    others = [asyncio.create_task(group.submit(x)) for x in ("x", "y")]
    await asyncio.sleep(0)
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    store.gate.set()
    assert await asyncio.gather(*others) == ["ok:x", "ok:y"]
    assert store.rows == ["x", "y"]

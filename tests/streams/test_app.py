"""The worker's event loop stays free while the closer scores a bucket or writes a checkpoint,
and a stopping worker never leaves either half-way."""

from __future__ import annotations

import asyncio
import threading

import pytest

from streams.app import off_loop


def test_the_loop_serves_others_while_a_checkpoint_is_written() -> None:
    released = threading.Event()
    waited: list[bool] = []

    def write() -> None:
        # Only a coroutine on the loop can release it: written on the loop, it would time out.
        waited.append(released.wait(timeout=10))

    async def main() -> None:
        writing = asyncio.create_task(off_loop(write))
        await asyncio.sleep(0)  # the write has started
        released.set()
        await writing

    asyncio.run(main())
    assert waited == [True]


def test_a_cancelled_checkpoint_is_written_to_the_end_before_it_stops() -> None:
    started, go = threading.Event(), threading.Event()
    written: list[str] = []

    def write() -> None:
        started.set()
        go.wait(timeout=10)
        written.append("checkpoint")

    async def main() -> None:
        writing = asyncio.create_task(off_loop(write))
        assert await asyncio.to_thread(started.wait, 10)
        writing.cancel()
        for _ in range(3):
            await asyncio.sleep(0)  # the cancellation is delivered
        assert not writing.done()  # still waiting for the write
        go.set()
        with pytest.raises(asyncio.CancelledError):
            await writing
        assert written == ["checkpoint"]

    asyncio.run(main())


def test_a_step_returns_its_result_and_raises_its_error_to_the_caller() -> None:
    def write() -> None:
        raise OSError("disk full")

    assert asyncio.run(off_loop(lambda: 42)) == 42
    with pytest.raises(OSError, match="disk full"):
        asyncio.run(off_loop(write))

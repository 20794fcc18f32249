"""Asynchronous invocation (``InvocationType=Event``): Lambda's queue, its retries, its event age.

https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html (2026):

- "If the function returns an error, by default Lambda attempts to run it two more times, with a
  one-minute wait between the first two attempts, and two minutes between the second and third
  attempts. Function errors include errors returned by the function's code and errors returned
  by the function's runtime, such as timeouts." The number of retries is the function's
  ``maximum_retry_attempts`` (0..2);
- "For throttling errors (429) and system errors (500-series), Lambda returns the event to the
  queue and attempts to run the function again for up to 6 hours by default. The retry interval
  increases exponentially from 1 second after the first attempt to a maximum of 5 minutes."
  The limit is the function's ``maximum_event_age_s``; an event older than that is dropped (no
  destination or dead-letter queue here: it is logged).

Not emulated: Lambda's at-least-once delivery (an event may run twice) and the queue's own delay.
``sleep`` and ``clock`` are injected, so the schedule is unit-tested without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from handler.local.ids import uuid4_text
from handler.local.pool import Pool, Throttled

ERROR_RETRY_DELAYS_S = (60.0, 120.0)  # before the second and the third attempt
THROTTLE_FIRST_DELAY_S = 1.0
THROTTLE_MAX_DELAY_S = 300.0


@dataclass
class AsyncEvent:
    function: str
    payload: bytes
    queued_s: float
    attempts: int = 0  # runs that reached the function (throttles do not count)
    throttles: int = 0
    # The Invoke reply's x-amzn-RequestId, kept by every attempt: "invocations that return an
    # error or time out and have the same request ID ... indicate that the Lambda service retried
    # the function" (https://repost.aws/knowledge-center/lambda-function-duplicate-invocations).
    request_id: str = field(default_factory=uuid4_text)


class AsyncQueue:
    """Runs each queued event as Lambda does, retrying on function errors and throttles."""

    def __init__(
        self,
        pool: Pool,
        log: Callable[[str, str], None],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool = pool
        self.log = log  # (function, line): the emulator's line about an event it gave up on
        self.sleep = sleep
        self.clock = clock
        self._tasks: set[asyncio.Task] = set()

    def submit(self, function: str, payload: bytes) -> str:
        """Queue the event; its request id."""
        event = AsyncEvent(function, payload, self.clock())
        task = asyncio.create_task(self.run(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return event.request_id

    async def run(self, event: AsyncEvent) -> None:
        """Until it succeeds, runs out of retries, or is older than the function's maximum age."""
        config = self.pool.function(event.function).config
        while True:
            try:
                outcome = await self.pool.invoke(event.function, event.payload, request_id=event.request_id)
            except Throttled:
                delay = min(THROTTLE_FIRST_DELAY_S * 2**event.throttles, THROTTLE_MAX_DELAY_S)
                event.throttles += 1
            else:
                event.attempts += 1
                if outcome.function_error is None:
                    return
                if event.attempts > config.maximum_retry_attempts:
                    self.log(
                        event.function,
                        f"async event dropped after {event.attempts} attempts: {outcome.error_type}",
                    )
                    return
                delay = ERROR_RETRY_DELAYS_S[event.attempts - 1]
            if self.clock() + delay - event.queued_s > config.maximum_event_age_s:
                self.log(event.function, f"async event dropped: older than {config.maximum_event_age_s} s")
                return
            await self.sleep(delay)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

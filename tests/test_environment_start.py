"""An environment whose start fails, or that is stopped before its process exists, leaves nothing
open: not its Runtime API endpoint (a real listening socket on 127.0.0.1), its group or its /tmp.

The pool and the Runtime API are the emulator's own, in this process; the failures are injected
before any process is spawned, so no runtime runs."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from handler.local.config import EmulatorConfig, FunctionConfig
from handler.local.environment import Environment
from handler.local.ephemeral import EnvTmp
from handler.local.invocation import Invocation
from handler.local.lifecycle import IllegalTransition, InitPhase
from handler.local.logs import LogSink
from handler.local.pool import Pool
from handler.local.resources import EnvResources, ResourceModel
from handler.local.runtime_api import RuntimeApi

DEADLINE_S = 5.0


def refused(port: int) -> bool:
    """Nothing listens on 127.0.0.1:``port`` any more."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def run_with_pool(tmp_path: Path, body: Callable) -> None:
    """``body(pool, runtime, opened)`` with a started Runtime API; ``opened`` collects each
    (environment, port) whose endpoint was opened. Everything is closed after."""

    async def main() -> None:
        function = FunctionConfig(name="f", handler="app.handler", code_dir=tmp_path)
        runtime = RuntimeApi()
        await runtime.start()
        pool = Pool(
            EmulatorConfig(functions=(function,)),
            runtime,
            LogSink(None, quiet=True),
            resources=ResourceModel.host("unit test"),
        )
        opened: list[tuple[Environment, int]] = []
        real_open = runtime.open_endpoint

        async def open_endpoint(environment: Environment) -> int:
            port = await real_open(environment)
            opened.append((environment, port))
            return port

        runtime.open_endpoint = open_endpoint  # type: ignore[method-assign]
        try:
            await body(pool, runtime, opened)
        finally:
            await pool.close()
            await runtime.close()
            pool.resources.close()

    asyncio.run(main())


def test_a_start_whose_group_or_tmp_cannot_be_made_closes_its_endpoint(tmp_path, monkeypatch):
    def no_space(self: EnvResources) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(EnvResources, "create", no_space)

    async def body(pool: Pool, runtime: RuntimeApi, opened: list) -> None:
        with pytest.raises(OSError, match="No space left"):
            await pool.invoke("f", b"{}")
        ((environment, port),) = opened
        assert pool.function("f").environments == set() and pool.in_flight == 0
        await asyncio.wait_for(environment.wait_closed(), DEADLINE_S)
        assert refused(port)

    run_with_pool(tmp_path, body)


def test_an_environment_stopped_while_its_endpoint_opens_makes_no_group_or_tmp(tmp_path, monkeypatch):
    """A shutdown that arrives while the endpoint is being opened: before, the start went on
    to make the group and /tmp, then failed at the spawn and left them (and the endpoint) open."""
    created: list[str] = []
    real_create = EnvResources.create

    def create(self: EnvResources) -> None:
        created.append(self.env_id)
        real_create(self)

    monkeypatch.setattr(EnvResources, "create", create)

    async def body(pool: Pool, runtime: RuntimeApi, opened: list) -> None:
        real_open = runtime.open_endpoint

        async def open_then_stop(environment: Environment) -> int:
            port = await real_open(environment)
            environment.stop()  # as Pool.close does for every environment
            return port

        runtime.open_endpoint = open_then_stop  # type: ignore[method-assign]
        with pytest.raises(IllegalTransition, match="stopped before its spawn"):
            await pool.invoke("f", b"{}")
        ((environment, port),) = opened
        await asyncio.wait_for(environment.wait_closed(), DEADLINE_S)
        assert created == [] and refused(port)
        assert not environment.resources.tmp.directory.exists()

    run_with_pool(tmp_path, body)


def test_a_shutdown_while_an_endpoint_opens_waits_for_that_start_to_close_it(tmp_path):
    """``Pool.close`` (the emulator's shutdown) arriving while a cold start's endpoint opens: the
    close returns only once that start has closed the endpoint, before the Runtime API closes,
    and nothing fails unseen on the loop ("Task exception was never retrieved")."""
    closing: list[asyncio.Future] = []
    unseen: list[dict] = []
    shutdown_waits: list[bool] = []

    async def body(pool: Pool, runtime: RuntimeApi, opened: list) -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: unseen.append(context))
        real_open = runtime.open_endpoint

        async def open_during_shutdown(environment: Environment) -> int:
            port = await real_open(environment)
            closing.append(asyncio.ensure_future(pool.close()))
            for _ in range(20):  # loop turns enough for a shutdown that waits for nothing to end
                await asyncio.sleep(0)
            assert environment.lifecycle.state.terminal  # the shutdown stopped this environment
            shutdown_waits.append(not closing[0].done())  # ... and waits for this start
            return port

        runtime.open_endpoint = open_during_shutdown  # type: ignore[method-assign]
        with pytest.raises(IllegalTransition):
            await pool.invoke("f", b"{}")
        ((_, port),) = opened
        await asyncio.wait_for(closing[0], DEADLINE_S)
        assert refused(port)  # closed by the start itself, not by the Runtime API's close

    run_with_pool(tmp_path, body)
    assert shutdown_waits == [True] and unseen == []


def test_a_retried_init_whose_start_fails_answers_its_invocation_with_the_error(tmp_path, monkeypatch):
    def no_space(self: EnvResources) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(EnvResources, "create", no_space)

    async def body(pool: Pool, runtime: RuntimeApi, opened: list) -> None:
        state = pool.function("f")
        replacement = Environment(pool, state, InitPhase.INVOKE)
        state.environments.add(replacement)
        invocation = Invocation(b"{}", asyncio.get_running_loop())
        replacement.pending = invocation
        await asyncio.wait_for(pool.start_for(replacement, invocation), DEADLINE_S)
        with pytest.raises(OSError, match="No space left"):
            invocation.future.result()
        assert replacement.pending is None and state.environments == set()
        await asyncio.wait_for(replacement.wait_closed(), DEADLINE_S)
        ((_, port),) = opened
        assert refused(port)

    run_with_pool(tmp_path, body)


class CountingImage:
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


class CountingPool:
    def __init__(self) -> None:
        self.refills = 0

    def refill(self) -> None:
        self.refills += 1


def test_removing_a_tmp_twice_closes_its_image_and_refills_the_pool_once(tmp_path):
    """A start whose group fails removes its /tmp (``EnvResources.create``), then the failed
    start closes the resources again: the image must not be closed, nor the pool refilled, twice."""
    pool, image = CountingPool(), CountingImage()
    tmp = EnvTmp(tmp_path / "env", 512, b"/tmp", pool)  # type: ignore[arg-type]
    tmp.directory.mkdir()
    tmp.image = image  # type: ignore[assignment]
    tmp.remove()
    tmp.remove()
    assert image.closed == 1 and pool.refills == 1 and not tmp.directory.exists()

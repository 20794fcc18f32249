"""The open-loop generator's CPU policy (bench.load.priority): when it asks for real time."""

from __future__ import annotations

import os

import pytest

from bench.load.priority import MAX_SPIN_SHARE, Priority, apply, choose

SPIN_NS = 1_500_000


def test_real_time_only_for_an_open_loop_on_two_cpus_with_a_bounded_spin():
    assert choose("auto", True, 100.0, SPIN_NS, 2) is None  # 15 % of a CPU spinning: allowed
    assert "closed loop" in choose("auto", False, 100.0, SPIN_NS, 2)
    assert "one CPU" in choose("auto", True, 100.0, SPIN_NS, 1)
    over = (MAX_SPIN_SHARE + 0.1) * 1e9 / SPIN_NS  # req/s at which the spin holds too much
    assert "spin-wait would hold" in choose("auto", True, over, SPIN_NS, 8)
    assert choose("realtime", True, over, SPIN_NS, 1) is None  # asked for: the user's call
    assert choose("normal", True, 100.0, SPIN_NS, 8) == "--generator-priority normal"
    with pytest.raises(ValueError, match="one of auto, realtime, normal"):
        choose("fifo", True, 100.0, SPIN_NS, 2)


def test_apply_says_what_it_got_and_resets_nothing_it_did_not_set():
    before = os.sched_getscheduler(0)
    got = apply("normal", True, 100.0, SPIN_NS)
    assert got == Priority("normal", "--generator-priority normal") and os.sched_getscheduler(0) == before


def test_apply_sets_sched_fifo_in_a_child_where_allowed():
    # In a child, so the test process keeps its policy; refused (not root): says why.
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        got = apply("realtime", True, 100.0, SPIN_NS)
        policy = os.sched_getscheduler(0) & ~getattr(os, "SCHED_RESET_ON_FORK", 0)
        os.write(write, f"{got.policy}|{got.reason}|{policy == os.SCHED_FIFO}".encode())
        os._exit(0)
    os.close(write)
    policy, reason, is_fifo = os.read(read, 1000).decode().split("|")
    os.waitpid(pid, 0)
    if os.geteuid() == 0:
        assert (policy, is_fifo) == ("SCHED_FIFO 1", "True"), reason
    else:
        assert (policy, is_fifo) == ("normal", "False") and "refused" in reason


def test_the_timer_floor_runs_both_policies_and_refuses_bad_input(capsys):
    from bench.load import floor

    assert floor.main(["--rate", "500", "--ticks", "50", "--pairs", "1"]) == 0
    out = capsys.readouterr().out
    assert "500 Hz, 50 ticks" in out and "default: lag p50" in out
    assert "SCHED_FIFO 1: lag p50" in out or "SCHED_FIFO refused" in out
    assert floor.main(["--ticks", "0"]) == 2 and "must be positive" in capsys.readouterr().err

"""What an environment's /tmp adds to its spawn: each way of providing it, timed on /bin/true.

    python docs/scripts/tmp_setup_cost.py --trials 200

From ``Popen`` until the child has exec'd (``time.perf_counter_ns``), ``--trials`` times each, in
rounds that alternate the variants (so host noise falls on all of them alike):

- ``none``: no step in the child (a private TMPDIR only; the host resource model);
- ``fork``: a step that does nothing (``preexec_fn`` makes ``subprocess`` fork instead of
  vfork: what any step costs; an environment in a cgroup pays it anyway);
- ``tmpfs``: ``unshare(CLONE_NEWNS)`` + a tmpfs mount of 512 MB (what the emulator did before
  /tmp moved to disk);
- ``disk``: ``unshare`` + ``move_mount`` of an image made ahead (``handler.local.diskimage``:
  what a spawn pays while the pool has an image);
- ``disk-miss``: the image made on the spot first (copy + loop device + detached mount), as
  when the pool is empty;

(the kernel's work right after a loop device is configured and mounted slows a spawn at that
moment by several ms here, so the pool refills after the spawn, not during it); and the parts
of an image alone (``copy``, ``attach``, ``mount``) and a template (``mkfs.ext4``
+ ``debugfs``, once per size per emulator). Percentiles from HdrHistogram. Needs root and
loop devices; prints, writes nothing (its images are anonymous files).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hdrh.histogram import HdrHistogram

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from handler.local import diskimage  # noqa: E402

LIBC = ctypes.CDLL(None, use_errno=True)
TRUE = "/bin/true"


def tmpfs_step(target: bytes) -> None:
    LIBC.unshare(diskimage.CLONE_NEWNS)
    LIBC.mount(b"none", b"/", None, diskimage.MS_REC | diskimage.MS_PRIVATE, None)
    if LIBC.mount(b"tmpfs", target, b"tmpfs", 0x6, b"size=512m,mode=1777") != 0:
        raise OSError(ctypes.get_errno(), "mount tmpfs")


def spawn_us(preexec) -> float:
    """Until ``Popen`` returns: the child has exec'd (``subprocess`` waits for the exec to
    succeed), with its /tmp in place. Its exit (which unmounts) is waited for, not timed."""
    started = time.perf_counter_ns()
    child = subprocess.Popen([TRUE], preexec_fn=preexec)
    took = time.perf_counter_ns() - started
    if child.wait() != 0:
        raise RuntimeError("the child failed")
    return took / 1000


def summary(name: str, samples: list[float]) -> str:
    histogram = HdrHistogram(1, 60_000_000, 3)
    for value in samples:
        histogram.record_value(max(1, round(value)))
    p50, p90, p99 = (histogram.get_value_at_percentile(p) / 1000 for p in (50, 90, 99))
    return f"{name:<10} n={len(samples):<4} p50 {p50:7.2f} ms  p90 {p90:7.2f} ms  p99 {p99:7.2f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tmp-setup-cost-") as folder:
        directory = Path(folder)
        target = os.fsencode(directory)
        started = time.perf_counter_ns()
        template = diskimage.Template(directory, 512)
        print(f"template (mkfs.ext4 + debugfs, 512 MB): {(time.perf_counter_ns() - started) / 1e6:.1f} ms")
        samples: dict[str, list[float]] = {
            name: [] for name in ("none", "fork", "tmpfs", "disk", "disk-miss", "copy", "attach", "mount")
        }
        for _ in range(args.trials):
            t0 = time.perf_counter_ns()  # this round's image first, as the pool makes it ahead
            image_fd = template.copy(directory)
            t1 = time.perf_counter_ns()
            device_fd, device = diskimage._attach(image_fd)
            os.close(image_fd)
            t2 = time.perf_counter_ns()
            mount_fd = diskimage._detached_mount(device)
            t3 = time.perf_counter_ns()
            image = diskimage.DiskImage(512, device, device_fd, mount_fd)
            samples["copy"].append((t1 - t0) / 1000)
            samples["attach"].append((t2 - t1) / 1000)
            samples["mount"].append((t3 - t2) / 1000)
            samples["none"].append(spawn_us(None))
            samples["fork"].append(spawn_us(lambda: None))
            samples["tmpfs"].append(spawn_us(lambda: tmpfs_step(target)))
            samples["disk"].append(spawn_us(lambda image=image: image.mount_in_new_namespace(target)))
            image.close()
            started = time.perf_counter_ns()
            miss = diskimage.DiskImage.make(template, directory)
            made_us = (time.perf_counter_ns() - started) / 1000
            samples["disk-miss"].append(
                made_us + spawn_us(lambda miss=miss: miss.mount_in_new_namespace(target))
            )
            miss.close()
        template.close()
    for name, values in samples.items():
        print(summary(name, values))
    return 0


if __name__ == "__main__":
    sys.exit(main())

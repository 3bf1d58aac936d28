"""Progress lines of a running job, the same for every family that steps in output times."""

from __future__ import annotations

import time as wallclock


class Progress:
    """Progress lines (time reached, step, family details, elapsed, ETA) at most every
    ``every`` seconds and at the last output time; a single updating line when the
    stream is a terminal. ``stream`` None: silent."""

    def __init__(self, n_out: int, dt: float, stream, every: float = 10.0):
        self.n_out, self.dt, self.stream, self.every = n_out, dt, stream, every
        self.t0 = self.last = wallclock.monotonic()
        self.tty = bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())

    def update(self, n: int, start: int, detail: str = "") -> None:
        """Output time ``n`` reached (this run started after output time ``start``);
        ``detail`` is added to the line (e.g. bond dimension and truncation error)."""
        if self.stream is None:
            return
        now = wallclock.monotonic()
        if not (self.tty or now - self.last > self.every or n == self.n_out):
            return
        done = (n - start) / max(self.n_out - start, 1)
        eta = (now - self.t0) / done * (1 - done) if done > 0 else float("nan")
        detail = f", {detail}" if detail else ""
        line = (f"spinvalve: t = {n * self.dt:.2f} / {self.n_out * self.dt:.2f} fs, step {n}/{self.n_out}"
                f"{detail}, elapsed {now - self.t0:.1f} s, eta {eta:.1f} s")
        if self.tty:
            bar = "#" * int(30 * n / self.n_out)
            print(f"\r[{bar:<30}] {line}", end="\n" if n == self.n_out else "",
                  file=self.stream, flush=True)
        else:
            print(line, file=self.stream, flush=True)
        self.last = now

"""Children of a local cluster follow their supervisor: when it dies, they stop."""

from __future__ import annotations

import ctypes
import os
import signal

SUPERVISOR_ENV = "LOOT_SUPERVISOR_PID"


def follow_supervisor() -> None:
    """In a child of a LocalCluster: get SIGTERM when the supervisor dies.

    The child sets this up itself: a preexec_fn would run Python between fork
    and exec in a threaded parent, which is unsafe. Children also run in their
    own process group (process_group=0), so a terminal's Ctrl-C reaches only
    the supervisor, which stops them in order.
    """
    supervisor = os.environ.get(SUPERVISOR_ENV)
    if not supervisor:
        return
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(supervisor):  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)

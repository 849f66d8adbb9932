"""A command run to its end unless it is told to stop: how tools/reproduce.py runs training and gpu_session its
parts; the cores a process may use."""
import os
import signal
import subprocess


def usable_cores():
    """The cores this process may run on (its affinity: a container's or taskset's share, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                                # not on Linux
        return os.cpu_count() or 1


def run_until(argv, log, stop_reason, grace_s, cwd=None, env=None, poll_s=1.0):
    """Run `argv` with its output into the open file `log`; its return code. Every `poll_s` seconds `stop_reason()`
    is asked: once it gives a reason, the command is stopped (`stop`, `grace_s`) and that reason is returned."""
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    while True:
        try:
            return process.wait(poll_s)
        except subprocess.TimeoutExpired:
            reason = stop_reason()
        if reason:
            stop(process, grace_s)
            return reason


def stop(process, grace_s):
    """SIGINT, which the trainer turns into a clean stop (its files are written whole, its epoch checkpoint stays),
    then a kill if it has not ended after `grace_s` seconds."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()

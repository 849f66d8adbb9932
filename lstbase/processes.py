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


def cpu_threads(world=1):
    """(threads, why) for this process's CPU work (PyTorch, LiteRT). OMP_NUM_THREADS, when the user set it;
    otherwise the CPUs this process may use less those the machine's other work keeps busy (the 1-minute load
    average, rounded), shared among `world` processes of this machine, at least 1. Two threads on a 2-core VM
    loaded by other work run the CTR-GCN step 3-8 times slower than one (docs/performance.md)."""
    if os.environ.get('OMP_NUM_THREADS', '').isdigit() and int(os.environ['OMP_NUM_THREADS']) > 0:
        return int(os.environ['OMP_NUM_THREADS']), f'OMP_NUM_THREADS={os.environ["OMP_NUM_THREADS"]}'
    cpus = usable_cores()
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else 0.0
    threads = max(1, (cpus - round(load)) // world)
    return threads, (f'{cpus} CPUs for this process, a load of {load:.1f} from other work'
                     + (f', {world} processes' if world > 1 else '') + '; OMP_NUM_THREADS=N sets it')


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

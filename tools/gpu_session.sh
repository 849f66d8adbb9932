#!/usr/bin/env bash
# A time-boxed job on a bare GPU machine (a rented or preemptible GPU, a batch job with a wall-clock limit): the GPU
# benchmark and the full-schedule NW-UCLA reproduction (tools/gpu_session.py says what each part does), resumable
# across jobs. Everything it needs travels in the git-ignored folder .gpu/.
#
# On your machine, before a job (again after any change to text/ or to the state):
#     bash tools/gpu_session.sh --prepare [--release-dir /path/to/a/clone/of/MartinXM/LST]
# On the GPU machine, with the checkout and .gpu/, under a wall-clock limit a little above the budget:
#     bash tools/gpu_session.sh --budget 420 --out DIR
# DIR then holds at most 8 files: session.md (what happened, read it first), results.tar.gz.partNN (bench tables,
# summaries, logs, score files), state.tar.gz.partNN (what the next job resumes from) and weights.tar.gz.partNN (best
# weights of the runs finished in that job, as room allows). Back on your machine:
#     bash tools/gpu_session.sh --restore DIR
# puts the state into .gpu/state (carried by the next job, which resumes unfinished runs from their last epoch and
# skips a complete bench) and unpacks everything into work_dir/gpu for reading. A job that returned nothing: the same
# job again, with a smaller --budget if less time is left.
# The smoke test (CPU, tiny shapes, quick schedule on generated data; tests/test_gpu_session.py):
#     bash tools/gpu_session.sh --smoke --out /tmp/gpu-smoke
set -euo pipefail
cd "$(dirname "$0")/.."
# here the project's virtual environment (git-ignored, so it does not travel); there the machine's python3
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
# the GPU machine's Python lacks ftfy (and its wcwidth), which text/clip.py imports: --prepare put the wheels here
if ! "$PYTHON" -c 'import ftfy' 2>/dev/null && compgen -G '.gpu/whl/*.whl' >/dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/lst-site \
        .gpu/whl/*.whl
    export PYTHONPATH=/tmp/lst-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
exec "$PYTHON" tools/gpu_session.py "$@"

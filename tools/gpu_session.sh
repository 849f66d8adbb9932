#!/usr/bin/env bash
# One lent GPU, one call: the GPU benchmark and the full-schedule NW-UCLA reproduction (tools/gpu_session.py says
# what each part does). Everything it needs travels in the git-ignored folder .gpu/.
#
# Here, right before the call (again after any change to text/ or to the state):
#     bash tools/gpu_session.sh --prepare [--release-dir /path/to/a/clone/of/MartinXM/LST]
# The device call (15 minutes of device time per session, machine start included; a retry after a failed call:
# --budget 110, timeout_s 150):
#     run(command="bash tools/gpu_session.sh --budget 420", carry=[".gpu"], timeout_s=480)
# It returns at most 8 files under files_at: session.md (what happened, read it first), results.tar.gz.partNN
# (bench tables, summaries, logs, score files), state.tar.gz.partNN (what the next call resumes from) and
# weights.tar.gz.partNN (best weights of the runs finished in that call, as room allows). Then, here:
#     bash tools/gpu_session.sh --restore <files_at>
# puts the state into .gpu/state (carried by the next call, which resumes unfinished runs from their last epoch
# and skips a complete bench) and unpacks everything into work_dir/gpu for reading. A failed call that returned
# nothing: the same call again, with a smaller --budget and timeout_s if less device time is left.
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

#!/usr/bin/env bash
# The whole LST job on built-in synthetic data, on the CPU, offline, in a few minutes on 2 cores:
# raw .skeleton files -> preprocessing -> LST joint and bone streams -> test with saved scores -> ensemble.
# PYTHON=/path/to/python picks the interpreter (default: python3 from PATH, e.g. an activated virtual environment).
# Run again, it resumes: finished steps are skipped. To start afresh: rm -rf data/demo work_dir/demo
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
DEMO=data/demo
WORK=work_dir/demo
if [ -e "$DEMO" ] || [ -e "$WORK" ]; then
  echo "== resuming the demo in $DEMO and $WORK (finished steps are skipped; to start afresh: rm -rf $DEMO $WORK)"
fi

echo "== 1/5 synthetic raw NTU-format files (10 classes)"
if [ ! -e "$DEMO/raw/.complete" ]; then
  "$PY" -m preprocess.synthetic ntu --out $DEMO/raw --classes 10 --per-class 30 --empty-files 2
  touch "$DEMO/raw/.complete"
fi
echo "== 2/5 preprocessing (the three steps of data/ntu in one command)"
if [ ! -e "$DEMO/ntu/NTU60_CS.npz" ]; then
  "$PY" -m preprocess.ntu --dataset ntu60 --raw-dir $DEMO/raw --out-dir $DEMO/ntu
fi
for stream in joint bone; do
  echo "== 3/5 training LST, $stream stream (a finished run is only re-tested)"
  "$PY" main_multipart_ntu.py --config config/demo/lst_$stream.yaml --work-dir $WORK/lst_$stream
  echo "== 4/5 testing the best $stream weights with saved scores"
  "$PY" main_multipart_ntu.py --config $WORK/lst_$stream/config.yaml --work-dir $WORK/lst_$stream \
    --phase test --save-score True --weights $WORK/lst_$stream/best.pt
done
echo "== 5/5 two-stream ensemble"
"$PY" ensemble.py --datasets ntu/xview --joint-dir $WORK/lst_joint --bone-dir $WORK/lst_bone --data-dir $DEMO
"$PY" config/demo/summary.py "$WORK" "$DEMO"

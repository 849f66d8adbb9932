"""Time to build the frozen text-feature bank (every prompt encoded once), per available encoder.

    python bench/text_bank.py [--quick]

CLIP encoders are timed when their weights are cached (~/.cache/clip); all-MiniLM-L6-v2 ships offline.
"""
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'torchlight')]

from text import clip  # noqa: E402
from text.bank import TextFeatureBank  # noqa: E402
from text.prompts import load_prompts  # noqa: E402


def run(quick=False, device='cpu'):
    encoders = ['all-MiniLM-L6-v2'] + [name for name in clip.MODELS
                                       if os.path.exists(os.path.join(clip.CACHE_DIR, os.path.basename(clip.MODELS[name])))]
    rows, notes = [], []
    for dataset in (['ucla'] if quick else ['ucla', 'ntu120']):
        prompts = len(load_prompts(dataset).all_texts())
        for encoder in encoders:
            with tempfile.TemporaryDirectory() as cache:
                start = time.perf_counter()
                TextFeatureBank.load_or_build(encoder, dataset, cache, device=device, log=str)
                build = time.perf_counter() - start
                start = time.perf_counter()
                TextFeatureBank.load_or_build(encoder, dataset, cache, device=device, log=str)
                reuse = time.perf_counter() - start
            rows.append(dict(encoder=encoder, dataset=dataset, prompts=prompts, build_s=build, reuse_s=reuse))
            print(rows[-1])
    if len(encoders) == 1:
        notes.append('CLIP weights not cached here (no download on this machine): only the offline encoder timed')
    return dict(rows=rows, notes=notes)


if __name__ == '__main__':
    run('--quick' in sys.argv)

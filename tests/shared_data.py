"""The real data the tests read in place from beside the clone (`../shared`, or $LST_SHARED_DIR): used only when it
is the data they expect, so that another folder of that name or a partial copy skips them instead of failing them."""
import hashlib
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get('LST_SHARED_DIR') or os.path.join(os.path.dirname(ROOT), 'shared')
REAL_UCLA = os.path.join(SHARED, 'datasets', 'NW-UCLA', 'all_sqe')
UCLA_FILES = 1484                               # every NW-UCLA sequence
CLIP = os.path.join(SHARED, 'datasets', 'video', 'ntu_sample.avi')
CLIP_SHA256 = '5e6f0de7d4328aae50b3a9cdaf2a8353f1286721060cb00c49e4afafe4e896dd'    # pyskl's demo/ntu_sample.avi


def whole_nw_ucla():
    return os.path.isdir(REAL_UCLA) and sum(name.endswith('.json') for name in os.listdir(REAL_UCLA)) == UCLA_FILES


def the_ntu_clip():
    if not os.path.isfile(CLIP):
        return False
    with open(CLIP, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest() == CLIP_SHA256


needs_nw_ucla = pytest.mark.skipif(not whole_nw_ucla(), reason=f'the real NW-UCLA files ({UCLA_FILES} in {REAL_UCLA}) '
                                                                f'are not here')
needs_clip = pytest.mark.skipif(not the_ntu_clip(), reason=f'the NTU clip ({CLIP}, pyskl\'s ntu_sample.avi) is not here')

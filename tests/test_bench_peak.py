"""bench/: the CPU peak worked out from /proc/cpuinfo, and our CTR-GCN's rows against the released one's."""
import pytest
import torch

from bench import epoch, peak, train_step
from bench.train_step import RELEASED_CTRGCN, summarise

CPUINFO = 'processor\t: {p}\nvendor_id\t: {vendor}\ncpu family\t: {family}\ncpu MHz\t\t: {mhz}\nflags\t\t: {flags}\n\n'


def cpuinfo(tmp_path, vendor, family, flags, mhz=(2600.0, 2400.0)):
    path = tmp_path / 'cpuinfo'
    path.write_text(''.join(CPUINFO.format(p=p, vendor=vendor, family=family, mhz=m, flags=flags)
                            for p, m in enumerate(mhz)))
    return str(path)


@pytest.mark.parametrize('vendor, family, flags, per_core, lanes', [
    ('AuthenticAMD', 25, 'fpu avx avx2 fma avx512f', 83.2, '8 fp32 lanes (avx512f, run as two 256-bit halves'),
    ('AuthenticAMD', 26, 'fpu avx avx2 fma avx512f', 166.4, '16 fp32 lanes (avx512f)'),
    ('GenuineIntel', 6, 'fpu avx avx2 fma avx512f', 166.4, '16 fp32 lanes (avx512f)'),
    ('GenuineIntel', 6, 'fpu avx avx2 fma', 83.2, '8 fp32 lanes (avx2)'),
    ('GenuineIntel', 6, 'fpu sse4_2', 20.8, '4 fp32 lanes (sse) x 1 (no fma flag)'),
])
def test_peak_is_cores_clock_fma_units_lanes_and_two(tmp_path, monkeypatch, vendor, family, flags, per_core, lanes):
    monkeypatch.setattr(peak, 'CPUFREQ_MAX', str(tmp_path / 'absent'))
    gflops, how = peak.cpu_peak(2, cpuinfo(tmp_path, vendor, family, flags))
    assert gflops == pytest.approx(2 * per_core)
    assert how.startswith('2 cores x 2.60 GHz (cpu MHz in /proc/cpuinfo) x 2 FMA units') and lanes in how


def test_peak_prefers_the_cpufreq_maximum_and_says_when_there_is_no_clock(tmp_path, monkeypatch):
    (tmp_path / 'max').write_text('3700000\n')
    monkeypatch.setattr(peak, 'CPUFREQ_MAX', str(tmp_path / 'max'))
    gflops, how = peak.cpu_peak(1, cpuinfo(tmp_path, 'GenuineIntel', 6, 'avx2 fma'))
    assert gflops == pytest.approx(3.7 * 32) and '3.70 GHz (cpufreq maximum)' in how
    monkeypatch.setattr(peak, 'CPUFREQ_MAX', str(tmp_path / 'absent'))
    assert peak.cpu_peak(1, str(tmp_path / 'no-cpuinfo')) == (None, 'no clock in /proc/cpuinfo')


def test_rows_give_the_ratio_to_the_release_its_share_of_peak_and_the_goals():
    times = {'CTR-GCN': [2.0, 2.2, 1.8], 'LST': [2.1, 2.1, 2.1], RELEASED_CTRGCN: [3.0, 3.0, 3.0]}
    rows = summarise('train step, ucla, batch 16, fp32', times, 16, flops={'CTR-GCN': 50.0}, peak=50.0)
    ours = rows[0]
    assert ours['vs_release'] == pytest.approx(2 / 3) and ours['share_of_peak'] == pytest.approx(0.5)
    assert 'share_of_peak' not in rows[1] and rows[2]['vs_release'] == 1
    goals = list(epoch.release_goal_rows(rows))
    assert goals == [dict(goal='CTR-GCN train step <= 0.67x the released CTR-GCN',
                          where='train step, ucla, batch 16, fp32', measured='0.667x', met=True)]


def test_a_release_clone_alone_gives_the_released_ctrgcn_rows(tmp_path):
    """tools/gpu_session.sh carries only the LST clone (--release-dir): its model/ctrgcn.py's `Model` is the
    released CTR-GCN, timed beside ours in training and inference (our class stands in for it here)."""
    (tmp_path / 'model').mkdir()
    (tmp_path / 'model' / 'ctrgcn.py').write_text('from model.ctrgcn import Model  # noqa: F401\n')
    bench = train_step.DatasetBench('ucla', torch.device('cpu'), 2, 16, str(tmp_path), channels_last=False,
                                    tower_layers=1)
    assert RELEASED_CTRGCN in bench.models and RELEASED_CTRGCN in bench.steps('fp32')
    assert any(note.startswith(f'ucla: {RELEASED_CTRGCN}') for note in bench.notes)


def test_backbone_times_our_ctrgcn_and_the_released_one_only(tmp_path):
    """--backbone: the two CTR-GCN rows, training and inference, without the LST variants; without a clone to take
    the released model from, one error line."""
    (tmp_path / 'model').mkdir()
    (tmp_path / 'model' / 'ctrgcn.py').write_text('from model.ctrgcn import Model  # noqa: F401\n')
    result = train_step.run(batch=2, frames=16, dataset='ucla', release_dir=str(tmp_path), smoke=True,
                            precisions=['fp32'], channels_last=False, backbone=True)
    variants = {(row['measure'].split(',')[0], row['variant']) for row in result['rows']}
    assert variants == {(kind, name) for kind in ('train step', 'inference') for name in ('CTR-GCN', RELEASED_CTRGCN)}
    with pytest.raises(SystemExit, match='--backbone .*--reference-dir or --release-dir'):
        train_step.run(dataset='ucla', smoke=True, backbone=True)

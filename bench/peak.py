"""The fp32 peak of this machine's CPU cores, worked out from what the kernel reports:

    peak = cores x clock x FMA units x fp32 lanes per unit x 2 (a fused multiply-add is two operations)

The clock is cpufreq's maximum where the kernel exposes it, else the highest `cpu MHz` of /proc/cpuinfo (a VM
reports its nominal clock; a core that boosts above it can run past this peak). The lanes come from the flags
(avx512f: 16, avx/avx2: 8, else 4), but AMD cores before family 26 (Zen 5) run 512-bit instructions as two
256-bit halves, so 8 there. Two FMA units per core: every x86 core with AVX2 since Haswell and Zen 2 has them,
and /proc/cpuinfo does not say.
"""
import os

FMA_UNITS = 2
CPUFREQ_MAX = '/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq'


def cpuinfo(path='/proc/cpuinfo'):
    """The first processor's fields, with 'cpu MHz' the highest over all processors ({} where there is none)."""
    fields, mhz = {}, []
    try:
        with open(path) as f:
            for line in f:
                key, _, value = (part.strip() for part in line.partition(':'))
                if key == 'cpu MHz':
                    mhz.append(float(value))
                fields.setdefault(key, value)
    except OSError:
        return {}
    if mhz:
        fields['cpu MHz'] = max(mhz)
    return fields


def clock_ghz(fields):
    """(GHz, where it was read) or (None, why not)."""
    try:
        with open(CPUFREQ_MAX) as f:
            return int(f.read()) / 1e6, 'cpufreq maximum'
    except (OSError, ValueError):
        pass
    if 'cpu MHz' in fields:
        return fields['cpu MHz'] / 1e3, 'cpu MHz in /proc/cpuinfo'
    return None, 'no clock in /proc/cpuinfo'


def fp32_lanes(fields):
    """(fp32 lanes of one FMA unit, why)."""
    flags = set(fields.get('flags', '').split())
    if 'avx512f' in flags:
        family = int(fields.get('cpu family', 0) or 0)
        if fields.get('vendor_id') == 'AuthenticAMD' and family < 26:
            return 8, f'avx512f, run as two 256-bit halves by AMD family {family}'
        return 16, 'avx512f'
    if flags & {'avx', 'avx2'}:
        return 8, 'avx2' if 'avx2' in flags else 'avx'
    return 4, 'sse'


def cpu_peak(cores=None, path='/proc/cpuinfo'):
    """(fp32 GFLOP/s of `cores` cores (default: those this process may use), how it was worked out); (None, why)
    where /proc/cpuinfo does not tell."""
    cores = cores or len(os.sched_getaffinity(0))
    fields = cpuinfo(path)
    ghz, clock_source = clock_ghz(fields)
    if ghz is None:
        return None, clock_source
    lanes, lanes_why = fp32_lanes(fields)
    fma = 2 if 'fma' in fields.get('flags', '').split() else 1
    peak = cores * ghz * FMA_UNITS * lanes * fma
    how = (f'{cores} core{"s" * (cores > 1)} x {ghz:.2f} GHz ({clock_source}) x {FMA_UNITS} FMA units (assumed) x '
           f'{lanes} fp32 lanes ({lanes_why}) x {fma} ({"fma" if fma == 2 else "no fma flag"}) = {peak:.0f} GFLOP/s')
    return peak, how

"""CPU benchmark of the PPD model core (issue 3): encoder, DiT step, prediction, peak RSS.

Each configuration runs in its own subprocess so that peak RSS is per configuration. Weights
are random (timing does not depend on their values). Numbers come from
``DepthPredictor.predict(..., resize=False)`` timings at the given network size:
encoder = 'semantics', DiT step = 'dit' / steps, prediction = 'total'.

    python bench/bench_model.py                 # print the table
    python bench/bench_model.py --write         # also update bench/RESULTS.md
    python bench/bench_model.py --only tiny     # subset (variant names)
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

# variant, network height, width, timed repetitions (after one warm-up; 0 = single cold run)
CASES = [
    ('tiny', 96, 128, 5),
    ('small', 384, 512, 3),
    ('large', 512, 512, 0),
    ('large', 768, 1024, 0),
]
STEPS = 4
RESULTS = Path(__file__).with_name('RESULTS.md')
SECTION = '## Model (issue 3)'


def worker(variant: str, height: int, width: int, reps: int) -> dict:
    import numpy as np
    import torch

    from ppd_ros.model import DepthPredictor, build_model

    torch.manual_seed(0)
    predictor = DepthPredictor(build_model(variant), device='cpu', precision='fp32')
    rgb = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    runs = []
    for i in range(reps + 1 if reps else 1):
        timings = predictor.predict(rgb, steps=STEPS, seed=i, resize=False).timings
        if reps == 0 or i > 0:   # drop the warm-up when there are repetitions
            runs.append(timings)

    def median(key, scale=1.0):
        return float(np.median([r[key] for r in runs])) * scale

    return {
        'variant': variant, 'height': height, 'width': width, 'runs': len(runs),
        'encoder_s': median('semantics'), 'dit_step_s': median('dit', 1.0 / STEPS),
        'predict_s': median('total'),
        'peak_rss_gib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        'threads': torch.get_num_threads(),
    }


def cpu_name() -> str:
    try:
        out = subprocess.run(['lscpu'], capture_output=True, text=True).stdout
        match = re.search(r'Model name:\s*(.+)', out)
        if match:
            return match.group(1).strip()
    except OSError:
        pass
    return platform.processor() or 'unknown CPU'


def table(rows: list[dict]) -> str:
    lines = ['| variant | network h×w | encoder (s) | one DiT step (s) | 4-step prediction (s) '
             '| peak RSS (GiB) | runs |',
             '|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f"| {r['variant']} | {r['height']}×{r['width']} | {r['encoder_s']:.3f} | "
                     f"{r['dit_step_s']:.3f} | {r['predict_s']:.3f} | {r['peak_rss_gib']:.2f} | "
                     f"{r['runs']} |")
    return '\n'.join(lines)


def write_results(rows: list[dict], date: str) -> None:
    threads = rows[0]['threads'] if rows else '?'
    body = '\n'.join([
        SECTION, '',
        f'Machine: {cpu_name()}, {threads} CPU threads (2-core CPU, shared with other jobs), '
        f'torch {__import__("torch").__version__}, fp32, random weights. Date: {date}.',
        'Command: `python bench/bench_model.py --write`. Each row runs in a fresh subprocess; '
        'times are medians over `runs` predictions after one warm-up '
        '(large: one cold run).',
        'encoder = DA2/DINOv2 semantics once per image; one DiT step = mean of the 4 steps; '
        'prediction = whole `predict` (preprocess, encoder, 4 steps, upsampling).', '',
        table(rows), '',
    ])
    text = RESULTS.read_text() if RESULTS.exists() else '# Benchmarks\n\n'
    pattern = re.compile(re.escape(SECTION) + r'.*?(?=^## |\Z)', re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: body + '\n', text)
    else:
        text = text.rstrip() + '\n\n' + body
    RESULTS.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--worker', nargs=4, metavar=('VARIANT', 'H', 'W', 'REPS'),
                        help=argparse.SUPPRESS)
    parser.add_argument('--only', nargs='*', help='variants to run (default: all)')
    parser.add_argument('--write', action='store_true',
                        help=f'update the section in {RESULTS.name}')
    parser.add_argument('--date', default=time.strftime('%Y-%m-%d'))
    args = parser.parse_args()
    if args.worker:
        v, h, w, reps = args.worker
        print(json.dumps(worker(v, int(h), int(w), int(reps))))
        return 0
    rows = []
    for variant, h, w, reps in CASES:
        if args.only and variant not in args.only:
            continue
        print(f'running {variant} {h}x{w} ...', file=sys.stderr, flush=True)
        command = [sys.executable, __file__, '--worker', variant, str(h), str(w), str(reps)]
        out = subprocess.run(command,
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(table(rows))
    if args.write:
        write_results(rows, args.date)
    return 0


if __name__ == '__main__':
    sys.exit(main())

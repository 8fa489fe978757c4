"""CPU benchmark of the MoGe-2 metric mode against the DA2 mode at the same network size.

Large networks with random weights (timing does not depend on their values), one network
size, every mode in its own subprocess (peak RSS per mode):

    da2          large (ppd.pth layout): DA2 encoder, DiT steps
    moge_shared  large_moge + moge-2-vitl-normal sharing one encoder: the encoder once on the
                 g16 grid, DiT steps, MoGe-2 neck + heads on the same features, focal / shift
                 recovery, and the metric fit of PPD's depth to MoGe-2's (log-affine RANSAC)
    moge_exact   the same, MoGe-2 run by its own infer (second encoder pass at its token grid)

Expected: moge_shared - da2 = MoGe-2's neck and heads + the (cheap) geometry and fit.

    python bench/bench_moge2.py                       # 480 x 640, 1 step, print the table
    python bench/bench_moge2.py --write               # also update bench/RESULTS.md
    python bench/bench_moge2.py --size 768x1024 --steps 4
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

MODES = ('da2', 'moge_shared', 'moge_exact')
RESULTS = Path(__file__).with_name('RESULTS.md')
SECTION = '## MoGe-2 metric mode vs DA2 mode (issue 18)'
STAGES = (('preprocess', 'preprocess (resize, tensor, noise)'),
          ('semantics', 'semantics encoder (once)'),
          ('dit_step', 'one DiT step'),
          ('postprocess', 'postprocess (upsample)'),
          ('moge_encoder', 'MoGe-2 encoder (second pass)'),
          ('moge_heads', 'MoGe-2 neck + heads'),
          ('moge_geometry', 'focal / shift, intrinsics, metric depth'),
          ('fit', 'metric fit of PPD to MoGe-2 (RANSAC log-affine)'),
          ('total', 'total per frame'))


def worker(mode: str, height: int, width: int, steps: int) -> dict:
    import numpy as np
    import torch

    from ppd_ros.alignment import fit_log_affine
    from ppd_ros.model import DepthPredictor, build_model
    from ppd_ros.model.metric_predictor import metric_predictor
    from ppd_ros.model.moge2 import build_moge2

    torch.manual_seed(0)
    clock = time.perf_counter()
    rgb = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    if mode == 'da2':
        predictor = DepthPredictor(build_model('large'), device='cpu', network_area=height * width)
        build_s = time.perf_counter() - clock
        timings = dict(predictor.predict(rgb, steps=steps, seed=0).timings)
    else:
        ppd = build_model('large_moge')
        moge = build_moge2('moge2_vitl_normal')
        ppd.encoder = moge.encoder          # as load_official_ppd_moge: one encoder module
        grid = 'shared' if mode == 'moge_shared' else 'exact'
        predictor = metric_predictor(ppd, moge, device='cpu', grid=grid,
                                     network_area=height * width)
        build_s = time.perf_counter() - clock
        result = predictor.predict(rgb, steps=steps, seed=0)
        timings = dict(result.timings)
        timings.update({k: v for k, v in result.geometry.timings.items()
                        if k in ('moge_encoder', 'moge_heads', 'moge_geometry')})
        start = time.perf_counter()
        depth = np.where(result.geometry.mask, result.geometry.depth, np.nan)
        fit_log_affine(result.network_depth, depth, max_points=4096)
        timings['fit'] = time.perf_counter() - start
        timings['total'] += timings['fit']
        timings['grid'] = list(result.geometry_grid)
    timings['dit_step'] = timings.pop('dit') / steps
    timings.pop('geometry', None)
    return {'mode': mode, 'height': height, 'width': width, 'steps': steps, 'timings': timings,
            'build_s': build_s, 'threads': torch.get_num_threads(),
            'peak_rss_gib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20}


def run_mode(mode: str, height: int, width: int, steps: int) -> dict:
    code = (f'import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); '
            f'import bench_moge2 as b; '
            f'print(json.dumps(b.worker({mode!r}, {height}, {width}, {steps})))')
    out = subprocess.run([sys.executable, '-c', code], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def table(results: list[dict]) -> str:
    header = '| stage (s) | ' + ' | '.join(r['mode'] for r in results) + ' |'
    lines = [header, '|---|' + '---:|' * len(results)]
    for key, label in STAGES:
        cells = [f"{r['timings'][key]:.3f}" if key in r['timings'] else '–' for r in results]
        lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    lines.append('| MoGe-2 ViT grid | ' + ' | '.join(
        '×'.join(map(str, r['timings']['grid'])) if 'grid' in r['timings'] else '–'
        for r in results) + ' |')
    lines.append('| peak RSS (GiB) | ' + ' | '.join(f"{r['peak_rss_gib']:.2f}" for r in results)
                 + ' |')
    return '\n'.join(lines)


def extra_cost(results: list[dict]) -> str:
    by_mode = {r['mode']: r['timings'] for r in results}
    if 'da2' not in by_mode or 'moge_shared' not in by_mode:
        return ''
    da2, moge = by_mode['da2'], by_mode['moge_shared']
    extra = moge['total'] - da2['total']
    heads = moge.get('moge_heads', 0.0) + moge.get('moge_geometry', 0.0) + moge.get('fit', 0.0)
    encoder = moge['semantics'] - da2['semantics']
    return (f'moge_shared − da2 per frame: {extra:.3f} s; MoGe-2 neck + heads + geometry + fit: '
            f'{heads:.3f} s; encoder difference (MoGe-2 vs DA2 encoder, same ViT-L): '
            f'{encoder:+.3f} s; DiT step difference: '
            f"{moge['dit_step'] - da2['dit_step']:+.3f} s.")


def write_results(text: str) -> None:
    content = RESULTS.read_text() if RESULTS.is_file() else '# Benchmarks\n'
    pattern = re.compile(re.escape(SECTION) + r'.*?(?=\n## |\Z)', re.S)
    if pattern.search(content):
        content = pattern.sub(lambda _: text.rstrip() + '\n', content)
    else:
        content = content.rstrip() + '\n\n' + text.rstrip() + '\n'
    RESULTS.write_text(content)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', default='480x640', help='network HxW (multiples of 16)')
    parser.add_argument('--steps', type=int, default=1)
    parser.add_argument('--modes', nargs='+', default=list(MODES), choices=MODES)
    parser.add_argument('--write', action='store_true', help='update bench/RESULTS.md')
    args = parser.parse_args(argv)
    height, width = (int(v) for v in args.size.lower().split('x'))
    results = []
    for mode in args.modes:
        print(f'running {mode} at {height}x{width} ...', file=sys.stderr, flush=True)
        results.append(run_mode(mode, height, width, args.steps))
    text = (f"{SECTION}\n\nMachine: {platform.processor() or platform.machine()}, "
            f"{results[0]['threads']} torch threads, torch fp32, random Large weights; "
            f"date {time.strftime('%Y-%m-%d')}. Command: `python bench/bench_moge2.py "
            f"--size {args.size} --steps {args.steps}`. One cold run per mode, each in its own "
            f"process; network {height}×{width}, {args.steps} DiT step(s).\n\n"
            f'{table(results)}\n\n{extra_cost(results)}\n')
    print(text)
    if args.write:
        write_results(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())

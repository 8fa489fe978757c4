"""onnxruntime against PyTorch eager (fp32, CPU): per-stage times and their ratio, one run.

Each case runs in its own subprocess: random weights (timing does not depend on their
values), ``ppd-export``'s export_model into a temporary folder (timed), then predictions
alternating torch / onnxruntime on the same frame and noise (``resize=False`` at the network
size), so both backends see the same machine load. Reported: medians of the encoder
('semantics'), one DiT step ('dit' / steps) and the whole prediction, the ratio
onnxruntime / torch of each (< 1: onnxruntime faster), max |Δ depth| between the two, the
export time and the process's peak RSS.

    python bench/bench_exported.py                    # all cases
    python bench/bench_exported.py --only tiny        # variants
    python bench/bench_exported.py --write            # also update bench/RESULTS.md
On a shared machine, `--lock /work/coord/heavy.lock` holds that lock for each case.
"""
from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_model import cpu_name  # noqa: E402

# variant, network height, width, steps, timed pairs (after one warm-up pair; 0: one cold pair)
CASES = [
    ('tiny', 256, 320, 4, 5),
    ('tiny', 384, 512, 4, 3),
    ('large', 256, 320, 1, 0),
    ('large', 384, 512, 1, 0),
]
RESULTS = Path(__file__).with_name('RESULTS.md')
SECTION = '## Exported engines: onnxruntime against torch eager'


def worker(variant: str, height: int, width: int, steps: int, pairs: int) -> dict:
    import numpy as np
    import torch

    from ppd_ros.model import DepthPredictor, build_model
    from ppd_ros.model.exported_engines import OnnxRuntimeEngine
    from ppd_ros.model.onnx_export import export_model

    torch.manual_seed(0)
    model = build_model(variant)
    with torch.no_grad():  # live adaLN and final layer, as trained weights have
        for name, p in model.named_parameters():
            if 'adaLN' in name or 'final_layer.linear' in name:
                p.normal_(0.0, 0.02)
    with tempfile.TemporaryDirectory(prefix='bench_export_') as folder:
        start = time.perf_counter()
        export_model(model, Path(folder) / 'export', height, width, steps=[steps])
        export_s = time.perf_counter() - start
        engine = OnnxRuntimeEngine(Path(folder) / 'export', verify=False)
        predictors = {'torch': DepthPredictor(model, device='cpu', precision='fp32'),
                      'onnxruntime': DepthPredictor(engine)}
        rgb = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        runs = {name: [] for name in predictors}
        depth = {}
        for i in range(pairs + 1 if pairs else 1):
            for name, predictor in predictors.items():
                prediction = predictor.predict(rgb, steps=steps, seed=0, resize=False)
                depth[name] = prediction.depth
                if pairs == 0 or i > 0:
                    runs[name].append(prediction.timings)

    def median(name, key, scale=1.0):
        return float(np.median([r[key] for r in runs[name]])) * scale

    row = {'variant': variant, 'height': height, 'width': width, 'steps': steps,
           'pairs': len(runs['torch']), 'export_s': export_s,
           'max_abs_diff': float(np.abs(depth['torch'] - depth['onnxruntime']).max()),
           'peak_rss_gib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
           'threads': torch.get_num_threads()}
    for name in predictors:
        row[name] = {'encoder_s': median(name, 'semantics'),
                     'dit_step_s': median(name, 'dit', 1.0 / steps),
                     'predict_s': median(name, 'total')}
    return row


def table(rows: list[dict]) -> str:
    lines = ['| variant | network h×w | steps | encoder torch / ort (s) | ratio | '
             'DiT step torch / ort (s) | ratio | prediction torch / ort (s) | ratio | '
             'max \\|Δ depth\\| | export (s) | peak RSS (GiB) | pairs |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        t, o = r['torch'], r['onnxruntime']
        cells = []
        for key in ('encoder_s', 'dit_step_s', 'predict_s'):
            cells.append(f'{t[key]:.3f} / {o[key]:.3f} | {o[key] / t[key]:.2f}')
        lines.append(f"| {r['variant']} | {r['height']}×{r['width']} | {r['steps']} | "
                     + ' | '.join(cells) + f" | {r['max_abs_diff']:.2g} | {r['export_s']:.0f} | "
                     f"{r['peak_rss_gib']:.2f} | {r['pairs']} |")
    return '\n'.join(lines)


def write_results(rows: list[dict], date: str) -> None:
    import onnxruntime
    import torch
    threads = rows[0]['threads'] if rows else '?'
    body = '\n'.join([
        SECTION, '',
        f'Machine: {cpu_name()}, {threads} CPU threads (2-core CPU, shared with other jobs), '
        f'torch {torch.__version__}, onnxruntime {onnxruntime.__version__} (CPU provider), '
        f'fp32 both, random weights. Date: {date}.',
        'Command: `python bench/bench_exported.py --lock /work/coord/heavy.lock --write`. Each '
        'row is one subprocess: export, then torch and onnxruntime predictions alternating on '
        'the same frame and noise; medians over `pairs` after one warm-up pair (large: one '
        'cold pair, 1 step). ratio = onnxruntime / torch (< 1: onnxruntime faster).', '',
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
    parser.add_argument('--worker', nargs=5, help=argparse.SUPPRESS)
    parser.add_argument('--only', nargs='*', help='variants to run (default: all)')
    parser.add_argument('--sizes', nargs='*', help='network sizes HxW to run (default: all)')
    parser.add_argument('--write', action='store_true', help=f'update {RESULTS.name}')
    parser.add_argument('--lock', help='run each case under `flock LOCK` (a shared machine)')
    parser.add_argument('--date', default=time.strftime('%Y-%m-%d'))
    args = parser.parse_args()
    if args.worker:
        v, h, w, steps, pairs = args.worker
        print(json.dumps(worker(v, int(h), int(w), int(steps), int(pairs))))
        return 0
    rows = []
    for variant, h, w, steps, pairs in CASES:
        if (args.only and variant not in args.only) or (args.sizes and f'{h}x{w}' not in args.sizes):
            continue
        print(f'running {variant} {h}x{w} ...', file=sys.stderr, flush=True)
        command = [sys.executable, __file__, '--worker', variant, str(h), str(w), str(steps),
                   str(pairs)]
        if args.lock:
            command = ['flock', args.lock] + command
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(table(rows))
    if args.write:
        write_results(rows, args.date)
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Speed of the PPD model core, as ratios measured in one run: precision, torch.compile, engines.

    python bench/bench_model.py                   # the ratio tables: tiny, Large 512x384, 256x320
    python bench/bench_model.py --only tiny       # a subset of the cases (tiny, large)
    python bench/bench_model.py --only large:384x512 --engines 'bf16 eager'  # fp32 eager + these
    python bench/bench_model.py --resolution      # network-resolution trade-off tables
    python bench/bench_model.py --spec            # fp32 eager against tests/spec_reference_impl.py
    python bench/bench_model.py --device cuda     # per-stage milliseconds on a GPU

Each case runs in its own subprocess. Within it every engine (ENGINES: fp32 / bf16, eager /
compiled, plus any entry of EXTRA_ENGINES) predicts the same image with the same noise at the
case's network size (``resize=False``), interleaved rep by rep, so the ratios share the
machine's load; times are medians. Large uses random full-size weights (tests/
spec_reference_impl.random_state), tiny the shipped models/tiny_ppd.safetensors. ``prepare``
is the warm-up before the first frame plus a one-step first frame (compilation for compiled
engines; oneDNN's kernel set-up for eager ones), so a 4-step fp32 Large frame is not paid
twice. Memory: the engine's weights, and its peak working memory (RSS sampled during its
calls, minus the RSS before them; CUDA: torch's peak allocation).
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / 'tests')]

# variant, network height, width, timed repetitions after the warm-up
CASES = [('tiny', 96, 128, 5), ('large', 384, 512, 2), ('large', 256, 320, 2)]
STEPS = 4
# name -> DepthPredictor / TorchEngine options; every case runs all of them
ENGINES = {
    'fp32 eager': dict(precision='fp32'),
    'bf16 eager': dict(precision='bf16'),
    'fp32 compiled': dict(precision='fp32', compile=True),
    'bf16 compiled': dict(precision='bf16', compile=True),
}
# Engines of other runtimes: name -> factory(model, device) returning an ppd_ros Engine for
# the fp32 model (e.g. an exported-graph runtime); their rows and ratios against 'fp32 eager'
# are printed like the others.
EXTRA_ENGINES: dict[str, Callable] = {}
RATIOS = [('bf16 eager', 'fp32 eager'), ('fp32 compiled', 'fp32 eager'),
          ('bf16 compiled', 'bf16 eager')]
TINY_CHECKPOINT = ROOT / 'models' / 'tiny_ppd.safetensors'


# ----------------------------------------------------------------------------- models

def large_state():
    import spec_reference_impl as ref
    return (ref.random_state(ref.official_dit_shapes(), seed=1),
            ref.random_state(ref.official_encoder_shapes(), seed=2))


def fresh_model(variant: str, state=None):
    """A new fp32 model (each precision casts its own copy in place)."""
    from ppd_ros.model import build_model, load_checkpoint
    from ppd_ros.model.checkpoint import convert_official_state_dicts, load_state_dict_strict
    if variant == 'tiny':
        return load_checkpoint(TINY_CHECKPOINT)
    converted, unexpected = convert_official_state_dicts(*state)
    model = build_model(variant, device='meta')
    load_state_dict_strict(model, converted, extra_unexpected=unexpected, assign=True)
    return model


def weight_gib(model) -> float:
    return sum(p.numel() * p.element_size() for p in model.parameters()) / 2**30


# ----------------------------------------------------------------------------- memory

def rss_bytes() -> int:
    with open('/proc/self/statm') as handle:
        return int(handle.read().split()[1]) * 4096


class PeakMemory:
    """Peak RSS (sampled every 5 ms) or CUDA allocation above the level at entry, in GiB."""

    def __init__(self, device):
        self.device, self.peak = device, 0.0

    def __enter__(self):
        import torch
        if self.device.type == 'cuda':
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return self
        self.base, self.top, self.running = rss_bytes(), rss_bytes(), True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.top = max(self.top, rss_bytes())
            time.sleep(0.005)

    def __exit__(self, *exc):
        import torch
        if self.device.type == 'cuda':
            torch.cuda.synchronize()
            self.peak = max(self.peak, (torch.cuda.max_memory_allocated() - self.base) / 2**30)
        else:
            self.running = False
            self.thread.join()
            self.peak = max(self.peak, (self.top - self.base) / 2**30)


# ----------------------------------------------------------------------------- ratios

def ratio_worker(variant: str, height: int, width: int, reps: int, device: str,
                 engines: list[str]) -> dict:
    import numpy as np
    import torch

    from ppd_ros.model import DepthPredictor, TorchEngine
    device = torch.device(device)
    state = large_state() if variant != 'tiny' else None
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    noise = torch.randn(1, 1, height, width, generator=torch.Generator().manual_seed(0))
    models = {}   # precision -> model, shared by the eager and compiled engines
    predictors, rows = {}, {}
    for name, options in ENGINES.items():
        if name not in engines:
            continue
        precision = options['precision']
        if precision not in models:
            models[precision] = fresh_model(variant, state)
        engine = TorchEngine(models[precision], device, precision,
                             compile=options.get('compile', False))
        predictors[name] = DepthPredictor(engine)
    for name, factory in EXTRA_ENGINES.items():
        predictors[name] = DepthPredictor(factory(fresh_model(variant, state), device))
    for name, predictor in predictors.items():
        model = getattr(predictor.engine, 'model', None)
        rows[name] = {'weights_gib': weight_gib(model) if model is not None else float('nan'),
                      'runs': [], 'peak': PeakMemory(device)}
        start = time.perf_counter()
        with rows[name]['peak']:
            predictor.prepare(height, width, STEPS, resize=False)
            predictor.predict(rgb, steps=1, noise=noise, resize=False)  # first frame
        rows[name]['prepare_s'] = time.perf_counter() - start
    reference = None
    for rep in range(reps):
        names = list(predictors) if rep % 2 == 0 else list(reversed(predictors))
        for name in names:
            with rows[name]['peak']:
                pred = predictors[name].predict(rgb, steps=STEPS, noise=noise, resize=False)
            rows[name]['runs'].append(pred.timings)
            rows[name]['depth'] = pred.network_depth
    reference = rows['fp32 eager']['depth']
    out = []
    for name, row in rows.items():
        def median(key, scale=1.0):
            return statistics.median(r[key] for r in row['runs']) * scale
        out.append({'engine': name, 'prepare_s': row['prepare_s'],
                    'encoder_s': median('semantics'), 'step_s': median('dit', 1 / STEPS),
                    'predict_s': median('total'),
                    'max_diff': float(np.abs(row['depth'] - reference).max()),
                    'mean_diff': float(np.abs(row['depth'] - reference).mean()),
                    'weights_gib': row['weights_gib'], 'peak_gib': row['peak'].peak})
    return {'variant': variant, 'height': height, 'width': width, 'reps': reps,
            'threads': torch.get_num_threads(), 'device': str(device), 'rows': out}


def ratio_table(case: dict) -> str:
    rows = {r['engine']: r for r in case['rows']}
    base = rows['fp32 eager']['predict_s']
    lines = [f"**{case['variant']}, network {case['height']}×{case['width']} "
             f"({case['height'] * case['width'] // 64} tokens at 8 px), {STEPS} steps, "
             f"{case['reps']} interleaved runs, {case['device']}**", '',
             '| engine | prepare (s) | encoder (s) | DiT step (s) | prediction (s) | '
             '× fp32 eager | max / mean \\|Δ\\| of network_depth vs fp32 | weights (GiB) | '
             'peak working memory (GiB) |',
             '|---|---:|---:|---:|---:|---:|---|---:|---:|']
    for name, r in rows.items():
        lines.append(f"| {name} | {r['prepare_s']:.1f} | {r['encoder_s']:.3f} | "
                     f"{r['step_s']:.3f} | {r['predict_s']:.3f} | {r['predict_s'] / base:.2f} | "
                     f"{r['max_diff']:.2e} / {r['mean_diff']:.2e} | {r['weights_gib']:.2f} | "
                     f"{r['peak_gib']:.2f} |")
    pairs = RATIOS + [(name, 'fp32 eager') for name in EXTRA_ENGINES]
    ratios = [f'{a} / {b} = {rows[a]["predict_s"] / rows[b]["predict_s"]:.2f}'
              for a, b in pairs if a in rows and b in rows]
    ratios.append('onnxruntime / eager: not measured (no onnxruntime engine here)'
                  if not EXTRA_ENGINES else '')
    return '\n'.join(lines + ['', 'Prediction time ratios: ' + '; '.join(r for r in ratios if r),
                              ''])


# ----------------------------------------------------------------------------- spec impl

def spec_worker(height: int, width: int, reps: int) -> dict:
    """ppd_ros fp32 eager against the independent spec implementation, same weights/inputs."""
    import numpy as np
    import torch

    import spec_reference_impl as ref
    from ppd_ros.model import DepthPredictor
    dit_sd, enc_sd = state = large_state()
    ours = DepthPredictor(fresh_model('large', state), 'cpu', 'fp32')
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, height, width, generator=g)
    noise = torch.randn(1, 1, height, width, generator=g)
    schedule = torch.tensor([1000, 750, 500, 249], dtype=torch.int32)
    with torch.inference_mode():
        sem = ours.engine.semantics(image)
        jobs = {
            'encoder': (lambda: ours.engine.semantics(image),
                        lambda: ref.encoder_semantics(enc_sd, image[0], heads=16)),
            'DiT step': (lambda: ours.engine.velocity(noise, image, sem, schedule, 1),
                         lambda: ref.dit_velocity(dit_sd, torch.cat([noise[0], image[0] - 0.5]),
                                                  sem[0], 750, heads=16, depth=24)),
        }
        rows = []
        for name, (a, b) in jobs.items():
            diff = float((a().reshape(-1) - b().reshape(-1)).abs().max())
            times = {'ours': [], 'spec': []}
            for rep in range(reps):
                order = [('ours', a), ('spec', b)] if rep % 2 == 0 else [('spec', b), ('ours', a)]
                for key, f in order:
                    start = time.perf_counter()
                    f()
                    times[key].append(time.perf_counter() - start)
            rows.append({'part': name, 'ours_s': statistics.median(times['ours']),
                         'spec_s': statistics.median(times['spec']), 'max_diff': diff})
    return {'height': height, 'width': width, 'reps': reps, 'rows': rows,
            'threads': torch.get_num_threads()}


def spec_table(result: dict) -> str:
    lines = [f"**ppd_ros fp32 eager against tests/spec_reference_impl.py, Large random weights, "
             f"{result['height']}×{result['width']}, {result['reps']} interleaved runs**", '',
             '| part | ppd_ros (s) | spec implementation (s) | ratio | max \\|Δ\\| |',
             '|---|---:|---:|---:|---:|']
    for r in result['rows']:
        lines.append(f"| {r['part']} | {r['ours_s']:.2f} | {r['spec_s']:.2f} | "
                     f"{r['ours_s'] / r['spec_s']:.2f} | {r['max_diff']:.1e} |")
    return '\n'.join(lines + [''])


# ----------------------------------------------------------------------------- resolution

TINY_AREAS = [(64, 48), (96, 72), (128, 96), (192, 144)]   # width x height
LARGE_STEP_SIZES = [(256, 256), (256, 320), (384, 512), (512, 768), (768, 1024)]


def tiny_resolution_worker(frames: int) -> dict:
    from ppd_ros.model import DepthPredictor
    from ppd_ros.training.evaluate_models import evaluate_predictor, held_out_frames
    held_out = held_out_frames(frames)
    rows = []
    for width, height in TINY_AREAS:
        predictor = DepthPredictor(fresh_model('tiny'), 'cpu', 'fp32',
                                   network_area=width * height)
        start = time.perf_counter()
        summary = evaluate_predictor(predictor, held_out, STEPS)['summary']
        h, w = predictor.network_size(*held_out[0][1].rgb.shape[:2])
        timings = [predictor.predict(held_out[0][1].rgb, steps=STEPS, seed=0).timings['total']
                   for _ in range(5)]
        rows.append({'area': f'{width}x{height}', 'network': f'{h}x{w}',
                     'abs_rel': summary['abs_rel'], 'd1': summary['d1'],
                     'edge_chamfer_m': summary['edge_chamfer_m'],
                     'predict_s': statistics.median(timings),
                     'eval_s': time.perf_counter() - start})
    return {'frames': frames, 'rows': rows}


def large_step_worker(precision: str, rounds: int = 2) -> dict:
    """One DiT step per network size: a warm-up call each (it builds the size's constants),
    then ``rounds`` timed rounds over all sizes in turn; the fastest call of each size."""
    import torch

    from ppd_ros.model import DepthPredictor
    predictor = DepthPredictor(fresh_model('large', large_state()), 'cpu', precision)
    engine = predictor.engine
    schedule = torch.tensor([1000, 750, 500, 249], dtype=torch.int32)
    inputs = {}
    for height, width in LARGE_STEP_SIZES:
        image = torch.rand(1, 3, height, width)
        noise = torch.randn(1, 1, height, width)
        inputs[height, width] = (noise, image, engine.semantics(image))
        engine.velocity(*inputs[height, width], schedule, 0)
    times = {size: [] for size in inputs}
    for _ in range(rounds):
        for size, (noise, image, semantics) in inputs.items():
            start = time.perf_counter()
            engine.velocity(noise, image, semantics, schedule, 1)
            times[size].append(time.perf_counter() - start)
    rows = [{'size': f'{h}x{w}', 'tokens': h * w // 64, 'step_s': min(times[h, w])}
            for h, w in inputs]
    return {'precision': engine.precision, 'rounds': rounds, 'rows': rows}


def fit_exponent(rows: list[dict]) -> tuple[float, float]:
    """Least-squares b (and a) of log(step_s) = a + b log(tokens)."""
    xs = [math.log(r['tokens']) for r in rows]
    ys = [math.log(r['step_s']) for r in rows]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return b, my - b * mx


def resolution_tables(tiny: dict | None, large: dict | None) -> str:
    lines = []
    if tiny:
        lines += [f"**tiny at four network areas: {tiny['frames']} held-out synthetic 128×96 "
                  f"frames, {STEPS} steps, fp32, RANSAC-aligned**", '',
                  '| network_area | network h×w | AbsRel | δ1 | edge Chamfer (m) | '
                  'prediction (s) |', '|---|---|---:|---:|---:|---:|']
        for r in tiny['rows']:
            lines.append(f"| {r['area']} | {r['network']} | {r['abs_rel']:.4f} | "
                         f"{r['d1']:.4f} | {r['edge_chamfer_m']:.4f} | {r['predict_s']:.3f} |")
        lines.append('')
    if large:
        b, a = fit_exponent(large['rows'])
        lines += [f"**Large, one DiT step against its token count ({large['precision']}, "
                  f"random weights, fastest of {large.get('rounds', 1)} interleaved rounds)**: "
                  f"fitted step_s = {math.exp(a):.2e} · tokens^{b:.2f}", '',
                  '| network h×w | tokens (8 px) | DiT step (s) | fit (s) |',
                  '|---|---:|---:|---:|']
        for r in large['rows']:
            lines.append(f"| {r['size']} | {r['tokens']} | {r['step_s']:.3f} | "
                         f"{math.exp(a) * r['tokens'] ** b:.3f} |")
        lines.append('')
    return '\n'.join(lines)


# ----------------------------------------------------------------------------- CUDA

CUDA_CASES = [(768, 1024, 1), (768, 1024, 4), (384, 512, 1), (384, 512, 4)]


def cuda_worker(reps: int) -> dict:
    """Per-stage milliseconds of Large on the GPU for each precision, eager and compiled."""
    import numpy as np
    import torch

    from ppd_ros.model import DepthPredictor, TorchEngine
    if not torch.cuda.is_available():
        raise SystemExit('bench_model: --device cuda needs a CUDA GPU; torch sees none')
    state = large_state()
    rows = []
    for precision in ('fp32', 'bf16', 'fp16'):
        model = fresh_model('large', state)
        for compiled in (False, True):
            predictor = DepthPredictor(TorchEngine(model, 'cuda', precision, compile=compiled))
            for height, width, steps in CUDA_CASES:
                rgb = np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8)
                predictor.prepare(height, width, steps, resize=False)
                predictor.predict(rgb, steps=steps, seed=0, resize=False)
                runs = [predictor.predict(rgb, steps=steps, seed=0, resize=False).timings
                        for _ in range(reps)]
                ms = {k: 1e3 * statistics.median(r[k] for r in runs) for k in runs[0]}
                rows.append({'precision': precision, 'compiled': compiled, 'size': (height, width),
                             'steps': steps, **ms, 'peak_gib':
                             torch.cuda.max_memory_allocated() / 2**30})
        del model
        torch.cuda.empty_cache()
    return {'gpu': torch.cuda.get_device_name(), 'rows': rows}


def cuda_table(result: dict) -> str:
    lines = [f"**Large on {result['gpu']}, per stage (ms, median)**", '',
             '| precision | compiled | network h×w | steps | preprocess | encoder | DiT (all '
             'steps) | postprocess | total | peak GiB |', '|---|---|---|---:|---:|---:|---:|---:|'
             '---:|---:|']
    for r in result['rows']:
        lines.append(f"| {r['precision']} | {r['compiled']} | {r['size'][0]}×{r['size'][1]} | "
                     f"{r['steps']} | {r['preprocess']:.1f} | {r['semantics']:.1f} | "
                     f"{r['dit']:.1f} | {r['postprocess']:.1f} | {r['total']:.1f} | "
                     f"{r['peak_gib']:.1f} |")
    return '\n'.join(lines + [''])


# ----------------------------------------------------------------------------- main

def cpu_name() -> str:
    try:
        out = subprocess.run(['lscpu'], capture_output=True, text=True).stdout
        match = re.search(r'Model name:\s*(.+)', out)
        if match:
            return match.group(1).strip()
    except OSError:
        pass
    return platform.processor() or 'unknown CPU'


def in_subprocess(*args: str) -> dict:
    command = [sys.executable, __file__, '--worker', json.dumps(args)]
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f'bench_model: worker {args} failed:\n{out.stderr[-3000:]}')
    return json.loads(out.stdout.strip().splitlines()[-1])


WORKERS = {'ratio': lambda v, h, w, r, d, e: ratio_worker(v, int(h), int(w), int(r), d,
                                                          json.loads(e)),
           'spec': lambda h, w, r: spec_worker(int(h), int(w), int(r)),
           'tiny_resolution': lambda f: tiny_resolution_worker(int(f)),
           'large_steps': large_step_worker,
           'cuda': lambda r: cuda_worker(int(r))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    parser.add_argument('--only', nargs='*',
                        help='ratio cases by variant or variant:HxW (tiny, large, large:384x512)')
    parser.add_argument('--engines', nargs='*', choices=list(ENGINES),
                        help="engines besides 'fp32 eager' (default: all)")
    parser.add_argument('--reps', type=int, help='timed runs per engine (default per case)')
    parser.add_argument('--resolution', action='store_true',
                        help='network-resolution tables instead of the ratio tables')
    parser.add_argument('--frames', type=int, default=50,
                        help='held-out frames per area for --resolution (default 50)')
    parser.add_argument('--spec', action='store_true',
                        help='fp32 eager against the independent spec implementation')
    parser.add_argument('--spec-size', default='384x512', help='h x w for --spec')
    parser.add_argument('--device', default='cpu', help='cpu, or cuda for per-stage GPU tables')
    args = parser.parse_args()
    if args.worker:
        kind, *rest = json.loads(args.worker)
        print(json.dumps(WORKERS[kind](*rest), default=str))
        return 0
    import torch
    print(f'# {cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}, '
          f'{time.strftime("%Y-%m-%d")}\n', flush=True)
    if args.device.startswith('cuda'):
        print(cuda_table(in_subprocess('cuda', str(args.reps or 5))))
        return 0
    if args.spec:
        h, w = (int(v) for v in args.spec_size.split('x'))
        print(spec_table(in_subprocess('spec', str(h), str(w), str(args.reps or 2))))
        return 0
    if args.resolution:
        tiny = large = None
        if not args.only or 'tiny' in args.only:
            tiny = in_subprocess('tiny_resolution', str(args.frames))
        if not args.only or 'large' in args.only:
            large = in_subprocess('large_steps', 'auto')
        print(resolution_tables(tiny, large))
        return 0
    for variant, h, w, reps in CASES:
        if args.only and not {variant, f'{variant}:{h}x{w}'} & set(args.only):
            continue
        print(f'running {variant} {h}x{w} ...', file=sys.stderr, flush=True)
        engines = ['fp32 eager', *(ENGINES if args.engines is None else args.engines)]
        case = in_subprocess('ratio', variant, str(h), str(w), str(args.reps or reps),
                             args.device, json.dumps(engines))
        print(ratio_table(case), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())

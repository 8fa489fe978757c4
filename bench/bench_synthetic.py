"""Throughput of the synthetic RGB-D generator (single process), printed as a table.

"new scene" samples and renders a different random room per frame (generate_frame);
"sequence" renders consecutive poses of one room (generate_sequence). Each is given in
frames per wall-clock second and, in brackets, per CPU second of this process, which stays
meaningful when other jobs share the CPU.
Usage: python bench/bench_synthetic.py [--seconds 2]
"""
import argparse
import time

from ppd_ros.synthetic import generate_frame, generate_sequence

RESOLUTIONS = [(128, 96), (320, 240), (640, 480)]


def frames_per_second(render_one, seconds: float) -> tuple[float, float]:
    """(wall-clock fps, CPU-time fps) of calling render_one(i) for ``seconds``."""
    render_one(0)  # warm-up: ray cache, imports
    n, wall, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < seconds:
        render_one(n + 1)
        n += 1
    return n / (time.perf_counter() - wall), n / max(time.process_time() - cpu, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--seconds', type=float, default=2.0, help='time per measurement')
    args = parser.parse_args()
    print(f'{"resolution":>10} | {"new scene fps (cpu)":>20} | {"sequence fps (cpu)":>20}')
    print('-' * 56)
    for w, h in RESOLUTIONS:
        new_scene = frames_per_second(lambda s: generate_frame(s, w, h), args.seconds)
        seq = generate_sequence(0, 10 ** 9, w, h)
        sequence = frames_per_second(lambda _: next(seq), args.seconds)
        cells = [f'{wall:8.1f} ({cpu:7.1f})' for wall, cpu in (new_scene, sequence)]
        print(f'{f"{w}x{h}":>10} | {cells[0]:>20} | {cells[1]:>20}')


if __name__ == '__main__':
    main()

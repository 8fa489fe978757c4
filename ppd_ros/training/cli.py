"""ppd-train: the tiny training recipe from the command line.

    ppd-train stage1 --out out/stage1 --steps 3000 --batch-size 16 --lr 5e-4
    ppd-train stage2 --stage1 out/stage1/final.safetensors --out out/sp_dit --steps 4000
    ppd-train stage2 --no-semantics --out out/vanilla --steps 4000
    ppd-train stage1 --init out/stage1/final.safetensors --out out/stage1_ft    # fine-tune stage 1
    ppd-train stage2 --init out/sp_dit/final.safetensors --stage1 out/stage1_ft/final.safetensors --out out/sp_dit_ft
    ppd-train export out/sp_dit/final.safetensors models/tiny_ppd.safetensors     # float16 copy
    ppd-train export ... --int8 encoder.     # encoder matrices as int8 with per-row scales
    ppd-train evaluate models/tiny_ppd.safetensors models/tiny_vanilla.safetensors --frames 200 --json out/eval.json
    ppd-train compare out/eval.json tiny_ppd tiny_vanilla    # paired per-frame differences
    ppd-train moge2 --backbone models/tiny_ppd.safetensors --out out/moge2 --steps 20000  # metric geometry
    ppd-train evaluate-moge2 out/moge2/final.safetensors --frames 200 --json out/moge2_eval.json

--data is 'synthetic' (procedural scenes, training seeds only) or a rosbag2 bag with
--image-topic / --depth-topic. --resume continues from OUT/training_state.pt.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ppd_ros.cli.tool_main import (ToolArgumentParser, ToolError, refuse_overwriting_inputs,
                                   tool_main)

PROG = 'ppd-train'


def add_num_threads(parser: argparse.ArgumentParser) -> None:
    """--num-threads, as in ppd-eval and ppd-predict (--threads: the former spelling, hidden)."""
    parser.add_argument('--num-threads', type=int, default=None,
                        help='torch CPU threads (default: torch default)')
    parser.add_argument('--threads', type=int, dest='num_threads', help=argparse.SUPPRESS)


def _add_training_args(parser: argparse.ArgumentParser, defaults: dict) -> None:
    parser.add_argument('--steps', type=int, default=defaults['steps'],
                        help=f"optimizer steps (default {defaults['steps']})")
    parser.add_argument('--batch-size', type=int, default=defaults['batch_size'],
                        help=f"images per step (default {defaults['batch_size']})")
    parser.add_argument('--lr', type=float, default=1e-4,
                        help='AdamW learning rate (default 1e-4)')
    parser.add_argument('--lr-schedule', choices=('constant', 'cosine'), default='constant',
                        help='learning-rate schedule after the warm-up (default constant)')
    parser.add_argument('--warmup-steps', type=int, default=0,
                        help='linear learning-rate warm-up steps (default 0)')
    parser.add_argument('--weight-decay', type=float, default=0.0,
                        help='AdamW weight decay (default 0)')
    parser.add_argument('--grad-clip', type=float, default=1.0,
                        help='max gradient norm (0: off; default 1)')
    parser.add_argument('--gradient-weight', type=float, default=0.2,
                        help='weight of the multi-scale gradient loss (0: off; default 0.2)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the initial weights and of every random draw (default 0)')
    parser.add_argument('--out', type=Path, required=True,
                        help='run directory: training_state.pt, loss_log.jsonl, final.safetensors')
    parser.add_argument('--resume', nargs='?', const=True, default=False, metavar='STATE',
                        help='continue from OUT/training_state.pt (or the given state file)')
    parser.add_argument('--device', default='cpu', help='cpu, cuda, cuda:0, ... (default cpu)')
    parser.add_argument('--precision', choices=('fp32', 'bf16'), default='fp32',
                        help='bf16: autocast the forward pass (bf16-mixed, as the reference trains)')
    add_num_threads(parser)
    parser.add_argument('--data', default='synthetic',
                        help="'synthetic' (procedural scenes; the default) or a rosbag2 bag")
    parser.add_argument('--train-frames', type=int, default=20000,
                        help='synthetic: number of training seeds 0 .. N-1 (default 20000)')
    parser.add_argument('--cache-dir', type=Path, default=None,
                        help='synthetic: keep rendered frames here (.npy) for later runs')
    parser.add_argument('--image-topic', default='/camera/image_raw',
                        help='bag --data: colour image topic (default %(default)s)')
    parser.add_argument('--depth-topic', default='/camera/depth/image_raw',
                        help='bag --data: depth topic, 16UC1 mm or 32FC1 m (default %(default)s)')
    parser.add_argument('--stop-at', type=int, default=None,
                        help='end this invocation at this step (state saved; continue with --resume)')
    parser.add_argument('--log-every', type=int, default=10,
                        help='steps per loss_log.jsonl line (default 10)')
    parser.add_argument('--ckpt-every', type=int, default=500,
                        help='steps between training_state.pt saves (default 500)')
    parser.add_argument('--export', type=Path, default=None,
                        help='also write a float16 copy of the final weights here')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')


def build_parser() -> argparse.ArgumentParser:
    parser = ToolArgumentParser(prog=PROG, description=__doc__.split(': ', 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    stage1 = sub.add_parser('stage1', help='train the discriminative regressor (encoder + head)')
    _add_training_args(stage1, {'steps': 3000, 'batch_size': 16})
    stage1.add_argument('--variant', default='tiny',
                        help='model variant whose encoder is trained (tiny and tiny_ppd share it)')
    stage1.add_argument('--init', type=Path, default=None,
                        help='fine-tune: start from this stage-1 checkpoint (its config and head)')
    stage1.add_argument('--encoder-depth', type=int, default=None,
                        help='encoder blocks; with --init, new blocks are appended as identities '
                             '(LayerScale 0) to grow a trained encoder')
    stage2 = sub.add_parser('stage2', help='train the SP-DiT (or the vanilla DiT) with flow matching')
    _add_training_args(stage2, {'steps': 4000, 'batch_size': 8})
    stage2.add_argument('--variant', default='tiny_ppd',
                        help="'tiny_ppd' (the recipe's widened tiny DiT) or a registry variant")
    stage2.add_argument('--stage1', type=Path, default=None,
                        help='stage-1 checkpoint whose encoder becomes the frozen semantics encoder')
    stage2.add_argument('--no-semantics', action='store_true', help='vanilla DiT ablation (no encoder)')
    stage2.add_argument('--schedule-steps', type=int, default=None,
                        help='draw t from the timesteps of this many Euler steps instead of the '
                             "spec's logit-normal (fine-tuning for a fixed-step sampler)")
    stage2.add_argument('--schedule-fraction', type=float, default=1.0,
                        help='with --schedule-steps: share of t drawn from that schedule; the rest '
                             'is logit-normal, which keeps other step counts usable (default 1)')
    stage2.add_argument('--init', type=Path, default=None,
                        help='fine-tune: start from this ppd_ros checkpoint (its config and encoder; '
                             'with --stage1, that checkpoint\'s encoder replaces it)')
    moge2 = sub.add_parser('moge2', help='train a small MoGe-2 (metric depth, mask, intrinsics)')
    _add_training_args(moge2, {'steps': 20000, 'batch_size': 8})
    moge2.add_argument('--backbone', type=Path, default=Path('models/tiny_ppd.safetensors'),
                       help='ppd_ros PPD checkpoint whose semantics encoder is the frozen backbone')
    moge2.add_argument('--init', type=Path, default=None,
                       help='fine-tune: start from this MoGe-2 checkpoint (its config and weights)')
    moge2.add_argument('--backbone-blocks', type=int, default=0,
                       help='also train the last N backbone blocks and its final norm (a shipped '
                            'copy then stores those and borrows the rest)')
    moge2.add_argument('--width', type=int, default=128,
                       help='training image width (default 128)')
    moge2.add_argument('--height', type=int, default=96,
                       help='training image height (default 96)')
    evaluate_moge2 = sub.add_parser('evaluate-moge2',
                                    help='metric depth and focal error of MoGe-2 checkpoints on '
                                         'held-out synthetic frames')
    evaluate_moge2.add_argument('checkpoints', nargs='+', type=Path,
                                help='MoGe-2 checkpoints (official model.pt or ppd_ros files)')
    evaluate_moge2.add_argument('--frames', type=int, default=200,
                                help='held-out frames (default 200)')
    evaluate_moge2.add_argument('--known-intrinsics', action='store_true',
                                help='give infer the true camera (only the shift is solved)')
    add_num_threads(evaluate_moge2)
    evaluate_moge2.add_argument('--json', type=Path, default=None,
                                help='also write the per-frame report here')
    export = sub.add_parser('export', help='write a compact copy of a checkpoint (for shipping)')
    export.add_argument('source', type=Path, help='checkpoint to copy')
    export.add_argument('target', type=Path, help='file to write (not the source)')
    export.add_argument('--storage', default='float16',
                        help='dtype of the floating tensors: float16 (default) or bfloat16')
    export.add_argument('--int8', nargs='+', default=(), metavar='PREFIX',
                        help='store the large matrices under these key prefixes as int8 with one '
                             'scale per row (e.g. encoder.: the frozen semantics encoder)')
    export.add_argument('--share-encoder-with', type=Path, default=None, metavar='FILE',
                        help='stage-1 source: store only its head; the encoder is read from FILE '
                             '(e.g. the SP-DiT it prompts), which must hold it exactly')
    export.add_argument('--share-backbone-with', type=Path, default=None, metavar='FILE',
                        help='MoGe-2 source: leave out the backbone and read it from FILE (the PPD '
                             'checkpoint whose encoder it was trained frozen from)')
    evaluate = sub.add_parser('evaluate', help='evaluate checkpoints on held-out synthetic frames')
    evaluate.add_argument('checkpoints', nargs='+', type=Path,
                          help='ppd_ros checkpoints (SP-DiT, vanilla DiT or stage-1 files)')
    evaluate.add_argument('--names', nargs='+', default=None,
                          help='one name per checkpoint for the table and the report '
                               '(default: the file names)')
    evaluate.add_argument('--frames', type=int, default=200,
                          help='held-out frames (seeds from 1,000,000; default 200)')
    evaluate.add_argument('--steps', type=int, default=4, help='sampling steps (default 4)')
    evaluate.add_argument('--device', default='cpu', help='cpu, cuda, ... (default cpu)')
    evaluate.add_argument('--precision', default='fp32', choices=('auto', 'fp32', 'bf16', 'fp16'),
                          help='inference precision of the DiT models (default fp32; stage-1 '
                               'models always run fp32)')
    add_num_threads(evaluate)
    evaluate.add_argument('--json', type=Path, default=None,
                          help='also write the per-frame report here (for compare)')
    evaluate.add_argument('--no-progress', action='store_true', help='no progress bar')
    compare = sub.add_parser('compare', help='paired differences of two models in an evaluate --json report')
    compare.add_argument('report', type=Path, help='report written by evaluate --json')
    compare.add_argument('model_a', help='name of the first model in the report')
    compare.add_argument('model_b', help='name of the second model')
    compare.add_argument('--boot', type=int, default=5000,
                         help='bootstrap resamples (default 5000)')
    return parser


def make_dataset(args, config):
    """Training data at the model config's training area (synthetic: train_width x train_height)."""
    from .datasets import BagDepthDataset, SyntheticDepthDataset
    from .seed_splits import train_seeds
    if args.data == 'synthetic':
        dataset = SyntheticDepthDataset(train_seeds(args.train_frames), config.train_width,
                                        config.train_height)
        dataset.preload(progress=not args.no_progress, cache_dir=args.cache_dir)
        return dataset
    return BagDepthDataset(args.data, args.image_topic, args.depth_topic, area=config.train_area)


def _init_provenance(args) -> dict:
    """Metadata naming the checkpoint a fine-tuning run started from, and how that was made."""
    init = getattr(args, 'init', None)
    if init is None:
        return {}
    from ppd_ros.model.checkpoint import safetensors_metadata
    before = safetensors_metadata(init)  # a DiT or a stage-1 checkpoint
    provenance = {'init': str(init), 'init_command': before.get('command'),
                  'init_steps': before.get('steps'), 'init_wall_time_s': before.get('wall_time_s')}
    if getattr(args, 'stage1', None) is not None:
        provenance['init_encoder'] = str(args.stage1)
    return provenance


def _timesteps_description(args) -> str:
    steps = getattr(args, 'schedule_steps', None)
    if not steps:
        return 'logit-normal'
    fraction = getattr(args, 'schedule_fraction', 1.0)
    if fraction >= 1.0:
        return f'schedule of {steps} steps'
    return f'{fraction:g} schedule of {steps} steps, rest logit-normal'


def run_training(args, task, command: str, dataset=None):
    from .checkpoint_export import export_weights
    from .trainer import Trainer, TrainerConfig
    config = TrainerConfig(
        out_dir=args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, grad_clip=args.grad_clip, lr_schedule=args.lr_schedule,
        warmup_steps=args.warmup_steps, seed=args.seed, device=args.device, precision=args.precision,
        log_every=args.log_every, ckpt_every=args.ckpt_every, progress=not args.no_progress,
        extra_metadata={'data': args.data,
                        'train_frames': args.train_frames if args.data == 'synthetic' else None,
                        'gradient_weight': args.gradient_weight,
                        'timesteps': _timesteps_description(args),
                        **_init_provenance(args)})
    dataset = dataset if dataset is not None else make_dataset(args, task.model.config)
    result = Trainer(task, dataset, config).run(resume=args.resume, command=command,
                                                           stop_at=args.stop_at)
    print(f'trained {result.steps} steps in {result.wall_time_s:.1f} s -> {result.final_path}')
    if args.export is not None and result.final_path is not None:
        print(f'float16 copy -> {export_weights(result.final_path, args.export)}')
    return result


def _check_training_args(args) -> None:
    """ToolError for impossible values and missing inputs, before any model is built."""
    positive = {'--steps': args.steps, '--batch-size': args.batch_size,
                '--log-every': args.log_every, '--ckpt-every': args.ckpt_every}
    for option, value in positive.items():
        if value < 1:
            raise ToolError(f'{option} must be >= 1, got {value}')
    if args.lr < 0 or args.warmup_steps < 0 or args.grad_clip < 0 or args.gradient_weight < 0:
        raise ToolError('--lr, --warmup-steps, --grad-clip and --gradient-weight must be >= 0')
    if getattr(args, 'backbone', None) is not None:
        # a weight path, as for the node and the other tools: the shipped tiny model is found
        # from any working directory
        from ppd_ros.pipeline.package_paths import resolve_package_path
        args.backbone = resolve_package_path(str(args.backbone)) or args.backbone
    inputs = [path for path in (getattr(args, 'init', None), getattr(args, 'stage1', None),
                                getattr(args, 'backbone', None)) if path is not None]
    for path in inputs:
        if not path.is_file():
            raise ToolError(f'no checkpoint at {path}')
    if args.data == 'synthetic':
        from .seed_splits import EVAL_SEED_START
        if not 1 <= args.train_frames <= EVAL_SEED_START:
            raise ToolError(f'--train-frames must be 1 .. {EVAL_SEED_START} (seeds from '
                            f'{EVAL_SEED_START} are held out), got {args.train_frames}')
    else:
        data = Path(args.data)
        if not data.exists():
            raise ToolError(f"--data: no bag at {data} (give a rosbag2 bag, or 'synthetic')")
        from ppd_ros.bag import BagReader
        with BagReader(data) as reader:
            reader.require_topics([args.image_topic, args.depth_topic])
        inputs.append(data)
    written = [args.out / name for name in ('final.safetensors', 'training_state.pt',
                                             'loss_log.jsonl')]
    refuse_overwriting_inputs(inputs, written + ([args.export] if args.export else []),
                              'choose another --out / --export')


def _export(args) -> int:
    shared = [path for path in (args.share_encoder_with, args.share_backbone_with) if path]
    refuse_overwriting_inputs([args.source, *shared], [args.target],
                              'write the copy to another file')
    if not args.source.is_file():
        raise ToolError(f'no checkpoint at {args.source}')
    try:
        from ppd_ros.model.moge2_checkpoint import is_moge2_checkpoint
        if is_moge2_checkpoint(args.source):
            from .moge2_training import export_moge2
            target = export_moge2(args.source, args.target, args.storage, args.int8,
                                  args.share_backbone_with)
            print(f'{args.storage} MoGe-2 copy (int8: {", ".join(args.int8) or "none"}) '
                  f'-> {target}')
            return 0
        if args.share_encoder_with is not None:
            from .stage1_regressor import save_stage1_head
            target = save_stage1_head(args.source, args.target, args.share_encoder_with,
                                      args.storage, args.int8)
            print(f'{args.storage} head, encoder from {args.share_encoder_with} -> {target}')
            return 0
        from .checkpoint_export import export_weights
        target = export_weights(args.source, args.target, args.storage, args.int8)
    except ValueError as error:
        raise ToolError(error) from error
    print(f'{args.storage} copy (int8: {", ".join(args.int8) or "none"}) -> {target}')
    return 0


def _evaluate(args) -> int:
    from .evaluate_models import evaluate_checkpoints
    if args.frames < 1 or args.steps < 1:
        raise ToolError(f'--frames and --steps must be >= 1, got {args.frames} and {args.steps}')
    if args.json is not None:
        refuse_overwriting_inputs(args.checkpoints, [args.json], 'choose another --json file')
    try:
        evaluate_checkpoints(args.checkpoints, args.names, args.frames, args.steps, args.device,
                             args.json, progress=not args.no_progress, precision=args.precision)
    except ValueError as error:
        raise ToolError(error) from error
    return 0


def _compare(args) -> int:
    import json

    from .paired_comparison import compare_models, format_differences
    if not args.report.is_file():
        raise ToolError(f'no report at {args.report} (write one with ppd-train evaluate --json)')
    try:
        report = json.loads(args.report.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ToolError(f'{args.report} is not JSON ({error}); write it with ppd-train '
                        'evaluate --json') from None
    if not isinstance(report, dict) or not isinstance(report.get('models'), dict):
        raise ToolError(f'{args.report} is not a ppd-train evaluate --json report (no models)')
    try:
        differences = compare_models(report, args.model_a, args.model_b, n_boot=args.boot)
    except KeyError as error:
        raise ToolError(error.args[0]) from None
    print(format_differences(args.model_a, args.model_b, differences))
    return 0


def _stage1_task(args):
    from .recipe_configs import recipe_config
    from .stage1_regressor import Stage1Regressor, Stage1Task, grow_encoder, load_stage1
    if args.encoder_depth is not None and args.encoder_depth < 1:
        raise ToolError('--encoder-depth must be >= 1')
    if args.init is not None:
        model = load_stage1(args.init)
        if args.encoder_depth is not None:
            try:
                model = grow_encoder(model, args.encoder_depth)
            except ValueError as error:
                raise ToolError(error) from None
    else:
        config = recipe_config(args.variant)
        if args.encoder_depth is not None:
            from ppd_ros.model.configs import get_config
            config = get_config(config, encoder={'depth': args.encoder_depth})
        model = Stage1Regressor(config)
    return Stage1Task(model, args.gradient_weight)


def _stage2_task(args):
    from .sp_dit_training import FlowMatchingTask, build_sp_dit, build_vanilla_dit
    if args.schedule_steps is not None and args.schedule_steps < 1:
        raise ToolError('--schedule-steps must be >= 1')
    if not 0.0 <= args.schedule_fraction <= 1.0:
        raise ToolError('--schedule-fraction must be in [0, 1]')
    if args.schedule_fraction < 1.0 and args.schedule_steps is None:
        raise ToolError('--schedule-fraction needs --schedule-steps')
    if args.init is not None:
        if args.no_semantics:
            raise ToolError('--init takes its config from the checkpoint; drop --no-semantics')
        from ppd_ros.model.checkpoint import load_checkpoint
        model = load_checkpoint(args.init).float()
        if args.stage1 is not None:  # re-prompt the DiT with an improved encoder
            from .stage1_regressor import load_stage1, reprompt
            try:
                model = reprompt(model, load_stage1(args.stage1))
            except ValueError as error:
                raise ToolError(error) from None
    elif args.no_semantics:
        if args.stage1 is not None:
            raise ToolError('--no-semantics takes no --stage1 checkpoint')
        model = build_vanilla_dit(args.variant)
    else:
        if args.stage1 is None and not args.resume:
            print(f'{PROG}: warning: no --stage1 checkpoint; the semantics encoder stays random',
                  file=sys.stderr)
        model = build_sp_dit(args.variant, args.stage1)
    return FlowMatchingTask(model, args.gradient_weight, args.schedule_steps,
                            args.schedule_fraction)


def _expected_errors():
    from ppd_ros.bag.reader import MissingTopicError
    from ppd_ros.model.checkpoint import CheckpointError
    return (CheckpointError, MissingTopicError)


@tool_main(PROG, _expected_errors)
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if getattr(args, 'num_threads', None) is not None and args.num_threads < 1:
        raise ToolError(f'--num-threads must be >= 1, got {args.num_threads}')
    if args.command == 'compare':
        return _compare(args)
    if getattr(args, 'device', None) is not None:
        from ppd_ros.pipeline.predictor_loading import device_problem
        problem = device_problem(args.device)
        if problem:
            raise ToolError(f'--{problem}')
    if args.command in ('stage1', 'stage2', 'moge2'):
        _check_training_args(args)
    import torch
    if getattr(args, 'num_threads', None):
        torch.set_num_threads(args.num_threads)
    if args.command == 'export':
        return _export(args)
    if args.command == 'evaluate':
        return _evaluate(args)
    if args.command == 'evaluate-moge2':
        if args.frames < 1:
            raise ToolError(f'--frames must be >= 1, got {args.frames}')
        if args.json is not None:
            refuse_overwriting_inputs(args.checkpoints, [args.json], 'choose another --json file')
        from .moge2_training import evaluate_moge2_checkpoints
        evaluate_moge2_checkpoints(args.checkpoints, args.frames, args.known_intrinsics, args.json)
        return 0
    from .rng_state import seed_everything
    seed_everything(args.seed)  # model init
    if args.command == 'moge2':
        from .moge2_training import moge2_training_run
        try:
            task, dataset = moge2_training_run(args)
        except ValueError as error:
            raise ToolError(error) from None
        run_training(args, task, f'{PROG} ' + shlex.join(argv), dataset)
        return 0
    try:
        task = _stage1_task(args) if args.command == 'stage1' else _stage2_task(args)
    except ValueError as error:  # e.g. an unknown --variant
        raise ToolError(error) from None
    run_training(args, task, f'{PROG} ' + shlex.join(argv))
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""The depth node's model options as command-line options: same names, defaults and meaning.

--checkpoint (a ppd_ros .safetensors) wins; otherwise --variant picks the files: tiny (the
default) the shipped tiny model, large the official release files --dit-checkpoint and
--encoder-checkpoint (giving one of those implies --variant large). Relative paths resolve
like the node's (package share, source checkout, cwd). The defaults are
ppd_ros.pipeline.predictor_loading.MODEL_DEFAULTS, as for the node; the rules are its
weight_files().
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path

from ppd_ros.cli.tool_main import ToolError
from ppd_ros.pipeline.predictor_loading import (BACKEND_CHOICES, MODEL_DEFAULTS as DEFAULTS,
                                                PRECISION_CHOICES, TINY_CHECKPOINT,
                                                UPSAMPLING_CHOICES, VARIANT_CHOICES,
                                                check_network_area_setting, device_problem,
                                                model_notice,
                                                parse_network_area, require_weight_file,
                                                weight_files)


@dataclass(frozen=True)
class ModelOptions:
    checkpoint: str
    dit_checkpoint: str
    encoder_checkpoint: str
    variant: str
    device: str
    precision: str
    num_threads: int
    steps: int
    seed: int
    network_area: int = 0
    upsampling: str = DEFAULTS['upsampling']
    backend: str = DEFAULTS['backend']
    export_dir: str = DEFAULTS['export_dir']
    samples: int = 1        #: K noise draws per frame (one batch); K > 1 adds confidence
    compile: bool = DEFAULTS['compile']

    def weight_files(self) -> dict[str, str]:
        """{option name: path as given} of the files this configuration loads."""
        return weight_files(self.checkpoint, self.dit_checkpoint, self.encoder_checkpoint,
                            self.variant)

    @property
    def official(self) -> bool:
        """The official release files are loaded (built as ``variant``)."""
        return 'checkpoint' not in self.weight_files()

    def resolved_weight_files(self) -> dict[str, Path]:
        """The weight files as existing paths; ModelUnavailableError names a missing one."""
        resolved = {}
        for name, path in self.weight_files().items():
            option = name.replace('_', '-')
            found = require_weight_file(path, option, f'pass --{option} PATH to an existing file')
            resolved[name] = found.resolve()
        return resolved

    def fingerprint(self) -> dict:
        """What changes the predictions: weight files (path, size, mtime) and sampling."""
        files = {name: {'path': str(path), 'bytes': path.stat().st_size,
                        'mtime_ns': path.stat().st_mtime_ns}
                 for name, path in self.resolved_weight_files().items()}
        return {'weights': files, 'variant': self.variant if self.official else None,
                'device': self.device, 'precision': self.precision, 'steps': self.steps,
                'seed': self.seed, 'network_area': self.network_area,
                'upsampling': self.upsampling, 'backend': self.backend,
                'export_dir': self.export_dir, 'samples': self.samples,
                'compile': self.compile}

    def notice(self) -> str | None:
        """One line when the model was trained only on synthetic scenes (the tiny model)."""
        return model_notice(self.checkpoint, self.dit_checkpoint, self.encoder_checkpoint,
                            self.variant)

    def as_dict(self) -> dict:
        return asdict(self)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group('model (the depth node parameters of the same names)')
    group.add_argument('--checkpoint', default=None,
                       help='ppd_ros .safetensors checkpoint (carries its config); when given, '
                            'it is loaded whatever --variant says')
    group.add_argument('--variant', default=None, choices=VARIANT_CHOICES,
                       help=f'without --checkpoint: tiny loads the shipped {TINY_CHECKPOINT} '
                            '(trained on synthetic rooms, for demos and tests; the default), '
                            'large the official weights (get them with ppd-fetch)')
    group.add_argument('--dit-checkpoint', default=None,
                       help=f"official PPD DiT weights for --variant large "
                            f"(default {DEFAULTS['dit_checkpoint']}; implies --variant large)")
    group.add_argument('--encoder-checkpoint', default=None,
                       help='official Depth Anything v2 weights for --variant large '
                            f"(default {DEFAULTS['encoder_checkpoint']}; implies --variant large)")
    group.add_argument('--device', default=DEFAULTS['device'],
                       help='auto, cpu, cuda or cuda:N (default %(default)s)')
    group.add_argument('--precision', default=DEFAULTS['precision'], choices=PRECISION_CHOICES,
                       help='auto (bf16 where the device runs it fast, else fp32), fp32, fp16 '
                            'or bf16 (default %(default)s)')
    group.add_argument('--num-threads', type=int, default=DEFAULTS['num_threads'],
                       help='CPU threads for torch; 0 (default) keeps the torch default')
    group.add_argument('--network-area', type=parse_network_area,
                       default=DEFAULTS['network_area'], metavar='WxH|PIXELS',
                       help='network resolution: about this many pixels, aspect ratio kept '
                            "(e.g. 768x576); 0 (default) is the model's training area")
    group.add_argument('--upsampling', default=DEFAULTS['upsampling'],
                       choices=UPSAMPLING_CHOICES,
                       help='network output to image size: edge_aware (no value between two '
                            'surfaces), nearest, or bilinear as the reference (default '
                            '%(default)s)')
    group.add_argument('--backend', default=DEFAULTS['backend'], choices=BACKEND_CHOICES,
                       help='what runs the networks (default %(default)s); onnxruntime and '
                            'tensorrt run the --export-dir made by ppd-export')
    group.add_argument('--export-dir', default=DEFAULTS['export_dir'],
                       help='ppd-export folder for --backend onnxruntime / tensorrt')
    group.add_argument('--compile', action='store_true', default=DEFAULTS['compile'],
                       help='backend torch: run the networks through torch.compile (slow first '
                            'frame, see docs/performance.md)')
    group.add_argument('--steps', type=int, default=DEFAULTS['steps'],
                       help='diffusion sampling steps (default %(default)s)')
    group.add_argument('--seed', type=int, default=DEFAULTS['seed'],
                       help='noise seed, the same every frame; -1 draws fresh noise per frame '
                            '(results then differ between runs) (default %(default)s)')
    group.add_argument('--samples', type=int, default=DEFAULTS['samples'], metavar='K',
                       help='noise draws per frame, run as one batch: the depth is their mean '
                            'and their spread is scored as a confidence map (Spearman, '
                            'sparsification / AUSE) (default %(default)s)')


def model_options_from_args(args: argparse.Namespace) -> ModelOptions:
    """ModelOptions of parsed add_model_arguments options; ToolError for impossible values."""
    official_given = args.dit_checkpoint is not None or args.encoder_checkpoint is not None
    variant = args.variant or ('large' if official_given else DEFAULTS['variant'])
    if official_given and variant == 'tiny' and not args.checkpoint:
        raise ToolError('--dit-checkpoint / --encoder-checkpoint are the official files of '
                        '--variant large; drop --variant tiny (or the official files)')
    if args.steps < 1:
        raise ToolError(f'--steps must be >= 1, got {args.steps}')
    problem = device_problem(args.device)
    if problem:
        raise ToolError(f'--{problem}')
    if args.num_threads < 0:
        raise ToolError(f'--num-threads must be >= 0 (0: torch default), got {args.num_threads}')
    problem = check_network_area_setting(args.network_area)
    if problem:
        raise ToolError(f'--network-area: {problem}')
    if not 1 <= args.samples <= 64:
        raise ToolError(f'--samples must be in 1..64, got {args.samples}')
    return ModelOptions(
        checkpoint=args.checkpoint or '',
        dit_checkpoint=args.dit_checkpoint or DEFAULTS['dit_checkpoint'],
        encoder_checkpoint=args.encoder_checkpoint or DEFAULTS['encoder_checkpoint'],
        variant=variant, device=args.device, precision=args.precision,
        num_threads=args.num_threads, steps=args.steps, seed=args.seed,
        network_area=args.network_area, upsampling=args.upsampling,
        backend=args.backend, export_dir=args.export_dir or '', samples=args.samples,
        compile=args.compile)


def load_model(options: ModelOptions):
    """(DepthPredictor, model info dict); ModelUnavailableError when weights are missing."""
    from ppd_ros.pipeline.predictor_loading import load_predictor_from_paths
    files = options.resolved_weight_files()
    predictor = load_predictor_from_paths(
        str(files.get('checkpoint', '')), str(files.get('dit_checkpoint', '')),
        str(files.get('encoder_checkpoint', '')), options.variant, options.device,
        options.precision, options.num_threads, options.network_area, options.upsampling,
        options.backend, options.export_dir, options.compile)
    import torch
    info = {'name': predictor.config.name,
            'parameters': None if predictor.model is None else
            int(sum(p.numel() for p in predictor.model.parameters())),
            'backend': options.backend,
            'train_size': [predictor.config.train_width, predictor.config.train_height],
            'device': str(predictor.device), 'precision': predictor.precision,
            'network_area': predictor.network_area, 'upsampling': options.upsampling,
            'compile': options.compile,
            'steps': options.steps, 'seed': options.seed, 'samples': options.samples,
            'torch_threads': torch.get_num_threads(),
            'weights': {k: str(v) for k, v in files.items()}}
    return predictor, info

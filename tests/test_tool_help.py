"""Every tool's --help: every option described, no reST markup, the same option names."""
from __future__ import annotations

import argparse

import pytest

from ppd_ros.cli import export, predict
from ppd_ros.demo import cli as demo
from ppd_ros.evaluation import cli as evaluation
from ppd_ros.model import fetch
from ppd_ros.synthetic import cli as synth
from ppd_ros.training import cli as training


def parsers() -> dict[str, argparse.ArgumentParser]:
    found = {}
    for module in (predict, evaluation, synth, training, fetch, demo, export):
        parser = module.build_parser()
        found[parser.prog] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                found.update({sub.prog: sub for sub in action.choices.values()})
    return found


PARSERS = parsers()


@pytest.mark.parametrize('prog', sorted(PARSERS))
def test_every_option_is_described_without_markup(prog):
    parser = PARSERS[prog]
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
            continue
        assert action.help, f'{prog} {action.option_strings or action.dest} has no help'
    text = parser.format_help()
    assert '``' not in text
    assert parser.description or parser.prog.startswith('ppd-train ')


@pytest.mark.parametrize('prog', ['ppd-predict', 'ppd-eval', 'ppd-demo', 'ppd-train stage1',
                                  'ppd-train stage2', 'ppd-train evaluate'])
def test_torch_threads_are_num_threads_everywhere(prog):
    assert '--num-threads' in PARSERS[prog].format_help()
    assert '--threads ' not in PARSERS[prog].format_help()


def test_the_former_threads_spelling_still_works():
    args = training.build_parser().parse_args(['evaluate', 'x.safetensors', '--threads', '2'])
    assert args.num_threads == 2

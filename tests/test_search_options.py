"""Search settings: every impossible value is one line naming the flag or config field, exit 2."""

import ml_collections
import pytest
from absl import flags
from helpers import run

from t2t import cli, final_eval, trainer
from t2t.config import base_config
from t2t.errors import UserError
from t2t.search_options import SearchOptions


def command_flags(argv, sampling=True, mbr=False):
  """A private FlagValues with translate.py's search flags (or, sampling=False and mbr=True,
  evaluate.py's), parsed from argv."""
  values = flags.FlagValues()
  flags.DEFINE_integer('beam_size', 4, '', flag_values=values)
  flags.DEFINE_float('alpha', 0.6, '', flag_values=values)
  flags.DEFINE_float('max_len_a', 1.5, '', flag_values=values)
  flags.DEFINE_integer('max_len_b', 10, '', flag_values=values)
  if sampling:
    flags.DEFINE_bool('sampling', False, '', flag_values=values)
    flags.DEFINE_integer('nbest', 1, '', flag_values=values)
  if sampling or mbr:
    cli.define_sampling(values)
  if mbr:
    cli.define_mbr(values)
  values(['prog', *argv])
  return values


@pytest.mark.parametrize('argv, message', [
    (['--beam_size=0'], '--beam_size 0: use 1 (greedy search) or more'),
    (['--beam_size=-3'], '--beam_size -3: use 1'),
    (['--beam_size=2', '--nbest=3'], '--nbest 3 needs --beam_size >= 3 (got 2)'),
    (['--beam_size=1', '--nbest=2'], '--nbest 2 needs --beam_size >= 2 (got 1, greedy)'),
    (['--nbest=0'], '--nbest 0: ask for at least 1'),
    (['--sampling', '--temperature=0'], '--temperature 0.0: use a value > 0'),
    (['--sampling', '--temperature=-1'], '--temperature -1.0'),
    (['--sampling', '--top_p=0'], '--top_p 0.0: use a value in (0, 1]'),
    (['--sampling', '--top_p=1.5'], '--top_p 1.5'),
    (['--sampling', '--top_k=-1'], '--top_k -1: use 0'),
    (['--alpha=-0.5'], '--alpha -0.5: the length penalty exponent must be >= 0'),
    (['--max_len_a=-1'], '--max_len_a -1.0: use a value >= 0'),
    (['--max_len_b=-2'], '--max_len_b -2: use a value >= 0'),
])
def test_invalid_flags_name_the_flag(argv, message):
  with pytest.raises(UserError) as error:
    SearchOptions.from_flags(command_flags(argv))
  assert str(error.value).startswith(message), str(error.value)
  assert '\n' not in str(error.value)


@pytest.mark.parametrize('argv, expected', [
    ([], SearchOptions('beam', 4, 0.6, 1.5, 10)),
    (['--beam_size=1', '--alpha=0'], SearchOptions('greedy', 1, 0.0, 1.5, 10)),
    (['--sampling', '--beam_size=1', '--top_p=0.9', '--nbest=3'],
     SearchOptions('sample', 1, 0.6, 1.5, 10, 1.0, 0, 0.9)),
    (['--beam_size=5', '--nbest=5', '--max_len_a=2', '--max_len_b=3'], SearchOptions('beam', 5, 0.6, 2.0, 3)),
])
def test_valid_flags_build_the_options(argv, expected):
  assert SearchOptions.from_flags(command_flags(argv)) == expected


def test_evaluate_flags_without_sampling():
  assert SearchOptions.from_flags(command_flags(['--beam_size=1'], sampling=False)).method == 'greedy'


@pytest.mark.parametrize('argv, mbr, message', [
    (['--top_p=0.9'], False, '--top_p shapes sampling, but this command searches (beam): add --sampling'),
    (['--beam_size=1', '--seed=3'], False, '--seed shapes sampling, but this command searches (greedy)'),
    (['--temperature=0.5'], True, '--temperature shapes sampling, but this command searches (beam): add --mbr N'),
    (['--mbr=4', '--mbr_candidates=nbest', '--top_k=5'], True, '--top_k shapes sampling'),
])
def test_a_sampling_flag_without_sampling_is_refused(argv, mbr, message):
  """It would be ignored silently: beam and greedy search draw nothing."""
  with pytest.raises(UserError) as error:
    SearchOptions.from_flags(command_flags(argv, sampling=not mbr, mbr=mbr))
  assert str(error.value).startswith(message), str(error.value)


def test_evaluates_mbr_samples_take_the_sampling_flags():
  options = SearchOptions.from_flags(command_flags(['--mbr=8', '--top_p=0.9', '--temperature=0.7', '--seed=2'],
                                                   sampling=False, mbr=True))
  assert (options.method, options.mbr, options.top_p, options.temperature) == ('sample', 8, 0.9, 0.7)


def test_config_fills_the_flags_not_given():
  """The seam for a workdir's chosen settings: flags given win, the rest come from `config`."""
  chosen = ml_collections.ConfigDict({'beam_size': 6, 'alpha': 1.0})
  options = SearchOptions.from_flags(command_flags(['--alpha=0.2']), chosen)
  assert (options.method, options.beam_size, options.alpha, options.max_len_b) == ('beam', 6, 0.2, 10)


@pytest.mark.parametrize('field, value, message', [
    ('beam_size', 0, 'config.beam_size=0: use 1'),
    ('beam_size', -3, 'config.beam_size=-3: use 1'),
    ('alpha', -1.0, 'config.alpha=-1.0'),
])
def test_trainer_config_names_the_field(field, value, message):
  config = base_config()
  config[field] = value
  with pytest.raises(UserError, match=message):
    trainer.search_options(config)


@pytest.mark.parametrize('field, value, message', [
    ('final_beam_size', 0, 'config.final_beam_size=0: use 1'),
    ('final_alphas', (0.6, -1.0), 'config.final_alphas=-1.0'),
])
def test_final_eval_config_names_the_field(field, value, message):
  config = base_config()
  config[field] = value
  with pytest.raises(UserError, match=message):
    final_eval.search_options(config)


def test_output_limit():
  options = SearchOptions('greedy', 1, 0.0, 1.5, 10)
  assert options.output_limit(4) == 16 and options.output_limit(5) == 18  # ceil(7.5) + 10
  assert options.output_limit([0, 3]).tolist() == [10, 15]


@pytest.mark.parametrize('program, args', [
    ('evaluate.py', ['--beam_size', '0']),
    ('evaluate.py', ['--beam_size', '-3']),
    ('translate.py', ['--beam_size', '0']),
    ('train.py', ['--config', 'configs/tiny.py', '--config.beam_size=0']),
])
def test_commands_exit_2_with_one_line(tmp_path, program, args):
  """Refused before the workdir is read: the workdir does not even exist."""
  result = run(program, '--workdir', str(tmp_path / 'none'), *args, check=False, stdin='')
  assert result.returncode == 2, result.stderr[-2000:]
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('error: ') and 'beam_size' in lines[0], result.stderr
  assert not (tmp_path / 'none').exists() or program == 'train.py'

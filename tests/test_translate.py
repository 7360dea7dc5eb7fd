"""translate.py: streaming in batches keeps every line aligned; n-best, sampling, prompt, attention plot."""

import io
import os
import subprocess
import sys

import pytest
from helpers import builtin_corpus, run

from t2t import demo_corpus, ensemble, streaming
from t2t.errors import UserError
from t2t.evaluation import load_model
from t2t.inference import SearchOptions, Translator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GREEDY = SearchOptions('greedy', 1)
LONG = ' '.join(['Doctors believe that Thomas buys the student hats.'] * 12)  # > 63 tokens


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
  """configs/tiny.py trained for a few steps: enough to translate (badly) and to plot."""
  corpus = builtin_corpus(tmp_path_factory.mktemp('corpus'), train=600, val=8, test=8)
  path = tmp_path_factory.mktemp('run') / 'w'
  run('train.py', '--config', 'configs/tiny.py', '--workdir', str(path), '--config.data.source=text',
      f'--config.data.path={corpus}', '--config.num_train_steps=10', '--config.eval_every_steps=1000')
  return path


@pytest.fixture(scope='module')
def translator(workdir):
  config, params, tokenizer = load_model(str(workdir))
  return Translator(config, params, tokenizer, batch_size=4)


@pytest.fixture(scope='module')
def lines():
  sentences = [en for en, _ in demo_corpus.load_builtin('test')[:5]]
  return [sentences[0], '', sentences[1], LONG, '', sentences[2], sentences[3], sentences[4]]


def test_empty_and_overlong_lines_keep_alignment(translator, lines):
  warnings = io.StringIO()
  out = streaming.LineTranslator(translator, GREEDY, warnings=warnings).translate_lines(lines, first_number=11)
  assert len(out) == len(lines)
  assert out[1] == '' and out[4] == ''
  one_by_one = [translator.translate([line], GREEDY)[0] if line else '' for line in lines]
  assert out == one_by_one
  assert warnings.getvalue().count('warning: line ') == 1
  assert 'warning: line 14 has ' in warnings.getvalue() and 'maximum of 63' in warnings.getvalue()


def test_nbest_gives_k_scored_lines_per_input(translator, lines):
  out = streaming.LineTranslator(translator, SearchOptions('beam', 3, 0.6), nbest=3).translate_lines(lines)
  assert len(out) == 3 * len(lines)
  groups = [out[i:i + 3] for i in range(0, len(out), 3)]
  assert groups[1] == ['0.0000\t'] * 3
  best = streaming.LineTranslator(translator, SearchOptions('beam', 3, 0.6)).translate_lines(lines)
  for group, first in zip(groups, best):
    scores = [float(line.split('\t')[0]) for line in group]
    assert all(line.count('\t') == 1 for line in group)
    assert scores == sorted(scores, reverse=True)
    assert group[0].split('\t')[1] == first


def test_sampling_is_seeded(translator, lines):
  options = SearchOptions('sample', temperature=2.0)
  draw = lambda seed, nbest=1: streaming.LineTranslator(translator, options, nbest, seed).translate_lines(lines)
  assert draw(5) == draw(5)
  assert draw(5) != draw(6)
  three = draw(5, 3)
  assert len(three) == 3 * len(lines) and three == draw(5, 3)
  first_line = [line.split('\t')[1] for line in three[:3]]
  assert len(set(first_line)) > 1, 'the K samples of a line should differ'


@pytest.mark.parametrize('options, nbest, message', [
    (SearchOptions('beam', 2), 3, '--nbest 3 needs --beam_size >= 3 (got 2)'),
    (GREEDY, 2, '--nbest 2 needs --beam_size >= 2 (got 1, greedy)'),
    (SearchOptions('sample', temperature=0.0), 1, '--temperature 0.0'),
])
def test_impossible_search_settings_are_refused(options, nbest, message):
  with pytest.raises(UserError, match=message.replace('(', r'\(').replace(')', r'\)')):
    streaming.check_search(options, nbest)


def test_interactive_prompt(translator):
  stdin, out, prompt = io.StringIO('Now their brother is new.\n\nDoctors believe.\n'), io.StringIO(), io.StringIO()
  streaming.interactive(streaming.LineTranslator(translator, GREEDY), stdin, out, prompt)
  assert out.getvalue().splitlines() == [
      translator.translate(['Now their brother is new.'], GREEDY)[0], '',
      translator.translate(['Doctors believe.'], GREEDY)[0]]
  assert prompt.getvalue().count('> ') == 4  # three lines, then end of input


def test_command_line_streams_stdin_and_input_file(workdir, translator, lines, tmp_path):
  text = ''.join(line + '\n' for line in lines)
  piped = run('translate.py', '--workdir', str(workdir), '--beam_size', '1', '--batch_size', '3', stdin=text)
  assert piped.stdout.splitlines() == streaming.LineTranslator(translator, GREEDY).translate_lines(lines)
  assert 'warning: line 4 has ' in piped.stderr
  (tmp_path / 'in.txt').write_text(text, encoding='utf-8')
  script = os.path.join(os.path.dirname(sys.executable), 't2t-translate')
  from_file = run('--workdir', str(workdir), '--beam_size', '1', '--input', str(tmp_path / 'in.txt'), program=script)
  assert from_file.stdout == piped.stdout


def test_command_line_errors_are_one_line(workdir):
  result = run('-m', 't2t.translate', '--workdir', str(workdir), '--nbest', '5', stdin='', check=False)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1] == (
      'error: --nbest 5 needs --beam_size >= 5 (got 4): raise --beam_size or lower --nbest')


def test_command_line_plots_attention(workdir, tmp_path):
  path = tmp_path / 'attention.png'
  result = run('translate.py', '--workdir', str(workdir), '--plot_attention', str(path), 'A man rides a bike.')
  assert len(result.stdout.splitlines()) == 1  # the translation
  data = path.read_bytes()
  assert data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) > 5000


def test_decode_batches_count_rows_and_outputs_do_not_depend_on_them(workdir, lines):
  config, params, tokenizer = load_model(str(workdir))
  small, large = Translator(config, params, tokenizer, batch_size=8), Translator(config, params, tokenizer, batch_size=64)
  devices = len(small.devices)
  beam4 = SearchOptions('beam', 4, 0.6)
  # Rows = sentences x beam size, spread over the devices (2 in the tests).
  assert small.sentences_per_batch(GREEDY) == 8
  assert small.sentences_per_batch(beam4) == max(1, 8 // devices // 4) * devices
  assert large.sentences_per_batch(beam4) == 16
  sentences = [en for en, _ in demo_corpus.load_builtin('test')[:12]]
  for options in (GREEDY, beam4):
    assert small.translate(sentences, options) == large.translate(sentences, options)


def test_command_line_keeps_alignment_under_invalid_and_odd_lines(workdir, translator):
  good = [en for en, _ in demo_corpus.load_builtin('test')[:2]]
  lines = [b'\xef\xbb\xbf' + good[0].encode() + b'\r',  # BOM and CRLF
           b'caf\xe9 au lait',                          # Latin-1, not UTF-8
           b'',
           b'a \x00 man \x07rides\x1b[0m',              # NUL and control characters
           b'the house ' * 100_000,                     # a megabyte
           good[1].encode()]
  result = subprocess.run([sys.executable, 'translate.py', '--workdir', str(workdir), '--beam_size', '1',
                           '--batch_size', '4'], cwd=ROOT, input=b'\n'.join(lines) + b'\n',
                          capture_output=True, timeout=600)
  stderr = result.stderr.decode()
  assert result.returncode == 0, stderr[-2000:]
  out = result.stdout.decode().split('\n')[:-1]
  expected = streaming.LineTranslator(translator, GREEDY).translate_lines(
      [good[0], '', '', 'a \x00 man \x07rides\x1b[0m', ' '.join(['the house'] * 100_000), good[1]])
  assert out == expected
  assert 'warning: stdin line 2 (byte offset ' in stderr and 'is not valid UTF-8: wrote an empty line' in stderr
  assert 'warning: line 5 has ' in stderr and 'Traceback' not in stderr


def test_command_line_prefixes_and_alignments(workdir, translator, tmp_path):
  sentences = [en for en, _ in demo_corpus.load_builtin('test')[:3]]
  (tmp_path / 'in.txt').write_text(''.join(s + '\n' for s in sentences), encoding='utf-8')
  (tmp_path / 'prefixes.txt').write_text('Der Mann\n\nEin\n', encoding='utf-8')
  result = run('translate.py', '--workdir', str(workdir), '--beam_size', '2', '--input', str(tmp_path / 'in.txt'),
               '--prefix_file', str(tmp_path / 'prefixes.txt'), '--print_alignment')
  out = result.stdout.splitlines()
  assert len(out) == 3
  texts = [line.split(' ||| ')[0] for line in out]
  assert texts[0].startswith('Der Mann') and texts[2].startswith('Ein')
  assert texts[1] == translator.translate([sentences[1]], SearchOptions('beam', 2))[0]
  for sentence, line in zip(sentences, out):
    text, links = line.split(' ||| ')
    pairs = [tuple(map(int, link.split('-'))) for link in links.split()]
    assert [j for _, j in pairs] == list(range(len(text.split())))
    assert all(0 <= i < len(sentence.split()) for i, _ in pairs)
  (tmp_path / 'short.txt').write_text('Der Mann\n', encoding='utf-8')
  result = run('translate.py', '--workdir', str(workdir), '--input', str(tmp_path / 'in.txt'),
               '--prefix_file', str(tmp_path / 'short.txt'), check=False)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      f'error: --prefix_file {tmp_path / "short.txt"} has 1 lines but --input {tmp_path / "in.txt"} has 3: '
      'give one prefix line (empty for none) per input line']


def test_ensemble_of_a_workdir_with_itself_translates_like_it(workdir, translator, lines):
  """Loading by workdir and by workdir:step, one tokenizer; beam and sampling: tests/test_decoding.py."""
  members, tokenizer = ensemble.load_ensemble(f'{workdir},{workdir}:10')
  pair = Translator.ensemble(members, tokenizer, batch_size=4)
  short = [line for line in lines if line != LONG]
  assert pair.translate(short, GREEDY) == translator.translate(short, GREEDY)

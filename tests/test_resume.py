"""Exact resume, preemption, non-finite stops and multi-process training, through train.py.

One uninterrupted run is the reference for everything else: a run stopped by SIGTERM, then
killed with SIGKILL, then resumed past a damaged checkpoint ends with the same parameter
fingerprint; two processes of one device each reach the same losses as it (one process, two
devices); a resumed run whose steps all go non-finite stops and keeps its checkpoints.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys

import pytest
from helpers import write_corpus

from t2t import checkpoint as ckpt
from t2t import demo_corpus

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 12
# Dropout on, so a resumed run must also redraw the same dropout masks; greedy BLEU on two
# sentences keeps the final evaluation cheap.
COMMON = ['--config', 'configs/tiny.py', '--config.data.source=text', f'--config.num_train_steps={STEPS}',
          '--config.checkpoint_every_steps=5', '--config.eval_every_steps=1000', '--config.beam_size=1',
          '--config.eval_bleu_sentences=2', '--config.model.dropout=0.1']


CACHE = None  # set by the `corpus` fixture: a compilation cache shared by this file's runs


def env(devices=2, **extra):
  # The persistent compilation cache lets every run after the first skip most of XLA's compile
  # time; a cached executable computes exactly what a fresh compile does.
  return {**os.environ, 'XLA_FLAGS': f'--xla_force_host_platform_device_count={devices}',
          'JAX_PLATFORMS': 'cpu', 'JAX_COMPILATION_CACHE_DIR': str(CACHE),
          'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS': '0', **extra}


def train(workdir, corpus, *extra, environment=None, check=True):
  command = [sys.executable, 'train.py', '--workdir', str(workdir), *COMMON, f'--config.data.path={corpus}',
             *extra]
  result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=environment or env())
  if check and result.returncode != 0:
    raise AssertionError(f'exited {result.returncode}:\n{result.stderr[-3000:]}')
  return result


def start_paused(workdir, corpus, step):
  """Starts train.py that stops after `step` and waits; returns once it says so."""
  process = subprocess.Popen([sys.executable, 'tests/paused_train.py', str(step), '--workdir', str(workdir),
                              *COMMON, f'--config.data.path={corpus}'], cwd=ROOT, text=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env())
  lines = []
  for line in process.stderr:  # tqdm redraws with \r, so test for containment
    lines.append(line)
    if f'paused after step {step}' in line:
      return process, lines
  process.wait(timeout=60)
  raise AssertionError(f'exited {process.returncode} before pausing:\n{"".join(lines)[-3000:]}')


def fingerprint(workdir):
  """What `python -m t2t.checkpoint --workdir W --fingerprint` prints (tested in test_faults.py)."""
  checkpointer = ckpt.Checkpointer(str(workdir), read_only=True)
  try:
    return f'step {checkpointer.latest_step()} sha256 {ckpt.fingerprint(checkpointer.restore_params())}'
  finally:
    checkpointer.close()


def train_losses(workdir):
  records = [json.loads(l) for l in (workdir / 'metrics.jsonl').read_text().splitlines()]
  return {r['step']: r['loss'] for r in records if r['split'] == 'train'}


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
  """Built-in pairs as text, plus one pair with an empty side and one too long for max_len."""
  global CACHE
  CACHE = tmp_path_factory.mktemp('jax_cache')
  path = tmp_path_factory.mktemp('corpus')
  train = demo_corpus.load_builtin('train')[:600]
  train.insert(100, ('', 'ein Satz ohne Quelle'))
  train.insert(200, (' '.join(['the house'] * 40), ' '.join(['das Haus'] * 40)))
  return write_corpus(path, {'train': train, 'val': demo_corpus.load_builtin('val')[:8]})


@pytest.fixture(scope='module')
def straight(tmp_path_factory, corpus):
  """The reference: STEPS steps without interruption, one process with two devices."""
  workdir = tmp_path_factory.mktemp('straight') / 'w'
  result = train(workdir, corpus)
  return workdir, result, fingerprint(workdir)


def test_bad_pairs_are_skipped_and_counted(straight):
  _, result, _ = straight
  assert 'skipped 1 pairs with an empty side' in result.stderr
  # 600 + 2 pairs, less the empty one; the 80-word pair is among those too long.
  pattern = r'dropped [1-9]\d* of 601 training pairs longer than config.max_len=32 tokens'
  assert re.search(pattern, result.stderr)


def test_sigterm_sigkill_damage_then_resume_is_exact(straight, corpus, tmp_path):
  reference_dir, _, reference = straight
  assert reference.startswith(f'step {STEPS} sha256 ')
  workdir = tmp_path / 'w'
  checkpoints = workdir / 'checkpoints'

  # SIGTERM: the step in progress finishes, a checkpoint is written, exit status 128 + 15.
  process, _ = start_paused(workdir, corpus, 7)
  process.send_signal(signal.SIGTERM)
  err = process.stderr.read()
  assert process.wait(timeout=120) == 128 + signal.SIGTERM
  assert err.strip().splitlines()[-1] == (f'stopped by SIGTERM after step 7: checkpoint saved in '
                                          f'{checkpoints / "7"}; rerun the same command to resume')
  assert sorted(os.listdir(checkpoints)) == ['5', '7']

  # SIGKILL after step 11: nothing runs at exit; checkpoint 10 was written at step 10.
  process, lines = start_paused(workdir, corpus, 11)
  assert any('resumed from step 7 of 12' in l for l in lines)
  process.send_signal(signal.SIGKILL)
  process.wait(timeout=60)
  process.stderr.close()
  assert sorted(os.listdir(checkpoints)) == ['10', '5', '7']

  # Damage the newest checkpoint and leave what a kill during an async write leaves behind.
  shutil.copytree(checkpoints / '10', checkpoints / '12.orbax-checkpoint-tmp-99')
  for root, _, names in os.walk(checkpoints / '10' / 'state'):
    for name in names:
      with open(os.path.join(root, name), 'r+b') as f:
        f.truncate(os.path.getsize(os.path.join(root, name)) // 2)
  result = train(workdir, corpus)
  assert f'checkpoint {checkpoints / "10"} is damaged; moved to {checkpoints / "10"}.damaged' in result.stderr
  assert 'resumed from step 7 of 12' in result.stderr
  assert fingerprint(workdir) == reference
  assert sorted(os.listdir(checkpoints)) == ['10', '10.damaged', '12', '7']
  # Steps 11-12 form one log interval in both runs (earlier intervals were cut by the restarts).
  assert train_losses(workdir)[STEPS] == pytest.approx(train_losses(reference_dir)[STEPS], rel=1e-6)


def test_non_finite_steps_stop_the_run_and_keep_the_checkpoints(straight, corpus, tmp_path):
  reference_dir, _, reference = straight
  workdir = tmp_path / 'w'
  shutil.copytree(reference_dir, workdir)
  before = sorted(os.listdir(workdir / 'checkpoints'))
  # An infinite learning rate makes every update non-finite; the workdir accepts the change.
  result = train(workdir, corpus, '--config.num_train_steps=30', '--config.learning_rate=inf',
                 '--config.max_consecutive_skips=3', check=False)
  assert result.returncode == 2
  line = result.stderr.strip().splitlines()[-1]
  assert line.startswith('error: steps 13-15 all had a non-finite loss or gradients and were skipped')
  assert 'the newest checkpoint is step 12' in line
  assert sorted(os.listdir(workdir / 'checkpoints')) == before
  assert fingerprint(workdir) == reference
  last = json.loads((workdir / 'metrics.jsonl').read_text().splitlines()[-1])
  assert last['step'] == 15 and last['skipped'] == 3


def free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def test_two_processes_equal_one_process_with_two_devices(straight, corpus, tmp_path):
  reference_dir, _, _ = straight
  workdir = tmp_path / 'w'
  address = f'127.0.0.1:{free_port()}'
  processes = [subprocess.Popen(
      [sys.executable, 'train.py', '--workdir', str(workdir), *COMMON, f'--config.data.path={corpus}',
       f'--coordinator_address={address}', '--num_processes=2', f'--process_id={i}'],
      cwd=ROOT, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env(devices=1))
      for i in range(2)]
  try:
    errors = [p.communicate(timeout=600)[1] for p in processes]
  finally:
    for p in processes:
      if p.poll() is None:
        p.kill()
  assert [p.returncode for p in processes] == [0, 0], errors[0][-2000:] + errors[1][-2000:]
  reference = train_losses(reference_dir)
  losses = train_losses(workdir)  # written by process 0 only: one line per step
  assert sorted(losses) == sorted(reference)
  for step, loss in reference.items():
    assert losses[step] == pytest.approx(loss, rel=1e-5), step
  assert sorted(os.listdir(workdir / 'checkpoints')) == ['10', '12', '5']  # once, no temporaries


def launch(workdir, corpus, fault, timeout=300):
  """train.py through tests/fault_launcher.py with one fault injected."""
  command = [sys.executable, 'tests/fault_launcher.py', fault, '--workdir', str(workdir), *COMMON,
             f'--config.data.path={corpus}']
  return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env())


@pytest.mark.filterwarnings('ignore::pytest.PytestUnraisableExceptionWarning')
def test_disk_full_during_a_checkpoint_write_is_one_line_then_resume_is_exact(straight, corpus, tmp_path):
  _, _, reference = straight
  workdir = tmp_path / 'w'
  checkpoints = workdir / 'checkpoints'
  result = launch(workdir, corpus, 'enospc:10')
  assert result.returncode == 2
  assert 'Traceback' not in result.stderr and 'Event loop is closed' not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      f'error: no space left on device while writing checkpoint 10 in {checkpoints}; the newest '
      'good checkpoint is 5: free space, then rerun the same command to resume from it')
  assert [n for n in os.listdir(checkpoints) if n.isdigit()] == ['5']
  # Space freed: the same command resumes from step 5 and ends where an uninterrupted run does.
  result = train(workdir, corpus)
  assert 'resumed from step 5 of 12' in result.stderr
  assert fingerprint(workdir) == reference
  assert sorted(os.listdir(checkpoints)) == ['10', '12', '5']


def test_a_failing_batch_in_the_prefetch_thread_ends_the_run(corpus, tmp_path):
  result = launch(tmp_path / 'w', corpus, 'batch:4', timeout=180)  # it used to wait for ever
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1].startswith(
      'error: internal error ValueError: injected failure in training batch 4')
  assert 'Traceback' not in result.stderr


def test_a_second_run_on_a_training_workdir_is_refused_but_reading_it_is_allowed(corpus, tmp_path):
  workdir = tmp_path / 'w'
  first, _ = start_paused(workdir, corpus, 6)  # checkpoint 5 is on disk
  try:
    second = train(workdir, corpus, check=False)
    assert second.returncode == 2
    line = second.stderr.strip().splitlines()[-1]
    assert line.startswith(f'error: {workdir} is being trained by pid {first.pid} on ')
    assert 'wait for it to finish or stop it, or use another --workdir' in line
    translated = subprocess.run([sys.executable, 'translate.py', '--workdir', str(workdir), '--beam_size=1'],
                                cwd=ROOT, input='a man\n', capture_output=True, text=True, timeout=300,
                                env=env())
    assert translated.returncode == 0, translated.stderr[-2000:]
    assert len(translated.stdout.splitlines()) == 1
  finally:
    first.kill()
    first.wait(timeout=60)
    first.stderr.close()
  from t2t.lock import WorkdirLock
  with WorkdirLock(str(workdir)):  # a killed run leaves no stale lock
    pass


@pytest.mark.parametrize('phase,signum', [('t2t.data.pipeline.iter_pairs', signal.SIGTERM),
                                          ('t2t.data.pipeline.train_tokenizer', signal.SIGINT)])
def test_a_signal_before_training_is_one_line_and_leaves_nothing_half_written(corpus, tmp_path, phase, signum):
  """(Inside the training loop, compilation and evaluation included, the trainer checkpoints first.)"""
  workdir = tmp_path / 'w'
  process = subprocess.Popen([sys.executable, 'tests/fault_launcher.py', f'pause:{phase}', '--workdir',
                              str(workdir), *COMMON, f'--config.data.path={corpus}'], cwd=ROOT, text=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env())
  for line in process.stderr:
    if 'paused in' in line:
      break
  process.send_signal(signum)
  err = process.stderr.read()
  assert process.wait(timeout=60) == 128 + signum
  assert err.strip().splitlines()[-1] == (f'error: stopped by {signal.Signals(signum).name}; files already '
                                          'written are kept: rerun the same command to continue')
  assert 'Traceback' not in err
  assert not (workdir / 'spm.model').exists() and not (workdir / 'checkpoints').exists()

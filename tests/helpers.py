"""Shared by the command-line tests: running a program, writing a small corpus."""

import os
import subprocess
import sys

from t2t import demo_corpus

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args, stdin=None, check=True, program=sys.executable):
  """Runs `program args` in the repository root; with check, fails the test on a non-zero exit."""
  result = subprocess.run([program, *args], cwd=ROOT, input=stdin, capture_output=True, text=True,
                          timeout=600)
  if check and result.returncode != 0:
    raise AssertionError(f'{args} exited {result.returncode}:\n{result.stderr[-3000:]}')
  return result


def write_corpus(path, splits: dict):
  """Writes {split: [(english, german), ...]} as <split>.en / <split>.de; returns path."""
  for split, pairs in splits.items():
    (path / f'{split}.en').write_text(''.join(en + '\n' for en, _ in pairs), encoding='utf-8')
    (path / f'{split}.de').write_text(''.join(de + '\n' for _, de in pairs), encoding='utf-8')
  return path


def builtin_corpus(path, **sizes):
  """The first n pairs of each built-in split, e.g. builtin_corpus(path, train=600, val=8)."""
  return write_corpus(path, {split: demo_corpus.load_builtin(split)[:n] for split, n in sizes.items()})

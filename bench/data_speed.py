"""The data path at WMT scale: raw text -> tokenizer -> encoded corpus -> first step, and packing speed.

  python bench/data_speed.py --pairs 4500000 --dir /work/runs/data/wmt_sized

builds an N-pair corpus in <dir>/corpus by recombining Multi30k training lines two at a time
(pair i = (en[a] + ' ' + en[b], de[a] + ' ' + de[b]) for seeded random a, b: ~30 target subwords
a pair, like WMT14 en-de), then with configs/small.py and <dir>/workdir reports, per stage, wall
time and peak resident memory:
  tokenizer    train SentencePiece on a bounded sample (one pass over the text)
  encode       encode every pair and write the workdir's encoded corpus (second pass)
  first step   train.py's own path from the cached corpus: prepare, init, compile, one step
  rerun        `train.py` again on the same workdir, one more step (resumes; a subprocess)
and steady-state packed batch production on one core (taskset to CPU 0), in target tokens/s.
--end_to_end also times the single command a user runs: train.py on a fresh workdir
(<dir>/workdir_end_to_end) straight from the raw text to step 1 (tokenizer, encoding, compile and
the step in one process), then the same command again to step 2.
--arrayrecord also writes the encoded pairs as an ArrayRecord file and compares random reads
through grain's ArrayRecordDataSource with the memory-mapped arrays.
"""

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.common import load_config, machine
from t2t.data import pipeline
from t2t.data.batching import TrainBatches

MULTI30K = os.path.join(ROOT, '..', 'shared', 'data', 'multi30k')


def build_corpus(folder: str, pairs: int, source: str = MULTI30K, seed: int = 0) -> str:
  """<folder>/train.en|de with `pairs` recombined Multi30k pairs, val.* = Multi30k val."""
  os.makedirs(folder, exist_ok=True)
  done = os.path.join(folder, f'.complete-{pairs}')
  if os.path.exists(done):
    return folder
  lines = {}
  for lang in ('en', 'de'):
    with open(os.path.join(source, f'train.{lang}'), encoding='utf-8') as f:
      lines[lang] = f.read().splitlines()
  rng = np.random.default_rng(seed)
  for lang in ('en', 'de'):
    with open(os.path.join(source, f'val.{lang}'), encoding='utf-8') as f_in, \
         open(os.path.join(folder, f'val.{lang}'), 'w', encoding='utf-8') as f_out:
      f_out.write(f_in.read())
  with open(os.path.join(folder, 'train.en'), 'w', encoding='utf-8') as en, \
       open(os.path.join(folder, 'train.de'), 'w', encoding='utf-8') as de:
    for start in range(0, pairs, 100_000):
      n = min(100_000, pairs - start)
      a, b = rng.integers(0, len(lines['en']), (2, n)).tolist()
      en.write(''.join(f"{lines['en'][i]} {lines['en'][j]}\n" for i, j in zip(a, b)))
      de.write(''.join(f"{lines['de'][i]} {lines['de'][j]}\n" for i, j in zip(a, b)))
  open(done, 'w').close()
  return folder


class Stage:
  """Times a block and reports its peak RSS (the kernel's high-water mark, reset on entry)."""

  def __init__(self, name: str, results: dict):
    self.name, self.results = name, results

  def __enter__(self):
    _reset_peak_rss()
    self.start, self.cpu = time.time(), time.process_time()
    return self

  def __exit__(self, *exc_info):
    seconds, cpu, peak = time.time() - self.start, time.process_time() - self.cpu, _peak_rss_gib()
    self.results[self.name] = {'seconds': round(seconds, 1), 'cpu_seconds': round(cpu, 1),
                               'peak_rss_gib': round(peak, 2)}
    print(f'{self.name:>12}: {seconds:7.1f} s   CPU {cpu:7.1f} s   peak RSS {peak:5.2f} GiB', flush=True)


def _reset_peak_rss():
  try:
    with open('/proc/self/clear_refs', 'w') as f:
      f.write('5')  # resets VmHWM (Linux >= 4.0)
  except OSError:
    pass  # then the figure is the peak since the process started


def _peak_rss_gib() -> float:
  with open('/proc/self/status') as f:
    for line in f:
      if line.startswith('VmHWM:'):
        return int(line.split()[1]) / 2**20
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def small_config(corpus: str):
  config = load_config(os.path.join(ROOT, 'configs', 'small.py'))
  config.data.path = corpus
  return config


def time_to_step(workdir: str, corpus: str, step: int) -> dict:
  """Runs train.py (configs/small.py) until it has run `step`; wall time and peak RSS to there.

  tests/paused_train.py (train.py with a pause hook) reports "paused after step k" once step k
  has run; it is then sent SIGTERM, so it checkpoints that step and exits (the next run resumes).
  """
  command = [sys.executable, 'tests/paused_train.py', str(step), '--config', 'configs/small.py', '--workdir', workdir,
             f'--config.data.path={corpus}', '--config.final_eval=False']
  start, children = time.time(), resource.getrusage(resource.RUSAGE_CHILDREN)
  process = subprocess.Popen(command, cwd=ROOT, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  lines = []
  for line in process.stderr:
    lines.append(line)
    if f'paused after step {step}' in line:
      seconds = time.time() - start
      process.send_signal(signal.SIGTERM)
      process.communicate(timeout=600)
      usage = resource.getrusage(resource.RUSAGE_CHILDREN)
      cpu = usage.ru_utime + usage.ru_stime - children.ru_utime - children.ru_stime
      return {'seconds': round(seconds, 1), 'cpu_seconds_incl_exit': round(cpu, 1),
              'peak_rss_gib': round(usage.ru_maxrss / 2**20, 2)}
  process.wait()
  raise SystemExit(f'train.py exited {process.returncode}:\n' + ''.join(lines)[-3000:])


def end_to_end(workdir: str, corpus: str) -> dict:
  """One train.py command on a fresh workdir from raw text to step 1, then the same command to step 2."""
  if os.path.exists(workdir):
    shutil.rmtree(workdir)  # the benchmark's own scratch folder under --dir
  results = {'first step': time_to_step(workdir, corpus, 1), 'rerun': time_to_step(workdir, corpus, 2)}
  for name, figures in results.items():
    print(f'end to end, {name}: {figures["seconds"]:7.1f} s wall, {figures["cpu_seconds_incl_exit"]} CPU s, '
          f'peak RSS {figures["peak_rss_gib"]:5.2f} GiB', flush=True)
  return results


def packing_speed(batches: TrainBatches, seconds: float) -> dict:
  """Target tokens/s of `next(batches)` pinned to CPU 0, over at least `seconds` of this process's
  CPU time (whole chunks packed on the way are included: that is the steady state). CPU time
  rather than wall time, because the machine may be shared; both are reported."""
  os.sched_setaffinity(0, {0})
  next(batches)
  tokens, n = 0, 0
  cpu, wall = time.process_time(), time.perf_counter()
  while time.process_time() - cpu < seconds:
    tokens += int(np.count_nonzero(next(batches).tgt_seg))
    n += 1
  cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
  os.sched_setaffinity(0, range(os.cpu_count()))
  result = {'target_tokens_per_cpu_sec': round(tokens / cpu), 'target_tokens_per_wall_sec': round(tokens / wall),
            'batches': n, 'cpu_seconds': round(cpu, 1), 'wall_seconds': round(wall, 1)}
  print(f'{"packing":>12}: {tokens / cpu / 1e6:.2f}M target tokens per CPU second on one core '
        f'({tokens / wall / 1e6:.2f}M per wall second; {n} batches)', flush=True)
  return result


def arrayrecord_compare(pairs, folder: str, limit: int, reads: int = 200_000) -> dict:
  """Writes the first `limit` of `pairs` as ArrayRecord (one record a pair) and times random
  reads through grain and gathers from the memory-mapped arrays, pinned to CPU 0."""
  pairs = pairs.select(np.arange(min(limit, len(pairs))))
  import grain.python as grain
  from array_record.python.array_record_module import ArrayRecordWriter
  path = os.path.join(folder, 'train.array_record')
  start = time.time()
  writer = ArrayRecordWriter(path, 'group_size:1')
  for i in range(len(pairs)):
    src, tgt = pairs.pair(i)
    writer.write(np.int32(len(src)).tobytes() + src.tobytes() + tgt.tobytes())
  writer.close()
  write_seconds = time.time() - start
  source = grain.ArrayRecordDataSource([path])
  indices = np.random.default_rng(0).integers(0, len(pairs), reads).tolist()
  os.sched_setaffinity(0, {0})
  start = time.process_time()
  for k in range(0, reads, 1024):
    for record in source.__getitems__(indices[k:k + 1024]):
      n = int(np.frombuffer(record[:4], np.int32)[0])
      tokens = np.frombuffer(record[4:], pairs.src_tokens.dtype)
      tokens[:n], tokens[n:]  # noqa: B018 (touch the pages)
  grain_rate = reads / (time.process_time() - start)
  start = time.process_time()
  for k in range(0, reads, 1024):  # what rows_to_batch does: one gather per side for 1024 pairs
    chunk = np.asarray(indices[k:k + 1024])
    for tokens, starts, lengths in ((pairs.src_tokens, pairs.src_start, pairs.src_len),
                                    (pairs.tgt_tokens, pairs.tgt_start, pairs.tgt_len)):
      n = lengths[chunk].astype(np.int64)
      within = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
      tokens[np.repeat(starts[chunk], n) + within]  # noqa: B018 (the gather is what is timed)
  mmap_rate = reads / (time.process_time() - start)
  os.sched_setaffinity(0, range(os.cpu_count()))
  result = {'write_seconds': round(write_seconds, 1), 'file_gib': round(os.path.getsize(path) / 2**30, 2),
            'grain_pairs_per_cpu_sec': round(grain_rate), 'mmap_gather_pairs_per_cpu_sec': round(mmap_rate)}
  print(f'{"arrayrecord":>12}: wrote {len(pairs)} records in {write_seconds:.1f} s; random reads on one core: '
        f'grain ArrayRecordDataSource {grain_rate:,.0f} pairs per CPU second, memory-mapped arrays gathered '
        f'1024 pairs at a time {mmap_rate:,.0f} pairs per CPU second',
        flush=True)
  os.remove(path)
  return result


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
  parser.add_argument('--pairs', type=int, required=True, help='N, training pairs in the corpus')
  parser.add_argument('--dir', required=True, help='holds corpus/ and workdir/ (not in the repository)')
  parser.add_argument('--multi30k', default=MULTI30K, help='folder with Multi30k train.en/de and val.en/de')
  parser.add_argument('--packing_seconds', type=float, default=20.0)
  parser.add_argument('--arrayrecord', action='store_true', help='also time ArrayRecord + grain reads')
  parser.add_argument('--arrayrecord_pairs', type=int, default=500_000,
                      help='pairs written as ArrayRecord for --arrayrecord (writing is ~0.3 ms a pair)')
  parser.add_argument('--skip_rerun', action='store_true')
  parser.add_argument('--end_to_end', action='store_true',
                      help='also time one train.py command from raw text to step 1 on a fresh workdir, and its rerun')
  args = parser.parse_args()
  import jax
  results = {'pairs': args.pairs, 'machine': machine(), 'load_at_start': os.getloadavg()}
  print(f'machine: {results["machine"]}; load average at start: {os.getloadavg()}', flush=True)
  with Stage('corpus', results):
    corpus = build_corpus(os.path.join(args.dir, 'corpus'), args.pairs, args.multi30k)
  if args.end_to_end:
    results['end to end'] = end_to_end(os.path.join(args.dir, 'workdir_end_to_end'), corpus)
  workdir = os.path.join(args.dir, 'workdir')
  config = small_config(corpus)
  with Stage('tokenizer', results):
    tokenizer = pipeline.get_tokenizer(config, workdir)
  with Stage('encode', results):
    pairs = pipeline.encoded_train_pairs(config, workdir, tokenizer)
  results['first step'] = time_to_step(workdir, corpus, 1)
  print(f'{"first step":>12}: {results["first step"]["seconds"]:7.1f} s   peak RSS '
        f'{results["first step"]["peak_rss_gib"]:5.2f} GiB (train.py from the cached corpus: start, '
        'prepare, compile, one step)', flush=True)
  stages = ('tokenizer', 'encode', 'first step')
  results['text_to_first_step_seconds'] = round(sum(results[s]['seconds'] for s in stages), 1)
  results['text_to_first_step_peak_rss_gib'] = max(results[s]['peak_rss_gib'] for s in stages)
  print(f'raw text -> first step: {results["text_to_first_step_seconds"]} s, peak RSS '
        f'{results["text_to_first_step_peak_rss_gib"]} GiB (building the corpus not included)', flush=True)
  if not args.skip_rerun:
    results['rerun'] = time_to_step(workdir, corpus, 2)
    print(f'{"rerun":>12}: {results["rerun"]["seconds"]:7.1f} s   peak RSS {results["rerun"]["peak_rss_gib"]:5.2f} '
          'GiB (train.py again: resumes from step 1, runs step 2)', flush=True)
  train, _ = pairs.filter_by_length(config.max_len)
  batches = TrainBatches(train, config.batch_size, config.max_len, config.seed)
  results['fill_first_chunk'] = round(batches.epoch_fill(), 4)
  results['target_tokens'] = int(pairs.tgt_len.sum())
  results['packing'] = packing_speed(batches, args.packing_seconds)
  if args.arrayrecord:
    results['arrayrecord'] = arrayrecord_compare(train, args.dir, args.arrayrecord_pairs)
  results['load_at_end'] = os.getloadavg()
  results['jax_devices'] = len(jax.devices())
  print(json.dumps(results))


if __name__ == '__main__':
  main()

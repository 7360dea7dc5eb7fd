"""`python -m t2t.sweep` / `t2t-sweep`: train every combination of config values under one budget, compare.

  python -m t2t.sweep --config configs/multi30k_en_de.py --workdir runs/sweep \\
      --vary model.positional=sinusoidal,learned --vary label_smoothing=0.0,0.1 --seeds 0,1 --steps 1000
  python -m t2t.sweep ... --minutes 20 --parallel 2     # equal wall-clock budget, 2 runs at once
  python -m t2t.sweep ... --design one_at_a_time         # the config, then one field changed per variant

`--design grid` (the default) runs every combination of the --vary values; `--design one_at_a_time`
is the ablation design: the config as it is (variant `baseline`), then each --vary value that differs
from the config's own, changing that one field only (k fields of v values: 1 + k(v-1) variants, not v^k).

Each run is an ordinary train.py run in <workdir>/<name>, its name the varied values and the seed
(`model.positional=learned+seed=1`). `--steps N` sets config.num_train_steps; `--minutes M` gives
every run M minutes of train.py wall time (start-up, data preparation and compilation included)
and then stops it as SIGTERM does (checkpoint, exit); config.num_train_steps stays the schedule's
horizon and the most steps a run may take. `--parallel K` runs K at once, each pinned to one core
with taskset. `--report` trains nothing and writes the results of the runs scored so far.
`--set field=value` changes a field for every run. Rerunning the same command
resumes (refused, naming the field, when a run's folder was trained with values the config file or
--set no longer give): runs with scores are skipped, an interrupted run is resumed by train.py, exactly (the
trainer's resume), and its budget counts the time already spent.

Each trained run's latest checkpoint is then scored on the validation split only (the test split
too with --test): BLEU greedy and beam config.final_beam_size (alpha config.alpha), chrF of the beam
output. Written to the workdir:
  results.md      one row per run, then one mean ± sd row per variant (over its seeds)
  results.json    the same numbers
  results.png     validation BLEU (beam) per variant: mean, sd bar and one dot per seed
  <name>/sweep_run.json, <name>/sweep.log   the run's record (budget, time, scores) and its output
tokens/s is the median of the run's logged training rates (metrics.jsonl), the first log (with
compilation) left out when there are more.
"""

import dataclasses
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from t2t import cli
from t2t.config import changed_fields, load_config_file
from t2t.config import validate as validate_config
from t2t.errors import UserError
from t2t.files import write_atomic
from t2t.workdir import read_train_config

RECORD = 'sweep_run.json'
LOG = 'sweep.log'
RESULTS_MD, RESULTS_JSON, RESULTS_PLOT = 'results.md', 'results.json', 'results.png'
# train.py, as the installed t2t-train runs it (works from a checkout and from an installed package)
TRAIN = ['-c', 'from t2t.commands import train; train.run()']
SCORE = ['-m', 't2t.sweep', '--score_one']
METRICS = ('bleu_greedy', 'bleu_beam', 'chrf', 'test_bleu', 'params', 'tokens_per_sec', 'wall_seconds')


@dataclasses.dataclass(frozen=True)
class Run:
  """One combination: the varied values (field -> value, in --vary order) and the seed."""
  values: tuple[tuple[str, object], ...]
  seed: int
  config: object = dataclasses.field(default=None, compare=False)  # the resolved train.py config

  @property
  def name(self) -> str:
    return '+'.join([f'{field}={value}' for field, value in self.values] + [f'seed={self.seed}'])

  @property
  def variant(self) -> str:
    return '+'.join(f'{field}={value}' for field, value in self.values) or 'baseline'

  def overrides(self) -> list[tuple[str, object]]:
    return [*self.values, ('seed', self.seed)]


# --- the command line --------------------------------------------------------------------------

def lookup(config, field: str, config_path: str):
  """config.<field> (dotted), or a one-line UserError naming what the group does have."""
  group, parts = config, field.split('.')
  for i, part in enumerate(parts):
    if not hasattr(group, 'keys') or part not in group:
      where = 'config.' + '.'.join(parts[:i]) if i else 'config'
      known = ', '.join(sorted(group.keys())) if hasattr(group, 'keys') else 'no fields'
      raise UserError(f'{config_path} has no config.{field} ({where} has: {known}); check the spelling, '
                      'or use a t2t that has this field')
    group = group[part]
  return group


def parse_value(text: str, current, field: str):
  """`text` as the type of the config's current value of `field` (bool, int, float or str)."""
  try:
    if isinstance(current, bool):
      if text.lower() not in ('true', 'false', '1', '0'):
        raise ValueError
      return text.lower() in ('true', '1')
    if isinstance(current, int):
      return int(text)
    if isinstance(current, float):
      return float(text)
    if isinstance(current, str):
      return text
  except ValueError:
    pass
  raise UserError(f'config.{field}={text!r}: use a {type(current).__name__} like its current value '
                  f'{current!r}')


def parse_assignments(specs, config, config_path: str, flag: str, single: bool) -> list[tuple[str, list]]:
  """['field=a,b', ...] -> [(field, [values])], each field checked against the config."""
  parsed = []
  for spec in specs:
    field, sep, text = spec.partition('=')
    if not sep or not field or not text:
      example = 'model.dropout=0.1' if single else 'model.dropout=0.1,0.3'
      raise UserError(f'{flag} {spec!r}: use {flag} field=value{"" if single else ",value,..."}, '
                      f'e.g. {flag} {example}')
    current = lookup(config, field, config_path)
    texts = [text] if single else text.split(',')
    parsed.append((field, [parse_value(t, current, field) for t in texts]))
  return parsed


def set_field(config, field: str, value) -> None:
  *groups, last = field.split('.')
  for group in groups:
    config = config[group]
  config[last] = value


def combinations(varied: list[tuple[str, list]], config, design: str) -> list[tuple[tuple[str, object], ...]]:
  """The varied values of each variant: every combination (grid), or the config then one change each."""
  if design == 'grid':
    return [tuple(zip([f for f, _ in varied], combo)) for combo in itertools.product(*[v for _, v in varied])]
  changes = [((field, value),) for field, options in varied for value in dict.fromkeys(options)
             if value != lookup(config, field, '')]
  return [(), *changes]


def plan(values, config_path: str) -> tuple[list[tuple[str, object]], list[Run], dict, dict]:
  """(the --set changes, every Run, the budget, the config's value of each varied field), all checked
  before anything runs."""
  config = load_config_file(config_path)
  fixed = parse_assignments(values.set, config, config_path, '--set', single=True)
  for field, (value,) in fixed:
    set_field(config, field, value)
  varied = parse_assignments(values.vary, config, config_path, '--vary', single=False)
  if len({field for field, _ in varied}) != len(varied):
    raise UserError('--vary names a field twice: give each field once, with all its values')
  try:
    seeds = [int(s) for s in values.seeds.split(',')]
  except ValueError:
    raise UserError(f'--seeds {values.seeds!r}: use integers, e.g. --seeds 0,1') from None
  if (values.steps is None) == (values.minutes is None):
    raise UserError('give exactly one budget: --steps N (steps per run) or --minutes M (wall time per run)')
  if values.steps is not None and values.steps < 1 or values.minutes is not None and values.minutes <= 0:
    raise UserError('--steps/--minutes: use a budget > 0')
  budget = {'steps': values.steps} if values.steps is not None else {'minutes': values.minutes}
  runs = []
  for combo in combinations(varied, config, values.design):
    for seed in seeds:  # every combination is a valid config, or nothing starts
      run, candidate = Run(combo, seed), config.copy_and_resolve_references()
      for field, value in run.overrides():
        set_field(candidate, field, value)
      if values.steps is not None:
        candidate.num_train_steps = values.steps
      candidate.final_eval = False
      try:
        validate_config(candidate, device_count=1)
      except UserError as e:
        raise UserError(f'{run.name}: {e}') from None
      runs.append(Run(combo, seed, candidate))
  baseline = {field: lookup(config, field, config_path) for field, _ in varied}
  return [(field, value) for field, (value,) in fixed], runs, budget, baseline


PLACE_FIELDS = ('data.path', 'data.tfds_data_dir')  # where the data lies, not what it is: may move


def check_unchanged(workdir: str, runs: list[Run]) -> None:
  """Refuses a rerun whose runs would differ from what their folders were trained with (the config
  file or a --set changed since): skipping or resuming them would mix two configs in one table."""
  for run in runs:
    folder = run_dir(workdir, run)
    saved = read_train_config(folder)
    if saved is None:
      continue
    changed = [c for c in changed_fields(saved, run.config) if c[0] not in PLACE_FIELDS]
    if changed:
      shown = ', '.join(f'{f} {old!r} -> {new!r}' for f, old, new in changed[:3])
      raise UserError(f'{folder} was trained with another config ({shown}{", ..." if len(changed) > 3 else ""}): '
                      'the config file or a --set changed since; give the old values with --set, or use a '
                      'new --workdir')


def train_command(values, run: Run, fixed: list, budget: dict, core: int | None) -> list[str]:
  """The train.py command of one run (pinned to `core` with taskset when given)."""
  overrides = [*fixed, *run.overrides(), ('final_eval', False)]
  if 'steps' in budget:
    overrides.append(('num_train_steps', budget['steps']))
  command = [sys.executable, *TRAIN, '--config', values.config, '--workdir', run_dir(values.workdir, run),
             *[f'--config.{field}={value}' for field, value in overrides]]
  return pinned(command, core)


def pinned(command: list[str], core: int | None) -> list[str]:
  return command if core is None else ['taskset', '-c', str(core), *command]


def run_dir(workdir: str, run: Run) -> str:
  return os.path.join(workdir, run.name)


# --- running --------------------------------------------------------------------------------

class Sweep:
  """Runs the planned runs, K at a time, and keeps each run's record current."""

  def __init__(self, values, fixed: list, runs: list[Run], budget: dict):
    self.values, self.fixed, self.runs, self.budget = values, fixed, runs, budget
    self.cores: list[int] | None = None
    if values.parallel > 1:
      available = sorted(os.sched_getaffinity(0))
      if values.parallel > len(available):
        raise UserError(f'--parallel {values.parallel}: this process may use {len(available)} cores; '
                        'use at most that many')
      if shutil.which('taskset') is None:
        raise UserError('--parallel > 1 pins each run to a core with taskset, which is not installed '
                        '(util-linux): install it or use --parallel 1')
      self.cores = available[:values.parallel]
    self.free = list(self.cores or [])
    self.lock = threading.Lock()
    self.processes: set[subprocess.Popen] = set()
    self.stopping = False

  def run_all(self) -> list[dict]:
    with ThreadPoolExecutor(max_workers=self.values.parallel) as pool:
      try:
        records = list(pool.map(self.one, range(len(self.runs))))
      except BaseException:
        self.stop()
        raise
    return records

  def stop(self) -> None:
    """Asks every running train.py to checkpoint and stop (SIGTERM), as the sweep itself stops."""
    self.stopping = True
    with self.lock:
      for process in self.processes:
        if process.poll() is None:
          process.send_signal(signal.SIGTERM)

  def one(self, index: int) -> dict:
    run = self.runs[index]
    folder = run_dir(self.values.workdir, run)
    os.makedirs(folder, exist_ok=True)
    record = read_record(folder)
    if record.get('budget') != self.budget or record.get('status') == 'failed':
      record = {'name': run.name, 'values': dict(run.values), 'seed': run.seed, 'budget': self.budget,
                'status': 'new', 'wall_seconds': record.get('wall_seconds', 0.0)}
    if record['status'] == 'scored' and record.get('test') != self.values.test:
      record['status'] = 'trained'  # trained as asked; scored without (or with) the test split
    progress = f'[{index + 1}/{len(self.runs)}] {run.name}'
    if record['status'] == 'scored':
      print(f'{progress}: done before, skipped', file=sys.stderr)
      return record
    if self.stopping:
      return record
    core = self.take_core()
    try:
      if record['status'] != 'trained':
        try:
          self.train(run, folder, record, core)
        except UserError as e:  # this run failed: the others go on, the sweep reports it at the end
          record.update(status='failed', error=str(e))
          write_record(folder, record)
          print(f'{progress}: failed: {e}', file=sys.stderr)
          return record
      if self.stopping:
        return record
      print(f'{progress}: trained ({record["wall_seconds"]:.0f} s); scoring', file=sys.stderr)
      record.update(self.score(folder, core), status='scored', test=self.values.test)
      write_record(folder, record)
      print(f'{progress}: val BLEU greedy {record["bleu_greedy"]:.2f}, beam {record["bleu_beam"]:.2f}',
            file=sys.stderr)
    finally:
      self.give_core(core)
    return record

  def take_core(self) -> int | None:
    with self.lock:
      return self.free.pop(0) if self.cores else None

  def give_core(self, core: int | None) -> None:
    if core is not None:
      with self.lock:
        self.free.append(core)

  def train(self, run: Run, folder: str, record: dict, core: int | None) -> None:
    """One train.py invocation within what is left of the budget; updates `record` as it goes."""
    deadline = None
    if 'minutes' in self.budget:
      left = 60 * self.budget['minutes'] - record['wall_seconds']
      if left <= 0:
        record['status'] = 'trained'
        write_record(folder, record)
        return
      deadline = time.monotonic() + left
    command = train_command(self.values, run, self.fixed, self.budget, core)
    with open(os.path.join(folder, LOG), 'a', encoding='utf-8') as log:
      log.write(f'$ {" ".join(command)}\n')
      log.flush()
      process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
      with self.lock:
        self.processes.add(process)
      started, spent_before = time.monotonic(), record['wall_seconds']
      stopped_by_budget = False
      while process.poll() is None:
        try:
          process.wait(timeout=5)
        except subprocess.TimeoutExpired:
          pass
        record['wall_seconds'] = spent_before + time.monotonic() - started
        write_record(folder, record)  # a killed sweep loses at most 5 s of the budget's count
        if deadline is not None and not stopped_by_budget and time.monotonic() >= deadline:
          process.send_signal(signal.SIGTERM)  # the trainer checkpoints at the end of this step
          stopped_by_budget = True
      with self.lock:
        self.processes.discard(process)
    record['wall_seconds'] = spent_before + time.monotonic() - started
    code = process.returncode
    if code == 0 or (stopped_by_budget and code == 128 + signal.SIGTERM):
      record['status'] = 'trained'
    elif not self.stopping:
      write_record(folder, record)
      raise UserError(f'{run.name}: train.py exited {code}; see {os.path.join(folder, LOG)}, fix it and rerun '
                      'the sweep (finished runs are kept)')
    write_record(folder, record)

  def score(self, folder: str, core: int | None) -> dict:
    command = pinned([sys.executable, *SCORE, folder, *(['--test'] if self.values.test else [])], core)
    with open(os.path.join(folder, LOG), 'a', encoding='utf-8') as log:
      result = subprocess.run(command, stdout=subprocess.PIPE, stderr=log, text=True, check=False)
    if result.returncode != 0:
      raise UserError(f'scoring {folder} failed (exit {result.returncode}); see {os.path.join(folder, LOG)}')
    return json.loads(result.stdout.strip().splitlines()[-1])


def read_record(folder: str) -> dict:
  try:
    with open(os.path.join(folder, RECORD), encoding='utf-8') as f:
      return json.load(f)
  except (OSError, ValueError):
    return {}


def write_record(folder: str, record: dict) -> None:
  write_atomic(os.path.join(folder, RECORD), (json.dumps(record, indent=1, sort_keys=True) + '\n').encode())


# --- scoring one run (in its own process: `python -m t2t.sweep --score_one DIR`) --------------------

def score_run(folder: str, test: bool) -> dict:
  """Validation BLEU greedy and beam, chrF, parameters and tokens/s of a trained run's latest checkpoint."""
  import jax  # only this scoring process and train.py use JAX, never the sweep's own process
  import ml_collections
  import numpy as np

  from t2t import evaluation, metrics
  from t2t import workdir as wd
  from t2t.data import pipeline
  from t2t.inference import Translator
  from t2t.search_options import SearchOptions

  config = ml_collections.ConfigDict(wd.require_train_config(folder))
  model_config, params, tokenizer = wd.load_model(folder, chosen=False)
  translator = Translator(model_config, params, tokenizer, config.decode_batch_size)
  tokenize = evaluation.bleu_tokenize(folder, None)

  def search(beam_size):
    return SearchOptions.beam_or_greedy(beam_size, config.alpha, config.decode_max_len_a, config.decode_max_len_b)

  def bleu_and_chrf(split, options):
    pairs = pipeline.load_pairs(config.data, split)
    hypotheses = translator.translate([s for s, _ in pairs], options)
    return metrics.corpus_scores(hypotheses, [t for _, t in pairs], tokenize)

  beam = config.final_beam_size
  greedy, beamed = bleu_and_chrf(config.data.eval_split, search(1)), bleu_and_chrf(config.data.eval_split, search(beam))
  scores: dict = {'bleu_greedy': greedy.bleu, 'bleu_beam': beamed.bleu, 'chrf': beamed.chrf, 'beam_size': beam,
                  'params': int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(params)))}
  if test:
    scores['test_bleu'] = bleu_and_chrf(config.data.test_split, search(beam)).bleu
  steps, rates = [], []
  for line in open(wd.path(folder, wd.METRICS), encoding='utf-8'):
    record = json.loads(line)
    if record.get('split') == 'train':
      steps.append(record['step'])
      rates.append(record['tokens_per_sec'])
  scores['steps'] = max(steps, default=0)
  scores['tokens_per_sec'] = statistics.median(rates[1:] if len(rates) > 1 else rates) if rates else None
  return scores


# --- results ---------------------------------------------------------------------------------

def summarize(records: list[dict]) -> list[dict]:
  """One row per variant: mean and sd (over its seeds, 0 for one seed) of every metric."""
  variants: dict[str, list[dict]] = {}
  for record in records:
    variants.setdefault(Run(tuple(record['values'].items()), 0).variant, []).append(record)
  rows = []
  for variant, group in variants.items():
    row: dict = {'variant': variant, 'values': group[0]['values'], 'seeds': [r['seed'] for r in group]}
    for metric in METRICS:
      numbers = [r[metric] for r in group if r.get(metric) is not None]
      if numbers:
        row[metric] = {'mean': statistics.fmean(numbers),
                       'sd': statistics.stdev(numbers) if len(numbers) > 1 else 0.0}
    rows.append(row)
  return rows


def _number(value, metric: str) -> str:
  if value is None:
    return '-'
  if metric == 'params':
    return f'{value / 1e6:.2f}M'
  return f'{value:.0f}' if metric in ('tokens_per_sec', 'wall_seconds') else f'{value:.2f}'


def results_markdown(records: list[dict], variants: list[dict], budget: dict, baseline: dict) -> str:
  fields = list(baseline)
  metrics = [m for m in METRICS if any(r.get(m) is not None for r in records)]
  beam = records[0].get('beam_size', '') if records else ''
  titles = {'bleu_greedy': 'val BLEU greedy', 'bleu_beam': f'val BLEU beam {beam}', 'chrf': f'val chrF (beam {beam})',
            'test_bleu': f'test BLEU beam {beam}', 'params': 'parameters', 'tokens_per_sec': 'tokens/s',
            'wall_seconds': 'train wall s'}
  budget_text = f'{budget["steps"]} steps' if 'steps' in budget else f'{budget["minutes"]:g} minutes of train.py wall time'
  lines = [f'# Sweep results ({budget_text} per run)', '',
           '| run | ' + ' | '.join(fields) + ' | seed | steps | ' + ' | '.join(titles[m] for m in metrics) + ' |',
           '|' + '---|' * (len(fields) + 3 + len(metrics))]
  for r in records:
    lines.append(f'| {r["name"]} | ' + ' | '.join(str(r['values'].get(f, baseline[f])) for f in fields)
                 + f' | {r["seed"]} | {r.get("steps", "-")} | ' + ' | '.join(_number(r.get(m), m) for m in metrics) + ' |')
  lines += ['', 'Per variant: mean ± sd over its seeds (sample sd; 0 with one seed).', '',
            '| variant | seeds | ' + ' | '.join(titles[m] for m in metrics) + ' |',
            '|' + '---|' * (2 + len(metrics))]
  for v in variants:
    cells = [f'{_number(v[m]["mean"], m)} ± {_number(v[m]["sd"], m)}' if m in v else '-' for m in metrics]
    lines.append(f'| {v["variant"]} | {",".join(map(str, v["seeds"]))} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def plot(records: list[dict], variants: list[dict], path: str) -> None:
  """Validation BLEU (beam) per variant: a bar at the mean, an sd error bar, a dot per seed."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  scored = [v for v in variants if 'bleu_beam' in v]
  figure, axes = plt.subplots(figsize=(7, 0.5 * len(scored) + 1.5))
  for y, v in enumerate(scored):
    axes.barh(y, v['bleu_beam']['mean'], xerr=v['bleu_beam']['sd'], color='#9ecae1', capsize=3)
    seeds = [r['bleu_beam'] for r in records if r['values'] == v['values'] and r.get('bleu_beam') is not None]
    axes.plot(seeds, [y] * len(seeds), 'o', color='#08519c', markersize=4)
  axes.set_yticks(range(len(scored)), [v['variant'] for v in scored], fontsize=8)
  axes.set_xlabel(f'validation BLEU (beam {records[0].get("beam_size", "")})' if records else 'validation BLEU')
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)


def write_results(workdir: str, records: list[dict], budget: dict, baseline: dict) -> None:
  """`baseline`: the config's value of each varied field (a run that does not change a field has it)."""
  variants = summarize(records)
  write_atomic(os.path.join(workdir, RESULTS_JSON),
               (json.dumps({'budget': budget, 'baseline': baseline, 'runs': records, 'variants': variants},
                           indent=1) + '\n').encode())
  write_atomic(os.path.join(workdir, RESULTS_MD), results_markdown(records, variants, budget, baseline).encode())
  plot(records, variants, os.path.join(workdir, RESULTS_PLOT))


# --- entry point ------------------------------------------------------------------------------

def define(values) -> None:
  from absl import flags
  flags.DEFINE_string('config', None, 'Training config file (configs/*.py) every run starts from.', flag_values=values)
  flags.DEFINE_string('workdir', None, 'Folder of the sweep: one train.py workdir per run, and the results.',
                      flag_values=values)
  flags.DEFINE_multi_string('vary', [], 'field=a,b,c: a config field (dotted, e.g. model.norm) and its values; '
                            'repeat for more fields (every combination runs).', flag_values=values)
  flags.DEFINE_multi_string('set', [], 'field=value: a config change for every run.', flag_values=values)
  flags.DEFINE_enum('design', 'grid', ['grid', 'one_at_a_time'], 'grid: every combination of the --vary '
                    'values; one_at_a_time: the config (baseline), then one --vary value changed per variant.',
                    flag_values=values)
  flags.DEFINE_string('seeds', '0', 'Comma-separated config.seed values, each run per variant.', flag_values=values)
  flags.DEFINE_integer('steps', None, 'Budget: config.num_train_steps of every run.', flag_values=values)
  flags.DEFINE_float('minutes', None, 'Budget: train.py wall-clock minutes of every run.', flag_values=values)
  flags.DEFINE_integer('parallel', 1, 'Runs at once, each pinned to one core (taskset) when > 1.',
                       lower_bound=1, flag_values=values)
  flags.DEFINE_bool('test', False, 'Also score the test split (beam); by default it is never decoded.',
                    flag_values=values)
  flags.DEFINE_bool('report', False, 'Train and score nothing: write the results of the runs scored so far '
                    '(e.g. while the sweep runs, or after it was stopped).', flag_values=values)
  flags.DEFINE_string('score_one', None, 'Internal: score one trained run folder, print JSON.', flag_values=values)


def main(values, args) -> None:
  if args:
    raise UserError(f'unexpected argument {args[0]!r} (see python -m t2t.sweep --help)')
  if values.score_one:
    print(json.dumps(score_run(values.score_one, values.test)))
    return
  if not values.config or not values.workdir:
    raise UserError('--config and --workdir are required (see python -m t2t.sweep --help)')
  fixed, runs, budget, baseline = plan(values, values.config)
  check_unchanged(values.workdir, runs)
  if values.report:
    records = [r for r in (read_record(run_dir(values.workdir, run)) for run in runs)
               if r.get('status') == 'scored' and r.get('budget') == budget]
    if not records:
      raise UserError(f'{values.workdir} has no scored run of this sweep yet: run it without --report first')
    write_results(values.workdir, records, budget, baseline)
    print(f'wrote {os.path.join(values.workdir, RESULTS_MD)} ({len(records)} of {len(runs)} runs scored)',
          file=sys.stderr)
    return
  sweep = Sweep(values, fixed, runs, budget)
  os.makedirs(values.workdir, exist_ok=True)
  print(f'sweep: {len(runs)} runs in {values.workdir}, {values.parallel} at a time', file=sys.stderr)
  records = sweep.run_all()
  write_results(values.workdir, records, budget, baseline)
  print(f'wrote {os.path.join(values.workdir, RESULTS_MD)}, {RESULTS_JSON} and {RESULTS_PLOT}', file=sys.stderr)
  failed = [r for r in records if r['status'] == 'failed']
  if failed:
    raise UserError(f'{len(failed)} of {len(records)} runs failed ({failed[0]["error"]}): fix and rerun the same '
                    'command (the others are kept)')


def run(argv=None) -> None:
  cli.run_tool('python -m t2t.sweep', __doc__.splitlines()[0], define, main, argv)


if __name__ == '__main__':
  run()

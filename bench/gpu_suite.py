"""Everything t2t claims on a GPU, in one command: environment, correctness, training speed, Multi30k.

  bash bench/gpu_suite.sh [--cpu-smoke] [--out DIR] [--only environment,training] [--multi30k DIR]

Steps (each a child process with its own time limit, so one failing or hanging step is recorded
and the next one runs):
  1 environment   device, nvidia-smi, jax/jaxlib/flax/optax/orbax/torch versions, jax.pmap on the device
  2 correctness   the invariant tests of tests/test_model.py, test_search.py, test_train.py under
                  pytest on the device, then bfloat16 vs float32 logits of one model on one batch
  3 training      bench/train_speed.py for configs/base.py and big.py shapes, float32 and bfloat16,
                  ~25k target tokens per step (halved until it fits), against the PyTorch reference
  4 multi30k      train.py --config configs/multi30k_en_de_gpu.py, its test2016 sacreBLEU (with
                  signature) from final_eval.json, bench/decode_speed.py greedy / beam 4 at 128
                  sentences per batch, and CTranslate2 on the GPU when it loads
Results go to --out, else $OUT, else ./gpu_results/: summary.md, results.json and one log per step
(logs/<step>.log): at most 8 files, as the device machine returns. The exit status is 0 only when
every step passed; a failure names its step on stderr. `--cpu-smoke` runs every step on the CPU
with tiny shapes and a few steps (configs/tiny.py, a Multi30k-shaped corpus from the built-in
grammar), for tests/test_gpu_suite.py.
"""

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

STEPS = ('environment', 'correctness', 'training', 'multi30k')
TITLES = {'environment': '1 Environment', 'correctness': '2 Correctness on the device',
          'training': '3 Training throughput', 'multi30k': '4 Multi30k en->de: train, BLEU, decode speed'}
# Seconds per step on one H100 (sum 540: the suite ends inside one 600 s device call) and, generous
# for a shared 2-core machine, on the CPU.
LIMITS = {'environment': (45, 240), 'correctness': (110, 600), 'training': (165, 480), 'multi30k': (220, 720)}
# The invariants (issue 10): cached decode == teacher forcing, padding and future-token invariance,
# packing, beam search on hand-made models, save/restore, pmap == one device, bf16 params.
INVARIANTS = ('future or padding or cached or packed or bfloat16 or hand_made or brute_force or '
              'beam_size_one or save_restore or two_devices or overfits or beams_sharing')
SMOKE_INVARIANTS = 'cached_decoding or beam_search_on_hand_made'  # the rest run in make test anyway
BF16_TOLERANCE = 0.05  # relative RMS difference of bfloat16 vs float32 logits


# --- the steps, each run in a child process: `gpu_suite.py --step NAME`, result as JSON ---

def step_environment(args) -> dict:
  import jax
  import jax.numpy as jnp
  import numpy as np
  out = {'python': sys.version.split()[0], 'jax': jax.__version__}
  for name in ('jaxlib', 'flax', 'optax', 'orbax.checkpoint', 'numpy', 'sentencepiece', 'sacrebleu', 'torch',
               'ml_collections', 'tensorboardX', 'ctranslate2'):
    try:
      out[name] = getattr(__import__(name, fromlist=['_']), '__version__', 'installed')
    except Exception as e:  # noqa: BLE001 (a missing optional package is a figure, not a failure)
      out[name] = f'missing ({type(e).__name__})'
  devices = jax.devices()
  out.update(platform=devices[0].platform, device_kind=devices[0].device_kind, devices=len(devices))
  try:
    out['nvidia_smi'] = subprocess.run(['nvidia-smi', '--query-gpu=name,memory.total,driver_version,clocks.max.sm',
                                        '--format=csv,noheader'], capture_output=True, text=True,
                                       timeout=20).stdout.strip()
  except (OSError, subprocess.TimeoutExpired) as e:
    out['nvidia_smi'] = f'not run ({type(e).__name__})'
  try:
    import torch
    out['torch_cuda'] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA device'
  except ImportError:
    pass
  n = jax.local_device_count()
  summed = jax.pmap(lambda x: jax.lax.psum(x, 'i'), axis_name='i')(jnp.arange(n, dtype=jnp.float32))
  out['pmap_platform'] = next(iter(summed.devices())).platform
  out['pmap_ok'] = bool(np.allclose(np.asarray(summed), n * (n - 1) / 2))
  want = 'cpu' if args.cpu_smoke else 'gpu'
  if out['platform'] != want or out['pmap_platform'] != want or not out['pmap_ok']:
    raise RuntimeError(f"jax runs on {out['platform']} (pmap on {out['pmap_platform']}, sum ok "
                       f"{out['pmap_ok']}); this mode needs {want}")
  return out


def bf16_agreement(config_path: str, batch_tokens: int) -> dict:
  """float32 vs bfloat16 compute logits of one initialised model on one synthetic packed batch."""
  import jax
  import numpy as np

  from bench import common
  from t2t.config import ModelConfig
  from t2t.model import Transformer, init_params
  config = common.load_config(config_path)
  full = ModelConfig.from_config(config.model, config.vocab_size)
  half = ModelConfig(**{**full.__dict__, 'dtype': 'bfloat16'})
  b = common.synthetic_batch(max(1, batch_tokens // config.max_len), config.max_len, config.vocab_size, seed=3)
  params = init_params(full, jax.random.PRNGKey(0))
  inputs = (b.src, b.src_pos, b.src_seg, b.tgt_in, b.tgt_pos, b.tgt_seg)
  real = b.tgt_seg > 0
  f32 = np.asarray(jax.jit(Transformer(full).apply)({'params': params}, *inputs))[real]
  b16 = np.asarray(jax.jit(Transformer(half).apply)({'params': params}, *inputs))[real]
  relative = float(np.sqrt(np.mean((b16 - f32) ** 2) / np.mean(f32 ** 2)))
  out = {'config': config_path, 'tokens': int(real.sum()), 'relative_rms': relative,
         'max_abs': float(np.abs(b16 - f32).max()), 'top1_agreement': float(np.mean(b16.argmax(-1) == f32.argmax(-1))),
         'tolerance': BF16_TOLERANCE}
  if not relative <= BF16_TOLERANCE:
    raise RuntimeError(f'bfloat16 logits differ from float32 by {relative:.4f} relative RMS > {BF16_TOLERANCE}')
  return out


def streamed(command: list[str], env: dict) -> tuple[list[str], int]:
  """Runs `command` in the checkout, its output going on to this step's log as it comes:
  (its non-empty output lines, exit status)."""
  process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  assert process.stdout is not None
  lines = []
  for line in process.stdout:
    print(line, end='', flush=True)
    if line.strip():
      lines.append(line.strip())
  return lines, process.wait()


def step_correctness(args) -> dict:
  tests = ['tests/test_model.py', 'tests/test_search.py', 'tests/test_train.py']
  select = SMOKE_INVARIANTS if args.cpu_smoke else INVARIANTS
  command = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-k', select, *tests]
  env = dict(os.environ)
  if not args.cpu_smoke:
    env.pop('XLA_FLAGS', None)  # tests/conftest.py adds 2 host devices; the GPU stays the default backend
  lines, code = streamed(command, env)
  out = {'pytest': ' '.join(command[1:]), 'pytest_result': lines[-1] if lines else '', 'pytest_exit': code}
  out['bf16_vs_f32'] = bf16_agreement('configs/tiny.py' if args.cpu_smoke else 'configs/base.py',
                                      256 if args.cpu_smoke else 8192)
  if code != 0:
    raise RuntimeError(f'pytest exited {code}: {out["pytest_result"]}')
  return out


def step_training(args) -> dict:
  from bench import train_speed
  configs = ['configs/tiny.py'] if args.cpu_smoke else ['configs/base.py', 'configs/big.py']
  dtypes = ('bfloat16',) if args.cpu_smoke else ('float32', 'bfloat16')
  tokens, steps = (256, ['--steps', '2', '--warmup', '1']) if args.cpu_smoke else (25_000, ['--steps', '20'])
  runs, failed = [], []
  for config in configs:
    for dtype in dtypes:
      batch_tokens = tokens
      while True:
        flags = ['--config', config, '--dtype', dtype, '--synthetic', '--batch_tokens', str(batch_tokens), *steps]
        try:
          runs.append(train_speed.measure(train_speed.parser().parse_args(flags)))
          break
        except Exception as e:  # noqa: BLE001 (out of memory: the largest batch that fits, else recorded)
          traceback.print_exc()
          if ('RESOURCE_EXHAUSTED' in str(e) or 'out of memory' in str(e).lower()) and batch_tokens > 2048:
            batch_tokens //= 2
            continue
          failed.append(f'{config} {dtype}: {type(e).__name__}: {str(e).splitlines()[0][:200]}')
          break
  if failed:
    raise RuntimeError('; '.join(failed))
  return {'runs': runs}


def multi30k_data(args, scratch: str) -> str:
  """The Multi30k folder: --multi30k, else (smoke) a small corpus of the built-in grammar."""
  if args.multi30k or not args.cpu_smoke:
    path = args.multi30k or os.environ.get('T2T_MULTI30K', os.path.join(ROOT, '.data', 'multi30k'))
    missing = [f for f in ('train.en', 'train.de', 'val.en', 'val.de', 'test2016.en', 'test2016.de')
               if not os.path.exists(os.path.join(path, f))]
    if missing:
      raise RuntimeError(f'{path} lacks {", ".join(missing)}: copy Multi30k there (docs/GPU.md) or pass --multi30k DIR')
    return path
  from t2t import demo_corpus
  path = os.path.join(scratch, 'multi30k')
  os.makedirs(path, exist_ok=True)
  for split, name, n in (('train', 'train', 400), ('val', 'val', 16), ('test', 'test2016', 24)):
    pairs = demo_corpus.load_builtin(split)[:n]
    for side, lang in ((0, 'en'), (1, 'de')):
      with open(os.path.join(path, f'{name}.{lang}'), 'w', encoding='utf-8') as f:
        f.writelines(p[side] + '\n' for p in pairs)
  return path


SMOKE_TRAIN = ['--config.vocab_size=200', '--config.batch_size=8', '--config.num_train_steps=4',
               '--config.warmup_steps=1', '--config.log_every_steps=2', '--config.eval_every_steps=4',
               '--config.checkpoint_every_steps=2', '--config.keep_checkpoints=2', '--config.model.d_model=32',
               '--config.model.num_heads=2', '--config.model.num_encoder_layers=1',
               '--config.model.num_decoder_layers=1', '--config.model.d_ff=64', '--config.decode_batch_size=16']


def step_multi30k(args) -> dict:
  from bench import decode_speed
  scratch = tempfile.mkdtemp(prefix='t2t_gpu_suite_')
  data = multi30k_data(args, scratch)
  workdir = os.path.join(scratch, 'm30k_en_de')
  command = [sys.executable, 'train.py', '--config', 'configs/multi30k_en_de_gpu.py', '--workdir', workdir,
             *(SMOKE_TRAIN if args.cpu_smoke else [])]
  start = time.perf_counter()
  lines, code = streamed(command, {**os.environ, 'T2T_MULTI30K': data})
  seconds = time.perf_counter() - start
  if code != 0:
    raise RuntimeError(f'train.py exited {code}: {(lines or [""])[-1][:300]}')
  with open(os.path.join(workdir, 'final_eval.json')) as f:
    final = json.load(f)
  out = {'train_command': ' '.join(command[1:]), 'train_and_final_eval_s': seconds,
         'final_eval_s': final.get('seconds'), 'test_split': final.get('test_split'), 'bleu': final.get('bleu'),
         'bleu_line': final.get('bleu_line'), 'bleu_signature': final.get('bleu_signature'),
         'chosen': final.get('chosen')}
  flags = ['--workdir', workdir, '--batch_sentences', '8' if args.cpu_smoke else '128']
  out['decode'] = decode_speed.measure(decode_speed.parser().parse_args(flags))
  out['ct2'] = ct2_beam4(workdir, 8 if args.cpu_smoke else 128, 'cpu' if args.cpu_smoke else 'cuda')
  return out


def ct2_beam4(workdir: str, batch_sentences: int, device: str) -> dict:
  """CTranslate2 beam 4 on the same model and test set, or why it did not run (not a failure)."""
  try:
    from bench import decode_speed
    from t2t import evaluation
    from t2t import workdir as wd
    from t2t.inference import SearchOptions
    _, _, tokenizer = wd.load_model(workdir)
    sentences, _, _ = evaluation.load_sources(workdir, None, None, None)
    sources = tokenizer.encode_batch(sentences)
    seconds, _, hypotheses = decode_speed.run_ct2(workdir, tokenizer, sources, 4, batch_sentences,
                                                  SearchOptions('beam', 4, 0.6), device)
    tokens = sum(len(h) + 1 for h in hypotheses)
    return {'device': device, 'sentences_per_s': len(sources) / seconds, 'tokens_per_s': tokens / seconds}
  except Exception as e:  # noqa: BLE001 (CTranslate2 may lack a wheel or CUDA build for the image)
    traceback.print_exc()
    return {'device': device, 'not_run': f'{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ""}'}


# --- the parent: runs each step, writes logs, results.json and summary.md ---

def run_step(name: str, args, out_dir: str, limit: float) -> dict:
  result_file = os.path.join(tempfile.mkdtemp(prefix='t2t_gpu_step_'), 'result.json')
  command = [sys.executable, os.path.abspath(__file__), '--step', name, '--result', result_file]
  command += ['--cpu-smoke'] if args.cpu_smoke else []
  command += ['--multi30k', args.multi30k] if args.multi30k else []
  env = dict(os.environ, PYTHONUNBUFFERED='1')
  if args.cpu_smoke:
    env['JAX_PLATFORMS'] = 'cpu'
    env.setdefault('CUDA_VISIBLE_DEVICES', '')
  elif name in ('training', 'multi30k'):
    # JAX would take 75% of the GPU up front; PyTorch and CTranslate2 share these processes.
    env.setdefault('XLA_PYTHON_CLIENT_PREALLOCATE', 'false')
  start = time.perf_counter()
  log_path = os.path.join(out_dir, 'logs', f'{name}.log')
  with open(log_path, 'w') as log:
    # Its own process group, so a step past its limit is stopped with everything it started (pytest, train.py).
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
      code = process.wait(timeout=limit)
    except subprocess.TimeoutExpired:
      os.killpg(process.pid, signal.SIGKILL)
      process.wait()
      code = None
  record: dict = {'seconds': round(time.perf_counter() - start, 1), 'log': f'logs/{name}.log'}
  if os.path.exists(result_file):
    with open(result_file) as f:
      record.update(json.load(f))
  if code is None:
    record.update(status='failed', error=f'timed out after {limit:.0f} s')
  elif code != 0 and record.get('status') != 'failed':
    record.update(status='failed', error=f'exited {code}')
  record.setdefault('status', 'passed')
  return record


def child(args) -> None:
  """One step in this process: its result (or its error) as JSON in --result; exit 1 on failure."""
  record: dict = {}
  try:
    record['result'] = globals()[f'step_{args.step}'](args)
    record['status'] = 'passed'
  except Exception as e:  # noqa: BLE001 (every failure is recorded, then the parent goes on)
    traceback.print_exc()
    record.update(status='failed', error=f'{type(e).__name__}: {e}'[:1000])
  print(json.dumps(record, indent=2, default=str), flush=True)  # the log ends with what the summary shows
  with open(args.result, 'w') as f:
    json.dump(record, f, indent=2, default=str)
  sys.exit(0 if record['status'] == 'passed' else 1)


def figures(name: str, result: dict) -> list[str]:
  """The summary's lines for one step's result."""
  if name == 'environment':
    keys = ('device_kind', 'platform', 'devices', 'pmap_platform', 'pmap_ok', 'nvidia_smi', 'torch_cuda', 'python',
            'jax', 'jaxlib', 'flax', 'optax', 'orbax.checkpoint', 'torch', 'ml_collections', 'ctranslate2')
    return [f'- {k}: {result[k]}' for k in keys if k in result]
  if name == 'correctness':
    agreement = result.get('bf16_vs_f32', {})
    return [f'- `{result.get("pytest")}`: {result.get("pytest_result")}',
            f'- bf16 vs f32 logits ({agreement.get("config")}, {agreement.get("tokens")} tokens): relative RMS '
            f'{agreement.get("relative_rms", float("nan")):.4f} (tolerance {BF16_TOLERANCE}), max abs '
            f'{agreement.get("max_abs", float("nan")):.3f}, top-1 agreement '
            f'{agreement.get("top1_agreement", float("nan")):.4f}']
  if name == 'training':
    lines = ['| config | dtype | batch | target tokens | t2t step ms | t2t tokens/s | MFU | torch step ms | '
             'torch tokens/s | ratio |', '|---|---|---|---|---|---|---|---|---|---|']
    for r in result.get('runs', []):
      torch_ms = f'{r["torch_step_s"] * 1e3:.1f}' if r.get('torch_step_s') else '-'
      lines.append(f'| {r["config"]} | {r["dtype"]} | {r["rows"]}x{r["length"]} | {r["target_tokens"]} | '
                   f'{r["t2t_step_s"] * 1e3:.1f} | {r["t2t_tokens_per_s"]:.0f} | {r["mfu"]:.3f} | {torch_ms} | '
                   f'{r["torch_tokens_per_s"]:.0f} | {r["ratio"]:.2f} |')
    if result.get('runs'):
      lines.append(f'\nMFU against {result["runs"][0]["peak_source"]} ({result["runs"][0]["peak_flops"] / 1e12:.4g} '
                   f'TFLOP/s); median of the timed steps; compile excluded.')
    return lines
  decode = result.get('decode', {})
  lines = [f'- `{result.get("train_command")}`: {result.get("train_and_final_eval_s", 0):.0f} s with the final '
           f'evaluation ({result.get("final_eval_s") or 0:.0f} s of it)',
           f'- {result.get("test_split")}: {result.get("bleu_line")}', f'  signature: {result.get("bleu_signature")}',
           f'- chosen: {result.get("chosen")}']
  for label in ('greedy', 'beam4'):
    if label in decode:
      d = decode[label]
      lines.append(f'- {label} at {decode.get("batch_sentences")} sentences per batch: {d["tokens_per_s"]:.0f} target '
                   f'tokens/s, {d["sentences_per_s"]:.1f} sentences/s (compile {d["compile_s"]:.1f} s excluded)')
  ct2 = result.get('ct2', {})
  lines.append(f'- CTranslate2 beam 4 on {ct2.get("device")}: ' + (
      f'{ct2["tokens_per_s"]:.0f} target tokens/s, {ct2["sentences_per_s"]:.1f} sentences/s' if 'tokens_per_s' in ct2
      else f'not run: {ct2.get("not_run")}'))
  return lines


def summary(records: dict, args, started: str, seconds: float) -> str:
  mode = 'CPU smoke (tiny shapes: no figure here is a GPU result)' if args.cpu_smoke else 'GPU'
  lines = [f'# t2t GPU suite: {mode}', '', f'- started {started} UTC, {seconds:.0f} s in all',
           f'- command: `bash bench/gpu_suite.sh {" ".join(args.passed)}`'.rstrip(), '']
  for name, record in records.items():
    lines += [f'## {TITLES[name]}: {record["status"]} ({record["seconds"]} s, {record["log"]})', '']
    if record.get('error'):
      lines += [f'error: {record["error"]}', '']
    if record.get('result'):
      lines += figures(name, record['result']) + ['']
  return '\n'.join(lines) + '\n'


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--cpu-smoke', dest='cpu_smoke', action='store_true', help='every step on the CPU, tiny')
  parser.add_argument('--out', default=None, help='results folder (default: $OUT, else ./gpu_results)')
  parser.add_argument('--only', default=','.join(STEPS), help=f'comma-separated steps of {",".join(STEPS)}')
  parser.add_argument('--multi30k', default=None, help='Multi30k folder (default: $T2T_MULTI30K, else .data/multi30k)')
  parser.add_argument('--step', default=None, help=argparse.SUPPRESS)
  parser.add_argument('--result', default=None, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.step:
    return child(args)
  args.passed = sys.argv[1:]
  steps = [s.strip() for s in args.only.split(',') if s.strip()]
  unknown = [s for s in steps if s not in STEPS]
  if unknown:
    print(f'error: --only {",".join(unknown)}: the steps are {",".join(STEPS)}', file=sys.stderr)
    sys.exit(2)
  out_dir = args.out or os.environ.get('OUT') or os.path.join(ROOT, 'gpu_results')
  os.makedirs(os.path.join(out_dir, 'logs'), exist_ok=True)
  started, start = datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M'), time.perf_counter()
  records = {}
  for name in steps:
    limit = LIMITS[name][1 if args.cpu_smoke else 0]
    print(f'gpu_suite: {name} (at most {limit} s) ...', flush=True)
    records[name] = run_step(name, args, out_dir, limit)
    print(f'gpu_suite: {name} {records[name]["status"]} in {records[name]["seconds"]} s', flush=True)
    seconds = time.perf_counter() - start
    with open(os.path.join(out_dir, 'results.json'), 'w') as f:
      json.dump({'mode': 'cpu-smoke' if args.cpu_smoke else 'gpu', 'started_utc': started, 'seconds': seconds,
                 'steps': records}, f, indent=2, default=str)
    with open(os.path.join(out_dir, 'summary.md'), 'w') as f:
      f.write(summary(records, args, started, seconds))
  failed = [n for n, r in records.items() if r['status'] != 'passed']
  print(f'gpu_suite: results in {out_dir}/summary.md')
  if failed:
    for name in failed:
      print(f'gpu_suite: step {name} FAILED: {records[name]["error"]} (see {out_dir}/logs/{name}.log)', file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
  main()

"""Training curves from workdirs' metrics.jsonl: train/validation loss and validation BLEU by step.

  python -m t2t.curves --workdir runs/m30k_en_de runs/m30k_de_en --out curves.png

One line per workdir in each panel (labelled by the folder name); matplotlib with the Agg
backend, so no display is needed.
"""

import json
import os

from absl import flags

from t2t import cli
from t2t import workdir as wd
from t2t.errors import UserError


def read_metrics(workdir: str) -> dict[str, list[dict]]:
  """{'train': [records...], 'eval': [records...]} from <workdir>/metrics.jsonl, by step.

  A resumed run appends again from its checkpoint; the last record of each step wins.
  """
  path = wd.path(workdir, wd.METRICS)
  if not os.path.exists(path):
    raise UserError(f'{path} not found: --workdir must be a folder written by train.py')
  by_split: dict[str, dict[int, dict]] = {}
  with open(path, encoding='utf-8') as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        record = json.loads(line)
      except json.JSONDecodeError as e:
        raise UserError(f'{path}:{number}: not JSON ({e.msg}); remove that line and rerun') from None
      by_split.setdefault(record['split'], {})[record['step']] = record
  return {split: [records[s] for s in sorted(records)] for split, records in by_split.items()}


def plot(workdirs: list[str], path: str) -> None:
  """Writes a PNG with three panels: train loss, validation loss, validation BLEU."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  figure, axes = plt.subplots(1, 3, figsize=(15, 4))
  panels = [('train', 'loss', 'train loss (label-smoothed)'), ('eval', 'loss', 'validation loss'),
            ('eval', 'bleu', 'validation BLEU (as configured: config.beam_size)')]
  for workdir in workdirs:
    metrics = read_metrics(workdir)
    label = os.path.basename(os.path.normpath(workdir))
    for ax, (split, key, _) in zip(axes, panels):
      records = [r for r in metrics.get(split, []) if key in r]
      ax.plot([r['step'] for r in records], [r[key] for r in records], marker='o' if split == 'eval' else None,
              markersize=3, label=label)
  for ax, (_, _, title) in zip(axes, panels):
    ax.set_title(title, fontsize=10)
    ax.set_xlabel('step')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  figure.tight_layout()
  figure.savefig(path, dpi=100)
  plt.close(figure)


def _define_flags(values) -> None:
  flags.DEFINE_multi_string('workdir', None, 'Folders written by train.py (several: --workdir A B, '
                            'or --workdir A --workdir B).', required=True, flag_values=values)
  flags.DEFINE_string('out', None, 'The .png to write.', required=True, flag_values=values)


def _main(values, rest) -> None:
  workdirs = values.workdir + rest  # `--workdir A B`: B arrives as a positional argument
  plot(workdirs, values.out)
  print(f'wrote {values.out}')


def main(argv=None) -> None:
  """`python -m t2t.curves --workdir A [B ...] --out curves.png`; argv default sys.argv[1:]."""
  cli.run_tool('python -m t2t.curves', __doc__.splitlines()[0], _define_flags, _main, argv)


if __name__ == '__main__':
  main()

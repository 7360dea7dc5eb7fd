"""Sentence pairs from TensorFlow Datasets translation corpora (wmt14_translate/de-en, ...).

TensorFlow and tensorflow-datasets are an optional extra (`pip install 't2t[tfds]'`) and
the accelerator machines do not have them, so they are imported inside `load_tfds` only:
importing this module never imports TensorFlow.
"""

from t2t.data.text import normalize
from t2t.errors import UserError

# Examples per tf.data batch while streaming: batching amortises the per-element
# Python <-> TensorFlow overhead, which dominates on multi-million-pair corpora.
_READ_BATCH = 1024
# Longest slice of a library's error message quoted in a one-line UserError.
_MAX_QUOTED = 300


def load_tfds(name: str, split: str, src_lang: str, tgt_lang: str, data_dir: str | None = None,
              max_examples: int | None = None, download: bool = True) -> list[tuple[str, str]]:
  """Reads the sentence pairs of one split of a TFDS translation dataset.

  Works for any dataset whose features are keyed by language code (the `Translation`
  feature): `src_lang` and `tgt_lang` pick the direction. Sentences are decoded from
  UTF-8 and whitespace-normalised like local text files; pairs with an empty side are
  skipped. Examples are read in the dataset's stored order (files are not shuffled).

  Args:
    name: TFDS name with its config, e.g. 'wmt14_translate/de-en' or
      'ted_hrlr_translate/pt_to_en'.
    split: TFDS split, slicing allowed, e.g. 'train', 'validation', 'test[:500]'.
    src_lang: feature key of the source side, e.g. 'en'.
    tgt_lang: feature key of the target side, e.g. 'de'.
    data_dir: TFDS data directory; None uses TFDS's default (~/tensorflow_datasets).
    max_examples: stop after this many non-empty pairs; None reads the whole split.
    download: download and prepare the dataset when it is not in `data_dir` yet, as
      `tfds.load` does. With False a missing dataset is an error instead.
  Returns:
    List of (source, target) strings.
  Raises:
    UserError: TFDS is not installed, the dataset, config, language or split does not
      exist, or the dataset can be neither found nor downloaded.
  """
  pairs = []
  for chunk in iter_tfds(name, split, src_lang, tgt_lang, data_dir, max_examples, download):
    pairs.extend(chunk)
  return pairs


def iter_tfds(name: str, split: str, src_lang: str, tgt_lang: str, data_dir: str | None = None,
              max_examples: int | None = None, download: bool = True):
  """`load_tfds` in chunks of at most 1024 pairs, so a WMT-sized split is never held whole.

  TFDS yields numpy arrays of UTF-8 bytes per tf.data batch; only the chunk being handed on
  is decoded into Python strings. Arguments and errors as for `load_tfds`.
  """
  tfds = _import_tfds()
  builder = _builder(tfds, name, data_dir)
  _check_languages(builder, name, src_lang, tgt_lang)
  if download:
    _download_and_prepare(tfds, builder, name)
  dataset = _as_dataset(builder, name, split)
  dataset = dataset.map(lambda example: (example[src_lang], example[tgt_lang]))
  left = max_examples if max_examples is not None else -1  # -1: no limit
  for src_batch, tgt_batch in tfds.as_numpy(dataset.batch(_READ_BATCH)):
    chunk = []
    for src, tgt in zip(src_batch, tgt_batch):
      src, tgt = normalize(src.decode('utf-8')), normalize(tgt.decode('utf-8'))
      if src and tgt:
        chunk.append((src, tgt))
    if left >= 0:
      chunk = chunk[:left]
      left -= len(chunk)
    yield chunk
    if left == 0:
      return


def _import_tfds():
  try:
    import tensorflow_datasets as tfds
  except ImportError as e:
    raise UserError(
        f'reading a TFDS dataset needs TensorFlow Datasets ({e}): '
        "pip install 't2t[tfds]' (tensorflow-cpu and tensorflow-datasets)") from None
  return tfds


def _builder(tfds, name, data_dir):
  try:
    return tfds.builder(name, data_dir=data_dir)
  except ValueError as e:  # DatasetNotFoundError and unknown configs are ValueErrors
    raise UserError(f'cannot open TFDS dataset {name!r}: {_quote(e)}; check the dataset '
                    f'name{_configs_hint(tfds, name)}') from None


def _configs_hint(tfds, name):
  """Lists the configs of the dataset part of `name`, for an unknown-config message."""
  try:
    configs = list(tfds.builder_cls(name.split('/')[0]).builder_configs)
  except Exception:  # noqa: BLE001  (only a hint; the dataset may not exist)
    return ''
  if not configs:
    return ''
  base = name.split('/')[0]
  return ' (configs: ' + ', '.join(f'{base}/{c}' for c in configs) + ')'


def _check_languages(builder, name, src_lang, tgt_lang):
  # Checked from the dataset's code before any download, so a wrong language code
  # costs seconds rather than a WMT download.
  features = builder.info.features
  keys = list(features.keys()) if hasattr(features, 'keys') else []
  for lang in (src_lang, tgt_lang):
    if lang not in keys:
      raise UserError(
          f'TFDS dataset {name} has no language {lang!r} (its features: '
          f"{', '.join(keys) or 'none keyed by language'}): choose the source and target "
          'languages among those, or a translation dataset that has them')


def _download_and_prepare(tfds, builder, name):
  hint = (f'run `tfds build {name}` on a machine with internet access and point '
          'config.data.tfds_data_dir at its data directory')
  try:
    builder.download_and_prepare()
  except ModuleNotFoundError as e:
    if e.name != 'importlib_resources':
      raise
    # tensorflow-datasets 4.9.x imports it but declares it only for Python < 3.9.
    raise UserError('downloading a TFDS dataset needs importlib_resources, which '
                    'tensorflow-datasets forgets to install: pip install importlib_resources'
                    ) from None
  except (OSError, tfds.download.DownloadError) as e:
    # requests' ConnectionError is an OSError, as are full disks and unwritable dirs.
    raise UserError(f'cannot download TFDS dataset {name} ({type(e).__name__}: '
                    f'{_quote(e)}): {hint}') from None


def _as_dataset(builder, name, split):
  try:
    return builder.as_dataset(split=split, shuffle_files=False)
  except AssertionError as e:  # TFDS asserts that the prepared files exist
    raise UserError(
        f'TFDS dataset {name} is not prepared in {builder.data_dir} ({_quote(e)}): run '
        f'`tfds build {name}` and point config.data.tfds_data_dir at its data directory, '
        'or allow downloading') from None
  except ValueError as e:
    splits = ', '.join(builder.info.splits.keys())
    raise UserError(f'cannot read split {split!r} of TFDS dataset {name}: {_quote(e)}; '
                    f'its splits are: {splits}') from None


def _quote(error):
  """The first line of an exception's message, shortened to fit a one-line error."""
  text = (str(error).strip().splitlines() or [''])[0]
  return text if len(text) <= _MAX_QUOTED else text[:_MAX_QUOTED] + '...'

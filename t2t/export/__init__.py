"""Export a trained workdir to CTranslate2 or Hugging Face Transformers.

  python -m t2t.export --workdir runs/demo --out runs/demo/ct2                 # also `t2t-export`
  python -m t2t.export --workdir runs/demo --out runs/demo/hf --format hf

t2t/export/ctranslate2.py writes a CTranslate2 model (and translates with it under t2t's
length limits), t2t/export/hf.py a Transformers model folder; both read the parameters
through t2t/export/params.py, which fails on any parameter an exporter did not map.
"""

from t2t.export.ctranslate2 import build_spec, ct2_translate_ids, ct2_translator, export, output_limit, save_model
from t2t.export.params import position_table

__all__ = ['build_spec', 'ct2_translate_ids', 'ct2_translator', 'export', 'output_limit', 'position_table',
           'save_model']

"""sacreBLEU scoring: the BLEU tokenizer follows the target language as sacreBLEU's command line does."""

import pytest
import sacrebleu
from sacrebleu.tokenizers import tokenizer_ja_mecab

from t2t import metrics
from t2t import workdir as wd
from t2t.errors import UserError


@pytest.mark.parametrize('lang, expected', [('ja', 'ja-mecab'), ('zh', 'zh'), ('ko', 'ko-mecab'),
                                            ('de', '13a'), ('en', '13a')])
def test_auto_picks_sacrebleu_cli_choice(lang, expected):
  name = metrics.resolve_bleu_tokenize('auto', lang)
  assert name == expected
  # What sacreBLEU itself builds when its CLI passes the target language (`-l en-<lang>`).
  cli_choice = sacrebleu.metrics.BLEU(trg_lang=lang).tokenizer.signature()
  assert sacrebleu.metrics.BLEU(tokenize=name).tokenizer.signature() == cli_choice


def test_named_tokenizer_is_kept_and_shown_in_signature():
  assert metrics.resolve_bleu_tokenize('none', 'ja') == 'none'
  assert metrics.resolve_bleu_tokenize('char', 'de') == 'char'
  scores = metrics.corpus_scores(['a b c d'], ['a b c d'], 'none')
  assert 'tok:none' in scores.bleu_signature


def test_japanese_scores_differ_between_13a_and_ja_mecab():
  # Unsegmented Japanese: 13a sees one "word" per sentence, MeCab sees 私/は/学生/です/。
  hypothesis, reference = ['私は学生です。'], ['私は先生です。']
  coarse = metrics.corpus_scores(hypothesis, reference, '13a')
  fine = metrics.corpus_scores(hypothesis, reference, metrics.resolve_bleu_tokenize('auto', 'ja'))
  assert coarse.bleu == 0.0
  assert 0.0 < fine.bleu < 100.0
  assert 'tok:13a' in coarse.bleu_signature and 'tok:ja-mecab' in fine.bleu_signature
  assert metrics.corpus_scores(reference, reference, 'ja-mecab').bleu == pytest.approx(100.0)


def test_unknown_tokenizer_is_a_user_error():
  with pytest.raises(UserError, match=r"config.bleu_tokenize='13b' is not a sacreBLEU tokenizer.*13a"):
    metrics.resolve_bleu_tokenize('13b', 'de')
  with pytest.raises(UserError, match=r'--bleu_tokenize='):
    metrics.resolve_bleu_tokenize('mecab', 'ja', field='--bleu_tokenize')


def test_missing_mecab_is_one_line(monkeypatch):
  monkeypatch.setattr(tokenizer_ja_mecab, 'MeCab', None)  # as if sacrebleu[ja] were not installed
  with pytest.raises(UserError) as error:
    metrics.resolve_bleu_tokenize('auto', 'ja')
  message = str(error.value)
  assert "pip install 'sacrebleu[ja]'" in message and "'ja-mecab'" in message and "'ja'" in message
  assert '\n' not in message
  assert metrics.resolve_bleu_tokenize('auto', 'de') == '13a'  # other languages unaffected


def test_config_without_the_field_means_auto():
  import ml_collections
  old = ml_collections.ConfigDict({'data': {'tgt_lang': 'zh'}})
  assert metrics.config_bleu_tokenize(old) == 'zh'


def test_evaluate_uses_the_flag_else_the_workdir_config(tmp_path):
  from t2t import evaluation
  from t2t.config import base_config
  config = base_config()
  config.data.tgt_lang = 'ja'
  wd.write_train_config(str(tmp_path), config)
  assert evaluation.bleu_tokenize(str(tmp_path), None) == 'ja-mecab'  # the saved 'auto'
  assert evaluation.bleu_tokenize(str(tmp_path), 'char') == 'char'
  config.bleu_tokenize = 'none'
  wd.write_train_config(str(tmp_path), config)
  assert evaluation.bleu_tokenize(str(tmp_path), None) == 'none'
  with pytest.raises(UserError, match=r"^--bleu_tokenize='x' is not"):
    evaluation.bleu_tokenize(str(tmp_path), 'x')

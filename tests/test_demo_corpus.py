"""Tests for the built-in synthetic English->German corpus (t2t/demo_corpus.py)."""

import hashlib
import os
import re
import statistics
import subprocess
import sys

import pytest

from t2t import demo_corpus
from t2t.errors import UserError

SIZES = {'train': 20000, 'val': 500, 'test': 1000}
CONJUNCTIONS = ('that', 'because', 'when', 'although', 'while')


@pytest.fixture(scope='module')
def corpus():
  return {split: demo_corpus.load_builtin(split) for split in demo_corpus.SPLITS}


def phrase(determiner, adjective, noun, plural=False):
  adjective = demo_corpus._ADJECTIVE[adjective] if adjective else None
  return demo_corpus.Phrase(demo_corpus._NOUN[noun], determiner, adjective, plural)


def clause(subject, verb, **parts):
  return demo_corpus.Clause(subject, demo_corpus._VERB[verb], **parts)


def words(text):
  return re.findall(r'\w+', text)


def sentence_initial(text):
  return text[0].upper() + text[1:]  # str.capitalize() would lowercase "heute Abend"


def finite_verb_forms():
  """Every finite German verb form, as it stands in second position or clause-finally."""
  verbs = (demo_corpus._TRANSITIVE + demo_corpus._DATIVE + demo_corpus._DITRANSITIVE
           + demo_corpus._INTRANSITIVE + demo_corpus._SAYING + (demo_corpus._BE,))
  second = {form for v in verbs for form in (v.german, v.german_plural)}
  final = {v.prefix + form for v in verbs for form in (v.german, v.german_plural)}
  return second, final


# ----------------------------------------------------------------- the corpus as a whole


def test_sizes(corpus):
  assert {split: len(pairs) for split, pairs in corpus.items()} == SIZES


def test_deterministic_within_process(corpus):
  for split in demo_corpus.SPLITS:
    assert demo_corpus.load_builtin(split) == corpus[split]
  assert demo_corpus.load_builtin('val', seed=1) != corpus['val']


def test_deterministic_across_processes(corpus):
  """A different hash seed changes set and dict-of-str orders; the corpus must not change."""
  code = ('import hashlib; from t2t.demo_corpus import load_builtin; '
          'print(hashlib.sha256(repr(load_builtin("test")).encode()).hexdigest())')
  expected = hashlib.sha256(repr(corpus['test']).encode()).hexdigest()
  for hash_seed in ('1', '12345'):
    env = {**os.environ, 'PYTHONHASHSEED': hash_seed}
    result = subprocess.run([sys.executable, '-c', code], env=env, check=True,
                            capture_output=True, text=True)
    assert result.stdout.strip() == expected


def test_splits_are_disjoint_and_without_duplicates(corpus):
  english = {split: [e for e, _ in pairs] for split, pairs in corpus.items()}
  for split, sentences in english.items():
    assert len(set(sentences)) == len(sentences), split
  assert not set(english['train']) & set(english['val'])
  assert not set(english['train']) & set(english['test'])
  assert not set(english['val']) & set(english['test'])


def test_unknown_split_is_a_user_error():
  with pytest.raises(UserError) as error:
    demo_corpus.load_builtin('dev')
  message = str(error.value)
  assert '\n' not in message
  assert all(split in message for split in demo_corpus.SPLITS)


def test_translation_is_a_function_of_the_english():
  """No English sentence gets two different German translations, across seeds."""
  seen = {}
  for seed in (0, 1):
    for split in demo_corpus.SPLITS:
      for english, german in demo_corpus.load_builtin(split, seed):
        assert seen.setdefault(english, german) == german, english


def test_lengths(corpus):
  pairs = [pair for split in demo_corpus.SPLITS for pair in corpus[split]]
  for side in (0, 1):
    lengths = [len(pair[side].split()) for pair in pairs]
    assert 4 <= min(lengths) and max(lengths) <= 20
    assert 8 <= statistics.mean(lengths) <= 11


def test_vocabulary_sizes_and_languages_differ(corpus):
  english = {w.lower() for e, _ in corpus['train'] for w in words(e)}
  german = {w.lower() for _, g in corpus['train'] for w in words(g)}
  assert 250 <= len(english) <= 450
  assert 300 <= len(german) <= 800
  # Only names and a few loan words ("baby", "park", "in") are spelled alike.
  assert len(english & german) < 0.1 * len(english)


def test_orthography(corpus):
  for english, german in corpus['train']:
    for sentence in (english, german):
      assert sentence[0].isupper() and sentence.endswith('.'), sentence
      assert sentence.count('.') == 1, sentence
    subordinate = any(f' {c} ' in f' {english.lower()} ' for c in CONJUNCTIONS)
    assert german.count(',') == int(subordinate), (english, german)
    assert english.count(',') == int(english.split()[0].lower() in CONJUNCTIONS)


def test_not_a_copy_task(corpus):
  """Most pairs need reordering: a subordinate clause or a fronted adverb or place."""
  fronted_starts = tuple(sentence_initial(a.german) + ' '
                         for a in demo_corpus._ADVERBS) + ('Im ', 'In ')
  reordered = sum(',' in german or german.startswith(fronted_starts)
                  for _, german in corpus['train'])
  assert reordered >= 0.3 * len(corpus['train'])


def test_verb_second_and_verb_final_orders(corpus):
  second, final = finite_verb_forms()
  adverbs = sorted((sentence_initial(a.german) for a in demo_corpus._ADVERBS), key=len,
                   reverse=True)
  checked = {'dass': 0, 'sub first': 0, 'adverb': 0}
  for _, german in corpus['train']:
    if ', dass ' in german:
      assert german.rstrip('.').split()[-1] in final, german
      checked['dass'] += 1
    if german.split()[0] in ('Weil', 'Wenn', 'Obwohl', 'Während'):
      before, after = german.split(', ')
      assert before.split()[-1] in final and after.split()[0] in second, german
      checked['sub first'] += 1
    adverb = next((a for a in adverbs if german.startswith(a + ' ')), None)
    if adverb:
      assert german[len(adverb):].split()[0] in second, german
      checked['adverb'] += 1
  assert min(checked.values()) > 500, checked


# ------------------------------------------------------------ hand-checked agreement


@pytest.mark.parametrize('determiner, adjective, noun, plural, case, expected', [
    ('the', 'big', 'dog', False, 'nom', 'der große Hund'),
    ('the', 'big', 'dog', False, 'acc', 'den großen Hund'),
    ('the', 'big', 'dog', False, 'dat', 'dem großen Hund'),
    ('a', 'big', 'dog', False, 'nom', 'ein großer Hund'),
    ('a', 'big', 'dog', False, 'acc', 'einen großen Hund'),
    ('a', 'big', 'dog', False, 'dat', 'einem großen Hund'),
    ('the', 'small', 'cat', False, 'nom', 'die kleine Katze'),
    ('a', 'small', 'cat', False, 'acc', 'eine kleine Katze'),
    ('the', 'small', 'cat', False, 'dat', 'der kleinen Katze'),
    ('a', 'small', 'cat', False, 'dat', 'einer kleinen Katze'),
    ('the', 'red', 'car', False, 'nom', 'das rote Auto'),
    ('a', 'red', 'car', False, 'nom', 'ein rotes Auto'),
    ('a', 'red', 'car', False, 'acc', 'ein rotes Auto'),
    ('the', 'red', 'car', False, 'dat', 'dem roten Auto'),
    ('a', 'red', 'car', False, 'dat', 'einem roten Auto'),
    ('the', 'old', 'woman', True, 'nom', 'die alten Frauen'),
    ('the', 'old', 'woman', True, 'dat', 'den alten Frauen'),
    ('', 'old', 'woman', True, 'acc', 'alte Frauen'),
    ('two', 'old', 'woman', True, 'dat', 'zwei alten Frauen'),
    ('my', 'old', 'child', True, 'dat', 'meinen alten Kindern'),
    ('the', None, 'child', True, 'dat', 'den Kindern'),
    ('the', None, 'boy', False, 'nom', 'der Junge'),
    ('this', 'young', 'boy', False, 'acc', 'diesen jungen Jungen'),
    ('this', 'green', 'garden', True, 'nom', 'diese grünen Gärten'),
    ('our', 'expensive', 'house', False, 'nom', 'unser teures Haus'),
    ('her', 'tired', 'dog', False, 'nom', 'ihr müder Hund'),
    ('the', 'dark', 'forest', False, 'dat', 'dem dunklen Wald'),
])
def test_german_noun_phrase(determiner, adjective, noun, plural, case, expected):
  assert demo_corpus._german_phrase(phrase(determiner, adjective, noun, plural), case) == expected


def test_negation_turns_indefinites_into_kein():
  def negated(noun_phrase, case):
    return demo_corpus._german_phrase(noun_phrase, case, negated=True)

  assert negated(phrase('a', 'big', 'dog'), 'acc') == 'keinen großen Hund'
  assert negated(phrase('a', None, 'child'), 'dat') == 'keinem Kind'
  assert negated(phrase('', 'small', 'cat', True), 'dat') == 'keinen kleinen Katzen'
  assert negated(phrase('the', None, 'dog'), 'acc') == 'den Hund'


@pytest.mark.parametrize('determiner, adjective, noun, plural, expected', [
    ('a', 'old', 'man', False, 'an old man'),
    ('a', None, 'apple', False, 'an apple'),
    ('a', 'big', 'apple', False, 'a big apple'),
    ('this', None, 'dog', True, 'these dogs'),
    ('', 'small', 'mouse', True, 'small mice'),
    ('their', None, 'child', True, 'their children'),
])
def test_english_noun_phrase(determiner, adjective, noun, plural, expected):
  assert demo_corpus._english_phrase(phrase(determiner, adjective, noun, plural)) == expected


@pytest.mark.parametrize('key, noun_phrase, expected', [
    ('to', phrase('the', None, 'school'), 'zur Schule'),
    ('to', phrase('the', None, 'child', True), 'zu den Kindern'),
    ('in', phrase('the', 'big', 'garden'), 'im großen Garten'),
    ('in', phrase('a', None, 'city'), 'in einer Stadt'),
    ('from', phrase('the', None, 'station'), 'vom Bahnhof'),
    ('with:bei', phrase('the', None, 'father'), 'beim Vater'),
    ('with:bei', phrase('the', None, 'grandmother'), 'bei der Großmutter'),
    ('with', phrase('my', None, 'neighbor'), 'mit meinem Nachbarn'),
    ('for', phrase('the', None, 'dog'), 'für den Hund'),
    ('without', phrase('a', None, 'friend'), 'ohne einen Freund'),
    ('through', phrase('the', 'dark', 'forest'), 'durch den dunklen Wald'),
    ('for:auf', phrase('the', None, 'bus'), 'auf den Bus'),
])
def test_prepositional_phrase_case_and_contraction(key, noun_phrase, expected):
  assert demo_corpus._german_pp((demo_corpus._PREPOSITIONS[key], noun_phrase)) == expected


# ----------------------------------------------------------------- hand-checked clauses

MAN = phrase('the', None, 'man')
WOMAN = phrase('the', None, 'woman')
WOMEN = phrase('the', None, 'woman', plural=True)
CHILD = phrase('the', None, 'child')


@pytest.mark.parametrize('built, english, main, sub', [
    (clause(phrase('the', 'big', 'dog'), 'sees', accusative=phrase('a', 'small', 'cat')),
     'the big dog sees a small cat',
     'der große Hund sieht eine kleine Katze',
     'der große Hund eine kleine Katze sieht'),
    (clause(MAN, 'helps', dative=CHILD),
     'the man helps the child', 'der Mann hilft dem Kind', 'der Mann dem Kind hilft'),
    (clause(WOMEN, 'sees', accusative=phrase('the', None, 'dog')),
     'the women see the dog', 'die Frauen sehen den Hund', 'die Frauen den Hund sehen'),
    (clause(MAN, 'gives', dative=CHILD, accusative=phrase('a', None, 'book')),
     'the man gives the child a book',
     'der Mann gibt dem Kind ein Buch', 'der Mann dem Kind ein Buch gibt'),
    (clause(phrase('the', None, 'father'), 'calls', accusative=phrase('the', None, 'doctor')),
     'the father calls the doctor',
     'der Vater ruft den Arzt an', 'der Vater den Arzt anruft'),
    (clause(phrase('the', None, 'dog'), 'belongs to', dative=WOMEN, negated=True),
     'the dog does not belong to the women',
     'der Hund gehört den Frauen nicht', 'der Hund den Frauen nicht gehört'),
    (clause(MAN, 'sees', accusative=phrase('a', None, 'dog'), negated=True),
     'the man does not see a dog',
     'der Mann sieht keinen Hund', 'der Mann keinen Hund sieht'),
    (clause(CHILD, 'lives', negated=True, pp=(demo_corpus._PREPOSITIONS['with:bei'],
                                              phrase('the', None, 'grandmother'))),
     'the child does not live with the grandmother',
     'das Kind wohnt nicht bei der Großmutter',
     'das Kind nicht bei der Großmutter wohnt'),
    (clause(phrase('the', None, 'dog', True), 'is', negated=True,
            predicate=demo_corpus._ADJECTIVE['hungry']),
     'the dogs are not hungry',
     'die Hunde sind nicht hungrig', 'die Hunde nicht hungrig sind'),
    (clause(MAN, 'buys', accusative=phrase('a', None, 'car'),
            pp=(demo_corpus._PREPOSITIONS['for'], WOMAN), adverb=demo_corpus._ADVERB['today']),
     'the man buys a car for the woman today',
     'der Mann kauft heute ein Auto für die Frau',
     'der Mann heute ein Auto für die Frau kauft'),
])
def test_clause_orders(built, english, main, sub):
  assert demo_corpus._english_clause(built) == english
  assert demo_corpus._german_clause(built, 'main') == main
  assert demo_corpus._german_clause(built, 'sub') == sub


def test_fronted_adverb_inverts_subject_and_verb():
  built = clause(WOMAN, 'buys', accusative=phrase('a', 'red', 'car'),
                 adverb=demo_corpus._ADVERB['today'], fronted='adverb')
  assert demo_corpus._english_clause(built) == 'today the woman buys a red car'
  assert demo_corpus._german_clause(built, 'main') == 'heute kauft die Frau ein rotes Auto'


def test_fronted_place_inverts_and_keeps_separable_prefix_last():
  garden = (demo_corpus._PREPOSITIONS['in'], phrase('the', None, 'garden'))
  built = clause(WOMAN, 'reads', accusative=phrase('a', None, 'book'), pp=garden,
                 fronted='pp')
  assert demo_corpus._english_clause(built) == 'in the garden the woman reads a book'
  assert demo_corpus._german_clause(built, 'main') == 'im Garten liest die Frau ein Buch'
  built = clause(WOMAN, 'invites', accusative=phrase('the', None, 'neighbor', True),
                 adverb=demo_corpus._ADVERB['tonight'], fronted='adverb')
  assert demo_corpus._german_clause(built, 'main') == (
      'heute Abend lädt die Frau die Nachbarn ein')
  assert demo_corpus._german_clause(built._replace(fronted=''), 'inverted') == (
      'lädt die Frau heute Abend die Nachbarn ein')


def test_reported_speech_is_verb_final():
  main = demo_corpus.Clause(MAN, demo_corpus._SAYING_VERB['says'])
  sub = clause(WOMAN, 'sees', accusative=phrase('the', None, 'dog'))
  german_main, german_sub = (demo_corpus._german_clause(main, 'main'),
                             demo_corpus._german_clause(sub, 'sub'))
  german = f'{german_main}, dass {german_sub}'
  english = f'{demo_corpus._english_clause(main)} that {demo_corpus._english_clause(sub)}'
  assert demo_corpus._sentence(german) == 'Der Mann sagt, dass die Frau den Hund sieht.'
  assert demo_corpus._sentence(english) == 'The man says that the woman sees the dog.'

"""The built-in demo corpus: a deterministic synthetic English->German parallel corpus.

`make demo` trains a tiny Transformer on it offline, in a few minutes of CPU time. The
sentences come from the small grammar in this file, drawn with `random.Random(seed)`, so
every process and every Python version sees the same pairs. The grammar is regular enough
that each English sentence has exactly one German translation, yet translating it is not
a copy task. The model has to learn:

  * noun phrases that agree in gender (der/die/das), number and case (nominative,
    accusative, dative): definite articles and dieser, ein-words (ein, kein, mein, ...)
    and numbers, each with its adjective declension (weak "den alten Frauen", mixed
    "einen großen Hund", strong "zwei kleine Katzen"), weak masculine nouns ("dem
    Jungen") and dative plurals ("den Kindern");
  * verbs with an accusative object, a dative object (helfen, danken, folgen, ...), both
    (geben, zeigen, ...), a prepositional complement, or a predicate adjective (sein);
    prepositions that govern the dative (mit, bei, von, zu, in) or the accusative (für,
    ohne, durch, über, auf), with the usual contractions (zum, zur, im, vom, beim);
  * subject-verb agreement (sieht/sehen), stem-changing verbs and separable verbs
    ("ruft den Arzt an", "..., weil die Frau den Arzt anruft");
  * verb-second main clauses: a fronted time adverb, place phrase or subordinate clause
    puts the finite verb before the subject ("Heute kauft die Frau ein rotes Auto.");
  * verb-final subordinate clauses after dass, weil, wenn, obwohl and während;
  * negation: "nicht" after a definite object, "kein" in place of an indefinite one;
  * German orthography: capitalised nouns, a comma before every subordinate clause.

Sentence shapes: one clause (possibly with a fronted adverb or place phrase); "X says /
thinks / knows ... that <clause>"; "<clause> because / when / although / while
<clause>"; and the subordinate clause first, which inverts the main clause. The tense is
present only, there are no pronouns, and where English is ambiguous ("with" is mit or
bei, "knows" is kennt or weiß) the verb decides, so the German side is a function of the
English side. Sentences have 4 to 20 words.

One pool of unique sentences is drawn per seed and cut into test, val and train, so the
splits never share an English sentence.
"""

import bisect
import functools
import itertools
import random
from typing import NamedTuple

from t2t.errors import UserError

SPLITS = ('train', 'val', 'test')
# Slices of the shuffled pool; test and val come first so they stay the same if train
# ever grows.
_SPLIT_RANGES = {'test': (0, 1000), 'val': (1000, 1500), 'train': (1500, 21500)}
_MIN_WORDS, _MAX_WORDS = 4, 20


class Noun(NamedTuple):
  english: str
  english_plural: str
  gender: str                # 'm', 'f' or 'n'
  german: str
  german_plural: str
  group: str                 # P person, A animal, O object, F food, X text, L place
  features: tuple[str, ...]  # finer classes that verbs select: 'open', 'wear', 'drive'
  german_oblique: str        # accusative/dative singular; differs for weak masculines


class Adjective(NamedTuple):
  english: str
  german: str   # predicative form: "der Hund ist müde"
  stem: str     # attributive stem that takes the endings: "der müde Hund", "teur-e"
  groups: str   # noun groups it can describe


class Verb(NamedTuple):
  english: str        # third person singular ("sees", "looks for")
  english_base: str   # plural and after "does not" ("see", "look for")
  german: str         # third person singular, without a separable prefix
  german_plural: str
  prefix: str         # separable prefix: "an" in "ruft ... an", "anruft"
  subject: str        # noun groups allowed as subject
  dative: str = ''    # classes allowed as dative object; '' for none
  accusative: str = ''
  complements: tuple[str, ...] = ()  # keys of _PREPOSITIONS for intransitive verbs
  complement_optional: bool = False


class Preposition(NamedTuple):
  english: str
  german: str
  case: str      # 'acc' or 'dat'
  classes: str   # noun groups/features its object may have


class Adverb(NamedTuple):
  english: str
  german: str


class Phrase(NamedTuple):
  """A noun phrase: determiner + optional adjective + noun, or a bare name."""
  noun: Noun | None
  determiner: str     # English key: 'the', 'a', 'this', 'my', ..., 'two', '' (bare plural)
  adjective: Adjective | None = None
  plural: bool = False
  name: str = ''


class Clause(NamedTuple):
  """One clause, rendered in either language; `fronted` is only set for main clauses."""
  subject: Phrase
  verb: Verb
  dative: Phrase | None = None
  accusative: Phrase | None = None
  predicate: Adjective | None = None
  pp: tuple[Preposition, Phrase] | None = None  # prepositional complement or adjunct
  adverb: Adverb | None = None
  negated: bool = False
  fronted: str = ''   # '', 'adverb' or 'pp': what stands before the verb


# ---------------------------------------------------------------------------- lexicon

# English singular, plural, gender, German singular, plural, group [features]
# [, accusative/dative singular of a weak masculine].
_NOUN_ROWS = (
    ('man', 'men', 'm', 'Mann', 'Männer', 'P'),
    ('boy', 'boys', 'm', 'Junge', 'Jungen', 'P', 'Jungen'),
    ('father', 'fathers', 'm', 'Vater', 'Väter', 'P'),
    ('brother', 'brothers', 'm', 'Bruder', 'Brüder', 'P'),
    ('teacher', 'teachers', 'm', 'Lehrer', 'Lehrer', 'P'),
    ('doctor', 'doctors', 'm', 'Arzt', 'Ärzte', 'P'),
    ('friend', 'friends', 'm', 'Freund', 'Freunde', 'P'),
    ('neighbor', 'neighbors', 'm', 'Nachbar', 'Nachbarn', 'P', 'Nachbarn'),
    ('student', 'students', 'm', 'Student', 'Studenten', 'P', 'Studenten'),
    ('baker', 'bakers', 'm', 'Bäcker', 'Bäcker', 'P'),
    ('farmer', 'farmers', 'm', 'Bauer', 'Bauern', 'P', 'Bauern'),
    ('woman', 'women', 'f', 'Frau', 'Frauen', 'P'),
    ('mother', 'mothers', 'f', 'Mutter', 'Mütter', 'P'),
    ('sister', 'sisters', 'f', 'Schwester', 'Schwestern', 'P'),
    ('daughter', 'daughters', 'f', 'Tochter', 'Töchter', 'P'),
    ('grandmother', 'grandmothers', 'f', 'Großmutter', 'Großmütter', 'P'),
    ('queen', 'queens', 'f', 'Königin', 'Königinnen', 'P'),
    ('aunt', 'aunts', 'f', 'Tante', 'Tanten', 'P'),
    ('child', 'children', 'n', 'Kind', 'Kinder', 'P'),
    ('girl', 'girls', 'n', 'Mädchen', 'Mädchen', 'P'),
    ('baby', 'babies', 'n', 'Baby', 'Babys', 'P'),
    ('dog', 'dogs', 'm', 'Hund', 'Hunde', 'A'),
    ('bird', 'birds', 'm', 'Vogel', 'Vögel', 'A'),
    ('bear', 'bears', 'm', 'Bär', 'Bären', 'A', 'Bären'),
    ('lion', 'lions', 'm', 'Löwe', 'Löwen', 'A', 'Löwen'),
    ('monkey', 'monkeys', 'm', 'Affe', 'Affen', 'A', 'Affen'),
    ('fox', 'foxes', 'm', 'Fuchs', 'Füchse', 'A'),
    ('cat', 'cats', 'f', 'Katze', 'Katzen', 'A'),
    ('mouse', 'mice', 'f', 'Maus', 'Mäuse', 'A'),
    ('cow', 'cows', 'f', 'Kuh', 'Kühe', 'A'),
    ('duck', 'ducks', 'f', 'Ente', 'Enten', 'A'),
    ('horse', 'horses', 'n', 'Pferd', 'Pferde', 'A'),
    ('rabbit', 'rabbits', 'n', 'Kaninchen', 'Kaninchen', 'A'),
    ('table', 'tables', 'm', 'Tisch', 'Tische', 'O'),
    ('chair', 'chairs', 'm', 'Stuhl', 'Stühle', 'O'),
    ('ball', 'balls', 'm', 'Ball', 'Bälle', 'O'),
    ('key', 'keys', 'm', 'Schlüssel', 'Schlüssel', 'O'),
    ('hat', 'hats', 'm', 'Hut', 'Hüte', 'O wear'),
    ('coat', 'coats', 'm', 'Mantel', 'Mäntel', 'O wear'),
    ('shoe', 'shoes', 'm', 'Schuh', 'Schuhe', 'O wear'),
    ('suitcase', 'suitcases', 'm', 'Koffer', 'Koffer', 'O open'),
    ('bus', 'buses', 'm', 'Bus', 'Busse', 'O drive'),
    ('bag', 'bags', 'f', 'Tasche', 'Taschen', 'O open'),
    ('clock', 'clocks', 'f', 'Uhr', 'Uhren', 'O'),
    ('door', 'doors', 'f', 'Tür', 'Türen', 'O open'),
    ('flower', 'flowers', 'f', 'Blume', 'Blumen', 'O'),
    ('bottle', 'bottles', 'f', 'Flasche', 'Flaschen', 'O open'),
    ('box', 'boxes', 'f', 'Kiste', 'Kisten', 'O open'),
    ('jacket', 'jackets', 'f', 'Jacke', 'Jacken', 'O wear'),
    ('car', 'cars', 'n', 'Auto', 'Autos', 'O drive'),
    ('picture', 'pictures', 'n', 'Bild', 'Bilder', 'O'),
    ('window', 'windows', 'n', 'Fenster', 'Fenster', 'O open'),
    ('knife', 'knives', 'n', 'Messer', 'Messer', 'O'),
    ('bicycle', 'bicycles', 'n', 'Fahrrad', 'Fahrräder', 'O'),
    ('gift', 'gifts', 'n', 'Geschenk', 'Geschenke', 'O open'),
    ('dress', 'dresses', 'n', 'Kleid', 'Kleider', 'O wear'),
    ('apple', 'apples', 'm', 'Apfel', 'Äpfel', 'F'),
    ('cake', 'cakes', 'm', 'Kuchen', 'Kuchen', 'F'),
    ('banana', 'bananas', 'f', 'Banane', 'Bananen', 'F'),
    ('soup', 'soups', 'f', 'Suppe', 'Suppen', 'F'),
    ('egg', 'eggs', 'n', 'Ei', 'Eier', 'F'),
    ('letter', 'letters', 'm', 'Brief', 'Briefe', 'X open'),
    ('newspaper', 'newspapers', 'f', 'Zeitung', 'Zeitungen', 'X'),
    ('message', 'messages', 'f', 'Nachricht', 'Nachrichten', 'X'),
    ('book', 'books', 'n', 'Buch', 'Bücher', 'X open'),
    ('poem', 'poems', 'n', 'Gedicht', 'Gedichte', 'X'),
    ('park', 'parks', 'm', 'Park', 'Parks', 'L'),
    ('garden', 'gardens', 'm', 'Garten', 'Gärten', 'L'),
    ('forest', 'forests', 'm', 'Wald', 'Wälder', 'L'),
    ('station', 'stations', 'm', 'Bahnhof', 'Bahnhöfe', 'L'),
    ('city', 'cities', 'f', 'Stadt', 'Städte', 'L'),
    ('school', 'schools', 'f', 'Schule', 'Schulen', 'L'),
    ('kitchen', 'kitchens', 'f', 'Küche', 'Küchen', 'L'),
    ('church', 'churches', 'f', 'Kirche', 'Kirchen', 'L'),
    ('house', 'houses', 'n', 'Haus', 'Häuser', 'L'),
    ('village', 'villages', 'n', 'Dorf', 'Dörfer', 'L'),
    ('museum', 'museums', 'n', 'Museum', 'Museen', 'L'),
    ('hotel', 'hotels', 'n', 'Hotel', 'Hotels', 'L'),
    ('hospital', 'hospitals', 'n', 'Krankenhaus', 'Krankenhäuser', 'L'),
)

_NAMES = ('Anna', 'Maria', 'Lena', 'Peter', 'Thomas', 'Paul')

# English, German predicative form, noun groups [, attributive stem if it differs].
_ADJECTIVE_ROWS = (
    ('big', 'groß', 'PAOXL'),
    ('small', 'klein', 'PAOFXL'),
    ('old', 'alt', 'PAOXL'),
    ('new', 'neu', 'POXL'),
    ('young', 'jung', 'PA'),
    ('beautiful', 'schön', 'PAOL'),
    ('famous', 'berühmt', 'PAXL'),
    ('hungry', 'hungrig', 'PA'),
    ('tired', 'müde', 'PA', 'müd'),
    ('happy', 'glücklich', 'PA'),
    ('sad', 'traurig', 'PAX'),
    ('angry', 'wütend', 'PA'),
    ('friendly', 'freundlich', 'PA'),
    ('clever', 'klug', 'PA'),
    ('rich', 'reich', 'P'),
    ('sick', 'krank', 'PA'),
    ('loud', 'laut', 'PAL'),
    ('quiet', 'ruhig', 'PAL'),
    ('funny', 'lustig', 'PAX'),
    ('red', 'rot', 'OF'),
    ('blue', 'blau', 'O'),
    ('green', 'grün', 'OFL'),
    ('yellow', 'gelb', 'OF'),
    ('black', 'schwarz', 'AO'),
    ('white', 'weiß', 'AO'),
    ('heavy', 'schwer', 'OX'),
    ('expensive', 'teuer', 'OFL', 'teur'),
    ('cheap', 'billig', 'OFL'),
    ('empty', 'leer', 'OL'),
    ('clean', 'sauber', 'OL'),
    ('dirty', 'schmutzig', 'AOL'),
    ('fresh', 'frisch', 'F'),
    ('sweet', 'süß', 'FA'),
    ('warm', 'warm', 'FOL'),
    ('cold', 'kalt', 'FL'),
    ('dark', 'dunkel', 'OL', 'dunkl'),
    ('long', 'lang', 'OX'),
    ('interesting', 'interessant', 'PXL'),
)

# Verbs: English 3sg, English base, German 3sg, German 3pl (a separable prefix follows
# after a space), subject groups, then the frame's object classes.
_TRANSITIVE_ROWS = (
    ('sees', 'see', 'sieht', 'sehen', 'PA', 'PAOFXL'),
    ('hears', 'hear', 'hört', 'hören', 'PA', 'PA'),
    ('finds', 'find', 'findet', 'finden', 'PA', 'PAOFX'),
    ('buys', 'buy', 'kauft', 'kaufen', 'P', 'AOFX'),
    ('sells', 'sell', 'verkauft', 'verkaufen', 'P', 'AOFX'),
    ('needs', 'need', 'braucht', 'brauchen', 'PA', 'POFX'),
    ('has', 'have', 'hat', 'haben', 'PA', 'PAOFX'),
    ('likes', 'like', 'mag', 'mögen', 'PA', 'PAOFXL'),
    ('loves', 'love', 'liebt', 'lieben', 'PA', 'PA'),
    ('visits', 'visit', 'besucht', 'besuchen', 'P', 'PL'),
    ('meets', 'meet', 'trifft', 'treffen', 'P', 'P'),
    ('asks', 'ask', 'fragt', 'fragen', 'P', 'P'),
    ('knows', 'know', 'kennt', 'kennen', 'P', 'PXL'),
    ('reads', 'read', 'liest', 'lesen', 'P', 'X'),
    ('writes', 'write', 'schreibt', 'schreiben', 'P', 'X'),
    ('eats', 'eat', 'isst', 'essen', 'PA', 'F'),
    ('cooks', 'cook', 'kocht', 'kochen', 'P', 'F'),
    ('opens', 'open', 'öffnet', 'öffnen', 'P', 'open'),
    ('closes', 'close', 'schließt', 'schließen', 'P', 'open'),
    ('washes', 'wash', 'wäscht', 'waschen', 'P', 'PAO'),
    ('carries', 'carry', 'trägt', 'tragen', 'PA', 'AOFX'),
    ('wears', 'wear', 'trägt', 'tragen', 'P', 'wear'),
    ('takes', 'take', 'nimmt', 'nehmen', 'P', 'OFX'),
    ('loses', 'lose', 'verliert', 'verlieren', 'P', 'OX'),
    ('looks for', 'look for', 'sucht', 'suchen', 'PA', 'PAOX'),
    ('paints', 'paint', 'malt', 'malen', 'P', 'PAOL'),
    ('catches', 'catch', 'fängt', 'fangen', 'PA', 'A'),
    ('feeds', 'feed', 'füttert', 'füttern', 'P', 'A'),
    ('drives', 'drive', 'fährt', 'fahren', 'P', 'drive'),
    ('builds', 'build', 'baut', 'bauen', 'P', 'L'),
    ('calls', 'call', 'ruft an', 'rufen an', 'P', 'P'),
    ('invites', 'invite', 'lädt ein', 'laden ein', 'P', 'P'),
)
_DATIVE_ROWS = (
    ('helps', 'help', 'hilft', 'helfen', 'PA', 'PA'),
    ('thanks', 'thank', 'dankt', 'danken', 'P', 'P'),
    ('follows', 'follow', 'folgt', 'folgen', 'PA', 'PA'),
    ('answers', 'answer', 'antwortet', 'antworten', 'P', 'P'),
    ('trusts', 'trust', 'vertraut', 'vertrauen', 'PA', 'P'),
    ('congratulates', 'congratulate', 'gratuliert', 'gratulieren', 'P', 'P'),
    ('belongs to', 'belong to', 'gehört', 'gehören', 'AOFX', 'P'),
    ('listens to', 'listen to', 'hört zu', 'hören zu', 'PA', 'P'),
)
# ... then dative classes, accusative classes.
_DITRANSITIVE_ROWS = (
    ('gives', 'give', 'gibt', 'geben', 'P', 'PA', 'OFX'),
    ('shows', 'show', 'zeigt', 'zeigen', 'P', 'P', 'OFX'),
    ('brings', 'bring', 'bringt', 'bringen', 'P', 'PA', 'OFX'),
    ('sends', 'send', 'schickt', 'schicken', 'P', 'P', 'OX'),
    ('buys', 'buy', 'kauft', 'kaufen', 'P', 'P', 'OFX'),
)
# ... then the keys of the prepositions it takes, and whether the complement may be left out.
_INTRANSITIVE_ROWS = (
    ('sleeps', 'sleep', 'schläft', 'schlafen', 'PA', ('in',), True),
    ('plays', 'play', 'spielt', 'spielen', 'PA', ('in', 'with:thing'), True),
    ('works', 'work', 'arbeitet', 'arbeiten', 'P', ('in', 'for'), True),
    ('waits', 'wait', 'wartet', 'warten', 'PA', ('for:auf', 'in'), True),
    ('lives', 'live', 'wohnt', 'wohnen', 'PA', ('in', 'with:bei'), False),
    ('goes', 'go', 'geht', 'gehen', 'PA', ('to', 'through'), False),
    ('runs', 'run', 'läuft', 'laufen', 'PA', ('to', 'through'), True),
    ('comes', 'come', 'kommt', 'kommen', 'PA', ('from',), False),
    ('talks', 'talk', 'spricht', 'sprechen', 'P', ('with', 'about'), False),
    ('sits', 'sit', 'sitzt', 'sitzen', 'PA', ('in',), True),
    ('laughs', 'laugh', 'lacht', 'lachen', 'P', ('about',), True),
    ('dances', 'dance', 'tanzt', 'tanzen', 'P', ('in', 'with'), True),
)
# Verbs that introduce a "that" clause: only a person says or knows something.
_SAYING_ROWS = (
    ('says', 'say', 'sagt', 'sagen', 'P'),
    ('thinks', 'think', 'denkt', 'denken', 'P'),
    ('knows', 'know', 'weiß', 'wissen', 'P'),
    ('hopes', 'hope', 'hofft', 'hoffen', 'P'),
    ('believes', 'believe', 'glaubt', 'glauben', 'P'),
)
_BE_ROW = ('is', 'are', 'ist', 'sind', 'PAOFXL')

# "with" and "for" depend on the verb: "lives with" -> bei, "waits for" -> auf.
_PREPOSITIONS = {
    'in': Preposition('in', 'in', 'dat', 'L'),
    'with': Preposition('with', 'mit', 'dat', 'PA'),
    'with:thing': Preposition('with', 'mit', 'dat', 'PAO'),
    'with:bei': Preposition('with', 'bei', 'dat', 'P'),
    'for': Preposition('for', 'für', 'acc', 'PA'),
    'for:auf': Preposition('for', 'auf', 'acc', 'PAO'),
    'without': Preposition('without', 'ohne', 'acc', 'PA'),
    'to': Preposition('to', 'zu', 'dat', 'PL'),
    'through': Preposition('through', 'durch', 'acc', 'L'),
    'from': Preposition('from', 'von', 'dat', 'PL'),
    'about': Preposition('about', 'über', 'acc', 'PAOX'),
}
# Adjuncts any verb with an object may take; 'in' twice, as places are the common case.
_ADJUNCTS = ('in', 'in', 'with', 'for', 'without')
_CONTRACTIONS = {('in', 'dem'): 'im', ('zu', 'dem'): 'zum', ('zu', 'der'): 'zur',
                 ('von', 'dem'): 'vom', ('bei', 'dem'): 'beim'}

_ADVERBS = tuple(Adverb(e, g) for e, g in (
    ('today', 'heute'), ('tomorrow', 'morgen'), ('now', 'jetzt'), ('often', 'oft'),
    ('sometimes', 'manchmal'), ('later', 'später'), ('soon', 'bald'),
    ('every day', 'jeden Tag'), ('every week', 'jede Woche'),
    ('in the morning', 'am Morgen'), ('in the evening', 'am Abend'),
    ('at night', 'in der Nacht'), ('this morning', 'heute Morgen'),
    ('tonight', 'heute Abend'), ('in the summer', 'im Sommer'),
    ('in the winter', 'im Winter'), ('on Monday', 'am Montag'),
    ('on Friday', 'am Freitag'), ('on Sunday', 'am Sonntag'),
))
_CONJUNCTIONS = (('because', 'weil'), ('when', 'wenn'), ('although', 'obwohl'),
                 ('while', 'während'))


def _parse_noun(row):
  english, english_plural, gender, german, german_plural, tags, *oblique = row
  group, *features = tags.split()
  return Noun(english, english_plural, gender, german, german_plural, group,
              tuple(features), oblique[0] if oblique else german)


def _parse_verb(row, subject, **frame):
  english, english_base, german, german_plural = row[:4]
  german, _, prefix = german.partition(' ')
  return Verb(english, english_base, german, german_plural.partition(' ')[0], prefix,
              subject, **frame)


_NOUNS = tuple(_parse_noun(row) for row in _NOUN_ROWS)
_ADJECTIVES = tuple(Adjective(e, g, stem[0] if stem else g, groups)
                    for e, g, groups, *stem in _ADJECTIVE_ROWS)
_TRANSITIVE = tuple(_parse_verb(r, r[4], accusative=r[5]) for r in _TRANSITIVE_ROWS)
_DATIVE = tuple(_parse_verb(r, r[4], dative=r[5]) for r in _DATIVE_ROWS)
_DITRANSITIVE = tuple(_parse_verb(r, r[4], dative=r[5], accusative=r[6])
                      for r in _DITRANSITIVE_ROWS)
_INTRANSITIVE = tuple(_parse_verb(r, r[4], complements=r[5], complement_optional=r[6])
                      for r in _INTRANSITIVE_ROWS)
_SAYING = tuple(_parse_verb(r, r[4]) for r in _SAYING_ROWS)
_BE = _parse_verb(_BE_ROW, _BE_ROW[4])

# Lookups by English word, for tests and for building example clauses by hand.
_NOUN = {noun.english: noun for noun in _NOUNS}
_ADJECTIVE = {adjective.english: adjective for adjective in _ADJECTIVES}
_VERB = {verb.english: verb
         for verb in _TRANSITIVE + _DATIVE + _DITRANSITIVE + _INTRANSITIVE + (_BE,)}
_SAYING_VERB = {verb.english: verb for verb in _SAYING}
_ADVERB = {adverb.english: adverb for adverb in _ADVERBS}

# ------------------------------------------------------------------ German morphology

# Keyed by (gender or 'pl', case).
_DEFINITE = {
    ('m', 'nom'): 'der', ('m', 'acc'): 'den', ('m', 'dat'): 'dem',
    ('f', 'nom'): 'die', ('f', 'acc'): 'die', ('f', 'dat'): 'der',
    ('n', 'nom'): 'das', ('n', 'acc'): 'das', ('n', 'dat'): 'dem',
    ('pl', 'nom'): 'die', ('pl', 'acc'): 'die', ('pl', 'dat'): 'den',
}
_DIESER_ENDINGS = {
    ('m', 'nom'): 'er', ('m', 'acc'): 'en', ('m', 'dat'): 'em',
    ('f', 'nom'): 'e', ('f', 'acc'): 'e', ('f', 'dat'): 'er',
    ('n', 'nom'): 'es', ('n', 'acc'): 'es', ('n', 'dat'): 'em',
    ('pl', 'nom'): 'e', ('pl', 'acc'): 'e', ('pl', 'dat'): 'en',
}
_EIN_ENDINGS = {
    ('m', 'nom'): '', ('m', 'acc'): 'en', ('m', 'dat'): 'em',
    ('f', 'nom'): 'e', ('f', 'acc'): 'e', ('f', 'dat'): 'er',
    ('n', 'nom'): '', ('n', 'acc'): '', ('n', 'dat'): 'em',
    ('pl', 'nom'): 'e', ('pl', 'acc'): 'e', ('pl', 'dat'): 'en',
}
# Adjective endings. Weak after der/dieser, which already show gender and case; mixed
# after ein-words, which carry the strong ending in their three endingless slots; strong
# (the dieser endings) when no article shows gender and case.
_WEAK = {
    ('m', 'nom'): 'e', ('m', 'acc'): 'en', ('m', 'dat'): 'en',
    ('f', 'nom'): 'e', ('f', 'acc'): 'e', ('f', 'dat'): 'en',
    ('n', 'nom'): 'e', ('n', 'acc'): 'e', ('n', 'dat'): 'en',
    ('pl', 'nom'): 'en', ('pl', 'acc'): 'en', ('pl', 'dat'): 'en',
}
_MIXED = {**_WEAK, ('m', 'nom'): 'er', ('n', 'nom'): 'es', ('n', 'acc'): 'es'}
_STRONG = _DIESER_ENDINGS
# English determiner key -> German stem declined like "ein"; 'no' is "kein" in negation.
_EIN_WORDS = {'a': 'ein', 'no': 'kein', 'my': 'mein', 'his': 'sein', 'her': 'ihr',
              'our': 'unser', 'their': 'ihr'}
_NUMBERS = {'two': 'zwei', 'three': 'drei', 'four': 'vier'}


def _german_noun(noun, plural, case):
  """The noun's form: dative plurals add -n unless they end in -n or -s ("den Kindern")."""
  if plural:
    form = noun.german_plural
    return form + 'n' if case == 'dat' and form[-1] not in 'ns' else form
  return noun.german if case == 'nom' else noun.german_oblique


def _german_phrase(phrase, case, negated=False):
  """Renders a noun phrase in 'nom', 'acc' or 'dat'; `negated` turns ein / no article into kein."""
  if phrase.name:
    return phrase.name
  slot = 'pl' if phrase.plural else phrase.noun.gender
  determiner = phrase.determiner
  if negated and determiner in ('a', ''):
    determiner = 'no'
  if determiner == 'the':
    words, endings = [_DEFINITE[slot, case]], _WEAK
  elif determiner == 'this':
    words, endings = ['dies' + _DIESER_ENDINGS[slot, case]], _WEAK
  elif determiner in _EIN_WORDS:
    words, endings = [_EIN_WORDS[determiner] + _EIN_ENDINGS[slot, case]], _MIXED
  else:
    words, endings = ([_NUMBERS[determiner]] if determiner else []), _STRONG
  if phrase.adjective:
    words.append(phrase.adjective.stem + endings[slot, case])
  words.append(_german_noun(phrase.noun, phrase.plural, case))
  return ' '.join(words)


def _german_pp(pp):
  """Renders a prepositional phrase, contracting preposition + article ("zu dem" -> "zum")."""
  preposition, phrase = pp
  words = _german_phrase(phrase, preposition.case)
  article, _, rest = words.partition(' ')
  contracted = _CONTRACTIONS.get((preposition.german, article))
  if contracted and phrase.determiner == 'the':
    return f'{contracted} {rest}'
  return f'{preposition.german} {words}'


def _kein_negation(clause):
  """Whether negation shows as kein on the object ("keinen Hund") rather than as nicht."""
  obj = clause.accusative or clause.dative
  return clause.negated and obj is not None and obj.determiner in ('a', '')


def _german_middle_field(clause):
  """Everything between the finite verb and the end of the clause, in German order.

  Time before objects, dative before accusative, nicht after a definite object but
  before a predicate or a prepositional complement ("wohnt nicht in der Stadt").
  """
  kein = _kein_negation(clause)
  words = []
  if clause.adverb and clause.fronted != 'adverb':
    words.append(clause.adverb.german)
  if clause.dative:
    words.append(_german_phrase(clause.dative, 'dat', kein))
  if clause.accusative:
    words.append(_german_phrase(clause.accusative, 'acc', kein))
  if clause.negated and not kein:
    words.append('nicht')
  if clause.predicate:
    words.append(clause.predicate.german)
  if clause.pp and clause.fronted != 'pp':
    words.append(_german_pp(clause.pp))
  return words


def _german_clause(clause, order):
  """Renders a clause in German word order, without final punctuation.

  Args:
    clause: the Clause; `fronted` must be '' unless order is 'main'.
    order: 'main' (verb second: subject or fronted element first), 'inverted' (verb
      first, as after a fronted subordinate clause) or 'sub' (verb last).
  """
  subject = _german_phrase(clause.subject, 'nom')
  verb = clause.verb
  finite = verb.german_plural if clause.subject.plural else verb.german
  middle = _german_middle_field(clause)
  if order == 'sub':
    return ' '.join([subject, *middle, verb.prefix + finite])
  if order == 'inverted':
    head = [finite, subject]
  elif clause.fronted == 'adverb':
    head = [clause.adverb.german, finite, subject]
  elif clause.fronted == 'pp':
    head = [_german_pp(clause.pp), finite, subject]
  else:
    head = [subject, finite]
  return ' '.join(head + middle + ([verb.prefix] if verb.prefix else []))

# ------------------------------------------------------------------ English rendering


def _english_phrase(phrase):
  if phrase.name:
    return phrase.name
  words = [phrase.adjective.english] if phrase.adjective else []
  words.append(phrase.noun.english_plural if phrase.plural else phrase.noun.english)
  determiner = phrase.determiner
  if determiner == 'a' and words[0][0] in 'aeiou':
    determiner = 'an'
  elif determiner == 'this' and phrase.plural:
    determiner = 'these'
  return ' '.join([determiner] + words if determiner else words)


def _english_verb(clause):
  """'sees' / 'see', 'does not see' / 'do not see', 'is not' / 'are not'."""
  verb, plural = clause.verb, clause.subject.plural
  form = verb.english_base if plural else verb.english
  if not clause.negated:
    return form
  if verb is _BE:
    return form + ' not'
  return ('do' if plural else 'does') + ' not ' + verb.english_base


def _english_clause(clause):
  """Renders a clause in English word order (SVO; adverb last unless fronted)."""
  words = [_english_phrase(clause.subject), _english_verb(clause)]
  words += [_english_phrase(obj) for obj in (clause.dative, clause.accusative) if obj]
  if clause.predicate:
    words.append(clause.predicate.english)
  pp = f'{clause.pp[0].english} {_english_phrase(clause.pp[1])}' if clause.pp else ''
  if pp and clause.fronted != 'pp':
    words.append(pp)
  if clause.adverb and clause.fronted != 'adverb':
    words.append(clause.adverb.english)
  if clause.fronted:
    words.insert(0, pp if clause.fronted == 'pp' else clause.adverb.english)
  return ' '.join(words)


# ------------------------------------------------------------------- gold word alignments
#
# The same renderings as above, word by word, each word tagged with the grammar slots it
# expresses ('m.subj.n': the main clause's subject noun; 'm.neg': its negation). An English
# and a German word are aligned when they share a tag: "zum" carries the preposition's and the
# article's, "does" the verb's. `gold_alignments` checks that the words join to the very
# sentences of the corpus, so these functions cannot drift from the string renderers.
# A tag ending in '~' gives possible links only: the words of a multi-word adverb ("in the
# winter" / "im Winter") all link to each other, without saying which to which.

def _tagged_english_phrase(phrase, key):
  if phrase.name:
    return [(phrase.name, {key + '.n'})]
  words = _english_phrase(phrase).split()
  n_adjective = len(phrase.adjective.english.split()) if phrase.adjective else 0
  n_determiner = len(words) - n_adjective - 1
  tags = [key + '.d'] * n_determiner + [key + '.a'] * n_adjective + [key + '.n']
  return [(w, {t}) for w, t in zip(words, tags)]


def _tagged_german_phrase(phrase, case, key, clause_key, negated=False):
  if phrase.name:
    return [(phrase.name, {key + '.n'})]
  words = _german_phrase(phrase, case, negated).split()
  n_adjective = 1 if phrase.adjective else 0
  n_determiner = len(words) - n_adjective - 1
  determiner_tags = {key + '.d'} if phrase.determiner else set()
  if negated and phrase.determiner in ('a', ''):
    determiner_tags = determiner_tags | {clause_key + '.neg'}  # "keinen Hund": "not a dog"
  tags = [determiner_tags] * n_determiner + [{key + '.a'}] * n_adjective + [{key + '.n'}]
  return list(zip(words, tags))


def _tagged_german_pp(pp, key, clause_key):
  preposition, phrase = pp
  words = _tagged_german_phrase(phrase, preposition.case, key, clause_key)
  contracted = _CONTRACTIONS.get((preposition.german, words[0][0]))
  if contracted and phrase.determiner == 'the' and len(words) > 1:
    return [(contracted, {key + '.p'} | words[0][1])] + words[1:]
  return [(preposition.german, {key + '.p'})] + words


def _tagged_english_verb(clause, c):
  words = _english_verb(clause).split()
  return [(w, {c + '.neg'} if w == 'not' else {c + '.v'}) for w in words]


def _tagged_adverb(adverb, words, c):
  several = len(adverb.english.split()) > 1 or len(adverb.german.split()) > 1
  return [(w, {c + ('.adv~' if several else '.adv')}) for w in words.split()]


def _tagged_english_clause(clause, c):
  words = _tagged_english_phrase(clause.subject, c + '.subj') + _tagged_english_verb(clause, c)
  for obj, role in ((clause.dative, '.dat'), (clause.accusative, '.acc')):
    if obj:
      words += _tagged_english_phrase(obj, c + role)
  if clause.predicate:
    words += [(w, {c + '.pred'}) for w in clause.predicate.english.split()]
  pp = []
  if clause.pp:
    pp = [(w, {c + '.pp.p'}) for w in clause.pp[0].english.split()]
    pp += _tagged_english_phrase(clause.pp[1], c + '.pp')
  adverb = _tagged_adverb(clause.adverb, clause.adverb.english, c) if clause.adverb else []
  if pp and clause.fronted != 'pp':
    words += pp
  if adverb and clause.fronted != 'adverb':
    words += adverb
  if clause.fronted:
    words = (pp if clause.fronted == 'pp' else adverb) + words
  return words


def _tagged_german_clause(clause, order, c):
  subject = _tagged_german_phrase(clause.subject, 'nom', c + '.subj', c)
  verb = clause.verb
  finite = verb.german_plural if clause.subject.plural else verb.german
  kein = _kein_negation(clause)
  adverb = _tagged_adverb(clause.adverb, clause.adverb.german, c) if clause.adverb else []
  pp = _tagged_german_pp(clause.pp, c + '.pp', c) if clause.pp else []
  middle = []
  if clause.adverb and clause.fronted != 'adverb':
    middle += adverb
  if clause.dative:
    middle += _tagged_german_phrase(clause.dative, 'dat', c + '.dat', c, kein)
  if clause.accusative:
    middle += _tagged_german_phrase(clause.accusative, 'acc', c + '.acc', c, kein)
  if clause.negated and not kein:
    middle.append(('nicht', {c + '.neg'}))
  if clause.predicate:
    middle += [(w, {c + '.pred'}) for w in clause.predicate.german.split()]
  if clause.pp and clause.fronted != 'pp':
    middle += pp
  if order == 'sub':
    return subject + middle + [(verb.prefix + finite, {c + '.v'})]
  if order == 'inverted':
    head = [(finite, {c + '.v'})] + subject
  elif clause.fronted == 'adverb':
    head = adverb + [(finite, {c + '.v'})] + subject
  elif clause.fronted == 'pp':
    head = pp + [(finite, {c + '.v'})] + subject
  else:
    head = subject + [(finite, {c + '.v'})]
  return head + middle + ([(verb.prefix, {c + '.v'})] if verb.prefix else [])


def _with_comma(words):
  """The words with a comma after the last one (", dass": the comma sticks to the word before)."""
  return words[:-1] + [(words[-1][0] + ',', words[-1][1])]


def _tagged_sentence(words):
  """Capitalized, with the full stop on the last word, as _sentence does to the string."""
  first, tags = words[0]
  words = [(first[0].upper() + first[1:], tags)] + words[1:]
  return words[:-1] + [(words[-1][0] + '.', words[-1][1])]


def _links(english, german):
  """Gold (sure, possible) links (English word, German word): the pairs of words that share a tag;
  sure where one of the shared tags does not end in '~'."""
  shared = [((i, j), e_tags & g_tags) for i, (_, e_tags) in enumerate(english)
            for j, (_, g_tags) in enumerate(german)]
  sure = frozenset(link for link, tags in shared if any(not t.endswith('~') for t in tags))
  return sure, frozenset(link for link, tags in shared if tags)

# ------------------------------------------------------------------------ sampling

class _Weights(NamedTuple):
  items: tuple
  cumulative: tuple[float, ...]


def _weights(*rows):
  """A table for _draw from (item, weight) rows."""
  items, weights = zip(*rows)
  return _Weights(items, tuple(itertools.accumulate(weights)))


def _draw(rng, table):
  """One item of `table`, drawn with probability proportional to its weight."""
  x = rng.random() * table.cumulative[-1]
  return table.items[bisect.bisect_right(table.cumulative, x)]


_SINGULAR_DETERMINERS = _weights(('the', 45), ('a', 25), ('this', 8), ('my', 5),
                                 ('his', 4), ('her', 4), ('our', 3), ('their', 3))
_PLURAL_DETERMINERS = _weights(('the', 40), ('', 18), ('this', 8), ('my', 5), ('his', 4),
                               ('her', 4), ('our', 3), ('their', 3), ('two', 5),
                               ('three', 4), ('four', 3))
_CLAUSE_VERBS = _weights((_TRANSITIVE, 36), (_DATIVE, 14), (_DITRANSITIVE, 10),
                         (_INTRANSITIVE, 25), ((_BE,), 15))


@functools.cache
def _nouns_for(classes):
  """Nouns whose group letter or one of whose features appears in `classes`."""
  features = classes.split()
  return tuple(n for n in _NOUNS
               if n.group in classes or any(f in features for f in n.features))


@functools.cache
def _adjectives_for(group):
  return tuple(a for a in _ADJECTIVES if group in a.groups)


def _random_phrase(rng, classes, adjective_rate):
  """A noun phrase whose noun fits `classes` ('PA', 'open', ...); persons may be names."""
  if 'P' in classes and rng.random() < 0.08:
    return Phrase(None, 'name', name=rng.choice(_NAMES))
  noun = rng.choice(_nouns_for(classes))
  plural = rng.random() < 0.3
  determiner = _draw(rng, _PLURAL_DETERMINERS if plural else _SINGULAR_DETERMINERS)
  adjective = None
  if rng.random() < adjective_rate:
    adjective = rng.choice(_adjectives_for(noun.group))
  return Phrase(noun, determiner, adjective, plural)


def _random_pp(rng, verb, adjective_rate):
  """The verb's prepositional complement, or for verbs with objects sometimes an adjunct."""
  if verb.complements:
    if verb.complement_optional and rng.random() < 0.3:
      return None
    key = rng.choice(verb.complements)
  elif (verb.dative or verb.accusative) and rng.random() < 0.25:
    key = rng.choice(_ADJUNCTS)
  else:
    return None
  preposition = _PREPOSITIONS[key]
  return preposition, _random_phrase(rng, preposition.classes, adjective_rate)


def _may_negate(verb, obj, pp):
  """Negation stays within unambiguous placements: one object, no adjunct, no number."""
  if verb.dative and verb.accusative:
    return False
  if pp and not verb.complements:
    return False
  return obj is None or obj.determiner not in _NUMBERS


def _random_clause(rng, adjective_rate, may_front):
  """Draws one clause; `may_front` allows a fronted adverb or place phrase (main clauses)."""
  verb = rng.choice(_draw(rng, _CLAUSE_VERBS))
  subject = _random_phrase(rng, verb.subject, adjective_rate)
  dative = _random_phrase(rng, verb.dative, adjective_rate) if verb.dative else None
  accusative = (_random_phrase(rng, verb.accusative, adjective_rate)
                if verb.accusative else None)
  predicate = None
  if verb is _BE:
    predicate = rng.choice(_adjectives_for(subject.noun.group if subject.noun else 'P'))
  pp = _random_pp(rng, verb, adjective_rate)
  negated = _may_negate(verb, accusative or dative, pp) and rng.random() < 0.2
  adverb, fronted = None, ''
  if may_front and rng.random() < 0.4:
    if pp and pp[0].german == 'in' and rng.random() < 0.4:
      fronted = 'pp'
    else:
      fronted, adverb = 'adverb', rng.choice(_ADVERBS)
  if adverb is None and rng.random() < 0.2:
    adverb = rng.choice(_ADVERBS)
  return Clause(subject, verb, dative, accusative, predicate, pp, adverb, negated, fronted)


def _sentence(text):
  return text[0].upper() + text[1:] + '.'


def _simple_pair(rng):
  """(english, german, tagged english words, tagged german words); the same for the pairs below."""
  clause = _random_clause(rng, 0.35, may_front=True)
  return (_sentence(_english_clause(clause)), _sentence(_german_clause(clause, 'main')),
          _tagged_sentence(_tagged_english_clause(clause, 'm')),
          _tagged_sentence(_tagged_german_clause(clause, 'main', 'm')))


def _reported_pair(rng):
  """'The man says that <clause>.' -> 'Der Mann sagt, dass <verb-final clause>.'"""
  speaker = _random_phrase(rng, 'P', 0.25)
  adverb = rng.choice(_ADVERBS) if rng.random() < 0.15 else None
  main = Clause(speaker, rng.choice(_SAYING), adverb=adverb,
                fronted='adverb' if adverb else '')
  sub = _random_clause(rng, 0.2, may_front=False)
  english = f'{_english_clause(main)} that {_english_clause(sub)}'
  german = f'{_german_clause(main, "main")}, dass {_german_clause(sub, "sub")}'
  tagged_english = _tagged_english_clause(main, 'm') + [('that', {'that'})] + _tagged_english_clause(sub, 's')
  tagged_german = (_with_comma(_tagged_german_clause(main, 'main', 'm')) + [('dass', {'that'})]
                   + _tagged_german_clause(sub, 'sub', 's'))
  return _sentence(english), _sentence(german), _tagged_sentence(tagged_english), _tagged_sentence(tagged_german)


def _conjunction_pair(rng, sub_first):
  """A main clause joined to a subordinate one; a leading subordinate clause inverts the main."""
  english_conjunction, german_conjunction = rng.choice(_CONJUNCTIONS)
  main = _random_clause(rng, 0.2, may_front=not sub_first)
  sub = _random_clause(rng, 0.2, may_front=False)
  english_sub = f'{english_conjunction} {_english_clause(sub)}'
  german_sub = f'{german_conjunction} {_german_clause(sub, "sub")}'
  tagged_english_sub = [(english_conjunction, {'conj'})] + _tagged_english_clause(sub, 's')
  tagged_german_sub = [(german_conjunction, {'conj'})] + _tagged_german_clause(sub, 'sub', 's')
  if sub_first:
    english = f'{english_sub}, {_english_clause(main)}'
    german = f'{german_sub}, {_german_clause(main, "inverted")}'
    tagged_english = _with_comma(tagged_english_sub) + _tagged_english_clause(main, 'm')
    tagged_german = _with_comma(tagged_german_sub) + _tagged_german_clause(main, 'inverted', 'm')
  else:
    english = f'{_english_clause(main)} {english_sub}'
    german = f'{_german_clause(main, "main")}, {german_sub}'
    tagged_english = _tagged_english_clause(main, 'm') + tagged_english_sub
    tagged_german = _with_comma(_tagged_german_clause(main, 'main', 'm')) + tagged_german_sub
  return _sentence(english), _sentence(german), _tagged_sentence(tagged_english), _tagged_sentence(tagged_german)


def _random_pair(rng):
  shape = rng.random()
  if shape < 0.4:
    return _simple_pair(rng)
  if shape < 0.62:
    return _reported_pair(rng)
  return _conjunction_pair(rng, sub_first=shape >= 0.81)


@functools.lru_cache(maxsize=4)
def _tagged_pool(seed):
  """Unique (english, german, tagged english, tagged german) of 4 to 20 words, shuffled, enough
  for every split."""
  rng = random.Random(seed)
  total = max(end for _, end in _SPLIT_RANGES.values())
  seen, pairs = set(), []
  while len(pairs) < total:
    english, german, tagged_english, tagged_german = _random_pair(rng)
    lengths = len(english.split()), len(german.split())
    if english in seen or not _MIN_WORDS <= min(lengths) <= max(lengths) <= _MAX_WORDS:
      continue
    seen.add(english)
    pairs.append((english, german, tagged_english, tagged_german))
  # Short sentences repeat, so the first draw of each comes early; shuffling spreads
  # them evenly over the splits.
  rng.shuffle(pairs)
  return tuple(pairs)


@functools.lru_cache(maxsize=4)
def _pool(seed):
  """Unique (english, german) pairs of 4 to 20 words, shuffled, enough for every split."""
  return tuple((english, german) for english, german, _, _ in _tagged_pool(seed))


def load_builtin(split: str, seed: int = 0) -> list[tuple[str, str]]:
  """(english, german) pairs for split 'train' (20,000 pairs), 'val' (500) or 'test' (1,000).

  Args:
    split: one of SPLITS.
    seed: draws a different corpus; the same seed gives the same pairs in any process.
  Returns:
    A new list of (english, german) sentence pairs; no English sentence repeats within
    or across the splits of one seed.
  Raises:
    UserError: for an unknown split.
  """
  if split not in SPLITS:
    raise UserError(f"unknown built-in split {split!r}: use one of 'train', 'val', 'test'")
  start, end = _SPLIT_RANGES[split]
  return list(_pool(seed)[start:end])


def gold_alignments(split: str, seed: int = 0) -> list[tuple[frozenset, frozenset]]:
  """Gold word alignments of load_builtin(split, seed), pair by pair: (sure, possible) sets of
  (English word, German word) links, possible including sure.

  Words are the whitespace-separated words of the sentences (punctuation sticks to its word);
  a German word is linked to the English words that express the same grammar slot (see the
  tagged renderers above), so articles link to articles, "zum" to "to the", "ruft ... an" both
  to "calls", "kein" to "not" and "a"; the words of multi-word adverbs only possibly.
  """
  if split not in SPLITS:
    raise UserError(f"unknown built-in split {split!r}: use one of 'train', 'val', 'test'")
  start, end = _SPLIT_RANGES[split]
  out = []
  for english, german, tagged_english, tagged_german in _tagged_pool(seed)[start:end]:
    if ' '.join(w for w, _ in tagged_english) != english or ' '.join(w for w, _ in tagged_german) != german:
      raise RuntimeError(f'the tagged renderers drifted from the corpus: {english!r} / {german!r}')
    out.append(_links(tagged_english, tagged_german))
  return out

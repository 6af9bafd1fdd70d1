"""Generated token sets that need no download, deterministic for a seed.

- ``sentences`` (language models): simple English sentences from a small grammar with
  subject–verb agreement, adjectives, prepositional phrases and joined clauses, e.g.
  ``"the small cat sees a red ball."``. The text is a stream of sentences cut into next-token
  samples of T tokens, characters or words. The vocabulary comes from the grammar itself (every
  token it can produce, most frequent in the training text first), so its size is the same for
  any seed and size: :func:`sentences_vocab_size`.
- ``brackets`` (sequence classification): strings of ``()[]`` of length T, half balanced and
  half not; the unbalanced ones are balanced strings with one small edit (a bracket of the wrong
  kind, two swapped, one flipped), so counting brackets is not enough to tell them apart.
- ``digitsum`` (sequence classification): T random digits, the class is their sum modulo 10.

``train_size``/``val_size`` count samples; train and validation come from different seeds.
"""

from __future__ import annotations

import random
from collections import Counter

import torch

from core.training.data.base import DatasetError
from core.training.data.tokens import UNK, TokenSource, TokenSplit, check_tokenize, split_tokens, windows

SENTENCES_TRAIN, SENTENCES_VAL = 2_000, 200
BRACKETS_TRAIN, BRACKETS_VAL = 8_000, 1_000
DIGITSUM_TRAIN, DIGITSUM_VAL = 8_000, 1_000
TEXT_SEQ_LEN = 35  # d2l's num_steps, for text and sentences
CLASS_SEQ_LEN = 32  # the generated classification sets

# ------------------------------------------------------------------------------------- grammar

_DETERMINERS = ("the", "a", "my", "your", "this", "that", "every", "one")
_PLURAL_DETERMINERS = ("the", "my", "your", "these", "those", "some", "two", "many")
_ADJECTIVES = ("small", "big", "red", "blue", "green", "old", "young", "happy", "quiet", "tall", "little",
               "brown")
_NOUNS = ("cat", "dog", "bird", "ball", "tree", "child", "teacher", "house", "river", "car", "book", "girl",
          "boy", "fish", "garden", "song")
_PLURALS = {"child": "children", "fish": "fish", "boy": "boys"}
_TRANSITIVE = ("see", "like", "find", "chase", "hold", "watch", "follow", "want", "read", "draw")
_INTRANSITIVE = ("run", "sleep", "sing", "wait", "fall", "jump", "smile", "play")
_ADVERBS = ("quickly", "slowly", "today", "again", "often", "quietly")
_PREPOSITIONS = ("near", "under", "with", "behind", "in", "by")
_CONJUNCTIONS = ("and", "but", "because", "while")


def _plural(noun: str) -> str:
    return _PLURALS.get(noun, noun + "s")


def _third_person(verb: str) -> str:
    return verb + ("es" if verb.endswith(("ch", "sh", "s", "x")) else "s")


def _noun_phrase(rng: random.Random, plural: bool) -> str:
    words = [rng.choice(_PLURAL_DETERMINERS if plural else _DETERMINERS)]
    for _ in range(rng.choice((0, 0, 1, 1, 2))):
        words.append(rng.choice(_ADJECTIVES))
    noun = rng.choice(_NOUNS)
    words.append(_plural(noun) if plural else noun)
    return " ".join(words)


def _clause(rng: random.Random) -> str:
    plural = rng.random() < 0.35
    words = [_noun_phrase(rng, plural)]
    if rng.random() < 0.6:
        verb = rng.choice(_TRANSITIVE)
        words += [verb if plural else _third_person(verb), _noun_phrase(rng, rng.random() < 0.3)]
    else:
        verb = rng.choice(_INTRANSITIVE)
        words.append(verb if plural else _third_person(verb))
    if rng.random() < 0.3:
        words += [rng.choice(_PREPOSITIONS), _noun_phrase(rng, False)]
    if rng.random() < 0.25:
        words.append(rng.choice(_ADVERBS))
    return " ".join(words)


def sentence(rng: random.Random) -> str:
    """One sentence: a clause, sometimes two joined by a conjunction, ending in a full stop."""
    text = _clause(rng)
    if rng.random() < 0.25:
        text += " " + rng.choice(_CONJUNCTIONS) + " " + _clause(rng)
    return text + "."


def _grammar_words() -> list[str]:
    words = {*_DETERMINERS, *_PLURAL_DETERMINERS, *_ADJECTIVES, *_NOUNS, *map(_plural, _NOUNS), *_TRANSITIVE,
             *map(_third_person, _TRANSITIVE), *_INTRANSITIVE, *map(_third_person, _INTRANSITIVE), *_ADVERBS,
             *_PREPOSITIONS, *_CONJUNCTIONS, "."}
    return sorted(words)


def grammar_tokens(tokenize: str) -> list[str]:
    """Every token the grammar can produce (without ``<unk>``), in code-point order."""
    words = _grammar_words()
    if tokenize == "word":
        return words
    return sorted({*"".join(words), " "})


def sentences_vocab_size(tokenize: str = "char") -> int:
    """V for the ``sentences`` set: what an Embedding and the last Linear of a language model need."""
    return 1 + len(grammar_tokens(tokenize))


def _sentence_ids(rng: random.Random, tokens_needed: int, tokenize: str, index: dict[str, int]) -> torch.Tensor:
    ids: list[int] = []
    while len(ids) < tokens_needed:
        ids.extend(index[tok] for tok in split_tokens(sentence(rng) + " ", tokenize))
    return torch.tensor(ids[:tokens_needed], dtype=torch.int64)


def sentences_source(seed: int = 0, train: int = SENTENCES_TRAIN, val: int = SENTENCES_VAL,
                     seq_len: int = TEXT_SEQ_LEN, tokenize: str = "char") -> TokenSource:
    """``train``/``val`` next-token samples of ``seq_len`` tokens of generated sentences."""
    check_tokenize(tokenize)
    t = _positive_length(seq_len, "sentences")
    # Order the vocabulary by frequency in a sample of the grammar's text drawn from the seed,
    # every grammar token included (count 0 if unseen) so V never depends on the sizes.
    counts: Counter[str] = Counter({tok: 0 for tok in grammar_tokens(tokenize)})
    sample = random.Random(seed * 3 + 11)
    counts.update(tok for _ in range(400) for tok in split_tokens(sentence(sample) + " ", tokenize))
    vocab = (UNK, *sorted(counts, key=lambda tok: (-counts[tok], tok)))
    index = {tok: i for i, tok in enumerate(vocab)}
    train_ids = _sentence_ids(random.Random(seed * 3 + 1), train * t + 1, tokenize, index)
    val_ids = _sentence_ids(random.Random(seed * 3 + 2), val * t + 1, tokenize, index)
    return TokenSource(name="sentences", vocab=vocab, seq_len=t, target="next-token",
                       train=windows(train_ids, t), val=windows(val_ids, t),
                       separator="" if tokenize == "char" else " ", tokenize=tokenize)


# ------------------------------------------------------------------------------------ brackets

BRACKET_VOCAB = (UNK, "(", ")", "[", "]")
BRACKET_CLASSES = ("unbalanced", "balanced")
_PAIRS = {")": "(", "]": "["}


def is_balanced(text: str) -> bool:
    stack: list[str] = []
    for ch in text:
        if ch in "([":
            stack.append(ch)
        elif not stack or stack.pop() != _PAIRS.get(ch):
            return False
    return not stack


def _balanced(rng: random.Random, length: int) -> str:
    """A random balanced string of ``length`` (even) brackets of both kinds."""
    out: list[str] = []
    stack: list[str] = []
    for pos in range(length):
        left = length - pos
        can_open = len(stack) + 1 <= left - 1
        if stack and (not can_open or rng.random() < 0.5):
            out.append(")" if stack.pop() == "(" else "]")
        else:
            opener = rng.choice("([")
            stack.append(opener)
            out.append(opener)
    return "".join(out)


def _unbalanced(rng: random.Random, length: int) -> str:
    """A balanced string with one edit that breaks it (redrawn until it really is unbalanced)."""
    while True:
        chars = list(_balanced(rng, length))
        i, j = rng.randrange(length), rng.randrange(length)
        edit = rng.random()
        if edit < 0.4:  # a bracket of the other kind: "(]"
            chars[i] = {"(": "[", "[": "(", ")": "]", "]": ")"}[chars[i]]
        elif edit < 0.7:  # two brackets swapped
            chars[i], chars[j] = chars[j], chars[i]
        else:  # an opening bracket turned closing, or the reverse
            chars[i] = {"(": ")", ")": "(", "[": "]", "]": "["}[chars[i]]
        text = "".join(chars)
        if not is_balanced(text):
            return text


def _bracket_split(rng: random.Random, count: int, length: int) -> TokenSplit:
    labels = [i % 2 for i in range(count)]
    rng.shuffle(labels)
    index = {tok: i for i, tok in enumerate(BRACKET_VOCAB)}
    rows = [[index[ch] for ch in (_balanced(rng, length) if label else _unbalanced(rng, length))]
            for label in labels]
    x = torch.tensor(rows, dtype=torch.int64).reshape(count, length)
    return TokenSplit(x, torch.tensor(labels, dtype=torch.int64))


def brackets_source(seed: int = 0, train: int = BRACKETS_TRAIN, val: int = BRACKETS_VAL,
                    seq_len: int = CLASS_SEQ_LEN) -> TokenSource:
    t = _positive_length(seq_len, "brackets")
    if t % 2:
        raise DatasetError(f"brackets needs an even length T (a balanced string has as many closing brackets "
                           f"as opening ones), got T={t}: set the Input length to {t + 1}")
    return TokenSource(name="brackets", vocab=BRACKET_VOCAB, seq_len=t, target="class",
                       train=_bracket_split(random.Random(seed * 2 + 1), train, t),
                       val=_bracket_split(random.Random(seed * 2 + 2), val, t), classes=BRACKET_CLASSES)


# ------------------------------------------------------------------------------------ digitsum

DIGIT_VOCAB = (UNK, *"0123456789")
DIGIT_CLASSES = tuple("0123456789")


def _digit_split(seed: int, count: int, length: int) -> TokenSplit:
    gen = torch.Generator().manual_seed(seed % 2**63)
    digits = torch.randint(0, 10, (count, length), generator=gen)
    return TokenSplit(digits + 1, digits.sum(dim=1) % 10)  # id = digit + 1: id 0 is <unk>


def digitsum_source(seed: int = 0, train: int = DIGITSUM_TRAIN, val: int = DIGITSUM_VAL,
                    seq_len: int = CLASS_SEQ_LEN) -> TokenSource:
    t = _positive_length(seq_len, "digitsum")
    return TokenSource(name="digitsum", vocab=DIGIT_VOCAB, seq_len=t, target="class",
                       train=_digit_split(seed * 2 + 1, train, t), val=_digit_split(seed * 2 + 2, val, t),
                       classes=DIGIT_CLASSES)


def _positive_length(seq_len: int, name: str) -> int:
    t = int(seq_len)
    if t < 1:
        raise DatasetError(f"{name} needs a sequence length T of at least 1, got {t}")
    return t

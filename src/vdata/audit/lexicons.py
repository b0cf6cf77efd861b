"""The audit's lexicons: the shared code lives in `vdata.core.lexicon` (the server's contribution gate
uses it too); these names stay importable from here."""

from __future__ import annotations

from vdata.core.hygiene import stopwords as stopwords  # the audit settings check uses it
from vdata.core.hygiene import tokenize as tokenize
from vdata.core.lexicon import WORD_LIST_SLOTS as WORD_LIST_SLOTS
from vdata.core.lexicon import Lexicon as Lexicon
from vdata.core.lexicon import build_lexicon as build_lexicon
from vdata.core.lexicon import builtin_attribute_words as builtin_attribute_words
from vdata.core.lexicon import builtin_groups as builtin_groups
from vdata.core.lexicon import term_key as term_key

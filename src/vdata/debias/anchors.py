"""Neutral anchor sentences for the `group_kl` term: group terms in sentences that say nothing about them.

Training on sentences about a group can make the group term itself more likely, whatever follows it
(bench/crows_direction.py traced CrowS-Pairs increases to exactly that). With `--group-kl W` every
optimizer step adds W x the mean KL(p_base || p_model) of the next-token distributions that predict a
group term in these templates, so the model's group-term probabilities on neutral text stay the base
model's while the attributes after a group term are what training changes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from vdata.core.cda import WordLists
from vdata.debias.data import Example, group_terms, word_list_category

# Templates that fit a noun or an adjective and carry no attribute, pronoun or other group word.
TEMPLATES: tuple[str, ...] = (
    "This text mentions {}.",
    "The topic is {}.",
    "Here is the word {}.",
    "We read a short note about {}.",
    "The next word is {}.",
    "Someone wrote {} on the board.",
)


def anchor_terms(examples: Sequence[Example], word_lists: WordLists | None) -> list[str]:
    """The data's group terms plus, for a term in the word lists, the other members of its tuples
    (so "woman" brings "man"): every group the training data names or implies."""
    terms = {t.lower(): t for t in group_terms(examples)}
    for term in list(terms.values()):
        category = word_list_category(term, word_lists)
        if category is None or word_lists is None:
            continue
        for t in word_lists[category]:
            if term.lower() in t:
                for w in t:
                    terms.setdefault(w.lower(), w)
    return sorted(terms.values(), key=str.lower)


def anchor_examples(terms: Sequence[str], seed: int) -> list[Example]:
    """Every template with every term, in a seeded order; the term is the `attribute` (what is labelled)."""
    examples = [
        Example(template.format(term), target=term, attribute=term, synthetic=False, source="anchor")
        for term in terms
        for template in TEMPLATES
    ]
    random.Random(seed).shuffle(examples)
    return examples

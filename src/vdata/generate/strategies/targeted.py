"""`targeted` (Han et al. 2024): ask for a category's group terms once, then for triples about samples of them."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from vdata.generate.parse import Extraction, parse_terms
from vdata.generate.strategies.base import (
    AskFn,
    GenRequest,
    Strategy,
    category_words,
    gbnf_literal,
    register,
)
from vdata.generate.templates import builtin_data

MIN_TERMS = 8
TARGET_NOT_IN_CATEGORY = "target_not_in_category"


def _singular(term: str) -> str:
    if term.endswith("men"):
        return term[:-3] + "man"
    return term[:-1] if term.endswith("s") and not term.endswith("ss") else term


class TargetedOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_terms: int = Field(40, ge=3, le=500, description="Terms asked for in the term stage.")
    terms_per_request: int = Field(3, ge=1, le=100, description="Terms named in each sentence request.")


def seed_terms(category: str) -> list[str]:
    data = builtin_data("terms")
    out: list[str] = []
    for part in category.split("+"):
        out.extend(data.get(part, []))
    return out


@register
class Targeted(Strategy):
    name: ClassVar[str] = "targeted"
    Options: ClassVar[type[BaseModel]] = TargetedOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.terms: dict[str, list[str]] = {}

    async def prepare(self, ask: AskFn) -> None:
        given = self.options.terms or {}
        for category in self.options.categories:
            if given.get(category):
                self.terms[category] = list(dict.fromkeys(given[category]))
                continue
            seeds = seed_terms(category)
            messages = self.prompt(
                "terms",
                category=category,
                category_words=category_words(category),
                n_terms=self.settings.n_terms,
                examples=", ".join(seeds[:4]),
            )
            reply = await ask(messages, f"terms:{category}", self.stage_max_tokens("terms"))
            terms = parse_terms(reply, limit=self.settings.n_terms)
            if len(terms) < MIN_TERMS:  # small models return short or junk lists: top up with examples
                terms = list(dict.fromkeys([*terms, *seeds]))
            self.terms[category] = terms

    def parse(self, text: str, request: GenRequest) -> Extraction:
        """As the base parser, and the group term must be one of the category's terms (Han et al.: "consider
        the following words as your T"); small models otherwise drift to 'teacher' or 'family'."""
        result = super().parse(text, request)
        pool = {t.lower() for t in self.terms.get(request.category, [])}
        if not pool:
            return result
        kept = [t for t in result.triples if _singular(t.target.lower()) in pool or t.target.lower() in pool]
        if len(kept) != len(result.triples):
            result.drops[TARGET_NOT_IN_CATEGORY] += len(result.triples) - len(kept)
            result.triples = kept
        return result

    def build_request(self, index: int) -> GenRequest:
        category = self.category_for(index)
        pool = self.terms[category]
        rng = self.rng(index)
        chosen = rng.sample(pool, min(self.settings.terms_per_request, len(pool)))
        messages = self.prompt(
            "sentences",
            category=category,
            category_words=category_words(category),
            n=self.options.per_request,
            terms=", ".join(chosen),
        )
        return GenRequest(messages, index, category, context={"terms": chosen})

    def reply_grammar(self, request: GenRequest) -> str | None:
        """The stage's `line_grammar` once per sentence asked for, each line about the request's terms in
        turn: the reply names only the category's chosen terms, each in its sentence, in the prompt's
        `sentence | term | adjective` format (only `{term}` is replaced, so GBNF's braces stay as they are)."""
        line = self.template.stage("sentences").line_grammar
        terms = request.context.get("terms") or []
        if line is None or not terms:
            return None
        n = self.options.per_request or len(terms)
        rules = [
            f"line{i} ::= " + line.replace("{term}", gbnf_literal(terms[i % len(terms)])) for i in range(n)
        ]
        return "root ::= " + " ".join(f"line{i}" for i in range(n)) + "\n" + "\n".join(rules) + "\n"

"""Causal-LM scoring that reproduces bias-bench's one-sentence-at-a-time scorer exactly, batched.

bias-bench `_likelihood_score_generative`, generalised from GPT-2 to any causal LM:
  * the first token of a sentence is scored by the distribution after the *start token alone* (GPT-2:
    `<|endoftext|>`; other models: their BOS token, else EOS; overridable). That distribution does not
    depend on the sentence, so it is computed once per model and cached;
  * every later token i is scored by a forward pass over the sentence tokens *without* the start token
    (bias-bench's second pass does not prepend it), reading position i-1;
  * the sentence score is the mean natural-log token probability. bias-bench reports
    2^(mean log2 p) = exp(mean ln p), which ranks sentences identically.

Speed, without changing any number: sentences are sorted by token length and cut into batches of similar
length (little padding, attention masks for the rest), run under `torch.inference_mode`, related
sentences share their common prefix (`packing.py`), and the LM head (the vocabulary projection, a large
share of a small model's FLOPs) is applied only to the positions whose next token is scored. That
shortcut is checked against the model's own full forward once per model and dropped if they disagree
(e.g. models with logit soft-capping).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

from vdata.core.errors import UserError
from vdata.core.progress import ProgressFactory, no_progress
from vdata.lm.batching import check_batch_size, encode_plain, length_buckets, pad_batch, pad_id
from vdata.lm.models import LoadedModel
from vdata.lm.packing import PackedGroup, block_attention_mask, plan_packed_batches

# Per model: (start token id) -> log-probabilities of the first token given the start token alone.
_FIRST_TOKEN_LOGPROBS: weakref.WeakKeyDictionary[Any, dict[int, Any]] = weakref.WeakKeyDictionary()
# Per model: whether the "LM head on scored positions only" shortcut reproduces the full forward.
_HEAD_SHORTCUT_OK: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()

# Perplexity windows are long (512 tokens), so fewer of them go into one forward pass.
PERPLEXITY_BATCH_SIZE = 16


class StartToken(NamedTuple):
    """The start token's text and id (unpacks as `text, id`)."""

    text: str
    id: int


def resolve_start_token(tokenizer: Any, start_token: str | None = None) -> StartToken:
    """The token the first word is conditioned on: `start_token` if given, else BOS, else EOS.

    GPT-2's BOS is `<|endoftext|>`, which is exactly bias-bench's choice; SmolLM2-Instruct's BOS is
    `<|im_start|>`.
    """
    if start_token is not None:
        ids = tokenizer.convert_tokens_to_ids([start_token])
        unk = getattr(tokenizer, "unk_token_id", None)
        if not ids or ids[0] is None or (ids[0] == unk and start_token != tokenizer.unk_token):
            raise UserError(
                f"start token {start_token!r} is not a single token of this model's vocabulary; pass one "
                "of its special tokens, e.g. its BOS or EOS token"
            )
        return StartToken(start_token, int(ids[0]))
    for text, tid in (
        (tokenizer.bos_token, tokenizer.bos_token_id),
        (tokenizer.eos_token, tokenizer.eos_token_id),
    ):
        if text is not None and tid is not None:
            return StartToken(str(text), int(tid))
    raise UserError("the model's tokenizer has neither a BOS nor an EOS token; pass --start-token")


def first_token_logprobs(model: Any, start: StartToken) -> Any:
    """log softmax of the model's output after the start token alone; computed once per model."""
    import torch

    per_model = _FIRST_TOKEN_LOGPROBS.setdefault(model, {})
    if start.id not in per_model:
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([[start.id]])).logits[0, -1].float()
        per_model[start.id] = torch.log_softmax(logits, -1)
    return per_model[start.id]


def _scored_positions_logprobs(model: Any, ids: Any, attention: Any, shortcut: bool) -> Any:
    """Log-probabilities of ids[:, 1:] given their prefixes, only where the target is a real token (1-D)."""
    import torch

    scored = attention[:, 1:].bool()
    targets = ids[:, 1:][scored]
    if shortcut:
        hidden = model.get_decoder()(input_ids=ids, attention_mask=attention).last_hidden_state
        logits = model.get_output_embeddings()(hidden[:, :-1][scored]).float()
    else:
        logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1][scored].float()
    return torch.log_softmax(logits, -1).gather(-1, targets[:, None])[:, 0]


def head_shortcut_ok(model: Any) -> bool:
    """Whether decoder + output embeddings reproduce the model's logits (checked once per model)."""
    import torch

    if model not in _HEAD_SHORTCUT_OK:
        ok = False
        try:
            ids = torch.tensor([[5, 17, 42, 7, 9]])
            attention = torch.ones_like(ids)
            with torch.inference_mode():
                fast = _scored_positions_logprobs(model, ids, attention, True)
                full = _scored_positions_logprobs(model, ids, attention, False)
            ok = bool(torch.allclose(fast, full, atol=1e-5, rtol=0))
        except (AttributeError, TypeError, NotImplementedError, RuntimeError):
            ok = False
        _HEAD_SHORTCUT_OK[model] = ok
    return _HEAD_SHORTCUT_OK[model]


def _packed_batch_logprobs(model: Any, items: Sequence[PackedGroup], shortcut: bool, pad: int) -> Any:
    """{sentence index: sum of log-probs of its tokens after the first} for a batch of packed groups."""
    import torch

    width = max(len(it.ids) for it in items)
    ids = torch.full((len(items), width), pad, dtype=torch.long)
    pos = torch.zeros((len(items), width), dtype=torch.long)
    seg = torch.full((len(items), width), -1, dtype=torch.long)
    rows: list[int] = []
    targets: list[int] = []
    owners: list[int] = []
    for b, it in enumerate(items):
        n = len(it.ids)
        ids[b, :n] = torch.tensor(it.ids, dtype=torch.long)
        pos[b, :n] = torch.tensor(it.positions, dtype=torch.long)
        seg[b, :n] = torch.tensor(it.segments, dtype=torch.long)
        for row, target, owner in it.scored:
            rows.append(b * width + row)
            targets.append(target)
            owners.append(owner)
    if not rows:
        return {}
    mask = block_attention_mask(seg, pos)
    # Rows shared by several sentences (the prefix) go through the LM head once.
    unique_rows, inverse = torch.unique(torch.tensor(rows), return_inverse=True)
    if shortcut:
        hidden = model.get_decoder()(input_ids=ids, attention_mask=mask, position_ids=pos).last_hidden_state
        hidden = hidden.reshape(-1, hidden.shape[-1])[unique_rows]
        logits = model.get_output_embeddings()(hidden).float()
    else:
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
        logits = logits.reshape(-1, logits.shape[-1])[unique_rows].float()
    logp = torch.log_softmax(logits, -1)[inverse, torch.tensor(targets)].double().tolist()
    sums: dict[int, float] = {}
    for owner, value in zip(owners, logp, strict=True):
        sums[owner] = sums.get(owner, 0.0) + value
    return sums


class CausalScorer:
    """bias-bench's causal scorer for one causal LM; get one from `vdata.lm.scorer.scorer_for`."""

    description: ClassVar[str] = "bias-bench causal (start token + sentence)"

    def __init__(
        self,
        lm: LoadedModel,
        *,
        start_token: str | None = None,
        batch_size: int = 64,
        progress: ProgressFactory = no_progress,
    ) -> None:
        self.lm = lm
        self.batch_size = check_batch_size(batch_size)
        self.progress = progress
        self.start = resolve_start_token(lm.tokenizer, start_token)

    def provenance(self) -> dict[str, Any]:
        return {
            "model_kind": self.lm.kind,
            "scorer": self.description,
            "start_token": self.start.text,
            "start_token_id": self.start.id,
        }

    def token_logprobs(
        self,
        sentences: Sequence[str] = (),
        *,
        token_ids: Sequence[Sequence[int]] | None = None,
        description: str = "scoring sentences",
    ) -> list[list[float]]:
        """Natural-log probability of every token of every sentence (or of the given token id lists)."""
        encoded = (
            [list(t) for t in token_ids]
            if token_ids is not None
            else encode_plain(self.lm.tokenizer, sentences)
        )
        return self._token_logprobs(encoded, self.batch_size, self.progress, description)

    def _token_logprobs(
        self, encoded: list[list[int]], batch_size: int, progress: ProgressFactory, description: str
    ) -> list[list[float]]:
        import torch

        model = self.lm.model
        first = first_token_logprobs(model, self.start)
        out: list[list[float]] = [[float(first[toks[0]])] if toks else [] for toks in encoded]
        shortcut = head_shortcut_ok(model)
        pad = pad_id(self.lm.tokenizer)
        todo = [i for i, toks in enumerate(encoded) if len(toks) > 1]
        with progress(description, len(encoded), "sentences") as task, torch.inference_mode():
            task.advance(len(encoded) - len(todo))
            for bucket in length_buckets([len(encoded[i]) for i in todo], batch_size):
                idx = [todo[b] for b in bucket]
                ids, attention = pad_batch([encoded[i] for i in idx], pad)
                flat = _scored_positions_logprobs(model, ids, attention, shortcut).tolist()
                offset = 0
                for i in idx:
                    n = len(encoded[i]) - 1
                    out[i].extend(flat[offset : offset + n])
                    offset += n
                task.advance(len(idx))
        return out

    def sentence_logprobs(
        self, sentences: Sequence[str], description: str = "scoring sentences"
    ) -> list[float]:
        """Mean natural-log token probability of each sentence (bias-bench's GPT-2 scorer).

        exp() of a value is bias-bench's score 2^(mean log2 p). An empty sentence (no tokens) scores nan.
        """
        per_token = self.token_logprobs(sentences, description=description)
        return [sum(t) / len(t) if t else math.nan for t in per_token]

    def grouped_sentence_logprobs(
        self, groups: Sequence[Sequence[str]], description: str = "scoring sentences"
    ) -> list[list[float]]:
        """`sentence_logprobs` for groups of related sentences (StereoSet's three candidates, a pair).

        The sentences of a group share their longest common token prefix: it is run once and each
        continuation attends to it through a block attention mask, with its own position ids, so every
        number equals scoring the sentence alone. `batch_size` counts sentences.
        """
        import torch

        model = self.lm.model
        first = first_token_logprobs(model, self.start)
        flat = [s for g in groups for s in g]
        encoded = encode_plain(self.lm.tokenizer, flat)
        packed, batches = plan_packed_batches(encoded, [len(g) for g in groups], self.batch_size)
        sums = [0.0] * len(flat)
        for it in packed:
            for sentence, token in it.first_tokens:
                sums[sentence] += float(first[token])
        shortcut = head_shortcut_ok(model)
        pad = pad_id(self.lm.tokenizer)
        with self.progress(description, len(flat), "sentences") as task, torch.inference_mode():
            for batch in batches:
                items = [packed[i] for i in batch]
                for sentence, value in _packed_batch_logprobs(model, items, shortcut, pad).items():
                    sums[sentence] += value
                task.advance(sum(it.n_sentences for it in items))
        means = [total / len(toks) if toks else math.nan for total, toks in zip(sums, encoded, strict=True)]
        out: list[list[float]] = []
        offset = 0
        for g in groups:
            out.append(means[offset : offset + len(g)])
            offset += len(g)
        return out

    def pair_scores(
        self, pairs: Sequence[tuple[str, str]], description: str = "scoring pairs"
    ) -> list[tuple[float, float]]:
        """(score(a), score(b)) per pair: the mean log-probabilities, the pair's common prefix run once."""
        scored = self.grouped_sentence_logprobs([list(p) for p in pairs], description)
        return [(g[0], g[1]) for g in scored]

    def pair_differences(
        self, pairs: Sequence[tuple[str, str]], description: str = "scoring pairs"
    ) -> list[float]:
        """score(a) - score(b) per pair; positive means the model prefers `a`."""
        return [a - b for a, b in self.pair_scores(pairs, description)]

    def text_perplexity(self, text: str, window: int = 512) -> tuple[float, int]:
        """(perplexity, scored tokens) of a text: the token stream is cut into windows of `window`
        tokens, each scored like a sentence (first token given the start token alone)."""
        ids = list(self.lm.tokenizer.encode(text, add_special_tokens=False))
        if not ids:
            raise UserError("the --ppl-text file holds no text; pass a non-empty UTF-8 text file")
        windows = [ids[i : i + window] for i in range(0, len(ids), window)]
        per_token = self._token_logprobs(windows, PERPLEXITY_BATCH_SIZE, no_progress, "perplexity")
        total = sum(sum(t) for t in per_token)
        return math.exp(-total / len(ids)), len(ids)

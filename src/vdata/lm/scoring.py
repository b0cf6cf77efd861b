"""Batched sentence scoring that reproduces bias-bench's one-sentence-at-a-time scorers exactly.

Causal LMs (bias-bench `_likelihood_score_generative`, generalised from GPT-2 to any causal LM):
  * the first token of a sentence is scored by the distribution after the *start token alone* (GPT-2:
    `<|endoftext|>`; other models: their BOS token, else EOS; overridable). That distribution does not
    depend on the sentence, so it is computed once per model and cached;
  * every later token i is scored by a forward pass over the sentence tokens *without* the start token
    (bias-bench's second pass does not prepend it), reading position i-1;
  * the sentence score is the mean natural-log token probability. bias-bench reports
    2^(mean log2 p) = exp(mean ln p), which ranks sentences identically.

Speed, without changing any number: sentences are sorted by token length and cut into batches of similar
length (little padding, attention masks for the rest), run under `torch.inference_mode`, and the LM head
(the vocabulary projection, a large share of a small model's FLOPs) is applied only to the positions whose
next token is scored (no padding, no final position). That shortcut is checked against the model's own
full forward once per model and dropped if they disagree (e.g. models with logit soft-capping).

Masked LMs: `masked_token_logprobs` scores a batch of (input ids, masked position, original token)
triples; StereoSet's and CrowS-Pairs' masked algorithms (in `tasks.py` and `pair_differences` below)
build those triples exactly as bias-bench does and batch them all.
"""

from __future__ import annotations

import difflib
import math
import string
import weakref
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from vdata.core.errors import UserError
from vdata.core.progress import sentence_progress
from vdata.lm.models import LoadedModel

# Per model: (start token id) -> log-probabilities of the first token given the start token alone.
_FIRST_TOKEN_LOGPROBS: weakref.WeakKeyDictionary[Any, dict[int, Any]] = weakref.WeakKeyDictionary()
# Per model: whether the "LM head on scored positions only" shortcut reproduces the full forward.
_HEAD_SHORTCUT_OK: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


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


def length_buckets(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices sorted by length (stable), cut into batches of at most `batch_size`."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[b : b + batch_size] for b in range(0, len(order), batch_size)]


def _pad_batch(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[Any, Any]:
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        attention[row, : len(seq)] = 1
    return ids, attention


def _pad_id(tokenizer: Any) -> int:
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if tid is not None:
            return int(tid)
    return 0


def first_token_logprobs(lm: LoadedModel, start: StartToken) -> Any:
    """log softmax of the model's output after the start token alone; computed once per model."""
    import torch

    per_model = _FIRST_TOKEN_LOGPROBS.setdefault(lm.model, {})
    if start.id not in per_model:
        with torch.inference_mode():
            logits = lm.model(input_ids=torch.tensor([[start.id]])).logits[0, -1].float()
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


def _head_shortcut_ok(model: Any) -> bool:
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


def encode_plain(tokenizer: Any, sentences: Sequence[str]) -> list[list[int]]:
    """Token ids without special tokens (bias-bench's GPT-2 `tok.encode` adds none)."""
    return [list(tokenizer.encode(s, add_special_tokens=False)) for s in sentences]


def causal_token_logprobs(
    lm: LoadedModel,
    sentences: Sequence[str],
    batch_size: int = 64,
    start_token: str | None = None,
    progress: bool = False,
    token_ids: Sequence[Sequence[int]] | None = None,
    description: str = "scoring sentences",
) -> list[list[float]]:
    """Natural-log probability of every token of every sentence, bias-bench's causal algorithm, batched."""
    import torch

    if lm.kind != "causal":
        raise UserError(f"{lm.name} is a {lm.kind} LM; causal sentence scoring needs a causal LM")
    start = resolve_start_token(lm.tokenizer, start_token)
    first = first_token_logprobs(lm, start)
    encoded = [list(t) for t in token_ids] if token_ids is not None else encode_plain(lm.tokenizer, sentences)
    out: list[list[float]] = [[] for _ in encoded]
    for i, toks in enumerate(encoded):
        if toks:
            out[i] = [float(first[toks[0]])]
    shortcut = _head_shortcut_ok(lm.model)
    pad = _pad_id(lm.tokenizer)
    todo = [i for i, toks in enumerate(encoded) if len(toks) > 1]
    with (
        sentence_progress(len(encoded), description, progress) as advance,
        torch.inference_mode(),
    ):
        advance(len(encoded) - len(todo))
        for bucket in length_buckets([len(encoded[i]) for i in todo], batch_size):
            idx = [todo[b] for b in bucket]
            ids, attention = _pad_batch([encoded[i] for i in idx], pad)
            flat = _scored_positions_logprobs(lm.model, ids, attention, shortcut).tolist()
            offset = 0
            for i in idx:
                n = len(encoded[i]) - 1
                out[i].extend(flat[offset : offset + n])
                offset += n
            advance(len(idx))
    return out


def sentence_logprobs(
    lm: LoadedModel,
    sentences: Sequence[str],
    batch_size: int = 64,
    start_token: str | None = None,
    progress: bool = False,
    description: str = "scoring sentences",
) -> list[float]:
    """Mean natural-log token probability of each sentence under a causal LM (bias-bench's GPT-2 scorer).

    The first token is conditioned on the start token alone (`start_token`, default the model's BOS, else
    EOS; GPT-2's is `<|endoftext|>` as in bias-bench), later tokens on the sentence without the start
    token, exactly like bias-bench's two passes but batched. exp() of a value is bias-bench's score
    2^(mean log2 p). An empty sentence (no tokens) scores nan.
    """
    per_token = causal_token_logprobs(
        lm, sentences, batch_size, start_token, progress, description=description
    )
    return [sum(t) / len(t) if t else math.nan for t in per_token]


def masked_token_logprobs(
    lm: LoadedModel,
    items: Sequence[tuple[Sequence[int], int, int]],
    batch_size: int = 64,
    progress: bool = False,
) -> list[float]:
    """For each (input ids with [MASK] at `position`, position, original token id): log p(original)."""
    import torch

    pad = _pad_id(lm.tokenizer)
    out = [0.0] * len(items)
    with (
        sentence_progress(len(items), "scoring masked inputs", progress) as advance,
        torch.inference_mode(),
    ):
        for idx in length_buckets([len(it[0]) for it in items], batch_size):
            ids, attention = _pad_batch([items[i][0] for i in idx], pad)
            rows = torch.arange(len(idx))
            positions = torch.tensor([items[i][1] for i in idx])
            targets = torch.tensor([items[i][2] for i in idx])
            logits = lm.model(input_ids=ids, attention_mask=attention).logits[rows, positions].float()
            values = torch.log_softmax(logits, -1)[rows, targets].tolist()
            for i, v in zip(idx, values, strict=True):
                out[i] = float(v)
            advance(len(idx))
    return out


def modified_positions(ids1: Sequence[int], ids2: Sequence[int]) -> tuple[list[int], list[int]]:
    """bias-bench CrowS `_get_span(..., "diff")`: positions inside non-"equal" difflib opcodes, per side."""
    matcher = difflib.SequenceMatcher(None, [str(x) for x in ids1], [str(x) for x in ids2])
    side1: list[int] = []
    side2: list[int] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        side1.extend(range(i1, i2))
        side2.extend(range(j1, j2))
    return side1, side2


def masked_pair_scores(
    lm: LoadedModel, pairs: Sequence[tuple[str, str]], batch_size: int = 64, progress: bool = False
) -> list[tuple[float, float]]:
    """bias-bench CrowS BERT scores: mean log-prob of the modified tokens, each masked alone, rounded to
    3 decimals. Pairs where either side has no modified token (pure insertion/deletion) are (nan, nan)."""
    tok = lm.tokenizer
    if tok.mask_token_id is None:
        raise UserError(f"{lm.name} has no [MASK] token; masked scoring needs a masked LM tokenizer")
    items: list[tuple[list[int], int, int]] = []
    spans: list[tuple[tuple[int, int], tuple[int, int]] | None] = []
    for a, b in pairs:
        ids_a = list(tok.encode(a, add_special_tokens=True))
        ids_b = list(tok.encode(b, add_special_tokens=True))
        pos_a, pos_b = modified_positions(ids_a, ids_b)
        if not pos_a or not pos_b:
            spans.append(None)
            continue
        ranges = []
        for ids, positions in ((ids_a, pos_a), (ids_b, pos_b)):
            start = len(items)
            for p in positions:
                masked = list(ids)
                masked[p] = tok.mask_token_id
                items.append((masked, p, ids[p]))
            ranges.append((start, len(items)))
        spans.append((ranges[0], ranges[1]))
    logps = masked_token_logprobs(lm, items, batch_size, progress)
    out: list[tuple[float, float]] = []
    for span in spans:
        if span is None:
            out.append((math.nan, math.nan))
            continue
        (a0, a1), (b0, b1) = span
        score_a = round(sum(logps[a0:a1]) / (a1 - a0), 3)
        score_b = round(sum(logps[b0:b1]) / (b1 - b0), 3)
        out.append((score_a, score_b))
    return out


def pair_scores(
    lm: LoadedModel,
    pairs: Sequence[tuple[str, str]],
    batch_size: int = 64,
    start_token: str | None = None,
    progress: bool = False,
    description: str = "scoring pairs",
) -> list[tuple[float, float]]:
    """(score(a), score(b)) per pair with the CrowS-Pairs scorer of the model's kind (see module doc)."""
    if lm.kind == "masked":
        return masked_pair_scores(lm, pairs, batch_size, progress)
    scored = grouped_sentence_logprobs(
        lm, [list(p) for p in pairs], batch_size, start_token, progress, description
    )
    return [(g[0], g[1]) for g in scored]


def pair_differences(
    lm: LoadedModel,
    pairs: Sequence[tuple[str, str]],
    batch_size: int = 64,
    start_token: str | None = None,
    progress: bool = False,
) -> list[float]:
    """score(a) - score(b) for each pair, with the CrowS-Pairs scoring of the model's kind.

    Causal LM: the `sentence_logprobs` score (mean natural-log token probability, first token given the
    start token). Masked LM: bias-bench's CrowS BERT score (mean log-prob of the difflib-modified tokens,
    each masked alone, rounded to 3 decimals); pairs bias-bench skips (one side has no modified token)
    give nan. A positive difference means the model prefers `a`.
    """
    return [a - b for a, b in pair_scores(lm, pairs, batch_size, start_token, progress)]


def _common_prefix_len(seqs: Sequence[Sequence[int]]) -> int:
    n = min(len(q) for q in seqs)
    for i in range(n):
        if any(q[i] != seqs[0][i] for q in seqs[1:]):
            return i
    return n


class PackedGroup(NamedTuple):
    """Sentences sharing a token prefix, laid out as: shared prefix, then each sentence's continuation."""

    ids: list[int]
    positions: list[int]  # position ids: a continuation restarts right after the prefix
    segments: list[int]  # 0 = shared prefix, k + 1 = continuation of the group's sentence k
    scored: list[tuple[int, int, int]]  # (packed row predicting the token, token id, sentence index)
    first_tokens: list[tuple[int, int]]  # (sentence index, first token id): scored after the start token
    n_sentences: int


def pack_group(token_lists: Sequence[Sequence[int]], first_index: int | Sequence[int]) -> PackedGroup:
    """Pack one group; `first_index` is the global index of its first sentence (or every sentence's index).

    A causal model's output at a position depends only on the tokens up to it, so the rows of the shared
    prefix are the same for every sentence of the group and are computed once. Exact by construction.
    """
    p = _common_prefix_len(token_lists)
    ids, positions, segments = list(token_lists[0][:p]), list(range(p)), [0] * p
    scored: list[tuple[int, int, int]] = []
    first_tokens: list[tuple[int, int]] = []
    indices = (
        range(first_index, first_index + len(token_lists)) if isinstance(first_index, int) else first_index
    )
    for k, (toks, sentence) in enumerate(zip(token_lists, indices, strict=True)):
        first_tokens.append((sentence, toks[0]))
        offset = len(ids)
        suffix = list(toks[p:])
        ids += suffix
        positions += list(range(p, p + len(suffix)))
        segments += [k + 1] * len(suffix)
        for j in range(1, len(toks)):
            row = j - 1 if j - 1 < p else offset + (j - 1 - p)
            scored.append((row, toks[j], sentence))
    return PackedGroup(ids, positions, segments, scored, first_tokens, len(token_lists))


def block_attention_mask(segments: Any, positions: Any) -> Any:
    """(B, 1, L, L) bool mask: a row sees the shared prefix and its own continuation, causally.

    Padding (segment -1) rows see only themselves so that no row is fully masked (which yields NaN).
    """
    import torch

    seg_q, seg_k = segments[:, :, None], segments[:, None, :]
    pos_q, pos_k = positions[:, :, None], positions[:, None, :]
    mask = ((seg_k == 0) | (seg_k == seg_q)) & (pos_k <= pos_q) & (seg_k >= 0)
    eye = torch.eye(segments.shape[1], dtype=torch.bool)[None]
    return (mask | (eye & (seg_q < 0)))[:, None]


def _packed_batch_logprobs(lm: LoadedModel, items: Sequence[PackedGroup], shortcut: bool, pad: int) -> Any:
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
        hidden = lm.model.get_decoder()(
            input_ids=ids, attention_mask=mask, position_ids=pos
        ).last_hidden_state
        hidden = hidden.reshape(-1, hidden.shape[-1])[unique_rows]
        logits = lm.model.get_output_embeddings()(hidden).float()
    else:
        logits = lm.model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
        logits = logits.reshape(-1, logits.shape[-1])[unique_rows].float()
    logp = torch.log_softmax(logits, -1)[inverse, torch.tensor(targets)].double().tolist()
    sums: dict[int, float] = {}
    for owner, value in zip(owners, logp, strict=True):
        sums[owner] = sums.get(owner, 0.0) + value
    return sums


def plan_packed_batches(
    encoded: Sequence[Sequence[int]], group_sizes: Sequence[int], batch_size: int
) -> tuple[list[PackedGroup], list[list[int]]]:
    """Pack each group of consecutive token lists, then cut the packs, sorted by length, into batches
    of at most `batch_size` sentences (a pack is never split). Returns (packs, batches of pack indices)."""
    packed: list[PackedGroup] = []
    offset = 0
    for size in group_sizes:
        # Sentences without tokens score nan, as in `sentence_logprobs`; the rest of the group is packed.
        kept = [i for i in range(offset, offset + size) if encoded[i]]
        if kept:
            packed.append(pack_group([encoded[i] for i in kept], kept))
        offset += size
    order = sorted(range(len(packed)), key=lambda i: len(packed[i].ids))
    batches: list[list[int]] = []
    load = 0
    for i in order:
        if not batches or load + packed[i].n_sentences > batch_size:
            batches.append([])
            load = 0
        batches[-1].append(i)
        load += packed[i].n_sentences
    return packed, batches


def grouped_sentence_logprobs(
    lm: LoadedModel,
    groups: Sequence[Sequence[str]],
    batch_size: int = 64,
    start_token: str | None = None,
    progress: bool = False,
    description: str = "scoring sentences",
) -> list[list[float]]:
    """`sentence_logprobs` for groups of related sentences (StereoSet's three candidates, a CrowS pair).

    The sentences of a group share their longest common token prefix: it is run once and each
    continuation attends to it through a block attention mask, with its own position ids, so every
    number equals scoring the sentence alone. Groups are length-bucketed; `batch_size` counts sentences.
    """
    import torch

    if lm.kind != "causal":
        raise UserError(f"{lm.name} is a {lm.kind} LM; causal sentence scoring needs a causal LM")
    if batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    start = resolve_start_token(lm.tokenizer, start_token)
    first = first_token_logprobs(lm, start)
    flat = [s for g in groups for s in g]
    encoded = encode_plain(lm.tokenizer, flat)
    packed, batches = plan_packed_batches(encoded, [len(g) for g in groups], batch_size)
    sums = [0.0] * len(flat)
    for it in packed:
        for sentence, token in it.first_tokens:
            sums[sentence] += float(first[token])
    shortcut = _head_shortcut_ok(lm.model)
    pad = _pad_id(lm.tokenizer)
    with sentence_progress(len(flat), description, progress) as advance, torch.inference_mode():
        for batch in batches:
            items = [packed[i] for i in batch]
            for sentence, value in _packed_batch_logprobs(lm, items, shortcut, pad).items():
                sums[sentence] += value
            advance(sum(it.n_sentences for it in items))
    means = [total / len(toks) if toks else math.nan for total, toks in zip(sums, encoded, strict=True)]
    out: list[list[float]] = []
    offset = 0
    for g in groups:
        out.append(means[offset : offset + len(g)])
        offset += len(g)
    return out


def stereoset_template_word(context: str, sentence: str) -> str:
    """bias-bench: the sentence word at the index of the (last) context word holding BLANK, minus punctuation."""
    word_idx = 0
    for idx, word in enumerate(context.split(" ")):
        if "BLANK" in word:
            word_idx = idx
    words = sentence.split(" ")
    return words[min(word_idx, len(words) - 1)].translate(str.maketrans("", "", string.punctuation))


def stereoset_masked_scores(
    lm: LoadedModel,
    items: Sequence[tuple[str, str]],
    batch_size: int = 64,
    progress: bool = False,
) -> list[float]:
    """bias-bench `_likelihood_score` for (context, sentence) pairs, all masked inputs batched.

    The template word's sub-tokens are inserted one at a time before a [MASK] placed where BLANK was;
    the score is the arithmetic mean of the probabilities of the true sub-tokens. When a context has two
    BLANKs, both get the insertion and the first [MASK] is read (as the one-at-a-time reference does).
    """
    tok = lm.tokenizer
    if tok.mask_token_id is None:
        raise UserError(f"{lm.name} has no [MASK] token; masked scoring needs a masked LM tokenizer")
    masked: list[tuple[list[int], int, int]] = []
    owners: list[int] = []
    for n, (context, sentence) in enumerate(items):
        insertion = tok.encode(stereoset_template_word(context, sentence), add_special_tokens=False)
        for k in range(len(insertion)):
            text = context.replace("BLANK", f"{tok.decode(insertion[:k])}{tok.mask_token}")
            ids = list(tok.encode(text, add_special_tokens=True))
            masked.append((ids, ids.index(tok.mask_token_id), insertion[k]))
            owners.append(n)
    logps = masked_token_logprobs(lm, masked, batch_size, progress)
    sums = [0.0] * len(items)
    counts = [0] * len(items)
    for owner, lp in zip(owners, logps, strict=True):
        sums[owner] += math.exp(lp)
        counts[owner] += 1
    return [sums[i] / counts[i] if counts[i] else math.nan for i in range(len(items))]


def text_perplexity(
    lm: LoadedModel,
    text: str,
    window: int = 512,
    batch_size: int = 16,
    start_token: str | None = None,
) -> tuple[float, int]:
    """(perplexity, scored tokens) of a text under a causal LM: the token stream is cut into windows of
    `window` tokens, each scored like a sentence (first token given the start token alone)."""
    if lm.kind != "causal":
        raise UserError("--ppl-text needs a causal LM; masked LMs have no left-to-right perplexity")
    ids = list(lm.tokenizer.encode(text, add_special_tokens=False))
    if not ids:
        raise UserError("the --ppl-text file holds no text; pass a non-empty UTF-8 text file")
    windows = [ids[i : i + window] for i in range(0, len(ids), window)]
    per_token = causal_token_logprobs(lm, [], batch_size, start_token, token_ids=windows)
    total = sum(sum(t) for t in per_token)
    return math.exp(-total / len(ids)), len(ids)


# Name used by reference.py.
modified_token_spans = modified_positions

ScoreFn = Callable[[LoadedModel, Sequence[str]], list[float]]

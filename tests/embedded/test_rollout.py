import pytest
import torch

from riskrl.embedded.data import decode_responses, encode_prompts
from riskrl.embedded.model import load_pretrained
from riskrl.embedded.rollout import Rollout, generate, response_logprobs, sample_next, shared_prompts


def _gen(model, tok, texts, seed=0, **kw):
    ids, mask = encode_prompts(tok, texts, "cpu")
    g = torch.Generator().manual_seed(seed)
    kw.setdefault("max_new_tokens", 4)
    return generate(model, ids, mask, eos_id=tok.eos_token_id, pad_id=tok.pad_token_id, generator=g, **kw)


def test_generate_shapes_masks_and_seed(tiny_base):
    model, tok = load_pretrained(tiny_base)
    texts = ["3*4=", "7*8=", "2*2="] * 4
    ro = _gen(model, tok, texts, temperature=1.0)
    B, T = ro.response_ids.shape
    assert B == 12 and 1 <= T <= 4
    eos = ro.response_ids == tok.eos_token_id
    for i in range(B):
        n = int(ro.response_mask[i].sum())
        row = ro.response_ids[i].tolist()
        if tok.eos_token_id in row:
            first = row.index(tok.eos_token_id)
            assert n == first + 1 and all(t == tok.pad_token_id for t in row[first + 1 :])
        else:
            assert n == T
    assert eos.sum(-1).le(1).all()
    again = _gen(model, tok, texts, temperature=1.0)
    assert torch.equal(ro.response_ids, again.response_ids)  # same seed, same samples
    greedy = _gen(model, tok, texts, temperature=0.0)
    assert torch.equal(greedy.response_ids[:3], greedy.response_ids[3:6])


def test_left_padding_does_not_change_the_policy(tiny_base):
    model, tok = load_pretrained(tiny_base)
    # "3*4=" padded next to a longer prompt must get the same log-probs as alone
    ro = _gen(model, tok, ["3*4=", "12*34="], temperature=1.0)
    alone = _gen(model, tok, ["3*4="], temperature=1.0)
    resp = ro.response_ids[:1]
    single = Rollout(alone.prompt_ids, alone.prompt_mask, resp, ro.response_mask[:1])
    lp_pad, _ = response_logprobs(model, ro)
    lp_one, _ = response_logprobs(model, single)
    m = ro.response_mask[0].bool()
    assert torch.allclose(lp_pad[0][m], lp_one[0][m], atol=1e-5)
    # and the greedy path of a padded prompt equals its unpadded greedy path
    g_pad = _gen(model, tok, ["3*4=", "12*34="], temperature=0.0)
    g_one = _gen(model, tok, ["3*4="], temperature=0.0)
    n = int(g_one.response_mask[0].sum())
    assert g_pad.response_ids[0, :n].tolist() == g_one.response_ids[0, :n].tolist()


def test_logprobs_match_the_sampling_distribution(tiny_base):
    model, tok = load_pretrained(tiny_base)
    ro = _gen(model, tok, ["3*4=", "5*6="], temperature=0.7)
    lp, ent = response_logprobs(model, ro, temperature=0.7, with_entropy=True)
    # step-by-step recomputation without a cache
    ids = torch.cat([ro.prompt_ids, ro.response_ids], 1)
    P = ro.prompt_ids.shape[1]
    with torch.no_grad():
        for t in range(ro.response_ids.shape[1]):
            logits = (
                model(
                    input_ids=ids[:, : P + t],
                    attention_mask=torch.cat([ro.prompt_mask, torch.ones_like(ro.response_ids[:, :t])], 1),
                ).logits[:, -1]
                / 0.7
            )
            ref = torch.log_softmax(logits, -1).gather(-1, ro.response_ids[:, t : t + 1]).squeeze(-1)
            m = ro.response_mask[:, t].bool()
            assert torch.allclose(lp[m, t], ref[m], atol=1e-5)
    assert (ent >= 0).all() and ent.shape == lp.shape


def test_top_p_keeps_the_nucleus():
    logits = torch.log(torch.tensor([[0.6, 0.3, 0.08, 0.02]]))
    g = torch.Generator().manual_seed(0)
    draws = {int(sample_next(logits, 1.0, 0.5, g)) for _ in range(200)}
    assert draws == {0}
    draws = {int(sample_next(logits, 1.0, 0.85, g)) for _ in range(300)}
    assert draws == {0, 1}
    assert int(sample_next(logits, 0.0, 1.0, None)) == 0


def test_decode_stops_at_eos(tiny_base):
    _, tok = load_pretrained(tiny_base)
    five, six = tok.convert_tokens_to_ids("5"), tok.convert_tokens_to_ids("6")
    ids = torch.tensor([[five, six, tok.eos_token_id, tok.pad_token_id], [five, tok.pad_token_id, six, six]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.float32)
    assert decode_responses(tok, ids, mask) == ["56", "5<pad>66"]


def _full_forward_logprobs(model, ro, temperature=1.0):
    """Reference: one forward over prompt + response per row, no cache, no sharing."""
    P, T = ro.prompt_ids.shape[1], ro.response_ids.shape[1]
    ids = torch.cat([ro.prompt_ids, ro.response_ids], 1)
    mask = torch.cat([ro.prompt_mask.long(), torch.ones_like(ro.response_ids)], 1)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, P - 1 : P + T - 1] / temperature
    lp = torch.log_softmax(logits.float(), -1)
    return lp.gather(-1, ro.response_ids[..., None]).squeeze(-1), -(lp.exp() * lp).sum(-1)


def test_shared_prompts_index_the_distinct_prompts():
    ids = torch.tensor([[0, 5, 6], [1, 5, 6], [0, 5, 6], [0, 5, 6], [1, 5, 6]])
    mask = torch.tensor([[0, 1, 1], [1, 1, 1], [0, 1, 1], [0, 1, 1], [1, 1, 1]])
    rows, inverse = shared_prompts(ids, mask)
    assert sorted(rows.tolist()) == [0, 1]  # the first occurrence of each distinct prompt
    assert torch.equal(ids[rows][inverse], ids) and torch.equal(mask[rows][inverse], mask)
    # the same ids under another mask are another prompt; all distinct: nothing to share
    assert shared_prompts(ids[:2], torch.ones_like(ids[:2])) is None
    assert shared_prompts(ids[[0, 2]], torch.tensor([[0, 1, 1], [1, 1, 1]])) is None


@pytest.mark.parametrize("texts", [["3*4=", "5*6="], ["3*4=", "12*34=", "5*6="]], ids=["equal", "padded"])
def test_shared_prompt_logprobs_and_gradients_equal_a_full_forward(tiny_base, texts):
    model, tok = load_pretrained(tiny_base)
    ro = _gen(model, tok, [t for t in texts for _ in range(4)], temperature=1.0)  # 4 responses each
    assert shared_prompts(ro.prompt_ids, ro.prompt_mask) is not None
    model.train()
    for temperature in (1.0, 0.7):
        lp, ent = response_logprobs(model, ro, temperature, with_entropy=True)
        ref_lp, ref_ent = _full_forward_logprobs(model, ro, temperature)
        m = ro.response_mask.bool()
        assert torch.allclose(lp[m], ref_lp[m], atol=1e-5) and torch.allclose(ent[m], ref_ent[m], atol=1e-5)
    params = [p for p in model.parameters() if p.requires_grad]
    weights = torch.linspace(-1, 1, ro.response_ids.numel()).view_as(ro.response_mask) * ro.response_mask
    grads = torch.autograd.grad((response_logprobs(model, ro)[0] * weights).sum(), params)
    ref = torch.autograd.grad((_full_forward_logprobs(model, ro)[0] * weights).sum(), params)
    for g, r in zip(grads, ref, strict=True):
        assert torch.allclose(g, r, atol=1e-5, rtol=1e-4)


def test_shared_prefill_samples_as_each_prompt_alone(tiny_base):
    model, tok = load_pretrained(tiny_base)
    texts = ["3*4=", "12*34=", "5*6="]
    together = _gen(model, tok, [t for t in texts for _ in range(3)], temperature=0.0, max_new_tokens=5)
    for i, t in enumerate(texts):
        alone = _gen(model, tok, [t], temperature=0.0, max_new_tokens=5)
        n = int(alone.response_mask[0].sum())
        for j in range(3):
            assert together.response_ids[3 * i + j, :n].tolist() == alone.response_ids[0, :n].tolist()

"""alpha / beta / trace on hand-made attention and on a tiny randomly initialised Llama; the statistics."""

from __future__ import annotations

import numpy as np
import pytest

from training.attention.measure import alpha, beta, trace
from training.attention.sequences import TeacherForced
from training.attention.stats import answer_bump, auc, bootstrap, correlations, difference_interval, rank


def test_alpha_averages_heads_then_constraint_tokens():
    # 2 heads, 3 steps, 2 constraint tokens
    layer0 = np.array([[[0.1, 0.3], [0.2, 0.2], [0.0, 0.4]],
                       [[0.3, 0.1], [0.0, 0.0], [0.2, 0.2]]])
    layer1 = np.zeros((2, 3, 2))
    layer1[1, 2, 0] = 0.8
    a = alpha([layer0, layer1])
    assert a.shape == (2, 3)
    np.testing.assert_allclose(a[0], [0.2, 0.1, 0.2])  # heads: [.2,.2],[.1,.1],[.1,.3] -> tokens
    np.testing.assert_allclose(a[1], [0.0, 0.0, 0.2])  # one head of two, one token of two: 0.8 / 4
    np.testing.assert_allclose(trace(a), [0.1, 0.05, 0.2])
    np.testing.assert_allclose(beta(a, answer_start=1), [0.15, 0.1])  # steps 1 and 2 only
    with pytest.raises(ValueError):
        beta(a, answer_start=3)
    with pytest.raises(ValueError):
        alpha([np.zeros((2, 3, 0))])


@pytest.fixture(scope="module")
def tiny_llama():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                                      attn_implementation="eager")
    model = transformers.LlamaForCausalLM(config).eval()
    return torch, model


def test_alpha_on_a_tiny_model_with_uniform_attention(tiny_llama):
    """Zero query and key projections make every score equal: the token at position p attends 1/(p+1) to
    each earlier token, in every head and layer, so alpha(l, t) = 1 / (prompt_len + t + 1)."""
    from training.attention.forward import run_alpha

    torch, model = tiny_llama
    uniform = type(model)(model.config).eval()
    for layer in uniform.model.layers:
        torch.nn.init.zeros_(layer.self_attn.q_proj.weight)
        torch.nn.init.zeros_(layer.self_attn.k_proj.weight)
    seq = TeacherForced(ids=list(range(3, 13)), prompt_len=6, answer_start=8, constraint_idx=[1, 4],
                        control_idx=(2, 3, 5))
    alphas = run_alpha(uniform, seq)
    a = alphas["constraint"]
    assert a.shape == (2, 4)
    expected = 1 / (6 + np.arange(4) + 1)
    np.testing.assert_allclose(a, np.stack([expected, expected]), rtol=1e-5)
    np.testing.assert_allclose(alphas["control"], a, rtol=1e-5)
    np.testing.assert_allclose(beta(a, seq.think_len), [expected[2:].mean()] * 2, rtol=1e-5)


def test_alpha_on_a_tiny_random_model_matches_the_attention_weights(tiny_llama):
    from training.attention.forward import run_alpha

    torch, model = tiny_llama
    seq = TeacherForced(ids=[5, 9, 2, 7, 1, 3, 8, 4, 6], prompt_len=5, answer_start=5, constraint_idx=[0, 2, 3])
    alphas = run_alpha(model, seq)
    assert set(alphas) == {"constraint"}  # no control tokens given
    a = alphas["constraint"]
    with torch.no_grad():
        att = model(torch.tensor([seq.ids]), output_attentions=True).attentions
    for layer in range(2):
        for t in range(4):
            row = att[layer][0, :, seq.prompt_len + t, :]  # heads x keys
            want = np.mean([row[h, seq.constraint_idx].mean().item() for h in range(2)])
            assert a[layer, t] == pytest.approx(want, rel=1e-5)
    assert len(set(np.round(a.ravel(), 6))) > 4  # not uniform: the columns really are selected


def test_auc_matches_the_definition_and_sklearn():
    assert auc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 1.0
    assert auc([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0]) == 0.0
    assert auc([0.5, 0.5], [1, 0]) == 0.5
    assert np.isnan(auc([0.1, 0.2], [1, 1]))
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    scores, labels = rng.normal(size=200).round(1), rng.integers(0, 2, 200)
    assert auc(scores, labels) == pytest.approx(sklearn.roc_auc_score(labels, scores))


def test_bootstrap_interval_covers_the_mean_and_is_reproducible():
    values = np.random.default_rng(0).normal(1.0, 1.0, size=(400, 3))
    lo, hi = bootstrap(values)
    assert lo.shape == (3,) and np.all(lo < values.mean(axis=0)) and np.all(values.mean(axis=0) < hi)
    assert np.all(hi - lo < 0.4)
    np.testing.assert_array_equal(bootstrap(values)[0], lo)
    a, b = values[:, 0] + 1, values[:, 1]
    d_lo, d_hi = difference_interval(a, b)
    assert d_lo < a.mean() - b.mean() < d_hi and 0.5 < d_lo and d_hi < 1.5


def test_bump_ranks_and_correlations():
    assert answer_bump([1, 1, 1, 3, 3], answer_start=3, window=2) == 2.0
    assert np.isnan(answer_bump([1, 2], answer_start=0))
    np.testing.assert_array_equal(rank([10, 20, 20, 5]), [2, 3.5, 3.5, 1])
    c = correlations([1, 2, 3, 4], [1, 4, 9, 16])
    assert c["spearman"] == pytest.approx(1.0) and c["pearson"] < 1.0

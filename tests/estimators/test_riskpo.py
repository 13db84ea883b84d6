import itertools
import zlib

import numpy as np
import pytest
import torch

from riskrl.estimators import RISKPO_PRESETS, QuantileTracker, riskpo_advantage
from tests.estimators.conftest import make_batch
from tests.estimators.reference import RefTracker, ref_riskpo

MEASURES = {
    "mvar": dict(use_mixing_risk_measure=True, risk_seeking_upper_tail=False),
    "upper": dict(use_mixing_risk_measure=False, risk_seeking_upper_tail=True),
    "rvar": dict(use_mixing_risk_measure=False, risk_seeking_upper_tail=False),
}


def options(mode, credit, measure, nat_adv, use_base, nat_base, bundle_size=3, q=(0.2, 0.8)):
    return dict(
        quantile_down=q[0], quantile_up=q[1], bundle_size=bundle_size, lr_q=0.1, use_q_track_mode=mode,
        credit_assign_mode=credit, w_mix=1.5, upper_weight=1.5, natural_baseline_adv=nat_adv,
        use_mean_as_baseline=use_base, natural_baseline_base=nat_base, **MEASURES[measure],
    )


def run_steps(opts, batches, norm=True):
    """Several steps through both implementations, the trackers carried across steps."""
    tracker, ref_tracker = QuantileTracker(lr_q=opts["lr_q"]), RefTracker(opts["lr_q"])
    for scores, uids in batches:
        got = riskpo_advantage(scores, uids, tracker, norm_adv_by_std_in_grpo=norm, **opts)
        ref = ref_riskpo(scores.tolist(), list(uids), opts, ref_tracker, norm)
        np.testing.assert_allclose(got.double().numpy(), ref, atol=1e-6, rtol=1e-6)
        np.testing.assert_allclose(tracker.q.numpy(), [float(v) for v in ref_tracker.q], atol=1e-6)
    return tracker


# The four baseline/normalisation switches (16 settings) in two halves of 8: an even number of
# them on (every pair of switches in every setting), and odd; the fast subset runs the first.
SWITCHES = list(itertools.product([False, True], repeat=4))
EVEN = [sw for sw in SWITCHES if sum(sw) % 2 == 0]
ODD = [sw for sw in SWITCHES if sum(sw) % 2 == 1]


@pytest.mark.parametrize("half", [pytest.param(EVEN, id="even"), pytest.param(ODD, id="odd", marks=pytest.mark.slow)])
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "continuous"])
@pytest.mark.parametrize("measure", list(MEASURES))
@pytest.mark.parametrize("credit", ["uniform", "score", "std", "sum-mean"])
@pytest.mark.parametrize("mode", ["batch", "track", "mix"])
def test_every_option_combination_matches_loop_reference(mode, credit, measure, binary, half):
    seed = zlib.crc32(f"{mode}{credit}{measure}{binary}".encode()) % 1000
    batches = [
        make_batch(seed, num_prompts=10, n=4, binary=binary),
        make_batch(seed + 1, num_prompts=8, unequal=True, binary=binary, pad_rows=2),
        make_batch(seed + 2, num_prompts=11, n=5, binary=binary, shuffle_rows=True),
    ]
    for nat_adv, use_base, nat_base, norm in half:
        run_steps(options(mode, credit, measure, nat_adv, use_base, nat_base), batches, norm)


def test_the_two_halves_are_every_switch_setting():
    assert len(EVEN) == len(ODD) == 8 and sorted(EVEN + ODD) == sorted(SWITCHES)
    for i, j in itertools.combinations(range(4), 2):  # the fast half alone sets every pair both ways
        assert {(sw[i], sw[j]) for sw in EVEN} == set(itertools.product([False, True], repeat=2))


@pytest.mark.parametrize("preset", list(RISKPO_PRESETS))
def test_published_presets_match_reference(preset):
    opts = RISKPO_PRESETS[preset]
    batches = [make_batch(s, num_prompts=23, n=5) for s in range(4)]
    tracker = run_steps(opts, batches)
    assert tracker.updates == 4 and tracker.last_mode == "track"


@pytest.mark.parametrize(
    "case",
    [
        dict(num_prompts=1, n=6),  # one prompt
        dict(num_prompts=7, n=1),  # one response per prompt -> one paper per bundle
        dict(num_prompts=7, n=4, unequal=True),  # unequal counts: responses past M get 0
        dict(num_prompts=13, n=3),  # short last bundle (13 = 4 * 3 + 1)
        dict(num_prompts=6, n=4, pad_rows=5),  # verl V1 padding rows
        dict(num_prompts=6, n=4, shuffle_rows=True),  # a prompt's responses not adjacent
    ],
    ids=["one-prompt", "one-response", "unequal", "short-last-bundle", "pad-rows", "interleaved"],
)
@pytest.mark.parametrize("mode", ["batch", "track", "mix"])
def test_edge_cases(case, mode):
    for credit in ("uniform", "std", "sum-mean"):
        opts = options(mode, credit, "mvar", True, True, True)
        run_steps(opts, [make_batch(s, **case) for s in range(3)])


def test_all_rewards_equal_track_mode_has_no_blowup():
    # METHODS.md step 5: without the std guard a constant bundle gets |A| ~ 1/eps in track mode
    opts = options("track", "uniform", "mvar", True, False, True)
    tracker = QuantileTracker()
    riskpo_advantage(*make_batch(0, num_prompts=10), tracker, **opts)
    scores = torch.ones(40)
    uids = make_batch(1, num_prompts=10)[1]
    adv = riskpo_advantage(scores, uids, tracker, **opts)
    assert adv.abs().max() < 20
    # and in batch mode a constant bundle gets exactly 0
    adv_b = riskpo_advantage(scores, uids, None, **options("batch", "uniform", "mvar", True, False, True))
    assert torch.count_nonzero(adv_b) == 0


def test_pad_rows_get_zero_and_do_not_enter_bundles():
    scores, uids = make_batch(3, num_prompts=6, n=4)
    opts = options("batch", "uniform", "mvar", True, False, True)
    clean = riskpo_advantage(scores, uids, None, **opts)
    padded_scores = torch.cat([scores[:8], torch.zeros(3), scores[8:]])
    padded_uids = np.concatenate([uids[:8], np.array(["pad0", "pad1", "pad2"], dtype=object), uids[8:]])
    padded = riskpo_advantage(padded_scores, padded_uids, None, **opts)
    assert torch.count_nonzero(padded[8:11]) == 0
    assert torch.equal(torch.cat([padded[:8], padded[11:]]), clean)


def test_bundles_follow_first_appearance_not_sorted_uid():
    # prompts "z" then "a": bundle 0 = {z} with bundle_size=1; sorted order would swap them
    scores = torch.tensor([1.0, 0.0, 1.0, 1.0, 1.0, 0.0])
    uids = np.array(["z", "z", "z", "a", "a", "a"], dtype=object)
    opts = options("batch", "uniform", "rvar", False, False, True, bundle_size=2)
    adv = riskpo_advantage(scores, uids, None, **opts)
    ref = ref_riskpo(scores.tolist(), list(uids), opts, RefTracker(0.1))
    np.testing.assert_allclose(adv.numpy(), ref, atol=1e-6)


def test_tracker_of_step_t_drives_step_t_plus_1():
    opts = options("track", "uniform", "rvar", True, False, True)
    tracker = QuantileTracker()
    b1, b2 = make_batch(10, num_prompts=10, binary=False), make_batch(11, num_prompts=10, binary=False)
    first = riskpo_advantage(*b1, tracker, **opts)
    assert tracker.last_mode == "batch"  # not initialised before step 1
    batch_first = riskpo_advantage(*b1, None, **options("batch", "uniform", "rvar", True, False, True))
    assert torch.equal(first, batch_first)
    a_before, b_before = tracker.value(0.2), tracker.value(0.8)
    riskpo_advantage(*b2, tracker, **opts)
    assert tracker.last_mode == "track"
    assert tracker.last["a"] == pytest.approx(a_before) and tracker.last["b"] == pytest.approx(b_before)


def test_bfloat16_and_float64_inputs():
    scores, uids = make_batch(12, num_prompts=9, binary=False)
    opts = options("mix", "std", "mvar", True, True, True)
    for dtype, out in ((torch.bfloat16, torch.float32), (torch.float64, torch.float64)):
        s = scores.to(dtype)
        got = riskpo_advantage(s, uids, None, **opts)
        assert got.dtype == out
        ref = ref_riskpo(s.double().tolist(), list(uids), opts, RefTracker(0.1))
        np.testing.assert_allclose(got.double().numpy(), ref, atol=1e-6)


def test_sum_mean_sign_flip_is_reported():
    # a small sum of d flips signs (METHODS.md step 7): prompt p has mean 0.6, q mean 0.5;
    # paper 0 = (0.7, 0.0): d = (+0.1, -0.5), weights (-0.25, 1.25)
    scores = torch.tensor([0.7, 0.5, 0.0, 1.0])
    uids = np.array(["p", "p", "q", "q"], dtype=object)
    tracker = QuantileTracker()
    riskpo_advantage(scores, uids, tracker, **options("batch", "sum-mean", "mvar", True, False, True, bundle_size=2))
    assert tracker.last["sum_mean_sign_flip_frac"] > 0
    assert tracker.last["sum_mean_max_abs_weight"] == pytest.approx(1.25, rel=1e-6)


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(quantile_down=0.9, quantile_up=0.8), r"^riskpo: quantile_down=0.9 must be < quantile_up=0.8"),
        (dict(bundle_size=0), r"^riskpo.bundle_size=0: Input should be greater than or equal to 1$"),
        (dict(use_q_track_mode="tracked"), r"^riskpo.use_q_track_mode='tracked': Input should be 'batch', 'track' or 'mix'$"),
        (dict(use_mixing_risk_measure=True, risk_seeking_upper_tail=True), r"are alternatives"),
        (dict(bundel_size=3), r"^unknown key riskpo.bundel_size$"),
        (dict(lr_q=-1), r"^riskpo.lr_q=-1: Input should be greater than 0$"),
    ],
)
def test_bad_options_one_line(bad, message):
    scores, uids = make_batch(0)
    with pytest.raises(ValueError, match=message) as exc:
        riskpo_advantage(scores, uids, None, **bad)
    assert "\n" not in str(exc.value)


def test_nonfinite_rewards_raise():
    scores, uids = make_batch(0)
    scores[3] = float("nan")
    with pytest.raises(ValueError, match=r"^scores: 1 of 48 rows have NaN or inf rewards$"):
        riskpo_advantage(scores, uids, QuantileTracker())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    opts = options("track", "sum-mean", "mvar", True, True, True)
    t_cpu, t_gpu = QuantileTracker(), QuantileTracker()
    for s in range(3):
        scores, uids = make_batch(s, num_prompts=20, unequal=True)
        cpu = riskpo_advantage(scores, uids, t_cpu, **opts)
        gpu = riskpo_advantage(scores.cuda(), uids, t_gpu, **opts)
        assert gpu.device.type == "cuda"
        torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-6, rtol=1e-6)


def random_options(rng: np.random.Generator) -> dict:
    """Every numeric option drawn at random, off the tracker's grid, w_mix != upper_weight."""
    alpha = float(rng.uniform(0.02, 0.6))
    beta = float(rng.uniform(alpha + 0.05, 0.98))
    w_mix = float(rng.uniform(0.1, 4.0))
    upper_weight = float(rng.uniform(0.1, 4.0))
    while abs(upper_weight - w_mix) < 0.3:
        upper_weight = float(rng.uniform(0.1, 4.0))
    return dict(
        quantile_down=alpha, quantile_up=beta, bundle_size=int(rng.integers(1, 7)),
        lr_q=float(10 ** rng.uniform(-2.5, 0.3)), epsilon=float(10 ** rng.uniform(-5, -2)),
        use_q_track_mode=str(rng.choice(["batch", "track", "mix"])),
        credit_assign_mode=str(rng.choice(["uniform", "score", "std", "sum-mean"])),
        w_mix=w_mix, upper_weight=upper_weight,
        natural_baseline_adv=bool(rng.integers(2)), use_mean_as_baseline=bool(rng.integers(2)),
        natural_baseline_base=bool(rng.integers(2)),
        **MEASURES[str(rng.choice(list(MEASURES)))],
    )


@pytest.mark.parametrize("seed", range(24))
def test_random_numeric_options_match_loop_reference(seed):
    rng = np.random.default_rng(1000 + seed)
    opts = random_options(rng)
    binary = bool(seed % 2)
    batches = [
        make_batch(3 * seed, num_prompts=int(rng.integers(4, 14)), n=int(rng.integers(2, 7)), binary=binary),
        make_batch(3 * seed + 1, num_prompts=9, unequal=True, binary=binary, pad_rows=2),
        make_batch(3 * seed + 2, num_prompts=12, n=4, binary=binary, shuffle_rows=True),
        make_batch(3 * seed + 3, num_prompts=10, n=3, binary=binary),
    ]
    run_steps(opts, batches, norm=bool(rng.integers(2)) or seed < 4)


@pytest.mark.parametrize("measure", ["mvar", "upper"])
def test_each_weight_changes_the_advantage(measure):
    # w_mix weighs the CVaR part (MVaR only), upper_weight the upper tail (upper only)
    scores, uids = make_batch(4, num_prompts=12, n=4, binary=False)
    base = options("batch", "uniform", measure, True, False, True)
    ref = riskpo_advantage(scores, uids, None, **base)
    own, other = ("w_mix", "upper_weight") if measure == "mvar" else ("upper_weight", "w_mix")
    assert not torch.allclose(riskpo_advantage(scores, uids, None, **{**base, own: 3.0}), ref)
    assert torch.equal(riskpo_advantage(scores, uids, None, **{**base, other: 3.0}), ref)


@pytest.mark.parametrize(
    "level, lower",
    [(0.125, 0.10), (0.175, 0.15), (0.275, 0.25), (0.325, 0.30), (0.675, 0.65), (0.825, 0.80), (0.875, 0.85),
     (0.925, 0.90), (0.025, 0.05), (0.975, 0.95), (0.2, 0.2)],
)
def test_tracker_tie_goes_to_the_lower_level(level, lower):
    tracker = QuantileTracker()
    tracker.q = torch.arange(19, dtype=torch.float32) * 10.0  # q at level 0.05 k is 10 (k - 1)
    tracker.initialized = True
    k = round(lower / 0.05)
    assert tracker.level_index(level) == k - 1
    assert tracker.value(level) == 10.0 * (k - 1)
    assert RefTracker(0.1).nearest(level) == 0.0  # the reference's own tie loop, on a zero state
    ref = RefTracker(0.1)
    ref.q = [v.clone() for v in tracker.q]
    ref.init = True
    assert ref.nearest(level) == tracker.value(level)


@pytest.mark.parametrize("q, lower", [((0.125, 0.875), (1, 16)), ((0.275, 0.925), (4, 17))])
@pytest.mark.parametrize("mode", ["track", "mix"])
def test_tie_levels_through_the_estimator(mode, q, lower):
    # alpha and beta sit exactly between two grid levels (0.275: in floats 0.3 is nearer than 0.25
    # unless distances are compared rounded): the lower levels are used
    opts = options(mode, "uniform", "mvar", True, True, True, q=q)
    batches = [make_batch(s, num_prompts=10, n=4, binary=False) for s in (31, 32, 33)]
    tracker = run_steps(opts, batches)
    a_low, b_low = float(tracker.q[lower[0]]), float(tracker.q[lower[1]])
    assert tracker.last_mode == mode
    assert a_low != float(tracker.q[lower[0] + 1]) and b_low != float(tracker.q[lower[1] + 1])
    # the tracked values used on a further step are those at the lower levels
    scores, uids = make_batch(34, num_prompts=10, n=4, binary=False)
    riskpo_advantage(scores, uids, tracker, **options("track", "uniform", "mvar", True, True, True, q=q))
    assert tracker.last["a"] == pytest.approx(a_low) and tracker.last["b"] == pytest.approx(b_low)


@pytest.mark.parametrize("lr_q", [0.013, 0.37, 2.5])
def test_registry_passes_lr_q_to_the_process_tracker(lr_q):
    from riskrl.estimators.registry import compute_riskpo_outcome_advantage, reset_process_tracker

    reset_process_tracker()
    opts = options("track", "std", "mvar", True, False, True)
    opts["lr_q"] = lr_q
    ref_tracker = RefTracker(lr_q)
    for s in range(3):
        scores, uids = make_batch(50 + s, num_prompts=10, n=4, binary=False)
        rewards = scores.unsqueeze(-1).repeat(1, 2) / 2
        adv, _ = compute_riskpo_outcome_advantage(
            rewards, torch.ones_like(rewards, dtype=torch.int64), uids, config={"riskpo": opts}
        )
        ref = ref_riskpo(scores.tolist(), list(uids), opts, ref_tracker)
        np.testing.assert_allclose(adv[:, 0].double().numpy(), ref, atol=1e-5, rtol=1e-5)
    from riskrl.estimators.registry import get_process_tracker

    assert get_process_tracker().lr_q == lr_q
    np.testing.assert_allclose(get_process_tracker().q.numpy(), [float(v) for v in ref_tracker.q], atol=1e-6)


def _expected_last(scores, uids, opts, adv, a_b, b_b, a, b, mode_used):
    """Every figure RiskPO logs, recomputed by loops from the batch and the advantages."""
    from tests.estimators.reference import is_pad, prompts_in_order

    order, members = prompts_in_order(list(uids))
    K = opts["bundle_size"]
    bundles = [order[k: k + K] for k in range(0, len(order), K)]
    papers, in_paper, flips = [], 0, 0
    for bun in bundles:
        M = min(len(members[u]) for u in bun)
        papers += [sum(float(scores[members[u][m]]) for u in bun) for m in range(M)]
        in_paper += M * len(bun)
        mean = {u: sum(float(scores[j]) for j in members[u]) / len(members[u]) for u in bun}
        for m in range(M):
            d = [float(scores[members[u][m]]) - mean[u] for u in bun]
            if abs(sum(d)) > 1e-6:
                flips += sum(di / sum(d) < 0 and adv[members[u][m]] != 0 for di, u in zip(d, bun, strict=True))
    valid = [i for i, u in enumerate(uids) if not is_pad(u)]
    return {
        "mode": float(["batch", "track", "mix"].index(mode_used)), "tracked_quantiles_used": float(mode_used != "batch"),
        "a": a, "b": b, "batch_a_mean": a_b, "batch_b_mean": b_b, "num_bundles": float(len(bundles)),
        "papers_per_bundle_min": float(min(min(len(members[u]) for u in bun) for bun in bundles)),
        "paper_score_mean": sum(papers) / len(papers), "responses_without_paper": float(len(valid) - in_paper),
        "adv_mean": sum(adv) / len(valid), "adv_abs_max": max(abs(x) for x in adv),
        "adv_pos_frac": sum(x > 0 for x in adv) / len(valid),
        "sum_mean_sign_flip_frac": flips / in_paper,
    }


def test_every_logged_figure_against_loops():
    """tracker.last after a batch step (tracker not yet initialised) and a track step: unequal
    groups (a response beyond its bundle's M has no paper), a V1 pad row, sum-mean credit whose
    weights flip a sign; each figure against its loop definition."""
    import statistics

    from riskrl.estimators.tracker import MODE_CODES

    assert MODE_CODES == {"batch": 0, "track": 1, "mix": 2}
    scores = torch.tensor([0.7, 0.5, 0.0, 1.0, 1.0, 0.2, 1.0, 0.0, 0.3], dtype=torch.float64)
    uids = np.array(["p", "q", "p", "q", "r", "r", "p", "pad_0", "r"], dtype=object)
    opts = options("track", "sum-mean", "mvar", True, False, True, bundle_size=2, q=(0.3, 0.7))
    tracker, ref_tracker = QuantileTracker(lr_q=0.1), RefTracker(0.1)
    for step, mode_used in enumerate(("batch", "track")):
        s = scores if step == 0 else 1.0 - scores
        tracked = (ref_tracker.nearest(0.3), ref_tracker.nearest(0.7)) if step else None  # before this step
        adv = riskpo_advantage(s, uids, tracker, **opts).tolist()
        np.testing.assert_allclose(adv, ref_riskpo(s.tolist(), list(uids), opts, ref_tracker), atol=1e-9)
        bundle_papers = [[s[0] + s[1], s[2] + s[3]], [s[4], s[5], s[8]]]
        qa = [float(torch.quantile(torch.tensor(ps), 0.3)) for ps in bundle_papers]
        qb = [float(torch.quantile(torch.tensor(ps), 0.7)) for ps in bundle_papers]
        a_b, b_b = statistics.mean(qa), statistics.mean(qb)
        a, b = (a_b, b_b) if mode_used == "batch" else tracked
        want = _expected_last(s.tolist(), uids, opts, adv, a_b, b_b, a, b, mode_used)
        assert tracker.last.keys() == want.keys() | {"sum_mean_max_abs_weight"}
        for key, value in want.items():
            assert tracker.last[key] == pytest.approx(value, abs=1e-12), (step, key)
        assert tracker.last_mode == mode_used
    assert want["responses_without_paper"] == 1.0 and want["sum_mean_sign_flip_frac"] > 0


def _batch_quantile_means(scores, uids, K, alpha, beta):
    """Means over bundles of the papers' alpha and beta quantiles, by loops."""
    from tests.estimators.reference import prompts_in_order

    order, members = prompts_in_order(list(uids))
    qa, qb = [], []
    for bun in (order[k: k + K] for k in range(0, len(order), K)):
        M = min(len(members[u]) for u in bun)
        papers = torch.tensor([sum(float(scores[members[u][m]]) for u in bun) for m in range(M)], dtype=torch.float64)
        qa.append(float(torch.quantile(papers, alpha)))
        qb.append(float(torch.quantile(papers, beta)))
    return sum(qa) / len(qa), sum(qb) / len(qb)


@pytest.mark.parametrize("seed", range(6))
def test_logged_figures_and_baselines_on_random_batches(seed):
    """Every logged figure, the mean baselines included, over three tracked steps of random
    batches (binary and continuous, unequal groups, pad rows, sum-mean credit): against loops."""
    binary = seed % 2 == 0
    opts = options("track", "sum-mean", "mvar", True, True, seed % 3 != 0, bundle_size=3, q=(0.25, 0.75))
    alpha, beta = opts["quantile_down"], opts["quantile_up"]
    tracker, ref_tracker = QuantileTracker(lr_q=0.1), RefTracker(0.1)
    flips = []
    for step in range(3):
        scores, uids = make_batch(100 * seed + step, num_prompts=10, unequal=True, binary=binary, pad_rows=2)
        s = scores.double()
        tracked = (ref_tracker.nearest(alpha), ref_tracker.nearest(beta)) if step else None
        base_rvar, base_cvar = ref_tracker.baselines(alpha, beta, opts["natural_baseline_base"])  # before the step
        adv = riskpo_advantage(s, uids, tracker, **opts).tolist()
        np.testing.assert_allclose(adv, ref_riskpo(s.tolist(), list(uids), opts, ref_tracker), atol=1e-6, rtol=1e-6)
        a_b, b_b = _batch_quantile_means(s.tolist(), uids, 3, alpha, beta)
        mode_used = "track" if step else "batch"
        a, b = (a_b, b_b) if step == 0 else tracked
        want = _expected_last(s.tolist(), uids, opts, adv, a_b, b_b, a, b, mode_used)
        want |= {"baseline_rvar": base_rvar, "baseline_cvar": base_cvar}
        assert tracker.last.keys() == want.keys() | {"sum_mean_max_abs_weight"}
        for key, value in want.items():  # the baselines come from the float32 tracker: 1e-6
            assert tracker.last[key] == pytest.approx(value, abs=1e-6 if "baseline" in key else 1e-12), (step, key)
        flips.append(want["sum_mean_sign_flip_frac"])
    assert base_rvar != 0.0 and base_cvar != 0.0 and max(flips) > 0  # the batches exercise both


def test_one_response_batch_logs_its_own_figures():
    """One valid response (and a pad row) after a tracked step: the per-response means divide by 1,
    and the tracked baselines make its advantage non-zero."""
    opts = options("track", "uniform", "mvar", True, True, True, bundle_size=2)
    tracker = QuantileTracker(lr_q=0.1)
    riskpo_advantage(*make_batch(7, num_prompts=8, n=4, binary=False), tracker, **opts)
    adv = riskpo_advantage(torch.tensor([0.3, 0.0]), np.array(["p", "pad_0"], dtype=object), tracker, **opts)
    assert adv[1] == 0 and adv[0] != 0
    last = tracker.last
    assert last["adv_mean"] == pytest.approx(float(adv[0]), abs=1e-6)
    assert last["adv_pos_frac"] == float(adv[0] > 0) and last["responses_without_paper"] == 0.0

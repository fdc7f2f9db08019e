"""Sizing answers as fine as the question (issue 13, item 5): the smallest count that meets a
target, to the nearest node, checked against brute force; counts with no valid plan answered by
the best plan on fewer chips; answers monotone; tried_chip_counts in the JSON."""
import json
import subprocess
import sys

import pytest

from estimator import sizing
from estimator.catalog import Catalog

CAT = Catalog(use_env=False)

# small cases: every node multiple up to N is evaluated by brute force (a few seconds each).
# Batches with many divisors make many non-coarse counts competitive (pure data parallelism on
# 120, 160, 240 ... chips); 910B shows a count (168) beating a bigger one (176).
CASES = [("llama3-8b", "h100-sxm", 960, 512),
         ("llama3-8b", "h20", 720, 480),
         ("llama3-70b", "ascend-910b", 384, 768),
         ("llama3-8b", "ascend-910c", 192, 384)]   # two ranks per package


@pytest.fixture(scope="module", params=CASES, ids=[f"{m}-{c}-gbs{g}" for m, c, g, _ in CASES])
def brute(request):
    model, chip, gbs, n_max = request.param
    job = sizing.JobSpec(model=model, gbs=gbs, seq_len=4096)
    c = CAT.chip(chip)
    s = CAT.system_for(c, None)
    node = s.chips_per_node
    rate = {m: sizing._rate(sizing.evaluate_cluster(job, c, m, s, CAT), job) for m in range(node, n_max + 1, node)}
    # targets just below, at and just above the reachable rates (every 4th, to keep it quick)
    targets = sorted({v * f for v in rate.values() if v > 0 for f in (0.999, 1.0, 1.001)
                      if v * f <= max(rate.values())})[::4]
    answers = {t: sizing.smallest_meeting(job, c, t, s, CAT, max_chips=n_max)[0] for t in targets}
    return job, c, s, node, n_max, rate, answers


def test_answer_within_one_node_of_the_true_crossing(brute):
    job, c, s, node, n_max, rate, answers = brute
    for t, row in answers.items():
        truth = min(m for m, v in rate.items() if v >= t)
        assert sizing._rate(row, job) >= t
        assert truth <= row.chips <= truth + max(node, 0.01 * truth), (t, truth, row.chips)
    assert len(answers) > 25


def test_answers_are_monotone_in_the_target(brute):
    answers = brute[-1]
    counts = [answers[t].chips for t in sorted(answers)]
    assert counts == sorted(counts)


def test_sweep_never_falls_and_says_how_many_chips_it_uses(brute):
    job, c, s, node, n_max, rate, _ = brute
    counts = list(range(node, n_max + 1, node))
    rows = sizing.sweep(job, c, counts, s, CAT)
    tps = [r.tokens_per_s for r in rows]
    assert tps == sorted(tps)
    for n, r in zip(counts, rows):
        assert r.chips <= n
        if r.chips < n:
            assert r.chips_requested == n and f"uses {r.chips:,}" in r.note
        # the answer for n is at least as good as every count up to n
        assert sizing._rate(r, job) >= max(v for m, v in rate.items() if m <= n) * (1 - 1e-12)


def test_count_with_no_valid_plan_uses_fewer_chips():
    """2,056 H100 = 257 nodes (a prime): no plan divides a 1024-sequence batch; the answer is
    the best plan on at most 2,056 chips, and says how many it uses."""
    job = sizing.JobSpec(model="llama3-70b", gbs=1024, seq_len=4096)
    exact = sizing.evaluate_cluster(job, "h100-sxm", 2056, None, CAT)
    assert not exact.fits
    rows = sizing.compare(job, ["h100-sxm"], cluster_chips=2056, catalog=CAT)
    r = rows[0]
    assert r.fits and r.chips < 2056 and r.chips_requested == 2056
    assert "no valid plan on 2,056 chips" in r.note
    assert r.tokens_per_s >= sizing.evaluate_cluster(job, "h100-sxm", 2048, None, CAT).tokens_per_s


def test_power_budget_answer_monotone_in_the_budget():
    job = sizing.JobSpec(model="llama3-8b", gbs=512, seq_len=4096)
    rates, chips = [], []
    for mw in (0.2, 0.25, 0.3, 0.35, 0.5, 0.8):
        row, tried = sizing.fastest_under_power(job, "h100-sxm", mw, catalog=CAT)
        assert row.power_mw <= mw
        rates.append(row.tokens_per_s)
        chips.append(row.chips)
    assert rates == sorted(rates)


def test_power_budget_considers_every_chip_the_budget_powers():
    """0.3 MW powers 22 DGX H100 nodes (176 chips): that count is tried, not only the coarse
    grid (128, 192), and the answer is at least as fast as the largest coarse count."""
    job = sizing.JobSpec(model="llama3-8b", gbs=512, seq_len=4096)
    row, tried = sizing.fastest_under_power(job, "h100-sxm", 0.3, catalog=CAT)
    n_max = sizing.chips_within_power(CAT.chip("h100-sxm"), CAT.system("dgx-h100"), 0.3, job.pue)
    assert n_max == 176 and n_max in [r.chips for r in tried]
    coarse = max(c for c in sizing.smooth_counts(8, n_max))
    assert row.chips <= n_max and row.power_mw <= 0.3
    assert row.tokens_per_s >= sizing.evaluate_cluster(job, "h100-sxm", coarse, None, CAT).tokens_per_s


def test_match_json_reports_tried_counts_at_node_resolution():
    r = subprocess.run([sys.executable, "-c", "from estimator.cli.app import main; main()", "size",
                        "--model", "llama3-70b", "--chip", "ascend-910b", "--match", "h100-sxm:128",
                        "--gbs", "384", "--seq-len", "4096", "--json"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    tried = d["tried_chip_counts"]
    ans = d["rows"][1]["chips"]
    assert tried == sorted(set(tried)) and ans in tried
    below = [n for n in tried if n < ans]
    assert ans - max(below) <= 8              # the next count below the answer was tried
    # not just the coarse grid of node * 2^a and node * 3 * 2^a
    assert any(n not in sizing.smooth_counts(8, 100_000) for n in tried)

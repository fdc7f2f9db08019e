"""Speed of the sizing questions (issue #4): recorded in the JSON report, never asserted as
absolute times. Each call runs the full plan search for every point."""
from estimator import sizing
from estimator.catalog import Catalog

CAT = Catalog(use_env=False)
SIX = ["ascend-910c", "ascend-910b", "h800", "h20", "h100-sxm", "b200"]


def test_compare_six_chips(benchmark):
    job = sizing.JobSpec(model="llama3-70b", tokens=15e12)
    sizing.compare(job, SIX[:1], cluster_chips=64, catalog=CAT)   # warm (JIT, catalog)
    rows = benchmark.pedantic(sizing.compare, args=(job, SIX), kwargs=dict(cluster_chips=1024, catalog=CAT),
                              rounds=2, iterations=1)
    benchmark.extra_info["seconds"] = benchmark.stats.stats.min
    assert all(r.fits for r in rows)


def test_sweep_twelve_points(benchmark):
    job = sizing.JobSpec(model="llama3-70b")
    counts = [64 * 2 ** i for i in range(12)]        # 64 .. 131,072
    rows = benchmark.pedantic(sizing.sweep, args=(job, "h800", counts), kwargs=dict(catalog=CAT),
                              rounds=2, iterations=1)
    benchmark.extra_info["seconds"] = benchmark.stats.stats.min
    assert len(rows) == 12 and sum(r.fits for r in rows) >= 10

"""ECCN 3A090 classification: TPP, performance density and class on public figures.

Expected values are computed here by hand from the datasheet numbers (dense peaks; NVIDIA's
headline figures with 2:4 sparsity halved), not by calling the code under test twice.
"""
import pytest

from estimator.catalog import Catalog
from estimator.scenarios.export_control import (CLASS_A, CLASS_B, CLASS_NONE, CLASS_UNKNOWN,
                                                classify, classify_numbers)
from estimator.specs.common import Sourced


@pytest.fixture(scope="module")
def cat():
    return Catalog(use_env=False)


def test_a100_and_a800_tpp_4992(cat):
    # NVIDIA A100 datasheet: 312 TFLOPS dense BF16/FP16 (624 with sparsity); 16-bit operands.
    # 312 x 16 = 4,992, the figure quoted in the Oct-2023 rule discussions. GA100 die 826 mm2.
    for cid in ("a100-sxm4-80gb", "a800-sxm4-80gb"):
        e = classify(cat.chip(cid))
        assert e.tpp == pytest.approx(312 * 16, abs=0.5)
        assert e.klass == CLASS_A                       # 4,992 >= 4,800
        assert e.density == pytest.approx(4992 / 826, rel=1e-3)


def test_h100_sxm_tpp_about_15800(cat):
    # H100 SXM datasheet: 3,958 TFLOPS FP8 with sparsity -> 1,979 dense; 1,979 x 8 = 15,832.
    # (989.4 dense BF16 x 16 = 15,830 gives the same within rounding.) Tolerance 0.5 %.
    e = classify(cat.chip("h100-sxm"))
    assert e.tpp == pytest.approx(1979 * 8, rel=5e-3)
    assert e.tpp == pytest.approx(15800, rel=5e-3)
    assert e.klass == CLASS_A


def test_h20_below_the_line(cat):
    # H20 spec (Tom's Hardware / TweakTown table): 148 TFLOPS dense BF16, 296 FP8.
    # 148 x 16 = 296 x 8 = 2,368 < 4,800, and < 2,400; density 2,368 / 814 (GH100) = 2.91 < 3.2,
    # so it falls under neither 3A090.a nor 3A090.b: the part was built to that end.
    e = classify(cat.chip("h20"))
    assert e.tpp == pytest.approx(2368, abs=0.5)
    assert e.tpp < 4800
    assert e.density == pytest.approx(2368 / 814, rel=1e-3)
    assert e.klass == CLASS_NONE


def test_multi_die_area_counts_every_die(cat):
    # Ascend 910C: 752 TFLOPS BF16 per package (CloudMatrix384 paper) x 16 = 12,032;
    # two dies of ~665 mm2 (estimated) -> 12,032 / 1,330 = 9.05 per mm2.
    e = classify(cat.chip("ascend-910c"))
    assert e.tpp == pytest.approx(752 * 16, abs=0.5)
    assert e.die_area_mm2 == pytest.approx(2 * 665)
    assert e.density == pytest.approx(12032 / 1330, rel=1e-3)


@pytest.mark.parametrize("tpp,density,klass", [
    (4800, None, CLASS_A),            # TPP alone decides
    (4799.9, None, CLASS_UNKNOWN),    # in the band where density decides, density unknown
    (1599.9, None, CLASS_NONE),
    (3000, 5.92, CLASS_A),            # TPP >= 1600 and density >= 5.92
    (3000, 5.91, CLASS_B),            # 2400 <= TPP < 4800 and 1.6 <= density < 5.92
    (3000, 1.6, CLASS_B),
    (3000, 1.59, CLASS_NONE),
    (2000, 3.2, CLASS_B),             # TPP >= 1600 and 3.2 <= density < 5.92
    (2000, 3.19, CLASS_NONE),
    (2399, 2.0, CLASS_NONE),          # below 2400, density below 3.2
    (None, 10.0, CLASS_UNKNOWN),
])
def test_threshold_table(tpp, density, klass):
    assert classify_numbers(tpp, density)[0] == klass


def test_missing_die_area_is_named(cat):
    h20 = cat.chip("h20")
    blind = h20.model_copy(update={"die_area_mm2": Sourced(value=None, source="test", note="not published")})
    e = classify(blind)
    assert e.density is None and e.klass == CLASS_UNKNOWN      # 2,368 sits in the density band
    assert any("die_area_mm2" in m for m in e.missing)
    assert e.possible() == {CLASS_A, CLASS_B, CLASS_NONE}


def test_no_peak_means_unknown_tpp(cat):
    c = cat.chip("h20")
    empty = c.peak_tflops.model_copy(update={p: None for p in ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp4")})
    e = classify(c.model_copy(update={"peak_tflops": empty}))
    assert e.tpp is None and e.klass == CLASS_UNKNOWN
    assert any("peak" in m for m in e.missing)

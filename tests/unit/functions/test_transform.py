"""Point-wise Transform functions (graphite_api/functions/transform.py): values, nulls, names and tags as
graphite-web 1.1.10 produces them."""
import math
import random
from types import SimpleNamespace

import numpy as np
import pytest

import graphite_api.functions  # noqa: F401  (registers every family)
from graphite_api.functions.registry import REGISTRY, FunctionError, bind
from graphite_api.functions.transform import py_round
from graphite_api.series import Series

N = None
CTX = SimpleNamespace(start=1000, end=1600, params={}, fetch=SimpleNamespace(now=2000), prefetched={})


def S(values, name="a.b", start=1060, step=60, **kw):
    return Series(name=name, start=start, step=step, values=[math.nan if v is None else v for v in values], **kw)


def call(name, *args, **kwargs):
    spec = REGISTRY[name]
    args, kwargs = bind(spec, list(args), kwargs)
    return spec.func(CTX, *args, **kwargs)


def vals(series):
    return [None if math.isnan(v) else v for v in series.values.tolist()]


def approx(values):
    return [None if v is None else pytest.approx(v, rel=1e-12, abs=1e-15) for v in values]


# --- arithmetic, names and tags ----------------------------------------------------------------------------

def test_absolute():
    out, = call("absolute", [S([-1.5, None, 2, -0.0])])
    assert vals(out) == [1.5, None, 2, 0.0]
    assert out.name == out.path_expression == "absolute(a.b)"
    assert out.tags == {"name": "a.b", "absolute": "1"}


def test_add_truncates_the_constant_in_the_name_and_tags_it_as_float():
    out, = call("add", [S([1, None, -3])], 2.5)
    assert vals(out) == [3.5, None, -0.5]
    assert out.name == "add(a.b,2)" and out.tags["add"] == "2.5"
    neg, = call("add", [S([1])], -1.7)
    assert neg.name == "add(a.b,-1)"
    whole, = call("add", [S([1])], 3)
    assert whole.tags["add"] == "3.0"                 # validateParams made it a float


def test_add_infinite_constant_is_a_bad_argument():
    with pytest.raises(FunctionError, match="add"):
        call("add", [S([1])], math.inf)


def test_offset_and_scale_use_percent_g():
    out, = call("offset", [S([1, None])], 0.25)
    assert vals(out) == [1.25, None] and out.name == "offset(a.b,0.25)" and out.tags["offset"] == "0.25"
    sc, = call("scale", [S([2, None, -4])], 10)
    assert vals(sc) == [20, None, -40] and sc.name == "scale(a.b,10)" and sc.tags["scale"] == "10.0"
    big, = call("scale", [S([1])], 1234567.0)
    assert big.name == "scale(a.b,1.23457e+06)"


def test_scale_to_seconds_rounds_to_six_decimals_and_names_with_percent_d():
    out, = call("scaleToSeconds", [S([1, None, 7])], 1)
    assert vals(out) == [round(1 / 60, 6), None, round(7 / 60, 6)]
    assert out.name == "scaleToSeconds(a.b,1)" and out.tags["scaleToSeconds"] == "1.0"
    slow, = call("scaleToSeconds", [S([3], step=120)], 30.9)
    assert vals(slow) == [round(3 * 30.9 / 120, 6)] and slow.name == "scaleToSeconds(a.b,30)"


def test_pow_nulls_where_math_pow_raises():
    out, = call("pow", [S([-8, 4, None, 0, 1e200])], 0.5)
    assert vals(out) == [None, 2.0, None, 0.0, 1e100]
    inv, = call("pow", [S([0, 2, None])], -1)
    assert vals(inv) == [None, 0.5, None]               # 0 ** -1 raises in math.pow
    over, = call("pow", [S([1e200, -2])], 2)
    assert vals(over) == [None, 4.0]                    # OverflowError -> None
    zero, = call("pow", [S([None, 5])], 0)
    assert vals(zero) == [None, 1.0]                    # numpy's nan ** 0 would be 1
    assert over.name == "pow(a.b,2)" and over.tags["pow"] == "2.0"


def test_square_root_and_invert():
    sq, = call("squareRoot", [S([4, -4, None, 2.25])])
    assert vals(sq) == [2.0, None, None, 1.5] and sq.tags["squareRoot"] == "1"
    inv, = call("invert", [S([4, 0, None, -0.5])])
    assert vals(inv) == [0.25, None, None, -2.0] and inv.name == "invert(a.b)" and inv.tags["invert"] == "1"


def test_exp_sigmoid_logit():
    e, = call("exp", [S([0, 1, None])])
    assert vals(e) == approx([1.0, math.e, None]) and e.tags["exp"] == "e"
    sg, = call("sigmoid", [S([0, 2, None, -3])])
    assert vals(sg) == approx([0.5, 1 / (1 + math.exp(-2)), None, 1 / (1 + math.exp(3))])
    assert sg.tags["sigmoid"] == "sigmoid"
    lg, = call("logit", [S([0.5, 0.25, 1, 0, 2, None, -1])])
    assert vals(lg) == approx([0.0, math.log(1 / 3), None, None, None, None, None])
    assert lg.tags["logit"] == "logit"


def test_log_base_and_name():
    out, = call("log", [S([100, 0.01, 0, -5, None])])
    assert vals(out) == approx([2.0, -2.0, None, None, None])
    assert out.name == "log(a.b, 10)" and out.path_expression == out.name and out.tags["log"] == "10"
    two, = call("log", [S([8, 1])], 2)
    assert vals(two) == approx([3.0, 0.0]) and two.name == "log(a.b, 2)"
    with pytest.raises(FunctionError, match="log"):
        call("log", [S([8])], 1)
    with pytest.raises(FunctionError, match="base"):
        call("log", [S([8])], 2.5)                      # integer parameter


def test_round_ties_to_even_names_and_tags():
    out, = call("round", [S([0.5, 1.5, 2.5, -1.5, None, 2.4])])
    assert vals(out) == [0.0, 2.0, 2.0, -2.0, None, 2.0]
    assert out.name == "round(a.b)" and out.tags["round"] == "0"
    two, = call("round", [S([2.675, 1.005, -0.125])], 2)
    assert vals(two) == [round(2.675, 2), round(1.005, 2), round(-0.125, 2)]
    assert two.name == "round(a.b,2)" and two.tags["round"] == "2"
    zero, = call("round", [S([3.5])], 0)
    assert zero.name == "round(a.b,0)" and vals(zero) == [4.0]
    neg, = call("round", [S([1250.0, 1350.0, 149.9])], -2)
    assert vals(neg) == [1200.0, 1400.0, 100.0]


def test_py_round_matches_python_round_exactly():
    rnd = random.Random(7)
    values = [rnd.uniform(-1000, 1000) for _ in range(2000)]
    values += [k / 200 for k in range(-400, 400)]                 # many decimal halves
    values += [k + 0.5 for k in range(-20, 20)] + [1e308, -1e308, 5e-324, 0.0, -0.0, 2.0 ** 60 + 0.5]
    arr = np.array(values)
    for nd in (-3, -1, 0, 1, 2, 3, 6, 10, 25):
        got = py_round(arr, nd)
        want = [round(v, nd) for v in values]
        assert got.tolist() == want, nd
    assert np.isnan(py_round(np.array([math.nan]), 2)[0])
    assert py_round(np.array([math.inf]), 2)[0] == math.inf


# --- whole-series scaling ------------------------------------------------------------------------------------

def test_offset_to_zero():
    out, = call("offsetToZero", [S([5, None, 3, 7])])
    assert vals(out) == [2, None, 0, 4] and out.tags["offsetToZero"] == "3.0"
    empty, = call("offsetToZero", [S([None, None])])
    assert vals(empty) == [None, None] and empty.tags["offsetToZero"] == "None"


def test_min_max():
    out, = call("minMax", [S([5, None, 3, 7])])
    assert vals(out) == [0.5, None, 0.0, 1.0]
    assert out.name == "minMax(a.b)" and "minMax" not in out.tags            # graphite-web adds no tag
    flat, = call("minMax", [S([4, None, 4])])
    assert vals(flat) == [0.0, None, 0.0]
    empty, = call("minMax", [S([None])])
    assert vals(empty) == [None]


# --- nulls ---------------------------------------------------------------------------------------------------

def test_is_non_null():
    out, = call("isNonNull", [S([None, 0, -1, None])])
    assert vals(out) == [0, 1, 1, 0] and out.tags["isNonNull"] == "1"


def test_transform_null_default_and_names():
    out, = call("transformNull", [S([None, 1, None])])
    assert vals(out) == [0, 1, 0] and out.name == "transformNull(a.b,0)" and out.tags["transformNull"] == "0"
    given, = call("transformNull", [S([None, 1])], -1)
    assert vals(given) == [-1, 1] and given.name == "transformNull(a.b,-1)" and given.tags["transformNull"] == "-1.0"
    frac, = call("transformNull", [S([None])], 2.5)
    assert frac.name == "transformNull(a.b,2.5)"


def test_transform_null_with_reference_series():
    ref = [S([1, None, None, 4], name="r1"), S([None, None, 3, None], name="r2")]
    out, = call("transformNull", [S([None, None, None, 9])], 7, ref)
    assert vals(out) == [7, None, 7, 9]
    assert out.name == "transformNull(a.b,7,referenceSeries)" and out.tags["referenceSeries"] == "1"
    # a longer reference shifts the rows: graphite-web keeps the last len(series) of the zipped rows
    long_ref = [S([1, None, 1, 1, None, 1], name="r")]
    shifted, = call("transformNull", [S([None, 5, None])], 0, long_ref)
    assert vals(shifted) == [0, None, 0]
    # a reference whose rows are all missing is falsy: every null is replaced
    none_ref, = call("transformNull", [S([None, 2])], 3, [S([], name="r")])
    assert vals(none_ref) == [3, 2]


def test_keep_last_value():
    data = [None, 1, None, None, 4, None, None, None, 8, None, None]
    out, = call("keepLastValue", [S(data)])
    assert vals(out) == [None, 1, 1, 1, 4, 4, 4, 4, 8, 8, 8]
    assert out.name == "keepLastValue(a.b)" and "keepLastValue" not in out.tags
    lim, = call("keepLastValue", [S(data)], 2)
    assert vals(lim) == [None, 1, 1, 1, 4, None, None, None, 8, 8, 8]
    zero, = call("keepLastValue", [S(data)], 0)
    assert vals(zero) == data
    with pytest.raises(FunctionError, match="limit"):
        call("keepLastValue", [S(data)], "x")
    assert vals(call("keepLastValue", [S([])])[0]) == []


def test_interpolate():
    data = [None, 1, None, None, 4, None, None, None, 12, None]
    out, = call("interpolate", [S(data)])
    assert vals(out) == [None, 1, 2, 3, 4, 6, 8, 10, 12, None]       # leading and trailing gaps stay
    lim, = call("interpolate", [S(data)], 2)
    assert vals(lim) == [None, 1, 2, 3, 4, None, None, None, 12, None]
    assert out.name == "interpolate(a.b)"
    neg, = call("interpolate", [S([-2, None, 2])], math.inf)
    assert vals(neg) == [-2, 0, 2]


# --- derivatives and sums ------------------------------------------------------------------------------------

def test_derivative():
    out, = call("derivative", [S([1, 3, None, 6, 10, 8])])
    assert vals(out) == [None, 2, None, None, 4, -2]
    assert out.name == out.path_expression == "derivative(a.b)" and out.tags["derivative"] == "1"


def test_non_negative_derivative():
    out, = call("nonNegativeDerivative", [S([1, 3, None, 6, 10, 8, 9])])
    assert vals(out) == [None, 2, None, None, 4, None, 1]
    assert out.tags["nonNegativeDerivative"] == "1"
    # counter wrapping at maxValue (graphite-web's test: 0..5 then 0..3 wraps)
    wrap, = call("nonNegativeDerivative", [S([0, 1, 2, 3, 4, 5, 0, 1, 2, 3])], 5)
    assert vals(wrap) == [None, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    # a value above maxValue is dropped and resets the previous value
    above, = call("nonNegativeDerivative", [S([1, 7, 3, 4])], 5)
    assert vals(above) == [None, None, None, 1]
    # minValue: a reset counts from minValue
    low, = call("nonNegativeDerivative", [S([10, 20, 5, 1, 8])], minValue=3)
    assert vals(low) == [None, 10, 2, None, None]
    both, = call("nonNegativeDerivative", [S([90, 98, 4])], 100, 2)
    assert vals(both) == [None, 8, 100 + 1 + 4 - 98 - 2]


def test_per_second():
    out, = call("perSecond", [S([0, 60, 30, 120, None, 150], step=60)])
    assert vals(out) == [None, 1.0, None, 1.5, None, None]
    assert out.name == "perSecond(a.b)" and out.tags["perSecond"] == "1"
    frac, = call("perSecond", [S([0, 1, 3], step=7)])
    assert vals(frac) == [None, round(1 / 7, 6), round(2 / 7, 6)]
    wrap, = call("perSecond", [S([50, 10], step=10)], 59)
    assert vals(wrap) == [None, 2.0]


def test_integral():
    out, = call("integral", [S([1, None, 2, -4, None])])
    assert vals(out) == [1, None, 3, -1, None]
    assert out.name == "integral(a.b)" and out.tags["integral"] == "1"


def test_empty_inputs():
    for name, extra in [("absolute", ()), ("scale", (2,)), ("derivative", ()), ("integral", ()),
                        ("transformNull", ()), ("keepLastValue", ()), ("perSecond", ())]:
        assert call(name, [], *extra) == []
        out, = call(name, [S([])], *extra)
        assert len(out.values) == 0


def test_bad_arguments():
    with pytest.raises(FunctionError, match="constant"):
        call("add", [S([1])])
    with pytest.raises(FunctionError, match="factor"):
        call("scale", [S([1])], "x")
    with pytest.raises(FunctionError, match="precision"):
        call("round", [S([1])], 1.5)
    with pytest.raises(FunctionError):
        call("absolute", [S([1])], 2)


def test_groups_and_registration():
    for name in ["absolute", "add", "derivative", "exp", "integral", "interpolate", "invert", "isNonNull",
                 "keepLastValue", "log", "logit", "minMax", "nonNegativeDerivative", "offset", "offsetToZero",
                 "perSecond", "pow", "round", "scale", "scaleToSeconds", "sigmoid", "squareRoot", "transformNull"]:
        assert REGISTRY[name].group == "Transform", name

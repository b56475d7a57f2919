"""app.fib against an independent matrix-power implementation and identities."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.fib import fib_digits, fib_doubling, fib_iterative, fib_naive, fib_sequence

FAST = [fib_doubling, fib_iterative]


def reference_fib(n):
    """F(n) from [[1, 1], [1, 0]] ** n = [[F(n+1), F(n)], [F(n), F(n-1)]]."""

    def mul(x, y):
        return (
            (x[0][0] * y[0][0] + x[0][1] * y[1][0], x[0][0] * y[0][1] + x[0][1] * y[1][1]),
            (x[1][0] * y[0][0] + x[1][1] * y[1][0], x[1][0] * y[0][1] + x[1][1] * y[1][1]),
        )

    result, base = ((1, 0), (0, 1)), ((1, 1), (1, 0))
    while n:
        if n & 1:
            result = mul(result, base)
        base = mul(base, base)
        n >>= 1
    return result[0][1]


def test_reference_is_right():
    assert [reference_fib(n) for n in range(10)] == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]


KNOWN = [(0, 0), (1, 1), (2, 1), (10, 55), (30, 832040), (100, 354224848179261915075)]


@pytest.mark.parametrize("n, expected", KNOWN)
@pytest.mark.parametrize("func", FAST)
def test_known_values(func, n, expected):
    assert func(n) == expected


@pytest.mark.parametrize("n, expected", [(n, v) for n, v in KNOWN if n <= 30])
def test_naive_known_values(n, expected):
    assert fib_naive(n) == expected


@pytest.mark.parametrize("func", FAST)
def test_small_n_match_reference(func):
    assert [func(n) for n in range(301)] == [reference_fib(n) for n in range(301)]


def test_naive_matches_reference():
    assert [fib_naive(n) for n in range(23)] == [reference_fib(n) for n in range(23)]


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=20000))
def test_large_n_match_reference(n):
    expected = reference_fib(n)
    assert fib_doubling(n) == expected
    assert fib_iterative(n) == expected


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=20000))
def test_doubling_identity(n):
    # F(2n) = F(n) * (2 F(n+1) - F(n)) and F(2n+1) = F(n)^2 + F(n+1)^2
    a, b = fib_doubling(n), fib_doubling(n + 1)
    assert fib_doubling(2 * n) == a * (2 * b - a)
    assert fib_doubling(2 * n + 1) == a * a + b * b


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=20000))
def test_cassini(n):
    # F(n-1) F(n+1) - F(n)^2 = (-1)^n
    assert fib_doubling(n - 1) * fib_doubling(n + 1) - fib_doubling(n) ** 2 == (-1) ** n


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=10000), st.integers(min_value=0, max_value=10000))
def test_addition_formula(m, n):
    # F(m+n) = F(m) F(n+1) + F(m-1) F(n)
    f = fib_doubling
    assert f(m + n) == f(m) * f(n + 1) + f(m - 1) * f(n)


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=0, max_value=18))
def test_all_methods_agree(n):
    assert fib_doubling(n) == fib_iterative(n) == fib_naive(n) == reference_fib(n)


def test_sequence():
    assert fib_sequence(0) == []
    assert fib_sequence(1) == [0]
    assert fib_sequence(8) == [0, 1, 1, 2, 3, 5, 8, 13]
    values = fib_sequence(2000)
    assert len(values) == 2000
    assert values == [reference_fib(n) for n in range(2000)]


def test_digits_exact():
    # every n up to 5000, so the float estimate has no off-by-one anywhere here
    a, b = 0, 1
    for n in range(5001):
        assert fib_digits(n) == len(str(a)), n
        a, b = b, a + b


def test_default_limit_fits_int_max_str_digits():
    assert fib_digits(20000) == len(str(fib_doubling(20000))) == 4180


@pytest.mark.parametrize("func", [*FAST, fib_naive, fib_sequence, fib_digits])
def test_rejects_bad_arguments(func):
    with pytest.raises(ValueError):
        func(-1)
    for bad in (1.0, "3", True, None):
        with pytest.raises(TypeError):
            func(bad)

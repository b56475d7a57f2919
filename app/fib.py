"""Pure Fibonacci functions.

F(0) = 0, F(1) = 1, F(n) = F(n - 1) + F(n - 2). Every function takes a
non-negative ``int`` and returns exact Python ints; none of them touch
Flask so they can be tested and benchmarked on their own.
"""

import math

# log10 of the golden ratio and of sqrt(5), for Binet's digit estimate
_LOG10_PHI = math.log10((1 + math.sqrt(5)) / 2)
_LOG10_SQRT5 = math.log10(5) / 2


def _check(n: object) -> None:
    # bool is an int subclass but fib(True) is almost certainly a bug
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, not {type(n).__name__}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")


def fib_doubling(n: int) -> int:
    """Return F(n) with the fast doubling identities, O(log n) big-int steps.

    F(2k) = F(k) * (2 * F(k + 1) - F(k)) and F(2k + 1) = F(k)^2 + F(k + 1)^2,
    walking the bits of n from the most significant one down.
    """
    _check(n)
    a, b = 0, 1  # F(k), F(k + 1) for k = 0
    for bit in bin(n)[2:]:
        c = a * (2 * b - a)  # F(2k)
        d = a * a + b * b  # F(2k + 1)
        if bit == "1":
            a, b = d, c + d  # k -> 2k + 1
        else:
            a, b = c, d  # k -> 2k
    return a


def fib_iterative(n: int) -> int:
    """Return F(n) with n big-int additions."""
    _check(n)
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def _naive(n: int) -> int:
    return n if n < 2 else _naive(n - 1) + _naive(n - 2)


def fib_naive(n: int) -> int:
    """Return F(n) by plain double recursion, about 1.6**n calls.

    Deliberately not memoised: this is the CPU burner used to load-test
    the servers, so it must stay exponential.
    """
    _check(n)
    return _naive(n)


def fib_sequence(n: int) -> list[int]:
    """Return the first n Fibonacci numbers, F(0) .. F(n - 1)."""
    _check(n)
    values = []
    a, b = 0, 1
    for _ in range(n):
        values.append(a)
        a, b = b, a + b
    return values


def fib_digits(n: int) -> int:
    """Return the number of decimal digits of F(n) without computing it.

    Binet: F(n) is the integer nearest phi**n / sqrt(5), so its digit count
    is floor(n * log10(phi) - log10(sqrt(5))) + 1 for n >= 2. Used to check
    limits against sys.int_max_str_digits before anything is converted.
    """
    _check(n)
    if n < 2:
        return 1
    return math.floor(n * _LOG10_PHI - _LOG10_SQRT5) + 1

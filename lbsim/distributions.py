"""Distributions of request sizes, think times and stay times, each with its exact mean and cv.

A scenario writes them as ``exp(20ms)``, ``lognormal(mean=20ms, cv=2)`` and so on;
:func:`parse_distribution` turns that text into one of the classes below. Every class
knows its exact mean and coefficient of variation (cv = standard deviation / mean), so
theory can be computed from the same object the engine samples.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from lbsim.errors import ConfigError, UnknownNameError, shown
from lbsim.input_files import input_path, read_input
from lbsim.units import format_duration, parse_duration


class Distribution:
    """A non-negative random variable with a known mean and cv."""

    spelling: ClassVar[str]

    @property
    def mean(self) -> float:
        """The exact mean."""
        raise NotImplementedError

    @property
    def cv(self) -> float:
        """The exact coefficient of variation (math.inf when the variance is infinite)."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw ``n`` independent values as a float64 array."""
        raise NotImplementedError


def _positive(name: str, where: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"{where}: {name} must be a finite number > 0; got {shown(value)}.")


# The largest cv a distribution given by mean and cv takes: beyond it, a run's sample mean
# misses the mean by orders of magnitude (a lognormal of cv 1000 has sigma^2 = ln(10^6 + 1)).
MAX_CV = 1000.0


@dataclass(frozen=True, slots=True)
class Exponential(Distribution):
    """Exponential with the given mean (memoryless: the M in M/M/1)."""

    mean_value: float
    spelling: ClassVar[str] = "exp"

    def __post_init__(self) -> None:
        _positive("mean", "exp", self.mean_value)

    @property
    def mean(self) -> float:
        return self.mean_value

    @property
    def cv(self) -> float:
        return 1.0

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.exponential(self.mean_value, n)

    def __str__(self) -> str:
        return f"exp({format_duration(self.mean_value)})"


@dataclass(frozen=True, slots=True)
class Deterministic(Distribution):
    """Always the same value (the D in M/D/1)."""

    value: float
    spelling: ClassVar[str] = "det"

    def __post_init__(self) -> None:
        if not self.value >= 0:
            raise ConfigError(f"det: value must be >= 0; got {shown(self.value)}.")

    @property
    def mean(self) -> float:
        return self.value

    @property
    def cv(self) -> float:
        return 0.0

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.value)

    def __str__(self) -> str:
        return f"det({format_duration(self.value)})"


@dataclass(frozen=True, slots=True)
class Uniform(Distribution):
    """Uniform between ``low`` and ``high``."""

    low: float
    high: float
    spelling: ClassVar[str] = "uniform"

    def __post_init__(self) -> None:
        if not 0 <= self.low <= self.high:
            raise ConfigError(
                f"uniform: bounds must satisfy 0 <= low <= high; got ({shown(self.low)}, {shown(self.high)})."
            )
        _positive("high", "uniform", self.high)

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    @property
    def cv(self) -> float:
        return (self.high - self.low) / math.sqrt(12) / self.mean

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, n)

    def __str__(self) -> str:
        return f"uniform({format_duration(self.low)}, {format_duration(self.high)})"


@dataclass(frozen=True, slots=True)
class _ByMeanAndCv(Distribution):
    """A family given by its mean and cv; subclasses say how to sample."""

    mean_value: float
    cv_value: float

    def __post_init__(self) -> None:
        _positive("mean", self.spelling, self.mean_value)
        _positive("cv", self.spelling, self.cv_value)
        if self.cv_value > MAX_CV:
            raise ConfigError(
                f"{self.spelling}: cv must be <= {MAX_CV:g} (a run could not reach the mean); "
                f"got {shown(self.cv_value)}."
            )

    @property
    def mean(self) -> float:
        return self.mean_value

    @property
    def cv(self) -> float:
        return self.cv_value

    def __str__(self) -> str:
        return f"{self.spelling}(mean={format_duration(self.mean_value)}, cv={self.cv_value:g})"


@dataclass(frozen=True, slots=True)
class Lognormal(_ByMeanAndCv):
    """Lognormal with the given mean and cv: sigma^2 = ln(1 + cv^2), mu = ln(mean) - sigma^2 / 2."""

    spelling: ClassVar[str] = "lognormal"

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        sigma2 = math.log1p(self.cv_value**2)
        return rng.lognormal(math.log(self.mean_value) - sigma2 / 2, math.sqrt(sigma2), n)


@dataclass(frozen=True, slots=True)
class Gamma(_ByMeanAndCv):
    """Gamma with the given mean and cv: shape 1 / cv^2 (Erlang-k when 1 / cv^2 = k)."""

    spelling: ClassVar[str] = "gamma"

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        shape = 1 / self.cv_value**2
        return rng.gamma(shape, self.mean_value / shape, n)


@dataclass(frozen=True, slots=True)
class HyperExponential(_ByMeanAndCv):
    """Two-phase hyperexponential with balanced means (cv >= 1), the H2 of M/H2/1.

    Phase i is chosen with probability p_i and has mean mean / (2 p_i), where
    p_1 = (1 + sqrt((cv^2 - 1) / (cv^2 + 1))) / 2 (Whitt's balanced-means fit).
    """

    spelling: ClassVar[str] = "hyperexp"

    def __post_init__(self) -> None:
        _ByMeanAndCv.__post_init__(self)
        if not self.cv_value >= 1:
            raise ConfigError(f"hyperexp: cv must be >= 1; got {shown(self.cv_value)}.")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        c2 = self.cv_value**2
        p1 = (1 + math.sqrt((c2 - 1) / (c2 + 1))) / 2
        phase_means = np.array([self.mean_value / (2 * p1), self.mean_value / (2 * (1 - p1))])
        phase = (rng.random(n) >= p1).astype(np.intp)
        return rng.exponential(1.0, n) * phase_means[phase]


@dataclass(frozen=True, slots=True)
class Pareto(Distribution):
    """Pareto with shape ``alpha`` and minimum ``low``; bounded at ``high`` when it is finite.

    Unbounded: mean = alpha low / (alpha - 1), cv = 1 / sqrt(alpha (alpha - 2)) (infinite for
    alpha <= 2). Bounded (Harchol-Balter's B(low, high, alpha)): moments from
    E[X^k] = alpha low^alpha (high^(k - alpha) - low^(k - alpha)) / ((k - alpha)(1 - (low/high)^alpha)).
    """

    low: float
    alpha: float
    high: float = math.inf
    spelling: ClassVar[str] = "pareto"

    def __post_init__(self) -> None:
        _positive("alpha", "pareto", self.alpha)
        _positive("min", "pareto", self.low)
        if not self.high > self.low:
            raise ConfigError(f"pareto: max must be > min; got {shown(self.high)}.")
        if math.isinf(self.high) and self.alpha <= 1:
            raise ConfigError(f"pareto: alpha must be > 1 for a finite mean; got {shown(self.alpha)}.")

    def _moment(self, k: int) -> float:
        a, lo, hi = self.alpha, self.low, self.high
        if math.isinf(hi):
            return math.inf if k >= a else a * lo**k / (a - k)
        scale = a * lo**a / (1 - (lo / hi) ** a)
        if k == a:
            return scale * math.log(hi / lo)
        return scale * (hi ** (k - a) - lo ** (k - a)) / (k - a)

    @property
    def mean(self) -> float:
        return self._moment(1)

    @property
    def cv(self) -> float:
        second = self._moment(2)
        if math.isinf(second):
            return math.inf
        return math.sqrt(max(second / self.mean**2 - 1, 0.0))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        u = rng.random(n)
        tail = 0.0 if math.isinf(self.high) else (self.low / self.high) ** self.alpha
        return self.low / (1 - u * (1 - tail)) ** (1 / self.alpha)

    def __str__(self) -> str:
        if math.isinf(self.high):
            return f"pareto(mean={format_duration(self.mean)}, alpha={self.alpha:g})"
        return (
            f"pareto(min={format_duration(self.low)}, max={format_duration(self.high)}, alpha={self.alpha:g})"
        )


@dataclass(frozen=True, slots=True)
class Weibull(Distribution):
    """Weibull with the given mean and shape k: scale = mean / Gamma(1 + 1/k)."""

    mean_value: float
    shape: float
    spelling: ClassVar[str] = "weibull"

    def __post_init__(self) -> None:
        _positive("mean", "weibull", self.mean_value)
        _positive("shape", "weibull", self.shape)

    @property
    def mean(self) -> float:
        return self.mean_value

    @property
    def cv(self) -> float:
        g1 = math.gamma(1 + 1 / self.shape)
        return math.sqrt(math.gamma(1 + 2 / self.shape) / g1**2 - 1)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        scale = self.mean_value / math.gamma(1 + 1 / self.shape)
        return scale * rng.weibull(self.shape, n)

    def __str__(self) -> str:
        return f"weibull(mean={format_duration(self.mean_value)}, shape={self.shape:g})"


@dataclass(frozen=True, slots=True)
class Empirical(Distribution):
    """Resampling (with replacement) of the values in a CSV file, in seconds.

    The file holds one column of values (a header line is allowed). Its mean and cv are
    those of the values themselves, so they are exact for this distribution.
    """

    path: str
    values: tuple[float, ...] = field(repr=False, compare=False)
    spelling: ClassVar[str] = "empirical"

    @classmethod
    def from_file(cls, path: Path) -> Empirical:
        """Read the values of ``path``; raise ConfigError if it is missing or holds a bad value."""
        lines = read_input(path, "empirical: file ").splitlines()
        name = shown(str(path))
        values: list[float] = []
        header = True  # the first line that is not blank may be a header
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                values.append(float(line.split(",")[0]))
            except ValueError:
                if header:
                    header = False
                    continue
                # The cell itself is not shown: the file could be anyone's (/etc/shadow).
                raise ConfigError(
                    f"empirical: {name} line {number} must hold a number; got something else."
                ) from None
            header = False
        if not values or not all(0 <= value < math.inf for value in values):
            raise ConfigError(f"empirical: {name} must hold at least one value, all finite and >= 0.")
        return cls(str(path), tuple(values))

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def cv(self) -> float:
        return float(np.std(self.values) / np.mean(self.values))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.asarray(self.values)[rng.integers(0, len(self.values), n)]

    def __str__(self) -> str:
        return f"empirical({self.path})"


_CALL = re.compile(r"^\s*([A-Za-z_]\w*)\s*\((.*)\)\s*$")
_SIGNATURES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # name: (required keyword names in positional order, optional names)
    "exp": (("mean",), ()),
    "det": (("value",), ()),
    "uniform": (("low", "high"), ()),
    "lognormal": (("mean", "cv"), ()),
    "gamma": (("mean", "cv"), ()),
    "hyperexp": (("mean", "cv"), ()),
    "pareto": (("alpha",), ("mean", "min", "max")),
    "weibull": (("mean", "shape"), ()),
    "empirical": (("file",), ()),
}
_PLAIN_NUMBERS = {"cv", "alpha", "shape"}


def parse_distribution(text: object, base_dir: Path | None = None, confined: bool = False) -> Distribution:
    """Return the distribution a scenario spells as ``name(arg, key=value, ...)``.

    Durations inside (``20ms``) are parsed with :func:`lbsim.units.parse_duration`;
    ``empirical(file.csv)`` reads the file relative to ``base_dir`` (inside it when
    ``confined``, as ``--safe`` asks).

    Raises:
        ConfigError: unknown name, missing or unknown argument, an impossible value, or a
            file outside ``base_dir`` when ``confined``.
    """
    if isinstance(text, Distribution):
        return text
    match = _CALL.match(text) if isinstance(text, str) else None
    if match is None:
        hint = ""
        with contextlib.suppress(ConfigError):
            hint = f" (a fixed size is det({format_duration(parse_duration(text))}))"
        raise ConfigError(f"must be a distribution such as 'exp(20ms)'; got {shown(text)}{hint}.")
    name, body = match.group(1), match.group(2)
    if name not in _SIGNATURES:
        raise UnknownNameError("distribution", name, _SIGNATURES)
    required, optional = _SIGNATURES[name]
    args: dict[str, str] = {}
    named = False
    parts = [part.strip() for part in body.split(",")] if body.strip() else []
    for position, part in enumerate(parts):
        key, sep, value = part.partition("=")
        if not sep:
            if position >= len(required) or named:
                raise ConfigError(f"{name}: arguments after a named one must be named; got {shown(part)}.")
            key, value = required[position], part
        named = named or bool(sep)
        key = key.strip()
        if key not in required + optional:
            raise UnknownNameError(f"argument of {name}()", key, required + optional)
        args[key] = value.strip()
    missing = [key for key in required if key not in args]
    if missing:
        raise ConfigError(f"{name}: argument {missing[0]!r} must be given; got {shown(text)}.")
    if name == "empirical":
        try:
            path = input_path(args["file"], base_dir, confined)
        except ConfigError as exc:
            raise ConfigError(f"empirical: file {exc}") from None
        return Empirical.from_file(path)
    number = {
        key: (_plain_number(name, key, value) if key in _PLAIN_NUMBERS else parse_duration(value))
        for key, value in args.items()
    }
    return _build(name, number)


def _plain_number(name: str, key: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name}: {key} must be a number; got {shown(value)}.") from None


def _build(name: str, a: dict[str, float]) -> Distribution:
    if name == "exp":
        return Exponential(a["mean"])
    if name == "det":
        return Deterministic(a["value"])
    if name == "uniform":
        return Uniform(a["low"], a["high"])
    if name == "lognormal":
        return Lognormal(a["mean"], a["cv"])
    if name == "gamma":
        return Gamma(a["mean"], a["cv"])
    if name == "hyperexp":
        return HyperExponential(a["mean"], a["cv"])
    if name == "weibull":
        return Weibull(a["mean"], a["shape"])
    return _pareto(a)


def _pareto(a: dict[str, float]) -> Pareto:
    alpha = a["alpha"]
    if ("mean" in a) == ("min" in a):
        raise ConfigError("pareto: exactly one of 'mean' and 'min' must be given.")
    if "min" in a:
        return Pareto(a["min"], alpha, a.get("max", math.inf))
    if "max" in a:
        raise ConfigError("pareto: a bounded Pareto must be given by 'min', 'max' and 'alpha'.")
    if not alpha > 1:
        raise ConfigError(f"pareto: alpha must be > 1 for a finite mean; got {shown(alpha)}.")
    return Pareto(a["mean"] * (alpha - 1) / alpha, alpha)

"""Prices per model: USD per million input and output tokens, and the cost of one call.

A reasoning model's hidden reasoning tokens are billed as output tokens (OpenAI bills `reasoning_tokens`
inside `completion_tokens`), so a call's cost is `input * prompt_tokens + output * (answer + reasoning tokens)`.

`DEFAULT_PRICES` holds only public list prices (OpenAI's pricing page; the dated snapshots below at the
prices they were offered at when those answers were recorded, 2024-09/10). Anything else comes from a price
file (TOML or JSON, `{"models": {"NAME": {"input_per_mtok": .., "output_per_mtok": ..}}}`) or a route's
`prices` table in the thinkgate config. A model without a price is an error listing close names, never
a silent zero.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import tomllib
from pathlib import Path
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


class PriceError(ValueError):
    """A price table that does not validate, or a model that has no price."""


class ModelPrice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_per_mtok: float = Field(ge=0, description="USD per million input (prompt) tokens")
    output_per_mtok: float = Field(ge=0, description="USD per million output tokens (incl. reasoning tokens)")
    source: str | None = None  # where the price comes from (a URL and date)

    @field_validator("input_per_mtok", "output_per_mtok")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    def cost(self, prompt_tokens: float, output_tokens: float) -> float:
        """USD for one call; output tokens include any (hidden) reasoning tokens."""
        return (self.input_per_mtok * prompt_tokens + self.output_per_mtok * output_tokens) / 1e6


OPENAI_PRICING = "https://openai.com/api/pricing/ (list prices, checked for the 2024-09/10 snapshots)"

DEFAULT_PRICES: dict[str, ModelPrice] = {
    "gpt-4o-mini-2024-07-18": ModelPrice(input_per_mtok=0.15, output_per_mtok=0.60, source=OPENAI_PRICING),
    "gpt-4o-2024-08-06": ModelPrice(input_per_mtok=2.50, output_per_mtok=10.00, source=OPENAI_PRICING),
    # launch prices; o1-mini later dropped to 1.10 / 4.40 (pass a price file for today's)
    "o1-mini-2024-09-12": ModelPrice(input_per_mtok=3.00, output_per_mtok=12.00, source=OPENAI_PRICING),
    "o1-preview-2024-09-12": ModelPrice(input_per_mtok=15.00, output_per_mtok=60.00, source=OPENAI_PRICING),
}


class PriceTable:
    """Model name -> price. Lookup is exact, then by the name without a `-YYYY-MM-DD` snapshot suffix."""

    def __init__(self, prices: Mapping[str, ModelPrice | Mapping[str, Any]]) -> None:
        self.prices: dict[str, ModelPrice] = {}
        for name, price in prices.items():
            try:
                self.prices[str(name)] = price if isinstance(price, ModelPrice) else ModelPrice.model_validate(price)
            except ValidationError as exc:
                raise PriceError(_describe(exc, f"price of {name!r}")) from None

    @classmethod
    def default(cls) -> "PriceTable":
        return cls(DEFAULT_PRICES)

    def price(self, model: str) -> ModelPrice:
        for name in (model, _SNAPSHOT.sub("", model)):
            if name in self.prices:
                return self.prices[name]
        close = difflib.get_close_matches(model, self.prices, n=3, cutoff=0.5)
        hint = f"; close: {', '.join(close)}" if close else ""
        raise PriceError(f"no price for model {model!r}{hint}; add it to a price file "
                         f"(known: {', '.join(sorted(self.prices)) or 'none'})")


def _describe(exc: ValidationError, what: str) -> str:
    errors = [f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg'].removeprefix('Value error, ')}"
              for e in exc.errors()[:5]]
    return f"invalid {what}: " + "; ".join(errors)


def load_prices(path: str | Path) -> PriceTable:
    """A price file: TOML or JSON with a `models` table of `{input_per_mtok, output_per_mtok[, source]}`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PriceError(f"cannot read price file {path}: {exc}") from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict) or not models:
        raise PriceError(f"price file {path} needs a non-empty 'models' table")
    return PriceTable(models)

import math

import pytest

from router.errors import ConfigError
from router.pricing import DEFAULT_PRICES, ModelPrice, PriceError, PriceTable, load_prices
from router.settings import parse_config


def test_cost_counts_reasoning_as_output():
    price = ModelPrice(input_per_mtok=3, output_per_mtok=12)
    assert price.cost(1000, 2000) == pytest.approx((3 * 1000 + 12 * 2000) / 1e6)


def test_lookup_exact_then_without_snapshot_date():
    table = PriceTable({"gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}})
    assert table.price("gpt-4o-mini-2024-07-18").output_per_mtok == 0.6
    with pytest.raises(PriceError, match="no price for model 'gpt-4o'.*close: gpt-4o-mini"):
        table.price("gpt-4o")
    assert set(DEFAULT_PRICES) == {"gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "o1-mini-2024-09-12",
                                   "o1-preview-2024-09-12"}


@pytest.mark.parametrize("price, message", [
    ({"input_per_mtok": -1, "output_per_mtok": 1}, "input_per_mtok: Input should be greater than or equal to 0"),
    ({"input_per_mtok": 1}, "output_per_mtok: Field required"),
    ({"input_per_mtok": 1, "output_per_mtok": math.inf}, "output_per_mtok"),
    ({"input_per_mtok": 1, "output_per_mtok": 2, "currency": "EUR"}, "currency: Extra inputs are not permitted"),
    ({"input_per_mtok": "cheap", "output_per_mtok": 2}, "input_per_mtok: Input should be a valid number"),
])
def test_invalid_prices_are_named(price, message):
    with pytest.raises(PriceError, match="invalid price of 'm'") as err:
        PriceTable({"m": price})
    assert message in str(err.value)


def test_price_files(tmp_path):
    good = tmp_path / "p.toml"
    good.write_text('[models."my-model"]\ninput_per_mtok = 1\noutput_per_mtok = 4\nsource = "contract"\n')
    assert load_prices(good).price("my-model").source == "contract"
    for text, message in (("models = 3", "needs a non-empty 'models' table"), ("[models", "cannot read price file"),
                          ('[models.m]\ninput_per_mtok = -2\noutput_per_mtok = 1', "invalid price of 'm'")):
        good.write_text(text)
        with pytest.raises(PriceError, match=message):
            load_prices(good)
    with pytest.raises(PriceError, match="cannot read price file"):
        load_prices(tmp_path / "missing.json")


def test_route_prices_are_validated_with_the_config():
    route = {"backend": "openai", "base_url": "http://x/v1", "model": "m"}
    cfg = parse_config({"routes": {"r": {**route, "prices": {"m": {"input_per_mtok": 1, "output_per_mtok": 2}}}}})
    assert cfg.routes["r"].prices["m"].output_per_mtok == 2
    with pytest.raises(ConfigError, match=r"routes.r.prices.m.output_per_mtok"):
        parse_config({"routes": {"r": {**route, "prices": {"m": {"input_per_mtok": 1, "output_per_mtok": -2}}}}})

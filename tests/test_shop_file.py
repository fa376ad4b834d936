"""Bring your own shop: shop files and CSV exports, checked at start, served as given."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from chatbuddy.agents.shop import Shop
from chatbuddy.agents.shopfile import ShopFileError, load_shop_data
from chatbuddy.cli.main import cli  # type: ignore[import-not-found,unused-ignore]
from chatbuddy.client.launcher import launch_server
from tests.helpers import TIMEOUT, ChatClient

SMALL_SHOP: dict[str, Any] = {
    "name": "Bringa Bolt",
    "language": "hu",
    "currency": "HUF",
    "categories": {
        "bike": {
            "hu": "kerékpár",
            "en": "bicycle",
            "keywords": {"hu": ["bicikli", "bringa"], "en": ["bike"]},
        }
    },
    "products": [
        {
            "id": "b1",
            "name": "Csepel Torpedo 3",
            "brand": "Csepel",
            "category": "bike",
            "price": 129900,
            "stock": 3,
            "aliases": ["torpedo"],
        },
        {
            "id": "b2",
            "name": "Merida Speeder 100",
            "brand": "Merida",
            "category": "bike",
            "price": 219900,
            "stock": 0,
        },
    ],
    "orders": [
        {
            "id": "55501",
            "status": "shipped",
            "items": ["b1"],
            "total": 129900,
            "placed": "2026-11-20",
            "carrier": "Foxpost",
            "tracking": "FP-1",
            "eta": "2026-11-29",
            "email": "bea@example.com",
            "postcode": "8000",
        }
    ],
    "policies": [
        {
            "topic": "shipping",
            "keywords": {"hu": ["szállítás"], "en": ["shipping"]},
            "hu": "A bringát összeszerelve, 2 nap alatt visszük házhoz.",
            "en": "We deliver the bike assembled within 2 days.",
        }
    ],
}


def write(folder: Path, data: dict[str, Any], name: str = "shop.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def broken(change: str) -> dict[str, Any]:
    data = copy.deepcopy(SMALL_SHOP)
    if change == "negative price":
        data["products"][1]["price"] = -1
    elif change == "unknown category":
        data["products"][0]["category"] = "boat"
    elif change == "twice the same id":
        data["products"][1]["id"] = "b1"
    elif change == "no name":
        del data["products"][0]["name"]
    elif change == "bad postcode":
        data["orders"][0]["postcode"] = "80OO"
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            "negative price",
            "products[1] (b2) field price: Input should be greater than or equal to 0",
        ),
        ("unknown category", "products[0] (b1): category 'boat' is not in categories"),
        ("twice the same id", "products[1] (b1): id 'b1' is used twice"),
        ("no name", "products[0] (b1) field name: Field required"),
        ("bad postcode", "orders[0] (55501) field postcode: String should match pattern"),
    ],
)
def test_a_bad_shop_file_is_refused_with_one_line_naming_the_entry_and_field(
    tmp_path: Path, change: str, message: str
) -> None:
    path = write(tmp_path, broken(change))
    with pytest.raises(ShopFileError) as caught:
        load_shop_data(path)
    assert str(caught.value).startswith(f"{path}: {message}")
    assert "\n" not in str(caught.value)


def test_a_file_that_is_not_json_says_where(tmp_path: Path) -> None:
    path = tmp_path / "shop.json"
    path.write_text('{"name": "x",\n  oops}', encoding="utf-8")
    with pytest.raises(ShopFileError, match=r"not JSON: .* at line 2"):
        load_shop_data(path)


def test_products_can_come_from_a_csv_export_with_its_own_headers(tmp_path: Path) -> None:
    (tmp_path / "export.csv").write_text(
        "Handle,Title,Vendor,Type,Variant Price,Inventory,Colour,Aliases\n"
        "b1,Csepel Torpedo 3,Csepel,bike,129900.00,3,red,torpedo|torpi\n"
        'b2,Merida Speeder 100,Merida,bike,"219 900",0,blue,\n',
        encoding="utf-8",
    )
    data = {k: v for k, v in SMALL_SHOP.items() if k != "products"}
    data["products_csv"] = {
        "path": "export.csv",
        "columns": {
            "id": "Handle",
            "name": "Title",
            "brand": "Vendor",
            "category": "Type",
            "price": "Variant Price",
            "stock": "Inventory",
            "aliases": "Aliases",
        },
        "attribute_columns": ["Colour"],
    }
    shop = Shop.load(write(tmp_path, data))
    torpedo, speeder = shop.products
    assert (torpedo.price, torpedo.aliases, torpedo.attributes) == (
        129900,
        ("torpedo", "torpi"),
        {"Colour": "red"},
    )
    assert (speeder.price, speeder.stock) == (219900, 0)


def test_a_csv_without_a_needed_column_names_it(tmp_path: Path) -> None:
    (tmp_path / "export.csv").write_text("id,name,brand,category,stock\nb1,X,Y,bike,1\n", "utf-8")
    data = {k: v for k, v in SMALL_SHOP.items() if k not in ("products", "orders")}
    data["products_csv"] = {"path": "export.csv"}
    with pytest.raises(ShopFileError, match="no column 'price' in the header row"):
        load_shop_data(write(tmp_path, data))


def test_a_bad_csv_row_is_named_like_a_bad_json_entry(tmp_path: Path) -> None:
    (tmp_path / "export.csv").write_text(
        "id,name,brand,category,price,stock\nb1,X,Y,bike,100,1\nb2,Z,Y,bike,cheap,1\n", "utf-8"
    )
    data = {k: v for k, v in SMALL_SHOP.items() if k not in ("products", "orders")}
    data["products_csv"] = {"path": "export.csv"}
    with pytest.raises(ShopFileError, match=r"export.csv: products\[1\] \(b2\) field price"):
        load_shop_data(write(tmp_path, data))


def test_shop_check_summarises_a_good_file_and_refuses_a_bad_one_with_exit_code_3(
    tmp_path: Path,
) -> None:
    good = CliRunner().invoke(
        cli, ["shop", "check", str(write(tmp_path, SMALL_SHOP))], terminal_width=100
    )
    assert good.exit_code == 0, good.output
    assert "Bringa Bolt (hu, HUF)" in good.output
    assert "kerékpár" in good.output
    assert "The shop file is valid." in good.output
    as_json = CliRunner().invoke(cli, ["shop", "check", "--json", str(tmp_path / "shop.json")])
    assert json.loads(as_json.output)["categories"][0] == {
        "key": "bike",
        "hu": "kerékpár",
        "en": "bicycle",
        "products": 2,
        "in_stock": 1,
    }
    bad = CliRunner().invoke(
        cli, ["shop", "check", str(write(tmp_path, broken("negative price"), "bad.json"))]
    )
    assert bad.exit_code == 3
    assert bad.output.strip().splitlines() == [
        f"Error: {tmp_path / 'bad.json'}: products[1] (b2) field price: "
        "Input should be greater than or equal to 0"
    ]


async def test_serve_refuses_a_bad_shop_file_with_one_line_and_exit_code_3(tmp_path: Path) -> None:
    path = write(tmp_path, broken("unknown category"))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chatbuddy", "serve", "--port", "0", "--shop", str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 4 * TIMEOUT)
    assert process.returncode == 3
    assert stderr.decode().strip() == (
        f"Error: {path}: products[0] (b1): category 'boat' is not in categories"
    )


async def test_the_assistant_answers_from_the_shop_named_in_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, SMALL_SHOP)
    server = launch_server(env={**os.environ, "CHATBUDDY_SHOP": str(path)}, timeout=4 * TIMEOUT)
    try:
        client = await ChatClient.open(server.port, "own-shop")
        await client.greeting()
        price = await client.chat("own-shop", "mennyi a torpedo?")
        assert "129\u202f900\u202fFt" in price["content"]
        shipping = await client.chat("own-shop", "szállítás?")
        assert shipping["content"] == SMALL_SHOP["policies"][0]["hu"]
        order = await client.chat("own-shop", "hol tart az 55501 rendelésem? bea@example.com")
        assert "FP-1" in order["content"]
        client.close()
    finally:
        assert server.stop() == 0

"""Load the data files (blocks, categories, districts, agencies) idempotently: upsert by code."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import Agency, Block, Category, District, Route

DATA_DIR = Path(__file__).resolve().parent / "data"


def read_data(name: str, data_dir: Path = DATA_DIR) -> dict[str, Any]:
    with (data_dir / name).open("rb") as fh:
        return tomllib.load(fh)


async def _upsert(session: AsyncSession, model: type[Any], code: str, values: dict[str, Any]) -> Any:
    row = (await session.execute(select(model).where(model.code == code))).scalar_one_or_none()
    if row is None:
        row = model(code=code, **values)
        session.add(row)
    else:
        for key, value in values.items():
            setattr(row, key, value)
    await session.flush()
    return row


async def load_directories(sessionmaker: async_sessionmaker[AsyncSession], data_dir: Path = DATA_DIR) -> None:
    """Upsert every directory row from the data files; running it twice changes nothing."""
    categories = read_data("categories.toml", data_dir)
    districts = read_data("districts.toml", data_dir)
    agencies = read_data("agencies.toml", data_dir)
    async with sessionmaker() as session, session.begin():
        for b_pos, block in enumerate(categories["block"]):
            block_row = await _upsert(session, Block, block["code"], {"names": block["name"], "position": b_pos})
            for c_pos, cat in enumerate(block.get("category", [])):
                await _upsert(
                    session,
                    Category,
                    cat["code"],
                    {
                        "names": cat["name"],
                        "position": c_pos,
                        "block_id": block_row.id,
                        "physical": bool(cat.get("physical", False)),
                    },
                )
        district_ids: dict[str, int] = {}
        for d_pos, district in enumerate(districts["district"]):
            row = await _upsert(
                session,
                District,
                district["code"],
                {
                    "kind": district["kind"],
                    "names": district["name"],
                    "centers": district.get("center", district["name"]),
                    "position": d_pos,
                },
            )
            district_ids[district["code"]] = row.id
        for agency in agencies["agency"]:
            await _upsert(
                session,
                Agency,
                agency["code"],
                {
                    "kind": agency["kind"],
                    "names": agency["name"],
                    "short_names": agency.get("short", agency["name"]),
                    "district_id": district_ids.get(agency.get("district", "")),
                },
            )
    await load_routes(sessionmaker, data_dir)


def resolve_route(rules: list[dict[str, Any]], category: str, block: str, district: str) -> str | None:
    """The agency code of the most specific rule: category+district > category > block+district > block."""
    best: tuple[int, str] | None = None
    for rule in rules:
        if rule.get("category") == category:
            rank = 4 if rule["district"] == district else 3 if rule["district"] == "*" else 0
        elif rule.get("block") == block:
            rank = 2 if rule["district"] == district else 1 if rule["district"] == "*" else 0
        else:
            rank = 0
        if rank and (best is None or rank > best[0]):
            agency = rule["agency"]
            best = (rank, f"adm_{district}" if agency == "adm:district" else agency)
    return best[1] if best else None


async def load_routes(sessionmaker: async_sessionmaker[AsyncSession], data_dir: Path = DATA_DIR) -> int:
    """Fill the routing matrix from the rules; pairs that already have a route (maybe edited by an
    admin) are kept as they are. Returns how many routes were added."""
    rules = read_data("routing.toml", data_dir)["rule"]
    added = 0
    async with sessionmaker() as session, session.begin():
        blocks = {b.id: b.code for b in (await session.execute(select(Block))).scalars()}
        categories = (await session.execute(select(Category))).scalars().all()
        districts = (await session.execute(select(District))).scalars().all()
        agencies = {a.code: a.id for a in (await session.execute(select(Agency))).scalars()}
        existing = {(r.category_id, r.district_id) for r in (await session.execute(select(Route))).scalars()}
        for category in categories:
            for district in districts:
                if (category.id, district.id) in existing:
                    continue
                code = resolve_route(rules, category.code, blocks[category.block_id], district.code)
                if code is None or code not in agencies:
                    raise ValueError(f"routing.toml: no agency for {category.code} in {district.code}")
                session.add(Route(category_id=category.id, district_id=district.id, agency_id=agencies[code]))
                added += 1
    return added

"""Load the data files (blocks, categories, districts, agencies) idempotently: upsert by code."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import Agency, Block, Category, District

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
                    {"names": cat["name"], "position": c_pos, "block_id": block_row.id},
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

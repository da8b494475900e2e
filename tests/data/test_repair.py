"""Text repair of real data (``data.text_repair``): scraped text with mojibake, U+FFFD and control
characters passes the strict suites after repair, the changes are counted, and without repair the
failure names the setting that helps."""
from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from prodrank import stages  # noqa: E402
from prodrank.config import resolve  # noqa: E402
from prodrank.data.ingest import load_judgments  # noqa: E402
from prodrank.data.repair import TextRepair, repair_text  # noqa: E402
from prodrank.data.validate import DataValidationError, check, validate_tables  # noqa: E402
from tests.conftest import PROJECT_ROOT  # noqa: E402

SCRAPED = [  # (query, product id, title, description, grade): text as a scraper leaves it
    ("cafÃ© table", "A1", "CafÃ© Table â€“ 90 cm", "Solid oak, seats 4\x07", 3),
    ("cafÃ© table", "A2", "Garden Hose 50 ft", "Kink\ufffdfree rubber hose", 1),
    ("cafÃ© table", "A3", "Bistro Chair Set", "Powder\u2011coated steel, \u201cclassic\u201d look", 2),
    ("red sofa", "B1", "Red 3-Seat Sofa", "Velvet sofa in red", 3),
    ("red sofa", "A2", "Garden Hose 50 ft", "Kink\ufffdfree rubber hose", 0),
    ("red sofa", "B2", "Blue Armchair", "ÂŠÃœÂ¢ armchair", 1),
]


def scraped_file(path):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["query", "product_id", "product_title", "description", "grade"])
        writer.writerows(SCRAPED)
    return path


@pytest.mark.parametrize(("damaged", "repaired"), [
    ("CafÃ© Table â€“ 90 cm", "Café Table – 90 cm"),  # UTF-8 read as cp1252
    ("Kink\ufffdfree", "Kinkfree"),  # the lost character stays lost, the marker goes
    ("Solid oak\x07\x1b[31m", "Solid oak"),  # control characters and terminal escapes
    ("\u201cclassic\u201d \ufb01ne ｆull", "\u201cclassic\u201d \ufb01ne ｆull"),  # not damage: kept as written
    ("Red 3-Seat Sofa", "Red 3-Seat Sofa"),
])
def test_repair_text(damaged, repaired):
    assert repair_text(damaged) == repaired


def test_scraped_judgments_pass_the_suites_after_repair_with_counts(tmp_path):
    repair = TextRepair("ftfy")
    tables = load_judgments(scraped_file(tmp_path / "j.csv"), repair=repair)
    catalog = tables["catalog"].set_index("product_id")
    assert catalog.loc["A1", "title"] == "Café Table – 90 cm" and catalog.loc["A2", "description"] == "Kinkfree rubber hose"
    assert set(tables["queries"]["query"]) == {"café table", "red sofa"}  # ids come from the repaired text
    # values changed, per column, counted as they were read (rows, before deduplication)
    assert repair.summary() == {"mode": "ftfy", "changed": {"judgments.description": 4, "judgments.product_title": 1,
                                                             "judgments.query": 3}}
    check(validate_tables(tables, PROJECT_ROOT / "expectations", tmp_path / "reports", text_repair=repair.summary()))
    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    assert summary["text_repair"]["changed"]["judgments.query"] == 3


def test_without_repair_the_failure_names_the_setting(tmp_path):
    tables = load_judgments(scraped_file(tmp_path / "j.csv"), repair=TextRepair("none"))
    with pytest.raises(DataValidationError) as failed:
        check(validate_tables(tables, PROJECT_ROOT / "expectations", tmp_path / "reports", repair_setting="none"))
    message = str(failed.value)
    assert "mojibake" in message and "U+FFFD" in message
    assert "set data.text_repair: ftfy in params.yaml" in message


def test_ingest_and_validate_stages_record_and_show_the_repair(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "expectations").symlink_to(PROJECT_ROOT / "expectations")
    cfg = resolve({"data": {"source": "judgments", "judgments": {"path": str(scraped_file(tmp_path / "j.csv"))}}})
    stages.ingest(cfg, tmp_path / "raw")
    recorded = json.loads((tmp_path / "raw" / "text_repair.json").read_text())
    assert recorded["mode"] == "ftfy" and recorded["changed"]["judgments.query"] == 3
    caplog.set_level("INFO")
    stages.validate(cfg, tmp_path / "raw", tmp_path / "validation")
    assert "text repair (ftfy): values changed per column: judgments.description 4" in caplog.text

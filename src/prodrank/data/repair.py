"""Repair of real-world text before it is validated (``data.text_repair``).

Scraped catalogues and logs carry text that went through the wrong encoding somewhere:
mojibake ("CafÃ©", "â€™"), replacement characters (U+FFFD) where a byte could not be decoded,
terminal escapes and control characters. The Great Expectations suites reject such text, as they
should: a model would learn "Ã©" as a word. With ``text_repair: ftfy`` the loaders repair every
free-text column as they read it, before query ids are derived from the text, using ftfy
(Speer, 2019), not a hand-written table:

- ``ftfy.fix_text`` undoes mojibake, HTML entities (when the text holds no markup), C1 and other
  control characters and terminal escapes; curly quotes, full-width characters and ligatures are
  left as the store wrote them (they are not damage);
- U+FFFD is then removed: the character it replaced is lost, and no guess is better than none.

It counts the values it changed per column; ingest records the counts beside the raw tables and
the validation report shows them. The suites stay as strict after repair.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import ftfy
import pandas as pd

REPLACEMENT_CHARACTER = "\ufffd"
FIXER = ftfy.TextFixerConfig(uncurl_quotes=False, fix_character_width=False, fix_latin_ligatures=False,
                             explain=False)

RepairMode = Literal["none", "ftfy"]


def repair_text(text: str) -> str:
    """One value, repaired (module doc)."""
    return ftfy.fix_text(text, FIXER).replace(REPLACEMENT_CHARACTER, "")


@dataclass
class TextRepair:
    """Repairs the free-text columns of the frames it is given and counts the changed values."""

    mode: RepairMode = "ftfy"
    changed: Counter = field(default_factory=Counter)  # "<kind>.<column>" -> values changed

    def frame(self, df: pd.DataFrame, kind: str, columns: Iterable[str]) -> pd.DataFrame:
        """``df`` with its text ``columns`` repaired (a copy when anything changed)."""
        if self.mode == "none":
            return df
        out = df
        for column in (c for c in columns if c in df.columns):
            values = df[column]
            text = values.notna() & values.map(lambda v: isinstance(v, str))
            repaired = values.where(~text, values[text].map(repair_text))
            changed = int((repaired[text] != values[text]).sum())
            if changed:
                out = out.assign(**{column: repaired})
                self.changed[f"{kind}.{column}"] += changed
        return out

    def summary(self) -> dict:
        return {"mode": self.mode, "changed": dict(sorted(self.changed.items()))}

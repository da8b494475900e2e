"""Word lists of the simulated store used by :mod:`prodrank.sim.world`.

The vocabulary is built so that the two problems the project studies exist by
construction and can be tagged:

* **Titles** use one *catalogue* form of every word: the type noun ("Sofa"), abbreviated
  units ("12 in.", "6-Pk", "3-Seat"), and, for brands with terse listings, abbreviated
  colours and materials ("Blk", "Stnls Stl").
* **Shoppers** may type a synonym of the noun ("couch"), an abbreviation or full form no
  title uses ("12 inch", "6 pack", "tv" vs "television"), or describe the need in words
  only product *descriptions* contain ("comfy seating for the whole family").

Every attribute value therefore carries its title form(s), the query form that matches
the title ("plain") and the query forms that match no title ("alts"). :func:`problems`
checks the invariants the simulator and its tests rely on.

This module is plain data plus small helpers; it draws no random numbers. The product types
(nouns, synonyms, uses, prices and attribute values) live in ``vocabulary.json`` beside it.
"""
from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

MAX_SLOTS = 4  # attributes per product type; products store one value index per slot

NUMBER_WORDS = {
    1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven",
    8: "eight", 9: "nine", 10: "ten", 12: "twelve",
}

# Where a value goes in a title: lead ("Men's"), pre (before the noun), material (just
# before the noun), in (" in Black"), post (", Size M"), pack (" (6-Pk)").
SLOT_ORDER = {"lead": 0, "pre": 1, "material": 2, "in": 3, "post": 4, "pack": 5}


def tokens(text: str) -> list[str]:
    """Lower-case alphanumeric tokens, the way a plain lexical matcher sees text."""
    return re.findall(r"[a-z0-9]+", text.lower())


STOPWORDS = frozenset(
    "a an and the for of in on to with your you at by from or any out off up it its is "
    "are be as into so they all every after before while when during under over per "
    "no little much more".split()
)


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class AttrValue:
    """One value of an attribute kind, with every surface form the simulator renders."""

    kind: str
    name: str  # canonical value, as in the attributes string ("stainless steel", "12 in")
    title: str  # title form used by most brands ("Stainless Steel", "12 in.")
    terse: str  # title form used by brands with terse listings ("Stnls Stl")
    plain: str  # query form matching the title tokens ("stainless steel", "12 in")
    alts: tuple[str, ...]  # query forms found in no title: the abbreviation gap
    desc: str  # sentence for the product description
    number: float | None = None  # magnitude of a numeric value (drives the price)
    premium: float = 1.0  # price multiplier of a word value


@dataclass(frozen=True)
class Word:
    title: str
    terse: str | None = None
    premium: float = 1.0
    plain: str | None = None
    alts: tuple[str, ...] = ()


@dataclass(frozen=True)
class WordKind:
    key: str
    label: str  # key in the attributes string
    slot: str
    desc: str  # description sentence, {v} = canonical value
    words: dict[str, Word]


@dataclass(frozen=True)
class UnitKind:
    """A numeric attribute. Format fields: n (1.5), c (10,000), k (10 for 10000), w (six)."""

    key: str
    label: str
    slot: str
    title: str  # catalogue form, always used in titles ("{n} in.")
    plain: str  # query form matching the title ("{n} in")
    alts: tuple[str, ...]  # query forms no title uses ("{n} inch")
    desc: str
    elasticity: float  # price ~ (value / median value of the type) ** elasticity
    name: str | None = None  # canonical form for the attributes string (default: plain)


def _fields(n: float) -> dict[str, str]:
    return {
        "n": f"{n:g}",
        "c": f"{n:,g}",
        "k": f"{n / 1000:g}",
        "w": NUMBER_WORDS.get(int(n), "") if float(n).is_integer() else "",
    }


_COLOR = {
    "black": Word("Black", "Blk"), "white": Word("White", "Wht"), "gray": Word("Gray", "Gry"),
    "charcoal": Word("Charcoal", "Chrcl"), "beige": Word("Beige", "Bge"),
    "brown": Word("Brown", "Brn"), "navy": Word("Navy", "Nvy"), "blue": Word("Blue", "Blu"),
    "red": Word("Red"), "green": Word("Green", "Grn"), "silver": Word("Silver", "Slvr"),
    "espresso": Word("Espresso", "Esp."), "walnut": Word("Walnut", "Wlnt"),
    "oak": Word("Oak"), "natural": Word("Natural", "Nat."), "pink": Word("Pink", "Pnk"),
    "yellow": Word("Yellow", "Ylw"), "orange": Word("Orange", "Orng"), "teal": Word("Teal"),
    "purple": Word("Purple", "Prpl"), "clear": Word("Clear", "Clr"),
}
_FINISH = {
    "chrome": Word("Chrome", "Chr"), "brushed nickel": Word("Brushed Nickel", "Brshd Nckl", 1.1),
    "matte black": Word("Matte Black", "Mtt Blk", 1.1),
    "oil rubbed bronze": Word("Oil-Rubbed Bronze", "ORB", 1.15),
    "polished brass": Word("Polished Brass", "Pol. Brs", 1.2),
    "stainless steel": Word("Stainless Steel", "Stnls Stl", 1.1),
    "black stainless steel": Word("Black Stainless Steel", "Blk Stnls Stl", 1.2),
    "white": Word("White", "Wht", 0.9), "black": Word("Black", "Blk", 0.95),
}
_MATERIAL = {
    "leather": Word("Leather", "Lthr", 1.5), "faux leather": Word("Faux Leather", "Faux Lthr"),
    "fabric": Word("Fabric", "Fbrc", 0.9), "velvet": Word("Velvet", "Vlvt", 1.15),
    "linen": Word("Linen", "Lnn", 1.1), "microfiber": Word("Microfiber", "Microfbr", 0.85),
    "solid wood": Word("Solid Wood", "Sld Wd", 1.3),
    "engineered wood": Word("Engineered Wood", "Eng. Wd", 0.75),
    "metal": Word("Metal", "Mtl", 0.9), "steel": Word("Steel", "Stl"),
    "stainless steel": Word("Stainless Steel", "Stnls Stl", 1.25),
    "cast iron": Word("Cast Iron", "Cst Irn", 1.1), "nonstick": Word("Nonstick", "Non-Stk", 0.9),
    "aluminum": Word("Aluminum", "Alum.", 0.9), "copper": Word("Copper", "Cppr", 1.4),
    "ceramic": Word("Ceramic", "Crmc"), "porcelain": Word("Porcelain", "Porc.", 1.1),
    "glass": Word("Glass"), "plastic": Word("Plastic", "Plstc", 0.7),
    "bamboo": Word("Bamboo", "Bmbo", 0.95), "cotton": Word("Cotton", "Ctn"),
    "egyptian cotton": Word("Egyptian Cotton", "Egypt. Ctn", 1.4),
    "polyester": Word("Polyester", "Poly", 0.8), "wool": Word("Wool", premium=1.3),
    "flannel": Word("Flannel", "Flnl"), "fleece": Word("Fleece", "Flc", 0.9),
    "down alternative": Word("Down Alternative", "Down Alt.", 0.9),
    "goose down": Word("Goose Down", "Gse Dwn", 1.6),
    "memory foam": Word("Memory Foam", "Mem. Foam", 1.2), "mesh": Word("Mesh", premium=0.9),
    "wicker": Word("Wicker", "Wckr"), "teak": Word("Teak", premium=1.6),
    "resin": Word("Resin", "Rsn", 0.8), "nylon": Word("Nylon", "Nyl", 0.8),
    "rubber": Word("Rubber", "Rbr", 1.2), "vinyl": Word("Vinyl", "Vnl", 0.8),
    "terracotta": Word("Terracotta", "Terra Ctta", 0.8), "brass": Word("Brass", "Brs", 1.3),
    "fiberglass": Word("Fiberglass", "Fbrgls", 1.3), "acrylic": Word("Acrylic", "Acryl.", 1.1),
    "chrome vanadium": Word("Chrome Vanadium", "Cr-V", 1.2),
}

WORD_KINDS: dict[str, WordKind] = {
    k.key: k
    for k in (
        WordKind("color", "color", "in", "Finished in {v}.", _COLOR),
        WordKind("finish", "finish", "in", "Finished in {v}.", _FINISH),
        WordKind("material", "material", "material", "Built with durable {v}.", _MATERIAL),
        WordKind("light_color", "light color", "in", "Gives off a {v} glow.", {
            "soft white": Word("Soft White", "Soft Wht"), "daylight": Word("Daylight", "Daylt"),
            "bright white": Word("Bright White", "Brt Wht")}),
        WordKind("bed_size", "bed size", "pre", "Fits a standard {v} bed.", {
            "twin": Word("Twin", premium=0.7), "full": Word("Full", premium=0.85),
            "queen": Word("Queen", "Qn"), "king": Word("King", "Kg", 1.2),
            "california king": Word("California King", "Cal King", 1.25)}),
        WordKind("apparel_size", "size", "post", "Shown here in size {v}.", {
            "small": Word("Size S", "Sz S", plain="size s", alts=("small",)),
            "medium": Word("Size M", "Sz M", plain="size m", alts=("medium",)),
            "large": Word("Size L", "Sz L", plain="size l", alts=("large",)),
            "x-large": Word("Size XL", "Sz XL", 1.05, plain="size xl", alts=("extra large",))}),
        WordKind("gender", "fit", "lead", "Designed with a {v} fit.", {
            "men's": Word("Men's"), "women's": Word("Women's"),
            "kids'": Word("Kids'", premium=0.7, plain="kids")}),
        WordKind("style", "style", "pre", "Features a {v} design.", {
            "french door": Word("French Door", "Fr. Door", 1.2),
            "side by side": Word("Side-by-Side", "SxS", 1.1),
            "top freezer": Word("Top Freezer", "Top Frz", 0.8),
            "front load": Word("Front Load", "Frt Load", 1.15), "top load": Word("Top Load", premium=0.9),
            "window": Word("Window", "Wndw", 0.9), "portable": Word("Portable", "Port.", 1.1)}),
        WordKind("power", "power source", "pre", "Runs on {v} power.", {
            "gas": Word("Gas", premium=1.2), "electric": Word("Electric", "Elec."),
            "battery": Word("Battery", "Batt.", 1.15), "corded": Word("Corded", premium=0.85),
            "cordless": Word("Cordless", "Cdls", 1.2)}),
        WordKind("resolution", "resolution", "pre", "Delivers crisp {v} resolution.", {
            "4k": Word("4K", premium=1.3), "hd": Word("HD", premium=0.8, alts=("high definition",))}),
        WordKind("connectivity", "connectivity", "pre", "Connects with a {v} design.", {
            "wired": Word("Wired", premium=0.8), "wireless": Word("Wireless", "Wrls", 1.2)}),
        WordKind("flavor", "flavor", "pre", "Made with real {v}.", {
            "chicken": Word("Chicken", "Chkn"), "beef": Word("Beef"), "lamb": Word("Lamb", premium=1.1),
            "salmon": Word("Salmon", "Slmn", 1.15), "turkey": Word("Turkey", "Trky")}),
        WordKind("shape", "bowl shape", "pre", "Features a {v} bowl.", {
            "elongated": Word("Elongated", "Elong.", 1.1), "round": Word("Round", "Rnd", 0.95)}),
        WordKind("toe", "toe", "pre", "Includes {v} protection.", {
            "steel toe": Word("Steel Toe", "Stl Toe", 1.15), "soft toe": Word("Soft Toe")}),
        WordKind("scent", "scent", "pre", "Comes in a {v} formula.", {
            "unscented": Word("Unscented", "Unscntd"), "lavender": Word("Lavender", "Lav."),
            "fresh scent": Word("Fresh Scent", "Frsh Scnt")}),
    )
}

_U = UnitKind
UNIT_KINDS: dict[str, UnitKind] = {
    k.key: k
    for k in (
        _U("seats", "seats", "pre", "{n}-Seat", "{n} seat", ("{n} seater", "{w} seater"),
           "Seats {n} people.", 0.5, "{n}"),
        _U("drawers", "drawers", "pre", "{n}-Drawer", "{n} drawer", ("{w} drawer",),
           "Has {n} drawers.", 0.3, "{n}"),
        _U("doors", "doors", "pre", "{n}-Door", "{n} door", ("{w} door",), "Has {n} doors.", 0.3, "{n}"),
        _U("shelves", "shelves", "pre", "{n}-Shelf", "{n} shelf", ("{w} shelf",),
           "Has {n} shelves.", 0.3, "{n}"),
        _U("tiers", "tiers", "pre", "{n}-Tier", "{n} tier", ("{w} tier",),
           "Offers {n} tiers of storage.", 0.3, "{n}"),
        _U("pack", "pack", "pack", "{n}-Pk", "{n} pk", ("{n} pack", "{n} count"),
           "Includes {n} per pack.", 0.7, "{n}"),
        _U("pieces", "pieces", "pre", "{n}-Piece", "{n} piece", ("{n} pc", "{n} pcs"),
           "Includes {n} pieces.", 0.4, "{n}"),
        _U("burners", "burners", "pre", "{n}-Burner", "{n} burner", ("{w} burner",),
           "Features {n} burners.", 0.4, "{n}"),
        _U("cups", "capacity", "pre", "{n}-Cup", "{n} cup", ("{w} cup",),
           "Brews up to {n} cups at a time.", 0.3),
        _U("slices", "slices", "pre", "{n}-Slice", "{n} slice", ("{w} slice",),
           "Toasts {n} slices at once.", 0.4, "{n}"),
        _U("lights", "lights", "pre", "{n}-Light", "{n} light", ("{w} light",),
           "Holds {n} bulbs.", 0.4, "{n}"),
        _U("handles", "handles", "pre", "{n}-Handle", "{n} handle", ("{w} handle",),
           "Comes with a {n} handle design.", 0.2, "{n}"),
        _U("sprays", "spray settings", "pre", "{n}-Spray", "{n} spray", ("{n} setting",),
           "Offers {n} spray settings.", 0.3, "{n}"),
        _U("players", "players", "pre", "{n}-Player", "{n} player", ("{w} player",),
           "Made for up to {n} players.", 0.2, "{n}"),
        _U("inches", "size", "pre", "{n} in.", "{n} in", ("{n} inch", "{n} inches"),
           "Measures {n} inches.", 0.8),
        _U("feet", "length", "pre", "{n} ft.", "{n} ft", ("{n} foot", "{n} feet"),
           "Measures {n} feet.", 0.5),
        _U("gallons", "capacity", "pre", "{n} Gal.", "{n} gal", ("{n} gallon",),
           "Holds {n} gallons.", 0.6),
        _U("quarts", "capacity", "pre", "{n} qt.", "{n} qt", ("{n} quart",),
           "Holds {n} quarts.", 0.5),
        _U("liters", "capacity", "pre", "{n} L", "{n} l", ("{n} liter", "{n} litre"),
           "Holds {n} liters.", 0.3),
        _U("cuft", "capacity", "pre", "{n} cu. ft.", "{n} cu ft", ("{n} cubic feet", "{n} cubic foot"),
           "Offers {n} cubic feet of space.", 0.7),
        _U("ounces", "capacity", "pre", "{n} oz.", "{n} oz", ("{n} ounce",), "Holds {n} ounces.", 0.3),
        _U("pounds", "weight", "pre", "{n} lb.", "{n} lb", ("{n} pound", "{n} lbs"),
           "Comes in a {n} pound bag.", 0.8),
        _U("watts", "wattage", "pre", "{n}-Watt", "{n} watt", ("{n}w",), "Rated at {n} watts.", 0.4),
        _U("volts", "voltage", "pre", "{n}-Volt", "{n} volt", ("{n}v",),
           "Runs on a {n} volt battery.", 0.4),
        _U("amps", "amperage", "pre", "{n}-Amp", "{n} amp", ("{n}a",),
           "Driven by a {n} amp motor.", 0.4),
        _U("btu", "cooling", "pre", "{c} BTU", "{c} btu", ("{n} btu", "{k}k btu"),
           "Delivers {c} BTU of cooling.", 0.7),
        _U("storage", "storage", "pre", "{n}GB", "{n}gb", ("{n} gigabyte", "{n} gig"),
           "Stores up to {n} gigabytes.", 0.3),
        _U("thread_count", "thread count", "pre", "{n} Thread Count", "{n} thread count",
           ("{n} tc",), "Woven at {n} thread count.", 0.3),
        _U("channels", "channels", "pre", "{n}-Channel", "{n} channel", ("{n} ch",),
           "Delivers {n} channel surround sound.", 0.5),
        _U("pints", "capacity", "pre", "{n}-Pint", "{n} pint", ("{n} pt",),
           "Removes up to {n} pints of moisture a day.", 0.5),
        _U("dba", "noise", "pre", "{n} dBA", "{n} dba", ("{n} decibel", "{n} db"),
           "Runs at a quiet {n} decibels.", -0.3),
        _U("cfm", "airflow", "pre", "{n} CFM", "{n} cfm", ("{n} cubic feet per minute",),
           "Moves {n} cubic feet of air per minute.", 0.4),
        _U("gpf", "flush", "pre", "{n} GPF", "{n} gpf", ("{n} gallons per flush",),
           "Uses {n} gallons per flush.", -0.2),
        _U("minutes", "run time", "pre", "{n} min.", "{n} min", ("{n} minute", "{n} minutes"),
           "Runs up to {n} minutes per charge.", 0.4),
        _U("ages", "ages", "pre", "Ages {n}+", "ages {n}", ("{n} year old", "{n} yr old"),
           "Recommended for ages {n} and up.", 0.1, "{n}+"),
        _U("shoe_size", "size", "post", "Size {n}", "size {n}", ("sz {n}",), "Available in size {n}.", 0.0),
    )
}
KINDS = {**WORD_KINDS, **UNIT_KINDS}


def make_value(kind: str, raw: str | float) -> AttrValue:
    """The :class:`AttrValue` of ``raw`` ("black", 12) for attribute kind ``kind``."""
    if kind in WORD_KINDS:
        spec = WORD_KINDS[kind]
        w = spec.words[raw]
        return AttrValue(kind, raw, w.title, w.terse or w.title, w.plain or raw, w.alts,
                         spec.desc.format(v=raw), None, w.premium)
    spec = UNIT_KINDS[kind]
    f = _fields(float(raw))
    alts = tuple(a.format(**f) for a in spec.alts if "{w}" not in a or f["w"])
    title = spec.title.format(**f)
    plain = spec.plain.format(**f)
    return AttrValue(kind, (spec.name or spec.plain).format(**f), title, title, plain, alts,
                     spec.desc.format(**f), float(raw), 1.0)


# --------------------------------------------------------------------------- types


@dataclass(frozen=True)
class ProductType:
    key: str
    noun: str  # catalogue form used in every title of this type ("Sofa")
    department: str
    subcategory: str
    leaf: str
    synonyms: tuple[str, ...]  # shopper words that never appear in this type's titles
    uses: tuple[str, ...]  # need-phrases: in descriptions and descriptive queries only
    price: float  # typical price
    popularity: float  # relative traffic of the type
    abbreviations: tuple[str, ...]  # query forms of the noun that differ from the title form
    attributes: tuple[tuple[str, tuple[AttrValue, ...]], ...]  # (kind, values), <= MAX_SLOTS

    @property
    def category(self) -> str:
        return f"{self.department} > {self.subcategory} > {self.leaf}"


def _product_type(row: dict) -> ProductType:
    department, subcategory, leaf = row["category"].split(" > ")
    attributes = tuple((kind, tuple(make_value(kind, raw) for raw in raws))
                       for kind, raws in row["attributes"].items())
    return ProductType(
        row["key"], row["noun"], department, subcategory, leaf, tuple(row["synonyms"]), tuple(row["uses"]),
        float(row["price"]), float(row["popularity"]), tuple(row["abbreviations"]), attributes,
    )


def _load_types() -> tuple[ProductType, ...]:
    """The product types from ``vocabulary.json``: a data file rather than a Python literal, so
    the store's assortment can be read and edited as a table; the attribute order of each type is
    its slot order, which the JSON object keeps."""
    text = resources.files(__package__).joinpath("vocabulary.json").read_text(encoding="utf-8")
    return tuple(_product_type(row) for row in json.loads(text))


TYPES: tuple[ProductType, ...] = _load_types()
DEPARTMENTS: tuple[str, ...] = tuple(dict.fromkeys(t.department for t in TYPES))

# --------------------------------------------------------------------------- brands, lines, slang

BRAND_HEADS = (
    "Ash", "Bel", "Bram", "Cal", "Cor", "Dal", "El", "Fen", "Gar", "Hal", "Ken", "Lor", "Mar",
    "Nor", "Pem", "Quin", "Ros", "Sel", "Tal", "Ver", "Wex", "Yor", "Zan", "Har", "Mor", "Ston",
    "Brook", "Crest", "Hud", "Lan", "Ried", "Sut", "Tren", "Wil",
)
BRAND_TAILS = (
    "ford", "ton", "ley", "wick", "field", "mark", "ridge", "haven", "well", "more", "by",
    "dale", "worth", "stead", "leigh", "brook", "crest", "vale", "ware", "ix",
)
LINE_WORDS = (
    "Alder", "Aria", "Ashby", "Aspen", "Atlas", "Avalon", "Beacon", "Birch", "Boulder", "Brixton",
    "Camden", "Cascade", "Cedar", "Chelsea", "Cypress", "Dakota", "Delmar", "Easton", "Ember",
    "Everett", "Fairview", "Fulton", "Glenwood", "Granite", "Hampton", "Harbor", "Highland",
    "Horizon", "Juniper", "Kingston", "Laurel", "Lennox", "Madison", "Meridian", "Mesa", "Monroe",
    "Newport", "Orion", "Preston", "Quincy", "Rowan", "Savoy", "Sierra", "Solstice", "Sterling",
    "Summit", "Tahoe", "Vance", "Willow", "Winslow", "Yardley", "Zephyr", "Bexley", "Carlow",
    "Devon", "Elmhurst", "Fenwick", "Halston", "Larkin", "Marlow",
)
# Lines of the products that the ``new_products`` drift knob introduces: unseen title words.
NEW_LINE_WORDS = (
    "Nova", "Flux", "Pulse", "Apex", "Vertex", "Quasar", "Prism", "Helix", "Nexus", "Vivid",
    "Aero", "Strata", "Zenith", "Lumen", "Kinetic", "Axion",
)
_SLANG_SYLLABLES = (
    "zib", "bo", "qua", "rix", "plo", "ven", "tup", "gla", "mox", "dree", "yum", "fli", "sko",
    "nar", "wub", "jix", "tro", "vel", "zon", "kee",
)


@lru_cache(maxsize=1)
def vocabulary_tokens() -> frozenset[str]:
    """Every token the store itself can produce (titles, descriptions, query forms)."""
    out: set[str] = set()
    for t in TYPES:
        for text in (t.noun, t.category, *t.synonyms, *t.uses, *t.abbreviations):
            out.update(tokens(text))
        for _, values in t.attributes:
            for v in values:
                for text in (v.name, v.title, v.terse, v.plain, v.desc, *v.alts):
                    out.update(tokens(text))
    for words in (BRAND_HEADS, BRAND_TAILS, LINE_WORDS, NEW_LINE_WORDS):
        out.update(tokens(" ".join(words)))
    return frozenset(out)


@lru_cache(maxsize=1)
def slang_words() -> tuple[str, ...]:
    """One made-up word per type for the ``new_vocabulary`` drift knob.

    Seeded from the type key (not the world seed) so the same type always drifts to the
    same slang, and checked against the store vocabulary so the word is truly unseen.
    """
    known = set(vocabulary_tokens())
    out = []
    for t in TYPES:
        rng = np.random.default_rng(zlib.crc32(t.key.encode()))
        while True:
            word = "".join(rng.choice(_SLANG_SYLLABLES, size=int(rng.integers(2, 4))))
            if word not in known:
                break
        known.add(word)
        out.append(word)
    return tuple(out)


# --------------------------------------------------------------------------- checks


def problems() -> list[str]:
    """Broken vocabulary invariants (empty when the word lists are consistent)."""
    found = []
    keys = [t.key for t in TYPES]
    if len(set(keys)) != len(keys):
        found.append("duplicate type keys")
    nouns = {t.noun.lower() for t in TYPES}
    for t in TYPES:
        title_tokens = set(tokens(t.noun))
        for _, values in t.attributes:
            for v in values:
                title_tokens.update(tokens(v.title) + tokens(v.terse))
        if not t.synonyms or len(t.uses) < 2:
            found.append(f"{t.key}: needs synonyms and two uses")
        if len(t.attributes) > MAX_SLOTS:
            found.append(f"{t.key}: more than {MAX_SLOTS} attributes")
        if sum(KINDS[k].slot == "in" for k, _ in t.attributes) > 1:
            found.append(f"{t.key}: two ' in <value>' attributes")
        labels = [KINDS[k].label for k, _ in t.attributes]
        if len(set(labels)) != len(labels):
            found.append(f"{t.key}: duplicate attribute labels {labels}")
        for syn in t.synonyms:
            if set(tokens(syn)) <= title_tokens:
                found.append(f"{t.key}: synonym {syn!r} is spelled by its own titles")
            if syn in nouns:
                found.append(f"{t.key}: synonym {syn!r} is another type's noun")
        for use in t.uses:
            shared = (set(tokens(use)) - STOPWORDS) & title_tokens
            if shared:
                found.append(f"{t.key}: use {use!r} shares title words {sorted(shared)}")
        for form in t.abbreviations:
            if set(tokens(form)) <= title_tokens:
                found.append(f"{t.key}: abbreviation {form!r} is spelled by its own titles")
        for _, values in t.attributes:
            for v in values:
                for alt in v.alts:
                    if set(tokens(alt)) <= title_tokens:
                        found.append(f"{t.key}: alt {alt!r} of {v.name!r} occurs in titles")
                if not set(tokens(v.plain)) <= set(tokens(v.title)):
                    found.append(f"{t.key}: plain form {v.plain!r} does not match {v.title!r}")
    return found

"""Word lists of the simulated store used by :mod:`prodrank.data.world`.

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

This module is plain data plus small helpers; it draws no random numbers.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from functools import lru_cache

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


SIZES = ("small", "medium", "large", "x-large")
BEDS = ("twin", "full", "queen", "king", "california king")
GENDERS = ("men's", "women's", "kids'")
FURN_COLORS = ("gray", "beige", "navy", "charcoal", "brown", "green", "black")
WOOD_COLORS = ("walnut", "espresso", "oak", "white", "black", "gray")
FIXTURE = ("chrome", "brushed nickel", "matte black", "oil rubbed bronze")
APPLIANCE = ("stainless steel", "black stainless steel", "white", "black")
UPHOLSTERY = ("fabric", "leather", "velvet", "microfiber", "faux leather", "linen")
BASIC = ("black", "white", "gray", "blue", "red")


def _t(key, noun, where, synonyms, uses, price, pop=1.0, abbr=(), **attrs) -> ProductType:
    dept, sub, leaf = where.split(" > ")
    return ProductType(
        key, noun, dept, sub, leaf, tuple(synonyms), tuple(uses), float(price), float(pop),
        tuple(abbr), tuple((k, tuple(make_value(k, r) for r in raws)) for k, raws in attrs.items()),
    )


TYPES: tuple[ProductType, ...] = (
    # Furniture
    _t("sofa", "Sofa", "Furniture > Living Room > Sofas", ("couch", "settee"),
       ("comfy seating for the whole family", "a spot to stretch out and watch movies"), 650, 1.6,
       seats=(3, 2, 4), material=UPHOLSTERY, color=FURN_COLORS),
    _t("loveseat", "Loveseat", "Furniture > Living Room > Loveseats", ("love seat", "snuggler"),
       ("cozy seating for two", "a compact perch for a small apartment"), 450, 0.7,
       material=UPHOLSTERY, color=FURN_COLORS),
    _t("accent_chair", "Accent Chair", "Furniture > Living Room > Chairs", ("armchair", "wingback"),
       ("a single reading nook by the window", "extra seating for guests"), 280, 0.9,
       material=UPHOLSTERY, color=FURN_COLORS),
    _t("coffee_table", "Coffee Table", "Furniture > Living Room > Tables",
       ("cocktail table", "center table"),
       ("a surface for drinks and magazines", "somewhere to rest your feet and snacks"), 220, 1.0,
       material=("solid wood", "engineered wood", "glass", "metal"), color=WOOD_COLORS),
    _t("tv_stand", "TV Stand", "Furniture > Living Room > Media Storage",
       ("media console", "entertainment center"),
       ("a home for game consoles and streaming boxes", "storage for remotes under the screen"),
       250, 0.9, inches=(55, 65, 75), color=WOOD_COLORS),
    _t("bed_frame", "Bed Frame", "Furniture > Bedroom > Beds", ("bedstead", "platform bed"),
       ("a sturdy base that lifts your mattress off the floor", "a foundation for a good night of sleep"),
       380, 1.0, bed_size=("queen", "king", "full", "twin", "california king"),
       material=("metal", "solid wood", "fabric"), color=("black", "white", "gray", "walnut", "espresso")),
    _t("dresser", "Dresser", "Furniture > Bedroom > Dressers", ("chest of drawers", "bureau"),
       ("storage to keep clothes neatly folded", "a place for socks and sweaters"), 420, 0.9,
       drawers=(6, 4, 8), material=("engineered wood", "solid wood"), color=WOOD_COLORS),
    _t("nightstand", "Nightstand", "Furniture > Bedroom > Nightstands", ("bedside table", "night table"),
       ("a spot for your alarm clock and glasses", "handy storage within reach while you sleep"),
       150, 0.8, drawers=(2, 1, 3), color=WOOD_COLORS),
    _t("wardrobe", "Wardrobe", "Furniture > Bedroom > Armoires", ("armoire", "clothes closet"),
       ("a tall cabinet for hanging shirts and coats", "extra hanging space for a small bedroom"),
       520, 0.5, doors=(2, 3, 4), material=("engineered wood", "solid wood"), color=WOOD_COLORS),
    _t("dining_table", "Dining Table", "Furniture > Dining Room > Tables", ("kitchen table", "dinner table"),
       ("a place to gather for family meals", "room for everyone at holiday feasts"), 480, 1.0,
       seats=(4, 6, 8), material=("solid wood", "engineered wood", "glass", "metal"), color=WOOD_COLORS),
    _t("dining_chair", "Dining Chair", "Furniture > Dining Room > Chairs", ("side chair", "kitchen chair"),
       ("a comfortable perch for family meals", "upright seating for breakfast and supper"), 120, 0.9,
       pack=(2, 4, 1, 6), material=("solid wood", "metal", "fabric", "faux leather", "plastic"),
       color=WOOD_COLORS),
    _t("bar_stool", "Bar Stool", "Furniture > Dining Room > Bar Stools", ("counter stool", "pub stool"),
       ("tall seating for a kitchen island", "a lofty perch for quick breakfasts"), 140, 0.8,
       inches=(24, 26, 30), material=("metal", "solid wood", "faux leather"), color=BASIC, pack=(2, 1, 4)),
    _t("office_chair", "Office Chair", "Furniture > Home Office > Chairs",
       ("desk chair", "task chair", "computer chair"),
       ("ergonomic support for long workdays", "adjustable seating for working from home"), 220, 1.1,
       material=("mesh", "leather", "faux leather", "fabric"), color=("black", "gray", "white", "blue")),
    _t("desk", "Desk", "Furniture > Home Office > Desks", ("workstation", "writing table"),
       ("a roomy workspace for paperwork and projects", "a spot to study or work from home"), 260, 1.0,
       inches=(48, 40, 55, 60), material=("engineered wood", "solid wood", "metal", "glass"),
       color=WOOD_COLORS),
    _t("bookcase", "Bookcase", "Furniture > Home Office > Bookcases", ("bookshelf", "shelving unit"),
       ("open storage for novels and display pieces", "a place to show off books and photos"), 160, 0.7,
       shelves=(5, 3, 4), color=WOOD_COLORS),
    # Kitchen
    _t("skillet", "Skillet", "Kitchen > Cookware > Pans", ("frying pan", "fry pan"),
       ("searing steaks and frying eggs on the stovetop", "quick weeknight stir fries"), 45, 1.1,
       inches=(10, 12, 8), material=("cast iron", "nonstick", "stainless steel", "copper")),
    _t("saucepan", "Saucepan", "Kitchen > Cookware > Pots", ("sauce pot", "pot with lid"),
       ("simmering sauces and boiling pasta", "heating soups and oatmeal"), 40, 0.7,
       quarts=(2, 1.5, 3, 4), material=("stainless steel", "nonstick", "copper")),
    _t("stock_pot", "Stock Pot", "Kitchen > Cookware > Pots", ("soup pot", "stockpot"),
       ("big batches of chili and broth", "boiling lobster and corn for a crowd"), 55, 0.6,
       quarts=(8, 12, 16, 20), material=("stainless steel", "aluminum", "nonstick")),
    _t("cookware_set", "Cookware Set", "Kitchen > Cookware > Sets", ("pots and pans set", "pan set"),
       ("everything you need to outfit a first kitchen", "a complete collection for everyday cooking"),
       160, 0.9, pieces=(10, 5, 8, 12, 15), material=("nonstick", "stainless steel", "cast iron", "copper")),
    _t("coffee_maker", "Coffee Maker", "Kitchen > Small Appliances > Coffee",
       ("coffee machine", "coffee brewer"),
       ("a fresh brew to start the morning", "your morning caffeine fix before work"), 80, 1.2,
       cups=(12, 4, 8, 10), color=("black", "white", "silver", "red")),
    _t("blender", "Blender", "Kitchen > Small Appliances > Blenders", ("smoothie maker", "liquidizer"),
       ("crushing ice for frozen drinks", "pureeing fruit into morning smoothies"), 70, 0.9,
       watts=(1000, 600, 1500), ounces=(64, 48, 72), color=("black", "white", "silver", "red")),
    _t("toaster", "Toaster", "Kitchen > Small Appliances > Toasters", ("toast maker", "bread toaster"),
       ("golden bagels and english muffins", "crispy bread for breakfast"), 40, 0.7,
       slices=(2, 4), color=("silver", "black", "white", "red")),
    _t("air_fryer", "Air Fryer", "Kitchen > Small Appliances > Fryers", ("airfryer", "oil free fryer"),
       ("crispy fries with little or no oil", "reheating leftovers so they stay crunchy"), 90, 1.3,
       quarts=(5.8, 2, 4, 8), color=("black", "white", "gray")),
    _t("kettle", "Electric Kettle", "Kitchen > Small Appliances > Kettles", ("tea kettle", "water boiler"),
       ("hot water for tea and instant noodles", "a rapid boil for french press mornings"), 35, 0.7,
       liters=(1.7, 1, 1.5), material=("stainless steel", "glass", "plastic")),
    _t("dinnerware_set", "Dinnerware Set", "Kitchen > Dining > Dinnerware", ("dish set", "plates and bowls"),
       ("setting the table for family dinners", "everyday dishes for a new home"), 70, 0.7,
       pieces=(16, 12, 20, 32), material=("porcelain", "ceramic", "glass"),
       color=("white", "gray", "blue", "black")),
    _t("knife_set", "Knife Set", "Kitchen > Cutlery > Knife Sets", ("cutlery set", "knife block"),
       ("slicing vegetables and carving roasts", "sharp blades for every prep job"), 90, 0.7,
       pieces=(15, 6, 12, 18), material=("stainless steel", "ceramic")),
    _t("food_storage", "Food Storage Container Set", "Kitchen > Storage > Containers",
       ("tupperware", "leftover boxes"),
       ("keeping leftovers fresh for days", "packing lunches for the week"), 25, 0.7,
       pieces=(20, 10, 24, 40), material=("glass", "plastic")),
    # Electronics
    _t("smart_tv", "Smart TV", "Electronics > TV & Video > TVs", ("flat screen", "television set"),
       ("binge watching shows and movies", "big picture game nights with friends"), 520, 1.6,
       abbr=("smart television",), inches=(55, 65, 43, 50, 75, 32, 85), resolution=("4k", "hd")),
    _t("soundbar", "Soundbar", "Electronics > TV & Video > Home Audio", ("sound bar", "tv speaker"),
       ("richer dialogue and booming movie sound", "upgrading the audio under your screen"), 180, 0.8,
       channels=(2.1, 3.1, 5.1), color=("black", "gray")),
    _t("streaming_player", "Streaming Media Player", "Electronics > TV & Video > Streaming",
       ("streaming stick", "tv box"),
       ("watching your favorite apps on any screen", "cutting the cord on cable"), 50, 0.7,
       resolution=("4k", "hd"), color=("black", "white")),
    _t("laptop", "Laptop", "Electronics > Computers > Laptops", ("notebook computer", "notebook"),
       ("homework and browsing on the go", "working remotely from anywhere"), 750, 1.4,
       inches=(15.6, 13.3, 14, 17.3), storage=(512, 256), color=("silver", "gray", "black")),
    _t("monitor", "Monitor", "Electronics > Computers > Monitors", ("computer screen", "display"),
       ("a second screen for spreadsheets", "a sharp picture for gaming marathons"), 220, 1.0,
       inches=(27, 24, 32), resolution=("4k", "hd"), color=("black", "white")),
    _t("mouse", "Wireless Mouse", "Electronics > Computers > Accessories", ("cordless mouse", "computer mouse"),
       ("smooth scrolling and precise clicks", "comfortable navigation during long workdays"), 30, 0.8,
       color=("black", "white", "gray", "pink"), pack=(1, 2)),
    _t("flash_drive", "USB Flash Drive", "Electronics > Computers > Storage",
       ("thumb drive", "memory stick", "jump drive"),
       ("carrying files between computers", "backing up photos and documents"), 18, 0.7,
       storage=(64, 32, 128, 256), pack=(1, 2, 3)),
    _t("headphones", "Headphones", "Electronics > Audio > Headphones", ("headset", "earphones", "cans"),
       ("blocking out noise on your commute", "private listening to music and podcasts"), 120, 1.2,
       connectivity=("wireless", "wired"), color=("black", "white", "silver", "navy")),
    _t("bt_speaker", "Bluetooth Speaker", "Electronics > Audio > Speakers",
       ("portable speaker", "wireless speaker"),
       ("music at the beach or by the pool", "filling a backyard party with tunes"), 70, 0.9,
       abbr=("bt speaker",), watts=(20, 10, 40), color=("black", "blue", "red", "gray")),
    # Appliances
    _t("refrigerator", "Refrigerator", "Appliances > Refrigeration > Refrigerators", ("fridge", "icebox"),
       ("keeping groceries cold and fresh", "chilling drinks and storing leftovers"), 1400, 1.5,
       abbr=("refrig",), cuft=(25, 18, 21, 28), style=("french door", "side by side", "top freezer"),
       finish=APPLIANCE),
    _t("chest_freezer", "Chest Freezer", "Appliances > Refrigeration > Freezers", ("deep freezer", "deep freeze"),
       ("stocking up on frozen meals", "extra cold storage for bulk buys"), 300, 0.6,
       cuft=(7, 5, 10, 15), color=("white", "black")),
    _t("washer", "Washing Machine", "Appliances > Laundry > Washers", ("washer", "clothes washer"),
       ("cleaning loads of dirty laundry", "getting grass stains out of school clothes"), 800, 1.1,
       cuft=(4.5, 3.5, 5), style=("front load", "top load"), finish=("white", "stainless steel", "black")),
    _t("dryer", "Clothes Dryer", "Appliances > Laundry > Dryers", ("tumble dryer", "dryer machine"),
       ("warm fluffy laundry straight out of the drum", "drying a full load fast"), 750, 0.9,
       cuft=(7.4, 7, 7.8), power=("electric", "gas"), finish=("white", "black", "stainless steel")),
    _t("dishwasher", "Dishwasher", "Appliances > Kitchen Appliances > Dishwashers", ("dish washer", "dish machine"),
       ("sparkling clean plates after supper", "skipping the chore of hand washing"), 650, 0.9,
       inches=(24, 18), dba=(44, 39, 42, 48), finish=APPLIANCE),
    _t("range", "Electric Range", "Appliances > Kitchen Appliances > Ranges", ("stove", "cooker", "oven range"),
       ("baking cookies and roasting dinners", "simmering and searing on a smooth cooktop"), 900, 0.8,
       cuft=(5.3, 6.3), finish=APPLIANCE),
    _t("air_conditioner", "Air Conditioner", "Appliances > Heating & Cooling > Air Conditioners",
       ("window unit", "cooling unit"),
       ("beating the summer heat in a bedroom", "cool comfort on muggy nights"), 380, 1.1,
       abbr=("ac unit", "a/c"), btu=(8000, 5000, 10000, 12000), style=("window", "portable")),
    _t("space_heater", "Space Heater", "Appliances > Heating & Cooling > Heaters",
       ("portable heater", "room heater"),
       ("warming up a chilly corner", "toasty toes on winter evenings"), 60, 0.9,
       watts=(1500, 750), color=("black", "white", "gray")),
    _t("dehumidifier", "Dehumidifier", "Appliances > Heating & Cooling > Dehumidifiers",
       ("moisture remover", "humidity remover"),
       ("drying out a damp basement", "stopping musty smells and mold"), 220, 0.6,
       pints=(35, 22, 50), color=("white", "gray")),
    # Tools
    _t("drill", "Cordless Drill", "Tools > Power Tools > Drills", ("power drill", "drill driver"),
       ("boring holes in studs and drywall", "driving screws for weekend projects"), 110, 1.3,
       volts=(20, 12, 18), color=("yellow", "red", "blue", "green", "orange")),
    _t("circular_saw", "Circular Saw", "Tools > Power Tools > Saws", ("skill saw", "buzz saw"),
       ("ripping plywood and cutting lumber", "straight cuts through two by fours"), 130, 0.8,
       abbr=("circ saw",), inches=(7.25, 6.5), amps=(15, 13)),
    _t("impact_driver", "Impact Driver", "Tools > Power Tools > Drivers", ("impact gun", "screw gun"),
       ("sinking long lag bolts with ease", "fastening deck boards all day"), 140, 0.8,
       volts=(20, 12, 18), color=("yellow", "red", "blue", "green", "orange")),
    _t("tape_measure", "Tape Measure", "Tools > Hand Tools > Measuring", ("measuring tape", "tape rule"),
       ("checking room sizes for new flooring", "marking lengths before a cut"), 15, 0.8,
       feet=(25, 16, 35), pack=(1, 2)),
    _t("socket_set", "Socket Set", "Tools > Hand Tools > Sockets", ("ratchet set", "mechanic tool kit"),
       ("loosening stubborn bolts on cars and bikes", "tackling engine repairs in the driveway"), 80, 0.7,
       pieces=(90, 40, 150, 230), material=("chrome vanadium", "steel")),
    _t("tool_box", "Tool Box", "Tools > Tool Storage > Tool Boxes", ("toolbox", "tool chest"),
       ("keeping wrenches and pliers organized", "hauling gear to the job site"), 45, 0.6,
       inches=(19, 16, 22, 26), material=("plastic", "steel", "metal"), color=("black", "red", "yellow")),
    _t("wood_screws", "Wood Screws", "Tools > Hardware > Screws", ("deck screws", "lumber fasteners"),
       ("fastening boards for fences and porches", "assembling furniture and framing projects"), 12, 0.8,
       pack=(100, 50, 500), inches=(2, 1.25, 2.5, 3), material=("steel", "stainless steel", "brass")),
    _t("step_ladder", "Step Ladder", "Tools > Ladders > Step Ladders", ("stepladder", "step stool"),
       ("reaching high cabinets and changing bulbs", "painting ceilings and hanging decorations"), 90, 0.7,
       feet=(6, 2, 3, 4, 8), material=("aluminum", "fiberglass", "steel")),
    # Outdoor
    _t("patio_set", "Patio Dining Set", "Outdoor > Patio Furniture > Dining Sets",
       ("outdoor dining set", "garden table and chairs"),
       ("alfresco dinners on the deck", "summer evenings eating under the stars"), 700, 1.0,
       pieces=(5, 3, 7, 9), material=("wicker", "teak", "aluminum", "resin", "steel"),
       color=("brown", "gray", "black", "white")),
    _t("patio_umbrella", "Patio Umbrella", "Outdoor > Patio Furniture > Umbrellas",
       ("market umbrella", "sun umbrella", "parasol"),
       ("shade over the outdoor table on sunny days", "blocking harsh afternoon rays by the pool"), 120, 0.7,
       feet=(9, 7.5, 11), color=("navy", "red", "beige", "green", "gray")),
    _t("gas_grill", "Gas Grill", "Outdoor > Grills > Gas Grills", ("barbecue", "bbq grill", "propane grill"),
       ("cooking burgers and brats in the backyard", "weekend cookouts for a crowd"), 450, 1.2,
       burners=(4, 2, 3, 5, 6), finish=("stainless steel", "black")),
    _t("garden_hose", "Garden Hose", "Outdoor > Watering > Hoses", ("water hose", "hosepipe"),
       ("watering flower beds and tomato plants", "rinsing off the car and the driveway"), 35, 0.8,
       feet=(50, 25, 75, 100), material=("rubber", "vinyl"), color=("green", "black", "blue")),
    _t("lawn_mower", "Lawn Mower", "Outdoor > Outdoor Power Equipment > Mowers", ("grass cutter", "lawnmower"),
       ("keeping the yard neatly trimmed", "cutting grass every weekend"), 380, 1.1,
       inches=(21, 20, 22, 30), power=("gas", "electric", "battery")),
    _t("leaf_blower", "Leaf Blower", "Outdoor > Outdoor Power Equipment > Blowers", ("yard blower", "blower vac"),
       ("clearing fallen leaves from the lawn", "blasting debris off walkways"), 150, 0.7,
       power=("battery", "gas", "electric"), cfm=(500, 400, 600)),
    _t("string_trimmer", "String Trimmer", "Outdoor > Outdoor Power Equipment > Trimmers",
       ("weed eater", "weed whacker", "weedwacker"),
       ("tidying edges along fences and walkways", "cutting tall weeds the mower misses"), 130, 0.8,
       power=("battery", "gas", "electric"), inches=(15, 13, 17)),
    _t("planter", "Planter", "Outdoor > Garden Center > Pots & Planters", ("flower pot", "plant pot"),
       ("growing herbs on a sunny balcony", "showing off blooms on the porch"), 40, 0.8,
       inches=(12, 8, 10, 16, 20), material=("ceramic", "terracotta", "plastic", "resin"),
       color=("white", "gray", "black", "natural")),
    # Bath
    _t("bath_faucet", "Bathroom Faucet", "Bath > Bathroom Fixtures > Faucets", ("sink tap", "lavatory faucet"),
       ("a steady stream for brushing teeth", "washing hands at the basin"), 120, 0.9,
       handles=(1, 2), finish=FIXTURE),
    _t("shower_head", "Shower Head", "Bath > Bathroom Fixtures > Showerheads", ("showerhead", "rain shower"),
       ("a relaxing spa like rinse every morning", "strong water pressure after a workout"), 60, 0.9,
       sprays=(5, 1, 3, 7), finish=FIXTURE),
    _t("toilet", "Toilet", "Bath > Toilets > Toilets", ("commode", "water closet"),
       ("a reliable flush for a busy family bathroom", "saving water every day"), 280, 0.9,
       gpf=(1.28, 1.6), shape=("elongated", "round"), color=("white", "beige")),
    _t("vanity", "Bathroom Vanity", "Bath > Vanities > Vanities", ("sink cabinet", "vanity cabinet"),
       ("hiding toiletries under the basin", "counter space for your morning routine"), 520, 0.8,
       inches=(30, 24, 36, 48, 60), color=("white", "gray", "espresso", "navy")),
    _t("bath_towel", "Bath Towel", "Bath > Bath Linens > Towels", ("bath sheet", "drying cloth"),
       ("wrapping up warm after a shower", "a plush feel straight out of the tub"), 18, 1.0,
       material=("cotton", "egyptian cotton", "microfiber", "bamboo"),
       color=("white", "gray", "navy", "beige", "teal"), pack=(2, 1, 4, 6)),
    _t("bath_mat", "Bath Mat", "Bath > Bath Linens > Bath Rugs", ("bath rug", "shower rug"),
       ("soft footing when stepping out of the tub", "soaking up drips on the tile floor"), 20, 0.7,
       material=("cotton", "microfiber", "memory foam", "bamboo"), color=("white", "gray", "navy", "beige")),
    _t("shower_curtain", "Shower Curtain", "Bath > Bath Accessories > Shower Curtains",
       ("shower liner", "bath curtain"),
       ("keeping water off the bathroom floor", "a splash of pattern for the tub"), 22, 0.7,
       material=("polyester", "cotton", "vinyl", "linen"), color=("white", "gray", "navy", "beige", "teal")),
    # Bedding
    _t("sheet_set", "Sheet Set", "Bedding > Sheets > Sheet Sets", ("bed sheets", "bedsheets"),
       ("crisp cool nights of sleep", "a soft layer between you and the mattress"), 60, 1.2,
       bed_size=("queen", "king", "full", "twin", "california king"), thread_count=(400, 300, 600, 800, 1000),
       material=("cotton", "egyptian cotton", "microfiber", "linen", "bamboo", "flannel"),
       color=("white", "gray", "navy", "beige", "blue")),
    _t("comforter", "Comforter", "Bedding > Comforters > Comforters", ("duvet", "quilt", "doona"),
       ("staying warm on cold winter nights", "a fluffy top layer for the bedroom"), 100, 1.0,
       bed_size=("queen", "king", "full", "twin", "california king"),
       material=("down alternative", "goose down", "cotton", "microfiber"), color=("white", "gray", "navy", "beige")),
    _t("pillow", "Bed Pillow", "Bedding > Pillows > Bed Pillows", ("sleeping pillow", "head pillow"),
       ("support for your neck while you sleep", "a cloud like rest for side sleepers"), 35, 1.0,
       bed_size=("queen", "king"), material=("memory foam", "down alternative", "goose down", "polyester"),
       pack=(2, 1, 4)),
    _t("throw_blanket", "Throw Blanket", "Bedding > Blankets > Throws", ("afghan", "snuggle wrap"),
       ("curling up with a good novel", "an extra layer on chilly evenings"), 35, 0.8,
       material=("fleece", "wool", "cotton", "flannel"), color=("gray", "beige", "navy", "green", "pink")),
    _t("mattress_topper", "Mattress Topper", "Bedding > Mattress Pads > Toppers", ("mattress pad", "bed topper"),
       ("softening a firm bed", "extra cushioning for achy backs"), 90, 0.7,
       bed_size=("queen", "king", "full", "twin", "california king"), inches=(3, 2, 4),
       material=("memory foam", "down alternative")),
    # Lighting
    _t("ceiling_fan", "Ceiling Fan", "Lighting > Ceiling Lights > Ceiling Fans", ("overhead fan", "roof fan"),
       ("a gentle breeze on warm nights", "circulating air in a stuffy room"), 180, 0.9,
       inches=(52, 44, 60), finish=("brushed nickel", "matte black", "oil rubbed bronze", "white")),
    _t("chandelier", "Chandelier", "Lighting > Ceiling Lights > Chandeliers", ("hanging light", "pendant cluster"),
       ("a dramatic centerpiece over the dining table", "an elegant glow for an entryway"), 260, 0.6,
       lights=(5, 3, 6, 8), finish=("brushed nickel", "matte black", "polished brass", "chrome")),
    _t("flush_mount", "Flush Mount Light", "Lighting > Ceiling Lights > Flush Mounts",
       ("ceiling light", "dome light"),
       ("a bright even glow for hallways and closets", "a low profile fixture for rooms with short ceilings"),
       60, 0.7, inches=(13, 11, 15), finish=FIXTURE),
    _t("table_lamp", "Table Lamp", "Lighting > Lamps > Table Lamps", ("bedside lamp", "side lamp"),
       ("a soft reading glow beside the bed", "warm ambient light for a cozy corner"), 55, 0.9,
       inches=(24, 20, 28), material=("ceramic", "glass", "metal"), color=("white", "black", "gray", "blue")),
    _t("floor_lamp", "Floor Lamp", "Lighting > Lamps > Floor Lamps", ("standing lamp", "torchiere"),
       ("brightening a dark corner of the den", "a tall reading glow beside your favorite seat"), 80, 0.8,
       inches=(65, 58, 72), material=("metal", "solid wood"), color=("black", "white", "brown")),
    _t("led_bulb", "LED Light Bulb", "Lighting > Light Bulbs > LED Bulbs", ("lightbulb", "led lamp"),
       ("replacing burnt out incandescents to save energy", "long lasting brightness for every room"), 15, 1.2,
       watts=(60, 40, 75, 100), light_color=("soft white", "daylight", "bright white"), pack=(4, 2, 6, 12, 16)),
    # Apparel
    _t("t_shirt", "T-Shirt", "Apparel > Tops > T-Shirts", ("tee", "tee shirt"),
       ("a soft everyday layer for casual weekends", "lounging around the house in comfort"), 18, 1.3,
       gender=GENDERS, material=("cotton", "polyester"), color=("black", "white", "gray", "navy", "red"),
       apparel_size=SIZES),
    _t("hoodie", "Hooded Sweatshirt", "Apparel > Tops > Sweatshirts", ("hoodie", "pullover"),
       ("staying cozy on cool autumn mornings", "a warm layer for the bleachers"), 45, 1.1,
       gender=GENDERS, material=("cotton", "fleece", "polyester"), color=("black", "gray", "navy", "green"),
       apparel_size=SIZES),
    _t("rain_jacket", "Rain Jacket", "Apparel > Outerwear > Jackets", ("raincoat", "windbreaker"),
       ("staying dry during spring downpours", "a packable shell for hikes"), 80, 0.8,
       gender=GENDERS, color=("black", "navy", "yellow", "green", "red"), apparel_size=SIZES),
    _t("jeans", "Jeans", "Apparel > Bottoms > Jeans", ("denim pants", "denims"),
       ("a rugged everyday pair for work or weekends", "a relaxed fit for casual fridays"), 50, 1.1,
       gender=("men's", "women's"), inches=(32, 30, 34, 36, 28), color=("blue", "black", "gray")),
    _t("running_shoes", "Running Shoes", "Apparel > Footwear > Athletic Shoes", ("sneakers", "trainers", "runners"),
       ("logging miles on the track or trail", "cushioned comfort for daily jogs"), 90, 1.3,
       gender=GENDERS, color=("black", "white", "gray", "blue", "pink"), shoe_size=(9, 8, 10, 7, 11, 12, 6)),
    _t("work_boots", "Work Boots", "Apparel > Footwear > Boots", ("safety boots", "workboots"),
       ("protecting your feet on the job site", "sure footing on muddy construction sites"), 130, 0.8,
       gender=("men's", "women's"), toe=("steel toe", "soft toe"), material=("leather", "rubber"),
       shoe_size=(10, 9, 11, 8, 12, 7)),
    _t("slippers", "Slippers", "Apparel > Footwear > Slippers", ("house shoes", "indoor shoes"),
       ("keeping toes warm around the house", "padding around on cold mornings"), 30, 0.8,
       gender=GENDERS, material=("fleece", "wool", "memory foam"), color=("gray", "brown", "pink", "navy"),
       apparel_size=SIZES),
    # Pet
    _t("dog_food", "Dry Dog Food", "Pet > Dogs > Dog Food", ("kibble", "puppy chow"),
       ("balanced nutrition for active pups", "healthy meals for your four legged friend"), 45, 1.2,
       pounds=(30, 5, 15, 40), flavor=("chicken", "beef", "lamb", "salmon", "turkey")),
    _t("dog_bed", "Dog Bed", "Pet > Dogs > Dog Beds", ("pet bed", "dog cushion"),
       ("a cozy nap spot for your pup", "orthopedic support for senior pets"), 50, 0.9,
       inches=(36, 24, 30, 42), material=("memory foam", "polyester", "fleece"), color=("gray", "brown", "beige", "navy")),
    _t("dog_leash", "Dog Leash", "Pet > Dogs > Leashes", ("dog lead", "pet lead"),
       ("daily walks around the block", "keeping your pup close at the park"), 20, 0.7,
       feet=(6, 4), material=("nylon", "leather"), color=("black", "red", "blue", "pink")),
    _t("cat_litter", "Cat Litter", "Pet > Cats > Litter", ("kitty litter", "litter sand"),
       ("trapping odors between cleanings", "easy scooping for busy households"), 18, 1.0,
       pounds=(20, 10, 40), scent=("unscented", "lavender", "fresh scent")),
    _t("cat_tree", "Cat Tree", "Pet > Cats > Cat Furniture", ("cat tower", "kitty condo"),
       ("climbing fun for indoor felines", "a high perch to watch birds from the window"), 90, 0.6,
       inches=(48, 36, 60, 72), color=("gray", "beige", "brown")),
    _t("aquarium", "Aquarium", "Pet > Fish > Aquariums", ("fish tank",),
       ("a home for goldfish and tropical swimmers", "a calming underwater display for the den"), 110, 0.5,
       gallons=(20, 10, 29, 55), material=("glass", "acrylic")),
    # Toys
    _t("building_set", "Building Blocks Set", "Toys > Building Toys > Sets", ("construction toy", "brick set"),
       ("stacking and creating towers and castles", "screen free creativity for kids"), 40, 1.1,
       pieces=(500, 100, 250, 1000), ages=(6, 4, 8)),
    _t("doll", "Fashion Doll", "Toys > Dolls > Fashion Dolls", ("dress up doll", "toy doll"),
       ("imaginative play and storytelling", "styling outfits for pretend adventures"), 25, 0.8,
       inches=(12, 11, 18), ages=(4, 3, 6)),
    _t("board_game", "Board Game", "Toys > Games > Board Games", ("tabletop game", "family game"),
       ("friendly competition on rainy evenings", "laughs and strategy for the whole household"), 30, 0.9,
       players=(4, 2, 6), ages=(8, 10, 12)),
    _t("rc_car", "Remote Control Car", "Toys > Vehicles > RC Cars", ("radio controlled car", "toy car"),
       ("racing over dirt and grass in the backyard", "high speed thrills for young drivers"), 60, 0.8,
       abbr=("rc car",), color=("red", "blue", "green", "black"), ages=(8, 6, 10)),
    _t("puzzle", "Jigsaw Puzzle", "Toys > Games > Puzzles", ("picture puzzle",),
       ("a relaxing challenge on a quiet afternoon", "assembling a scenic landscape bit by bit"), 20, 0.7,
       pieces=(1000, 300, 500, 2000)),
    _t("stuffed_animal", "Stuffed Animal", "Toys > Plush > Stuffed Animals", ("plush toy", "plushie", "soft toy"),
       ("a cuddly friend for bedtime", "a huggable buddy for toddlers"), 20, 0.9,
       inches=(12, 8, 16, 24), color=("brown", "white", "gray", "pink")),
    # Storage & Cleaning
    _t("vacuum", "Vacuum Cleaner", "Storage & Cleaning > Vacuums > Upright Vacuums", ("hoover", "carpet sweeper"),
       ("pulling pet hair out of carpets", "tidying rugs and hard floors"), 200, 1.2,
       abbr=("vac",), power=("cordless", "corded"), color=("red", "gray", "purple", "black")),
    _t("robot_vacuum", "Robot Vacuum", "Storage & Cleaning > Vacuums > Robot Vacuums", ("robovac", "robotic cleaner"),
       ("cleaning floors while you are away", "hands free tidying every day"), 300, 1.0,
       minutes=(90, 60, 120, 150), color=("black", "white", "gray")),
    _t("spin_mop", "Spin Mop", "Storage & Cleaning > Cleaning Supplies > Mops", ("mop and bucket", "floor mop"),
       ("scrubbing sticky kitchen tiles", "a streak free shine on hardwood"), 35, 0.7,
       material=("microfiber", "cotton"), color=("blue", "gray", "green")),
    _t("trash_can", "Trash Can", "Storage & Cleaning > Trash & Recycling > Trash Cans",
       ("garbage can", "waste bin", "rubbish bin"),
       ("keeping kitchen scraps out of sight", "tossing wrappers and leftovers"), 50, 0.9,
       gallons=(13, 30, 45), material=("stainless steel", "plastic"), color=("black", "white", "gray")),
    _t("storage_bin", "Storage Bin", "Storage & Cleaning > Storage > Bins & Totes", ("storage tote", "plastic tub"),
       ("stashing seasonal decorations in the attic", "decluttering closets and playrooms"), 15, 0.8,
       quarts=(66, 12, 32), color=("clear", "gray", "black", "blue"), pack=(1, 4, 6)),
    _t("shelving", "Garage Shelving Unit", "Storage & Cleaning > Storage > Shelving", ("metal shelves", "storage rack"),
       ("getting paint cans and sports gear off the floor", "heavy duty organization for a workshop"), 120, 0.7,
       tiers=(5, 4), material=("steel", "plastic"), inches=(48, 36)),
    _t("closet_organizer", "Closet Organizer", "Storage & Cleaning > Storage > Closet Systems",
       ("closet system", "clothes rack"),
       ("more room for shoes and sweaters", "doubling the hanging space in a small bedroom"), 150, 0.6,
       inches=(60, 48, 72), material=("engineered wood", "metal"), color=("white", "espresso", "gray")),
)

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

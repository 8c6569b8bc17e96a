#!/usr/bin/env python3
"""Generate the scenario suites: suites whose right answer is known before anything runs.

    python suites/scenarios/generate.py              # seed 0, writes next to this script
    python suites/scenarios/generate.py --seed 3 --out /tmp/scenarios

Writes four suite folders (suite.toml, JSONL splits, corpus/ where the suite has one, README.md):

- fresh-facts          facts only a corpus holds, a knowledge update         -> expected: rag
- house-style          an invented routing code that examples teach          -> expected: a weight strategy
- easy-general         clear-cut review sentiment the base model already does -> expected: zero-shot
- knowledge-and-style  corpus facts answered in an invented house format     -> expected: a hybrid (rag+lora)

Standard library only. Every random choice comes from one `random.Random(seed)` passed down
explicitly, every collection is iterated in a fixed order and every file is written with "\\n"
line ends, so two runs with the same seed give byte-identical files. Each suite's README.md is
written by this script too (its prose is below, its sizes are filled in from the data), so the
README and the data never disagree. Entity, person and place names are built from syllables and
unique across all four suites; `BANNED` holds the real words and names the syllables spelled (found by
looking every generated name up in the embedder's and the model's vocabularies: none is left at seed 0).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
LICENSE = "Written for this project (Apache-2.0, like the code)."
SUITE_NAMES = ("fresh-facts", "house-style", "easy-general", "knowledge-and-style")
UPDATE_DOCS = 10  # fresh-facts: the last N corpus documents in sorted id order are the knowledge update

# ---------------------------------------------------------------- invented names
ONSETS = ("b", "br", "d", "dr", "f", "g", "gr", "h", "k", "kr", "l", "m", "n", "p", "pr", "r", "s", "sk",
          "st", "t", "tr", "v", "z", "th", "sv", "j")
VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ei", "ou", "ae")
CODAS = ("", "", "", "n", "r", "l", "s", "sk", "nd", "v", "th", "m", "rk", "lt")
# Words the syllables can spell that a model has seen: never used as a name.
BANNED = frozenset("""
bandit baron basil baton bella belt bern boston brandon broken burden button dallas darn dental denver
devil doris dover dragon drum female fernando ferris garden gora gordon haven hello helm henna holland
holster honda jason jordan kansas karen keller kevin kinder kosovo laser latin lemon lisbon london madam
madras mandarin manor mason melon milan monster moral morten nelson nevada ninja norman oslo palermo
panda papal paris pedro pelican petro poland portal prison rabbit raven rebel relish robin roman ronald
runner sabre salon samson santa saturn season seven silva silver simon sister soda solar sonar stern
sudan sultan summer sunset taken talent tandem tango tender texas thebes theron these timber titan token
toronto torso total tuna tundra turin vandal vegan venom verdi vesta viking vinyl visor vodka volvo
zelda zero
""".split())  # noqa: SIM905 (a word list reads better as text)


class Names:
    """Unique invented words, shared by every suite so no name appears in two places."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: set[str] = set()

    def word(self, syllables: tuple[int, ...] = (2, 2, 3), min_len: int = 5, max_len: int = 10) -> str:
        while True:
            n = self.rng.choice(syllables)
            parts = []
            for i in range(n):
                coda = self.rng.choice(CODAS) if i == n - 1 or self.rng.random() < 0.3 else ""
                parts.append(self.rng.choice(ONSETS) + self.rng.choice(VOWELS) + coda)
            w = "".join(parts)
            if not min_len <= len(w) <= max_len or w in self.used or w in BANNED:
                continue
            if any(w in u or u in w for u in self.used if len(u) >= 5 and abs(len(u) - len(w)) <= 3):
                continue  # no name inside another: retrieval and scoring would confuse them
            self.used.add(w)
            return w.capitalize()

    def person(self) -> str:
        return f"{self.word((2,), 4, 7)} {self.word((2, 3), 5, 10)}"


def spelled(n: int) -> str | None:
    """English words for 1..99 ("thirty-seven"), the alias a model may answer with."""
    ones = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    teens = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
             "nineteen"]
    tens = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
    if not 1 <= n <= 99:
        return None
    if n < 10:
        return ones[n - 1]
    if n < 20:
        return teens[n - 10]
    t, o = divmod(n, 10)
    return tens[t - 2] + (f"-{ones[o - 1]}" if o else "")


# ---------------------------------------------------------------- entity types (fresh-facts, knowledge-and-style)
@dataclass(frozen=True)
class Slot:
    key: str
    kind: str
    """place, person, year, count or title: how the answer is drawn (and, in knowledge-and-style, its code)."""
    sentence: str
    """The one sentence stating the fact; {r}/{R}: the entity reference (lower/upper case), {a}: the answer."""
    question: str
    phrase: str = ""
    """Set for facts a register notice may change: 'the {phrase} of {r} is {a}'."""
    lo: int = 0
    hi: int = 0


@dataclass(frozen=True)
class EntityType:
    key: str
    ref: str
    """How every sentence names the entity, e.g. 'the research vessel {e}'."""
    slots: tuple[Slot, ...]


def S(key: str, kind: str, sentence: str, question: str, phrase: str = "", lo: int = 0, hi: int = 0) -> Slot:
    return Slot(key, kind, sentence, question, phrase, lo, hi)


TYPES: tuple[EntityType, ...] = (
    EntityType("research-vessel", "the research vessel {e}", (
        S("home-port", "place", "The home port of {r} is {a}.", "What is the home port of {r}?", "home port"),
        S("captain", "person", "The captain of {r} is {a}.", "Who is the captain of {r}?", "captain"),
        S("crew", "count", "{R} carries a crew of {a}.", "How many crew members does {r} carry?", "crew size", 14, 96),
        S("launched", "year", "{R} was launched in {a}.", "In which year was {r} launched?", "", 1951, 2019),
        S("station", "place", "{R} supplies the polar station at {a}.", "Which polar station does {r} supply?"),
    )),
    EntityType("observatory", "the {e} Observatory", (
        S("altitude", "count", "{R} stands at an altitude of {a} metres.",
          "At what altitude, in metres, does {r} stand?", "", 1200, 4800),
        S("director", "person", "The director of {r} is {a}.", "Who is the director of {r}?", "director"),
        S("opened", "year", "{R} opened in {a}.", "In which year did {r} open?", "", 1880, 2015),
        S("village", "place", "{R} is reached by road from the village of {a}.",
          "From which village is {r} reached by road?", "access village"),
        S("telescope", "title", "The main telescope of {r} is named {a}.",
          "What is the name of the main telescope of {r}?"),
        S("staff", "count", "{R} employs {a} staff.", "How many staff does {r} employ?", "number of staff", 11, 97),
    )),
    EntityType("dairy-cooperative", "the {e} Dairy Cooperative", (
        S("founded", "year", "{R} was founded in {a}.", "In which year was {r} founded?", "", 1890, 2010),
        S("members", "count", "{R} has {a} member farms.", "How many member farms does {r} have?",
          "number of member farms", 12, 98),
        S("chair", "person", "The chair of {r} is {a}.", "Who is the chair of {r}?", "chair"),
        S("cheese", "title", "The best-known cheese of {r} is called {a}.",
          "What is the best-known cheese of {r} called?"),
        S("town", "place", "{R} is based in the valley town of {a}.", "In which valley town is {r} based?",
          "seat"),
    )),
    EntityType("bridge", "the {e} Bridge", (
        S("river", "place", "{R} crosses the river {a}.", "Which river does {r} cross?"),
        S("span", "count", "The main span of {r} is {a} metres long.",
          "How many metres long is the main span of {r}?", "", 150, 1900),
        S("inspector", "person", "The chief inspector of {r} is {a}.", "Who is the chief inspector of {r}?",
          "chief inspector"),
        S("opened", "year", "{R} opened to traffic in {a}.", "In which year did {r} open to traffic?", "", 1860, 2018),
        S("traffic", "count", "{R} carries about {a} vehicles a day.", "About how many vehicles a day does {r} carry?",
          "daily traffic count", 2100, 48000),
        S("keeper", "person", "The bridge master of {r} is {a}.", "Who is the bridge master of {r}?", "bridge master"),
    )),
    EntityType("island", "the island of {e}", (
        S("population", "count", "{R} has a population of {a}.", "What is the population of {r}?",
          "registered population", 310, 9400),
        S("harbour", "place", "The main harbour town on {r} is {a}.", "What is the main harbour town on {r}?",
          "main harbour town"),
        S("governor", "person", "The governor of {r} is {a}.", "Who is the governor of {r}?", "governor"),
        S("hill", "title", "The highest hill on {r} is called {a}.", "What is the highest hill on {r} called?"),
        S("ferry", "place", "Ferries to {r} leave from the port of {a}.", "From which port do ferries to {r} leave?",
          "ferry port"),
    )),
    EntityType("orchestra", "the {e} Chamber Orchestra", (
        S("conductor", "person", "The principal conductor of {r} is {a}.", "Who is the principal conductor of {r}?",
          "principal conductor"),
        S("founded", "year", "{R} was founded in {a}.", "In which year was {r} founded?", "", 1902, 2012),
        S("players", "count", "{R} has {a} players.", "How many players does {r} have?", "number of players", 15, 88),
        S("city", "place", "{R} is based in the city of {a}.", "In which city is {r} based?", "home city"),
        S("album", "title", "The first recording of {r} was titled {a}.",
          "What was the first recording of {r} titled?"),
    )),
    EntityType("mine", "the {e} Mine", (
        S("opened", "year", "{R} was opened in {a}.", "In which year was {r} opened?", "", 1821, 1990),
        S("depth", "count", "{R} reaches a depth of {a} metres.", "To what depth, in metres, does {r} reach?",
          "working depth", 120, 2400),
        S("manager", "person", "The manager of {r} is {a}.", "Who is the manager of {r}?", "manager"),
        S("town", "place", "{R} lies near the town of {a}.", "Near which town does {r} lie?"),
        S("miners", "count", "{R} employs {a} miners.", "How many miners does {r} employ?", "number of miners",
          40, 990),
    )),
    EntityType("festival", "the {e} Lantern Festival", (
        S("town", "place", "{R} takes place in the town of {a}.", "In which town does {r} take place?", "host town"),
        S("first", "year", "{R} was first held in {a}.", "In which year was {r} first held?", "", 1870, 2016),
        S("visitors", "count", "{R} draws about {a} visitors.", "About how many visitors does {r} draw?",
          "expected number of visitors", 1500, 64000),
        S("patron", "person", "The patron of {r} is {a}.", "Who is the patron of {r}?", "patron"),
        S("prize", "title", "The main prize of {r} is a cup called {a}.", "What is the main prize of {r} called?"),
    )),
    EntityType("library", "the {e} Library", (
        S("books", "count", "{R} holds {a} books.", "How many books does {r} hold?", "book count", 21000, 880000),
        S("founded", "year", "{R} was founded in {a}.", "In which year was {r} founded?", "", 1790, 2008),
        S("librarian", "person", "The head librarian of {r} is {a}.", "Who is the head librarian of {r}?",
          "head librarian"),
        S("city", "place", "{R} stands in the city of {a}.", "In which city does {r} stand?"),
        S("codex", "title", "The oldest manuscript in {r} is known as {a}.",
          "By what name is the oldest manuscript in {r} known?"),
        S("reading-rooms", "count", "{R} has {a} reading rooms.", "How many reading rooms does {r} have?",
          "number of reading rooms", 3, 40),
    )),
    EntityType("railway", "the {e} Railway", (
        S("length", "count", "{R} runs for {a} kilometres.", "How many kilometres does {r} run for?", "", 18, 640),
        S("stations", "count", "{R} has {a} stations.", "How many stations does {r} have?", "number of stations",
          11, 95),
        S("opened", "year", "{R} opened in {a}.", "In which year did {r} open?", "", 1838, 2011),
        S("terminus", "place", "The northern terminus of {r} is {a}.", "What is the northern terminus of {r}?",
          "northern terminus"),
        S("engineer", "person", "The chief engineer of {r} is {a}.", "Who is the chief engineer of {r}?",
          "chief engineer"),
    )),
    EntityType("lighthouse", "the {e} Lighthouse", (
        S("height", "count", "{R} is {a} metres tall.", "How many metres tall is {r}?", "height in metres", 12, 74),
        S("lit", "year", "{R} was first lit in {a}.", "In which year was {r} first lit?", "", 1790, 1990),
        S("keeper", "person", "The keeper of {r} is {a}.", "Who is the keeper of {r}?", "keeper"),
        S("headland", "place", "{R} stands on the headland of {a}.", "On which headland does {r} stand?"),
        S("range", "count", "The light of {r} can be seen from {a} kilometres away.",
          "From how many kilometres away can the light of {r} be seen?", "visible range in kilometres", 9, 58),
    )),
    EntityType("botanical-garden", "the {e} Botanical Garden", (
        S("area", "count", "{R} covers {a} hectares.", "How many hectares does {r} cover?", "area in hectares", 4, 96),
        S("founded", "year", "{R} was founded in {a}.", "In which year was {r} founded?", "", 1760, 2005),
        S("curator", "person", "The curator of {r} is {a}.", "Who is the curator of {r}?", "curator"),
        S("city", "place", "{R} lies in the city of {a}.", "In which city does {r} lie?"),
        S("orchid", "title", "The rarest orchid in {r} is called {a}.", "What is the rarest orchid in {r} called?"),
        S("gardeners", "count", "{R} employs {a} gardeners.", "How many gardeners does {r} employ?",
          "number of gardeners", 5, 90),
    )),
)
for _t in TYPES:  # each type can be amended by a register notice on three of its facts
    assert sum(1 for s in _t.slots if s.phrase) >= 3, _t.key


@dataclass(frozen=True)
class Fact:
    fact_id: str
    doc_id: str
    slot: Slot
    ref: str
    answer: str
    aliases: tuple[str, ...]
    sentence: str
    question: str


@dataclass(frozen=True)
class Entity:
    type: EntityType
    name: str
    doc_id: str
    facts: tuple[Fact, ...]

    @property
    def ref(self) -> str:
        return self.type.ref.format(e=self.name)

    def title(self) -> str:
        return cap(self.ref)


def cap(s: str) -> str:
    return s[0].upper() + s[1:]


def slug(s: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in s.lower()).split())


class Draws:
    """Answers: names from `Names`, numbers drawn without repeats per slot, so no answer of one
    document is the answer to the same question about another."""

    def __init__(self, rng: random.Random, names: Names):
        self.rng, self.names = rng, names
        self.taken: dict[tuple[str, str], set[int]] = {}

    def answer(self, t: EntityType, slot: Slot) -> tuple[str, tuple[str, ...]]:
        if slot.kind == "person":
            return self.names.person(), ()
        if slot.kind in ("place", "title"):
            return self.names.word(), ()
        taken = self.taken.setdefault((t.key, slot.key), set())
        while True:
            n = self.rng.randint(slot.lo, slot.hi)
            if n not in taken:
                taken.add(n)
                break
        words = spelled(n) if slot.kind == "count" else None
        return str(n), ((words,) if words else ())


def make_entity(t: EntityType, doc_id: str, name: str, draws: Draws, prefix: str) -> Entity:
    ref = t.ref.format(e=name)
    facts = []
    for slot in t.slots:
        answer, aliases = draws.answer(t, slot)
        sentence = slot.sentence.format(r=ref, R=cap(ref), a=answer)
        facts.append(Fact(f"{prefix}-{doc_id}-{slot.key}", doc_id, slot, ref, answer, aliases, sentence,
                          slot.question.format(r=ref)))
    return Entity(t, name, doc_id, tuple(facts))


def entity_doc(e: Entity, rng: random.Random) -> str:
    sentences = [f.sentence for f in e.facts]
    rng.shuffle(sentences)
    return f"# {e.title()}\n\n" + " ".join(sentences) + "\n"


def make_entities(rng: random.Random, names: Names, draws: Draws, per_type: int, prefix: str) -> list[Entity]:
    """`per_type` entities of every type, numbered in a shuffled order (so sorted ids do not group types)."""
    pending = [(t, names.word()) for t in TYPES for _ in range(per_type)]
    rng.shuffle(pending)
    out = []
    for i, (t, name) in enumerate(pending, start=1):
        doc_id = f"entity-{i:03d}-{slug(t.key)}-{name.lower()}"
        out.append(make_entity(t, doc_id, name, draws, prefix))
    return out


# ---------------------------------------------------------------- writing
def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def write_jsonl(path: Path, rows: Sequence[dict[str, object]]) -> None:
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a valid TOML basic string here


def suite_toml(name: str, description: str, tasks: Sequence[dict[str, object]], corpus: bool) -> str:
    lines = [f"name = {toml_str(name)}", f"description = {toml_str(description)}", f"license = {toml_str(LICENSE)}"]
    if corpus:
        lines.append('corpus = "corpus/"')
    lines.append('retention = "general"')
    for t in tasks:
        lines += ["", f"[tasks.{t['name']}]", f"kind = {toml_str(str(t['kind']))}"]
        if "instruction" in t:
            lines.append(f"instruction = {toml_str(str(t['instruction']))}")
        for key in ("labels", "metrics"):
            if key in t:
                lines.append(f"{key} = [{', '.join(toml_str(v) for v in t[key])}]")  # type: ignore[attr-defined]
        if "max_new_tokens" in t:
            lines.append(f"max_new_tokens = {t['max_new_tokens']}")
        splits = ", ".join(f'{s} = "{t["name"]}/{s}.jsonl"' for s in ("train", "dev", "test"))
        lines.append(f"splits = {{ {splits} }}")
    return "\n".join(lines) + "\n"


def write_splits(root: Path, task: str, splits: dict[str, list[dict[str, object]]]) -> dict[str, int]:
    for split, rows in splits.items():
        write_jsonl(root / task / f"{split}.jsonl", rows)
    return {split: len(rows) for split, rows in splits.items()}


def qa_row(item_id: str, f: Fact, question: str | None = None, answer: str | None = None,
           aliases: Sequence[str] | None = None, coverage: str | None = None, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {"id": item_id, "question": question or f.question, "answer": answer or f.answer}
    al = list(f.aliases if aliases is None else aliases)
    if al:
        row["aliases"] = al
    row |= {"doc_id": f.doc_id, "evidence": f.sentence, "fact_id": f.fact_id}
    if coverage:
        row["coverage"] = coverage
    row |= extra
    return row


def number_items(rows: list[dict[str, object]], prefix: str, rng: random.Random) -> list[dict[str, object]]:
    rng.shuffle(rows)
    return [{"id": f"{prefix}-{i:03d}", **{k: v for k, v in r.items() if k != "id"}} for i, r in enumerate(rows, 1)]


# ---------------------------------------------------------------- fresh-facts
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


def fresh_facts(root: Path, rng: random.Random, names: Names) -> dict[str, object]:
    draws = Draws(rng, names)
    entities = make_entities(rng, names, draws, per_type=8, prefix="ff")
    # Per type: 4 entities teach train questions, 1 is for dev, 3 for test.
    groups: dict[str, list[Entity]] = {"train": [], "dev": [], "test": []}
    for t in TYPES:
        mine = [e for e in entities if e.type is t]
        rng.shuffle(mine)
        groups["train"] += mine[:4]
        groups["dev"] += mine[4:5]
        groups["test"] += mine[5:]
    docs = {e.doc_id: entity_doc(e, rng) for e in entities}

    train: list[dict[str, object]] = []
    dev: list[dict[str, object]] = []
    test: list[dict[str, object]] = []
    for e in groups["train"]:
        train += [qa_row("", f) for f in e.facts]
    for e in groups["dev"]:
        dev += [qa_row("", f, coverage="unseen") for f in rng.sample(list(e.facts), 3)]
    for e in groups["test"]:
        test += [qa_row("", f, coverage="unseen") for f in rng.sample(list(e.facts), 2)]

    # The knowledge update: register notices that change three facts of a train entity (whose old
    # values the train split teaches). One changed fact is a train item (what a weight strategy's
    # update trains on), two are test items (unseen: no train item states the new value).
    amended_types = rng.sample(list(TYPES), UPDATE_DOCS)
    notices = []
    for n, t in enumerate(amended_types, start=1):
        e = rng.choice([x for x in groups["train"] if x.type is t])
        day, month = rng.randint(1, 28), rng.choice(MONTHS)
        date = f"{day} {month} 2031"
        doc_id = f"update-{n:02d}-{slug(t.key)}-{e.name.lower()}"
        changed = rng.sample([f for f in e.facts if f.slot.phrase], 3)
        sentences, facts = [], []
        for f in changed:
            answer, aliases = draws.answer(t, f.slot)
            sentence = f"From {date}, the new {f.slot.phrase} of {e.ref} is {answer}."
            wh = "who" if f.slot.kind == "person" else "what"
            question = f"Since register notice {n} of 2031, {wh} is the new {f.slot.phrase} of {e.ref}?"
            sentences.append(sentence)
            facts.append(Fact(f"ff-{doc_id}-{f.slot.key}", doc_id, f.slot, e.ref, answer, aliases, sentence,
                              question))
        docs[doc_id] = (f"# Register notice {n} of 2031: {e.ref}\n\n"
                        f"Register notice {n} of 2031 amends the register entry for {e.ref}. " + " ".join(sentences)
                        + f" Every other detail of the entry for {e.ref} is unchanged.\n")
        train.append(qa_row("", facts[0], supersedes=e.doc_id))
        test += [qa_row("", f, coverage="unseen", supersedes=e.doc_id) for f in facts[1:]]
        notices.append((doc_id, e.doc_id))

    for doc_id, text in docs.items():
        write_text(root / "corpus" / f"{doc_id}.md", text)
    sizes = write_splits(root, "facts", {"train": number_items(train, "ff-train", rng),
                                         "dev": number_items(dev, "ff-dev", rng),
                                         "test": number_items(test, "ff-test", rng)})
    task = {"name": "facts", "kind": "short-answer", "metrics": ["exact_match", "f1"], "max_new_tokens": 16,
            "instruction": "Answer the question with the name or number only."}
    write_text(root / "suite.toml", suite_toml(
        "fresh-facts", "Facts about invented vessels, observatories, bridges, islands and other places that only "
        "the corpus states; every test question is about a document no train item covers, and the last "
        f"{UPDATE_DOCS} documents are register notices that change facts (a knowledge update).", [task], True))
    ids = sorted(docs)
    assert ids[-UPDATE_DOCS:] == sorted(d for d, _ in notices), "the notices must sort last"
    words = [len(t.split()) for t in docs.values()]
    return {"sizes": sizes, "docs": len(docs), "base_docs": len(entities), "words": (min(words), max(words)),
            "test_update": sum(1 for r in test if str(r["doc_id"]).startswith("update-")),
            "groups": {k: len(v) for k, v in groups.items()}}


# ---------------------------------------------------------------- knowledge-and-style
KAS_CODES = {"place": "PLC", "person": "PRS", "year": "YR", "count": "QTY", "title": "TTL"}


def knowledge_and_style(root: Path, rng: random.Random, names: Names) -> dict[str, object]:
    draws = Draws(rng, names)
    entities = make_entities(rng, names, draws, per_type=6, prefix="ks")
    groups: dict[str, list[Entity]] = {"train": [], "dev": [], "test": []}
    for t in TYPES:
        mine = [e for e in entities if e.type is t]
        rng.shuffle(mine)
        groups["train"] += mine[:3]
        groups["dev"] += mine[3:4]
        groups["test"] += mine[4:]
    docs = {e.doc_id: entity_doc(e, rng) for e in entities}

    def row(f: Fact, coverage: str | None) -> dict[str, object]:
        code = KAS_CODES[f.slot.kind]
        return qa_row("", f, answer=f"{code}: {f.answer}", aliases=[f"{code}: {a}" for a in f.aliases],
                      coverage=coverage, value=f.answer, code=code)

    train = [row(f, None) for e in groups["train"] for f in e.facts]
    dev = [row(f, "unseen") for e in groups["dev"] for f in rng.sample(list(e.facts), 3)]
    test = [row(f, "unseen") for e in groups["test"] for f in rng.sample(list(e.facts), 3)]
    for doc_id, text in docs.items():
        write_text(root / "corpus" / f"{doc_id}.md", text)
    sizes = write_splits(root, "records", {"train": number_items(train, "ks-train", rng),
                                           "dev": number_items(dev, "ks-dev", rng),
                                           "test": number_items(test, "ks-test", rng)})
    task = {"name": "records", "kind": "short-answer", "metrics": ["exact_match"], "max_new_tokens": 16,
            "instruction": "Answer the question as a register record line, in the register's format."}
    write_text(root / "suite.toml", suite_toml(
        "knowledge-and-style", "Facts about invented places that only the corpus states, answered in an invented "
        "register format (a field code, a colon, the value) that only the train split shows: exact match needs "
        "both the fact and the format.", [task], True))
    codes: dict[str, int] = {}
    for r in test:
        codes[str(r["code"])] = codes.get(str(r["code"]), 0) + 1
    return {"sizes": sizes, "docs": len(docs), "test_codes": dict(sorted(codes.items())),
            "groups": {k: len(v) for k, v in groups.items()}}


# ---------------------------------------------------------------- house-style
HS_CODES = ("QX-7", "WY-4", "CQ-9", "XW-3", "YQ-2", "CX-8")
# Only the letters C, Q, W, X, Y, which no invented name contains (see ONSETS, VOWELS, CODAS), so a
# code cannot be guessed from the spelling of its site. Each is four tokens for the default tokenizer.
assert not set("cqwxy") & set("".join(ONSETS + VOWELS + CODAS))

# Every request is a ticket: a fixed header naming the site where the problem is (which decides the
# desk) and the site of the person who reports it (never a site of the same desk), then a body.
# Train and test bodies use disjoint templates and disjoint word lists; topics are drawn independently
# of both sites, so the topic says nothing about the code.
HS_HEADER = "Site: {site} | Reported from: {other} | {body} Signed, the {other} office."
HS_TRAIN = {
    "templates": (
        "The {obj} in the {room} is {fault}.",
        "Could someone look at the {obj} near the {room}? It is {fault}.",
        "Our {obj} has been {fault} since {when}.",
        "We need {n} new {supply} delivered to the {room}.",
        "Please book a {vehicle} for {n} people on {day}.",
        "My access badge stopped opening the {room} {when}.",
        "The {obj} on the second floor keeps {fault2}.",
        "Can you order {n} boxes of {supply} for the {room} before {day}?",
    ),
    "obj": ("printer", "kettle", "radiator", "projector", "coffee machine", "lift", "ceiling fan", "fridge",
            "photocopier", "water cooler", "door lock", "desk lamp"),
    "room": ("meeting room", "kitchen", "reception", "storeroom", "training room", "lobby", "canteen",
             "server room"),
    "fault": ("broken", "leaking", "making a loud noise", "not switching on", "stuck", "flickering"),
    "fault2": ("beeping", "jamming", "overheating", "shutting down"),
    "when": ("yesterday", "this morning", "last week", "Monday"),
    "supply": ("paper cups", "printer paper", "pens", "envelopes", "folders", "batteries"),
    "vehicle": ("van", "minibus", "taxi"),
    "day": ("Friday", "Tuesday", "the weekend", "Thursday"),
}
HS_TEST = {
    "templates": (
        "Nobody can use the {obj} by the {room} because it started {fault} {when}.",
        "Help please, the {obj} beside the {room} went {fault3} again.",
        "Is there a spare {obj}? Ours in the {room} is {fault}.",
        "Send {n} crates of {supply} to our {room}, we ran out {when}.",
        "Arrange a {vehicle} so {n} colleagues reach the airport on {day}.",
        "The key card reader at the {room} rejects everyone {when}.",
    ),
    "obj": ("scanner", "microwave", "heater", "shredder", "dishwasher", "toaster", "air conditioner", "monitor",
            "vending machine", "intercom", "blind", "loudspeaker"),
    "room": ("archive", "car park", "studio", "workshop", "mail room", "board room", "library corner", "loading bay"),
    "fault": ("smoking", "dripping", "rattling", "dead", "sparking", "freezing up"),
    "fault3": ("silent", "dark", "cold", "wobbly"),
    "when": ("overnight", "at lunchtime", "after the holidays", "on Sunday"),
    "supply": ("tea bags", "toner", "staples", "sticky notes", "tissues", "light bulbs"),
    "vehicle": ("coach", "shuttle", "car"),
    "day": ("Wednesday", "Saturday", "the first of the month", "payday"),
}
assert not {w for k, v in HS_TRAIN.items() if k != "templates" for w in v} & {
    w for k, v in HS_TEST.items() if k != "templates" for w in v}, "train/test word lists overlap"


def hs_request(rng: random.Random, parts: dict[str, tuple[str, ...]], site: str, other: str) -> str:
    template = rng.choice(parts["templates"])
    fill = {k: rng.choice(v) for k, v in parts.items() if k != "templates"}
    fill["n"] = str(rng.randint(2, 40))
    body = template.format(**fill)
    return HS_HEADER.format(site=site, other=other, body=body[0].upper() + body[1:])


def house_style(root: Path, rng: random.Random, names: Names) -> dict[str, object]:
    sites = [names.word((2,), 5, 8) for _ in range(2 * len(HS_CODES))]
    code_of = {site: HS_CODES[i // 2] for i, site in enumerate(sites)}  # two sites per desk code
    per_site = {"train": 30, "dev": 4, "test": 8}
    seen: set[str] = set()
    splits: dict[str, list[dict[str, object]]] = {}
    for split, n in per_site.items():
        parts = HS_TEST if split == "test" else HS_TRAIN
        rows: list[dict[str, object]] = []
        for site in sites:
            for _ in range(n):
                while True:
                    other = rng.choice([s for s in sites if code_of[s] != code_of[site]])
                    text = hs_request(rng, parts, site, other)
                    if text not in seen:
                        seen.add(text)
                        break
                rows.append({"text": text, "label": code_of[site], "site": site, "reported_from": other})
        splits[split] = number_items(rows, f"hs-{split}", rng)
    sizes = write_splits(root, "routing", splits)
    task = {"name": "routing", "kind": "classification", "labels": list(HS_CODES),
            "metrics": ["accuracy", "balanced_accuracy"],
            "instruction": "Route this help-desk ticket to the desk that handles it. Answer with the desk code only."}
    write_text(root / "suite.toml", suite_toml(
        "house-style", "Help-desk tickets from twelve invented company sites, routed to six invented desk codes by "
        "the site where the problem is, not the site it is reported from (two sites per desk): a house rule only "
        "the train split teaches.", [task], False))
    return {"sizes": sizes, "sites": {s: code_of[s] for s in sites}}


# ---------------------------------------------------------------- easy-general
EG_TRAIN = {
    "positive": ("I love this {item}. It works perfectly and I am very happy with it.",
                 "What a wonderful {item}! Excellent quality, I would happily buy it again.",
                 "The {item} is fantastic. Great value, and it arrived quickly.",
                 "Absolutely brilliant {item}, my whole family enjoys it every day."),
    "negative": ("I hate this {item}. It broke after one day and I am very disappointed.",
                 "What a terrible {item}! Awful quality, I want my money back.",
                 "The {item} is useless. A complete waste of money, and it arrived damaged.",
                 "Really bad {item}, it stopped working and nobody answered my complaint."),
    "item": ("blender", "backpack", "umbrella", "desk lamp", "kettle", "toaster", "rain jacket", "novel",
             "pair of headphones", "office chair", "board game", "coffee mug", "wall clock", "tent", "camera",
             "pillow", "frying pan", "watch", "garden hose", "yoga mat"),
    "opener": ("", "", "Five stars. ", "Update: "),
    "opener_neg": ("", "", "One star. ", "Update: "),
}
EG_TEST = {
    "positive": ("Best {item} I have ever owned, it puts a smile on my face every time.",
                 "Superb {item}: beautifully made, easy to use and worth every penny.",
                 "My new {item} is amazing and I recommend it to all my friends.",
                 "Delighted with this {item}, it does exactly what I hoped and more."),
    "negative": ("Worst {item} I have ever owned, it makes me furious every time.",
                 "Dreadful {item}: cheaply made, hard to use and not worth a penny.",
                 "My new {item} fell apart within a week and I warn all my friends against it.",
                 "Very unhappy with this {item}, it does nothing it promised and it smells awful."),
    "item": ("phone case", "bicycle pump", "teapot", "sofa", "wool scarf", "keyboard", "suitcase", "bookshelf",
             "electric toothbrush", "pair of boots", "jigsaw puzzle", "water bottle", "alarm clock", "sleeping bag",
             "printer", "duvet", "saucepan", "bracelet", "lawn mower", "running shoes"),
    "opener": ("", "", "Honestly? ", "Quick review: "),
    "opener_neg": ("", "", "Honestly? ", "Quick review: "),
}


def easy_general(root: Path, rng: random.Random, names: Names) -> dict[str, object]:
    del names  # no invented names here: the task is one the base model already knows
    sizes_wanted = {"train": 120, "dev": 40, "test": 100}
    splits: dict[str, list[dict[str, object]]] = {}
    seen: set[str] = set()
    for split, n in sizes_wanted.items():
        parts = EG_TEST if split == "test" else EG_TRAIN
        rows: list[dict[str, object]] = []
        for i in range(n):
            label = "positive" if i % 2 == 0 else "negative"
            while True:
                opener = rng.choice(parts["opener" if label == "positive" else "opener_neg"])
                text = opener + rng.choice(parts[label]).format(item=rng.choice(parts["item"]))
                if text not in seen:
                    seen.add(text)
                    break
            rows.append({"text": text, "label": label})
        splits[split] = number_items(rows, f"eg-{split}", rng)
    sizes = write_splits(root, "sentiment", splits)
    task = {"name": "sentiment", "kind": "classification", "labels": ["positive", "negative"],
            "metrics": ["accuracy", "balanced_accuracy"],
            "instruction": "Is this product review positive or negative? Answer with one word."}
    write_text(root / "suite.toml", suite_toml(
        "easy-general", "Product reviews with unmistakable sentiment, a task the base model already does well: "
        "no adaptation should gain significantly, so the cheapest and fastest strategy should win.", [task], False))
    return {"sizes": sizes}


# ---------------------------------------------------------------- READMEs
REGEN = "python suites/scenarios/generate.py            # from the repository root; --seed 0 is the default"


def sizes_line(sizes: dict[str, int]) -> str:
    return f"train {sizes['train']}, dev {sizes['dev']}, test {sizes['test']}"


def readme_fresh_facts(info: dict[str, object]) -> str:
    g = info["groups"]
    assert isinstance(g, dict)
    return f"""# fresh-facts (scenario suite)

**Expected family: `rag`** (context). The answers live only in the corpus, so weights cannot learn
them, and the knowledge update (new documents) costs a re-index rather than a re-training.

## Construction

Generated by `generate.py` (seeded, standard library only; regenerate with the command at the end).

- **Corpus**: {info['docs']} short Markdown documents ({info['words'][0]} to {info['words'][1]} words, so each is
  one retrieval chunk at rag's default 120-word chunks). {info['base_docs']} describe one invented entity each
  (12 kinds: research vessels, observatories, dairy cooperatives, bridges, islands, chamber
  orchestras, mines, lantern festivals, libraries, railways, lighthouses, botanical gardens; 8 of
  each), in 5 or 6 facts of one sentence each. Every sentence names its entity in full ("The home
  port of the research vessel Nelrudbra is Tavrosk."), so it stands alone. Every name (entity,
  person, place, telescope, cheese...) is built from syllables, unique across all scenario suites,
  and so in no pretraining data; numbers are drawn without repeats per kind of fact.
- **Knowledge update**: the last {UPDATE_DOCS} documents in sorted id order (`update-01-...` to
  `update-{UPDATE_DOCS:02d}-...`; every other id starts with `entity-`) are register notices. Each changes three
  facts of one *train* entity ("From 3 June 2031, the home port of the research vessel X is Y."),
  superseding the value its `entity-` document states and the train split teaches. Run with
  `update_docs = {UPDATE_DOCS}` (rag and every weight strategy) to hold them out and time absorbing them.
- **Task `facts`** (short-answer, scored by token F1, the headline, and exact match; answers are 1
  to 3 words: a name, a person, a year or a number; numbers under 100 have their spelled form as an
  alias; no unit is part of an answer, so a guessed "N metres" earns nothing): {sizes_line(info['sizes'])}.
  The {g['train']} train entities (4 per kind) give every one of their facts as a train question; the
  {g['dev']} dev entities (1 per kind) three facts each, the {g['test']} test entities (3 per kind) two facts each,
  all `coverage: "unseen"`: no train item is about a dev or test document. {info['test_update']} of the test
  items ask for a value a notice changed ("Since register notice 4 of 2031, what is the home port of
  ...?", `doc_id` the notice, `supersedes` the old document); the 10 train items on notices (one
  changed fact per notice) are what a weight strategy's update trains on (without them its update
  step has nothing to train on and the cell is skipped). Every item has `doc_id`, `evidence` (the one
  sentence that states the answer, verbatim) and `fact_id`. Question wordings repeat across entities
  of a kind; items about different documents are different questions (hygiene compares within a
  `doc_id`), and `suites check` finds no leak.

## Why rag

- zero-shot and few-shot cannot know invented names; a guess scores 0 (names are unique, numbers
  do not repeat, no unit to share).
- Weight strategies (lora, qlora, dora, full-ft) train on facts of *other* documents: they learn the
  question style and nothing about the test facts, and they learn the superseded values of the
  amended entities, so they answer the notice questions with stale facts.
- rag puts the entity's document in the prompt (its name is in the question and in every
  sentence), and the 135M model has to find one sentence and repeat its value. It tends to repeat
  the whole sentence ("The manager of the X Mine is Predra Grudreind"), which token F1 credits
  partly (0.25 to 0.45 for a right answer) and exact match not at all, so expect a low F1 for rag
  that is still far above everything else's near-zero F1. With `update_docs = {UPDATE_DOCS}`,
  absorbing the notices is an index add (seconds) against further training for weight strategies.
- Measured while building the suite (seed 0 data, the default model, no training): {info['measured']}

## What would make the expectation wrong

- Retrieval misses: look at the report's recall@1/recall@3. Twelve kinds of entity x 8 (plus the
  notices) share sentence shapes; only the invented name tells two vessels apart. If recall@3 is
  low, rag's score falls with it.
- Reading misses: the 135M model may answer with the wrong sentence's value, or with the old value
  for notice questions (the old entity document is retrieved too; notice sentences and questions
  both say "new" to point at the notice).
- A hybrid (`rag+lora`, not in the default strategy set) learns from the train split to answer with
  the value alone, so it can beat plain rag significantly on F1 (rag loses F1 to whole-sentence
  answers, not to missing knowledge). If it does, the card picks the hybrid, and the numbers say why:
  retrieval does the knowing, training only the answer length.

## Run it

```bash
harness suites check suites/scenarios/fresh-facts
harness compare --suite suites/scenarios/fresh-facts --strategies zero-shot,few-shot,rag,lora,full-ft
```

(by path: named lookup only searches one level of `suites/`). To time the knowledge update, a run.toml
with `[options.rag] update_docs = {UPDATE_DOCS}` and the same for each weight strategy.

## Regenerate

```bash
{REGEN}
```
"""


def readme_house_style(info: dict[str, object]) -> str:
    sites = info["sites"]
    assert isinstance(sites, dict)
    table = "\n".join(f"| {s} | {c} |" for s, c in sites.items())
    return f"""# house-style (scenario suite)

**Expected family: a weight strategy** (lora, dora, qlora or full-ft). The card must show it beats
few-shot significantly, or say the comparison is underpowered.

## Construction

Generated by `generate.py` (seeded, standard library only). No corpus.

- **Task `routing`** (classification, scored by the loglikelihood of each label: accuracy, balanced
  accuracy). Each input is a help-desk ticket with a fixed header, a body and a signature:
  `Site: Setra | Reported from: Stouvem | Arrange a shuttle so 18 colleagues reach the airport on
  the first of the month. Signed, the Stouvem office.` The house rule: a ticket goes to the desk of
  the site where the problem is (`Site:`), whoever reports it. Twelve invented sites, six invented
  desk codes, two sites per desk:

| site | desk code |
|---|---|
{table}

- {sizes_line(info['sizes'])}, balanced: 30 / 4 / 8 tickets per site, so 60 / 8 / 16 per code.
- The reporting site is drawn from the sites of the *other* five desks, and named twice (header and
  signature); the problem site once. The topic of the body (a broken kettle, a minibus booking, an
  access badge...) is drawn independently of both, so it carries no information about the code.
- The codes (`{'`, `'.join(HS_CODES)}`) use only the letters C, Q, W, X and Y, which no invented name
  contains, so no code can be guessed from its site's spelling; each is four tokens for the default
  tokenizer. (A first version with codes like `MIR-9` let zero-shot reach 0.32 by matching letters.)
- Train and dev bodies use one set of sentence templates and word lists; test bodies another,
  disjoint set (other templates, objects, rooms, faults, days, supplies). A test ticket shares only
  the header and signature pattern and the site names with train; `suites check` finds no overlap.

## Why a weight strategy

- zero-shot cannot know invented codes: chance is 1/6.
- few-shot (6 train tickets, nearest by embedding) cannot see fields: a similarity search over the
  ticket text finds tickets that share a site *name*, and the reporting site's name weighs twice as
  much as the problem site's, so many of the examples it shows carry another desk's code. The rule
  is about which field a name is in, which a weight update learns from 360 consistent examples.
- Measured while building the suite (seed 0 data, the default model, no training): {info['measured']}
- Two earlier designs were rejected because few-shot solved them: codes that follow the topic (the
  nearest examples share the topic, hence the code), and one site name per ticket (the invented name
  dominates the embedding: 77% of the six examples came from the query's own site and few-shot
  scored 0.875).

## What would make the expectation wrong

- Training budget. On CPU the weight strategies stop at `cpu_max_steps` (24 steps of 8 = 192
  tickets, about half an epoch, 16 per site): LoRA at its default rate may not learn twelve
  associations and the field rule in that budget. A run.toml with `cpu_max_steps = 90` (about two
  epochs, what CUDA runs by default) for the weight strategies gives them the budget the scenario
  assumes. If the weights stay near chance, the card's answer is the honest one for that budget.
  `benchmarks/decision_quality.py` runs it at 90 steps: full-ft learns the rule and lora at its
  default rank and rate does not (scores in `benchmarks/results/decision_quality.md`); at 24 steps
  neither did.
- Few-shot doing better than measured (a different embedder, more examples): if it gets within a few
  points of the weights, 96 test items cannot separate them and the card should say so.
- A weight strategy that learns "name -> code" without the field would be misled by the reporting
  site and score low; that is the behaviour the distractor is there to expose.

## Run it

```bash
harness suites check suites/scenarios/house-style
harness compare --suite suites/scenarios/house-style --strategies zero-shot,few-shot,lora,full-ft
```

## Regenerate

```bash
{REGEN}
```
"""


def readme_easy_general(info: dict[str, object]) -> str:
    return f"""# easy-general (scenario suite)

**Expected family: `zero-shot`.** No adaptation gains significantly, and zero-shot is the cheapest
(no adaptation cost) and, with few-shot excluded by a latency limit, as fast as anything.

## Construction

Generated by `generate.py` (seeded, standard library only). No corpus, deliberately: rag has nothing
to retrieve and is skipped with its reason (an irrelevant corpus would only add prompt length).

- **Task `sentiment`** (classification, labels `positive` and `negative`, each one token for the
  default tokenizer, scored by loglikelihood): one- or two-sentence product reviews whose sentiment
  is unmistakable ("I love this blender. It works perfectly and I am very happy with it." /
  "Dreadful teapot: cheaply made, hard to use and not worth a penny.").
- {sizes_line(info['sizes'])}, each exactly half positive.
- Train and dev use one set of templates, openers and products; test another, disjoint set (a test
  review shares no product and no template with train). `suites check` finds no overlap.

## Why zero-shot

- The instruction names both labels, and the cues are the words an instruction-tuned model knows
  best (love, wonderful, terrible, useless): the base model is at the ceiling (measured below), well
  above its 0.636 on the `general` retention suite's multiple-choice questions, whose answers it must
  rank among four.
- With few errors left, no strategy can gain significantly: McNemar on one task needs at least 6
  discordant items all one way for p < 0.05, so a zero-shot score of 0.95 or more on 100 items cannot
  be beaten significantly. The tie rule then picks the cheapest tied strategy: zero-shot.
- Latency: few-shot's six examples make every prompt several times longer. The suite is meant to be
  decided with a latency limit between zero-shot's p50 and few-shot's (read both from the report,
  e.g. `harness recommend <run> --max-latency-ms <a bit above zero-shot's p50>`); few-shot breaks it,
  and rag is skipped anyway. Weight strategies keep zero-shot's prompt and latency, and lose on cost.
- Measured while building the suite (seed 0 data, the default model, no training): {info['measured']}

## What would make the expectation wrong

- If zero-shot is well below the ceiling (say under 0.90: a label bias of the base model toward one
  word), a weight strategy can gain significantly by calibrating the labels, and would rightly win.
  The easy-general premise is then false for this model and this suite should be made easier.
- Without a latency limit, few-shot may tie with zero-shot; the tie rule still picks the cheaper
  zero-shot, but only if few-shot is not significantly better.

## Run it

```bash
harness suites check suites/scenarios/easy-general
harness compare --suite suites/scenarios/easy-general --strategies zero-shot,few-shot,lora,full-ft
harness recommend reports/easy-general/<run-id> --max-latency-ms <between zero-shot's and few-shot's p50>
```

## Regenerate

```bash
{REGEN}
```
"""


def readme_knowledge_and_style(info: dict[str, object]) -> str:
    g = info["groups"]
    assert isinstance(g, dict)
    codes = ", ".join(f"`{c}` {k}" for k, c in KAS_CODES.items())
    return f"""# knowledge-and-style (scenario suite)

**Expected family: a hybrid, `rag+lora`** (or `rag+full-ft`): the facts need retrieval and the
answer format needs training. Failing that, the card must explain from its numbers why a single
family wins.

## Construction

Generated by `generate.py` (seeded, standard library only), with the same twelve kinds of invented
entity as fresh-facts but other entities (every name is unique across the scenario suites).

- **Corpus**: {info['docs']} documents, one entity each (6 per kind), 5 or 6 one-sentence facts each.
  No knowledge update here.
- **Task `records`** (short-answer, scored by **exact match only**, so the headline is exact
  match): every answer is a register record line, `<field code>: <value>`, e.g. `PLC: Tavrosk`,
  `PRS: Oria Telvane`, `YR: 1874`, `QTY: 37`. The field code depends on what the question asks for
  ({codes}); the instruction only says "in the register's format", so the codes and the layout are
  what the train split teaches. Spelled-out numbers under 100 are aliases (`QTY: thirty-seven`).
  A bare value (`Tavrosk`) is not the house's answer and scores 0.
- {sizes_line(info['sizes'])}: the {g['train']} train entities (3 per kind) give all their facts; the {g['dev']} dev and
  {g['test']} test entities (1 and 2 per kind) three facts each, all `coverage: "unseen"`: no train item is
  about a dev or test document. Items carry `doc_id`, `evidence` (the one sentence that states the
  value verbatim), `value` (the bare value) and `code`. Test codes: {info['test_codes']}.

## Why a hybrid

- rag finds the sentence and copies the value, but has no way to know the record format: it answers
  `Tavrosk`, exact match 0.
- few-shot and the weight strategies learn the format from train items (`PLC: ...`), but the value
  is in a document they never saw: exact match about 0.
- `rag+lora` trains the format into the weights on retrieval-augmented prompts (the passages its
  evaluation shows, in front of each train question), then retrieves the document at answer time: both
  halves of the answer. It should be the only family far from 0. What each arm scored:
  `benchmarks/results/decision_quality.md`.
- Measured while building the suite (seed 0 data, the default model, no training): {info['measured']}

## What would make the expectation wrong

- A hybrid whose weights train on zero-shot prompts and then meet retrieved passages: that is what
  `train_on_context = false` does, and the first run of this scenario (before hybrids trained on
  their context) scored 0 that way: the model copied the passages' ids instead of answering.
- Retrieval or reading misses (see fresh-facts) lower the hybrid's score; with 72 test items, the
  hybrid needs at least about 6 exact matches more than the runner-up to be significant.
- If rag alone picks up the format from the instruction (it does not name the codes), the gap
  narrows; the per-item browser shows which half of the answer each strategy got.

## Run it

```bash
harness suites check suites/scenarios/knowledge-and-style
harness compare --suite suites/scenarios/knowledge-and-style --strategies zero-shot,few-shot,rag,lora,rag+lora
```

## Regenerate

```bash
{REGEN}
```
"""


def readme_index(infos: dict[str, dict[str, object]]) -> str:
    rows = "\n".join(
        f"| [{name}]({name}/README.md) | {sizes_line(infos[name]['sizes'])} | {exp} |"  # type: ignore[arg-type]
        for name, exp in (("fresh-facts", "`rag`"), ("house-style", "a weight strategy"),
                          ("easy-general", "`zero-shot`"), ("knowledge-and-style", "a hybrid (`rag+lora`)")))
    return f"""# Scenario suites

Suites whose right answer is known before anything runs: each is built so that one family of
adaptation strategy should win for a stated reason, which a `harness compare` then has to confirm
(or the report has to explain from its numbers why not). All content is original and generated by
`generate.py` here (standard library only, seeded, byte-identical on re-runs).

| suite | items | expected |
|---|---|---|
{rows}

Each suite's README states its construction, the expected family and why, and what would make the
expectation wrong. Every suite measures forgetting on the built-in `general` suite
(`retention = "general"`, found by name).

These folders sit one level below `suites/`, so they are not found by name; pass the path:

```bash
harness suites check suites/scenarios/fresh-facts
harness compare --suite suites/scenarios/fresh-facts
```

Regenerate all four (from the repository root):

```bash
python suites/scenarios/generate.py                 # --seed 0 --out suites/scenarios
```

The script rewrites each suite folder it generates (and only those) and leaves everything else here alone.
"""


# ---------------------------------------------------------------- measured
# What the prompt-only strategies scored on the seed-0 data with the default model (SmolLM2-135M-
# Instruct, CPU, the harness's own strategy classes and evaluation, full test splits); copied into the
# READMEs. Re-measure after changing anything above.
MEASURED = {
    "fresh-facts": (
        "rag (default options) put the gold document first for 97.8% of the 92 test items (recall@5 1.0); "
        "its answer contained the gold value for 41 of the 72 entity items, token F1 0.144 and exact match "
        "0.0 over all 92 (the model answers with a sentence whatever the instruction: four instructions and "
        "three question forms tried on 24 items, F1 0.10 to 0.15). On the 20 notice items, with the wording "
        "now generated (\"new ...\"), retrieval@1 1.0, the gold value in 7 answers, F1 0.11 (4 answers "
        "and F1 0.06 with the first wording, which did not say \"new\"). zero-shot and the weight strategies "
        "were not run; no test value is the train answer to the same question about another entity, so they "
        "can only score by chance."),
    "house-style": (
        "zero-shot 19 of 96 (0.198; chance is 0.167), few-shot 30 of 96 (0.312). The weight strategies were "
        "not run (they need training)."),
    "easy-general": (
        "zero-shot 100 of 100 (accuracy 1.0), so no strategy can be significantly better. few-shot scored 0.79 "
        "on an earlier draw of the same templates (its nearest examples, often of the other polarity, mislead "
        "it); not re-measured on this draw."),
    "knowledge-and-style": (
        "rag exact match 0 of 72: it answers with a sentence that usually holds the value (\"The Zotro "
        "Observatory employs 24 staff\" for `QTY: 24`) and never the record format. The hybrid and the weight "
        "strategies were not run (they need training)."),
}


# ---------------------------------------------------------------- main
BUILDERS = {"fresh-facts": (fresh_facts, readme_fresh_facts), "house-style": (house_style, readme_house_style),
            "easy-general": (easy_general, readme_easy_general),
            "knowledge-and-style": (knowledge_and_style, readme_knowledge_and_style)}


def generate(out: Path, seed: int) -> dict[str, dict[str, object]]:
    """Write every scenario suite under `out`; one Random(seed) drives all of them, in a fixed order."""
    rng = random.Random(seed)
    names = Names(rng)
    infos: dict[str, dict[str, object]] = {}
    for name in SUITE_NAMES:
        root = out / name
        if root.exists():
            shutil.rmtree(root)
        build, readme = BUILDERS[name]
        infos[name] = build(root, rng, names)
        infos[name]["measured"] = MEASURED[name] if seed == 0 else f"nothing yet for seed {seed}."
        write_text(root / "README.md", readme(infos[name]))
    write_text(out / "README.md", readme_index(infos))
    return infos


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    ap.add_argument("--out", type=Path, default=HERE, help="folder to write the suites into (default: this folder)")
    args = ap.parse_args(argv)
    infos = generate(args.out, args.seed)
    for name, info in infos.items():
        print(f"{name}: {sizes_line(info['sizes'])}")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()

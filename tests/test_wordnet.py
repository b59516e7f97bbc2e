"""WordNet 3.0 snapshot, ImageNet vocabulary and class relations.

Expectations below were read off NLTK's ``WordNetCorpusReader`` on the WordNet 3.0 database
(Debian wordnet-base 1:3.0-37). ``test_against_nltk`` repeats the comparison live when a
WordNet 3.0 dict directory is available (``ERRORTAXA_WORDNET_DICT`` or a standard location).
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import random
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from errortaxa.engine.knowledge.relations import (
    ancestor_incidence,
    class_relations,
    group_of,
    has_ancestor,
    shankar_group_of,
)
from errortaxa.engine.knowledge.vocabulary import Vocabulary
from errortaxa.engine.knowledge.wordnet import WordNet

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wn() -> WordNet:
    return WordNet.load()


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.imagenet()


# -- snapshot and lookup ----------------------------------------------------------------


def test_snapshot_counts(wn: WordNet) -> None:
    assert len(wn) == 82115
    kinds = Counter(k for _, _, k in wn.graph.edges(data="kind"))
    assert kinds == {"hypernym": 75850, "instance": 8577}
    roots = [n for n in wn.graph if wn.graph.out_degree(n) == 0]
    assert roots == ["n00001740"]
    assert WordNet.load() is wn


def test_nltk_style_names(wn: WordNet) -> None:
    # lemma.n.NN is the NN-th noun sense of the lemma, as NLTK's synset() resolves it
    assert wn.wnid("christ.n.01") == wn.wnid("jesus.n.01") == "n11083656"
    assert wn.name("christ.n.01") == "jesus.n.01"
    assert wn.wnid("Domestic_Dog.n.1") == "n02084071"
    assert wn.wnid("TENCH.n.01") == "n01440764"
    assert "dog.n.07" in wn and "dog.n.08" not in wn and "dog.v.01" not in wn


def test_lookup(wn: WordNet) -> None:
    assert wn.wnid("dog.n.01") == "n02084071"
    assert wn.wnid("n02084071") == "n02084071"
    assert wn.name("n02084071") == "dog.n.01"
    assert wn.lemmas("dog.n.01") == ["dog", "domestic_dog", "Canis_familiaris"]
    assert wn.lemmas("n01440764") == ["tench", "Tinca_tinca"]
    assert wn.definition("dog.n.01").startswith("a member of the genus Canis")
    assert ";" not in wn.definition("abstraction.n.06")  # examples stripped, as NLTK
    assert "dog.n.01" in wn and "n02084071" in wn and "dog.n.99" not in wn
    assert wn.graph.nodes["n02084071"]["name"] == "dog.n.01"


@pytest.mark.parametrize("key", ["dog.n.99", "n99999999", "dog", "", "v01234567"])
def test_unknown_key(wn: WordNet, key: str) -> None:
    with pytest.raises(KeyError, match=repr(key).replace(".", r"\.")):
        wn.wnid(key)
    with pytest.raises(KeyError):
        wn.hypernym_paths(key)


# -- hypernym paths (NLTK semantics) ------------------------------------------------------

# name, wnid, number of paths, sorted path lengths, min_depth, has an instance hypernym,
# direct parents (hypernyms then instance hypernyms, each by name)
FACTS = [
    ("dog.n.01", "n02084071", 2, [9, 14], 8, False, ["canine.n.02", "domestic_animal.n.01"]),
    ("tench.n.01", "n01440764", 1, [17], 16, False, ["cyprinid.n.01"]),
    ("goldfish.n.01", "n01443537", 1, [17], 16, False, ["cyprinid.n.01"]),
    ("norfolk_terrier.n.01", "n02094114", 2, [12, 17], 11, False, ["terrier.n.01"]),
    ("scottish_deerhound.n.01", "n02092002", 2, [12, 17], 11, False, ["hound.n.01"]),
    ("tabby.n.01", "n02123045", 2, [10, 16], 9, False, ["domestic_cat.n.01"]),
    ("car.n.01", "n02958343", 2, [11, 12], 10, False, ["motor_vehicle.n.01"]),
    ("sports_car.n.01", "n04285008", 2, [12, 13], 11, False, ["car.n.01"]),
    ("racer.n.02", "n04037443", 2, [12, 13], 11, False, ["car.n.01"]),
    ("toilet_tissue.n.01", "n15075141", 2, [8, 9], 7, False, ["tissue.n.02"]),
    ("coffee_mug.n.01", "n03063599", 1, [11], 10, False, ["mug.n.04"]),
    ("cup.n.01", "n03147509", 2, [8, 10], 7, False, ["container.n.01", "crockery.n.01"]),
    ("tusker.n.01", "n01871265", 1, [11], 10, False, ["mammal.n.01"]),
    ("african_elephant.n.01", "n02504458", 2, [14, 14], 13, False, ["elephant.n.01"]),
    ("mink.n.03", "n02442845", 1, [14], 13, False, ["musteline_mammal.n.01"]),
    ("polecat.n.02", "n02443114", 1, [14], 13, False, ["musteline_mammal.n.01"]),
    ("valley.n.01", "n09468604", 1, [6], 5, False, ["natural_depression.n.01"]),
    ("daisy.n.01", "n11939491", 1, [12], 11, False, ["flower.n.01"]),
    ("hen-of-the-woods.n.01", "n13052670", 1, [8], 7, False, ["fungus.n.01"]),
    ("person.n.01", "n00007846", 2, [4, 7], 3, False, ["causal_agent.n.01", "organism.n.01"]),
    ("entity.n.01", "n00001740", 1, [1], 0, False, []),
    ("ballplayer.n.01", "n09835506", 4, [7, 7, 10, 10], 6, False, ["athlete.n.01", "player.n.01"]),
    ("groom.n.01", "n10148035", 2, [8, 11], 7, False, ["participant.n.01"]),
    ("scuba_diver.n.01", "n10565667", 2, [7, 10], 6, False, ["diver.n.01"]),
    ("baseball.n.02", "n02799071", 2, [10, 10], 9, False, ["ball.n.01", "baseball_equipment.n.01"]),
    ("granny_smith.n.01", "n07742313", 3, [10, 13, 13], 9, False, ["eating_apple.n.01"]),
    ("menu.n.04", "n05911124", 1, [9], 8, False, ["agenda.n.01"]),
    ("web_site.n.01", "n06359193", 1, [10], 9, False, ["computer.n.01"]),
    ("comic_book.n.01", "n06596364", 2, [11, 11], 10, False, ["magazine.n.01"]),
    ("street_sign.n.01", "n06794110", 1, [5], 4, False, ["sign.n.02"]),
    ("traffic_light.n.01", "n06874185", 1, [7], 6, False, ["light.n.14"]),
    ("bubble.n.01", "n09229709", 1, [9], 8, False, ["globule.n.01"]),
    ("promontory.n.01", "n09399592", 1, [6], 5, False, ["natural_elevation.n.01"]),
    ("seashore.n.01", "n09428293", 1, [6], 5, False, ["shore.n.01"]),
    ("geyser.n.01", "n09288635", 1, [6], 5, False, ["spring.n.03"]),
    # instance hypernyms
    ("einstein.n.01", "n10954498", 2, [7, 10], 6, True, ["physicist.n.01"]),
    ("mississippi.n.01", "n09356080", 1, [7], 6, True, ["river.n.01"]),
    ("paris.n.01", "n08932568", 3, [11, 11, 11], 10, True, ["national_capital.n.01"]),
    ("shakespeare.n.01", "n11295196", 4, [8, 8, 11, 11], 7, True, ["dramatist.n.01", "poet.n.01"]),
    ("bach.n.01", "n10830229", 4, [9, 9, 12, 12], 8, True, ["composer.n.01", "organist.n.01"]),
    ("jupiter.n.01", "n09322454", 3, [9, 9, 9], 8, True,
     ["jovian_planet.n.01", "outer_planet.n.01", "superior_planet.n.01"]),
    ("rome.n.01", "n08806897", 3, [11, 11, 11], 10, True, ["national_capital.n.01"]),
    ("atlantic.n.01", "n09209263", 1, [6], 5, True, ["ocean.n.01"]),
    ("darwin.n.01", "n10923313", 2, [8, 11], 7, True, ["naturalist.n.02"]),
    ("new_york.n.01", "n09119277", 3, [9, 10, 10], 8, True, ["city.n.01", "port_of_entry.n.01"]),
    ("eiffel_tower.n.01", "n03266906", 1, [8], 7, True, ["tower.n.01"]),
    ("christ.n.01", "n11083656", 5, [6, 7, 9, 10, 12], 5, True, ["jew.n.01", "prophet.n.02", "son.n.02"]),
    ("george_washington.n.01", "n11375418", 4, [10, 13, 13, 16], 9, True,
     ["general.n.01", "president_of_the_united_states.n.01"]),
    ("the_alps.n.01", "n09194357", 1, [6], 5, True, ["range.n.04"]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "wnid", "n_paths", "lengths", "depth", "instance", "parents"), FACTS)
def test_hypernym_paths_facts(
    wn: WordNet, name: str, wnid: str, n_paths: int, lengths: list[int], depth: int,
    instance: bool, parents: list[str],
) -> None:  # fmt: skip
    assert wn.wnid(name) == wnid
    paths = wn.hypernym_paths(name)
    assert len(paths) == n_paths
    assert sorted(len(p) for p in paths) == lengths
    assert all(p[0] == "n00001740" and p[-1] == wnid for p in paths)
    assert wn.min_depth(wnid) == depth == min(lengths) - 1
    kinds = {wn.graph.edges[wnid, p]["kind"] for p in wn.hypernyms(wnid)}
    assert ("instance" in kinds) == instance
    assert [wn.name(p) for p in wn.hypernyms(wnid)] == parents
    assert wn.ancestors(wnid) == frozenset(x for p in paths for x in p)
    for p in paths:  # each step is a parent edge
        assert all(wn.graph.has_edge(c, h) for h, c in itertools.pairwise(p))


def test_full_paths(wn: WordNet) -> None:
    def names(key: str) -> list[list[str]]:
        return [[wn.name(x) for x in p] for p in wn.hypernym_paths(key)]

    top = ["entity.n.01", "physical_entity.n.01", "object.n.01", "whole.n.02", "living_thing.n.01",
           "organism.n.01"]  # fmt: skip
    assert names("dog.n.01") == [
        [*top, "animal.n.01", "chordate.n.01", "vertebrate.n.01", "mammal.n.01", "placental.n.01",
         "carnivore.n.01", "canine.n.02", "dog.n.01"],
        [*top, "animal.n.01", "domestic_animal.n.01", "dog.n.01"],
    ]  # fmt: skip
    assert names("einstein.n.01") == [
        ["entity.n.01", "physical_entity.n.01", "causal_agent.n.01", "person.n.01", "scientist.n.01",
         "physicist.n.01", "einstein.n.01"],
        [*top, "person.n.01", "scientist.n.01", "physicist.n.01", "einstein.n.01"],
    ]  # fmt: skip
    # paths are fresh lists
    wn.hypernym_paths("dog.n.01")[0].append("x")
    assert wn.hypernym_paths("dog.n.01")[0][-1] == "n02084071"


def test_hyponyms(wn: WordNet) -> None:
    terriers = [wn.name(x) for x in wn.hyponyms("terrier.n.01")]
    assert len(terriers) == 24 and terriers == sorted(terriers)
    assert terriers[:3] == ["airedale.n.01", "australian_terrier.n.01", "bedlington_terrier.n.01"]
    city = wn.hyponyms("city.n.01")
    kinds = [wn.graph.edges[c, "n08524735"]["kind"] for c in city]
    assert kinds == sorted(kinds, key=lambda k: k != "hypernym")  # hyponyms, then instances
    assert [wn.name(c) for c in city[:4]] == [
        "national_capital.n.01", "provincial_capital.n.01", "state_capital.n.01", "aachen.n.01",
    ]  # fmt: skip
    assert "n08932568" in wn.hyponyms("national_capital.n.01")  # Paris, an instance
    assert wn.hyponyms("paris.n.01") == []
    # the graph itself lists children in the same order
    assert list(wn.graph.predecessors("n08524735")) == city


# -- vocabulary -------------------------------------------------------------------------


def test_imagenet_vocabulary(wn: WordNet, vocab: Vocabulary) -> None:
    assert len(vocab) == 1000 and Vocabulary.imagenet() is vocab
    assert vocab.wnids[0] == "n01440764" and vocab.index("n01440764") == 0
    assert vocab.wnids[999] == "n15075141" and vocab.index("n15075141") == 999
    assert vocab.names[0] == "tench" and vocab.full_names[0] == "tench, Tinca tinca"
    assert vocab.names[999] == "toilet tissue"
    assert vocab.wnids == sorted(vocab.wnids)
    assert all(w in wn for w in vocab.wnids)
    assert vocab.names[134] == vocab.names[517] == "crane"  # bird and machine
    with pytest.raises(KeyError, match="n02084071"):
        vocab.index("n02084071")  # dog.n.01 is not a class


def test_vocabulary_matches_devkit(vocab: Vocabulary) -> None:
    devkit = ROOT.parent / "shared" / "data" / "LOC_synset_mapping.txt"
    if not devkit.exists():
        pytest.skip("devkit mapping not available")
    lines = devkit.read_text().splitlines()
    assert [ln.split(" ", 1)[0] for ln in lines] == vocab.wnids
    assert [ln.split(" ", 1)[1] for ln in lines] == vocab.full_names


def test_custom_vocabulary() -> None:
    v = Vocabulary.from_wnids(["n02084071", "n02094114"], ["dog, domestic dog", "Norfolk terrier"])
    assert v.names == ["dog", "Norfolk terrier"] and v.index("n02094114") == 1
    with pytest.raises(ValueError, match="duplicate"):
        Vocabulary.from_wnids(["n02084071", "n02084071"])


# -- relations --------------------------------------------------------------------------


def test_groups(wn: WordNet, vocab: Vocabulary) -> None:
    assert int(has_ancestor(wn, vocab, "dog.n.01").sum()) == 118
    dogs = np.flatnonzero(has_ancestor(wn, vocab, "n02084071"))
    assert dogs.min() == 151 and dogs.max() == 268 and len(dogs) == 118
    assert int(has_ancestor(wn, vocab, "animal.n.01").sum()) == 398
    assert Counter(group_of(wn, vocab)) == {"artifact": 522, "organism": 410, "other": 68}
    assert Counter(shankar_group_of(wn, vocab)) == {"dogs": 118, "other_animals": 292, "objects": 590}
    groups = group_of(wn, vocab)
    assert groups[0] == "organism" and groups[vocab.index("n04285008")] == "artifact"
    assert groups[vocab.index("n09468604")] == "other"  # valley
    assert not has_ancestor(wn, vocab, "paris.n.01").any()
    with pytest.raises(KeyError):
        has_ancestor(wn, vocab, "nope.n.01")


def test_incidence(wn: WordNet, vocab: Vocabulary) -> None:
    nodes, inc = ancestor_incidence(wn, vocab)
    assert nodes == sorted(nodes) and inc.shape == (1000, len(nodes)) and inc.dtype == bool
    col = {n: k for k, n in enumerate(nodes)}
    assert inc[:, col["n00001740"]].all()  # entity
    for i in (0, 185, 999):
        assert {nodes[k] for k in np.flatnonzero(inc[i])} == wn.ancestors(vocab.wnids[i])
    assert not inc.flags.writeable


def test_relation_matrices(wn: WordNet, vocab: Vocabulary) -> None:
    rel = class_relations(wn, vocab)
    assert class_relations(wn, vocab) is rel
    for m, dt in ((rel.ancestor, bool), (rel.sibling, bool), (rel.lca_depth, np.int16),
                  (rel.distance, np.int16)):  # fmt: skip
        assert m.shape == (1000, 1000) and m.dtype == dt and not m.flags.writeable
    i = vocab.index
    norfolk, norwich, airedale = i("n02094114"), i("n02094258"), i("n02096051")
    deerhound, sports_car, racer = i("n02092002"), i("n04285008"), i("n04037443")
    tench, goldfish, tusker, elephant = i("n01440764"), i("n01443537"), i("n01871265"), i("n02504458")
    assert rel.sibling[norfolk, norwich] and rel.sibling[norwich, airedale]
    assert rel.sibling[sports_car, racer] and rel.sibling[tench, goldfish]
    assert not rel.sibling[norfolk, deerhound] and not rel.sibling[norfolk, norfolk]
    assert not rel.sibling[tusker, elephant]
    # two terriers share canine.n.02 (min_depth 12); terrier vs car only whole.n.02 (3)
    assert rel.lca_depth[norfolk, norwich] == 12 > rel.lca_depth[norfolk, sports_car] == 3
    assert rel.lca_depth[sports_car, racer] == 10  # car.n.01
    assert rel.distance[norfolk, norwich] == 2 and rel.distance[norfolk, deerhound] == 4
    assert rel.distance[tusker, elephant] == 5 and rel.distance[norfolk, sports_car] == 16
    assert (np.diag(rel.distance) == 0).all() and (rel.distance >= 0).all()
    assert (rel.distance == rel.distance.T).all() and (rel.lca_depth == rel.lca_depth.T).all()
    assert (rel.sibling == rel.sibling.T).all()
    assert not rel.ancestor.any()  # no ImageNet class is a WordNet ancestor of another


def test_ancestor_matrix_custom_vocabulary(wn: WordNet) -> None:
    v = Vocabulary.from_wnids(["n02084071", "n02094114", "n02093754", "n10954498"])
    rel = class_relations(wn, v)  # dog, Norfolk terrier, Border terrier, Einstein
    assert rel.ancestor.tolist() == [
        [False, True, True, False],
        [False, False, False, False],
        [False, False, False, False],
        [False, False, False, False],
    ]
    assert rel.sibling[1, 2] and not rel.sibling[0, 1]
    assert rel.distance[0, 1] == 3  # dog <- hunting_dog <- terrier <- Norfolk terrier
    assert rel.distance[1, 2] == 2  # via terrier.n.01
    assert rel.distance[0, 3] == 7  # dog up to organism (3, via domestic_animal), Einstein (4)
    assert rel.distance[1, 3] == 10
    assert rel.lca_depth[0, 3] == 5  # organism.n.01
    assert rel.lca_depth[3, 3] == wn.min_depth("einstein.n.01") == 6


# -- live comparison with NLTK ----------------------------------------------------------


def _dict_dir() -> Path | None:
    candidates = [os.environ.get("ERRORTAXA_WORDNET_DICT", ""), "/usr/share/wordnet",
                  str(Path.home() / "nltk_data" / "corpora" / "wordnet")]  # fmt: skip
    for c in candidates:
        if c and (Path(c) / "data.noun").exists():
            return Path(c)
    return None


def _synset_paths(s: Any) -> list[list[str]]:
    """NLTK <= 3.8 order: hypernyms by name, then instance hypernyms by name."""
    parents = sorted(s.hypernyms(), key=lambda x: x.name()) + sorted(s.instance_hypernyms(), key=lambda x: x.name())
    me = f"n{s.offset():08d}"
    return [[me]] if not parents else [[*p, me] for h in parents for p in _synset_paths(h)]


def test_against_nltk(wn: WordNet, vocab: Vocabulary, tmp_path: Path) -> None:
    src = _dict_dir()
    if src is None:
        pytest.skip("no WordNet 3.0 dict directory (set ERRORTAXA_WORDNET_DICT)")
    pytest.importorskip("nltk")
    spec = importlib.util.spec_from_file_location("build_wordnet", ROOT / "scripts" / "build_wordnet.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    build.prepare_dict(src, tmp_path)
    nwn = build.open_reader(tmp_path)

    def wid(s: Any) -> str:
        return f"n{s.offset():08d}"

    synsets = list(nwn.all_synsets("n"))
    assert len(synsets) == len(wn)
    sample = synsets[::40] + [nwn.synset(f[0]) for f in FACTS]
    sample += [nwn.synset_from_pos_and_offset("n", int(w[1:])) for w in vocab.wnids]
    for s in sample:
        w = wid(s)
        ours = wn.hypernym_paths(w)
        assert sorted(ours) == sorted([wid(x) for x in p] for p in s.hypernym_paths()), s
        assert ours == _synset_paths(s), s
        assert wn.min_depth(w) == s.min_depth(), s
        assert (wn.name(w), wn.lemmas(w), wn.definition(w)) == (s.name(), s.lemma_names(), s.definition())
        assert set(wn.hyponyms(w)) == {wid(x) for x in s.hyponyms() + s.instance_hyponyms()}

    rel = class_relations(wn, vocab)
    syn = [nwn.synset_from_pos_and_offset("n", int(w[1:])) for w in vocab.wnids]
    rng = random.Random(0)
    for _ in range(400):
        i, j = rng.randrange(1000), rng.randrange(1000)
        a, b = syn[i], syn[j]
        assert rel.distance[i, j] == a.shortest_path_distance(b), (i, j)
        assert rel.lca_depth[i, j] == max(x.min_depth() for x in a.common_hypernyms(b)), (i, j)
        shared = set(a.hypernyms() + a.instance_hypernyms()) & set(b.hypernyms() + b.instance_hypernyms())
        assert rel.sibling[i, j] == (i != j and bool(shared)), (i, j)

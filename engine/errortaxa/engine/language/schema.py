"""The taxonomy language: a pydantic v2 schema over ``yaml.safe_load`` output.

A taxonomy holds superclasses (WordNet predicates over the vocabulary), named resources,
and one or more *axes*; each axis has values (categories) and an ordered rule list in which
the first rule that holds gives the sample its value.  Nothing here executes code.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

SCHEMA_VERSION = "errortaxa/v1"

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
ClassRef = Annotated[int | str, Field(description="class index, wnid (n02084071) or synset name (dog.n.01)")]
SynsetRef = Annotated[str, Field(description="WordNet 3.0 noun: synset name (dog.n.01) or wnid (n02084071)")]


class Strict(BaseModel):
    """Base model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def _single_key(value: Any) -> str | None:
    """Discriminate the one-key mappings of the predicate languages by their key."""
    if isinstance(value, dict):
        keys = [k for k in value if k != "except"]
        return keys[0] if len(keys) == 1 else None
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        names = [fields[f].alias or f for f in value.model_fields_set if f != "except_"]
        return names[0] if len(names) == 1 else None
    return None


# ---------------------------------------------------------------- superclass membership


class AncestorMember(Strict):
    ancestor: SynsetRef | list[SynsetRef]
    except_: list[MemberExpr] = Field(default_factory=list, alias="except")


class ClassesMember(Strict):
    classes: list[ClassRef]
    except_: list[MemberExpr] = Field(default_factory=list, alias="except")


class AllMember(Strict):
    all: list[MemberExpr] = Field(min_length=1)
    except_: list[MemberExpr] = Field(default_factory=list, alias="except")


class AnyMember(Strict):
    any: list[MemberExpr] = Field(min_length=1)
    except_: list[MemberExpr] = Field(default_factory=list, alias="except")


class NotMember(Strict):
    not_: MemberExpr = Field(alias="not")
    except_: list[MemberExpr] = Field(default_factory=list, alias="except")


_MEMBER_KEYS = "ancestor, classes, all, any, not (plus optional except)"
MemberExpr = Annotated[
    Annotated[AncestorMember, Tag("ancestor")]
    | Annotated[ClassesMember, Tag("classes")]
    | Annotated[AllMember, Tag("all")]
    | Annotated[AnyMember, Tag("any")]
    | Annotated[NotMember, Tag("not")],
    Discriminator(
        _single_key,
        custom_error_type="member_expression",
        custom_error_message=f"a members expression needs exactly one of: {_MEMBER_KEYS}",
    ),
]


class Superclass(Strict):
    """A named group of classes that a non-expert would confuse."""

    description: str = ""
    members: MemberExpr


# ---------------------------------------------------------------- resources


class CooccurrenceResource(Strict):
    """Pairwise co-occurrence counts: ``builtin: real_val`` or ``file: path.npz`` (relative to the taxonomy)."""

    kind: Literal["cooccurrence"]
    builtin: Literal["real_val"] | None = None
    file: str | None = None
    source: str

    @model_validator(mode="after")
    def _one_location(self) -> CooccurrenceResource:
        if (self.builtin is None) == (self.file is None):
            raise ValueError("give exactly one of 'builtin' and 'file'")
        return self


class SampleListResource(Strict):
    """Image file names, one a line; looked up beside the taxonomy, then in the data directories."""

    kind: Literal["sample_list"]
    file: str
    source: str
    optional: bool = Field(False, description="if the file is missing, rules using it are 'not evaluated'")


class ClassMappingResource(Strict):
    """Accepted (prediction, target) pairs: ``pairs`` [prediction, target], ``symmetric`` pairs, ``groups``."""

    kind: Literal["class_mapping"]
    source: str
    pairs: list[tuple[ClassRef, ClassRef]] = Field(default_factory=list)
    symmetric: list[tuple[ClassRef, ClassRef]] = Field(default_factory=list)
    groups: list[list[ClassRef]] = Field(default_factory=list)


Resource = Annotated[
    CooccurrenceResource | SampleListResource | ClassMappingResource, Field(discriminator="kind")
]


# ---------------------------------------------------------------- pair predicates (class x class)


class Range(Strict):
    min: int | None = None
    max: int | None = None


class CooccurArgs(Strict):
    table: Identifier
    min_count: int = Field(ge=1)


class SameSuperclassPair(Strict):
    same_superclass: bool | list[Identifier] = Field(
        description="true: any superclass (singletons included); a list: one of these superclasses"
    )


class InMappingPair(Strict):
    in_mapping: Identifier


class AncestorPair(Strict):
    ancestor: bool = Field(description="the prediction is a WordNet ancestor of the other class")


class DescendantPair(Strict):
    descendant: bool = Field(description="the prediction is a WordNet descendant of the other class")


class SiblingPair(Strict):
    sibling: bool = Field(description="the two classes share a direct hypernym")


class SameClassPair(Strict):
    same_class: bool


class LcaDepthPair(Strict):
    lca_depth: Range = Field(description="depth of the deepest common WordNet ancestor")


class DistancePair(Strict):
    distance: Range = Field(description="hypernym-graph path length through the nearest common ancestor")


class CooccursPair(Strict):
    cooccurs: CooccurArgs


class AllPair(Strict):
    all: list[PairPredicate] = Field(min_length=1)


class AnyPair(Strict):
    any: list[PairPredicate] = Field(min_length=1)


class NotPair(Strict):
    not_: PairPredicate = Field(alias="not")


_PAIR_KEYS = (
    "same_superclass, in_mapping, ancestor, descendant, sibling, same_class, lca_depth, distance, "
    "cooccurs, all, any, not"
)
PairPredicate = Annotated[
    Annotated[SameSuperclassPair, Tag("same_superclass")]
    | Annotated[InMappingPair, Tag("in_mapping")]
    | Annotated[AncestorPair, Tag("ancestor")]
    | Annotated[DescendantPair, Tag("descendant")]
    | Annotated[SiblingPair, Tag("sibling")]
    | Annotated[SameClassPair, Tag("same_class")]
    | Annotated[LcaDepthPair, Tag("lca_depth")]
    | Annotated[DistancePair, Tag("distance")]
    | Annotated[CooccursPair, Tag("cooccurs")]
    | Annotated[AllPair, Tag("all")]
    | Annotated[AnyPair, Tag("any")]
    | Annotated[NotPair, Tag("not")],
    Discriminator(
        _single_key,
        custom_error_type="pair_predicate",
        custom_error_message=f"a class-pair predicate needs exactly one of: {_PAIR_KEYS}",
    ),
]


# ---------------------------------------------------------------- sample predicates


class PredIsTarget(Strict):
    pred_is_target: bool


class PredInLabels(Strict):
    pred_in_labels: bool


class TargetInLabels(Strict):
    target_in_labels: bool


class LabelsEmpty(Strict):
    labels_empty: bool


class Problematic(Strict):
    problematic: bool


class Always(Strict):
    always: Literal[True]


class InSampleList(Strict):
    in_sample_list: Identifier


class PredVsTarget(Strict):
    pred_vs_target: PairPredicate = Field(description="the pair (prediction, target) satisfies the predicate")


class PredVsLabel(Strict):
    pred_vs_label: PairPredicate = Field(description="(prediction, l) satisfies it for some label l")


class FeatureArgs(Strict):
    provider: Identifier
    test: Identifier
    params: dict[str, int | float | str | bool] = Field(default_factory=dict)


class FeatureTest(Strict):
    feature: FeatureArgs


class AllPred(Strict):
    all: list[Predicate] = Field(min_length=1)


class AnyPred(Strict):
    any: list[Predicate] = Field(min_length=1)


class NotPred(Strict):
    not_: Predicate = Field(alias="not")


_PRED_KEYS = (
    "pred_is_target, pred_in_labels, target_in_labels, labels_empty, problematic, always, "
    "in_sample_list, pred_vs_target, pred_vs_label, feature, all, any, not"
)
Predicate = Annotated[
    Annotated[PredIsTarget, Tag("pred_is_target")]
    | Annotated[PredInLabels, Tag("pred_in_labels")]
    | Annotated[TargetInLabels, Tag("target_in_labels")]
    | Annotated[LabelsEmpty, Tag("labels_empty")]
    | Annotated[Problematic, Tag("problematic")]
    | Annotated[Always, Tag("always")]
    | Annotated[InSampleList, Tag("in_sample_list")]
    | Annotated[PredVsTarget, Tag("pred_vs_target")]
    | Annotated[PredVsLabel, Tag("pred_vs_label")]
    | Annotated[FeatureTest, Tag("feature")]
    | Annotated[AllPred, Tag("all")]
    | Annotated[AnyPred, Tag("any")]
    | Annotated[NotPred, Tag("not")],
    Discriminator(
        _single_key,
        custom_error_type="predicate",
        custom_error_message=f"a predicate needs exactly one of: {_PRED_KEYS}",
    ),
]


# ---------------------------------------------------------------- axes, rules, cases


class Value(Strict):
    """One value of an axis (for the ``category`` axis: an error category)."""

    id: Identifier
    description: str = ""
    tags: list[Identifier] = Field(
        default_factory=list,
        description="e.g. mla_correct (counts as correct under multi-label accuracy), minor / explainable "
                    "(counted correct by MLA with minor / explainable errors as correct), problematic_only",
    )
    reference_column: str | None = Field(
        None, pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$", max_length=64,
        description="the column of the reference's per-model tables that counts this value "
                    "(e.g. num_same_superclass); used by 'study --reference-tables'",
    )


class Rule(Strict):
    """``when`` holds -> the sample gets value ``then``.  In an extending taxonomy a rule with an
    existing id replaces it; ``before`` / ``after`` place a new rule; ``remove: true`` drops one."""

    id: Identifier
    description: str = ""
    when: Predicate | None = None
    then: Identifier | None = None
    before: Identifier | None = None
    after: Identifier | None = None
    remove: bool = False

    @model_validator(mode="after")
    def _complete(self) -> Rule:
        if not self.remove and (self.when is None or self.then is None):
            raise ValueError("a rule needs 'when' and 'then' (or 'remove: true')")
        if self.before is not None and self.after is not None:
            raise ValueError("give at most one of 'before' and 'after'")
        return self


class Axis(Strict):
    values: list[Value] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)


class CaseSample(Strict):
    target: ClassRef
    labels: list[ClassRef]
    pred: ClassRef
    image: str | None = None
    problematic: bool = False


class Case(Strict):
    """An expected outcome: the sample must get these axis values (and, optionally, rule ids)."""

    name: str = ""
    sample: CaseSample
    expect: dict[Identifier, Identifier] = Field(
        description="axis -> value; 'rule' or '<axis>_rule' -> rule id that must fire"
    )


class TaxonomyDocument(Strict):
    """A taxonomy file after ``extends`` has been resolved."""

    schema_: Literal["errortaxa/v1"] = Field(alias="schema")
    name: Identifier
    version: str = "1"
    description: str = ""
    extends: str | None = None
    vocabulary: Literal["imagenet1k"] = "imagenet1k"
    resources: dict[Identifier, Resource] = Field(default_factory=dict)
    superclasses: dict[Identifier, Superclass] = Field(default_factory=dict)
    axes: dict[Identifier, Axis] = Field(min_length=1)
    cases: list[Case] = Field(default_factory=list)


AncestorMember.model_rebuild()
ClassesMember.model_rebuild()
AllMember.model_rebuild()
AnyMember.model_rebuild()
NotMember.model_rebuild()
Superclass.model_rebuild()
AllPair.model_rebuild()
AnyPair.model_rebuild()
NotPair.model_rebuild()
PredVsTarget.model_rebuild()
PredVsLabel.model_rebuild()
AllPred.model_rebuild()
AnyPred.model_rebuild()
NotPred.model_rebuild()
Rule.model_rebuild()
Axis.model_rebuild()
TaxonomyDocument.model_rebuild()


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a taxonomy file, for editors."""
    schema = TaxonomyDocument.model_json_schema(by_alias=True)
    schema["$id"] = "https://errortaxa.dev/schema/errortaxa-v1.json"
    schema["title"] = "ErrorTaxa taxonomy (errortaxa/v1)"
    return schema

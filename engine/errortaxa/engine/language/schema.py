"""The taxonomy language: a pydantic v2 schema over ``yaml.safe_load`` output.

A taxonomy holds superclasses (WordNet predicates over the vocabulary), named resources,
and one or more *axes*; each axis has values (categories) and an ordered rule list in which
the first rule that holds gives the sample its value.  Nothing here executes code.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from errortaxa.engine.features import ProviderDeclaration
from errortaxa.engine.language.fields import ClassRef, Identifier, Strict, SynsetRef
from errortaxa.engine.predicates.base import PairEntry, SampleEntry, single_key
from errortaxa.engine.predicates.registry import PAIR, SAMPLE
from pydantic import Discriminator, Field, Tag, model_validator

SCHEMA_VERSION = "errortaxa/v1"


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
        single_key,
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


# ---------------------------------------------------------------- predicates (from the registry)


def _tagged_union(entries: Iterable[SampleEntry[Any] | PairEntry[Any]], error_type: str, what: str) -> Any:
    """The discriminated union of the entries' models, each tagged by its key."""
    members = [Annotated[e.model, Tag(e.key)] for e in entries]
    keys = ", ".join(e.key for e in entries)
    return Annotated[
        functools.reduce(operator.or_, members),
        Discriminator(single_key, custom_error_type=error_type,
                      custom_error_message=f"a {what} needs exactly one of: {keys}"),
    ]


if TYPE_CHECKING:
    from errortaxa.engine.predicates.base import PairPredicate, Predicate
else:
    PairPredicate = _tagged_union(PAIR.values(), "pair_predicate", "class-pair predicate")
    Predicate = _tagged_union(SAMPLE.values(), "predicate", "predicate")

# every key that selects a predicate or a members expression (the loader drops pydantic's tag entries)
TAG_KEYS = frozenset({"ancestor", "classes", "all", "any", "not", "except", *SAMPLE, *PAIR})


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


def _rebuild() -> None:
    """Resolve the forward references: members expressions, the predicates' nested unions, rules."""
    for member in (AncestorMember, ClassesMember, AllMember, AnyMember, NotMember, Superclass):
        member.model_rebuild()
    unions = {"Predicate": Predicate, "PairPredicate": PairPredicate}
    entries: list[SampleEntry[Any] | PairEntry[Any]] = [*SAMPLE.values(), *PAIR.values()]
    for entry in entries:
        entry.model.model_rebuild(_types_namespace=unions)
    for model in (Rule, Axis, TaxonomyDocument):
        model.model_rebuild()


_rebuild()


def json_schema(providers: Mapping[str, ProviderDeclaration] | None = None) -> dict[str, Any]:
    """The JSON Schema of a taxonomy file, for editors. With the installed ``providers``' declarations,
    ``feature:`` lists their tests, each with the schema of its params (a provider that is not
    installed here stays allowed: its rules are not evaluated here)."""
    schema = TaxonomyDocument.model_json_schema(by_alias=True)
    schema["$id"] = "https://errortaxa.dev/schema/errortaxa-v1.json"
    schema["title"] = "ErrorTaxa taxonomy (errortaxa/v1)"
    if providers:
        defs = schema["$defs"]
        declared: list[dict[str, Any]] = []
        for name, decl in sorted(providers.items()):
            for test in decl.tests:
                params = test.params_schema()
                defs.update(params.pop("$defs", {}))
                declared.append({"description": f"{name}.{test.name}: {test.description}",
                                 "properties": {"provider": {"const": name}, "test": {"const": test.name},
                                                "params": params}})
        elsewhere = {"description": "a provider that is not installed here (its rules are not evaluated here)",
                     "properties": {"provider": {"not": {"enum": sorted(providers)}}}}
        defs["FeatureArgs"]["anyOf"] = [*declared, elsewhere]
    return schema

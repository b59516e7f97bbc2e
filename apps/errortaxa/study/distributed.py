"""Scale-out of studies on Ray (an optional extra: ``pip install 'errortaxa[ray]'``).

Models are split into contiguous chunks; each Ray task builds its own ImageSetClassifier for the
shared image set (put once in the object store), reads and tabulates its chunk, and returns the
per-model counts. The driver concatenates the chunks in order, so the table equals the
single-process one.

Feature providers travel as ``{provider name: config file}`` (paths readable on every node): each
task builds its providers through the registry (errortaxa.engine.providers.registry). The OOV
provider's tasks share the image and prompt embeddings through its on-disk cache (appends are
locked), so an image is embedded once for the whole study wherever its first pair is decided.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise

from errortaxa.engine import CompiledTaxonomy
from errortaxa.engine.cluster import import_ray, init_ray
from errortaxa.engine.inputs import Columns, ReadOptions
from errortaxa.engine.providers import registry
from errortaxa.engine.providers.factory import ProviderUnavailable
from errortaxa.study.models import ImageSet, ModelFile, read_model
from errortaxa.study.tabulate import Accumulator, Tabulator


def _chunk(taxonomy: CompiledTaxonomy, images: ImageSet, models: Sequence[ModelFile],
           image_list: Sequence[str] | None, pairs: bool, provider_configs: Mapping[str, str],
           columns: Columns | None = None) -> Accumulator:
    """One task: tabulate ``models`` (with the providers built here from ``provider_configs``),
    their files read with ``columns``."""
    try:
        providers = registry.build_all(provider_configs, taxonomy) if provider_configs else None
    except ProviderUnavailable as error:
        import socket

        raise ProviderUnavailable(f"on Ray worker {socket.gethostname()}: {error}") from None
    tab = Tabulator(taxonomy, images, image_list, pairs=pairs, providers=providers)
    acc = Accumulator()
    for model in models:
        tab.add(acc, model.name, read_model(model.path, images,
                                            ReadOptions(vocabulary=taxonomy.vocabulary, columns=columns or Columns())))
    if pairs:
        acc.pair_counts()  # sparse before it travels
    return acc


def run_on_ray(taxonomy: CompiledTaxonomy, images: ImageSet, models: Sequence[ModelFile],
               image_list: Sequence[str] | None, address: str, *, chunks: int | None = None,
               progress: bool | None = None, pairs: bool = False,
               provider_configs: Mapping[str, str] | None = None, columns: Columns | None = None) -> Accumulator:
    """The accumulated per-model counts of ``models``, computed as Ray tasks (each building its
    providers from ``provider_configs``, ``{provider name: config file}``)."""
    from tqdm import tqdm

    started = init_ray(address)
    ray = import_ray()
    try:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        n = max(1, min(len(models), chunks or 2 * cpus))
        bounds = [round(k * len(models) / n) for k in range(n + 1)]
        task = ray.remote(num_cpus=1)(_chunk)
        tax_ref, img_ref = ray.put(taxonomy), ray.put(images)
        configs = dict(provider_configs or {})
        refs = [task.remote(tax_ref, img_ref, list(models[a:b]), image_list, pairs, configs, columns)
                for a, b in pairwise(bounds) if b > a]
        order = {ref: k for k, ref in enumerate(refs)}
        results: dict[int, Accumulator] = {}
        pending = list(refs)
        with tqdm(total=len(models), desc="models (ray)", unit="model",
                  disable=None if progress is None else not progress) as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    try:
                        acc = ray.get(ref)
                    except ProviderUnavailable as error:  # Ray's task error is also an instance of the cause
                        cause = getattr(error, "cause", error)
                        raise ProviderUnavailable(str(cause)) from None
                    results[order[ref]] = acc
                    bar.update(len(acc.models))
        out = Accumulator()
        for k in range(len(refs)):
            out.extend(results[k])
        return out
    finally:
        if started:
            ray.shutdown()

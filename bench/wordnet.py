"""WordNet resource: cold load time of the snapshot, ImageNet vocabulary and class relations.

Each repeat runs in a fresh interpreter (nothing cached), timing ``WordNet.load()``,
``Vocabulary.imagenet()``, ``ancestor_incidence`` and ``class_relations`` separately.

    python bench/wordnet.py [--repeats 5]

Ends with one line ``RESULT {json}`` (seconds: medians over the repeats; wall clock, and the
process CPU time of the WordNet load, which is steadier on a busy machine).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from importlib import resources

from errortaxa.engine.knowledge.wordnet import SNAPSHOT

_CHILD = """
import json, time
t0 = time.perf_counter()
from errortaxa.engine.knowledge.wordnet import WordNet
from errortaxa.engine.knowledge.vocabulary import Vocabulary
from errortaxa.engine.knowledge.relations import ancestor_incidence, class_relations
t1 = time.perf_counter(); c1 = time.process_time(); wn = WordNet.load()
t2 = time.perf_counter(); c2 = time.process_time(); vocab = Vocabulary.imagenet()
t3 = time.perf_counter(); ancestor_incidence(wn, vocab)
t4 = time.perf_counter(); class_relations(wn, vocab)
t5 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "wordnet_load_s": t2 - t1, "wordnet_load_cpu_s": c2 - c1,
                  "vocabulary_s": t3 - t2,
                  "incidence_s": t4 - t3, "relations_s": t5 - t4}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    runs = []
    for _ in range(args.repeats):
        out = subprocess.run([sys.executable, "-c", _CHILD], check=True, capture_output=True, text=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    result: dict[str, object] = {k: round(statistics.median(r[k] for r in runs), 4) for k in runs[0]}
    result["snapshot_bytes"] = len(resources.files("errortaxa.engine.knowledge.data").joinpath(SNAPSHOT).read_bytes())
    result["repeats"] = args.repeats
    result["python"] = platform.python_version()
    result["machine"] = platform.machine()
    for k, v in result.items():
        print(f"{k:>16}: {v}")
    print("RESULT " + json.dumps({"bench": "wordnet", **result}))


if __name__ == "__main__":
    main()

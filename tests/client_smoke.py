"""Drive a running ErrorTaxa server with the client alone (run by tests/test_packaging.py with the
Python of a virtual environment that holds only the client distribution and its dependencies).

    python tests/client_smoke.py HOST:PORT

Prints the versions of grpcio and protobuf, then "ok"; exits non-zero on the first failure.
"""

from __future__ import annotations

import asyncio
import sys
import warnings

warnings.simplefilter("error")  # a warning from the generated code or the runtime fails the run


def main(target: str) -> int:
    import google.protobuf
    import grpc
    from errortaxa.client import AsyncClient, Client, InvalidArgument

    banned = sorted(m for m in sys.modules if m.split(".")[0] in ("pandas", "torch", "pydantic", "yaml"))
    assert not banned, banned
    print(f"grpcio {grpc.__version__} protobuf {google.protobuf.__version__}")
    with Client(target) as client:
        client.wait_until_serving(timeout=20)
        assert client.health() == "SERVING"
        active = client.active_taxonomy()
        assert active.ref in [t.ref for t in client.list_taxonomies()]
        result = client.classify(target=[250, 65], labels=[[250, 248], [65]], pred=[248, 65], records=True,
                                 summary=True)
        assert len(result) == 2 and result.category[1] == "correct", result.category
        assert len(result.records) == 2
        assert result.summary is not None and result.summary.samples == 2
        many = client.classify_many(target=list(range(40)), labels=[[i] for i in range(40)], pred=list(range(40)),
                                    batch_size=7)
        assert many.category == ["correct"] * 40
        assert client.explain(target=[250], labels=[[250]], pred=[248]).traces
        try:
            client.classify(target=[250], labels=[[250]], pred=[5000])
        except InvalidArgument as error:
            assert error.field == "samples.pred" and error.sample_index == 0, (error.field, error.sample_index)
        else:
            raise AssertionError("an out-of-range class was accepted")

    async def run() -> list[str | None]:
        async with AsyncClient(target) as aclient:
            parts = [r async for r in aclient.classify_stream([{"target": [1], "labels": [[1]], "pred": [2]}] * 3)]
            return [c for part in parts for c in part.category]

    assert len(asyncio.run(run())) == 3
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

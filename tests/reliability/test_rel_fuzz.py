"""The fuzz of every RPC, longer: hypothesis-generated messages (tests/fuzz_messages.py), and mutated
taxonomy uploads (tests/fuzz_taxonomies.py), against a real server; no INTERNAL, no UNKNOWN, and the
server still answers afterwards."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from conftest import scaled
from errortaxa.client import Client, ErrorTaxaError
from errortaxa.server import ServerConfig, build_server
from fuzz_messages import SERVICE, messages
from fuzz_taxonomies import child, mutations
from google.protobuf import message_factory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.reliability
BAD = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}


def _fuzz(channel: grpc.Channel, m: Any, examples: int, codes: Counter[str], wrong: list[str]) -> None:
    """``examples`` generated requests (lists of batches for a stream) to method ``m``."""
    reply = message_factory.GetMessageClass(m.output_type)
    path = f"/{SERVICE.full_name}/{m.name}"
    stream = channel.stream_stream(path, request_serializer=lambda r: r.SerializeToString(),
                                   response_deserializer=reply.FromString)
    unary = channel.unary_unary(path, request_serializer=lambda r: r.SerializeToString(),
                                response_deserializer=reply.FromString)
    strategy: Any = st.lists(messages(m.input_type), min_size=1, max_size=3) if m.client_streaming \
        else messages(m.input_type)

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(request: Any) -> None:
        try:
            if m.client_streaming:
                list(stream(iter(request), timeout=20))
            else:
                unary(request, timeout=20)
            code = grpc.StatusCode.OK
        except grpc.RpcError as exc:
            code = exc.code()
            if code in BAD:
                wrong.append(f"{m.name}: {code.name}: {exc.details()}")
        codes[code.name] += 1

    run()


def test_long_fuzz_of_every_rpc(tmp_path: Path, figures: dict[str, dict[str, Any]]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "targets.txt").write_text("1\n2\n3\n")
    running = build_server(ServerConfig(host="127.0.0.1", port=0, drain_seconds=0.0, grace_seconds=1.0,
                                        store=tmp_path / "store", data_dirs=(data,),
                                        datasets={"multilabel": str(data / "targets.txt")}))
    target = f"127.0.0.1:{running.port}"
    codes: Counter[str] = Counter()
    wrong: list[str] = []
    examples = scaled(400)
    started = time.monotonic()
    try:
        with grpc.insecure_channel(target) as channel:
            for m in SERVICE.methods:
                _fuzz(channel, m, examples, codes, wrong)
        with Client(target, retries=0) as c:  # a correct request still answers
            alive = c.classify(target=[250], labels=[[250]], pred=[248]).category == ["overlapping_classes"] \
                and c.health() == "SERVING"
    finally:
        running.stop(0)
    figures["fuzz"] = {"requests": sum(codes.values()), "rpcs": len(SERVICE.methods),
                       "wrong codes (INTERNAL/UNKNOWN)": len(wrong), "crashes": int(not alive),
                       "seconds": round(time.monotonic() - started, 1),
                       "codes": dict(sorted(codes.items()))}
    assert not wrong, wrong[:5]
    assert alive


def test_mutated_taxonomy_uploads(tmp_path: Path, figures: dict[str, dict[str, Any]]) -> None:
    """Mutated documents (tests/fuzz_taxonomies.py: a standalone one and one extending the built-in
    default) through ValidateTaxonomy, and every fourth through PutTaxonomy: never INTERNAL or
    UNKNOWN, and the server still answers afterwards."""
    running = build_server(ServerConfig(host="127.0.0.1", port=0, drain_seconds=0.0, grace_seconds=1.0,
                                        store=tmp_path / "store"))
    target = f"127.0.0.1:{running.port}"
    extension = child("imagenet/peychev2023", removed="non_prototypical", anchor="fine_grained",
                      last="model_failure")
    codes: Counter[str] = Counter()
    wrong: list[str] = []
    started = time.monotonic()

    @settings(max_examples=scaled(300), deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(mutations(extension))
    def run(docs: tuple[dict[str, Any], dict[str, Any]]) -> None:
        for doc in docs:
            text = yaml.safe_dump(doc)
            try:
                result = c.validate_taxonomy(text)
                codes["validated ok" if result.ok else "validated with problems"] += 1
                if sum(codes.values()) % 4 == 0:
                    c.put_taxonomy(text)
                    codes["put OK"] += 1
            except ErrorTaxaError as exc:
                codes[exc.code.name] += 1
                if exc.code in BAD:
                    wrong.append(f"{exc.code.name}: {exc}\n{text}")

    try:
        with Client(target, retries=0, timeout=30) as c:
            run()
            alive = c.classify(target=[250], labels=[[250]], pred=[248]).category == ["overlapping_classes"] \
                and c.health() == "SERVING"
    finally:
        running.stop(0)
    figures["taxonomy uploads"] = {
        "calls (Validate + Put)": sum(codes.values()), "wrong codes (INTERNAL/UNKNOWN)": len(wrong),
        "crashes": int(not alive), "seconds": round(time.monotonic() - started, 1),
        "outcomes": dict(sorted(codes.items()))}
    assert not wrong, wrong[:3]
    assert alive

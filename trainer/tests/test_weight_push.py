"""Choosing the weight transfer, and the control plane of vLLM's protocol over several
servers (HTTP recorders on 127.0.0.1 stand in for the servers' endpoints; no vLLM)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from verifiers_trainer.inference.vllm_client import VLLMClient
from verifiers_trainer.inference.weight_push import (
    FanOut,
    ServerControl,
    ServerOffer,
    WeightPush,
    WeightTransferSetupError,
    choose_transport,
    route_address,
)


def offer(transports, local=False, backend="vf_auto"):
    return ServerOffer("http://10.0.0.2:8000", backend, transports, world_size=2, local=local)


def test_auto_takes_shared_memory_for_a_local_server_even_with_cuda():
    assert choose_transport(offer(["vf_shm", "nccl"], local=True), "auto", trainer_cuda=True) == "vf_shm"
    assert choose_transport(offer(["vf_shm"], local=True), "auto", trainer_cuda=False) == "vf_shm"


def test_auto_takes_nccl_for_a_server_elsewhere():
    assert choose_transport(offer(["vf_shm", "nccl"], local=False), "auto", trainer_cuda=True) == "nccl"
    assert choose_transport(offer(["nccl"], backend="nccl"), "auto", trainer_cuda=True) == "nccl"


def test_errors_say_what_to_set():
    with pytest.raises(WeightTransferSetupError, match="cannot read files.*nccl needs CUDA on the server"):
        choose_transport(offer(["vf_shm"], local=False), "auto", trainer_cuda=True)
    with pytest.raises(WeightTransferSetupError, match="needs CUDA in the trainer process"):
        choose_transport(offer(["vf_shm", "nccl"], local=False), "auto", trainer_cuda=False)
    with pytest.raises(WeightTransferSetupError, match="not vf_shm: start it with vf-vllm"):
        choose_transport(offer(["nccl"], backend="nccl"), "vf_shm", trainer_cuda=True)
    with pytest.raises(WeightTransferSetupError, match="not on this machine"):
        choose_transport(offer(["vf_shm", "nccl"], local=False), "vf_shm", trainer_cuda=True)
    with pytest.raises(WeightTransferSetupError, match="offers no nccl"):
        choose_transport(offer(["vf_shm"], local=True), "nccl", trainer_cuda=True)
    with pytest.raises(ValueError, match="one of"):
        choose_transport(offer(["vf_shm"]), "ipc")


def test_route_address_of_a_local_server():
    assert route_address("http://127.0.0.1:8000") == "127.0.0.1"
    assert route_address("http://localhost:8000") == "127.0.0.1"


class Recorder:
    """An HTTP server on 127.0.0.1 that records the JSON bodies posted to it."""

    def __init__(self, offer_body=None, fail_path=None):
        self.posts: list[tuple[str, object]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/vf/weight_transfer" and offer_body is not None:
                    self._send(200, offer_body)
                elif self.path.startswith("/get_world_size"):
                    self._send(200, {"world_size": 2})
                else:
                    self._send(404, {"detail": "Not Found"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                recorder.posts.append((self.path, body))
                if self.path.lstrip("/") == fail_path:
                    self._send(500, {"error": "boom"})
                elif self.path == "/vf/weight_transfer/probe":
                    self._send(200, {"readable": False})
                else:
                    self._send(200, {"message": "ok"})

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.http.server_address[1]}"

    def stop(self):
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def recorders():
    made: list[Recorder] = []

    def make(**kwargs):
        made.append(Recorder(**kwargs))
        return made[-1]

    yield make
    for recorder in made:
        recorder.stop()


def test_one_nccl_group_across_servers_gets_each_its_rank_offset(recorders):
    """vLLM's NCCL engine sends one worker init payload (rank_offset 1); a group over
    several servers gives each server's workers their own ranks after the trainer's 0."""
    servers = [recorders(), recorders(), recorders()]
    clients = [VLLMClient(s.base_url) for s in servers]
    fan = FanOut([ServerControl(c.base_url, c._request, "nccl", rank_offset=o)
                  for c, o in zip(clients, (1, 3, 7), strict=True)])
    fan.init_weight_transfer_engine({"master_address": "10.0.0.1", "master_port": 29600,
                                     "rank_offset": 1, "world_size": 9, "packed": True})
    fan.start_weight_update()
    fan.update_weights({"names": ["w"], "dtype_names": ["bfloat16"], "shapes": [[2]]})
    fan.finish_weight_update()
    for server, offset in zip(servers, (1, 3, 7), strict=True):
        paths = [p for p, _ in server.posts]
        assert paths == ["/init_weight_transfer_engine", "/start_weight_update", "/update_weights",
                         "/finish_weight_update"]
        init = server.posts[0][1]["init_info"]
        assert init == {"transport": "nccl", "master_address": "10.0.0.1", "master_port": 29600,
                        "rank_offset": offset, "world_size": 9, "packed": True}


def test_a_failing_server_names_itself(recorders):
    good, bad = recorders(), recorders(fail_path="start_weight_update")
    fan = FanOut([ServerControl(s.base_url, VLLMClient(s.base_url)._request) for s in (good, bad)])
    with pytest.raises(RuntimeError, match=f"start_weight_update failed on {bad.base_url}.*HTTP 500"):
        fan.start_weight_update()


def test_a_server_elsewhere_without_nccl_is_refused_before_anything_is_sent(recorders):
    pytest.importorskip("vllm")
    # the probe answers "not readable": a vf_shm-only server on another machine
    remote = recorders(offer_body={"backend": "vf_auto", "transports": ["vf_shm"], "world_size": 2,
                                   "dtype": "bfloat16", "shm_dir": "/dev/shm"})
    push = WeightPush([VLLMClient(remote.base_url)], "auto")
    with pytest.raises(WeightTransferSetupError, match="cannot read files"):
        push.init()
    assert [p for p, _ in remote.posts] == ["/vf/weight_transfer/probe"]


def test_a_plain_vllm_server_without_an_offer_is_explained(recorders):
    pytest.importorskip("vllm")
    plain = recorders()  # answers 404 on /vf/weight_transfer and on /server_info
    with pytest.raises(WeightTransferSetupError, match="does not say how it receives weights"):
        WeightPush([VLLMClient(plain.base_url)], "auto").init()


def test_config_checks_the_server_settings(small_args):
    args = small_args(vllm_server_base_url="http://10.0.0.2:8000/v1, http://10.0.0.3:8000")
    from verifiers_trainer.inference.vllm_servers import base_urls_of

    assert base_urls_of(args) == ["http://10.0.0.2:8000", "http://10.0.0.3:8000"]
    assert base_urls_of(small_args(vllm_server_port=8001)) == ["http://127.0.0.1:8001"]
    with pytest.raises(ValueError, match="Give the vf-vllm servers once"):
        small_args(vllm_server_base_url="http://a:1", vllm_server_port=8001)
    with pytest.raises(ValueError, match="vllm_weight_transfer must be one of"):
        small_args(vllm_weight_transfer="ipc")
    with pytest.raises(ValueError, match="vllm_group_port"):
        small_args(vllm_group_port=0)
    with pytest.raises(ValueError, match="http://"):
        small_args(vllm_server_base_url="10.0.0.2:8000")


def test_the_nccl_source_casts_and_refuses_shards():
    pytest.importorskip("vllm")
    import torch

    from verifiers_trainer.inference.weight_transfer import NamedTensorSource

    source = NamedTensorSource(device="cpu", dtype=torch.bfloat16)
    weights = [("a.weight", torch.randn(3, 2)), ("steps", torch.tensor([4, 5]))]
    source.set(weights)
    meta = source.metadata()
    assert [(m.name, m.dtype, m.shape) for m in meta] == [
        ("a.weight", torch.bfloat16, (3, 2)), ("steps", torch.int64, (2,))]
    sent = list(source)  # what vLLM's engine broadcasts: matches metadata() element for element
    assert [(n, t.dtype) for n, t in sent] == [("a.weight", torch.bfloat16), ("steps", torch.int64)]
    assert torch.equal(sent[0][1], weights[0][1].to(torch.bfloat16))

    class Shard(torch.Tensor):
        def full_tensor(self):
            return self

    with pytest.raises(ValueError, match="is a shard"):
        source.set([("b", torch.zeros(2).as_subclass(Shard))])


def test_the_vf_auto_engine_builds_the_transport_the_trainer_names(tmp_path):
    pytest.importorskip("vllm")
    from types import SimpleNamespace

    import torch

    from verifiers_trainer.inference.weight_transfer import (
        AutoWeightTransferEngine,
        SharedMemoryWeightTransferEngine,
    )

    config = SimpleNamespace(parallel_config=SimpleNamespace(), model_config=SimpleNamespace())
    engine = AutoWeightTransferEngine(SimpleNamespace(backend="vf_auto"), config,
                                      torch.device("cpu"), torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"one of \['vf_shm'\]"):
        engine.parse_init_info({"directory": str(tmp_path)})  # no transport named
    with pytest.raises(ValueError, match=r"one of \['vf_shm'\].*'nccl'"):
        engine.parse_init_info({"transport": "nccl", "master_address": "127.0.0.1"})  # no CUDA here
    with pytest.raises(RuntimeError, match="init_weight_transfer_engine first"):
        engine.start_weight_update()
    info = engine.parse_init_info({"transport": "vf_shm", "directory": str(tmp_path)})
    engine.init_transfer_engine(info)
    assert isinstance(engine.delegate, SharedMemoryWeightTransferEngine)
    assert engine.delegate.directory == tmp_path
    with pytest.raises(ValueError, match="not a folder"):
        engine.init_transfer_engine(engine.parse_init_info(
            {"transport": "vf_shm", "directory": str(tmp_path / "missing")}))

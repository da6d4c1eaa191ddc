"""Fixtures of the curation tests: a small synthetic world, `transformers serve` on loopback, and a
fault-injecting proxy that can stand in front of it (`make_proxy`).

The server runs a tiny random-weight Qwen2 language model with the project's byte-level BPE
tokenizer (text only: the reasoning stage needs nothing else), started once per session.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import hashlib
import http.client
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest

from videorft.engine.config import SynthConfig


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def easy_world(tmp_path_factory) -> Path:
    """24 training clips of the tiny pipeline's world (colour of the large shape, direction)."""
    from videorft.loaders.synth.world import generate_world

    root = tmp_path_factory.mktemp("curate_world")
    generate_world(SynthConfig(output_dir=str(root), num_train=24, num_test=2, seed=0, width=112, height=112,
                               fps=8, duration_s=3.0, difficulty="easy", max_objects=2,
                               question_kinds=["colour_large", "direction"], cot_style="brief"))
    return root


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory, bpe_tokenizer) -> Path:
    """A saved tiny Qwen2ForCausalLM with the BPE tokenizer and its chat template."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(bpe_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=8192,
                         eos_token_id=bpe_tokenizer.eos_token_id, pad_token_id=bpe_tokenizer.pad_token_id,
                         tie_word_embeddings=True)
    path = tmp_path_factory.mktemp("tiny_lm")
    Qwen2ForCausalLM(config).save_pretrained(path)
    bpe_tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def lm_server(tiny_lm_dir, tmp_path_factory):
    """`transformers serve` with the tiny model on a loopback port; yields its /v1 base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    exe = Path(sys.executable).parent / "transformers"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with open(log, "w") as out:
        proc = subprocess.Popen([str(exe), "serve", str(tiny_lm_dir), "--host", "127.0.0.1", "--port", str(port),
                                 "--device", "cpu", "--dtype", "float32"], stdout=out, stderr=subprocess.STDOUT,
                                env=env)
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"transformers serve exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
            break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail(f"transformers serve did not come up: {log.read_text()[-2000:]}")
    yield {"url": f"http://127.0.0.1:{port}/v1", "model": str(tiny_lm_dir)}
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


# ---- the fault-injecting proxy ------------------------------------------------------------------

class FaultProxy:
    """A loopback proxy to an OpenAI-compatible server; the first requests get the faults in `plan`.

    Faults: "429" (with Retry-After), "500", "stall" (no answer until the client gives up), "malformed"
    (200 with a body that is not JSON), "drop" (connection closed without an answer); later requests
    are forwarded. Each request is logged with its body digest, arrival time and fault.
    """

    def __init__(self, upstream: str, plan: list[str], retry_after_s: int = 1, stall_s: float = 4.0):
        target = urlparse(upstream)
        self.upstream = (target.hostname, target.port)
        self.plan = list(plan)
        self.retry_after_s, self.stall_s = retry_after_s, stall_s
        self.log: list[dict] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with proxy.lock:
                    fault = proxy.plan.pop(0) if proxy.plan else "ok"
                    proxy.log.append({"digest": hashlib.sha256(body).hexdigest(), "t": time.monotonic(),
                                      "fault": fault})
                proxy.serve(self, fault, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, handler: BaseHTTPRequestHandler, fault: str, body: bytes) -> None:
        """Answer one request according to `fault`."""
        if fault == "drop":
            handler.connection.shutdown(2)
            handler.close_connection = True
            return
        if fault == "stall":
            time.sleep(self.stall_s)
            handler.close_connection = True
            return
        if fault in ("429", "500"):
            payload = b'{"error": "injected"}'
            handler.send_response(int(fault))
            if fault == "429":
                handler.send_header("Retry-After", str(self.retry_after_s))
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        conn.request("POST", handler.path, body, {"content-type": "application/json"})
        reply = conn.getresponse()
        payload = reply.read()
        status = reply.status
        conn.close()
        if fault == "malformed":
            payload, status = b'{"choices": [{"message": ', 200
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def make_proxy():
    """Starts FaultProxy instances and stops them after the test."""
    proxies = []

    def start(upstream: str, plan: list[str], **kwargs) -> FaultProxy:
        proxies.append(FaultProxy(upstream, plan, **kwargs))
        return proxies[-1]

    yield start
    for proxy in proxies:
        proxy.close()

"""Benchmark: encrypted ``ping`` and ``eoa:signMessage`` on one server worker, for every HTTP stack.

For each available stack (uvicorn with h11 or httptools, asyncio or uvloop; granian), the benchmark
starts the reference (``vault-reference serve``, one worker, temporary data dir, free loopback port)
and beside it a trivial ASGI app on the same stack (bench/_apps.py), both pinned to one core, and
drives them with ``wrk`` pinned to another core. Per stack it measures, with the same wrk, Lua
script (bench/wrk_cycle.lua) and connections:

* GET /health on the reference (informational: the old floor's t_health);
* t_post_ping: the very bytes of the ping requests (same path, headers, envelopes) POSTed to the
  trivial app, which reads the body and answers a captured real ping reply (same size, same
  headers): what the server and the ASGI call cost for such a request, with no Vault work;
* encrypted ping: ``--bodies`` distinct pre-sealed 100-byte ``ping`` requests, cycled;
* t_post_sign: the same for the signMessage requests and reply;
* eoa:signMessage: pre-sealed ``eoa:signMessage`` requests (admin key auth, one EOA created
  for the run, distinct messages of one size), cycled;
* crypto-only ceiling (informational): the same ping requests, sealed to the trivial app's own
  key, answered by the request's seven primitives and a constant reply (bench/_apps.py): the most
  any Vault code could reach on this stack.

In-process, on the server's core while the servers are idle, with this thread's CPU clock:
t_crypto (bench/_common.py: 3 X25519, 2 HKDF-SHA256, 2 XChaCha20-Poly1305, at the ping's and at
the signMessage's sizes) and t_sign (eth-account's ``sign_message`` of one of the messages).

Targets, for the stack ``vault-reference serve`` uses by default (``--http auto --loop auto``):
ping >= 0.90 x ``1/(t_post_ping + t_crypto_ping)``; signMessage >= 0.85 x
``1/(t_post_sign + t_crypto_sign + t_sign)``; and no available uvicorn stack the CLI can select
has more than ``--fastest-margin`` more encrypted-ping throughput per core than the default. Each
stack's absolute figures (req/s, server CPU per request, ping per core) are printed side by side:
a ratio must never pick a slower stack. Exit 0 on PASS, 1 on FAIL, 2 when it cannot run.

Noise: all servers run for the whole benchmark; each trial visits every stack (rotating which goes
first) and, within a stack, every kind (in an order that keeps each ratio's two runs adjacent,
reversed every other trial), then times t_crypto and t_sign for that stack. A trial's ratio uses
only that trial's runs and floors, so the quantities compared share the machine's state; the
verdict is the median over trials. Server CPU time (schedstat of the server's process tree)
is read around every run: when a server was less than 90 % busy in some run (wrk starved by other
jobs on its core), wall-clock rates do not measure it, and the ratios are computed from CPU time
per request instead (``--verdict auto``; ``wall``/``cpu`` force one).

Correctness: the Lua script checks every answer's status and body; before the load, three of each
kind of envelope are posted from Python and opened: pongs that echo the message, and signatures
that recover (eth-account) to the EOA's address.

    python bench/bench_ping.py [--stacks h11,httptools,httptools+uvloop,granian] [--trials 5]
                               [--duration 1] [--connections 4] [--server-cpu 0] [--load-cpu 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import _common as common

PING_TARGET = 0.90
SIGN_TARGET = 0.85
FASTEST_MARGIN = 0.05  # a selectable stack this much faster per core than the default fails the run
SATURATED = 0.90  # server busy fraction above which wrk's req/s measures the worker itself
TRIAL_BATCHES = 5  # in-process batches of each floor timed after each trial
SIGN_MESSAGE_CHARS = 64
HERE = Path(__file__).resolve().parent
LUA = HERE / "wrk_cycle.lua"
ENVELOPE_PATH = "/api/v1/enclave"
CRYPTO_ONLY_PATH = "/bench/crypto-only"  # bench/_apps.py
# name: (label, which server, which envelopes). Runs go in this order, reversed every other trial,
# so the quantities a ratio compares are always timed one right after the other.
KINDS = {
    "health": ("GET /health", "reference", None),
    "ceiling": ("crypto-only ping (ceiling)", "trivial", "ceiling"),
    "ping_post": ("trivial POST, ping's bytes", "trivial", "ping"),
    "ping": ("encrypted ping", "reference", "ping"),
    "sign_post": ("trivial POST, sign's bytes", "trivial", "sign"),
    "sign": ("eoa:signMessage", "reference", "sign"),
}


@dataclass(frozen=True)
class Stack:
    key: str
    server: str  # "uvicorn" or "granian"
    http: str  # uvicorn's --http; "-" for granian
    loop: str
    needs: tuple[str, ...]

    def available(self) -> bool:
        return all(importlib.util.find_spec(module) for module in self.needs)

    def describe(self) -> str:
        if self.server == "uvicorn":
            return f"uvicorn --http {self.http} --loop {self.loop}"
        return f"granian --interface asgi --workers 1 --runtime-threads 1 --loop {self.loop}"


STACKS = {
    stack.key: stack
    for stack in (
        Stack("h11", "uvicorn", "h11", "asyncio", ()),
        Stack("h11+uvloop", "uvicorn", "h11", "uvloop", ("uvloop",)),
        Stack("httptools", "uvicorn", "httptools", "asyncio", ("httptools",)),
        Stack("httptools+uvloop", "uvicorn", "httptools", "uvloop", ("httptools", "uvloop")),
        Stack("granian", "granian", "-", "uvloop", ("granian", "uvloop")),
    )
}
DEFAULT_STACKS = "h11,httptools,httptools+uvloop,granian"


def cli_default_stack() -> str:
    """What ``vault-reference serve`` runs without --http/--loop here (reference/host/edge.py
    prefers httptools when importable; uvicorn's loop "auto" prefers uvloop)."""
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "+uvloop" if importlib.util.find_spec("uvloop") else ""
    return http + loop


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(url: str, body: bytes | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (granian serves from a child process; the reference's
    embedded KMS is a child too, idle under this load)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


class Server:
    """A server process pinned to one CPU; its CPU time is read from /proc."""

    def __init__(self, name: str, command: list[str], cpu: int, env: dict[str, str] | None = None):
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [arg.replace("{port}", str(self.port)) for arg in command]
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(["taskset", "-c", str(cpu), *command], stdout=self.log,
                                        stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                        start_new_session=True)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.output()}")
            try:
                http(self.url + "/health", timeout=1.0)  # any HTTP answer: it is serving
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.output()}")

    def cpu_seconds(self) -> float:
        """CPU time of the process tree so far, all threads (schedstat: ns resolution)."""
        total = 0
        for pid in process_tree(self.process.pid):
            try:
                tasks = list(Path(f"/proc/{pid}/task").iterdir())
            except OSError:
                continue
            for task in tasks:
                try:
                    total += int((task / "schedstat").read_text().split()[0])
                except (OSError, ValueError, IndexError):
                    pass
        return total / 1e9

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def stop(self) -> None:
        tree = process_tree(self.process.pid)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid in tree[1:]:  # children it did not stop itself (granian's worker, a KMS)
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        self.log.close()


def reference_server(stack: Stack, cpu: int, data_dir: str) -> Server:
    if stack.server == "uvicorn":
        command = [sys.executable, "-m", "reference.cli", "serve", "--host", "127.0.0.1", "--port", "{port}",
                   "--data-dir", data_dir, "--http", stack.http, "--loop", stack.loop]
        return Server(f"{stack.key} reference", command, cpu)
    return Server(f"{stack.key} reference", granian_command(stack, "_apps:granian_reference"), cpu,
                  {"VAULT_DATA_DIR": data_dir})


def trivial_server(stack: Stack, cpu: int, replies_file: str) -> Server:
    if stack.server == "uvicorn":
        command = [sys.executable, str(HERE / "_apps.py"), "--port", "{port}", "--replies", replies_file,
                   "--http", stack.http, "--loop", stack.loop]
        return Server(f"{stack.key} trivial", command, cpu)
    return Server(f"{stack.key} trivial", granian_command(stack, "_apps:granian_trivial"), cpu,
                  {"VAULT_BENCH_REPLIES": replies_file})


def granian_command(stack: Stack, target: str) -> list[str]:
    return [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", "{port}",
            "--workers", "1", "--runtime-threads", "1", "--loop", stack.loop, "--no-ws", "--no-access-log",
            "--log-level", "warning", "--factory", "--working-dir", str(HERE), target]


def call(server: Server, enclave_public: bytes, request: dict) -> dict:
    """One encrypted operation from Python, opened with the client secret."""
    secret, body = common.seal_request(enclave_public, json.dumps(request, separators=(",", ":")).encode())
    status, answer = http(server.url + ENVELOPE_PATH, body)
    if status != 200:
        raise RuntimeError(f"{request['operation']} answered {status}: {answer[:200]!r}")
    reply = json.loads(common.open_reply(secret, answer))
    if reply.get("success") is not True:
        raise RuntimeError(f"{request['operation']} failed: {reply}")
    return reply["data"]


def sign_plaintext(admin_key: str, address: str, index: int) -> bytes:
    message = f"vault bench message {index:06d} ".ljust(SIGN_MESSAGE_CHARS, "x")
    request = {"operation": "eoa:signMessage", "auth": {"adminKey": admin_key},
               "options": {"from": address, "message": message}}
    return json.dumps(request, separators=(",", ":")).encode()


@dataclass
class StackRun:
    """One stack's servers, envelopes and measurements."""

    stack: Stack
    reference: Server
    trivial: Server | None = None
    files: dict[str, Path] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    runs: dict[str, list[dict]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    ceiling_secrets: list[bytes] = field(default_factory=list)  # client secrets of the crypto-only envelopes
    floors: list[dict[str, float]] = field(default_factory=list)  # t_crypto, t_sign right after each trial's runs

    def prepare(self, args, workdir: Path) -> dict[str, tuple[bytes, bytes]]:
        """Seal this server's envelopes, check a few replies, start the trivial app with real
        replies. Returns a (request, reply) plaintext pair of each kind, for the floors."""
        from eth_account import Account
        from eth_account.messages import encode_defunct

        server = self.reference
        enclave_public = bytes.fromhex(json.loads(http(server.url + ENVELOPE_PATH)[1])["publicKey"])
        account = call(server, enclave_public, {"operation": "serviceAccount:create", "options": {}})
        admin_key = account["adminKey"]
        address = call(server, enclave_public, {"operation": "eoa:create", "auth": {"adminKey": admin_key},
                                                "options": {"metadata": {}}})["address"]
        replies: dict[str, bytes] = {}
        plaintexts: dict[str, tuple[bytes, bytes]] = {}
        for kind in ("ping", "sign"):
            sealed = []
            for i in range(args.bodies):
                plaintext = (common.ping_plaintext(args.size, tag=f"{i:05d}-") if kind == "ping"
                             else sign_plaintext(admin_key, address, i))
                sealed.append((plaintext, *common.seal_request(enclave_public, plaintext)))
            if len({len(body) for _, _, body in sealed}) != 1:
                raise RuntimeError(f"{kind} envelopes differ in size")
            # The replies are real encrypted answers, not errors: open a few with the client secrets.
            for plaintext, secret, body in sealed[:3]:
                status, answer = http(server.url + ENVELOPE_PATH, body)
                if status != 200:
                    raise RuntimeError(f"{self.stack.key}: {kind} answered {status}: {answer[:200]!r}")
                reply = json.loads(common.open_reply(secret, answer))
                options = json.loads(plaintext)["options"]
                if kind == "ping":
                    good = reply.get("success") is True and reply["data"]["pong"] == options["message"]
                else:
                    signature = bytes.fromhex(reply["data"]["signature"]) if reply.get("success") else b""
                    good = bool(signature) and Account.recover_message(
                        encode_defunct(text=options["message"]), signature=signature) == address
                if not good:
                    raise RuntimeError(f"{self.stack.key}: {kind} reply is wrong: {reply}")
            replies[kind] = answer
            plaintexts[kind] = (sealed[2][0], common.open_reply(sealed[2][1], answer))
            self.sizes[kind] = len(sealed[0][2])
            self.files[kind] = workdir / f"{kind}.jsonl"
            self.files[kind].write_bytes(b"\n".join(body for _, _, body in sealed) + b"\n")
        if self.sizes["ping"] == self.sizes["sign"]:
            raise RuntimeError("ping and signMessage envelopes have the same size: the trivial app tells them apart by size")
        # The crypto-only ceiling: the same ping requests sealed to the trivial app's own key.
        crypto_secret = os.urandom(32)
        crypto_public = common.sodium.crypto_scalarmult_base(crypto_secret)
        ceiling = []
        for i in range(args.bodies):
            secret, body = common.seal_request(crypto_public, common.ping_plaintext(args.size, tag=f"{i:05d}-"))
            self.ceiling_secrets.append(secret)
            ceiling.append(body)
        self.files["ceiling"] = workdir / "ceiling.jsonl"
        self.files["ceiling"].write_bytes(b"\n".join(ceiling) + b"\n")
        app_file = workdir / "trivial.json"
        app_file.write_text(json.dumps({"replies": {str(self.sizes[k]): replies[k].decode() for k in replies},
                                        "crypto_secret": crypto_secret.hex(),
                                        "crypto_reply": plaintexts["ping"][1].hex()}))
        self.trivial = trivial_server(self.stack, args.server_cpu, str(app_file))
        return plaintexts

    def check_trivial(self) -> None:
        """The crypto-only ceiling answers real envelopes that open to the constant reply."""
        body = self.files["ceiling"].read_bytes().split(b"\n")[0]
        status, answer = http(self.trivial.url + CRYPTO_ONLY_PATH, body)
        if status != 200 or not common.open_reply(self.ceiling_secrets[0], answer).startswith(b'{"success":true'):
            raise RuntimeError(f"{self.stack.key}: the crypto-only app answered {status}: {answer[:200]!r}")

    def mode(self, kind: str) -> tuple[Server, list[str]]:
        _, which, envelopes = KINDS[kind]
        server = self.reference if which == "reference" else self.trivial
        path = CRYPTO_ONLY_PATH if kind == "ceiling" else ENVELOPE_PATH
        return server, (["health"] if envelopes is None else ["post", path, str(self.files[envelopes])])


def run_wrk(args, server: Server, mode: list[str], duration: float) -> dict:
    command = [
        "taskset", "-c", str(args.load_cpu), "wrk", "-t1", f"-c{args.connections}",
        f"-d{max(1, round(duration))}s", "--timeout", "5s", "-s", str(LUA), server.url, "--", *mode,
    ]
    cpu_before = server.cpu_seconds()
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 30)
    server_cpu = server.cpu_seconds() - cpu_before
    line = next((l for l in done.stdout.splitlines() if l.startswith("VAULT-BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result = {k: int(v) for k, v in (item.split("=") for item in line.split()[1:])}
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    # Server CPU per request: what the worker costs per request whatever else ran on its core.
    result["cpu_per_request"] = server_cpu / max(1, result["requests"])
    result["utilisation"] = server_cpu / (result["duration_us"] / 1e6)
    return result


def problems(result: dict) -> list[str]:
    found = [f"{result[k]} {k}" for k in ("badstatus", "unexpected", "connect", "read", "write", "status", "timeout")
             if result[k]]
    if result["responses"] == 0:
        found.append("no response at all")
    return found


def on_cpu(cpu: int, fn):
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        return fn()
    finally:
        os.sched_setaffinity(0, previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", default=DEFAULT_STACKS,
                        help=f"comma-separated, of {', '.join(STACKS)}; 'all' for every one (default {DEFAULT_STACKS}); "
                             "the CLI's default stack is always added")
    parser.add_argument("--trials", type=int, default=5, help="trials: one run of each kind on each stack (default 5)")
    parser.add_argument("--duration", type=float, default=1, help="seconds per wrk run (default 1)")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections, every kind (default 4)")
    parser.add_argument("--bodies", type=int, default=256, help="distinct pre-sealed envelopes per kind (default 256)")
    parser.add_argument("--size", type=int, default=common.PING_REQUEST_BYTES, help="ping plaintext bytes")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    parser.add_argument("--verdict", choices=["auto", "wall", "cpu"], default="auto",
                        help="ratios from wrk's req/s (wall), from server CPU per request (cpu), or wall when "
                             "every run of the stack had the server saturated, else cpu (auto, default)")
    parser.add_argument("--ping-target", type=float, default=PING_TARGET)
    parser.add_argument("--sign-target", type=float, default=SIGN_TARGET)
    parser.add_argument("--fastest-margin", type=float, default=FASTEST_MARGIN)
    args = parser.parse_args(argv)

    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        print(f"bench_ping: cannot run, {' and '.join(missing)} not found on PATH. Install the load "
              "generator first (Debian/Ubuntu: apt-get install -y wrk; taskset is in util-linux).", file=sys.stderr)
        return 2
    cpus = os.sched_getaffinity(0)
    if not {args.server_cpu, args.load_cpu} <= cpus or args.server_cpu == args.load_cpu:
        print(f"bench_ping: cannot run, needs two distinct usable CPUs (server {args.server_cpu}, "
              f"wrk {args.load_cpu}); this process may use {sorted(cpus)}.", file=sys.stderr)
        return 2
    default_key = cli_default_stack()
    wanted = list(STACKS) if args.stacks == "all" else [k.strip() for k in args.stacks.split(",") if k.strip()]
    unknown = [k for k in wanted if k not in STACKS]
    if unknown:
        parser.error(f"unknown stacks {unknown}; known: {', '.join(STACKS)}")
    if default_key not in wanted:
        wanted.insert(0, default_key)
    stacks = [STACKS[k] for k in wanted if STACKS[k].available()]
    skipped = [k for k in wanted if not STACKS[k].available()]

    from eth_account import Account
    from eth_account.messages import encode_defunct

    sys.setrecursionlimit(min(sys.getrecursionlimit(), 1000))  # py_ecc raises it on import; not needed here

    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="vault-bench-") as tmp:
        workdir = Path(tmp)
        stack_runs: list[StackRun] = []
        try:
            for stack in stacks:
                Path(workdir, stack.key).mkdir()
                stack_runs.append(StackRun(stack, reference_server(stack, args.server_cpu,
                                                                   str(workdir / stack.key / "data"))))
            for run in stack_runs:
                run.reference.wait_ready()
            for run in stack_runs:
                plaintexts = run.prepare(args, workdir / run.stack.key)
            for run in stack_runs:
                run.trivial.wait_ready()
                run.check_trivial()

            # The floors at the real sizes (the same on every stack), from the last stack's requests.
            ping_floor = common.CryptoFloor.for_messages(*plaintexts["ping"])
            sign_floor = common.CryptoFloor.for_messages(*plaintexts["sign"])
            sign_message = json.loads(plaintexts["sign"][0])["options"]["message"]
            signing_key = os.urandom(31) + b"\x01"  # a valid secp256k1 key (below the order) with near certainty
            floors = {
                "crypto_ping": ping_floor.once,
                "crypto_sign": sign_floor.once,
                "sign": lambda: Account.sign_message(encode_defunct(text=sign_message), signing_key),
            }
            floor_samples = {name: [] for name in floors}

            def time_floors() -> dict[str, float]:
                samples = on_cpu(args.server_cpu, lambda: common.interleaved(floors, TRIAL_BATCHES, 0.05))
                for name in floors:
                    floor_samples[name].extend(samples[name])
                return {name: common.median(samples[name]) for name in floors}

            time_floors()  # warm-up of the floors, also counted in the overall medians
            for run in stack_runs:  # warm-up runs, not counted (but checked)
                for kind in KINDS:
                    server, mode = run.mode(kind)
                    warm = run_wrk(args, server, mode, 1)
                    if problems(warm):
                        raise RuntimeError(f"{run.stack.key} {kind} warm-up: {', '.join(problems(warm))}")
            kinds = list(KINDS)
            for trial in range(args.trials):
                shift = trial % len(stack_runs)
                for run in stack_runs[shift:] + stack_runs[:shift]:
                    for kind in (kinds if trial % 2 == 0 else kinds[::-1]):
                        server, mode = run.mode(kind)
                        run.runs[kind].append(run_wrk(args, server, mode, args.duration))
                    # This stack's floors for this trial, right after its runs (the servers are idle).
                    run.floors.append(time_floors())
        finally:
            for run in stack_runs:
                run.reference.stop()
                if run.trivial is not None:
                    run.trivial.stop()

    args.load_average = (load_at_start, os.getloadavg()[0])
    return report(args, stack_runs, floor_samples, default_key, skipped)


def report(args, stack_runs: list[StackRun], floor_samples, default_key: str, skipped) -> int:
    floors = {name: common.median(samples) for name, samples in floor_samples.items()}
    print(f"bench_ping: 1 server worker per stack on CPU {args.server_cpu}, wrk -t1 -c{args.connections} on CPU "
          f"{args.load_cpu}; {args.trials} trials of {args.duration:g}s runs, every stack and kind in each trial; "
          f"load average {args.load_average[0]:.1f} at the start, {args.load_average[1]:.1f} at the end "
          f"({os.cpu_count()} CPUs; above ~1 other jobs share the cores)")
    print(f"  ping {args.size} B plaintext, {stack_runs[0].sizes['ping']} B envelope; signMessage "
          f"{stack_runs[0].sizes['sign']} B envelope; {args.bodies} distinct envelopes of each, cycled")
    print(f"  in-process, CPU clock, server's core (median of {len(floor_samples['sign'])} batches): "
          f"t_crypto ping {common.us(floors['crypto_ping']).strip()}, t_crypto signMessage "
          f"{common.us(floors['crypto_sign']).strip()}, t_sign (eth-account) {common.us(floors['sign']).strip()}")
    if skipped:
        print(f"  not installed, skipped: {', '.join(skipped)}")
    bad: list[str] = []
    summary = []
    for run in stack_runs:
        stack, runs = run.stack, run.runs
        saturated = min(r["utilisation"] for kind in runs for r in runs[kind]) >= SATURATED
        verdict = args.verdict if args.verdict != "auto" else ("wall" if saturated else "cpu")
        default = " [the CLI's default here]" if stack.key == default_key else ""
        print(f"\n  {stack.key}: {stack.describe()}{default}")
        print("    kind                          wall: best req/s (median)     |  server CPU/req  busy (min)")
        for kind, (label, _, _) in KINDS.items():
            rps = [r["rps"] for r in runs[kind]]
            cpu = common.median([r["cpu_per_request"] for r in runs[kind]])
            print(f"    {label:28s} {max(rps):12.0f} ({common.median(rps):6.0f})           |  {common.us(cpu)}"
                  f"  {min(r['utilisation'] for r in runs[kind]):4.0%}")
            bad += [f"{stack.key} {kind} run {i}: {', '.join(problems(r))}" for i, r in enumerate(runs[kind])
                    if problems(r)]

        def per_request(kind: str, trial: int) -> float:
            r = runs[kind][trial]
            return 1 / r["rps"] if verdict == "wall" else r["cpu_per_request"]

        trial_floors = run.floors
        trials = range(len(trial_floors))
        ping_ratios = [(per_request("ping_post", t) + trial_floors[t]["crypto_ping"]) / per_request("ping", t)
                       for t in trials]
        sign_ratios = [(per_request("sign_post", t) + trial_floors[t]["crypto_sign"] + trial_floors[t]["sign"])
                       / per_request("sign", t) for t in trials]
        old_ratios = [(per_request("health", t) + trial_floors[t]["crypto_ping"]) / per_request("ping", t)
                      for t in trials]
        ceiling_ratios = [(per_request("ping_post", t) + trial_floors[t]["crypto_ping"]) / per_request("ceiling", t)
                          for t in trials]
        ping_ratio, sign_ratio = common.median(ping_ratios), common.median(sign_ratios)
        ping_cpu = common.median([r["cpu_per_request"] for r in runs["ping"]])
        sign_cpu = common.median([r["cpu_per_request"] for r in runs["sign"]])
        post_cpu = common.median([r["cpu_per_request"] for r in runs["ping_post"]])
        print(f"    ratios from {verdict}{'' if saturated else ' (a server was < 90 % busy in some run)'}:")
        print(f"    ping / 1/(t_post + t_crypto)          {ping_ratio:6.3f}  trials "
              f"{' '.join(f'{r:.3f}' for r in ping_ratios)}  (target >= {args.ping_target:.2f})")
        print(f"    signMessage / 1/(t_post + t_crypto + t_sign) {sign_ratio:6.3f}  trials "
              f"{' '.join(f'{r:.3f}' for r in sign_ratios)}  (target >= {args.sign_target:.2f})")
        print(f"    crypto-only ceiling / 1/(t_post + t_crypto) {common.median(ceiling_ratios):6.3f}  trials "
              f"{' '.join(f'{r:.3f}' for r in ceiling_ratios)}  (the most Vault code could reach here; informational)")
        ping_vs_ceiling = [per_request("ceiling", t) / per_request("ping", t) for t in trials]
        print(f"    ping / crypto-only ceiling                  {common.median(ping_vs_ceiling):6.3f}  trials "
              f"{' '.join(f'{r:.3f}' for r in ping_vs_ceiling)}  (informational)")
        print(f"    ping / 1/(t_health + t_crypto), the old floor (informational) {common.median(old_ratios):6.3f}")
        print(f"    ping's server CPU above t_post + t_crypto: "
              f"{common.us(ping_cpu - post_cpu - floors['crypto_ping']).strip()}")
        summary.append({"key": stack.key, "ping_wall": max(r["rps"] for r in runs["ping"]), "ping_core": 1 / ping_cpu,
                        "sign_core": 1 / sign_cpu, "ping_ratio": ping_ratio, "sign_ratio": sign_ratio,
                        "ceiling_ratio": common.median(ceiling_ratios),
                        "selectable": stack.server == "uvicorn"})

    print("\n  side by side (per core = 1 / server CPU per request; what one worker on one core serves)")
    print("    stack               ping req/s  ping/core  signMessage/core  ping ratio  sign ratio  ceiling ratio")
    for row in sorted(summary, key=lambda row: -row["ping_core"]):
        mark = "  <- default" if row["key"] == default_key else ""
        print(f"    {row['key']:18s} {row['ping_wall']:10.0f} {row['ping_core']:10.0f} {row['sign_core']:17.0f}"
              f" {row['ping_ratio']:11.3f} {row['sign_ratio']:11.3f} {row['ceiling_ratio']:14.3f}{mark}")
    fastest = max(summary, key=lambda row: row["ping_core"])
    print(f"  highest encrypted-ping throughput per core: {fastest['key']} ({fastest['ping_core']:.0f} req/s)")

    if bad:
        print("FAIL: some answers were not 200 encrypted replies: " + "; ".join(bad))
        return 1
    chosen = next(row for row in summary if row["key"] == default_key)
    selectable = max((row for row in summary if row["selectable"]), key=lambda row: row["ping_core"])
    checks = [
        (chosen["ping_ratio"] >= args.ping_target,
         f"{default_key}: encrypted ping = {chosen['ping_ratio']:.0%} of 1/(t_post + t_crypto), "
         f"target >= {args.ping_target:.0%}"),
        (chosen["sign_ratio"] >= args.sign_target,
         f"{default_key}: eoa:signMessage = {chosen['sign_ratio']:.0%} of 1/(t_post + t_crypto + t_sign), "
         f"target >= {args.sign_target:.0%}"),
        (selectable["ping_core"] <= chosen["ping_core"] * (1 + args.fastest_margin),
         f"default stack {default_key} vs the fastest the CLI can select ({selectable['key']}): "
         f"{chosen['ping_core']:.0f} vs {selectable['ping_core']:.0f} ping/core (margin {args.fastest_margin:.0%})"),
    ]
    if fastest["key"] != selectable["key"]:
        print(f"  note: {fastest['key']} is faster per core but `vault-reference serve` cannot run it")
    for ok, text in checks:
        print(f"{common.verdict(ok)}: {text}")
    return 0 if all(ok for ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())

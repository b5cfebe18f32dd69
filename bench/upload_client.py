#!/usr/bin/env python3
"""Benchmark of issue #4: this project's tus client vs curl sending the same bytes, one run.

Same machine, same run, loopback, same file from the page cache, same classroom server
process. After one untimed warm-up round, rounds interleave the two in alternating order
(client, curl, then curl, client, ...) so background noise and order effects hit both; the
median of each is reported, with each run's wall and CPU seconds (uploader and server).

- client: `recorder upload FILE --any-file --no-wait` queues the file (its fingerprint: size,
  mtime, SHA-256), then `recorder queue run` uploads it (the upload crate: creation, chunked
  PATCHes streamed from the file with the cheapest checksum the server offers, chunks growing
  from CHUNK_MIB to MAX_CHUNK_MIB while each takes under a second, the media entry's SHA-256
  compared with the fingerprint), timed from launch to exit; its peak RSS is the process's
  ru_maxrss.
  Queueing is timed and printed apart: it happens once, when a recording ends.
- curl (the baseline): the same bytes in one request with no chunking or checksums: a tus
  creation POST then one PATCH carrying the whole file to the same server.
- curl PUT to a plain sink (`bench_sink`: no protocol, hashing or database) is printed too, as
  the ceiling of this machine's loopback and disk.

Then one more upload through a TCP proxy that cuts the connection once, mid-chunk: the bytes
the proxy carried beyond the file's size are what was sent again (target: at most one chunk).

usage: bench/upload_client.py SERVER_BIN RECORDER_BIN SINK_BIN [SIZE_MIB=1024] [ROUNDS=5] [CHUNK_MIB=8] [MAX_CHUNK_MIB=64]
Needs ~2x SIZE_MIB free in $BENCH_DIR (default: the system temp directory).
"""
import base64, json, os, re, resource, shutil, socket, statistics, subprocess, sys, tempfile, threading, time, urllib.request


def arg(i, name, default, lo, hi):
    """Argument i as a whole number in lo..=hi; anything else stops with a one-line message."""
    if len(sys.argv) <= i:
        return default
    try:
        v = int(sys.argv[i])
    except ValueError:
        v = None
    if v is None or not lo <= v <= hi:
        sys.exit(f"upload_client.py: {name} must be a whole number from {lo} to {hi}, not {sys.argv[i]!r}")
    return v


if len(sys.argv) < 4:
    sys.exit(__doc__.strip().splitlines()[-2])
server_bin, recorder_bin, sink_bin = sys.argv[1:4]
SIZE_MIB = arg(4, "SIZE_MIB", 1024, 1, 1 << 16)
ROUNDS = arg(5, "ROUNDS", 5, 1, 100)
CHUNK_MIB = arg(6, "CHUNK_MIB", 8, 1, 64)
MAX_CHUNK_MIB = arg(7, "MAX_CHUNK_MIB", 64, CHUNK_MIB, 256)
size = SIZE_MIB << 20
work = tempfile.mkdtemp(prefix="upload-client-bench-", dir=os.environ.get("BENCH_DIR"))
quiet = dict(os.environ, RUST_LOG="warn")


def start(cmd):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=quiet)
    line = p.stdout.readline()
    m = re.search(r"listening on (http://\S+)", line)
    if not m:
        p.kill()
        raise SystemExit(f"could not start {cmd[0]}: {line!r}")
    return p, m.group(1)


def settle():
    """Starts every timed run from the same state: the previous run's dirty pages written out.
    Without it, whichever run came next paid for the previous one's writeback (seen here:
    the same upload at 213 and at 627 MiB/s depending on what ran before)."""
    os.sync()
    time.sleep(0.5)


def cpu_now():
    """CPU seconds used so far by finished child processes and by the classroom server: where a
    run's time went on two cores, measured around each run."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(f"/proc/{server.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return ru.ru_utime + ru.ru_stime, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_since(before):
    now = cpu_now()
    return [round(now[0] - before[0], 3), round(now[1] - before[1], 3)]


def timed_rss(cmd, env):
    """Runs cmd to the end; returns (wall seconds, peak RSS MiB)."""
    settle()
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.monotonic() - t0
    err = p.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd[0]} failed ({os.waitstatus_to_exitcode(status)}): {err.strip()[-400:]}")
    return dt, ru.ru_maxrss / 1024.0


def curl(args):
    hdr = os.path.join(work, "headers.txt")
    settle()
    t0 = time.monotonic()
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-D", hdr, "-w", "%{http_code}", "-H", "Expect:"] + args,
                         capture_output=True, text=True, check=True)
    return time.monotonic() - t0, int(out.stdout), open(hdr).read()


def meta(d):
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in d.items())


class CuttingProxy:
    """Forwards one port to another; closes the first connection that has carried `cut_after`
    bytes upstream. Counts every byte sent upstream."""

    def __init__(self, target_port, cut_after):
        self.target, self.cut_after, self.up, self.cut = target_port, cut_after, 0, False
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            c, _ = self.sock.accept()
            s = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self.pipe, args=(c, s, True), daemon=True).start()
            threading.Thread(target=self.pipe, args=(s, c, False), daemon=True).start()

    def pipe(self, src, dst, upstream):
        try:
            while True:
                b = src.recv(1 << 20)
                if not b:
                    break
                if upstream:
                    with self.lock:
                        self.up += len(b)
                        cut = not self.cut and self.up >= self.cut_after
                        self.cut = self.cut or cut
                    if cut:
                        break
                dst.sendall(b)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


data_dir = os.path.join(work, "data")
admin = lambda *a: subprocess.run([server_bin, "--data-dir", data_dir, *a], check=True, capture_output=True, text=True,
                                  env=dict(os.environ, CLASSROOM_PASSWORD="bench-password")).stdout
admin("add-user", "--username", "bench", "--display-name", "Bench")
channel = admin("add-channel", "--name", "Bench", "--manager", "bench").strip()
out = admin("add-live-room", "--channel", channel, "--name", "Bench room", "--creator", "bench", "--breakout", "B1")
room = re.search(r"live room (\S+)", out).group(1)
breakout = re.search(r"breakout room (\S+)", out).group(1)

src = os.path.join(work, "src.bin")
with open(src, "wb") as f:
    for _ in range(SIZE_MIB):
        f.write(os.urandom(1 << 20))
subprocess.run(["cat", src], stdout=subprocess.DEVNULL, check=True)  # into the page cache

server, base = start([server_bin, "--data-dir", data_dir, "serve", "--addr", "127.0.0.1:0",
                      "--max-upload-size", str(64 << 30)])
sink_dir = os.path.join(work, "sink"); os.makedirs(sink_dir)
sink, sink_base = start([sink_bin, "127.0.0.1:0", sink_dir])
req = urllib.request.Request(base + "/api/sessions", data=json.dumps({"username": "bench", "password": "bench-password"}).encode(),
                             headers={"content-type": "application/json"})
token = json.load(urllib.request.urlopen(req))["token"]
auth = ["-H", f"Authorization: Bearer {token}", "-H", "Tus-Resumable: 1.0.0"]
client_env = dict(quiet, RECORDER_TOKEN=token)


def clear_media():
    # Keep the disk from filling up over rounds: stored files are not needed after timing.
    for f in os.listdir(os.path.join(data_dir, "media")):
        os.remove(os.path.join(data_dir, "media", f))


def client_upload(server_url, n):
    """Queues the file (fingerprint: size, mtime, SHA-256), then uploads it; returns
    (queue seconds, upload seconds, peak RSS MiB of the uploading process)."""
    queue = os.path.join(work, f"queue-{n}.json")
    enq, _ = timed_rss([recorder_bin, "upload", src, "--any-file", "--server", server_url, "--live-room", room,
                        "--breakout-room", breakout, "--title", f"client #{n}", "--queue", queue, "--no-wait"],
                       client_env)
    up, rss = timed_rss([recorder_bin, "queue", "run", "--queue", queue, "--chunk-mib", str(CHUNK_MIB),
                         "--max-chunk-mib", str(MAX_CHUNK_MIB), "--max-retry-wait", "2"], client_env)
    return enq, up, rss


enqueue_s, client_s, client_rss, curl_s, sink_s = [], [], [], [], []
# [uploader's CPU s, server's CPU s] per run: the client's includes queueing the file.
client_cpu, curl_cpu = [], []


def run_client(r):
    c0 = cpu_now()
    enq, dt, rss = client_upload(base, r)
    cpu = cpu_since(c0)
    clear_media()
    return enq, dt, rss, cpu


def run_curl(r):
    _, st, hdrs = curl(["-X", "POST", *auth, "-H", f"Upload-Length: {size}", "-H",
                        "Upload-Metadata: " + meta({"live_room": room, "breakout_room": breakout, "title": f"curl #{r}",
                                                    "started_at": "2025-01-01T00:00:00Z", "duration_ms": "0"}), base + "/files/"])
    assert st == 201, (st, hdrs)
    loc = re.search(r"(?im)^location:\s*(\S+)", hdrs).group(1)
    c0 = cpu_now()
    dt, st, hdrs = curl(["-X", "PATCH", *auth, "-H", "Content-Type: application/offset+octet-stream",
                         "-H", "Upload-Offset: 0", "-T", src, base + loc])
    assert st == 204, (st, hdrs)
    cpu = cpu_since(c0)
    clear_media()
    return dt, cpu


def run_sink():
    dt, st, _ = curl(["-T", src, sink_base + "/sink"])
    assert st == 200, st
    for f in os.listdir(sink_dir):
        os.remove(os.path.join(sink_dir, f))
    return dt


# An untimed warm-up round first: the server's first upload pays one-time costs (its
# allocator's arenas, SQLite's cache), and without it whichever ran first looked slowest (the
# client's first round was the slowest in every run of this script). The order then alternates
# between rounds, so neither side always runs on the other's leftovers.
run_client("warm-up"); run_curl("warm-up"); run_sink()
for r in range(ROUNDS):
    for side in (("client", "curl") if r % 2 == 0 else ("curl", "client")):
        if side == "client":
            enq, dt, rss, cpu = run_client(r)
            enqueue_s.append(enq); client_s.append(dt); client_rss.append(rss); client_cpu.append(cpu)
        else:
            dt, cpu = run_curl(r)
            curl_s.append(dt); curl_cpu.append(cpu)
    sink_s.append(run_sink())

# One cut connection, a third of the way in and not on a chunk boundary.
cut_at = size // 3 + (CHUNK_MIB << 19)
proxy = CuttingProxy(int(base.rsplit(":", 1)[1]), cut_at)
_, cut_dt, cut_rss = client_upload(f"http://127.0.0.1:{proxy.port}", "cut")
resent = proxy.up - size
assert proxy.cut, "the proxy never cut the connection"

server_rss = None
with open(f"/proc/{server.pid}/status") as f:
    for l in f:
        if l.startswith("VmHWM:"):
            server_rss = int(l.split()[1]) / 1024.0
for p in (server, sink):
    p.terminate(); p.wait()
shutil.rmtree(work, ignore_errors=True)

ct, kt, st = statistics.median(client_s), statistics.median(curl_s), statistics.median(sink_s)
et = statistics.median(enqueue_s)
print(f"file: {SIZE_MIB} MiB over loopback, {ROUNDS} rounds after a warm-up, interleaved in alternating order, medians;"
      f" client chunks {CHUNK_MIB} MiB growing to {MAX_CHUNK_MIB} MiB")
print(f"  client upload (queue run: chunked PATCHes, a checksum per chunk): {SIZE_MIB / ct:7.0f} MiB/s")
print(f"  curl, one tus PATCH to the same server:                          {SIZE_MIB / kt:7.0f} MiB/s")
print(f"  ratio client / curl:                                             {kt / ct:7.2f}   (target >= 0.9)")
print(f"  queueing the file first (size, mtime, SHA-256; done once, when a recording ends): {et:.2f} s;"
      f" queue + upload vs curl: {kt / (ct + et):.2f}")
print(f"  curl PUT to a plain sink (ceiling, for reference):    {SIZE_MIB / st:7.0f} MiB/s")
peak = max(client_rss + [cut_rss])
print(f"  client peak RSS:                                      {peak * 1.048576:7.1f} MB = {peak:.1f} MiB (target <= 64 MB)")
print(f"  after one cut connection: resent {resent / (1 << 20):.2f} MiB (target <= one chunk: the one in flight,"
      f" at most {MAX_CHUNK_MIB} MiB),"
      f" upload took {cut_dt:.1f} s")
print(f"  server peak RSS: {server_rss:.1f} MiB")
print("runs (s):", json.dumps({"enqueue": [round(x, 3) for x in enqueue_s], "client": [round(x, 3) for x in client_s], "curl": [round(x, 3) for x in curl_s],
                               "sink": [round(x, 3) for x in sink_s]}))
med = lambda runs, i: statistics.median(r[i] for r in runs)
print(f"CPU seconds, medians (uploader / server): client {med(client_cpu, 0):.2f} (of which queueing ~"
      f"{et:.2f} wall) / {med(client_cpu, 1):.2f};"
      f" curl {med(curl_cpu, 0):.2f} / {med(curl_cpu, 1):.2f}")
print("runs (CPU s, [uploader, server]):", json.dumps({"client": client_cpu, "curl": curl_cpu}))

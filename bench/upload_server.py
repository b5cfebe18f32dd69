#!/usr/bin/env python3
"""Benchmark: a tus upload through the classroom server vs the same bytes in one plain PUT.

Same machine, same run, loopback, same client (curl, whole file in one request, no
`Expect: 100-continue`), same file from the page cache. Rounds alternate (tus, sink, tus, sink)
so background noise hits both; the median of each is reported.

- tus: POST /files/ creates the upload, then one PATCH carries the whole file. The server
  checks the token and offset, hashes every byte (SHA-256 for the media entry), writes it,
  fsyncs, records the offset and files the media entry.
- sink: `bench_sink` (crates/classroom-server/examples) streams a PUT body to a file the same
  way (bounded channel, blocking writer, 1 MiB writes, fsync at the end) with no protocol,
  hashing, database or auth.

Peak RSS is the server's VmHWM (/proc/PID/status) after all its uploads of one size, from a
fresh server process per size.
usage: bench/upload_server.py SERVER_BIN SINK_BIN SIZE_MIB[,SIZE_MIB...] [ROUNDS]
"""
import base64, json, os, re, shutil, statistics, subprocess, sys, tempfile, time, urllib.request

server_bin, sink_bin = sys.argv[1], sys.argv[2]
sizes = [int(s) for s in sys.argv[3].split(",")]
ROUNDS = int(sys.argv[4]) if len(sys.argv) > 4 else 3
work = tempfile.mkdtemp(prefix="classroom-bench-", dir=os.environ.get("BENCH_DIR"))


def start(cmd, env=None):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    line = p.stdout.readline()
    m = re.search(r"listening on (http://\S+)", line)
    if not m:
        p.kill()
        raise SystemExit(f"could not start {cmd[0]}: {line!r}")
    return p, m.group(1)


def hwm_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for l in f:
            if l.startswith("VmHWM:"):
                return int(l.split()[1]) / 1024.0
    return float("nan")


def curl(args):
    """Runs curl; returns (seconds, http status, response headers text)."""
    hdr = os.path.join(work, "headers.txt")
    # Start every timed request from the same state: the previous run's dirty pages written
    # out, or the next run pays for them (seen in the client benchmark: 213 vs 627 MiB/s).
    os.sync()
    time.sleep(0.5)
    t0 = time.monotonic()
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-D", hdr, "-w", "%{http_code}", "-H", "Expect:"] + args,
                         capture_output=True, text=True, check=True)
    dt = time.monotonic() - t0
    return dt, int(out.stdout), open(hdr).read()


def meta(d):
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in d.items())


data_dir = os.path.join(work, "data")
run = lambda *a: subprocess.run([server_bin, "--data-dir", data_dir, *a], check=True, capture_output=True, text=True,
                                env=dict(os.environ, CLASSROOM_PASSWORD="bench-password")).stdout
run("add-user", "--username", "bench", "--display-name", "Bench")
channel = run("add-channel", "--name", "Bench", "--manager", "bench").strip()
out = run("add-live-room", "--channel", channel, "--name", "Bench room", "--creator", "bench", "--breakout", "B1")
room = re.search(r"live room (\S+)", out).group(1)
breakout = re.search(r"breakout room (\S+)", out).group(1)

results = []
for size_mib in sizes:
    src = os.path.join(work, f"src-{size_mib}.bin")
    with open(src, "wb") as f:
        for _ in range(size_mib):
            f.write(os.urandom(1 << 20))
    size = size_mib << 20
    subprocess.run(["cat", src], stdout=subprocess.DEVNULL, check=True)  # into the page cache
    env = dict(os.environ, RUST_LOG="warn")
    server, base = start([server_bin, "--data-dir", data_dir, "serve", "--addr", "127.0.0.1:0",
                          "--max-upload-size", str(64 << 30)], env)
    sink_dir = os.path.join(work, "sink"); os.makedirs(sink_dir, exist_ok=True)
    sink, sink_base = start([sink_bin, "127.0.0.1:0", sink_dir], env)
    body = json.dumps({"username": "bench", "password": "bench-password"}).encode()
    req = urllib.request.Request(base + "/api/sessions", data=body, headers={"content-type": "application/json"})
    token = json.load(urllib.request.urlopen(req))["token"]
    auth = ["-H", f"Authorization: Bearer {token}", "-H", "Tus-Resumable: 1.0.0"]
    tus_s, sink_s = [], []
    for r in range(ROUNDS):
        _, st, hdrs = curl(["-X", "POST", *auth, "-H", f"Upload-Length: {size}", "-H",
                            "Upload-Metadata: " + meta({"live_room": room, "breakout_room": breakout, "title": f"bench {size_mib} MiB #{r}",
                                                        "started_at": "2025-01-01T00:00:00Z", "duration_ms": "0"}), base + "/files/"])
        assert st == 201, (st, hdrs)
        loc = re.search(r"(?im)^location:\s*(\S+)", hdrs).group(1)
        dt, st, hdrs = curl(["-X", "PATCH", *auth, "-H", "Content-Type: application/offset+octet-stream",
                             "-H", "Upload-Offset: 0", "-T", src, base + loc])
        assert st == 204 and re.search(r"(?im)^media-entry:", hdrs), (st, hdrs)
        tus_s.append(dt)
        dt, st, _ = curl(["-T", src, sink_base + "/sink"])
        assert st == 200, st
        sink_s.append(dt)
        # Keep the disk from filling up over rounds: media files are not needed after timing.
        for f in os.listdir(os.path.join(data_dir, "media")):
            os.remove(os.path.join(data_dir, "media", f))
    rss_server, rss_sink = hwm_mib(server.pid), hwm_mib(sink.pid)
    for p in (server, sink):
        p.terminate(); p.wait()
    os.remove(src)
    tus_t, sink_t = statistics.median(tus_s), statistics.median(sink_s)
    results.append(dict(size_mib=size_mib, tus_mib_s=size_mib / tus_t, sink_mib_s=size_mib / sink_t,
                        ratio=sink_t / tus_t, server_peak_rss_mib=rss_server, sink_peak_rss_mib=rss_sink,
                        tus_runs_s=[round(x, 3) for x in tus_s], sink_runs_s=[round(x, 3) for x in sink_s]))

shutil.rmtree(work, ignore_errors=True)
print(f"{'size':>9} {'tus MiB/s':>10} {'PUT sink MiB/s':>15} {'ratio':>6} {'server peak RSS':>16} {'sink peak RSS':>14}")
for r in results:
    print(f"{r['size_mib']:>5} MiB {r['tus_mib_s']:>10.0f} {r['sink_mib_s']:>15.0f} {r['ratio']:>6.2f} "
          f"{r['server_peak_rss_mib']:>12.1f} MiB {r['sink_peak_rss_mib']:>10.1f} MiB")
print("runs (s):", json.dumps([{k: r[k] for k in ('size_mib', 'tus_runs_s', 'sink_runs_s')} for r in results]))
print("target: ratio >= 0.8; server peak RSS flat and under 100 MiB")

#!/usr/bin/env python3
"""Benchmark: `recorder record` vs the `ffmpeg` command line doing the same recording.

Same machine, same run, same animated 1920x1080 stage on a private Xvfb, same room tone from a
private PulseAudio null sink, same encoder settings (libx264 veryfast CRF 23, keyframe every
2 s, AAC 128 kb/s, fragmented MP4). Runs are interleaved (ours, ffmpeg, ours, ffmpeg, ...) so
background noise hits both alike; medians are reported.

Prints CPU seconds per recorded second and their ratio, dropped frames, peak RSS, start latency
(launch -> first frame) and stop latency (SIGINT -> process exit with the file closed).
Usage: bench/record_vs_ffmpeg.py RECORDER_BIN STAGE_BIN [SECONDS] [ROUNDS]
"""
import json, os, re, resource, select, signal, statistics, subprocess, sys, tempfile, time

recorder, stage_bin = sys.argv[1], sys.argv[2]
SECS = float(sys.argv[3]) if len(sys.argv) > 3 else 20.0
ROUNDS = int(sys.argv[4]) if len(sys.argv) > 4 else 2
W, H = 1920, 1080

work = tempfile.mkdtemp(prefix="brec-bench-")
runtime = os.path.join(work, "run"); os.makedirs(runtime, mode=0o700)
env = dict(os.environ, XDG_RUNTIME_DIR=runtime, PULSE_SERVER=f"unix:{runtime}/pulse/native", HOME=work)
env.pop("WAYLAND_DISPLAY", None)

r, w = os.pipe()
xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", f"{W}x{H}x24", "-nolisten", "tcp"],
                        pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
os.close(w)
num = b""
while not num.endswith(b"\n"):
    num += os.read(r, 1)
env["DISPLAY"] = ":" + num.decode().strip()
pulse = subprocess.Popen(["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1",
                          "--load=module-native-protocol-unix",
                          "--load=module-null-sink sink_name=stage norewinds=1"],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for _ in range(100):
    if os.path.exists(f"{runtime}/pulse/native"): break
    time.sleep(0.05)
subprocess.run(["pactl", "set-default-sink", "stage"], env=env, check=True)
stage = subprocess.Popen([stage_bin, f"{W}x{H}+0+0", "100000", "--tone", "stage:1000"], env=env)
time.sleep(1.0)


def run(cmd, first_frame_pattern):
    """Runs cmd for SECS, then SIGINT; returns (cpu_s, start_s, stop_s, output)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, start = b"", None
    os.set_blocking(p.stdout.fileno(), False)
    while time.monotonic() - t0 < SECS:
        ready, _, _ = select.select([p.stdout], [], [], 0.01)
        if ready:
            chunk = p.stdout.read() or b""
            out += chunk
            if start is None and re.search(first_frame_pattern, out):
                start = time.monotonic() - t0
    t_stop = time.monotonic()
    p.send_signal(signal.SIGINT)
    while p.poll() is None:
        ready, _, _ = select.select([p.stdout], [], [], 0.005)
        if ready:
            out += p.stdout.read() or b""
    stop = time.monotonic() - t_stop
    out += p.stdout.read() or b""
    # Children are reaped one at a time, so the difference is this child's CPU time.
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, start, stop, out.decode(errors="replace")


# The recorder's libx264 options (encode::Settings::bounded_memory_x264); the ffmpeg CLI is
# measured twice: with the issue's literal command (x264's defaults) and with these options too,
# so the CPU ratio compares the same encoder work.
X264 = f"threads={min(max(os.cpu_count() or 2, 1), 4)}:sliced-threads=1:rc-lookahead=3:sync-lookahead=0:b-pyramid=none"


def ffmpeg_cmd(out, extra=()):
    return ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-stats_period", "0.02",
            "-f", "x11grab", "-framerate", "30", "-video_size", f"{W}x{H}", "-i", env["DISPLAY"],
            "-f", "pulse", "-i", "stage.monitor",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", "60", "-pix_fmt", "yuv420p", *extra,
            "-c:a", "aac", "-b:a", "128k", "-movflags", "frag_keyframe+empty_moov", out]


def recorder_cmd(out, json_summary=True):
    return [recorder, "record", "--audio", "room", "--min-free-mb", "64", *(["--json"] if json_summary else []), "-o", out]


PROGRAMS = {
    "recorder": lambda out: recorder_cmd(out),
    "ffmpeg": lambda out: ffmpeg_cmd(out),
    "ffmpeg+x264opts": lambda out: ffmpeg_cmd(out, ["-x264-params", X264]),
}
results = {name: [] for name in PROGRAMS}
for i in range(ROUNDS):
    for name, make in PROGRAMS.items():
        f = os.path.join(work, f"{name}{i}.mp4")
        if name == "recorder":
            cpu, start, stop, out = run(make(f), rb"First frame captured")
            line = [l for l in out.splitlines() if l.startswith("{")]
            summ = json.loads(line[-1]) if line else {}
            dur = summ.get("duration_secs", SECS)
            results[name].append(dict(cpu=cpu / dur, start=start, stop=stop, dropped=summ.get("frames_dropped"),
                                      frames=summ.get("frames_encoded"), bytes=os.path.getsize(f)))
        else:
            cpu, start, stop, out = run(make(f), rb"frame=\s*[1-9]")
            frames = [int(x) for x in re.findall(r"frame=\s*(\d+)", out)]
            drops = [int(x) for x in re.findall(r"drop=\s*(\d+)", out)]
            probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", f],
                                   capture_output=True, text=True).stdout.strip()
            dur = float(probe or SECS)
            results[name].append(dict(cpu=cpu / dur, start=start, stop=stop, dropped=drops[-1] if drops else None,
                                      frames=frames[-1] if frames else None, bytes=os.path.getsize(f)))

# Peak RSS per program, from the kernel's high-water mark (VmHWM) just before SIGINT, in
# separate runs (RUSAGE_CHILDREN's maxrss is a maximum over all children, not per program).
def hwm(cmd):
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(SECS)
    peak = 0
    try:
        with open(f"/proc/{p.pid}/status") as f:
            for l in f:
                if l.startswith("VmHWM:"):
                    peak = int(l.split()[1]) / 1024.0
    finally:
        p.send_signal(signal.SIGINT); p.wait()
    return peak

rss = {name: hwm(make(os.path.join(work, f"rss-{name}.mp4"))) for name, make in PROGRAMS.items()}

for p in (stage, pulse, xvfb):
    p.terminate(); p.wait()

def med(name, key):
    vals = [r[key] for r in results[name] if r[key] is not None]
    return statistics.median(vals) if vals else float("nan")

names = list(PROGRAMS)
print(f"\nRecording a {W}x{H} animated stage + room tone for {SECS:.0f} s, {ROUNDS} interleaved rounds (medians)")
print(f"recorder and ffmpeg+x264opts use x264 options {X264}; ffmpeg is the issue's command line\n")
print(f"{'':26}" + "".join(f"{n:>17}" for n in names))
rows = [("CPU s per recorded s", "cpu", "{:17.3f}"), ("frames in file", "frames", "{:17.0f}"),
        ("dropped frames", "dropped", "{:17.0f}"), ("file size (MB)", "bytes", None),
        ("start latency (s)", "start", "{:17.3f}"), ("stop latency (s)", "stop", "{:17.3f}")]
for label, key, fmt in rows:
    if key == "bytes":
        print(f"{label:26}" + "".join(f"{med(n, key) / 1e6:17.2f}" for n in names))
    else:
        print(f"{label:26}" + "".join(fmt.format(med(n, key)) for n in names))
print(f"{'peak RSS (MB)':26}" + "".join(f"{rss[n]:17.1f}" for n in names))
for other in names[1:]:
    print(f"\nCPU ratio recorder/{other}: {med('recorder','cpu') / med(other,'cpu'):.3f}  (target <= 1.0)"
          f"   RSS ratio: {rss['recorder'] / rss[other]:.2f}")
print("per run:", json.dumps({n: [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items() if k in ("cpu", "dropped")} for r in results[n]] for n in names}))
print(f"targets: no dropped frames, peak RSS <= 150 MB, stop latency <= 0.5 s")
print(f"files kept in {work}")

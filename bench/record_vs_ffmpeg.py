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


results = {"recorder": [], "ffmpeg": []}
for i in range(ROUNDS):
    a = os.path.join(work, f"ours{i}.mp4")
    cpu, start, stop, out = run([recorder, "record", "--audio", "room", "--min-free-mb", "64", "--json", "-o", a],
                                   rb"First frame captured")
    line = [l for l in out.splitlines() if l.startswith("{")]
    summ = json.loads(line[-1]) if line else {}
    dur = summ.get("duration_secs", SECS)
    results["recorder"].append(dict(cpu=cpu / dur, start=start, stop=stop, dropped=summ.get("frames_dropped"),
                                    lagged=summ.get("frames_lagged"), frames=summ.get("frames_encoded"), file=a))
    b = os.path.join(work, f"ffmpeg{i}.mp4")
    cpu, start, stop, out = run(["ffmpeg", "-hide_banner", "-nostdin", "-y", "-stats_period", "0.02",
                                    "-f", "x11grab", "-framerate", "30", "-video_size", f"{W}x{H}", "-i", env["DISPLAY"],
                                    "-f", "pulse", "-i", "stage.monitor",
                                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", "60", "-pix_fmt", "yuv420p",
                                    "-c:a", "aac", "-b:a", "128k", "-movflags", "frag_keyframe+empty_moov", b],
                                   rb"frame=\s*[1-9]")
    frames = [int(x) for x in re.findall(r"frame=\s*(\d+)", out)]
    drops = [int(x) for x in re.findall(r"drop=\s*(\d+)", out)]
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", b],
                           capture_output=True, text=True).stdout.strip()
    dur = float(probe or SECS)
    results["ffmpeg"].append(dict(cpu=cpu / dur, start=start, stop=stop, dropped=drops[-1] if drops else None,
                                  frames=frames[-1] if frames else None, file=b))

# Peak RSS per program, from the kernel's high-water mark (VmHWM) just before SIGINT, in
# separate runs (RUSAGE_CHILDREN's maxrss is a maximum over all children, not per program).
def hwm(cmd):
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(min(SECS, 8.0))
    peak = 0
    try:
        with open(f"/proc/{p.pid}/status") as f:
            for l in f:
                if l.startswith("VmHWM:"):
                    peak = int(l.split()[1]) / 1024.0
    finally:
        p.send_signal(signal.SIGINT); p.wait()
    return peak

rss_ours = hwm([recorder, "record", "--audio", "room", "--min-free-mb", "64", "-o", os.path.join(work, "rss.mp4")])
rss_ff = hwm(["ffmpeg", "-nostdin", "-y", "-f", "x11grab", "-framerate", "30", "-video_size", f"{W}x{H}", "-i", env["DISPLAY"],
              "-f", "pulse", "-i", "stage.monitor", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", "60",
              "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-movflags", "frag_keyframe+empty_moov",
              os.path.join(work, "rss-ff.mp4")])

for p in (stage, pulse, xvfb):
    p.terminate(); p.wait()

def med(name, key):
    vals = [r[key] for r in results[name] if r[key] is not None]
    return statistics.median(vals) if vals else float("nan")

print(f"\nRecording a {W}x{H} animated stage + room tone for {SECS:.0f} s, {ROUNDS} interleaved rounds (medians)\n")
print(f"{'':28}{'recorder':>12}{'ffmpeg CLI':>12}")
print(f"{'CPU s per recorded s':28}{med('recorder','cpu'):12.3f}{med('ffmpeg','cpu'):12.3f}")
print(f"{'frames in file':28}{med('recorder','frames'):12.0f}{med('ffmpeg','frames'):12.0f}")
print(f"{'dropped frames':28}{med('recorder','dropped'):12.0f}{med('ffmpeg','dropped'):12.0f}")
print(f"{'lagged frames':28}{med('recorder','lagged'):12.0f}{'-':>12}")
print(f"{'peak RSS (MB)':28}{rss_ours:12.1f}{rss_ff:12.1f}")
print(f"{'start latency (s)':28}{med('recorder','start'):12.3f}{med('ffmpeg','start'):12.3f}")
print(f"{'stop latency (s)':28}{med('recorder','stop'):12.3f}{med('ffmpeg','stop'):12.3f}")
print(f"\nCPU ratio recorder/ffmpeg: {med('recorder','cpu') / med('ffmpeg','cpu'):.3f}  (target <= 1.0)")
print(f"targets: no dropped frames, peak RSS <= 150 MB, stop latency <= 0.5 s")
print(f"files kept in {work}")

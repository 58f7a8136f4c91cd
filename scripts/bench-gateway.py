#!/usr/bin/env python3
"""Benchmark driver for scripts/bench-gateway (see there). Prints a table and writes
target/bench-gateway.json."""
import argparse, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OURS = os.path.join(ROOT, "target/release/openclaw")
PEER = os.path.join(ROOT, "tests/peers/upstream-cli")
NODE = os.path.join(PEER, "n26/node_modules/.bin/node")
UPSTREAM = os.path.join(PEER, "node_modules/openclaw/openclaw.mjs")
GW_TOKEN = "bench-gateway-token-0123456789abcdef"
HOOK_TOKEN = "bench-hooks-token-0123456789abcdef"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def write_json(path, v):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(v, f)
    os.chmod(path, 0o600)


def time_to_port(cmd, env, port, timeout=120.0):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.05).close()
            return time.perf_counter() - t0, p
        except OSError:
            if p.poll() is not None:
                raise RuntimeError(f"{cmd[0]} exited with {p.returncode} before listening")
            if time.perf_counter() - t0 > timeout:
                p.kill()
                raise RuntimeError("timeout waiting for the port")
            time.sleep(0.0002)


def stop(p, timeout=30):
    p.send_signal(signal.SIGTERM)
    try:
        return p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait()


def tree_rss_kib(pid):
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    total, todo = 0, [pid]
    while todo:
        q = todo.pop()
        try:
            with open(f"/proc/{q}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
        todo.extend(children.get(q, []))
    return total


def ours_setup():
    d = tempfile.mkdtemp(prefix="bench-ours-")
    write_json(os.path.join(d, "openclaw.json"), {
        "gateway": {"mode": "local", "auth": {"mode": "token", "token": GW_TOKEN}},
        "hooks": {"enabled": True, "token": HOOK_TOKEN, "path": "/hooks"},
    })
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": d, "OPENCLAW_LOG_FORMAT": "json"}
    return d, env, lambda port: [OURS, "gateway", "run", "--state-dir", d, "--port", str(port)]


def upstream_setup():
    home = tempfile.mkdtemp(prefix="bench-upstream-")
    env = {"PATH": "/usr/bin:/bin", "HOME": home, "OPENCLAW_NO_AUTO_UPDATE": "1", "DO_NOT_TRACK": "1",
           "OPENCLAW_DISABLE_BONJOUR": "1"}

    def cmd(port):
        write_json(os.path.join(home, ".openclaw/openclaw.json"), {
            "gateway": {"mode": "local", "port": port, "bind": "loopback", "auth": {"mode": "token", "token": GW_TOKEN}},
            "hooks": {"enabled": True, "token": HOOK_TOKEN, "path": "/hooks"},
            "update": {"checkOnStart": False},
            "models": {"catalogRefresh": {"enabled": False}},
            "discovery": {"mdns": {"mode": "off"}},
        })
        return [NODE, UPSTREAM, "gateway", "run", "--port", str(port)]
    return home, env, cmd


def measure_start(name, setup, runs, pause):
    d, env, cmd = setup()
    times = []
    for i in range(runs):
        port = free_port()
        dt, p = time_to_port(cmd(port), env, port)
        times.append(dt)
        code = stop(p)
        print(f"  {name} start {i + 1}/{runs}: {dt * 1000:.2f} ms (exit {code})", file=sys.stderr)
        time.sleep(pause)
    return d, env, cmd, times


def measure_idle_rss(cmd, env, idle):
    port = free_port()
    _, p = time_to_port(cmd(port), env, port)
    time.sleep(idle)
    rss = tree_rss_kib(p.pid)
    return rss, p, port


WRK_LUA = """
wrk.method = "POST"
wrk.body = '{"message":"bench","deliver":false}'
wrk.headers["Authorization"] = "Bearer %s"
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  io.write(string.format("WRKJSON {\\"requests\\":%%d,\\"duration_us\\":%%d,\\"status_errors\\":%%d,\\"connect_errors\\":%%d,\\"read_errors\\":%%d,\\"write_errors\\":%%d,\\"timeouts\\":%%d,\\"p50_us\\":%%d,\\"p99_us\\":%%d,\\"max_us\\":%%d}\\n",
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
""" % HOOK_TOKEN


def wait_ready(port, timeout=180.0):
    """Polls GET /ready until 200; returns seconds waited (None on timeout)."""
    import urllib.request
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except Exception:
            pass
        time.sleep(0.5)
    return None


def run_wrk(port, duration, connections, threads=2):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_LUA)
        lua = f.name
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--timeout", "10s", "-s", lua,
                          f"http://127.0.0.1:{port}/hooks/agent"], capture_output=True, text=True, check=True).stdout
    line = [l for l in out.splitlines() if l.startswith("WRKJSON ")][0]
    return json.loads(line[len("WRKJSON "):])


def ours_runs_recorded(state_dir, port):
    out = subprocess.run([OURS, "status", "--json", "--state-dir", state_dir, "--url", f"ws://127.0.0.1:{port}",
                          "--token", GW_TOKEN], capture_output=True, text=True, check=True).stdout
    return json.loads(out)["runs"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--upstream-runs", type=int, default=3)
    ap.add_argument("--idle", type=float, default=10.0)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--no-upstream", action="store_true")
    a = ap.parse_args()
    res = {"machine": {"cpus": os.cpu_count(), "kernel": os.uname().release}}
    have_upstream = not a.no_upstream and os.path.exists(NODE) and os.path.exists(UPSTREAM)
    if not have_upstream and not a.no_upstream:
        print("SKIPPED: upstream side of the benchmark: tests/peers/upstream-cli not installed (scripts/setup-test-peers)", file=sys.stderr)

    d, env, cmd, times = measure_start("ours", ours_setup, a.runs, 0.05)
    res["ours_start_ms"] = {"median": statistics.median(times) * 1000, "min": min(times) * 1000, "max": max(times) * 1000, "runs": len(times)}
    rss, p, port = measure_idle_rss(cmd, env, a.idle)
    res["ours_idle_rss_kib"] = rss
    w = run_wrk(port, a.duration, a.connections)
    # Accepted runs still execute after the load stops (no provider here: each fails at once):
    # wait up to 60 s for all of them to end before counting.
    deadline = time.monotonic() + 60
    while True:
        runs = ours_runs_recorded(d, port)
        if runs["done"] + runs["failed"] >= runs["accepted"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    res["ours_hooks"] = {**w, "rps": w["requests"] / (w["duration_us"] / 1e6), "recorded": runs,
                         "connections": a.connections, "seconds": a.duration}
    res["ours_rss_after_load_kib"] = tree_rss_kib(p.pid)
    res["ours_exit_after_load"] = stop(p)
    lost = w["requests"] - runs["accepted"]
    res["ours_hooks"]["nothing_lost"] = (w["status_errors"] == 0 and lost <= 0 and runs["done"] + runs["failed"] >= runs["accepted"])

    if have_upstream:
        ud, uenv, ucmd, utimes = measure_start("upstream", upstream_setup, a.upstream_runs, 2.0)
        res["upstream_start_ms"] = {"median": statistics.median(utimes) * 1000, "min": min(utimes) * 1000, "max": max(utimes) * 1000, "runs": len(utimes)}
        urss, up, uport = measure_idle_rss(ucmd, uenv, a.idle)
        res["upstream_idle_rss_kib"] = urss
        res["upstream_ready_after_idle_s"] = wait_ready(uport)
        uw = run_wrk(uport, a.duration, 16)
        res["upstream_hooks"] = {**uw, "rps": uw["requests"] / (uw["duration_us"] / 1e6), "connections": 16, "seconds": a.duration}
        stop(up)
        shutil.rmtree(ud, ignore_errors=True)
        res["ratios"] = {
            "start_median_upstream_over_ours": res["upstream_start_ms"]["median"] / res["ours_start_ms"]["median"],
            "idle_rss_upstream_over_ours": urss / rss,
            "hooks_rps_ours_over_upstream": res["ours_hooks"]["rps"] / max(res["upstream_hooks"]["rps"], 1e-9),
        }
    shutil.rmtree(d, ignore_errors=True)

    os.makedirs(os.path.join(ROOT, "target"), exist_ok=True)
    with open(os.path.join(ROOT, "target/bench-gateway.json"), "w") as f:
        json.dump(res, f, indent=2)
    o = res
    print("| metric | ours | upstream | ratio |")
    print("|---|---|---|---|")
    us = o.get("upstream_start_ms", {}).get("median")
    print(f"| time to listening port, median (min) | {o['ours_start_ms']['median']:.2f} ms ({o['ours_start_ms']['min']:.2f}) | "
          + (f"{us:.0f} ms ({o['upstream_start_ms']['min']:.0f}) | {o['ratios']['start_median_upstream_over_ours']:.0f}x faster |" if us else "- | - |"))
    ur = o.get("upstream_idle_rss_kib")
    print(f"| idle RSS after {a.idle:.0f} s (process tree) | {o['ours_idle_rss_kib'] / 1024:.1f} MiB | "
          + (f"{ur / 1024:.0f} MiB | {o['ratios']['idle_rss_upstream_over_ours']:.0f}x smaller |" if ur else "- | - |"))
    h = o["ours_hooks"]
    uh = o.get("upstream_hooks")
    print(f"| hooks req/s (wrk, auth on) | {h['rps']:.0f} (c={h['connections']}) | "
          + (f"{uh['rps']:.0f} (c=16) | {o['ratios']['hooks_rps_ours_over_upstream']:.0f}x |" if uh else "- | - |"))
    print(f"| hooks p99 latency | {h['p99_us'] / 1000:.2f} ms | " + (f"{uh['p99_us'] / 1000:.1f} ms (non-2xx {uh['status_errors']}, timeouts {uh['timeouts']}) | |" if uh else "- | |"))
    print(f"| accepted runs recorded | {h['recorded']['accepted']} for {h['requests']} completed requests, "
          f"non-2xx {h['status_errors']}, nothing lost: {h['nothing_lost']} | | |")
    print(f"| RSS after load | {o['ours_rss_after_load_kib'] / 1024:.1f} MiB | | |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""bench/run ready: from a server's first healthy answer to tether's `Ready:` line, seen from outside.

For each round: `./tether serve --command "python3 bench/ready.py --server ..." --health /health --port auto`
runs as a user runs it; this script reads tether's stdout and stamps each line as it arrives
(time.time_ns, CLOCK_REALTIME). The server (this same file with --server) is a plain http.server that
writes when it began listening, when /health could first answer 200 and when it first did. Both clocks
are the machine's wall clock. Then SIGTERM to tether, which stops the server.

usage: bench/run ready [rounds] [ready-after-ms,...]     (defaults: 7 rounds; 0,1000)
"""
import http.server
import os
import signal
import statistics
import subprocess
import sys
import time


def serve(port, stamps, ready_after_ms):
    listening = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            now = time.time_ns()
            healthy = now - listening["at"] >= ready_after_ms * 1_000_000
            status = 200 if healthy and self.path == "/health" else 503
            if status == 200 and "first200" not in listening:
                # Written before the answer leaves, so it exists once tether has seen the 200.
                listening["first200"] = time.time_ns()
                tmp = stamps + ".tmp"
                with open(tmp, "w") as f:
                    f.write("listening %d\nhealthy %d\nfirst-200 %d\n" % (
                        listening["at"], listening["at"] + ready_after_ms * 1_000_000, listening["first200"]))
                os.replace(tmp, stamps)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            self.wfile.flush()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", port), Handler)
    listening["at"] = time.time_ns()
    server.serve_forever()


def round_trip(root, work, i, ready_after_ms):
    stamps = os.path.join(work, "stamps-%d" % i)
    cmd = "python3 %s --server {port} %s %d" % (os.path.abspath(__file__), stamps, ready_after_ms)
    env = dict(os.environ, TETHER_HOME=os.path.join(work, "home"))
    tether = subprocess.Popen([os.path.join(root, "tether"), "serve", "--command", cmd, "--health", "/health",
                               "--port", "auto"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    ready_at = None
    for raw in tether.stdout:
        if raw.startswith(b"Ready:"):
            ready_at = time.time_ns()
            break
    tether.send_signal(signal.SIGTERM)
    tether.stdout.read()
    tether.wait(timeout=60)
    if ready_at is None:
        raise SystemExit("round %d: no Ready: line (tether exited %s)" % (i, tether.returncode))
    with open(stamps) as f:
        s = dict(line.split() for line in f)
    return (ready_at - int(s["healthy"])) / 1e6, (ready_at - int(s["first-200"])) / 1e6


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--server":
        serve(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
        return
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    delays = [int(d) for d in (sys.argv[2] if len(sys.argv) > 2 else "0,1000").split(",")]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([os.path.join(root, "tether"), "--version"], check=True, stdout=subprocess.DEVNULL)
    work = subprocess.check_output(["mktemp", "-d", "/tmp/tether-ready-bench.XXXXXX"], text=True).strip()
    try:
        for delay in delays:
            healthy, first = [], []
            for i in range(rounds):
                h, f = round_trip(root, work, i, delay)
                healthy.append(h)
                first.append(f)
            print("server healthy %4d ms after it listens, %d rounds:" % (delay, rounds))
            print("  healthy -> Ready: line   median %6.1f ms  worst %6.1f ms  (all: %s)" % (
                statistics.median(healthy), max(healthy), " ".join("%.1f" % x for x in healthy)))
            print("  first 200 -> Ready: line median %6.1f ms  worst %6.1f ms" % (statistics.median(first), max(first)))
        print("load average at the end: %s" % open("/proc/loadavg").read().strip())
    finally:
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
